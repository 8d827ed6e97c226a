#!/usr/bin/env bash
# Debian's Chromium for the browser tests (Playwright drives it; no browser download).
# Present: nothing to do. Missing: install it with apt-get (through sudo when not root), or
# exit 1 saying what is missing and how to install it. The suite never passes by skipping it.
set -euo pipefail
if command -v chromium >/dev/null 2>&1 || [ -x /usr/bin/chromium ]; then
  exit 0
fi
fail() {
  echo "error: the browser tests need Debian's chromium, which is not installed ($1)." >&2
  echo "       Install it with: sudo apt-get install chromium   then run the tests again." >&2
  exit 1
}
command -v apt-get >/dev/null 2>&1 || fail "no apt-get on this machine to install it with"
SUDO=()
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null 2>&1 || fail "not root and no sudo to install it with"
  SUDO=(sudo)
fi
echo "installing Debian's chromium for the browser tests (apt-get install chromium)..." >&2
apt=("${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get -y -q)
"${apt[@]}" install chromium >/dev/null 2>&1 \
  || { "${apt[@]}" update >/dev/null && "${apt[@]}" install chromium >/dev/null; } \
  || fail "apt-get install chromium failed"
command -v chromium >/dev/null 2>&1 || [ -x /usr/bin/chromium ] \
  || fail "apt-get finished but no chromium is on PATH"
