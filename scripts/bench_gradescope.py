"""Print the time and peak memory of grading one submission as Gradescope runs it, for each lab.

For each lab: write the lab's Gradescope bundle, unpack it into a temporary /autograder-like
tree and run ``run_autograder`` on the reference solution (:func:`autograder.bundle.try_locally`,
with this interpreter instead of /autograder/venv and the models this machine converted, as
setup.sh leaves them in the image), sampling the memory of the whole process tree: the grader,
the worker and the child running the submission. Memory is PSS (pages shared between the
worker and its child counted once), the figure a container's limit sees. Gradescope's default
container has less than 1 GB and half a CPU; the instructors' page states these figures.

Usage: python scripts/bench_gradescope.py [--labs lab1 lab2 lab3] [--repeat 2]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

from book import ROOT

sys.path.insert(0, str(ROOT))

from autograder import bundle  # noqa: E402
from autograder.specs import select  # noqa: E402
from book.models import resolve  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--labs", nargs="+", default=select("all"))
    parser.add_argument("--repeat", type=int, default=1, help="runs per lab (the figures are the worst run)")
    args = parser.parse_args()
    resolve("decoder")  # converted once here, as setup.sh does when the image is built
    print(f"One submission graded by run_autograder, {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}")
    print(f"{'lab':5} {'score':>9} {'wall s':>7} {'peak MiB (PSS, all processes)':>30}")
    with tempfile.TemporaryDirectory(prefix="llm-grade-gradescope-") as temporary:
        for lab in args.labs:
            runs = [bundle.try_reference(lab, Path(temporary) / f"run{i}") for i in range(args.repeat)]
            worst = max(runs, key=lambda r: r.seconds)
            peak = max(r.peak_bytes for r in runs) / 2**20
            score = f"{worst.results['score']:g}/{worst.results['max_score']:g}"
            print(f"{lab:5} {score:>9} {worst.seconds:7.1f} {peak:30.0f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
