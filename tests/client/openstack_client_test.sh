#!/usr/bin/env bash
# Drives a live Qinling-compatible server with the real OpenStack client and
# python-qinlingclient 5.1.1 (no Keystone: OS_AUTH_TYPE=none, OS_ENDPOINT=<url>).
#
# Usage: tests/client/openstack_client_test.sh http://127.0.0.1:PORT
#   OSC_VENV     bin dir of the venv holding `openstack` (default /tmp/osc-venv/bin);
#                make it from tests/client/requirements.txt (scripts/setup-client-venv.sh)
#   CMD_TIMEOUT  seconds allowed for one `openstack` command (default 120)
#
# Prints one `ok - ...` / `not ok - ...` line per assertion, then `N passed, M failed`;
# exits non-zero when anything failed.
set -euo pipefail

if [ $# -lt 1 ] || [ -z "$1" ]; then
    echo "usage: $0 SERVER_URL" >&2
    exit 2
fi
URL="${1%/}"
OSC_VENV="${OSC_VENV:-/tmp/osc-venv/bin}"
OPENSTACK="$OSC_VENV/openstack"
CMD_TIMEOUT="${CMD_TIMEOUT:-120}"
PY="${PYTHON:-python3}"

if [ ! -x "$OPENSTACK" ]; then
    echo "not ok - openstack client found at $OPENSTACK"
    echo "0 passed, 1 failed"
    exit 1
fi

# Only our two settings: no clouds.yaml / stray OS_* / QINLING_URL from the caller.
while IFS= read -r var; do unset "$var"; done < <(env | sed -n 's/^\(OS_[A-Za-z0-9_]*\)=.*/\1/p')
unset QINLING_URL OS_CLOUD || true
export OS_AUTH_TYPE=none
export OS_ENDPOINT="$URL"

WORK="$(mktemp -d)"
# The client zips --file into $TMPDIR/<basename>.zip: keep that private to this run.
export TMPDIR="$WORK"
cd "$WORK"

PASS=0
FAIL=0
RUNTIME_ID=""
FUNCTION_ID=""
FUNCTION_DELETED=0
RUNTIME_DELETED=0
WEBHOOK_ID=""
ALIAS_NAME=""

cleanup() {
    # Best effort, so that a failed run leaves nothing behind on a long-lived server.
    if [ -n "$WEBHOOK_ID" ]; then timeout 30 "$OPENSTACK" webhook delete "$WEBHOOK_ID" >/dev/null 2>&1 || true; fi
    if [ -n "$ALIAS_NAME" ]; then timeout 30 "$OPENSTACK" function alias delete "$ALIAS_NAME" >/dev/null 2>&1 || true; fi
    if [ -n "$FUNCTION_ID" ] && [ "$FUNCTION_DELETED" -eq 0 ]; then
        timeout 30 "$OPENSTACK" function delete "$FUNCTION_ID" >/dev/null 2>&1 || true
    fi
    if [ -n "$RUNTIME_ID" ] && [ "$RUNTIME_DELETED" -eq 0 ]; then
        timeout 30 "$OPENSTACK" runtime delete "$RUNTIME_ID" >/dev/null 2>&1 || true
    fi
    cd /
    rm -rf "$WORK"
}
trap cleanup EXIT

# Note: `-f json` of list commands keys rows by column title ("Id", "Name", ...);
# show/create commands key by field name ("id", "name", ...).

# --- helpers -----------------------------------------------------------------------------

# osc ARGS...: runs `openstack ARGS...`; sets RC, OUT (stdout), ERR (stderr), CMD.
osc() {
    CMD="openstack $*"
    RC=0
    timeout "$CMD_TIMEOUT" "$OPENSTACK" "$@" >"$WORK/.out" 2>"$WORK/.err" || RC=$?
    OUT="$(cat "$WORK/.out")"
    ERR="$(cat "$WORK/.err")"
    if [ "$RC" -eq 124 ]; then ERR="$ERR
(timed out after ${CMD_TIMEOUT}s)"; fi
}

indent() { sed 's/^/#   /'; }

ok() {
    echo "ok - $1"
    PASS=$((PASS + 1))
}

# not_ok WHAT [DETAIL]: prints the failure, the last command and its output.
not_ok() {
    echo "not ok - $1"
    FAIL=$((FAIL + 1))
    {
        if [ -n "${2:-}" ]; then echo "$2"; fi
        echo "command: ${CMD:-}"
        echo "exit status: ${RC:-}"
        echo "stdout:"
        printf '%s\n' "${OUT:-}"
        echo "stderr:"
        printf '%s\n' "${ERR:-}"
    } | indent
}

# check WHAT PYTHON_EXPR: evaluates PYTHON_EXPR with `d` = JSON parsed from $OUT (None if
# $OUT is not JSON) and `out` = $OUT; ok if it is truthy.
check() {
    local what="$1" expr="$2" res
    res="$(OUT="$OUT" "$PY" -c '
import json, os, sys
out = os.environ["OUT"]
try:
    d = json.loads(out)
except ValueError:
    d = None
try:
    r = eval(sys.argv[1], {"json": json, "d": d, "out": out, "args": sys.argv[2:]})
except Exception as e:
    print("assertion raised %s: %s" % (type(e).__name__, e))
    sys.exit(1)
if not r:
    print("assertion false: %s %s" % (sys.argv[1], sys.argv[2:]))
    sys.exit(1)
' "$expr" "${@:3}" 2>&1)" && { ok "$what"; return 0; }
    not_ok "$what" "$res"
    return 1
}

# field NAME: prints d[NAME] of the JSON object in $OUT (empty if absent/not JSON).
field() {
    OUT="$OUT" "$PY" -c '
import json, os, sys
try:
    v = json.loads(os.environ["OUT"]).get(sys.argv[1])
except Exception:
    v = None
print("" if v is None else v)
' "$1"
}

# cmd_ok WHAT: ok if the last command exited 0.
cmd_ok() {
    if [ "$RC" -eq 0 ]; then ok "$1"; return 0; fi
    not_ok "$1"
    return 1
}

finish() {
    echo "$PASS passed, $FAIL failed"
    if [ "$FAIL" -gt 0 ]; then exit 1; fi
    exit 0
}

# bail WHAT: a step the rest depends on failed; stop here.
bail() {
    echo "# cannot continue: $1"
    finish
}

# --- runtime -----------------------------------------------------------------------------

osc runtime create --name python3 python3 -f json
if cmd_ok "runtime create exits 0"; then
    RUNTIME_ID="$(field id)"
    check "runtime create returns the runtime" \
        'd["id"] and d["name"] == "python3" and d["image"] == "python3" and d["status"] in ("creating", "available")' || true
fi
[ -n "$RUNTIME_ID" ] || bail "no runtime id"

status=""
deadline=$((SECONDS + 20))
while :; do
    osc runtime show "$RUNTIME_ID" -f json
    status="$(field status)"
    if [ "$RC" -ne 0 ] || [ "$status" = "available" ] || [ "$status" = "error" ] || [ "$SECONDS" -ge "$deadline" ]; then
        break
    fi
    sleep 1
done
if [ "$RC" -eq 0 ] && [ "$status" = "available" ]; then
    ok "runtime becomes available"
else
    not_ok "runtime becomes available" "last status: '$status'"
    bail "runtime not available"
fi

# --- function ----------------------------------------------------------------------------

printf '%s\n' \
    "def main(name='World', **kwargs):" \
    "    print('Hello, %s' % name)" \
    "    return 'Hello, %s' % name" >hello.py

osc function create --runtime "$RUNTIME_ID" --entry hello.main --file hello.py --name hello -f json
if cmd_ok "function create exits 0"; then
    FUNCTION_ID="$(field id)"
    # `code` is shown as an object (or its repr/JSON string, depending on the formatter).
    check "function create returns the function" \
        'd["id"] and d["name"] == "hello" and d["runtime_id"] == args[0] and d["entry"] == "hello.main" and "package" in str(d["code"]) and d["timeout"] == 5' \
        "$RUNTIME_ID" || true
fi
[ -n "$FUNCTION_ID" ] || bail "no function id"

osc function show "$FUNCTION_ID" -f json
cmd_ok "function show exits 0" &&
    check "function show returns the function" \
        'd["id"] == args[0] and d["name"] == "hello" and d["entry"] == "hello.main" and d["runtime_id"] == args[1]' \
        "$FUNCTION_ID" "$RUNTIME_ID" || true

osc function list -f json
cmd_ok "function list exits 0" &&
    check "function list contains the function" \
        'any(f.get("Id") == args[0] for f in d)' "$FUNCTION_ID" || true

osc function download "$FUNCTION_ID" -o downloaded.zip
if cmd_ok "function download exits 0"; then
    RC=0
    OUT="$("$PY" -m zipfile -l downloaded.zip 2>&1)" || RC=$?
    ERR=""
    CMD="$PY -m zipfile -l downloaded.zip"
    if [ "$RC" -eq 0 ] && grep -q 'hello\.py' <<<"$OUT"; then
        ok "downloaded package is a zip holding hello.py"
    else
        not_ok "downloaded package is a zip holding hello.py"
    fi
fi

# --- sync execution ----------------------------------------------------------------------

EXECUTION_ID=""
osc function execution create --function "$FUNCTION_ID" --input '{"name": "Qinling"}' -f json
if cmd_ok "execution create exits 0"; then
    EXECUTION_ID="$(field id)"
    check "sync execution succeeded" \
        'd["status"] == "success" and d["function_id"] == args[0]' "$FUNCTION_ID" || true
    check "sync execution result contains Hello, Qinling" \
        '"Hello, Qinling" in str(d["result"])' || true
fi

if [ -n "$EXECUTION_ID" ]; then
    osc function execution log show "$EXECUTION_ID"
    cmd_ok "execution log show exits 0" &&
        check "execution log has start marker, output and end marker" \
            '("Start execution: %s" % args[0]) in out and "Hello, Qinling" in out and ("Finished execution: %s" % args[0]) in out' \
            "$EXECUTION_ID" || true

    osc function execution show "$EXECUTION_ID" -f json
    cmd_ok "execution show exits 0" &&
        check "execution show returns the execution" \
            'd["id"] == args[0] and d["status"] == "success"' "$EXECUTION_ID" || true

    osc function execution list -f json
    cmd_ok "execution list exits 0" &&
        check "execution list contains the execution" \
            'any(e.get("Id") == args[0] for e in d)' "$EXECUTION_ID" || true
fi

# --- async execution ---------------------------------------------------------------------

ASYNC_ID=""
osc function execution create --function "$FUNCTION_ID" --input '{"name": "Async"}' --async -f json
if cmd_ok "async execution create exits 0"; then
    ASYNC_ID="$(field id)"
    check "async execution is accepted" \
        'd["id"] and d["sync"] in (False, "False", "false") and d["status"] in ("running", "success")' || true
fi
if [ -n "$ASYNC_ID" ]; then
    status=""
    deadline=$((SECONDS + 20))
    while :; do
        osc function execution show "$ASYNC_ID" -f json
        status="$(field status)"
        if [ "$RC" -ne 0 ] || [ "$status" != "running" ] || [ "$SECONDS" -ge "$deadline" ]; then
            break
        fi
        sleep 1
    done
    if [ "$RC" -eq 0 ] && [ "$status" = "success" ]; then
        ok "async execution finishes with success"
        check "async execution result contains Hello, Async" '"Hello, Async" in str(d["result"])' || true
    else
        not_ok "async execution finishes with success" "last status: '$status'"
    fi
fi

# --- workers (admin) --------------------------------------------------------------------

if [ -n "$FUNCTION_ID" ]; then
    osc function scaleup "$FUNCTION_ID" --count 2
    cmd_ok "function scaleup exits 0"
    osc function worker list "$FUNCTION_ID" -f json
    if cmd_ok "function worker list exits 0"; then
        check "function worker list shows the workers" \
            'len(d) >= 2 and all(w["Function_id"] == args[0] for w in d)' "$FUNCTION_ID" || true
    fi
    osc function scaledown "$FUNCTION_ID" --count 10
    cmd_ok "function scaledown exits 0"
    osc function worker list "$FUNCTION_ID" -f json
    check "scaledown keeps exactly one worker" 'len(d) == 1' || true
    osc function detach "$FUNCTION_ID"
    cmd_ok "function detach exits 0"
    osc function worker list "$FUNCTION_ID" -f json
    check "detach leaves no worker" 'd == []' || true
fi

# --- versions, aliases, webhooks, jobs ---------------------------------------------------

osc function version create "$FUNCTION_ID" --description v1 -f json
if cmd_ok "function version create exits 0"; then
    check "function version create returns version 1" \
        'd["version_number"] == 1 and d["function_id"] == args[0] and d["description"] == "v1"' "$FUNCTION_ID" || true
fi
osc function version list "$FUNCTION_ID" -f json
cmd_ok "function version list exits 0" &&
    check "function version list shows version 1" \
        'len(d) == 1 and str(d[0].get("Version_number", d[0].get("Version Number"))) == "1"' || true

osc function execution create --function "$FUNCTION_ID" --function-version 1 --input '{"name": "Version"}' -f json
cmd_ok "execution of version 1 exits 0" &&
    check "execution of version 1 succeeds and records the version" \
        'd["status"] == "success" and str(d["function_version"]) == "1" and "Hello, Version" in str(d["result"])' || true

osc function alias create hello-v1 --function "$FUNCTION_ID" --function-version 1 --description prod -f json
if cmd_ok "function alias create exits 0"; then
    ALIAS_NAME=hello-v1
    check "function alias create returns the alias" \
        'd["name"] == "hello-v1" and d["function_id"] == args[0] and str(d["function_version"]) == "1"' "$FUNCTION_ID" || true
fi
osc function execution create --function-alias hello-v1 --input '{"name": "Alias"}' -f json
cmd_ok "execution through the alias exits 0" &&
    check "execution through the alias runs version 1" \
        'd["status"] == "success" and d["function_alias"] == "hello-v1" and str(d["function_version"]) == "1"' || true

WEBHOOK_URL=""
osc webhook create --function "$FUNCTION_ID" --function-version 1 -f json
if cmd_ok "webhook create exits 0"; then
    WEBHOOK_ID="$(field id)"
    WEBHOOK_URL="$(field webhook_url)"
    check "webhook create returns its URL on this server" \
        'd["webhook_url"] == "%s/v1/webhooks/%s/invoke" % (args[0], d["id"]) and str(d["function_version"]) == "1"' "$URL" || true
fi
if [ -n "$WEBHOOK_URL" ]; then
    CMD="curl -X POST -d name=curl $WEBHOOK_URL"
    RC=0
    OUT="$(curl -sS -w '\n%{http_code}' -X POST -d name=curl "$WEBHOOK_URL" 2>"$WORK/.err")" || RC=$?
    ERR="$(cat "$WORK/.err")"
    code="$(tail -n1 <<<"$OUT")"
    OUT="$(sed '$d' <<<"$OUT")"
    if [ "$RC" -eq 0 ] && [ "$code" = "202" ]; then ok "webhook invoke with curl answers 202"; else not_ok "webhook invoke with curl answers 202" "HTTP $code"; fi
    HOOK_EXEC="$(field execution_id)"
    status=""
    deadline=$((SECONDS + 20))
    while [ -n "$HOOK_EXEC" ]; do
        osc function execution show "$HOOK_EXEC" -f json
        status="$(field status)"
        if [ "$RC" -ne 0 ] || [ "$status" != "running" ] || [ "$SECONDS" -ge "$deadline" ]; then break; fi
        sleep 1
    done
    check "the webhook's execution succeeded, made by the webhook" \
        'd["status"] == "success" and d["description"] == "Created by Webhook " + args[0] and str(d["function_version"]) == "1" and "Hello, curl" in str(d["result"])' \
        "$WEBHOOK_ID" || true
    osc function execution list --filter "description=has:$WEBHOOK_ID" -f json
    check "exactly one execution carries the webhook id" 'len(d) == 1 and d[0]["Id"] == args[0]' "$HOOK_EXEC" || true
fi

FIRST="$("$PY" -c 'import datetime; print((datetime.datetime.utcnow() + datetime.timedelta(seconds=3)).strftime("%Y-%m-%dT%H:%M:%SZ"))')"
osc job create --function "$FUNCTION_ID" --function-version 1 --name once --first-execution-time "$FIRST" --function-input '{"name": "Job"}' -f json
JOB_ID=""
if cmd_ok "job create exits 0"; then
    JOB_ID="$(field id)"
    check "job create returns a running one-time job" \
        'd["status"] == "running" and str(d["count"]) == "1" and d["name"] == "once"' || true
fi
if [ -n "$JOB_ID" ]; then
    status=""
    deadline=$((SECONDS + 30))
    while :; do
        osc job show "$JOB_ID" -f json
        status="$(field status)"
        if [ "$RC" -ne 0 ] || [ "$status" = "done" ] || [ "$SECONDS" -ge "$deadline" ]; then break; fi
        sleep 1
    done
    if [ "$status" = "done" ]; then ok "the one-time job fires and is done"; else not_ok "the one-time job fires and is done" "last status: '$status'"; fi
    osc function execution list --filter "description=has:$JOB_ID" -f json
    check "the job made exactly one execution" 'len(d) == 1' || true
    osc job list -f json
    cmd_ok "job list exits 0" && check "job list contains the job" 'any(j.get("Id") == args[0] for j in d)' "$JOB_ID" || true
fi

# An alias or webhook in use keeps its function; delete them first.
if [ -n "$WEBHOOK_ID" ]; then
    osc webhook delete "$WEBHOOK_ID"
    cmd_ok "webhook delete exits 0" && WEBHOOK_ID=""
fi
if [ -n "$ALIAS_NAME" ]; then
    osc function alias delete hello-v1
    cmd_ok "function alias delete exits 0" && ALIAS_NAME=""
fi

# --- errors ------------------------------------------------------------------------------

MISSING=00000000-0000-0000-0000-000000000000
osc function show "$MISSING"
if [ "$RC" -ne 0 ] && grep -qF "Function not found [id=$MISSING] (HTTP 404)" <<<"$OUT
$ERR"; then
    ok "function show of an unknown id fails with HTTP 404"
else
    not_ok "function show of an unknown id fails with HTTP 404" \
        "expected non-zero exit and: Function not found [id=$MISSING] (HTTP 404)"
fi

# --- deletes -----------------------------------------------------------------------------

osc function delete "$FUNCTION_ID"
if cmd_ok "function delete exits 0"; then
    FUNCTION_DELETED=1
    osc function list -f json
    cmd_ok "function list after delete exits 0" &&
        check "deleted function is gone from function list" \
            'isinstance(d, list) and not any(f.get("Id") == args[0] for f in d)' "$FUNCTION_ID" || true
fi

osc runtime delete "$RUNTIME_ID"
if cmd_ok "runtime delete exits 0"; then
    RUNTIME_DELETED=1
fi

finish
