#!/usr/bin/env bash
# Makes the server's secrets for a test deployment: a self-signed certificate for localhost, 127.0.0.1
# and the compose service name "server", and a random admin token.
#   scripts/make-secrets.sh DIR
set -euo pipefail
dir="${1:?usage: make-secrets.sh DIR}"
mkdir -p "$dir"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 365 -subj /CN=pocketllm-server \
  -addext subjectAltName=DNS:server,DNS:localhost,IP:127.0.0.1 -keyout "$dir/tls_key" -out "$dir/tls_cert" >/dev/null 2>&1
head -c 24 /dev/urandom | base64 > "$dir/admin_token"
chmod 644 "$dir/tls_cert" "$dir/tls_key" "$dir/admin_token"  # read by the container's non-root user
echo "wrote $dir/tls_cert, tls_key, admin_token"
