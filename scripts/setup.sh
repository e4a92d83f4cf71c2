#!/usr/bin/env bash
# Install everything ReelForge needs on a fresh machine: system fonts, a virtualenv, the app.
# Idempotent: a second run only checks.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3.11}
command -v "$PYTHON" >/dev/null || PYTHON=python3

# Debian packages: a CJK-capable font for text overlays, and Chromium for the dashboard's
# browser tests (Playwright drives /usr/bin/chromium; it never downloads a browser).
NEED=()
fc-list 2>/dev/null | grep -qi "wenquanyi\|noto sans cjk" || NEED+=(fonts-wqy-zenhei fontconfig)
[ -x /usr/bin/chromium ] || NEED+=(chromium)
if [ ${#NEED[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ]; then SUDO=""; else SUDO="sudo"; fi
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${NEED[@]}" >/dev/null
fi

if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
# torch first, pinned to the CPU wheel: otherwise pip resolves the multi-GB CUDA build.
.venv/bin/pip install -q --disable-pip-version-check "torch==2.13.0"
.venv/bin/pip install -q --disable-pip-version-check -e ".[test]"
echo "setup: ok ($(.venv/bin/python --version), $(.venv/bin/reelforge --help >/dev/null && echo reelforge CLI ready))"
