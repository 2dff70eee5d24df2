#!/usr/bin/env bash
# Makes .venv-osc with the real OpenStack client and python-qinlingclient 5.1.1, pinned.
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -m venv .venv-osc
.venv-osc/bin/pip install --quiet --upgrade pip
.venv-osc/bin/pip install --quiet -r tests/client/requirements.txt
.venv-osc/bin/openstack --version
