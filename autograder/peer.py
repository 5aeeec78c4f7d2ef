"""The peer benchmark: a lab graded by otter-grader and by ``llm-grade``, side by side, on the same submissions.

`otter-grader <https://otter-grader.readthedocs.io>`_ is the grader most courses reach for. To
compare costs fairly, this module builds an otter assignment *equivalent* to one of our labs: one
OK-format test file per graded test of the lab's spec, worth the same points, hidden where ours is
hidden, and whose body runs the very same check on the very same inputs (``check`` below calls the
spec's test function on the notebook's namespace, with hidden inputs drawn from the seed both
graders are given). Both graders then see the same submissions: the reference solution and the
benchmark's classic mistakes (:data:`autograder.bench.MUTANTS`), each as a notebook of imports and
definitions that both can run as it is. Three timings, in one run:

* ``otter run`` (otter's grading without containers) once per submission: a process each;
* ``llm-grade grade`` on the whole folder (a batch, ``--jobs`` students side by side), per submission;
* ``llm-grade grade --gradescope`` once per submission: one cold process each, as Gradescope runs
  ``run_autograder`` (process start to exit, the results written).

and a check that both graders give every submission the same score, test by test.

    make bench-otter                       # installs otter-grader into .venv-otter, then runs this
    python -m autograder.peer --otter .venv-otter/bin/otter --submissions 14

otter-grader is an optional benchmark dependency: nothing else imports it, and this module runs
it only as a command.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

SEED = 20260101  # the hidden inputs of every submission, in both graders (llm-grade --seed)


# --- what otter runs ---------------------------------------------------------------------------------------------


_TESTS: dict[str, object] = {}


def check(test_name: str, namespace: dict, seed: int = SEED) -> None:
    """Run graded test ``test_name`` ("lab1: split_heads[3-7-5-13]") of our spec on the functions in ``namespace``.

    Raises when the test fails (a :class:`~book.labs.compare.Mismatch`, or the student's own
    exception): an otter test case fails exactly when our graded test does.
    """
    from autograder import spec, specs
    from autograder.seeding import Draw
    from book import labs
    from book.labcheck import NotebookStudent

    lab = test_name.partition(":")[0]
    if lab not in _TESTS:
        _TESTS[lab] = {test.name: test for test in spec.collect(specs.load(lab))}
    test = _TESTS[lab][test_name]
    kwargs = dict(test.kwargs)
    if spec.takes_draw(test.function):
        kwargs["draw"] = Draw(seed, test.name)
    # doctest runs a test on a copy of the notebook's globals: the lab's references must replace a callee where the
    # student's functions look it up, in their own module's globals.
    defined = [namespace.get(name) for name in labs.load(lab).functions]
    home = next((f.__globals__ for f in defined if hasattr(f, "__globals__")), namespace)
    test.function(NotebookStudent(labs.load(lab), home), **kwargs)


def file_name(index: int, test_name: str) -> str:
    """An otter test file's name for our graded test number ``index``: "lab1: sdpa_sizes[one-query]" -> "07-sdpa_sizes-one-query"."""
    return f"{index:02d}-" + re.sub(r"[^A-Za-z0-9_]+", "-", test_name.partition(": ")[2]).strip("-")


def ok_tests(lab: str, seed: int = SEED) -> dict[str, str]:
    """The OK-format test files (name -> text) of an otter assignment equivalent to ``lab``'s spec."""
    from autograder import spec, specs

    files = {}
    for index, test in enumerate(spec.collect(specs.load(lab))):
        code = f">>> from autograder.peer import check; check({test.name!r}, globals(), {seed})\n"
        case = {"name": test.name, "code": code, "hidden": test.hidden, "locked": False, "points": float(test.points)}
        body = {"name": test.name, "points": float(test.points),
                "suites": [{"cases": [case], "scored": True, "setup": "", "teardown": "", "type": "doctest"}]}
        files[f"{file_name(index, test.name)}.py"] = f"OK_FORMAT = True\n\ntest = {body!r}\n"
    return files


def notebook(source: str) -> str:
    """A notebook of ``source``'s top-level statements, one cell each: what both graders can run as it is."""
    import ast

    tree = ast.parse(source)
    lines = source.splitlines()
    cells = []
    for node in tree.body:
        first = min([node.lineno] + [d.lineno for d in getattr(node, "decorator_list", [])])
        cells.append("\n".join(lines[first - 1: node.end_lineno]))
    return json.dumps({
        "nbformat": 4, "nbformat_minor": 5,
        "metadata": {"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}},
        "cells": [{"cell_type": "code", "id": f"cell{i}", "source": cell, "metadata": {}, "execution_count": None,
                   "outputs": []} for i, cell in enumerate(cells)],
    }, indent=1)


def submissions(folder: Path, lab: str, count: int) -> list[Path]:
    """``count`` notebooks in ``folder``, alternating the reference and the lab's classic mistakes."""
    from autograder import bench, specs
    from book import ROOT

    reference = (ROOT / specs.load(lab).LAB.reference).read_text()
    mutants = [(m.name, bench.mutate(reference, m)) for m in bench.MUTANTS if m.lab == lab]
    mutants = [(name, text) for name, text in mutants if text is not None]
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for index in range(count):
        name, text = ("correct", reference) if index % 2 == 0 else mutants[(index // 2) % len(mutants)]
        path = folder / f"student{index:02d}-{name}.ipynb"
        path.write_text(notebook(text))
        written.append(path)
    return written


def write_assignment(folder: Path, otter: str, lab: str = "lab1", seed: int = SEED) -> Path:
    """Write the otter assignment equivalent to ``lab`` into ``folder`` and build its autograder zip with ``otter generate``."""
    tests = folder / "tests"
    tests.mkdir(parents=True, exist_ok=True)
    for name, text in ok_tests(lab, seed).items():
        (tests / name).write_text(text)
    (folder / "otter_config.json").write_text(json.dumps({"lang": "python"}))
    archive = folder / "autograder.zip"
    subprocess.run([otter, "generate", "-t", str(tests), "-o", str(archive), "--no-requirements", "--no-environment"],
                   cwd=folder, check=True, capture_output=True, text=True)
    return archive


# --- the timings -------------------------------------------------------------------------------------------------


@dataclass
class Graded:
    """One submission graded by one grader: its total, each test's score (by our test names), the wall time."""

    score: float
    tests: dict[str, float]
    seconds: float
    max_score: float = 0.0
    moments: dict[str, float] = field(default_factory=dict)  # a cold run's timeline (seconds since it started)


def run_otter(otter: str, archive: Path, submission: Path, out: Path) -> Graded:
    out.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    subprocess.run([otter, "run", "-a", str(archive), "-o", str(out), "--no-logo", str(submission)], check=True,
                   capture_output=True, text=True)
    seconds = time.perf_counter() - started
    data = json.loads((out / "results.json").read_text())
    tests = {t["name"]: float(t["score"]) for t in data["tests"] if "max_score" in t}
    return Graded(sum(tests.values()), tests, seconds)


def llm_grade(*args: str) -> list[str]:
    return [sys.executable, "-m", "autograder", "grade", *args, "--seed", str(SEED), "--quiet"]


def run_cold(submission: Path, out: Path, lab: str) -> Graded:
    """One cold ``llm-grade grade --gradescope`` process on one submission: start to exit, results written.

    Its moments (:mod:`autograder.timeline`) are kept in ``Graded.moments``.
    """
    timings = out.with_suffix(".timings.json")
    started = time.perf_counter()
    subprocess.run(llm_grade(str(submission), "--lab", lab, "--gradescope", str(out), "--timings", str(timings)),
                   check=True, capture_output=True, text=True)
    seconds = time.perf_counter() - started
    data = json.loads(out.read_text())
    moments = dict(json.loads(timings.read_text())["moments"])
    return Graded(float(data["score"]), {t["name"]: float(t["score"]) for t in data["tests"]}, seconds,
                  float(data["max_score"]), moments)


def run_batch(folder: Path, out: Path, lab: str, jobs: int) -> tuple[dict[str, Graded], float]:
    """``llm-grade grade`` on the whole folder; returns each student's result and the wall time of the run."""
    started = time.perf_counter()
    subprocess.run(llm_grade(str(folder), "--lab", lab, "--out", str(out), "--jobs", str(jobs), "--layout", "class"),
                   check=True, capture_output=True, text=True)
    seconds = time.perf_counter() - started
    graded = {}
    for path in sorted((out / "students").glob("*.json")):
        record = json.loads(path.read_text())["labs"][lab]
        graded[path.stem] = Graded(float(record["score"]), {t["name"]: float(t["score"]) for t in record["tests"]}, 0.0)
    return graded, seconds


@dataclass
class PeerReport:
    """What the peer benchmark measured (seconds are wall times on this machine, in one run)."""

    lab: str
    submissions: int
    jobs: int
    otter_seconds: list[float] = field(default_factory=list)  # one `otter run` per submission
    cold_seconds: list[float] = field(default_factory=list)  # one cold `llm-grade --gradescope` per submission
    batch_seconds: float = 0.0  # one `llm-grade grade` of the whole folder
    cold_moments: list[dict[str, float]] = field(default_factory=list)
    disagreements: list[str] = field(default_factory=list)  # submissions the graders scored differently, and how
    scores: dict[str, float] = field(default_factory=dict)  # each submission's score (the same in both when they agree)
    max_score: float = 0.0

    @property
    def otter(self) -> float:
        return statistics.median(self.otter_seconds)

    @property
    def cold(self) -> float:
        return statistics.median(self.cold_seconds)

    @property
    def batch(self) -> float:
        return self.batch_seconds / self.submissions


def compare(name: str, ours: Graded, theirs: Graded) -> str | None:
    """How two results of one submission differ (None when every test got the same score)."""
    differ = sorted(t for t in set(ours.tests) | set(theirs.tests) if ours.tests.get(t) != theirs.tests.get(t))
    if not differ and ours.score == theirs.score:
        return None
    shown = ", ".join(f"{t}: {ours.tests.get(t)} vs {theirs.tests.get(t)}" for t in differ[:4])
    return f"{name}: llm-grade {ours.score:g}, otter {theirs.score:g} ({shown})"


def peer(otter: str, count: int = 14, lab: str = "lab1", jobs: int = 2, keep: Path | None = None,
         log=print) -> PeerReport:
    """Build the assignment, grade ``count`` submissions with both graders, and compare (see the module docstring)."""
    with tempfile.TemporaryDirectory(prefix="llm-grade-peer-") as temporary:
        folder = Path(keep or temporary)
        archive = write_assignment(folder / "otter", otter, lab)
        paths = submissions(folder / "class", lab, count)
        report = PeerReport(lab, len(paths), jobs)
        batch, report.batch_seconds = run_batch(folder / "class", folder / "batch", lab, jobs)
        log(f"llm-grade, one batch of {len(paths)} submissions ({jobs} jobs): {report.batch_seconds:.1f} s")
        for path in paths:
            theirs = run_otter(otter, archive, path, folder / "otter-results" / path.stem)
            cold = run_cold(path, folder / "cold" / f"{path.stem}.json", lab)
            report.otter_seconds.append(theirs.seconds)
            report.cold_seconds.append(cold.seconds)
            report.cold_moments.append(cold.moments)
            report.scores[path.stem], report.max_score = cold.score, cold.max_score
            for grader, ours in (("cold", cold), ("batch", batch.get(path.stem))):
                if ours is None:
                    report.disagreements.append(f"{path.stem}: not graded by the {grader} run")
                    continue
                problem = compare(path.stem, ours, theirs)
                if problem:
                    report.disagreements.append(f"{problem} [{grader}]")
            log(f"  {path.stem:40} otter {theirs.seconds:5.1f} s, llm-grade cold {cold.seconds:5.1f} s, "
                f"score {cold.score:g} / otter {theirs.score:g}")
    return report


def median_timeline(runs: list[tuple[float, dict[str, float]]]) -> tuple[float, dict[str, float]]:
    """The median wall time and the median of each moment over several cold runs (moments every run has)."""
    common = set.intersection(*(set(moments) for _, moments in runs))
    return (statistics.median(seconds for seconds, _ in runs),
            {m: statistics.median(moments[m] for _, moments in runs) for m in common})


def print_breakdown(title: str, total: float, moments: dict[str, float], out=print) -> None:
    """Where one cold run's time went: the grader's and the worker's spans, side by side in time."""
    from autograder.timeline import breakdown

    out(f"{title}: {total:.2f} s from process start to exit (medians)")
    out(f"  {'lane':7} {'from s':>6} {'takes s':>7}  what")
    for lane, what, start, seconds in breakdown(moments, total):
        out(f"  {lane:7} {start:6.2f} {seconds:7.2f}  {what}")


def cold_labs(labs: list[str], runs: int = 3) -> dict[str, tuple[float, dict[str, float]]]:
    """Cold runs of every lab on its reference solution: the median wall time and moments of each."""
    from autograder import specs
    from book import ROOT

    measured = {}
    with tempfile.TemporaryDirectory(prefix="llm-grade-cold-") as temporary:
        for lab in labs:
            reference = ROOT / specs.load(lab).LAB.reference
            graded = [run_cold(reference, Path(temporary) / f"{lab}-{i}.json", lab) for i in range(runs)]
            measured[lab] = median_timeline([(g.seconds, g.moments) for g in graded])
    return measured


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m autograder.peer", description=__doc__.splitlines()[0])
    parser.add_argument("--otter", default=shutil.which("otter"), help="the otter command (default: the one on PATH)")
    parser.add_argument("--lab", default="lab1", help="the lab both graders grade (default lab1)")
    parser.add_argument("--submissions", type=int, default=14, help="how many (half correct, half a classic mistake)")
    parser.add_argument("--jobs", type=int, default=2, help="students side by side in llm-grade's batch (default 2)")
    parser.add_argument("--keep", type=Path, help="write the assignment, submissions and results here")
    parser.add_argument("--cold-runs", type=int, default=3, help="cold runs of each lab's reference for the breakdowns")
    args = parser.parse_args(argv)
    if not args.otter or not Path(args.otter).exists():
        parser.error("otter-grader is not installed: `make bench-otter` installs it into .venv-otter, or give --otter.")
    otter = str(Path(args.otter).absolute())  # otter generate runs in the assignment's folder: a relative path breaks
    print(f"{args.lab}: otter-grader and llm-grade on the same {args.submissions} submissions, {os.cpu_count()} CPUs "
          f"(load average {os.getloadavg()[0]:.1f})")
    report = peer(otter, args.submissions, args.lab, args.jobs, args.keep)
    print(f"{'per submission (median)':34} {'seconds':>8} {'otter / llm-grade':>18}")
    print(f"{'otter run (a process each)':34} {report.otter:8.2f}")
    print(f"{'llm-grade, cold (a process each)':34} {report.cold:8.2f} {report.otter / report.cold:17.1f}x")
    print(f"{'llm-grade, batch (one run)':34} {report.batch:8.2f} {report.otter / report.batch:17.1f}x")
    print_breakdown(f"\nOne cold llm-grade run of {args.lab}", *median_timeline(
        [(s, m) for s, m in zip(report.cold_seconds, report.cold_moments)]))
    from autograder import specs

    for lab, (total, moments) in cold_labs([lab for lab in specs.select("all") if lab != args.lab],
                                           args.cold_runs).items():
        print_breakdown(f"\nOne cold llm-grade run of {lab} (its reference solution, {args.cold_runs} runs)", total,
                        moments)
    if report.disagreements:
        print("\nThe graders disagree:\n  " + "\n  ".join(report.disagreements))
        return 1
    full = sum(score == report.max_score for score in report.scores.values())
    print(f"\nSame scores, test by test, on all {report.submissions} submissions ({full} with full marks, "
          f"{report.submissions - full} with a mistake that costs points).")
    return 0


if __name__ == "__main__":
    sys.exit(main())
