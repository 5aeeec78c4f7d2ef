"""Run a lab's spec with pytest itself, to debug a spec or look closely at one submission.

    python -m pytest autograder/specs/lab1_attention.py                        # against the reference solution
    python -m pytest autograder/specs/lab1_attention.py --submission alice.ipynb -k sdpa

The graded tests are ordinary pytest tests here: :func:`autograder.spec.parametrize` becomes
pytest's parametrization, and the ``student`` fixture is the submission running in the same
sandbox as in grading (so a stub fails and a timeout is a failure, not a hang). Points do not
count here; ``llm-grade grade`` is what grades.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from autograder.spec import _id


def pytest_addoption(parser):
    parser.addoption("--submission", default=None, help="the submission to test (default: the lab's reference solution)")


def pytest_generate_tests(metafunc):
    marks = getattr(metafunc.function, "_grading", None)
    for name, value in (marks.fixed.items() if marks else []):
        metafunc.parametrize(name, [value], ids=[name])
    for argnames, values, ids in (marks.params if marks else []):
        names = argnames[0] if len(argnames) == 1 else argnames  # one name: its values are not tuples
        metafunc.parametrize(names, values, ids=ids or [_id(v) for v in values])


@pytest.fixture
def draw(request):
    """A hidden test's draws, from the default seed (grading draws from each student's seed)."""
    from autograder.seeding import DEFAULT_SEED, Draw

    return Draw(DEFAULT_SEED, request.node.name)


@pytest.fixture(scope="module")
def student(request):
    from autograder.extract import load_submission
    from autograder.grade import Grader
    from book import ROOT

    lab = request.module.LAB
    path = Path(request.config.getoption("--submission") or ROOT / lab.reference)
    with Grader([lab.name]) as grader:
        with grader.sandbox.session(load_submission(path)) as session:
            yield session.student
