#!/usr/bin/env bash
# Debian's dataset-fashion-mnist: Fashion-MNIST's 70,000 IDX images under
# /usr/share/datasets/fashion-mnist, the second real data set (tests/test_fashion.py reads it and
# scores it with the Fashion-MNIST evaluator).
# Present: nothing to do. Missing: install it with apt-get (scripts/apt_install.sh: through sudo
# when not root), or exit 1 saying what is missing and how to install it.
set -euo pipefail
FASHION=/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz
if [ -f "$FASHION" ]; then
  exit 0
fi
exec bash "$(dirname "$0")/apt_install.sh" dataset-fashion-mnist "the Fashion-MNIST tests" "$FASHION"
