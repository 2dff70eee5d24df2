#!/usr/bin/env bash
# A local qinling cluster on loopback, for trying a cluster out and for the tests:
#
#   eval "$(scripts/cluster.sh start)"     # NATS + PostgreSQL + three nodes
#   QINLING_URL=$QINLING_NODE1 qinling node list
#   scripts/cluster.sh kill 2              # kill -9 node 2 (it is lost after --node-timeout)
#   scripts/cluster.sh node 2              # start node 2 again (it rejoins)
#   scripts/cluster.sh stop                # stop everything and remove the directory
#
# It starts a NATS server with JetStream (scripts/nats.sh) unless QINLING_CLUSTER names one,
# and a PostgreSQL server (scripts/postgres.sh) unless QINLING_DATABASE names a database.
# Nodes listen on 127.0.0.1:7071, :7072, … (QINLING_CLUSTER_PORT sets the first), are named
# n1, n2, … and keep their data and logs (n1.log, …) in the cluster's directory. The binary
# is QINLING_BIN, else `qinling` on PATH, else target/{release,debug}/qinling. Extra flags
# for every node go in QINLING_NODE_ARGS (e.g. "--insecure-no-sandbox" when not root).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"

binary() {
    if [ -n "${QINLING_BIN:-}" ]; then echo "$QINLING_BIN"; return; fi
    if command -v qinling >/dev/null; then command -v qinling; return; fi
    for b in "$root/target/release/qinling" "$root/target/debug/qinling"; do
        [ -x "$b" ] && { echo "$b"; return; }
    done
    echo "no qinling binary: build one (cargo build --release) or set QINLING_BIN" >&2
    exit 1
}

start_node() {
    local dir="$1" i="$2"
    local port=$(( $(cat "$dir/first-port") + i - 1 ))
    mkdir -p "$dir/n$i"
    # shellcheck disable=SC2086
    "$(cat "$dir/bin")" serve --data-dir "$dir/n$i" --listen "127.0.0.1:$port" \
        --database "$(cat "$dir/database")" --cluster "$(cat "$dir/nats")" \
        --node-name "n$i" --node-timeout "${QINLING_NODE_TIMEOUT:-10}" \
        ${QINLING_NODE_ARGS:-} >>"$dir/n$i.log" 2>&1 &
    echo $! > "$dir/n$i.pid"
    for _ in $(seq 1 600); do
        if python3 -c "import urllib.request,sys; urllib.request.urlopen(sys.argv[1], timeout=1)" "http://127.0.0.1:$port/v1/" 2>/dev/null; then
            echo "export QINLING_NODE$i=http://127.0.0.1:$port"
            return
        fi
        kill -0 "$(cat "$dir/n$i.pid")" 2>/dev/null || { tail -20 "$dir/n$i.log" >&2; exit 1; }
        sleep 0.1
    done
    echo "node n$i did not start; see $dir/n$i.log" >&2
    exit 1
}

case "${1:-}" in
start)
    n="${2:-3}"
    dir="$(mktemp -d /tmp/qinling-cluster.XXXXXX)"
    binary > "$dir/bin"
    echo "${QINLING_CLUSTER_PORT:-7071}" > "$dir/first-port"
    echo "$n" > "$dir/nodes"
    if [ -n "${QINLING_CLUSTER:-}" ]; then
        echo "$QINLING_CLUSTER" > "$dir/nats"
    else
        eval "$("$root/scripts/nats.sh" start)"
        echo "$QINLING_TEST_NATS" > "$dir/nats"
        echo "$QINLING_TEST_NATSDIR" > "$dir/natsdir"
    fi
    if [ -n "${QINLING_DATABASE:-}" ]; then
        echo "$QINLING_DATABASE" > "$dir/database"
    else
        eval "$("$root/scripts/postgres.sh" start)"
        echo "$QINLING_TEST_PGDATA" > "$dir/pgdata"
        psql -q "$QINLING_TEST_POSTGRES" -c "CREATE DATABASE qinling" >&2
        echo "${QINLING_TEST_POSTGRES%/postgres}/qinling" > "$dir/database"
    fi
    echo "export QINLING_CLUSTER_DIR=$dir"
    # The first node alone first: it migrates the database and registers the runtimes.
    for i in $(seq 1 "$n"); do start_node "$dir" "$i"; done
    echo "export QINLING_URL=http://127.0.0.1:$(cat "$dir/first-port")"
    ;;
node)
    dir="${3:-${QINLING_CLUSTER_DIR:?set QINLING_CLUSTER_DIR or pass the directory}}"
    start_node "$dir" "$2"
    ;;
kill)
    dir="${3:-${QINLING_CLUSTER_DIR:?set QINLING_CLUSTER_DIR or pass the directory}}"
    kill -9 "$(cat "$dir/n$2.pid")" 2>/dev/null || true
    ;;
stop)
    dir="${2:-${QINLING_CLUSTER_DIR:-}}"
    [ -n "$dir" ] && [ -f "$dir/nodes" ] || exit 0
    for pid in "$dir"/n*.pid; do kill "$(cat "$pid")" 2>/dev/null || true; done
    for pid in "$dir"/n*.pid; do
        for _ in $(seq 1 100); do kill -0 "$(cat "$pid")" 2>/dev/null || break; sleep 0.1; done
        kill -9 "$(cat "$pid")" 2>/dev/null || true
    done
    [ -f "$dir/natsdir" ] && "$root/scripts/nats.sh" stop "$(cat "$dir/natsdir")"
    [ -f "$dir/pgdata" ] && "$root/scripts/postgres.sh" stop "$(cat "$dir/pgdata")"
    rm -rf "$dir"
    ;;
*)
    echo "usage: $0 start [N] | node I [DIR] | kill I [DIR] | stop [DIR]" >&2
    exit 2
    ;;
esac
