#!/usr/bin/env bash
# A throwaway PostgreSQL cluster for the tests: `eval "$(scripts/postgres.sh start)"` runs
# initdb in a temporary directory as an unprivileged user (the server refuses root), starts it
# on a free loopback port and exports QINLING_TEST_POSTGRES (an admin URL on which the tests
# create their own databases) and QINLING_TEST_PGDATA; `scripts/postgres.sh stop` removes it.
# `pause DIR` stops the server and `resume DIR` starts it again on the same port with the
# same data (the fault tests use them).
# Needs Debian's postgresql package (`.ci/run` installs it).
set -euo pipefail

bindir() {
    local d
    for d in /usr/lib/postgresql/*/bin; do
        [ -x "$d/initdb" ] && { echo "$d"; return; }
    done
    echo "no PostgreSQL server binaries under /usr/lib/postgresql (apt-get install postgresql)" >&2
    exit 1
}

as_user() {
    if [ "$(id -u)" = 0 ]; then runuser -u "$PGUSER_OS" -- "$@"; else "$@"; fi
}

PGUSER_OS="${QINLING_PG_OS_USER:-postgres}"
if [ "$(id -u)" = 0 ] && ! id "$PGUSER_OS" >/dev/null 2>&1; then
    useradd --system --no-create-home --shell /usr/sbin/nologin "$PGUSER_OS"
fi

run_server() {
    as_user "$1/pg_ctl" -D "$2/data" -l "$2/server.log" -w -t 60 \
        -o "-p $(cat "$2/port") -k $2 -c listen_addresses=127.0.0.1 -c fsync=${QINLING_PG_FSYNC:-off} -c max_connections=400" start >&2 \
        || { cat "$2/server.log" >&2; exit 1; }
}

case "${1:-}" in
start)
    bin="$(bindir)"
    dir="$(mktemp -d /tmp/qinling-pg.XXXXXX)"
    chmod 755 "$dir"
    [ "$(id -u)" = 0 ] && chown "$PGUSER_OS" "$dir"
    port="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
    as_user "$bin/initdb" -D "$dir/data" -U qinling --auth=trust -E UTF8 --no-sync >"$dir/initdb.log" 2>&1 \
        || { cat "$dir/initdb.log" >&2; exit 1; }
    echo "$port" > "$dir/port"
    run_server "$bin" "$dir"
    echo "export QINLING_TEST_POSTGRES=postgres://qinling@127.0.0.1:$port/postgres"
    echo "export QINLING_TEST_PGDATA=$dir"
    ;;
stop)
    dir="${2:-${QINLING_TEST_PGDATA:-}}"
    [ -n "$dir" ] && [ -d "$dir/data" ] || exit 0
    as_user "$(bindir)/pg_ctl" -D "$dir/data" -m immediate stop >/dev/null 2>&1 || true
    rm -rf "$dir"
    ;;
pause)
    as_user "$(bindir)/pg_ctl" -D "$2/data" -m fast -w stop >&2
    ;;
resume)
    run_server "$(bindir)" "$2"
    ;;
*)
    echo "usage: $0 start | stop [dir] | pause dir | resume dir" >&2
    exit 2
    ;;
esac
