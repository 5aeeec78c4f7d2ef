"""The labs' public self-checks: every rule of a lab, run on its public cases, on the functions of a notebook.

Each lab ends its parts with a cell such as::

    from book import labcheck
    labcheck.check_lab1(globals(), only="split_heads")

which finds the lab's functions in the notebook's namespace, runs each rule of the lab
(:mod:`book.labs`) that is about them, prints one line per rule, ``PASS <name>`` or
``FAIL <name>: <what is wrong>``, then a summary line ``N of M public checks passed; hidden tests
run at grading``, and returns a :class:`CheckReport`. The rules, their cases, their truths and the
wording of every failure are the grader's own: a hidden test is the same rule on cases drawn for
each student, so a function that passes here fails a hidden test only on a kind of input these
cases do not have. A student's exception never escapes: it becomes a FAIL line (a stub's
``NotImplementedError`` reads "not implemented yet"), so a lab with its stubs runs to the end.
``labcheck.check_lab<N>`` exists for every lab in :mod:`book.labs`.
"""

from __future__ import annotations

import copy
import traceback
from dataclasses import dataclass, field
from typing import Iterable

from book import labs
from book.labs.calls import Reply, linear_module, observe, references_in
from book.labs.compare import Mismatch

# Frames from these paths are library code, not the student's, when an error is explained.
LIBRARY_PATHS = ("site-packages", "dist-packages", "/torch/", "/transformers/", "/book/labs/")
SUMMARY = "{passed} of {total} public checks passed; hidden tests run at grading"


@dataclass(frozen=True)
class CheckResult:
    name: str
    function: str
    passed: bool
    hint: str = ""

    def line(self) -> str:
        return f"PASS {self.name}" if self.passed else f"FAIL {self.name}: {self.hint}"


@dataclass
class CheckReport:
    """What one self-check cell found: a result per rule, and the counts."""

    lab: str
    results: list[CheckResult] = field(default_factory=list)

    @property
    def passed(self) -> int:
        return sum(result.passed for result in self.results)

    @property
    def total(self) -> int:
        return len(self.results)

    @property
    def failed(self) -> list[str]:
        return [result.name for result in self.results if not result.passed]

    @property
    def all_passed(self) -> bool:
        return self.passed == self.total

    def summary(self) -> str:
        return SUMMARY.format(passed=self.passed, total=self.total)

    def __str__(self) -> str:
        return "\n".join([result.line() for result in self.results] + [self.summary()])

    def __repr__(self) -> str:
        return f"CheckReport(lab={self.lab!r}, passed={self.passed}, total={self.total})"

    def _ipython_display_(self) -> None:
        """Show nothing when a cell ends with the call: its lines were printed as the checks ran."""


class _Missing(Exception):
    """A function the rule calls is not defined in the notebook."""


@dataclass(frozen=True)
class Preloaded:
    """A handle on a course model or tokenizer ("encoder_model", "decoder_tokenizer"), resolved at call time."""

    name: str


class NotebookStudent:
    """The functions of a notebook, as a rule's check calls them (see :mod:`book.labs.calls`).

    Arguments are copied (a function that changes its input in place changes a copy) and moved to
    the course device; a function that calls another function of the lab calls the lab's
    reference for it; a ``fresh`` call gets copies of the preloaded models, which it may change.
    Identical calls of a function that receives no tensor are answered once.
    """

    def __init__(self, lab: labs.Lab, namespace: dict):
        self.lab = lab
        self.namespace = namespace
        self._memo: dict[str, object] = {}

    def __getattr__(self, name: str):
        if name.startswith("_"):
            raise AttributeError(name)
        return lambda *args, **kwargs: self.call(name, *args, **kwargs).result

    def preloaded(self, name: str) -> Preloaded:
        return Preloaded(name)

    def linear(self, weight, bias):
        return linear_module(weight, bias)

    def call(self, function: str, *args, fresh: bool = False, observe: Iterable = (), **kwargs) -> Reply:
        key = _memo_key(function, args, kwargs, fresh, observe)
        if key is not None and key in self._memo:
            memo = self._memo[key]
            if isinstance(memo, BaseException):
                raise memo
            return memo
        try:
            reply = self._call(function, args, kwargs, fresh, list(observe))
        except BaseException as error:
            if key is not None:
                self._memo[key] = error
            raise
        if key is not None:
            self._memo[key] = reply
        return reply

    def _call(self, function, args, kwargs, fresh, specs) -> Reply:
        target = self.namespace.get(function)
        if not callable(target):
            raise _Missing(function)
        device = _device()
        args = [_prepare(a, fresh, device) for a in args]
        kwargs = {k: _prepare(v, fresh, device) for k, v in kwargs.items()}
        references = {name: self.lab.references[name] for name in self.lab.uses.get(function, ())}
        with references_in(self.namespace, references):
            result = target(*args, **kwargs)
        _same_device(result, device, function)
        return Reply(result, {spec["name"]: observe(spec, args) for spec in specs})


def _device():
    from book.env import device

    return device()


def _memo_key(function, args, kwargs, fresh, specs) -> str | None:
    import torch

    values = list(args) + list(kwargs.values())
    if any(isinstance(v, (torch.Tensor, torch.nn.Module)) for v in values):
        return None
    return repr((function, args, sorted(kwargs.items()), fresh, list(specs)))


def _prepare(value, fresh: bool, device):
    """An argument as the student's function receives it: a copy, on the course device; a preloaded model resolved."""
    import torch

    if isinstance(value, Preloaded):
        return _resolve(value.name, fresh, device)
    if isinstance(value, torch.Tensor):
        return value.detach().clone().to(device)
    if isinstance(value, torch.nn.Module):
        return copy.deepcopy(value).to(device)
    if isinstance(value, list):
        return [_prepare(v, fresh, device) for v in value]
    if isinstance(value, tuple):
        return tuple(_prepare(v, fresh, device) for v in value)
    return value


def _resolve(name: str, fresh: bool, device):
    """A course model or tokenizer; with ``fresh`` a copy the function may change (a model's embeddings and head are
    copied, its other weights shared: a copy of SmolLM2 stays cheap)."""
    role, _, kind = name.partition("_")
    loader = labs.course_vocabulary_model if role == "decoder" else labs.course_model
    tokenizer, model = loader(role)
    if kind == "tokenizer":
        return copy.deepcopy(tokenizer) if fresh else tokenizer
    model = model.to(device)
    if not fresh:
        return model
    embeddings = model.get_input_embeddings().weight
    shared = {id(p): p for p in model.parameters() if p is not embeddings}
    return copy.deepcopy(model, memo=shared)


def _same_device(result, device, function: str) -> None:
    """A tensor result must lie where the inputs were (a new tensor made without device=x.device lies on the CPU)."""
    import torch

    for value in result if isinstance(result, (tuple, list)) else [result]:
        if isinstance(value, torch.Tensor) and not _on(value.device, torch.device(device)):
            raise Mismatch(f"{function} returned a tensor on {value.device}, but its inputs were on {device}: create new "
                           "tensors with device=x.device.")


def _on(where: "torch.device", device: "torch.device") -> bool:
    """Whether a tensor on ``where`` lies on ``device``: ``cuda`` means the current GPU, ``cuda:0`` one GPU."""
    return where.type == device.type and (device.index is None or where.index == device.index)


# --------------------------------------------------------------------------------------------
# Running checks
# --------------------------------------------------------------------------------------------


def public_checks(lab) -> list[str]:
    """The names of a lab's public checks (its rules), in the order they run."""
    return [rule.name for rule in labs.load(lab).rules]


def run_checks(lab, namespace: dict, only: str | Iterable[str] | None = None, quiet: bool = False) -> CheckReport:
    """Run the rules of lab ``lab`` (all, or those of the functions or rules named in ``only``) on ``namespace``.

    ``namespace`` is the notebook's ``globals()``. Prints ``PASS name`` or ``FAIL name: hint`` per
    rule and a summary line (unless ``quiet``); returns the :class:`CheckReport`.
    """
    definition = labs.load(lab)
    rules = list(definition.rules)
    if only is not None:
        wanted = {only} if isinstance(only, str) else set(only)
        known = {rule.function for rule in rules} | {rule.name for rule in rules}
        if wanted - known:
            raise ValueError(f"No check or function named {sorted(wanted - known)} in {definition.name}: use some of "
                             f"{sorted(known)}.")
        rules = [rule for rule in rules if rule.function in wanted or rule.name in wanted]
    student = NotebookStudent(definition, namespace)
    report = CheckReport(definition.name)
    for rule in rules:
        result = _run_one(rule, student)
        report.results.append(result)
        if not quiet:
            print(result.line(), flush=True)
    if not quiet:
        print(report.summary(), flush=True)
    return report


def __getattr__(name: str):
    """``check_lab1(namespace, only=None)`` and the like, for every lab of :mod:`book.labs`."""
    if name.startswith("check_lab") and name.removeprefix("check_") in labs.names():
        lab = name.removeprefix("check_")

        def check(namespace: dict, only: str | Iterable[str] | None = None) -> CheckReport:
            return run_checks(lab, namespace, only)

        check.__name__ = name
        check.__doc__ = f"Run the public checks of {lab} ({labs.load(lab).title}) on the functions of ``namespace``."
        return check
    raise AttributeError(f"module 'book.labcheck' has no attribute {name!r}")


def _run_one(rule: labs.Rule, student: NotebookStudent) -> CheckResult:
    try:
        for case in rule.cases.values():
            rule.check(student, case)
    except _Missing as missing:
        return CheckResult(rule.name, rule.function, False, f"{missing} is not defined: run the cell that defines it first.")
    except Mismatch as failure:  # the rule, then what is wrong: the grader's feedback reads the same
        return CheckResult(rule.name, rule.function, False, f"{rule.sentence} {failure}")
    except Exception as error:  # a student's bug must become a FAIL line, never stop the notebook
        described = _describe_error(error, rule.function)
        hint = described if isinstance(error, NotImplementedError) else f"{rule.sentence} {described}"
        return CheckResult(rule.name, rule.function, False, hint)
    return CheckResult(rule.name, rule.function, True)


def _describe_error(error: Exception, called: str) -> str:
    """One line for an exception raised by a student's code: what, and in which of their functions."""
    frames = traceback.extract_tb(error.__traceback__)
    # The deepest frame outside the libraries and this module is where the student's code failed.
    own = [f for f in frames if f.filename != __file__ and not any(part in f.filename for part in LIBRARY_PATHS)]
    where = own[-1].name if own else called
    if isinstance(error, NotImplementedError):
        return "not implemented yet" + (f" ({where} raises NotImplementedError)" if where != called else "")
    message = " ".join(str(error).split())
    if len(message) > 300:
        message = message[:297] + "..."
    place = f" in {where}" if where not in (called, "<module>") else ""
    return f"{type(error).__name__}{place}: {message}" if message else f"{type(error).__name__}{place}"
