#!/usr/bin/env bash
# Create .venv and install aicc with its test tools. On a fresh Debian, python3 lacks the venv
# module until python3-venv is installed: install it then (as root, or through sudo).
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python3}"
if ! "$PYTHON" -c 'import sys; assert sys.version_info >= (3, 11)' 2>/dev/null; then
  echo "aicc needs Python 3.11 or newer as '$PYTHON' (set PYTHON=...)" >&2; exit 2
fi
if ! "$PYTHON" -m venv --help >/dev/null 2>&1 || ! "$PYTHON" -c 'import ensurepip' 2>/dev/null; then
  echo "installing Debian's python3-venv"
  sudo=""; [ "$(id -u)" = 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  ver=$("$PYTHON" -c 'import sys; print(f"{sys.version_info[0]}.{sys.version_info[1]}")')
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "python${ver}-venv" >/dev/null \
    || DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq python3-venv >/dev/null
fi
[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip
.venv/bin/python -m pip install -q -e '.[dev]'
