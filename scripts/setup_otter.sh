#!/usr/bin/env bash
# The peer benchmark's grader (make bench-otter): otter-grader in a virtual environment of its own, .venv-otter,
# layered over the course's .venv (which it sees through a .pth file: torch, the course, the grader), so that
# otter's dependencies (nbconvert, ipywidgets...) never enter the environment the book and the tests use.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${VENV:-.venv}
OTTER_VENV=${OTTER_VENV:-.venv-otter}
OTTER_VERSION=${OTTER_VERSION:-7.0.0}

if [ ! -x "$OTTER_VENV/bin/python" ]; then
  echo "Creating $OTTER_VENV for otter-grader $OTTER_VERSION (the peer benchmark only)"
  "$VENV/bin/python" -m venv "$OTTER_VENV"
fi
course=$("$VENV/bin/python" -c "import sysconfig; print(sysconfig.get_paths()['purelib'])")
own=$("$OTTER_VENV/bin/python" -c "import sysconfig; print(sysconfig.get_paths()['purelib'])")
# addsitedir, not a plain path: the course's editable installs are .pth files of their own.
echo "import site; site.addsitedir('$course')" > "$own/zz_llm_internals_course.pth"
if ! "$OTTER_VENV/bin/python" -c "import otter, sys; sys.exit(otter.__version__ != '$OTTER_VERSION')" 2>/dev/null; then
  "$OTTER_VENV/bin/python" -m pip install --quiet --disable-pip-version-check "otter-grader==$OTTER_VERSION"
fi
"$OTTER_VENV/bin/python" -c "import otter, torch, autograder; print(f'otter-grader {otter.__version__}, torch {torch.__version__}')"
