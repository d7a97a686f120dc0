#!/usr/bin/env bash
# A private PostgreSQL 15 for tests: initdb into DIR, started on a free loopback port (and a socket in
# DIR), stopped afterwards. Never touches a system cluster.
#
#   tests/support/postgres.sh start DIR [postgres -c options...]   prints the admin URL
#   tests/support/postgres.sh stop DIR | restart DIR | kill DIR     (kill: SIGKILL the postmaster, then start)
#
# Exit 77 (CTest's skip code) with a message when PostgreSQL 15 is not installed.
set -euo pipefail
cmd=${1:?usage: postgres.sh start|stop|restart DIR}
dir=${2:?usage: postgres.sh start|stop|restart DIR}
shift 2
bin=/usr/lib/postgresql/15/bin
if [ ! -x "$bin/initdb" ]; then
  echo "postgres.sh: PostgreSQL 15 is not installed here (scripts/setup.sh installs postgresql-15)" >&2
  exit 77
fi
run=()
if [ "$(id -u)" = 0 ]; then run=(runuser -u postgres --); fi  # initdb and postgres refuse to run as root
pgctl() { "${run[@]}" "$bin/pg_ctl" -D "$dir/data" "$@"; }
case "$cmd" in
  start)
    mkdir -p "$dir"
    if [ "$(id -u)" = 0 ]; then
      chown postgres "$dir"
      chmod o+x "$(dirname "$dir")"  # the postgres user must reach DIR (mktemp -d makes parents 0700)
    fi
    port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
    "${run[@]}" "$bin/initdb" -D "$dir/data" -U postgres --auth=trust -E UTF8 --no-sync >"$dir/initdb.log" 2>&1 ||
      { cat "$dir/initdb.log" >&2; exit 1; }
    opts="-p $port -k $dir -c listen_addresses=127.0.0.1 -c max_connections=300"
    for o in "$@"; do opts="$opts $o"; done
    echo "$opts" >"$dir/options"
    pgctl -l "$dir/server.log" -w -t 60 -o "$opts" start >/dev/null || { cat "$dir/server.log" >&2; exit 1; }
    echo "$port" >"$dir/port"
    echo "postgresql://postgres@127.0.0.1:$port/postgres"
    ;;
  stop) pgctl -m fast -w stop >/dev/null 2>&1 || true ;;
  restart) pgctl -m fast -w -t 60 -o "$(cat "$dir/options")" restart >/dev/null ;;
  kill)
    pid=$(head -1 "$dir/data/postmaster.pid")
    kill -9 "$pid"
    for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.05; done
    pkill -9 -f -- "-D $dir/data" 2>/dev/null || true  # its backends
    sleep 0.2
    pgctl -l "$dir/server.log" -w -t 60 -o "$(cat "$dir/options")" start >/dev/null
    ;;
  *) echo "postgres.sh: unknown command $cmd" >&2; exit 2 ;;
esac
