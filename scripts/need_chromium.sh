#!/usr/bin/env bash
# Debian's Chromium for the browser tests (Playwright drives it; no browser download): its
# chromium-headless-shell package (the old headless mode, lighter per page than the full browser;
# tests/test_browser.py takes it when present, else the full chromium).
# Present: nothing to do. Missing: install it with apt-get (scripts/apt_install.sh: through sudo
# when not root), or exit 1 saying what is missing and how to install it.
set -euo pipefail
if [ -x /usr/lib/chromium/chromium-headless-shell ]; then
  exit 0
fi
exec bash "$(dirname "$0")/apt_install.sh" chromium-headless-shell "the browser tests" \
  /usr/lib/chromium/chromium-headless-shell
