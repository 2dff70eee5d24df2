#!/usr/bin/env bash
# The project's test command (README, CI): the Rust workspace's tests, the python shim's
# tests, and the real python-qinlingclient and schemathesis against a live server — the
# end-to-end suite, the client and schemathesis each on SQLite and on PostgreSQL (a throwaway
# cluster from scripts/postgres.sh, when the server binaries are installed).
#
# The client test needs a venv with the pinned client (tests/client/requirements.txt); CI
# makes it with scripts/setup-client-venv.sh. Without it, that part is skipped with a
# printed reason. Tests that need root (the sandbox suite) skip themselves with a printed
# reason when not run as root.
set -euo pipefail
cd "$(dirname "$0")/.."

echo "== keystone (for the keystone-mode tests)"
export KEYSTONE_VENV="${KEYSTONE_VENV:-$PWD/.venv-keystone}"
if [ -z "${QINLING_TEST_KEYSTONE_URL:-}" ] && [ -x "$KEYSTONE_VENV/bin/keystone-manage" ]; then
    eval "$(scripts/keystone.sh start)"
    KEYSTONE_STARTED=1
    trap 'scripts/keystone.sh stop' EXIT
elif [ -z "${QINLING_TEST_KEYSTONE_URL:-}" ]; then
    echo "SKIPPED: no Keystone venv at $KEYSTONE_VENV (run scripts/setup-keystone.sh); the keystone tests will say SKIPPED"
fi

echo "== postgresql (for the store tests, the postgres e2e tests and the suite on PostgreSQL)"
if [ -z "${QINLING_TEST_POSTGRES:-}" ] && ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then
    eval "$(scripts/postgres.sh start)"
    trap 'scripts/postgres.sh stop; if [ -n "${KEYSTONE_STARTED:-}" ]; then scripts/keystone.sh stop; fi' EXIT
elif [ -z "${QINLING_TEST_POSTGRES:-}" ]; then
    echo "SKIPPED: no PostgreSQL server binaries (apt-get install postgresql); the PostgreSQL halves will say SKIPPED"
fi

# The trace test's OTLP receiver decodes with opentelemetry-proto from this venv
# (scripts/setup-otlp-venv.sh); without it that test says SKIPPED.
export OTLP_VENV="${OTLP_VENV:-$PWD/.venv-otlp/bin}"
[ -x "$OTLP_VENV/python" ] || echo "SKIPPED (below): no OTLP venv at $OTLP_VENV (run scripts/setup-otlp-venv.sh); the trace test will say SKIPPED"

echo "== cargo test (workspace, SQLite; the store tests also on PostgreSQL)"
cargo test --workspace --locked 2>&1

if [ -n "${QINLING_TEST_POSTGRES:-}" ]; then
    echo "== the end-to-end suite again, every server on PostgreSQL"
    QINLING_TEST_DATABASE=postgres cargo test --workspace --locked --test it 2>&1
fi

echo "== python shim tests"
(cd crates/qinling-runtimes && python3 -m unittest -v shims/test_python3.py 2>&1)

echo "== the dashboard in headless Chromium (screenshots in target/ui-artifacts)"
export UI_VENV="${UI_VENV:-$PWD/.venv-ui/bin}"
if [ ! -x "$UI_VENV/python" ]; then
    echo "SKIPPED: no Selenium venv at $UI_VENV (run scripts/setup-ui-venv.sh)"
elif ! command -v chromium >/dev/null || ! command -v chromedriver >/dev/null; then
    echo "SKIPPED: no chromium and chromedriver (apt-get install chromium chromium-driver)"
else
    cargo build --locked --quiet --bin qinling
    "$UI_VENV/python" tests/ui/dashboard_test.py target/debug/qinling 2>&1
fi

echo "== python-qinlingclient against a live server"
export OSC_VENV="${OSC_VENV:-$PWD/.venv-osc/bin}"
if [ -x "$OSC_VENV/openstack" ]; then
    cargo build --locked --quiet --bin qinling
    echo "-- on SQLite"
    scripts/with-server.sh tests/client/openstack_client_test.sh
    if [ -n "${QINLING_TEST_POSTGRES:-}" ]; then
        echo "-- on PostgreSQL"
        QINLING_TEST_DATABASE=postgres scripts/with-server.sh tests/client/openstack_client_test.sh
    fi
else
    echo "SKIPPED: no python-qinlingclient venv at $OSC_VENV (run scripts/setup-client-venv.sh)"
fi

echo "== schemathesis: no 5xx for any generated request (docs/openapi.json)"
export ST_VENV="${ST_VENV:-$PWD/.venv-st/bin}"
if [ -x "$ST_VENV/schemathesis" ]; then
    cargo build --locked --quiet --bin qinling
    echo "-- on SQLite"
    scripts/with-server.sh scripts/schemathesis.sh
    if [ -n "${QINLING_TEST_POSTGRES:-}" ]; then
        echo "-- on PostgreSQL"
        QINLING_TEST_DATABASE=postgres scripts/with-server.sh scripts/schemathesis.sh
    fi
else
    echo "SKIPPED: no schemathesis venv at $ST_VENV (run scripts/setup-schemathesis.sh)"
fi
