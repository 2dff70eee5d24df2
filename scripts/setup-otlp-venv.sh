#!/usr/bin/env bash
# Makes .venv-otlp with the OpenTelemetry protocol types, pinned (tests/otlp/requirements.txt):
# the trace test's OTLP receiver (tests/otlp/receiver.py) decodes the server's spans with them.
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -m venv .venv-otlp
.venv-otlp/bin/pip install --quiet --upgrade pip
.venv-otlp/bin/pip install --quiet -r tests/otlp/requirements.txt
.venv-otlp/bin/python -c "import opentelemetry.proto.collector.trace.v1.trace_service_pb2"
