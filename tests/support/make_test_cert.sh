#!/usr/bin/env bash
# Writes a self-signed P-256 certificate for 127.0.0.1 and localhost (cert.pem, key.pem) into the
# current directory: the test servers' TLS identity.
set -euo pipefail
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 30 -subj /CN=localhost \
  -addext subjectAltName=IP:127.0.0.1,DNS:localhost -keyout key.pem -out cert.pem >/dev/null 2>&1
