#!/usr/bin/env bash
# Fails when the environment holds CUDA packages: they mean torch was resolved without the
# torch==2.13.0 pin (several GB, useless on these CPU machines).
set -euo pipefail
pip="${1:-pip}"
if "$pip" list 2>/dev/null | grep -Ei '^(nvidia-|cuda-)' ; then
  echo "error: CUDA packages were installed (see above); install torch==2.13.0 first" >&2
  exit 1
fi
