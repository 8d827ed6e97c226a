#!/usr/bin/env bash
# Debian's Chromium for the browser tests (Playwright drives it; no browser download).
# Present: nothing to do. Missing: install it with apt-get (scripts/apt_install.sh: through sudo
# when not root), or exit 1 saying what is missing and how to install it.
set -euo pipefail
if command -v chromium >/dev/null 2>&1 || [ -x /usr/bin/chromium ]; then
  exit 0
fi
exec bash "$(dirname "$0")/apt_install.sh" chromium "the browser tests" /usr/bin/chromium
