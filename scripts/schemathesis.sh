#!/usr/bin/env bash
# Runs schemathesis against a live server ($1, from scripts/with-server.sh) with the checked-in
# OpenAPI document: no generated request may get a 5xx. Creates a function and an execution
# first, so that operations on `{id}` reach real objects instead of only 404s. Needs
# $ST_VENV/schemathesis (scripts/setup-schemathesis.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
url="$1"
ST_VENV="${ST_VENV:-$PWD/.venv-st/bin}"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

py() { python3 -c "$@"; }
runtime=$(curl -sf "$url/v1/runtimes" | py 'import json,sys; print(json.load(sys.stdin)["runtimes"][0]["id"])')
py 'import zipfile,sys; z=zipfile.ZipFile(sys.argv[1],"w"); z.writestr("main.py","def main(**kw):\n    return kw\n"); z.close()' "$work/p.zip"
function=$(curl -sf -F "runtime_id=$runtime" -F 'code={"source": "package"}' -F entry=main.main -F "package=@$work/p.zip" \
    "$url/v1/functions" | py 'import json,sys; print(json.load(sys.stdin)["id"])')
execution=$(curl -sf -H 'content-type: application/json' -d "{\"function_id\": \"$function\", \"input\": \"{}\"}" \
    "$url/v1/executions" | py 'import json,sys; print(json.load(sys.stdin)["id"])')
cat > "$work/schemathesis.toml" <<TOML
[[operations]]
include-path-regex = "^/v1/functions/"
parameters = { "path.id" = "$function" }

[[operations]]
include-path-regex = "^/v1/executions/"
parameters = { "path.id" = "$execution" }

[[operations]]
include-path-regex = "^/v1/runtimes/"
parameters = { "path.id" = "$runtime" }
TOML
exec "$ST_VENV/schemathesis" --config-file "$work/schemathesis.toml" run docs/openapi.json --url "$url" \
    --checks not_a_server_error \
    --phases examples,coverage,fuzzing \
    --max-examples "${ST_MAX_EXAMPLES:-50}" \
    --workers 2 \
    --suppress-health-check all \
    --no-color
