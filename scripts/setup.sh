#!/usr/bin/env bash
# Create .venv and install the pinned set: requirements-dev.txt (the same pins as
# pyproject.toml's dependencies and its `dev` extra), then this checkout itself as an editable
# package (`pip install -e .`: the console scripts latent-explorer and latent-train).
# Idempotent and fast when done: it re-installs only when the requirement files, pyproject.toml
# or the checkout's location changed.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
req_hash=$({ pwd -P; cat pyproject.toml requirements.txt requirements-dev.txt; } | sha256sum | cut -c1-16)
if [ "$(cat .venv/.req-hash 2>/dev/null)" != "$req_hash" ]; then
  pip=(.venv/bin/python -m pip install -q --disable-pip-version-check)
  "${pip[@]}" -r requirements-dev.txt
  "${pip[@]}" --no-deps -e .
  echo "$req_hash" > .venv/.req-hash
fi
