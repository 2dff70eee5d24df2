#!/usr/bin/env bash
# Makes .venv-keystone with OpenStack Keystone from PyPI (pinned), for the keystone-mode tests
# (scripts/keystone.sh serves it). Takes about a minute.
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -m venv .venv-keystone
.venv-keystone/bin/pip install --quiet --upgrade pip
.venv-keystone/bin/pip install --quiet 'keystone==30.0.0'
.venv-keystone/bin/keystone-manage --version
