#!/usr/bin/env bash
# Makes .venv-st with schemathesis (pinned) for scripts/schemathesis.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -m venv .venv-st
.venv-st/bin/pip install --quiet --upgrade pip
.venv-st/bin/pip install --quiet "schemathesis==4.32.5"
.venv-st/bin/schemathesis --version
