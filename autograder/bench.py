"""``bench``: generate a class of submissions from the reference solutions, grade it, and report time and memory.

Half of the generated submissions are correct (the reference solution as a ``.py`` file, or
pasted into a notebook between shell, magic and exploratory cells, as a Colab download looks);
the other half carry one classic mistake each, made by a text substitution in the reference
(:data:`MUTANTS`: the softmax over the queries, an unmasked mean, no truncation...). A mutant
whose text no longer occurs in the reference is reported and left out, never silently kept.

    python -m autograder bench --submissions 100 --jobs 2
    python -m autograder bench --students 200      # a class: 200 students x every lab
    python scripts/bench_grading.py            # the same

Prints the start-up time (worker imports and models, expected values), then for each lab the
wall time per submission, and the peak memory of the grader and of the workers.
"""

from __future__ import annotations

import argparse
import functools
import json
import resource
import tempfile
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from autograder import cli, specs
from autograder.grade import Grader, grade_folder
from autograder.sandbox import Limits
from book import ROOT


@dataclass(frozen=True)
class Mutant:
    """A classic mistake: ``(old, new)`` text replacements in a lab's reference solution."""

    lab: str
    name: str
    replacements: tuple[tuple[str, str], ...]


MUTANTS = (
    Mutant("lab1", "softmax-over-queries", (("scores.softmax(dim=-1)", "scores.softmax(dim=-2)"),)),
    Mutant("lab1", "no-scaling", (("/ math.sqrt(Dh)", ""),)),
    Mutant("lab1", "padding-ignored", (("allowed = allowed & real_keys", "allowed = allowed"),)),
    Mutant("lab1", "causal-without-offset", (("allowed.tril(diagonal=Tk - Tq)", "allowed.tril()"),)),
    Mutant("lab1", "minus-inf-gives-nan", (("torch.finfo(compute).min", 'float("-inf")'),
                                          ("weights = weights.masked_fill(~allowed, 0.0)", "weights = weights"))),
    Mutant("lab1", "kv-heads-tiled", (("x[:, :, None, :, :].expand(B, Hkv, n_rep, T, Dh)",
                                       "x[:, None, :, :, :].expand(B, n_rep, Hkv, T, Dh)"),)),
    Mutant("lab1", "dtype-not-restored", (("return output.to(query.dtype), weights.to(query.dtype)", "return output, weights"),)),
    Mutant("lab2", "unmasked-mean", (("torch.where(real, hidden_states.to(compute), 0.0)", "hidden_states.to(compute)"),)),
    Mutant("lab2", "nan-for-empty-rows", (("counts = real.sum(dim=1).clamp(min=1)", "counts = real.sum(dim=1)"),)),
    Mutant("lab2", "max-over-zeroed-padding", (('torch.where(real, hidden_states, float("-inf"))', "(hidden_states * real)"),)),
    Mutant("lab2", "no-truncation", (("truncation=True,", "truncation=False,"),)),
    Mutant("lab2", "not-normalized", (("F.normalize(pooled, p=2, dim=-1)", "pooled"),)),
    Mutant("lab3", "first-piece-not-mean", (("rows.float().mean(dim=0).to(weight.dtype)", "rows[0]"),)),
    Mutant("lab3", "special-ignored", (("if special:", "if False:"),
                                       ("AddedToken(s, special=special, normalized=not special)", "AddedToken(s)"))),
    Mutant("lab3", "no-resize", (("model.resize_token_embeddings(len(tokenizer), mean_resizing=False)", "pass"),)),
)


def mutate(source: str, mutant: Mutant) -> str | None:
    """The source with the mutant's replacements, or None when one of its texts is not in the source."""
    for old, new in mutant.replacements:
        if old not in source:
            return None
        source = source.replace(old, new)
    return source


def as_notebook(source: str) -> str:
    """A Colab-like notebook holding ``source``: shell, magics, model loading and exploration around the definitions."""
    import ast

    tree = ast.parse(source)
    lines = source.splitlines()
    cells = ["!pip install -q llm-internals\n%load_ext autoreload", "import book\nmodel = book.load_model('encoder')  # not graded"]
    for node in tree.body:
        first = min([node.lineno] + [d.lineno for d in getattr(node, "decorator_list", [])])
        cells.append("\n".join(lines[first - 1 : node.end_lineno]))
        if isinstance(node, ast.FunctionDef):
            cells.append(f"%time print({node.name})\n{node.name}?")
    cells.append("print('exploring', 1 + 1)\nfor i in range(3):\n    print(i)")
    notebook = {
        "nbformat": 4, "nbformat_minor": 0, "metadata": {"colab": {"provenance": []}, "kernelspec": {"name": "python3"}},
        "cells": [{"cell_type": "code", "source": cell, "metadata": {}, "execution_count": None, "outputs": []} for cell in cells],
    }
    return json.dumps(notebook, indent=1)


def generate(folder: Path, count: int, root: Path = ROOT) -> tuple[dict[str, list[str]], list[str]]:
    """Write ``count`` submissions into ``folder/<lab>/``, spread over the labs; returns what was written and the mutants left out."""
    labs = specs.select("all")
    written: dict[str, list[str]] = {lab: [] for lab in labs}
    skipped = []
    mutants: dict[str, list[tuple[str, str]]] = {lab: [] for lab in labs}
    references = {}
    for lab in labs:
        references[lab] = (root / specs.load(lab).LAB.reference).read_text()
    for mutant in MUTANTS:
        text = mutate(references[mutant.lab], mutant)
        if text is None:
            skipped.append(f"{mutant.lab}/{mutant.name}")
        else:
            mutants[mutant.lab].append((mutant.name, text))
    for index in range(count):
        lab = labs[index % len(labs)]
        number = index // len(labs)
        if number % 2 == 0 or not mutants[lab]:  # correct, as .py or as a notebook
            kind, text = "correct", references[lab]
        else:
            kind, text = mutants[lab][(number // 2) % len(mutants[lab])]
        as_py = (number // 2) % 2 == 0
        name = f"student{index:03d}-{kind}"
        path = folder / lab / (f"{name}.py" if as_py else f"{name}.ipynb")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text if as_py else as_notebook(text))
        written[lab].append(path.name)
    return written, skipped


def _tree(pid: int) -> list:
    """Process ``pid`` and all its descendants (psutil processes); empty once it has ended."""
    import psutil

    try:
        top = psutil.Process(pid)
        return [top] + top.children(recursive=True)
    except psutil.Error:
        return []


def tree_pss(pid: int) -> int:
    """The proportional memory (PSS, RSS where the system has none) of process ``pid`` and all its descendants, in
    bytes; 0 without psutil or once the process has ended."""
    try:
        import psutil
    except ImportError:
        return 0
    processes = _tree(pid)
    total = 0
    for process in processes:
        try:
            info = process.memory_full_info()
            total += getattr(info, "pss", info.rss)
        except (psutil.Error, OSError):
            pass
    return total


_PAGE = 4096  # /proc/PID/pagemap has one 64-bit entry per page of this size
_PRESENT, _FRAME = 1 << 63, (1 << 55) - 1  # pagemap: bit 63 "page present", bits 0-54 its page frame number


def _frames(pid: int):
    """The physical page frames process ``pid`` maps (numpy array; all zeros where this user may not read them)."""
    import numpy as np

    found = []
    with open(f"/proc/{pid}/maps") as maps, open(f"/proc/{pid}/pagemap", "rb", buffering=0) as pagemap:
        for line in maps:
            span, permissions = line.split(None, 2)[:2]
            start, end = (int(x, 16) for x in span.split("-"))
            if permissions.startswith("---") or start >= 1 << 47:  # guard pages and reservations; the vsyscall page
                continue
            pagemap.seek(start // _PAGE * 8)
            entries = np.frombuffer(pagemap.read((end - start) // _PAGE * 8), dtype=np.uint64)
            found.append(entries[(entries & np.uint64(_PRESENT)) != 0] & np.uint64(_FRAME))
    return np.concatenate(found) if found else np.empty(0, dtype=np.uint64)


@functools.lru_cache(maxsize=None)
def frames_readable() -> bool:
    """Whether this user may read page frame numbers (root) and psutil is there, so that :func:`tree_resident` is
    exact, not PSS. Asked once: it reads this process's own page map."""
    import os

    try:
        import psutil  # noqa: F401

        return bool(_frames(os.getpid()).any())
    except (ImportError, OSError):
        return False


def tree_resident(pid: int) -> int:
    """The physical memory process ``pid`` and all its descendants map, each page once, in bytes: what a container
    holding only them would hold resident (file pages they map included, page cache they only read not).

    Unlike PSS, it does not depend on what other processes do: a page the tree shares with a process outside it (torch's
    libraries in the Python that measures it, or in a bundle graded beside it) counts whole, where PSS gives the tree
    a share only. Reading page frames needs root (CAP_SYS_ADMIN); elsewhere this is :func:`tree_pss`.
    """
    if not frames_readable():
        return tree_pss(pid)
    import numpy as np

    frames = []
    for process in _tree(pid):
        try:
            frames.append(_frames(process.pid))
        except (OSError, ValueError):  # the process ended, or its maps changed while read
            pass
    if not frames:
        return 0
    return int(np.unique(np.concatenate(frames)).size) * _PAGE


class MemoryWatch:
    """Samples the proportional memory (PSS) of this process and all its descendants; keeps the peak (0 without psutil)."""

    def __init__(self, interval: float = 0.25):
        try:
            import psutil
        except ImportError:  # psutil is optional: the rusage figures are still reported
            psutil = None
        self.process = psutil.Process() if psutil else None
        self.interval = interval
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _sample(self) -> int:
        return tree_pss(self.process.pid)

    def _run(self):
        while not self._stop.is_set():
            self.peak = max(self.peak, self._sample())
            self._stop.wait(self.interval)

    def __enter__(self):
        if self.process is not None:
            self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        if self.process is not None:
            self._thread.join()


@dataclass
class LabBench:
    """One lab's part of a benchmark: how many were graded, how fast, and how many got full marks."""

    submissions: int
    seconds: float
    seconds_per_submission: float
    max_score: float
    correct_full_marks: int
    correct: int
    faulty_full_marks: int  # mistakes the tests missed
    faulty: int


@dataclass
class BenchReport:
    """What ``bench`` measured: start-up, each lab's grading, and the peak memory."""

    submissions: int
    jobs: int
    skipped_mutants: list[str]
    labs: dict[str, LabBench] = field(default_factory=dict)
    startup_seconds: float = 0.0
    total_seconds: float = 0.0
    seconds_per_submission: float = 0.0
    peak_memory_mib: dict[str, int] = field(default_factory=dict)


def bench(count: int = 100, jobs: int = 2, limits: Limits = Limits(), keep: Path | None = None) -> BenchReport:
    """Generate ``count`` submissions, grade each lab's folder with one :class:`Grader`, and measure."""
    from autograder import results

    with tempfile.TemporaryDirectory(prefix="llm-grade-bench-") as temporary:
        folder = Path(keep or temporary)
        written, skipped = generate(folder / "submissions", count)
        report = BenchReport(count, jobs, skipped)
        with MemoryWatch() as memory:
            started = time.monotonic()
            with Grader("all", limits) as grader:
                report.startup_seconds = round(time.monotonic() - started, 2)
                for lab in grader.labs:
                    began = time.monotonic()
                    summary = grade_folder(folder / "submissions" / lab, folder / "results", [lab], jobs=jobs,
                                           progress=False, grader=grader, layout="class")
                    seconds = time.monotonic() - began
                    names = [Path(name).stem for name in written[lab]]
                    records = {n: results.read_student(folder / "results", n) for n in names}
                    scores = {n: r.labs[lab].score for n, r in records.items() if r is not None and lab in r.labs}
                    correct = [score for n, score in scores.items() if "correct" in n]
                    faulty = [score for n, score in scores.items() if "correct" not in n]
                    full = grader.max_score(lab)
                    report.labs[lab] = LabBench(summary.graded, round(seconds, 2), round(seconds / max(1, summary.graded), 3),
                                                full, sum(s == full for s in correct), len(correct),
                                                sum(s == full for s in faulty), len(faulty))
            report.total_seconds = round(time.monotonic() - started, 2)
        graded = sum(lab.submissions for lab in report.labs.values())
        grading = sum(lab.seconds for lab in report.labs.values())
        report.seconds_per_submission = round(grading / max(1, graded), 3)
        report.peak_memory_mib = {
            "grader_rss": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
            "largest_worker_rss": round(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024),
            "all_processes_pss": round(memory.peak / 2**20),
        }
    return report


def main(argv: list[str] | None = None) -> int:
    import os

    parser = cli.parser("bench")
    parser.add_argument("--submissions", type=int, default=100, help="how many submissions to generate, spread over the "
                                                                      "labs (default 100)")
    parser.add_argument("--students", type=int, help="a class of this many students, each submitting every lab "
                                                     "(--students 200: 200 submissions per lab; replaces --submissions)")
    cli.jobs_option(parser, 2)
    parser.add_argument("--keep", type=Path, help="write the submissions and results here instead of a temporary folder")
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    args = parser.parse_args(argv)
    if args.students is not None and args.students < 1:
        parser.error(f"--students {args.students}: give a class of at least one student.")
    count = args.students * len(specs.select("all")) if args.students else args.submissions
    report = bench(count, args.jobs, keep=args.keep)
    if args.json:
        print(json.dumps(asdict(report), indent=1))
        return 0
    load = os.getloadavg()[0]
    print(f"{report.submissions} submissions, {report.jobs} jobs, {os.cpu_count()} CPUs (load average {load:.1f})")
    if report.skipped_mutants:
        print(f"mutants left out (their text is no longer in the reference): {', '.join(report.skipped_mutants)}")
    print(f"start-up (worker imports and models, expected values): {report.startup_seconds:.1f} s")
    print(f"{'lab':5} {'graded':>6} {'wall s':>7} {'s/submission':>12}  full marks: correct ones, faulty ones")
    for lab, row in report.labs.items():
        print(f"{lab:5} {row.submissions:6d} {row.seconds:7.1f} {row.seconds_per_submission:12.3f}  "
              f"{row.correct_full_marks} of {row.correct}, {row.faulty_full_marks} of {row.faulty}")
    print(f"all   {sum(r.submissions for r in report.labs.values()):6d} "
          f"{sum(r.seconds for r in report.labs.values()):7.1f} {report.seconds_per_submission:12.3f}")
    memory = report.peak_memory_mib
    print(f"peak memory: grader {memory['grader_rss']} MiB RSS, largest worker {memory['largest_worker_rss']} MiB RSS, "
          f"all processes together {memory['all_processes_pss'] or 'n/a (install psutil)'} MiB PSS (shared pages counted once)")
    print(f"total wall time {report.total_seconds:.1f} s")
    if args.students:
        print(f"a class of {args.students} students x {len(report.labs)} labs: {report.total_seconds / 60:.1f} min from "
              f"start to the last result, {report.jobs} jobs")
    return 0
