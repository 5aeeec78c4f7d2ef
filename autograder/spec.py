"""Graded tests: how a lab's spec is written, collected and run against one submission.

A spec (``autograder/specs/lab*_*.py``) gives points to the rules of its lab (:mod:`book.labs`),
one pytest-style test function per rule::

    test_sdpa_causal = visible(lab1.LAB.rule("sdpa_causal"), points=1)
    test_sdpa_left_padding = hidden(lab1.LAB.rule("sdpa_left_padding"), points=1, draw=drawn_case)

A *visible* test runs the rule on its public cases, exactly as the lab's own check does; a
*hidden* one runs it on cases drawn like them for each student (``draw(case, draw)``, from the
student's seed, :mod:`autograder.seeding`), and students see its result only once the grades are
published (Gradescope's ``after_published``). Each case is one graded test worth the points.
Hand-written test functions work too (:func:`points`, :func:`parametrize`). ``student`` is the
submission: ``student.f(...)`` runs its ``f`` in the worker (:class:`autograder.session.Session`)
and returns plain data. A test passes when it returns and fails when it raises; its feedback is
the rule's sentence, then why: a :class:`~book.labs.compare.Mismatch` (the wording the lab's check
prints in Colab), or a :class:`~autograder.session.StudentFailure` (an exception with the
student's traceback, a time or memory limit).
"""

from __future__ import annotations

import inspect
import time
import traceback
from dataclasses import dataclass, field
from typing import Callable

import torch

from book import labs
from book.labs.compare import Mismatch
from autograder.results import TestResult
from autograder.seeding import DEFAULT_SEED, Draw
from autograder.session import Session, StudentFailure

VISIBLE, HIDDEN = "visible", "after_published"


@dataclass(frozen=True)
class Lab:
    """One graded lab: its spec is the module that declares it as ``LAB``."""

    truth: labs.Lab  # the lab's rules, functions and references (book/labs/<lab>.py)
    notebook: str  # the lab notebook, relative to the repository (its stubs must score zero)
    reference: str  # the reference solution, relative to the repository (it must score full marks)
    # Model roles the worker loads for this lab ("encoder", "decoder"); "decoder:vocabulary" loads the
    # model without its transformer layers (a lab whose functions only touch the embeddings).
    preload: tuple[str, ...] = ()
    imports: tuple[str, ...] = ()  # modules submissions of this lab often import, imported once by the worker

    @property
    def name(self) -> str:  # "lab1": what --lab takes and the gradebook's column
        return self.truth.name

    @property
    def title(self) -> str:
        return self.truth.title

    @property
    def functions(self) -> tuple[str, ...]:  # the functions students write
        return self.truth.functions


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
class _Marks:
    points: float = 0.0
    message: str = ""
    hidden: bool = False
    params: list = field(default_factory=list)  # [(argnames, values, ids)], outermost first
    fixed: dict = field(default_factory=dict)  # arguments every test of the function gets, not in its name
    rule: str = ""  # the lab rule it grades
    draw: Callable | None = None  # a hidden test's draw(case, student_draw): how its cases are drawn


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


def _graded(rule: labs.Rule, points_: float, hidden_: bool, test):
    test.__name__ = f"test_{rule.name}"
    test.__doc__ = rule.sentence
    points(points_, rule.sentence, hidden=hidden_)(test)
    marks = _marks(test)
    marks.rule = rule.name
    if list(rule.cases) == [""]:
        marks.fixed = {"case": rule.cases[""]}
    else:
        parametrize("case", list(rule.cases.values()), ids=list(rule.cases))(test)
    return test


def visible(rule: labs.Rule, points: float):
    """A test function that grades ``rule`` on its public cases, one test per case, ``points`` each."""
    return _graded(rule, points, False, lambda student, case: rule.check(student, case))


def hidden(rule: labs.Rule, points: float, draw):
    """A hidden test function that grades ``rule`` on cases drawn like its public ones: ``draw(case, student_draw)``."""
    drawn_like = draw

    def test(student, case, draw):
        rule.check(student, drawn_like(case, draw))

    test = _graded(rule, points, True, test)
    _marks(test).draw = drawn_like
    return test


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
        combos = [(dict(marks.fixed), [])]
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


def takes_draw(function) -> bool:
    """Whether a spec function draws its inputs (it has a ``draw`` parameter): hidden tests do."""
    return "draw" in inspect.signature(function).parameters


HIDDEN_INPUT = "<hidden input>"


def drawn_texts(test: Test, seed: int) -> list[str]:
    """The texts a hidden test drew for ``seed`` (sentences, strings): feedback never shows them (:func:`redact`).

    A drawn case names them with a ``drawn_texts()`` method; otherwise every string inside its tuples and lists is one.
    """
    marks = getattr(test.function, "_grading", None)
    if marks is None or marks.draw is None or "case" not in test.kwargs:
        return []
    case = marks.draw(test.kwargs["case"], Draw(seed, test.name))
    if hasattr(case, "drawn_texts"):
        return [t for t in case.drawn_texts() if isinstance(t, str)]
    found = []

    def walk(value, inside: bool) -> None:
        if isinstance(value, str):
            if inside:
                found.append(value)
        elif isinstance(value, (tuple, list)):
            for item in value:
                walk(item, True)

    walk(case, False)
    return found


def redact(text: str, texts: list[str]) -> str:
    """``text`` with every occurrence of ``texts`` (longest first) replaced by :data:`HIDDEN_INPUT`; quoted or not."""
    for drawn in sorted({t for t in texts if len(t.strip()) >= 2}, key=len, reverse=True):
        for form in (repr(drawn), drawn):
            text = text.replace(form, HIDDEN_INPUT)
    return text


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
    if test.hidden:  # the spec's wording describes a hidden case; a student's own traceback may still quote its inputs
        output = redact(output, drawn_texts(test, seed))
    return TestResult(test.name, 0.0, float(test.points), "failed", output, visibility, time.monotonic() - started)
