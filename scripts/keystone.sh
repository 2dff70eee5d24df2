#!/usr/bin/env bash
# A real Keystone v3 on loopback, for the keystone-mode tests (crates/qinling/tests/it/auth.rs).
#
#   scripts/keystone.sh start   bootstraps Keystone on SQLite in $KEYSTONE_DIR, serves it on
#                               127.0.0.1:$KEYSTONE_PORT, creates projects and users, and
#                               prints the env the tests read (QINLING_TEST_KEYSTONE_URL, ...)
#   scripts/keystone.sh stop    stops it (by the pid it recorded)
#
# Users (password $KEYSTONE_PASSWORD, domain Default): `admin` (role admin on project admin),
# `qinling-a` and `qinling-b` (role member on projects qinling-a and qinling-b).
# Needs .venv-keystone (scripts/setup-keystone.sh) or KEYSTONE_VENV=<venv dir>.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV="${KEYSTONE_VENV:-$PWD/.venv-keystone}"
DIR="${KEYSTONE_DIR:-$PWD/target/keystone}"
PORT="${KEYSTONE_PORT:-35357}"
PASSWORD="${KEYSTONE_PASSWORD:-qinling-test}"
URL="http://127.0.0.1:$PORT"

stop() {
    if [ -f "$DIR/pid" ]; then
        kill "$(cat "$DIR/pid")" 2>/dev/null || true
        rm -f "$DIR/pid"
    fi
}

start() {
    [ -x "$VENV/bin/keystone-manage" ] || { echo "no Keystone venv at $VENV (run scripts/setup-keystone.sh)" >&2; exit 2; }
    stop
    rm -rf "$DIR"
    mkdir -p "$DIR/fernet-keys" "$DIR/credential-keys"
    cat > "$DIR/keystone.conf" <<CONF
[DEFAULT]
log_file = $DIR/keystone.log
[database]
connection = sqlite:///$DIR/keystone.sqlite
[fernet_tokens]
key_repository = $DIR/fernet-keys
[credential]
key_repository = $DIR/credential-keys
[token]
expiration = 7200
CONF
    local manage=("$VENV/bin/keystone-manage" --config-file "$DIR/keystone.conf")
    export PYTHONWARNINGS=ignore
    "${manage[@]}" db_sync
    "${manage[@]}" fernet_setup --keystone-user "$(id -un)" --keystone-group "$(id -gn)"
    "${manage[@]}" credential_setup --keystone-user "$(id -un)" --keystone-group "$(id -gn)"
    "${manage[@]}" bootstrap --bootstrap-password "$PASSWORD" \
        --bootstrap-username admin --bootstrap-project-name admin \
        --bootstrap-role-name admin --bootstrap-region-id RegionOne \
        --bootstrap-public-url "$URL/v3"
    OS_KEYSTONE_CONFIG_FILES="$DIR/keystone.conf" nohup "$VENV/bin/python" -c "
import sys
from socketserver import ThreadingMixIn
from wsgiref.simple_server import WSGIServer, WSGIRequestHandler, make_server
from keystone.server.wsgi import initialize_public_application
class Server(ThreadingMixIn, WSGIServer):
    daemon_threads = True
class Quiet(WSGIRequestHandler):
    def log_message(self, *a):
        pass
app = initialize_public_application()
make_server('127.0.0.1', $PORT, app, server_class=Server, handler_class=Quiet).serve_forever()
" > "$DIR/server.log" 2>&1 &
    echo $! > "$DIR/pid"
    for _ in $(seq 1 120); do
        curl -sf "$URL/v3" >/dev/null 2>&1 && break
        sleep 0.5
    done
    curl -sf "$URL/v3" >/dev/null || { echo "Keystone did not start:" >&2; tail -30 "$DIR/server.log" "$DIR/keystone.log" >&2; exit 1; }
    "$VENV/bin/python" - "$URL" "$PASSWORD" <<'PY'
import json, sys, urllib.request
url, password = sys.argv[1], sys.argv[2]

def call(method, path, body=None, token=None):
    req = urllib.request.Request(url + path, method=method,
        data=json.dumps(body).encode() if body is not None else None,
        headers={"Content-Type": "application/json", **({"X-Auth-Token": token} if token else {})})
    with urllib.request.urlopen(req) as r:
        return r.headers.get("X-Subject-Token"), json.loads(r.read() or b"null")

token, _ = call("POST", "/v3/auth/tokens", {"auth": {
    "identity": {"methods": ["password"], "password": {"user": {"name": "admin", "password": password, "domain": {"id": "default"}}}},
    "scope": {"project": {"name": "admin", "domain": {"id": "default"}}}}})
roles = {r["name"]: r["id"] for r in call("GET", "/v3/roles", token=token)[1]["roles"]}
_, svc = call("POST", "/v3/services", {"service": {"type": "function-engine", "name": "qinling"}}, token)
for name in ("qinling-a", "qinling-b"):
    _, p = call("POST", "/v3/projects", {"project": {"name": name, "domain_id": "default"}}, token)
    _, u = call("POST", "/v3/users", {"user": {"name": name, "password": password, "domain_id": "default"}}, token)
    call("PUT", "/v3/projects/%s/users/%s/roles/%s" % (p["project"]["id"], u["user"]["id"], roles["member"]), token=token)
print("keystone: projects qinling-a, qinling-b and their users created", file=sys.stderr)
PY
    echo "export QINLING_TEST_KEYSTONE_URL=$URL"
    echo "export QINLING_TEST_KEYSTONE_PASSWORD=$PASSWORD"
}

case "${1:-}" in
    start) start ;;
    stop) stop ;;
    *) echo "usage: $0 start|stop" >&2; exit 2 ;;
esac
