#!/usr/bin/env bash
# The layering invariants of ARCHITECTURE.md, checked over the real dependency graph
# (`cargo tree -e normal`: what each crate links, dev-dependencies aside). Fails naming the
# crate and the dependency that breaks a rule.
set -euo pipefail
cd "$(dirname "$0")/.."

fail=0
# forbid CRATE DEP...: CRATE must not depend, directly or not, on any DEP.
forbid() {
    local crate=$1; shift
    local deps
    deps=$(cargo tree --offline -e normal -p "$crate" --prefix none --format '{p}' 2>/dev/null \
        | awk '{print $1}' | sort -u) || { echo "check-deps: cargo tree failed for $crate"; exit 2; }
    [ -n "$deps" ] || { echo "check-deps: no dependency tree for $crate"; exit 2; }
    for dep in "$@"; do
        if grep -qx "$dep" <<<"$deps"; then
            echo "check-deps: $crate must not depend on $dep"
            fail=1
        fi
    done
}

executors="qinling-pool qinling-wasm qinling-sandbox wasmtime"
# The engine knows only the execution seam; the binary chooses executors. It knows spans
# only through qinling-types' SpanSink: the binary chooses the exporter.
forbid qinling-engine $executors qinling-otlp
# The HTTP edge knows the engine, no executor (and names no store: below).
forbid qinling-api $executors
# Executors and sandboxes never touch the store.
forbid qinling-executor qinling-store sqlx qinling-pool qinling-wasm qinling-sandbox
forbid qinling-pool qinling-store sqlx qinling-engine
forbid qinling-wasm qinling-store sqlx qinling-engine qinling-pool
forbid qinling-sandbox qinling-store sqlx qinling-engine qinling-pool qinling-executor
# The cluster is an executor around the node's own: no executor, no sandbox (and no SQL of
# its own: below).
forbid qinling-cluster $executors
# The CLI is an HTTP client: no server crate.
forbid qinling-cli qinling-engine qinling-store qinling-api qinling-pool qinling-wasm qinling-sandbox qinling-executor

# forbid_direct CRATE DEP...: CRATE must not name DEP among its own dependencies.
forbid_direct() {
    local crate=$1; shift
    local deps
    deps=$(cargo tree --offline -e normal -p "$crate" --depth 1 --prefix none --format '{p}' 2>/dev/null \
        | awk '{print $1}' | sort -u) || { echo "check-deps: cargo tree failed for $crate"; exit 2; }
    for dep in "$@"; do
        if grep -qx "$dep" <<<"$deps"; then
            echo "check-deps: $crate must not depend on $dep itself"
            fail=1
        fi
    done
}

# Only qinling-store contains SQL; only qinling-api (and the binary that serves it, and
# the CLI, a client) knows HTTP.
for crate in qinling-engine qinling-executor qinling-pool qinling-wasm qinling-sandbox \
        qinling-runtimes qinling-types; do
    forbid_direct "$crate" sqlx axum hyper http reqwest
done
forbid_direct qinling-api sqlx qinling-store
forbid_direct qinling-cluster sqlx qinling-store axum hyper reqwest

if [ "$fail" = 0 ]; then
    echo "check-deps: layering holds"
fi
exit "$fail"
