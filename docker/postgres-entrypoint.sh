#!/bin/sh
# First start: initdb with scram-sha-256 for network clients (the password from POSTGRES_PASSWORD) and the
# pocketllm database. Every start: postgres in the foreground, listening on the container's network.
set -eu
if [ ! -s "$PGDATA/PG_VERSION" ]; then
  [ -n "${POSTGRES_PASSWORD:-}" ] || { echo "POSTGRES_PASSWORD is required (scripts/make-secrets.sh writes pg.env)" >&2; exit 1; }
  pw="$(mktemp)"; printf '%s\n' "$POSTGRES_PASSWORD" > "$pw"
  initdb -D "$PGDATA" -U postgres --pwfile="$pw" --auth-local=trust --auth-host=scram-sha-256 -E UTF8 > /dev/null
  rm -f "$pw"
  echo "host all all 0.0.0.0/0 scram-sha-256" >> "$PGDATA/pg_hba.conf"
  pg_ctl -D "$PGDATA" -o "-c listen_addresses=''" -w start > /dev/null
  psql -X -q -U postgres -c "CREATE DATABASE pocketllm"
  pg_ctl -D "$PGDATA" -m fast -w stop > /dev/null
fi
exec postgres -D "$PGDATA" -c listen_addresses='*' -c max_connections=200
