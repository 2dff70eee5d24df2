#!/usr/bin/env bash
# Runs `$@ <url>` against a freshly started `qinling serve` on a temporary data directory and
# a free port (and a fresh PostgreSQL database with QINLING_TEST_DATABASE=postgres); stops the server afterwards and prints its log if the command failed.
set -euo pipefail
cd "$(dirname "$0")/.."
bin="${QINLING_BIN:-target/debug/qinling}"
data="$(mktemp -d)"
log="$data/server.log"
# QINLING_TEST_DATABASE=postgres: the server gets a fresh database on the PostgreSQL server
# QINLING_TEST_POSTGRES names (scripts/postgres.sh); otherwise SQLite in the data dir.
db_args=()
if [ "${QINLING_TEST_DATABASE:-sqlite}" = postgres ]; then
    : "${QINLING_TEST_POSTGRES:?QINLING_TEST_DATABASE=postgres needs QINLING_TEST_POSTGRES (scripts/postgres.sh start)}"
    name="ws_$(date +%s%N)_$$"
    psql -q "$QINLING_TEST_POSTGRES" -c "CREATE DATABASE $name"
    db_args=(--database "${QINLING_TEST_POSTGRES%/*}/$name")
fi
"$bin" serve --data-dir "$data" --listen 127.0.0.1:0 --pool-size 1 "${db_args[@]}" ${QINLING_SERVE_ARGS:-} 2>"$log" &
pid=$!
cleanup() { kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; rm -rf "$data"; }
trap cleanup EXIT
url=""
for _ in $(seq 1 300); do
    url=$(sed -n 's/.*listen=\([0-9.:]*\).*/http:\/\/\1/p' "$log" | head -1)
    [ -n "$url" ] && break
    kill -0 "$pid" 2>/dev/null || { cat "$log"; echo "server exited" >&2; exit 1; }
    sleep 0.1
done
[ -n "$url" ] || { cat "$log"; echo "server did not start" >&2; exit 1; }
status=0
"$@" "$url" || status=$?
if [ "$status" -ne 0 ]; then echo "--- server log"; cat "$log"; fi
exit "$status"
