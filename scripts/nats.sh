#!/usr/bin/env bash
# A throwaway NATS server with JetStream for the cluster tests and for trying a cluster out:
# `eval "$(scripts/nats.sh start)"` starts nats-server on a free loopback port with its
# JetStream store in a temporary directory and exports QINLING_TEST_NATS (its URL) and
# QINLING_TEST_NATSDIR; `scripts/nats.sh stop [DIR]` stops it and removes the directory.
# `restart DIR` stops it (SIGTERM) and starts it again on the same port with the same store
# (the fault tests use it). Needs Debian's nats-server package (`.ci/run` installs it).
set -euo pipefail

server() {
    command -v nats-server >/dev/null || {
        echo "no nats-server on PATH (apt-get install nats-server)" >&2
        exit 1
    }
    nats-server -c "$1/nats.conf" >>"$1/server.log" 2>&1 &
    echo $! > "$1/pid"
    # Ready when it accepts connections.
    for _ in $(seq 1 100); do
        if python3 -c "import socket,sys; socket.create_connection(('127.0.0.1', int(sys.argv[1])), 0.2)" "$(cat "$1/port")" 2>/dev/null; then
            return
        fi
        sleep 0.1
    done
    cat "$1/server.log" >&2
    exit 1
}

stop_server() {
    [ -f "$1/pid" ] || return 0
    local pid
    pid="$(cat "$1/pid")"
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 1 100); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    kill -9 "$pid" 2>/dev/null || true
    rm -f "$1/pid"
}

case "${1:-}" in
start)
    dir="$(mktemp -d /tmp/qinling-nats.XXXXXX)"
    port="${QINLING_NATS_PORT:-$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')}"
    echo "$port" > "$dir/port"
    cat > "$dir/nats.conf" <<CONF
listen: 127.0.0.1:$port
# An execution's input and log (1 MiB each by default) travel in one message.
max_payload: 8MB
jetstream {
  store_dir: "$dir/js"
}
CONF
    server "$dir"
    echo "export QINLING_TEST_NATS=nats://127.0.0.1:$port"
    echo "export QINLING_TEST_NATSDIR=$dir"
    ;;
stop)
    dir="${2:-${QINLING_TEST_NATSDIR:-}}"
    [ -n "$dir" ] && [ -f "$dir/nats.conf" ] || exit 0
    stop_server "$dir"
    rm -rf "$dir"
    ;;
restart)
    stop_server "$2"
    server "$2"
    ;;
*)
    echo "usage: $0 start | stop [DIR] | restart DIR" >&2
    exit 2
    ;;
esac
