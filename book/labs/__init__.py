"""The labs' truth: one module per lab, shared by the labs' public checks and by the grader.

A lab module (``book/labs/lab1.py``...) holds everything the lab knows and nothing a student
writes: its inputs and how they are made, the float64 truths (computed with the libraries' own
kernels, never with a copy of the functions the lab asks for), the known mistakes with the
sentence that names each, and its :class:`Rule` list. A rule is one sentence that must hold
("Padding keys must get zero weight"), the function it is about, and a check that runs that
function on a case and raises :class:`~book.labs.compare.Mismatch` when the sentence does not hold.

* :mod:`book.labcheck` runs every rule on its public cases, on the functions of a notebook;
* the grader's spec of the lab (``autograder/specs/``, not shipped to students) gives each rule
  points, and runs it on the same cases (visible tests) or on cases drawn like them for each
  student (hidden tests).

So a rule the grader checks is always stated, and always has a public check of the same kind.
A check of one function never depends on another function of the student's: where a function
calls another the lab asks for (``self_attention`` calls ``split_heads``...), the check runs it
with the lab's reference for the callee (:attr:`Lab.references`), so a failure is reported against
the function that has the bug.
"""

from __future__ import annotations

import functools
import importlib
import pkgutil
import threading
from dataclasses import dataclass, field
from typing import Callable


@dataclass(frozen=True)
class Rule:
    """One rule of a lab: a sentence that must hold, the function it is about, and its check on a case."""

    name: str  # "sdpa_padding_mask": the public check's name and the graded test's
    function: str  # the student function the check calls
    sentence: str  # what must hold, as the student reads it in Colab and in the grader's feedback
    check: Callable  # check(student, case): returns when the sentence holds, raises Mismatch otherwise
    cases: dict  # the public cases by id ("" for a rule with a single, unnamed case)


@dataclass(frozen=True)
class Lab:
    """A lab as its public checks and its grader see it."""

    name: str  # "lab1": what --lab takes, labcheck.check_lab1, the gradebook's column
    title: str
    functions: tuple[str, ...]  # the functions students write, in the order the lab introduces them
    rules: tuple[Rule, ...]
    # Which of the lab's functions each one calls: a check of the caller runs with references for them.
    uses: dict[str, tuple[str, ...]] = field(default_factory=dict)
    references: dict[str, Callable] = field(default_factory=dict)  # stand-ins for the callees, from torch's own kernels

    def rule(self, name: str) -> Rule:
        found = {rule.name: rule for rule in self.rules}
        if name not in found:
            raise KeyError(f"{self.name} has no rule {name!r}: use one of {', '.join(found)}.")
        return found[name]


class Rules:
    """Collects a lab module's rules in the order they are written: ``@RULES.add(name, function, sentence, cases)``."""

    def __init__(self):
        self.rules: list[Rule] = []

    def add(self, name: str, function: str, sentence: str, cases: dict | None = None):
        def register(check):
            self.rules.append(Rule(name, function, sentence, check, dict(cases) if cases else {"": None}))
            return check

        return register


def names() -> list[str]:
    """Every lab of the course ("lab1", "lab2"...): the modules ``book/labs/lab<N>.py``, in order."""
    found = [m.name for m in pkgutil.iter_modules(__path__) if m.name.startswith("lab") and m.name[3:].isdigit()]
    return sorted(found, key=lambda name: int(name[3:]))


def load(lab: str) -> Lab:
    """The :class:`Lab` of ``lab`` ("lab1", "1", 1), from its module."""
    key = "lab" + str(lab).lower().removeprefix("lab").strip()
    if key not in names():
        raise ValueError(f"There is no lab {lab!r}: use one of {', '.join(names())}.")
    return importlib.import_module(f"book.labs.{key}").LAB


def cached(function):
    """Memoize a function of hashable arguments, thread-safely (truths computed once per process)."""
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


# Held while a truth runs one of the course models: the grader computes truths while submissions are
# graded side by side, and a forward hook on a shared module must capture its own forward pass only.
MODEL_LOCK = threading.RLock()


@cached
def course_model(role: str):
    """The tokenizer and model of a course role ("encoder", "decoder"), loaded once, never changed."""
    from book.models import load_model, load_tokenizer

    _quiet_loading()
    return load_tokenizer(role), load_model(role).requires_grad_(False)


@cached
def course_vocabulary_model(role: str):
    """The tokenizer and the layer-less model of a role (:func:`book.models.load_vocabulary_model`), loaded once:
    for truths that need only the embeddings."""
    from book.models import load_tokenizer, load_vocabulary_model

    _quiet_loading()
    return load_tokenizer(role), load_vocabulary_model(role).requires_grad_(False)


def _quiet_loading() -> None:
    """No per-tensor "Loading weights" bar: the models are local and load in a second."""
    from transformers.utils import logging as transformers_logging

    transformers_logging.disable_progress_bar()
