#!/usr/bin/env bash
# The whole test suite: set-up (idempotent: .venv with the pinned set, Debian's chromium for
# the browser tests, oxygen-icon-theme for the image-folder tests and dataset-fashion-mnist for the
# Fashion-MNIST tests, installed when missing),
# then pytest. Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
bash scripts/need_chromium.sh
bash scripts/need_icons.sh
bash scripts/need_fashion.sh
export TF_CPP_MIN_LOG_LEVEL=3
exec .venv/bin/python -m pytest "$@"
