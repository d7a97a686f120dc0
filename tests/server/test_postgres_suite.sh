#!/usr/bin/env bash
# The server's whole in-process suite (pocketllm_server_tests) once more on the PostgreSQL store: a
# private PostgreSQL 15 (tests/support/postgres.sh), a database of its own per test fixture.
#   test_postgres_suite.sh SERVER_TESTS_BIN
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
bin="$1"
work="$(mktemp -d)"
trap '"$here/../support/postgres.sh" stop "$work/pg"; rm -rf "$work"' EXIT
# fsync off: this run checks behaviour, not durability (the cluster test keeps fsync on and restarts it).
url=$("$here/../support/postgres.sh" start "$work/pg" -c fsync=off) || exit $?
echo "PostgreSQL at $url"
POCKETLLM_TEST_POSTGRES="$url" "$bin" --order rand --warn NoAssertions
# The tests that need PostgreSQL itself (hidden from the SQLite run): outages made inside the database.
POCKETLLM_TEST_POSTGRES="$url" "$bin" "[postgres]" --warn NoTests
