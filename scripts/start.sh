#!/usr/bin/env bash
# Set-up (idempotent), then open the explorer on the bundled demo run. Extra arguments go to app.py.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export TF_CPP_MIN_LOG_LEVEL=3
exec .venv/bin/python app.py "$@"
