#!/usr/bin/env bash
# Debian's oxygen-icon-theme: thousands of real PNG icons under /usr/share/icons/oxygen, the
# colour image folder tests/test_folders.py trains on (data no one here made).
# Present: nothing to do. Missing: install it with apt-get (scripts/apt_install.sh: through sudo
# when not root), or exit 1 saying what is missing and how to install it.
set -euo pipefail
ICONS=/usr/share/icons/oxygen/base/32x32
if [ -d "$ICONS" ]; then
  exit 0
fi
exec bash "$(dirname "$0")/apt_install.sh" oxygen-icon-theme "the image-folder tests" "$ICONS"
