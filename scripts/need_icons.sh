#!/usr/bin/env bash
# Debian's oxygen-icon-theme: thousands of real PNG icons under /usr/share/icons/oxygen, the
# colour image folder tests/test_folders.py trains on (data no one here made).
# Present: nothing to do. Missing: install it with apt-get (through sudo when not root), or
# exit 1 saying what is missing and how to install it. The suite never passes by skipping it.
set -euo pipefail
ICONS=/usr/share/icons/oxygen/base/32x32
if [ -d "$ICONS" ]; then
  exit 0
fi
fail() {
  echo "error: the image-folder tests need Debian's oxygen-icon-theme, which is not installed ($1)." >&2
  echo "       Install it with: sudo apt-get install oxygen-icon-theme   then run the tests again." >&2
  exit 1
}
command -v apt-get >/dev/null 2>&1 || fail "no apt-get on this machine to install it with"
SUDO=()
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null 2>&1 || fail "not root and no sudo to install it with"
  SUDO=(sudo)
fi
echo "installing Debian's oxygen-icon-theme for the image-folder tests (apt-get install oxygen-icon-theme)..." >&2
apt=("${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get -y -q)
"${apt[@]}" install oxygen-icon-theme >/dev/null 2>&1 \
  || { "${apt[@]}" update >/dev/null && "${apt[@]}" install oxygen-icon-theme >/dev/null; } \
  || fail "apt-get install oxygen-icon-theme failed"
[ -d "$ICONS" ] || fail "apt-get finished but $ICONS is missing"
