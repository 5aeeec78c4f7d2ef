"""``selftest``: grade the reference solutions (they must score full marks) and the lab stubs (zero), for every lab.

The reference solution (``solutions/<lab>.py``) goes through the same path as a student's
file: extracted, run in the sandbox, graded by the specs. A test it fails is a bug in the spec
or in the reference; a test the stubs of ``labs/<lab>.ipynb`` pass gives points for nothing.

    python -m autograder selftest            # every lab
    python -m autograder selftest --lab lab2
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path

from autograder import cli
from autograder.grade import Grader
from autograder.results import TestResult
from autograder.sandbox import Limits
from book import ROOT


@dataclass
class SelftestRow:
    """One lab and side ("reference": must score full marks; "stubs": must score zero), and the tests that went wrong."""

    lab: str
    side: str
    file: str
    score: float
    max_score: float
    ok: bool
    error: str | None
    wrong: list[TestResult]
    seconds: float


def selftest(labs: str | list[str] = "all", grader: Grader | None = None, root: Path = ROOT) -> list[SelftestRow]:
    """One row per lab and side: the reference solution must score full marks, the lab notebook's stubs zero."""
    own = grader is None
    grader = grader or Grader(labs, Limits())
    if own:
        grader.start()
    rows = []
    try:
        for lab in grader.labs:
            spec = grader.modules[lab].LAB
            for side, path, wanted in (("reference", spec.reference, "full"), ("stubs", spec.notebook, "zero")):
                record = grader.grade_lab(lab, root / path)
                if wanted == "full":
                    wrong = record.failed
                    ok = record.score == record.max_score and not record.error
                else:
                    wrong = [t for t in record.tests if t.passed]
                    ok = record.score == 0
                rows.append(SelftestRow(lab, side, path, record.score, record.max_score, ok, record.error, wrong,
                                        record.seconds))
    finally:
        if own:
            grader.close()
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = cli.parser("selftest")
    cli.lab_option(parser)
    args = parser.parse_args(argv)
    labs = cli.labs_from(parser, args)
    rows = selftest(labs)
    for row in rows:
        verdict = "ok" if row.ok else "WRONG"
        expected = "full marks" if row.side == "reference" else "zero"
        print(f"{verdict:5} {row.lab} {row.side:9} {row.score:g} / {row.max_score:g} "
              f"(expected {expected}) {row.file} [{row.seconds:.1f} s]")
        if row.error:
            print(f"      {row.error}")
        for test in row.wrong:
            print(f"      {test.name}: " + test.output.replace("\n", "\n        "))
    failed = [row for row in rows if not row.ok]
    print("self-test passed" if not failed else f"self-test FAILED for {len(failed)} of {len(rows)} checks")
    return 1 if failed else 0
