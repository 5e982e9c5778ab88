#!/usr/bin/env bash
# Sets up the Python worker for development; safe to run again at any time.
#   .venv/            virtualenv with the worker (editable) and the dev tools
#   src/aiswarm_worker/pb/   gRPC code generated from ../../proto
set -euo pipefail
cd "$(dirname "$0")"

PYTHON="${PYTHON:-python3}"
if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
.venv/bin/pip install --quiet --disable-pip-version-check -e '.[dev]'
.venv/bin/python scripts/gen_proto.py
