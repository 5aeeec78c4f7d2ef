"""``tolerances``: the evidence behind every numeric tolerance of the specs, measured, and checked against them.

A check passes when ``|actual - expected| <= t + t·|expected|`` everywhere, with ``t`` the
tolerance of the test's dtype (:data:`book.labs.compare.TOLERANCES`) and the expected values
computed in float64 from the inputs the student received. So for a result the only number that
matters is the smallest ``t`` it would pass with (:func:`needed`). For each numeric check and
dtype this module measures that number for

* **equivalent correct implementations**: the reference solution, the catalogue's correct
  variants (einsum, loops, float64 inside, the dtype's minimum as the mask, torch's fused
  attention, batches sorted by length...), and for attention ``torch.nn.functional.
  scaled_dot_product_attention`` itself, in the test's dtype: the worst of them must pass with
  a margin, ``correct × MARGIN <= t``;
* **the known mistakes** the specs name in their feedback (a wrong scale or softmax axis, the
  mask after the softmax, padding averaged in, a sum instead of a mean, ...), each computed
  exactly and rounded to the test's dtype as a student's code would be, on the case where it
  shows most: the least visible of them must still fail with a margin, ``t × MARGIN <= mistake``;

over the inputs of the visible tests and of the hidden tests drawn for several students. The
table (``python -m autograder tolerances``) is the derivation; ``--write`` records it in the
checkout's ``autograder/specs/tolerances.json`` (``--write FILE`` elsewhere; never inside an
installed package), which the instructors' page shows, and
``tests/test_autograder_tolerances.py`` measures again (fewer students) and fails when a
tolerance no longer sits between its two bounds.

    python -m autograder tolerances              # the table, 8 students' hidden inputs
    python -m autograder tolerances --students 20 --write
"""

from __future__ import annotations

import argparse
import copy
import importlib.util
import json
import sys
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import torch
import torch.nn.functional as F

from book import ROOT
from book.labs.compare import GPU_SLACK, TOLERANCES
from autograder.seeding import Draw
from book.labs.calls import linear_module

MARGIN = 2.0
RECORD = ROOT / "autograder" / "specs" / "tolerances.json"
CATALOGUE = ROOT / "autograder" / "catalogue"
DTYPES = (torch.float64, torch.float32, torch.bfloat16)


def needed(actual: torch.Tensor, expected: torch.Tensor, where: torch.Tensor | None = None) -> float:
    """The smallest ``t`` with ``|actual - expected| <= t + t·|expected|`` everywhere (inside ``where``); inf for NaN."""
    got, want = actual.double(), expected.double()
    ratio = (got - want).abs() / (1 + want.abs())
    ratio = torch.where(torch.isnan(ratio), torch.inf, ratio)
    if where is not None:
        ratio = torch.where(torch.broadcast_to(where, ratio.shape), ratio, 0.0)
    return float(ratio.max()) if ratio.numel() else 0.0


@dataclass
class Row:
    """The evidence for one check in one dtype."""

    check: str
    dtype: str
    tolerance: float
    correct: float = 0.0  # the worst t a correct implementation needs
    correct_by: str = ""
    mistake: float = float("inf")  # the least visible known mistake, at the case where it shows most
    mistake_by: str = ""
    cases: int = 0

    @property
    def gpu_slack(self) -> float:
        """How much wider the tolerance is for a result computed on a GPU (book.labs.compare.GPU_SLACK)."""
        return GPU_SLACK.get(getattr(torch, self.dtype), 1.0)

    @property
    def ok(self) -> bool:
        """Correct answers pass with a margin; the least visible mistake fails with a margin, GPU slack included."""
        return self.correct * MARGIN <= self.tolerance and self.tolerance * self.gpu_slack * MARGIN <= self.mistake

    def add_correct(self, value: float, by: str) -> None:
        if value > self.correct or not self.correct_by:  # exact everywhere (max_pool): the first one is named
            self.correct, self.correct_by = value, by

    def why(self) -> str:
        """The worst correct implementation and the least visible mistake, in words."""
        correct = (f"{self.correct_by} (every correct implementation is exact)" if self.correct == 0
                   else f"{self.correct_by} ({self.correct:.2e})")
        return f"{self.check} ({self.dtype}): worst correct: {correct}; least visible mistake: {self.mistake_by or 'none'}"

    def to_dict(self) -> dict:
        data = asdict(self)
        data["gpu_slack"] = self.gpu_slack
        data["ok"] = self.ok
        data["mistake"] = None if self.mistake == float("inf") else self.mistake  # inf: NaN or infinite values
        return data


def _module(path: Path):
    spec = importlib.util.spec_from_file_location(f"_variant_{path.stem}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def correct_implementations(lab: str, reference: str) -> dict:
    """The reference solution and the catalogue's correct variants of ``lab``: name -> module (our own, trusted code)."""
    found = {"reference": _module(ROOT / reference)}
    for path in sorted((CATALOGUE / lab).glob("correct_*.py")):
        found[path.stem] = _module(path)
    return found


class Mistakes:
    """Per known mistake, the largest ``t`` it needs over the cases where it is really different (its most visible case)."""

    def __init__(self):
        self.worst: dict[str, float] = {}

    def add(self, hint: str, value: torch.Tensor, expected: torch.Tensor, dtype, where=None) -> None:
        exact = needed(value, expected, where)
        if exact <= 1e-9:
            return  # the same result as the truth on this case: not a mistake here
        self.worst[hint] = max(self.worst.get(hint, 0.0), needed(value.to(dtype), expected, where))

    def settle(self, row: Row) -> None:
        for hint, value in self.worst.items():
            if value < row.mistake or not row.mistake_by:
                row.mistake, row.mistake_by = value, hint


def _students(count: int) -> list[int]:
    from autograder.seeding import student_seed

    return [student_seed(f"evidence-{i}", "tolerance evidence") for i in range(count)]


def _cases(module, kind, students: int, dtype=None, rules=None) -> list:
    """The public cases of a spec's tests whose case is a ``kind`` (and whose rule is in ``rules``, if given) and, for
    its hidden tests, cases drawn like them for ``students`` students; ``dtype`` replaces every case's dtype."""
    from autograder import spec

    templates = []
    for test in spec.collect(module):
        case, marks = test.kwargs.get("case"), test.function._grading
        if isinstance(case, kind) and (rules is None or marks.rule in rules):
            if dtype is not None:  # large scores (a case's scale) are for its own dtype: the others get ordinary ones
                case = replace(case, dtype=dtype, scale=case.scale if dtype == case.dtype else 1.0) \
                    if hasattr(case, "scale") else replace(case, dtype=dtype)
            templates.append((test.name, case, marks.draw))
    cases = [case for _, case, _ in templates]
    for seed in _students(students):
        cases += [draw(case, Draw(seed, name)) for name, case, draw in templates if draw is not None]
    return cases


def attention_rows(students: int) -> list[Row]:
    """scaled_dot_product_attention's output and weights, per dtype, on every attention case of the lab 1 spec."""
    from autograder.specs import lab1_attention as spec1
    from book.labs import lab1

    implementations = correct_implementations("lab1", spec1.LAB.reference)
    rows = []
    for dtype in DTYPES:
        label = str(dtype).replace("torch.", "")
        out_row = Row("scaled_dot_product_attention: output", label, TOLERANCES[dtype].atol)
        w_row = Row("scaled_dot_product_attention: weights", label, TOLERANCES[dtype].atol)
        out_mistakes, w_mistakes = Mistakes(), Mistakes()
        cases = _cases(spec1, lab1.Case, students, dtype)
        for case in cases:
            (q, k, v), kwargs, allowed, seen, output, weights = lab1.attention_case(case)
            for name, implementation in implementations.items():
                got_out, got_w = implementation.scaled_dot_product_attention(q, k, v, **kwargs)
                out_row.add_correct(needed(got_out, output, seen), name)
                w_row.add_correct(needed(got_w, weights, seen), name)
            fused = F.scaled_dot_product_attention(q, k, v, attn_mask=allowed)  # (B, H, Tq, Dh), the library's kernel
            out_row.add_correct(needed(fused, output, seen), "torch's fused attention")
            on_weights, on_output = lab1.attention_causes(case)
            for cause in on_weights:
                w_mistakes.add(cause.hint, cause.value, weights, dtype, seen)
            for cause in on_output:
                out_mistakes.add(cause.hint, cause.value, output, dtype, seen)
        out_mistakes.settle(out_row)
        w_mistakes.settle(w_row)
        out_row.cases = w_row.cases = len(cases)
        rows += [out_row, w_row]
    return rows


def self_attention_rows(students: int) -> list[Row]:
    """self_attention on MiniLM layers (the visible sentences and drawn corpus ones) and on small random layers."""
    from autograder.specs import lab1_attention as spec1
    from book.labs import lab1

    implementations = correct_implementations("lab1", spec1.LAB.reference)
    row = Row("self_attention", "float32", TOLERANCES[torch.float32].atol)
    mistakes = Mistakes()
    keys = [("minilm", 3, lab1.SENTENCES)]
    for seed in _students(students):
        draw = Draw(seed, "self_attention")
        keys.append(("minilm", draw.integer(0, 5), spec1.drawn_sentences(draw)))
        keys.append(("small",) + spec1.drawn_small_layer(None, draw))
    for key in keys:
        hidden, mask, projections, heads, expected = (lab1.minilm_layer_case(*key[1:]) if key[0] == "minilm"
                                                      else lab1.small_layer_case(*key[1:]))
        layers = [linear_module(p.weight, p.bias) for p in projections]  # what the worker builds
        for name, implementation in implementations.items():
            with torch.no_grad():
                got = implementation.self_attention(hidden, mask, *layers, heads)
            row.add_correct(needed(got, expected), name)
        for cause in lab1.self_attention_causes(key):
            mistakes.add(cause.hint, cause.value, expected, torch.float32)
    mistakes.settle(row)
    row.cases = len(keys)
    return [row]


def pooling_rows(students: int) -> list[Row]:
    """mean_pool and max_pool, per dtype, on the lab 2 spec's cases and drawn ones."""
    from autograder.specs import lab2_pooling as spec2
    from book.labs import lab2

    implementations = correct_implementations("lab2", spec2.LAB.reference)
    rows = []
    for function in ("mean_pool", "max_pool"):
        for dtype in DTYPES:
            label = str(dtype).replace("torch.", "")
            row = Row(function, label, TOLERANCES[dtype].atol)
            mistakes = Mistakes()
            rules = {rule.name for rule in lab2.LAB.rules if rule.function == function}
            cases = _cases(spec2, lab2.Pooling, students, dtype, rules)
            for case in cases:
                hidden, mask, truths = lab2.pooling_case(case)
                truth = truths[function.split("_")[0]]
                for name, implementation in implementations.items():
                    row.add_correct(needed(getattr(implementation, function)(hidden, mask), truth), name)
                for cause in lab2.pooling_causes(function, hidden, mask):
                    mistakes.add(cause.hint, cause.value, truth, dtype)
            mistakes.settle(row)
            row.cases = len(cases)
            rows.append(row)
    return rows


def embedding_rows(students: int) -> list[Row]:
    """embed_sentences against sentence-transformers' encode, on the lab's texts and drawn corpus sentences."""
    from autograder.specs import lab2_pooling as spec2
    from book.labs import course_model, lab2

    implementations = correct_implementations("lab2", spec2.LAB.reference)
    tokenizer, model = course_model("encoder")
    row = Row("embed_sentences", "float32", TOLERANCES[torch.float32].atol)
    mistakes = Mistakes()
    cases = _cases(spec2, lab2.Texts, students)
    for case in cases:
        expected = case.expected()
        for name, implementation in implementations.items():
            with torch.no_grad():
                got = implementation.embed_sentences(list(case.texts), tokenizer, model, batch_size=case.batch_size)
            row.add_correct(needed(got, expected), name)
        for cause in lab2.embedding_causes(case.texts, case.batch_size):
            mistakes.add(cause.hint, cause.value, expected, torch.float32)
    mistakes.settle(row)
    row.cases = len(cases)
    return [row]


def token_rows(students: int) -> list[Row]:
    """add_tokens' new embedding rows (the mean of the pieces' rows) on the lab 3 cases and drawn ones."""
    from autograder.specs import lab3_tokens as spec3
    from book.labs import course_vocabulary_model, lab3

    implementations = correct_implementations("lab3", spec3.LAB.reference)
    row = Row("add_tokens: new rows", "float32", TOLERANCES[torch.float32].atol)
    mistakes = Mistakes()
    cases = list(lab3.CASES.values())
    cases += [spec3.drawn_case(case, Draw(seed, "x")) for seed in _students(students) for case in lab3.CASES.values()]
    loaded = {role: course_vocabulary_model(role) for role in {c.role for c in cases}}
    for case in cases:
        expected = lab3.expectation(case)
        for name, implementation in implementations.items():
            tokenizer, model = (copy.deepcopy(x) for x in loaded[case.role])
            kwargs = {"special": True} if case.special else {}
            ids = implementation.add_tokens(tokenizer, model, list(case.strings), **kwargs)
            weight = model.get_input_embeddings().weight.detach()
            for s, token_id in zip(case.strings, ids):
                if s in expected["new"]:
                    row.add_correct(needed(weight[token_id], expected["means"][s]), name)
        for s in expected["new"]:
            for cause in expected["causes"][s]:
                mistakes.add(cause.hint, cause.value, expected["means"][s], torch.float32)
    mistakes.settle(row)
    row.cases = len(cases)
    return [row]


def measure(students: int = 8) -> list[Row]:
    """Every row of the evidence, measured on the visible cases and ``students`` students' hidden ones."""
    from transformers.utils import logging as transformers_logging

    torch.manual_seed(0)
    transformers_logging.set_verbosity_error()  # resizing's notes and loading bars are not evidence
    transformers_logging.disable_progress_bar()
    return (attention_rows(students) + self_attention_rows(students) + pooling_rows(students)
            + embedding_rows(students) + token_rows(students))


def table(rows: list[Row]) -> str:
    lines = [f"{'check':40} {'dtype':9} {'worst correct':>13} {'tolerance':>10} {'least mistake':>13}  ok  (margin {MARGIN:g}x)"]
    for row in rows:
        mistake = "-" if not row.mistake_by else f"{row.mistake:.2e}"
        lines.append(f"{row.check:40} {row.dtype:9} {row.correct:13.2e} {row.tolerance:10.0e} {mistake:>13}  "
                     f"{'yes' if row.ok else 'NO'}")
    return "\n".join(lines)


class RecordError(ValueError):
    """Where ``--write`` would write the evidence is no place for it; the message says where instead."""


def write_target(path: Path | None) -> Path:
    """Where ``--write`` writes: ``path`` when given, else the checkout's record (:data:`RECORD`), never a file inside
    an installed package (it would be lost at the next install, and change every installation's record)."""
    if path is not None:
        return Path(path)
    installed = {"site-packages", "dist-packages"} & set(RECORD.parts) or not (ROOT / "pyproject.toml").is_file()
    if installed:
        raise RecordError(f"The autograder is installed as a package ({RECORD.parent} is inside it), so --write would "
                          "change the installed copy: give a file, --write tolerances.json, and copy it into your "
                          "checkout's autograder/specs/ to make it the course's record.")
    return RECORD


def main(argv: list[str] | None = None) -> int:
    from autograder import cli

    parser = cli.parser("tolerances")
    parser.add_argument("--students", type=int, default=8, help="students whose hidden inputs are drawn (default 8)")
    parser.add_argument("--write", nargs="?", type=Path, const=False, default=None, metavar="FILE",
                        help="record the evidence: in FILE, or without one in the checkout's autograder/specs/"
                             "tolerances.json (never inside an installed package)")
    parser.add_argument("--why", action="store_true", help="name the worst correct implementation and the least visible mistake")
    args = parser.parse_args(argv)
    target = None
    if args.write is not None:
        try:
            target = write_target(args.write or None)
        except RecordError as error:
            parser.error(str(error))
    rows = measure(args.students)
    print(table(rows))
    if args.why:
        for row in rows:
            print(f"\n{row.why()}")
    if target is not None:
        target.write_text(json.dumps({"margin": MARGIN, "students": args.students,
                                      "rows": [r.to_dict() for r in rows]}, indent=1) + "\n")
        print(f"\nwrote {target}")
    bad = [r for r in rows if not r.ok]
    if bad:
        print(f"\n{len(bad)} tolerance(s) outside their evidence: " + ", ".join(f"{r.check} ({r.dtype})" for r in bad),
              file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
