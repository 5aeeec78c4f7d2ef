"""Print the time and peak memory of grading one submission as Gradescope runs it, for each lab.

For each lab: write the lab's Gradescope bundle, unpack it into a temporary /autograder-like
tree and run ``run_autograder`` on the reference solution (:func:`autograder.bundle.try_locally`,
with this interpreter instead of /autograder/venv and the models this machine converted, as
setup.sh leaves them in the image), sampling the memory of the whole process tree: the grader,
the worker and the child running the submission. Memory counts each physical page the tree maps
once (:func:`autograder.bench.tree_resident`: pages shared between the worker and its child
once, and in full those it shares with this script's own torch), what the container holds.
Each lab runs twice: on every CPU of this machine, and on one (``taskset -c 0``), closer to Gradescope's default
container (:data:`autograder.bundle.GRADESCOPE_DEFAULT_MEMORY`, half a CPU); the instructors'
page states these figures. Each classic mistake of the lab (:data:`autograder.bench.MUTANTS`) is
graded too, on one CPU: a faulty submission can peak higher than a correct one, since the grader
then computes what the known mistakes give to name the likely cause.

Usage: python scripts/bench_gradescope.py [--labs lab1 lab2 lab3] [--repeat 2] [--no-mistakes]
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
    parser.add_argument("--no-mistakes", dest="mistakes", action="store_false",
                        help="the reference solutions only, not also each lab's classic mistakes")
    args = parser.parse_args()
    resolve("decoder")  # converted once here, as setup.sh does when the image is built
    limit = bundle.GRADESCOPE_DEFAULT_MEMORY
    print(f"One submission graded by run_autograder, {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}; "
          f"Gradescope's default container: {limit / 1e6:.0f} MB ({limit / 2**20:.0f} MiB), half a CPU")
    print(f"{'lab':5} {'score':>9} {'wall s':>7} {'one CPU s':>10} {'peak MiB (all processes)':>25} {'fits':>5}  "
          "worst classic mistake (one CPU): s, peak MiB, fits")
    with tempfile.TemporaryDirectory(prefix="llm-grade-gradescope-") as temporary:
        for lab in args.labs:
            # every CPU of this machine, then one (taskset -c 0), as a container of a CPU or less runs it
            runs = {cpus: [bundle.try_reference(lab, Path(temporary) / f"run{i}-{cpus}", cpus=cpus)
                           for i in range(args.repeat)] for cpus in (None, "0")}
            worst = {cpus: max(found, key=lambda r: r.seconds) for cpus, found in runs.items()}
            peak = max(r.peak_bytes for found in runs.values() for r in found)
            score = f"{worst[None].results['score']:g}/{worst[None].results['max_score']:g}"
            line = (f"{lab:5} {score:>9} {worst[None].seconds:7.1f} {worst['0'].seconds:10.1f} {peak / 2**20:25.0f} "
                    f"{'yes' if peak <= limit else 'NO':>5}")
            if args.mistakes:
                mistakes = bundle.try_mistakes(lab, Path(temporary) / f"mistakes-{lab}", cpus="0")
                name, run = max(mistakes.items(), key=lambda item: item[1].peak_bytes)
                line += (f"  {name} ({len(mistakes)} tried): {max(r.seconds for r in mistakes.values()):.1f}, "
                         f"{run.peak_bytes / 2**20:.0f}, {'yes' if run.peak_bytes <= limit else 'NO'}")
            print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
