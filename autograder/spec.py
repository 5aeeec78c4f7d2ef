"""Graded tests: how a lab's spec is written, collected and run against one submission.

A spec (``autograder/specs/lab*_*.py``) is a module of pytest-style test functions, each
worth some points and carrying the sentence a student sees when it fails::

    @points(1, "Rows of the attention weights must sum to 1 along the keys.")
    @parametrize("dtype", [torch.float32, torch.float64])
    def test_weights_are_a_distribution(student, dtype):
        out, weights = as_pair(student.scaled_dot_product_attention(q, k, v), ...)
        check_rows_sum_to_one(weights)

``student`` is the submission: ``student.f(...)`` runs its ``f`` in the worker
(:class:`autograder.sandbox.Session`) and returns plain data; every other argument comes from
:func:`parametrize` (one graded test per value). A test passes when it returns and fails when it
raises; its feedback is the message, then why: a :class:`~autograder.compare.Mismatch`, or a
:class:`~autograder.sandbox.StudentFailure` (an exception with the student's traceback, a time or
memory limit). ``hidden=True`` marks a test whose result students see only after the grades
are published (Gradescope's ``after_published``); the others mirror the lab's own checks.

Expected values are computed here, in the grader, from the reference solutions and the
libraries. The visible tests' inputs are fixed, so :func:`cached` computes their expected
outputs once per run; a hidden test takes a ``draw`` argument and draws its inputs from the
student's seed (:mod:`autograder.seeding`), so its expected values are computed per student.
"""

from __future__ import annotations

import functools
import inspect
import threading
import time
import traceback
from dataclasses import dataclass, field
from typing import Callable

import torch

from autograder.compare import Mismatch
from autograder.sandbox import Session, StudentFailure
from autograder.seeding import DEFAULT_SEED, Draw

VISIBLE, HIDDEN = "visible", "after_published"


@dataclass(frozen=True)
class Lab:
    """One graded lab: its spec is the module that declares it as ``LAB``."""

    name: str  # "lab1": what --lab takes and the gradebook's column
    title: str
    notebook: str  # the lab notebook, relative to the repository (its stubs must score zero)
    reference: str  # the reference solution, relative to the repository (it must score full marks)
    functions: tuple[str, ...]  # the functions students write
    # Model roles the worker loads for this lab ("encoder", "decoder"); "decoder:vocabulary" loads the
    # model without its transformer layers (a lab whose functions only touch the embeddings).
    preload: tuple[str, ...] = ()
    imports: tuple[str, ...] = ()  # modules submissions of this lab often import, imported once by the worker


@dataclass(frozen=True)
class Test:
    """One graded test: a spec function with one set of parameters."""

    name: str
    function: Callable
    kwargs: dict
    points: float
    message: str
    hidden: bool


@dataclass
class TestResult:
    """The outcome of one test, in the shape Gradescope's results.json uses for a test."""

    name: str
    score: float
    max_score: float
    status: str  # "passed" or "failed"
    output: str
    visibility: str
    seconds: float = 0.0

    def to_dict(self) -> dict:
        return {"name": self.name, "score": self.score, "max_score": self.max_score, "status": self.status,
                "output": self.output, "visibility": self.visibility, "seconds": round(self.seconds, 3)}


@dataclass
class _Marks:
    points: float = 0.0
    message: str = ""
    hidden: bool = False
    params: list = field(default_factory=list)  # [(argnames, values, ids)], outermost first


def _marks(function) -> _Marks:
    if not hasattr(function, "_grading"):
        function._grading = _Marks()
    return function._grading


def points(value: float, message: str, *, hidden: bool = False):
    """Make a spec function a graded test worth ``value`` points (per parameter set), failing with ``message``."""

    def mark(function):
        marks = _marks(function)
        marks.points, marks.message, marks.hidden = value, message, hidden
        return function

    return mark


def parametrize(argnames: str, values: list, ids: list[str] | None = None):
    """pytest's ``parametrize``: one graded test per value; ``argnames`` may name several, comma-separated."""

    def mark(function):
        _marks(function).params.insert(0, ([n.strip() for n in argnames.split(",")], list(values), ids))
        return function

    return mark


def _id(value) -> str:
    if isinstance(value, torch.dtype):
        return str(value).replace("torch.", "")
    if isinstance(value, (tuple, list)):
        return "-".join(_id(v) for v in value)
    return str(value)


def collect(module) -> list[Test]:
    """The graded tests of a spec module, in the order they are defined, parameters expanded."""
    tests = []
    for name, function in vars(module).items():
        if not (name.startswith("test_") and callable(function) and hasattr(function, "_grading")):
            continue
        marks = function._grading
        combos = [({}, [])]
        for argnames, values, ids in marks.params:
            expanded = []
            for kwargs, labels in combos:
                for index, value in enumerate(values):
                    bound = dict(zip(argnames, value)) if len(argnames) > 1 else {argnames[0]: value}
                    label = ids[index] if ids else _id(value)
                    expanded.append(({**kwargs, **bound}, labels + [label]))
            combos = expanded
        for kwargs, labels in combos:
            full = name[len("test_"):] + (f"[{', '.join(labels)}]" if labels else "")
            tests.append(Test(f"{module.LAB.name}: {full}", function, kwargs, marks.points, marks.message, marks.hidden))
    return tests


def cached(function):
    """Memoize a function of hashable arguments, thread-safely (expected values, computed once per run)."""
    lock = threading.Lock()
    locks: dict = {}
    results: dict = {}

    @functools.wraps(function)
    def wrapper(*args):
        if args in results:
            return results[args]
        with lock:
            key_lock = locks.setdefault(args, threading.Lock())
        with key_lock:  # one computation per key, even with several grading threads
            if args not in results:
                results[args] = function(*args)
        return results[args]

    wrapper.cache_clear = results.clear
    return wrapper


# Held while a spec runs one of the course models: hidden expected values are computed while
# submissions are graded side by side, and a forward hook on a shared module must capture its
# own forward pass, not another thread's.
MODEL_LOCK = threading.RLock()


@cached
def course_vocabulary_model(role: str):
    """The tokenizer and the layer-less model of a role (book.models.load_vocabulary_model), loaded once, for specs
    whose truths need only the embeddings."""
    from book import load_tokenizer
    from book.models import load_vocabulary_model

    _quiet_loading()
    return load_tokenizer(role), load_vocabulary_model(role)


@cached
def course_model(role: str):
    """The tokenizer and model of a course role ("encoder", "decoder") for computing expected values, loaded once.

    Shared by the specs: they read these models, never change them.
    """
    from book import load_model, load_tokenizer

    _quiet_loading()
    return load_tokenizer(role), load_model(role)


def _quiet_loading() -> None:
    """No per-tensor "Loading weights" bar on the grader's terminal: the models are local and load in a second."""
    from transformers.utils import logging as transformers_logging

    transformers_logging.disable_progress_bar()


def takes_draw(function) -> bool:
    """Whether a spec function draws its inputs (it has a ``draw`` parameter): hidden tests do."""
    return "draw" in inspect.signature(function).parameters


def run_test(test: Test, session: Session, seed: int = DEFAULT_SEED) -> TestResult:
    """Run one test against the submission in ``session``; failures become feedback, never exceptions.

    A test with a ``draw`` parameter receives a :class:`~autograder.seeding.Draw` of ``seed`` (the
    student's, see :mod:`autograder.seeding`) and this test's name, and draws its inputs from it.
    """
    started = time.monotonic()
    visibility = HIDDEN if test.hidden else VISIBLE
    kwargs = dict(test.kwargs)
    if takes_draw(test.function):
        kwargs["draw"] = Draw(seed, test.name)
    try:
        test.function(session.student, **kwargs)
    except StudentFailure as failure:
        output = f"{test.message}\n{failure.feedback}"
    except Mismatch as mismatch:
        output = f"{test.message}\n{mismatch}"
    except Exception as error:  # noqa: BLE001 - a spec that cannot handle what came back is still a failure
        where = traceback.extract_tb(error.__traceback__)[-1]
        output = (f"{test.message}\nThe grader could not check what your function returned "
                  f"({type(error).__name__}: {error}; in {where.name}, line {where.lineno} of the spec).")
    else:
        return TestResult(test.name, float(test.points), float(test.points), "passed", "", visibility, time.monotonic() - started)
    return TestResult(test.name, 0.0, float(test.points), "failed", output, visibility, time.monotonic() - started)
