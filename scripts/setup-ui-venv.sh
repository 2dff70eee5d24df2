#!/usr/bin/env bash
# Makes .venv-ui with Selenium, pinned (tests/ui/requirements.txt), for the dashboard test
# (tests/ui/dashboard_test.py; the browser and its driver are Debian's chromium and
# chromium-driver, which .ci/run installs).
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -m venv .venv-ui
.venv-ui/bin/pip install --quiet --upgrade pip
.venv-ui/bin/pip install --quiet -r tests/ui/requirements.txt
.venv-ui/bin/python -c "import selenium"
