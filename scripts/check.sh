#!/usr/bin/env bash
# The static checks that keep the code's shape (ARCHITECTURE.md's invariants), run by CI
# before the tests: formatting, clippy with warnings as errors (the sandbox crate also
# denies undocumented unsafe blocks), and the layering of crates.
set -euo pipefail
cd "$(dirname "$0")/.."

echo "== cargo fmt --check"
cargo fmt --all --check

echo "== cargo clippy (warnings are errors)"
cargo clippy --workspace --all-targets --locked -- -D warnings

echo "== crate layering"
scripts/check-deps.sh
