"""Comparing what a student's function returned with what it should have, in words a student can act on.

Every check raises :class:`Mismatch` (an ``AssertionError``) whose message says what was
expected, what came back, and where they differ most: a shape or dtype expected vs received,
the largest difference and its index, the first NaN, the rows of attention weights that do not
sum to one, and, when the wrong values are those of a known mistake, its likely cause. The
labs' public checks (Colab) and the grader's tests both compare with these functions, so a
student reads the same sentence in both places.

Tolerances
----------
Values are compared with ``|actual - expected| <= atol + rtol * |expected|``, where the expected
values are computed in float64 from the very inputs the student received (already rounded to
the test's dtype), so only the student's own rounding is measured. Each dtype's tolerance
(:data:`TOLERANCES`, ``atol = rtol``) is derived from evidence by :mod:`autograder.tolerances`:
for every numeric check it is at least twice the worst error of the equivalent correct
implementations (the reference, the catalogue's correct variants, torch's fused attention) and at
most half the error of the least visible known mistake, on the visible inputs and on hidden
inputs drawn for many students. ``python -m autograder tolerances`` prints that table;
``autograder/specs/tolerances.json`` records it, and a test measures it again.

On a GPU, fused kernels and another summation order move float32 results further from the
float64 truth than on a CPU, so a float32 result computed on a GPU gets :data:`GPU_SLACK` times the
tolerance (the evidence checks that the widened tolerance still catches every known mistake).
Only the labs' public checks see such results: the grader runs on a CPU.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class Tolerance:
    atol: float
    rtol: float

    def widened(self, factor: float) -> "Tolerance":
        return Tolerance(self.atol * factor, self.rtol * factor)


TOLERANCES = {
    torch.float64: Tolerance(1e-10, 1e-10),
    torch.float32: Tolerance(2e-5, 2e-5),
    torch.float16: Tolerance(5e-3, 5e-3),
    torch.bfloat16: Tolerance(4e-2, 4e-2),
}
# A low-precision result this many tolerances from the truth, and no known mistake, was likely computed in low precision.
LOW_PRECISION_BAND = 10.0
# How much wider a float32 tolerance is for a result computed on a GPU (other dtypes: unchanged).
GPU_SLACK = {torch.float32: 10.0}


def tolerance(dtype: torch.dtype, device: torch.device | str = "cpu") -> Tolerance:
    """The tolerance of ``dtype`` for a result computed on ``device`` (GPU slack included)."""
    base = TOLERANCES.get(dtype, TOLERANCES[torch.float32])
    return base.widened(GPU_SLACK.get(dtype, 1.0)) if torch.device(device).type != "cpu" else base


class Mismatch(AssertionError):
    """A result that is not what the test expects; its message is shown to the student as is."""


def _index(flat: int, shape) -> str:
    """The index ``[i, j, ...]`` of element ``flat`` of a tensor of ``shape`` (row-major), in plain Python:
    ``torch.unravel_index`` would import sympy (30 MB) into the grader the first time a check fails."""
    index = []
    for size in reversed(tuple(shape)):
        flat, i = divmod(int(flat), int(size))
        index.append(i)
    return "[" + ", ".join(str(i) for i in reversed(index)) + "]"


def _what(value) -> str:
    """What a returned value is, in a few words (a long repr is cut: feedback stays short)."""
    if isinstance(value, torch.Tensor):
        return f"a tensor of shape {tuple(value.shape)} and dtype {str(value.dtype).replace('torch.', '')}"
    if hasattr(value, "__describe__"):  # a value that could not cross to the grader (autograder.wire.Opaque)
        return value.__describe__()
    if isinstance(value, tuple):
        return f"a tuple of {len(value)}"
    if isinstance(value, list):
        return f"a list of {len(value)}"
    if hasattr(value, "shape"):
        return f"a {type(value).__name__}"
    text = repr(value)
    return f"a {type(value).__name__} ({text if len(text) <= 80 else text[:77] + '...'})"


def as_tensor(value, name: str) -> torch.Tensor:
    """``value`` if it is a torch tensor; otherwise say what it is instead, and how to make it one."""
    if not isinstance(value, torch.Tensor):
        hint = ""
        if type(value).__module__ == "numpy":
            hint = " (convert it with torch.from_numpy)"
        elif value is None:
            hint = " (does the function end with `return`?)"
        elif isinstance(value, (list, tuple)):
            hint = " (build the result with torch operations, or torch.stack a list of tensors)"
        raise Mismatch(f"{name}: expected a torch.Tensor, got {_what(value)}{hint}.")
    return value


def as_pair(value, name: str, first: str, second: str) -> tuple:
    """``value`` unpacked as a pair ``(first, second)``."""
    if not isinstance(value, (tuple, list)) or len(value) != 2:
        raise Mismatch(f"{name}: expected a pair ({first}, {second}), got {_what(value)}.")
    return tuple(value)


def check_shape(actual: torch.Tensor, expected: tuple, name: str, dims: str = "") -> None:
    if tuple(actual.shape) != tuple(expected):
        named = f" {dims}" if dims else ""
        hint = ""
        if sorted(actual.shape) == sorted(expected):
            hint = " The sizes are right but in another order: check which axes your transpose or permute swaps."
        raise Mismatch(f"{name}: shape {tuple(actual.shape)}, expected {tuple(expected)}{named}.{hint}")


def check_dtype(actual: torch.Tensor, expected: torch.dtype, name: str) -> None:
    if actual.dtype != expected:
        raise Mismatch(f"{name}: dtype {str(actual.dtype).replace('torch.', '')}, expected "
                       f"{str(expected).replace('torch.', '')} (the dtype of the inputs): cast the result back with .to(x.dtype).")


def check_finite(actual: torch.Tensor, name: str) -> None:
    if actual.is_floating_point():
        bad = ~torch.isfinite(actual)
        if bad.any():
            flat = int(bad.flatten().nonzero()[0])
            what = "NaN" if torch.isnan(actual.flatten()[flat]) else "an infinity"
            raise Mismatch(f"{name}: {what} found ({int(bad.sum())} non-finite values, the first at index "
                           f"{_index(flat, actual.shape)}): fully masked rows and padding must give finite numbers.")


@dataclass(frozen=True)
class Cause:
    """A known mistake and what it gives on a test's inputs: when a wrong result equals ``value``, ``hint`` says why."""

    hint: str  # "the softmax is taken over the queries (dim -2), not the keys: use softmax(dim=-1)."
    value: torch.Tensor


def _outside(actual: torch.Tensor, expected: torch.Tensor, limit: Tolerance, where=None) -> torch.Tensor:
    """Where ``actual`` differs from ``expected`` by more than ``limit`` (restricted to ``where``)."""
    got, want = actual.double(), expected.double()
    bad = (got - want).abs() > limit.atol + limit.rtol * want.abs()
    bad |= torch.isnan(got) != torch.isnan(want)
    if where is not None:
        bad &= torch.broadcast_to(where, bad.shape)
    return bad


def likely_cause(actual: torch.Tensor, causes, limit: Tolerance, where=None) -> str:
    """The hint of the first of ``causes`` (a list of :class:`Cause`, or a function giving one) that ``actual`` matches."""
    for cause in (causes() if callable(causes) else causes) or ():
        if cause.value.shape == actual.shape and not _outside(actual, cause.value, limit, where).any():
            return f" Likely cause: {cause.hint}"
    return ""


def check_close(actual, expected: torch.Tensor, name: str, dtype: torch.dtype | None = None,
                where: torch.Tensor | None = None, dims: str = "", causes=None) -> torch.Tensor:
    """``actual`` is a finite tensor of ``expected``'s shape, of ``dtype``, matching ``expected`` within that dtype's tolerance.

    ``expected`` may be more precise than ``dtype`` (float64 truth for a bfloat16 test); ``dtype``
    defaults to ``expected.dtype``. ``where`` (a bool tensor broadcastable to the shape) limits
    the comparison to the positions where not any answer is accepted (e.g. outside fully masked
    rows). ``dims`` names the expected dimensions in the shape message, e.g. ``"(B, H, Tq, Dh)"``.
    ``causes`` (a list of :class:`Cause`, or a function giving one, called only on a mismatch):
    the known mistakes to name when the wrong values are theirs. Returns ``actual``.
    """
    dtype = dtype or expected.dtype
    actual = as_tensor(actual, name)
    check_shape(actual, expected.shape, name, dims)
    check_dtype(actual, dtype, name)
    check_finite(actual, name)
    limit = tolerance(dtype, actual.device)
    actual, expected = actual.detach().cpu(), expected.detach().cpu()
    if where is not None:
        where = where.cpu()
    got, want = actual.double(), expected.double()
    error = (got - want).abs()
    bad = _outside(actual, expected, limit, where)
    if where is not None:
        error = torch.where(torch.broadcast_to(where, error.shape), error, 0.0)
    if bad.any():
        flat = int(error.flatten().argmax())
        at = _index(flat, error.shape)
        cause = likely_cause(actual, causes, limit, where)
        if not cause and dtype == torch.float64 and not _outside(actual, expected, TOLERANCES[torch.float32], where).any():
            cause = (" Likely cause: the errors are the size of float32 rounding: keep float64 inputs in float64 "
                     "(compute in torch.promote_types(x.dtype, torch.float32) rather than with .float()).")
        low = str(dtype).replace("torch.", "")
        if not cause and dtype in (torch.bfloat16, torch.float16) and \
                not _outside(actual, expected, limit.widened(LOW_PRECISION_BAND), where).any():
            cause = (f" Likely cause: the errors are of the size that arithmetic computed in {low} leaves (a softmax or "
                     f"a sum computed in {low}): compute in float32 (torch.promote_types(x.dtype, torch.float32)) and "
                     "cast the result back.")
        raise Mismatch(
            f"{name}: wrong values; the largest difference is {error.flatten()[flat]:.3g}, at index "
            f"{at} (yours {got.flatten()[flat]:.6g}, expected {want.flatten()[flat]:.6g}); {int(bad.sum())} of "
            f"{bad.numel()} values are outside the tolerance (atol {limit.atol:g}, rtol {limit.rtol:g} "
            f"for {str(dtype).replace('torch.', '')})." + cause
        )
    return actual


def check_rows_sum_to_one(weights: torch.Tensor, rows: torch.Tensor | None = None, name: str = "the attention weights",
                          head_width: int | None = None) -> None:
    """Each row of ``weights`` (B, H, Tq, Tk) sums to 1 along the keys, where ``rows`` (B, 1, Tq) allows any key.

    ``head_width`` (Dh) lets the message recognise rows that all sum to 1/√Dh.
    """
    weights = as_tensor(weights, name)
    check_finite(weights, name)
    limit = tolerance(weights.dtype, weights.device)
    weights = weights.detach().cpu()
    sums = weights.double().sum(dim=-1)  # (B, H, Tq)
    slack = limit.atol * weights.shape[-1] + limit.rtol
    bad = (sums - 1).abs() > slack
    if rows is not None:
        bad &= torch.broadcast_to(rows.cpu(), bad.shape)
    if bad.any():
        flat = int(bad.flatten().nonzero()[0])
        at = _index(flat, bad.shape)
        along_queries = weights.double().sum(dim=-2)  # (B, H, Tk)
        checked = sums[bad]  # the rows that are off
        if torch.allclose(along_queries, torch.ones_like(along_queries), atol=slack):
            hint = " They sum to 1 along the queries (dim -2) instead: take the softmax over the last dimension, the keys."
        elif head_width and torch.allclose(checked, torch.full_like(checked, head_width ** -0.5), atol=slack):
            hint = (f" Every such row sums to 1/√Dh = {head_width ** -0.5:.4g}: divide the scores by √Dh before the "
                    "softmax, not the weights after it.")
        elif bool((checked.abs() <= slack).any()):
            hint = (" Some rows are all zeros although their query has keys it may see: is the padding mask inverted? "
                    "attention_mask is 1 for a real token and 0 for padding.")
        elif bool((checked < 1).all()):
            hint = (" They sum to less than 1: were the masked keys zeroed after the softmax? Fill their scores with a "
                    "large negative number before it, so that the softmax shares the weight among the visible keys.")
        else:
            hint = " Is the softmax taken over the last dimension (the keys), after masking?"
        raise Mismatch(f"{name}: the row at {at} sums to {sums.flatten()[flat]:.4g} along the keys, not 1 "
                       f"({int(bad.sum())} of {bad.numel()} rows are off).{hint}")


def check_zero_where(actual: torch.Tensor, masked: torch.Tensor, name: str, why: str) -> None:
    """``actual`` is (numerically) zero wherever ``masked`` is true."""
    limit = tolerance(actual.dtype, actual.device)
    actual = actual.detach().cpu()
    masked = torch.broadcast_to(masked.cpu(), actual.shape)
    leak = actual.double().abs() * masked
    if leak.max() > limit.atol:
        flat = int(leak.flatten().argmax())
        raise Mismatch(f"{name}: expected 0 where {why}, got {actual.flatten()[flat].item():.4g} at index "
                       f"{_index(flat, actual.shape)} ({int((leak > 0).sum())} such values).")


def check_equal(actual, expected, name: str) -> None:
    """Exact equality of plain values (ids, lists, strings)."""
    if actual != expected:
        raise Mismatch(f"{name}: got {actual!r}, expected {expected!r}.")
