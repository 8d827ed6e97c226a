#!/usr/bin/env bash
# Install a Debian package the tests need, with apt-get (through sudo when not root), or exit 1
# saying what is missing and how to install it. The suite never passes by skipping it.
# Usage: apt_install.sh PACKAGE "what needs it" PATH   (PATH must exist once it is installed).
# Called by need_chromium.sh, need_icons.sh and need_fashion.sh when their package is missing.
set -euo pipefail
pkg=$1
purpose=$2
check=$3
fail() {
  echo "error: $purpose need Debian's $pkg, which is not installed ($1)." >&2
  echo "       Install it with: sudo apt-get install $pkg   then run the tests again." >&2
  exit 1
}
command -v apt-get >/dev/null 2>&1 || fail "no apt-get on this machine to install it with"
SUDO=()
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null 2>&1 || fail "not root and no sudo to install it with"
  SUDO=(sudo)
fi
echo "installing Debian's $pkg for $purpose (apt-get install $pkg)..." >&2
apt=("${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get -y -q)
"${apt[@]}" install "$pkg" >/dev/null 2>&1 \
  || { "${apt[@]}" update >/dev/null && "${apt[@]}" install "$pkg" >/dev/null; } \
  || fail "apt-get install $pkg failed"
[ -e "$check" ] || fail "apt-get finished but $check is missing"
