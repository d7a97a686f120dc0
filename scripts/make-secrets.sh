#!/usr/bin/env bash
# Makes the server's secrets for a test deployment: a self-signed certificate for localhost, 127.0.0.1,
# the compose service name "server" and the cluster profile's replicas and balancer, a random admin
# token, and the cluster profile's PostgreSQL password (pg.env, read by compose as an env file).
#   scripts/make-secrets.sh DIR
set -euo pipefail
case "${1:-}" in -h|--help) awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; exit 0 ;; esac
dir="${1:?usage: make-secrets.sh DIR}"
mkdir -p "$dir"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 365 -subj /CN=pocketllm-server \
  -addext subjectAltName=DNS:server,DNS:lb,DNS:replica1,DNS:replica2,DNS:replica3,DNS:localhost,IP:127.0.0.1 -keyout "$dir/tls_key" -out "$dir/tls_cert" >/dev/null 2>&1
head -c 24 /dev/urandom | base64 > "$dir/admin_token"
pg_password=$(head -c 18 /dev/urandom | base64 | tr -d '/+=')
printf 'POSTGRES_PASSWORD=%s\nPGPASSWORD=%s\n' "$pg_password" "$pg_password" > "$dir/pg.env"
chmod 644 "$dir/tls_cert" "$dir/tls_key" "$dir/admin_token"  # read by the container's non-root user
chmod 600 "$dir/pg.env"
echo "wrote $dir/tls_cert, tls_key, admin_token, pg.env"
