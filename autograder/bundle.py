"""``bundle``: write the Gradescope autograder zip of a lab: one zip per lab, named after it.

Gradescope builds one container image per assignment from a zip whose root holds ``setup.sh``
(run once, as root, when the image is built) and ``run_autograder`` (run for every submission,
with the student's files in ``/autograder/submission``; it must write
``/autograder/results/results.json``). A Gradescope assignment is one lab, so ``bundle`` writes
one zip per lab (``lab1-autograder.zip``...: a lab 1 assignment grades out of lab 1's points);
``--combined`` writes one zip for every lab instead (``all-labs-autograder.zip``). A zip holds::

    setup.sh          installs Python, then exactly what grading imports (constraints.txt) with
                      --no-deps, CPU torch from PyTorch's CPU index, the course from the copy
                      below; converts SmolLM2 once if the lab uses it; runs the self-test (the
                      image is not built if the reference solutions do not score full marks)
    constraints.txt   ``name==version`` for every distribution grading the lab imports, at the
                      versions of the environment the bundle was written in (:mod:`autograder.requirements`)
    run_autograder    grades /autograder/submission for the bundle's lab(s) and writes results.json
    bundle.env        the lab(s), the limits, the torch version and index, read by both scripts
    secret            the course secret (``--secret-file``, else the course's own, :mod:`autograder.seeding`):
                      hidden inputs are drawn from it and the student's email; readable by root only
    course/           the course's sources: pyproject.toml and instructor/pyproject.toml, book/, solutions/,
                      autograder/, labs/*.ipynb

What the student sees is only what the grader writes: ``run_autograder`` sends the grader's own
output to a log file beside the results, the student's printed output is captured inside the
worker and shown (as data) only in the test feedback, and when the grader itself fails the
script writes a results.json that says so, with zero points, instead of nothing.

    llm-grade bundle --lab lab1                  # lab1-autograder.zip
    llm-grade bundle                             # lab1-, lab2- and lab3-autograder.zip
    llm-grade bundle --lab all --combined        # all-labs-autograder.zip
    llm-grade try lab1-autograder.zip alice.ipynb   # run it on a submission first (autograder.trial)
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

TORCH_INDEX_URL = "https://download.pytorch.org/whl/cpu"  # PyPI's default Linux torch is the multi-GB CUDA build
COMBINED = "all-labs"  # the name of a --combined zip: all-labs-autograder.zip
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

# (AUTOGRADER_SKIP_SYSTEM=1: a trial on a machine that has them already, as `make bench-bundle-setup` runs it.)
if [ -z "${AUTOGRADER_SKIP_SYSTEM:-}" ] && command -v apt-get >/dev/null 2>&1; then
  apt-get update -qq
  # bubblewrap isolates the worker where the container allows it; the grader says so when it does not.
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3 python3-venv python3-pip bubblewrap >/dev/null
fi
python3 -m venv "$ROOT/venv"
pip=("$ROOT/venv/bin/python" -m pip install --quiet --disable-pip-version-check --no-deps)
# CPU torch (a grading container has no GPU), at the version of constraints.txt.
"${pip[@]}" -c "$SOURCE/constraints.txt" torch ${TORCH_INDEX_URL:+--index-url "$TORCH_INDEX_URL"}
# Everything else grading imports, at the exact versions it was tested with, and nothing more.
"${pip[@]}" -r "$SOURCE/constraints.txt"
"${pip[@]}" -e "$SOURCE/course" -e "$SOURCE/course/instructor"   # the runtime, then the grader and solutions

# Students' code runs as `nobody`: it must not read the secret, the solutions or the hidden tests.
chmod -R go-rwx "$SOURCE/course/solutions" "$SOURCE/course/autograder/specs"
[ ! -e "$SOURCE/secret" ] || chmod 600 "$SOURCE/secret"
chmod -R go+rX "$ROOT/venv"

# Converts SmolLM2 once if the lab uses it (into $LLM_INTERNALS_CACHE) and proves the image grades: the
# reference solutions must score full marks and the lab stubs zero, or the image is not built.
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
    """``bundle.env``: what both scripts read (TORCH_INDEX_URL may be overridden from outside: a trial without it)."""
    values = {
        "LAB": labs, "CALL_SECONDS": f"{limits.call_seconds:g}",
        "SUBMISSION_SECONDS": f"{limits.submission_seconds:g}", "MEMORY_GB": f"{limits.memory_bytes / 2**30:g}",
    }
    lines = [f"{key}={shlex.quote(value)}" for key, value in values.items()]
    lines.append(f'TORCH_INDEX_URL="${{TORCH_INDEX_URL-{TORCH_INDEX_URL}}}"')
    return "\n".join(lines) + "\n"


def _add(archive: zipfile.ZipFile, name: str, data: bytes, mode: int = 0o644) -> None:
    info = zipfile.ZipInfo(name, date_time=(2026, 1, 1, 0, 0, 0))  # fixed: the same sources give the same zip
    info.external_attr = (stat.S_IFREG | mode) << 16
    info.compress_type = zipfile.ZIP_DEFLATED
    archive.writestr(info, data)


def zip_name(labs: str) -> str:
    """The file name of a bundle: ``lab1-autograder.zip``, or ``all-labs-autograder.zip`` for every lab."""
    return f"{COMBINED if labs == 'all' else labs}-autograder.zip"


def write_bundle(out: Path, labs: str = "all", limits: Limits = Limits(), secret: str | None = None,
                 root: Path = ROOT, constraints: str | None = None) -> Path:
    """Write the Gradescope zip for ``labs`` ("lab1", ..., or "all": every lab in one zip) to ``out``; returns ``out``.

    ``constraints`` is the text of constraints.txt (default: measured here, :func:`autograder.requirements.constraints`).
    """
    from autograder import requirements

    chosen = specs.select(labs)  # an unknown lab fails here, with the choices
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        _add(archive, "setup.sh", SETUP_SH.encode(), EXECUTABLE)
        _add(archive, "run_autograder", RUN_AUTOGRADER.encode(), EXECUTABLE)
        _add(archive, "bundle.env", environment(labs, limits).encode())
        _add(archive, "constraints.txt", (constraints or requirements.constraints(chosen)).encode())
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
    peak_bytes: int  # memory of run_autograder and every process under it (the grader, the worker, its children),
    # each physical page once (autograder.bench.tree_resident): what the container holds
    root: Path


# The memory of Gradescope's default autograder container ("768MB", with 0.5 CPU), read the strict way: 768 million bytes.
GRADESCOPE_DEFAULT_MEMORY = 768 * 10**6


def try_locally(archive: Path, submission: Path, workspace: Path, email: str = "student@example.edu",
                python: str | None = None, env: dict | None = None, cpus: str | None = None) -> LocalRun:
    """Run ``archive``'s run_autograder on ``submission`` as Gradescope would, with this machine's Python and models.

    ``submission`` is a file or a folder of files (what a student uploads); paths may be relative.
    ``python`` replaces /autograder/venv/bin/python (default: this interpreter, which must have
    the course installed); the converted models are this machine's (``LLM_INTERNALS_CACHE``).
    ``cpus`` ("0") runs it on those CPUs only (``taskset -c``), as a container with one CPU or less would.
    """
    import json
    import os
    import shutil
    import subprocess
    import time

    from autograder.bench import tree_resident
    from book.models import cache_dir

    archive, submission, workspace = (Path(p).resolve() for p in (archive, submission, workspace))
    if not archive.is_file():
        raise FileNotFoundError(f"{archive} does not exist: write it first with llm-grade bundle --lab <lab>.")
    if not submission.exists():
        raise FileNotFoundError(f"{submission} does not exist: give a notebook, a .py file or a folder of them.")
    root = unpack(archive, workspace)
    if submission.is_dir():
        shutil.copytree(submission, root / "submission", dirs_exist_ok=True)
    else:
        shutil.copy2(submission, root / "submission" / submission.name)  # its modification time too (the newest wins)
    (root / "submission_metadata.json").write_text(json.dumps({"users": [{"email": email}]}))
    environment = dict(os.environ, AUTOGRADER_ROOT=str(root), AUTOGRADER_PYTHON=python or sys.executable,
                       LLM_INTERNALS_CACHE=str(cache_dir().resolve()), **(env or {}))
    started = time.perf_counter()
    command = [str(root / "run_autograder")]
    if cpus is not None:
        taskset = shutil.which("taskset")
        if taskset is None:
            raise FileNotFoundError("taskset is not installed (util-linux): it runs the bundle on one CPU; install it, "
                                    "or leave cpus out.")
        command = [taskset, "-c", cpus] + command
    process = subprocess.Popen(command, env=environment, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)
    peak = 0
    while process.poll() is None:
        peak = max(peak, tree_resident(process.pid))
        time.sleep(0.1)
    seconds = time.perf_counter() - started
    out, err = process.communicate()
    if process.returncode != 0 or out:
        raise RuntimeError(f"run_autograder exited with {process.returncode} and printed {out!r} {err!r}")
    results = json.loads((root / "results" / "results.json").read_text())
    return LocalRun(results, seconds, peak, root)


def try_reference(lab: str, workspace: Path, secret: str | None = None, cpus: str | None = None) -> LocalRun:
    """Write ``lab``'s bundle and grade its reference solution with it (:func:`try_locally`, on ``cpus``): the figures
    of one submission."""
    archive = write_bundle(Path(workspace) / zip_name(lab), lab, secret=secret)
    return try_locally(archive, ROOT / specs.load(lab).LAB.reference, Path(workspace) / lab, cpus=cpus)


def try_mistakes(lab: str, workspace: Path, secret: str | None = None,
                 cpus: str | list[str] | None = None) -> dict[str, LocalRun]:
    """Grade each classic mistake of ``lab`` (:data:`autograder.bench.MUTANTS`) with its bundle, as :func:`try_reference`
    does the reference: a faulty submission can cost more memory than a correct one (the grader then computes what
    the known mistakes give, to name the likely cause).

    ``cpus`` as in :func:`try_locally`; a list of CPU sets (``["0", "1"]``) grades that many mistakes side by side,
    each on a set of its own. Their peak memory is what each alone needs (:func:`autograder.bench.tree_resident`
    counts a page two runs share in both); their times are not those of a run alone. Where page frames cannot be
    read (not root), memory is PSS, which two runs side by side would split: they then run one at a time, on the
    first set."""
    import queue
    from concurrent.futures import ThreadPoolExecutor

    from autograder import bench

    workspace = Path(workspace)
    archive = write_bundle(workspace / zip_name(lab), lab, secret=secret)
    reference = (ROOT / specs.load(lab).LAB.reference).read_text()
    submissions = {}
    for mutant in bench.MUTANTS:
        text = bench.mutate(reference, mutant) if mutant.lab == lab else None
        if text is None:
            continue
        submission = workspace / f"{lab}-{mutant.name}" / Path(specs.load(lab).LAB.reference).name
        submission.parent.mkdir(parents=True, exist_ok=True)
        submission.write_text(text)
        submissions[mutant.name] = submission
    lanes = cpus if isinstance(cpus, list) and cpus else [cpus]
    if len(lanes) > 1 and not bench.frames_readable():
        lanes = lanes[:1]
    free = queue.SimpleQueue()  # the CPU sets no run holds now
    for lane in lanes:
        free.put(lane)

    def run(name: str) -> tuple[str, LocalRun]:
        lane = free.get()
        try:
            return name, try_locally(archive, submissions[name], workspace / f"{lab}-{name}-run", cpus=lane)
        finally:
            free.put(lane)

    with ThreadPoolExecutor(max_workers=len(lanes)) as pool:
        return dict(pool.map(run, submissions))


def failed_results(status: int) -> dict:
    """The results.json written when the grader itself failed: zero points and a sentence, nothing of the student's."""
    return {"score": 0.0, "visibility": "visible", "stdout_visibility": "hidden", "tests": [],
            "output": (f"The autograder failed (exit code {status}) and your submission was not graded. "
                       "This is not your mistake: tell your instructor, who can see the grader's log.")}


def main(argv: list[str] | None = None) -> int:
    import json

    parser = cli.parser("bundle")
    cli.lab_option(parser, ": one zip per lab")
    parser.add_argument("--combined", action="store_true",
                        help="with --lab all: one zip grading every lab (all-labs-autograder.zip), for a single "
                             "Gradescope assignment of every lab; students then see the points of all labs")
    parser.add_argument("--out", type=Path, default=Path("."),
                        help="the folder the zips go to (default: here), or the .zip to write when there is one")
    cli.secret_option(parser)
    cli.limits_options(parser)
    parser.add_argument("--failed", type=int, help=argparse.SUPPRESS)  # run_autograder: the grader failed
    parser.add_argument("--results", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.failed is not None:
        from autograder.results import atomic_write

        atomic_write(args.results, json.dumps(failed_results(args.failed), indent=1) + "\n")
        return 0
    labs = cli.labs_from(parser, args)
    if args.combined and args.lab != "all":
        parser.error("--combined puts every lab in one zip: use it with --lab all (the default), or drop it.")
    bundles = ["all"] if args.combined else labs
    if args.out.suffix == ".zip" and len(bundles) > 1:
        parser.error(f"{args.out} names one zip, but {len(bundles)} are written (one per lab): give --lab lab1, "
                     "or a folder with --out.")
    from autograder.spec import collect

    secret = cli.secret_from(parser, args)
    limits = cli.limits_from(args)
    for labs_of_zip in bundles:
        out = args.out if args.out.suffix == ".zip" else args.out / zip_name(labs_of_zip)
        write_bundle(out, labs_of_zip, limits, secret)
        graded = specs.select(labs_of_zip)
        points = sum(float(sum(t.points for t in collect(specs.load(lab)))) for lab in graded)
        print(f"Wrote {out} ({out.stat().st_size / 2**20:.1f} MiB): grades {', '.join(graded)} out of {points:g} points. "
              "Upload it as the autograder of that lab's Gradescope assignment (Configure Autograder, zip file upload, "
              "base image Ubuntu); try it first with: llm-grade try " + str(out) + " <submission>.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
