#!/usr/bin/env bash
# The project's test command (README, CI): the Rust workspace's tests, the python shim's
# tests, and the real python-qinlingclient against a live server.
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
    trap 'scripts/keystone.sh stop' EXIT
elif [ -z "${QINLING_TEST_KEYSTONE_URL:-}" ]; then
    echo "SKIPPED: no Keystone venv at $KEYSTONE_VENV (run scripts/setup-keystone.sh); the keystone tests will say SKIPPED"
fi

echo "== cargo test (workspace)"
cargo test --workspace --locked 2>&1

echo "== python shim tests"
(cd crates/qinling-runtimes && python3 -m unittest -v shims/test_python3.py 2>&1)

echo "== python-qinlingclient against a live server"
export OSC_VENV="${OSC_VENV:-$PWD/.venv-osc/bin}"
if [ -x "$OSC_VENV/openstack" ]; then
    cargo build --locked --quiet --bin qinling
    scripts/with-server.sh tests/client/openstack_client_test.sh
else
    echo "SKIPPED: no python-qinlingclient venv at $OSC_VENV (run scripts/setup-client-venv.sh)"
fi

echo "== schemathesis: no 5xx for any generated request (docs/openapi.json)"
export ST_VENV="${ST_VENV:-$PWD/.venv-st/bin}"
if [ -x "$ST_VENV/schemathesis" ]; then
    cargo build --locked --quiet --bin qinling
    scripts/with-server.sh scripts/schemathesis.sh
else
    echo "SKIPPED: no schemathesis venv at $ST_VENV (run scripts/setup-schemathesis.sh)"
fi
