"""Print the time and peak memory of grading one submission as Gradescope runs it, for each lab.

For each lab: write the lab's Gradescope bundle, unpack it into a temporary /autograder-like
tree, put the reference solution in submission/, and run ``run_autograder`` (with this
interpreter instead of /autograder/venv) while sampling the memory of the whole process tree:
the grader, the worker (zygote) and the child running the submission. Memory is PSS (pages
shared between the zygote and its child counted once), the figure a container's limit sees.
Gradescope's default container has less than 1 GB and half a CPU; the instructors' page
states these figures.

Usage: python scripts/bench_gradescope.py [--labs lab1 lab2 lab3] [--repeat 2]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from autograder import bundle  # noqa: E402
from book.models import cache_dir, resolve  # noqa: E402
from autograder.specs import load, select  # noqa: E402
from tests.test_autograder_bundle import unpack  # noqa: E402


def measure(lab: str, workspace: Path) -> dict:
    """Grade the reference solution of ``lab`` with run_autograder; wall seconds, peak PSS and the score."""
    root = unpack(bundle.write_bundle(workspace / f"{lab}.zip", lab), workspace / lab)
    reference = ROOT / load(lab).LAB.reference
    (root / "submission" / reference.name).write_bytes(reference.read_bytes())
    (root / "submission_metadata.json").write_text(json.dumps({"users": [{"email": "bench@example.edu"}]}))
    # The converted SmolLM2 that setup.sh leaves in the image: this machine's, converted already.
    env = dict(os.environ, AUTOGRADER_ROOT=str(root), AUTOGRADER_PYTHON=sys.executable,
               LLM_INTERNALS_CACHE=str(cache_dir()))
    started = time.perf_counter()
    process = subprocess.Popen([str(root / "run_autograder")], env=env)
    peak = 0
    while process.poll() is None:  # this script's own memory is not counted: only run_autograder's tree
        peak = max(peak, tree_pss(process.pid))
        time.sleep(0.1)
    seconds = time.perf_counter() - started
    if process.returncode != 0:
        raise SystemExit(f"run_autograder failed for {lab} (exit code {process.returncode})")
    data = json.loads((root / "results" / "results.json").read_text())
    return {"seconds": seconds, "peak_mib": peak / 2**20, "score": data["score"], "max_score": data["max_score"],
            "grading_seconds": data.get("execution_time", 0)}


def tree_pss(pid: int) -> int:
    """The proportional memory of process ``pid`` and all its descendants, in bytes (0 once it has ended)."""
    import psutil

    try:
        root = psutil.Process(pid)
        processes = [root] + root.children(recursive=True)
    except psutil.Error:
        return 0
    total = 0
    for process in processes:
        try:
            total += process.memory_full_info().pss
        except psutil.Error:
            pass
    return total


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--labs", nargs="+", default=select("all"))
    parser.add_argument("--repeat", type=int, default=1, help="runs per lab (the figures are the worst run)")
    args = parser.parse_args()
    print(f"One submission graded by run_autograder, {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}")
    print(f"{'lab':5} {'score':>9} {'wall s':>7} {'of which grading s':>18} {'peak MiB (PSS, all processes)':>30}")
    resolve("decoder")  # converted once here, as setup.sh does when the image is built
    with tempfile.TemporaryDirectory(prefix="llm-grade-gradescope-") as temporary:
        for lab in args.labs:
            runs = [measure(lab, Path(temporary) / f"run{i}") for i in range(args.repeat)]
            worst = max(runs, key=lambda r: r["seconds"])
            peak = max(r["peak_mib"] for r in runs)
            print(f"{lab:5} {worst['score']:>4g}/{worst['max_score']:<4g} {worst['seconds']:7.1f} "
                  f"{worst['grading_seconds']:18d} {peak:30.0f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
