"""The labs' public self-checks: run a student's functions on small cases and say what is wrong.

Each lab ends its parts with a cell such as::

    from book import labcheck
    labcheck.check_lab1(globals(), only="split_heads")

which finds the lab's functions in the notebook's namespace, runs each public check and prints
one line per check, ``PASS <name>`` or ``FAIL <name>: <hint>``, then a summary line
``N of M public checks passed; hidden tests run at grading``. It returns a
:class:`CheckReport` with the counts.

Every check compares the student's function with an independent truth: torch's own
``F.scaled_dot_product_attention``, the attention of a real MiniLM layer, sentence-transformers'
``encode``, the tokenizer and embedding matrix as they were before the call. None of them
imports ``solutions/``. Inputs are small, seeded and of distinct odd sizes (7, 13, 37...) so
that swapped axes fail loudly. A student's exception never escapes: it becomes a FAIL line
(a stub's ``NotImplementedError`` reads "not implemented yet"), so a lab with its stubs still
runs to the end. These checks are public and few; the grade comes from hidden tests.
"""

from __future__ import annotations

import copy
import functools
import traceback
from dataclasses import dataclass, field
from typing import Callable, Iterable

# Which functions each lab asks for, in the order the lab introduces them.
LAB_FUNCTIONS: dict[str, tuple[str, ...]] = {
    "lab1": ("split_heads", "merge_heads", "scaled_dot_product_attention", "repeat_kv", "self_attention"),
    "lab2": ("mean_pool", "max_pool", "embed_sentences"),
    "lab3": ("add_tokens",),
}
# Frames from these paths are library code, not the student's, when an error is explained.
LIBRARY_PATHS = ("site-packages", "dist-packages", "/torch/", "/transformers/")
SUMMARY = "{passed} of {total} public checks passed; hidden tests run at grading"


class CheckFailed(AssertionError):
    """A check's verdict: the student's result is wrong, and the message says how."""


@dataclass(frozen=True)
class Check:
    """One public check: its name, the student function it calls and the code that judges it."""

    name: str
    function: str
    run: Callable  # run(student_function) -> None, raises CheckFailed with a hint


@dataclass(frozen=True)
class CheckResult:
    name: str
    passed: bool
    hint: str = ""

    def line(self) -> str:
        return f"PASS {self.name}" if self.passed else f"FAIL {self.name}: {self.hint}"


@dataclass
class CheckReport:
    """What one self-check cell found: a result per check, and the counts."""

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


CHECKS: dict[str, list[Check]] = {lab: [] for lab in LAB_FUNCTIONS}


def _check(lab: str, name: str, function: str):
    """Register the decorated function as a public check of ``lab``."""

    def register(run):
        CHECKS[lab].append(Check(name, function, run))
        return run

    return register


# --------------------------------------------------------------------------------------------
# Running checks
# --------------------------------------------------------------------------------------------


def _lab_key(lab) -> str:
    key = str(lab).lower().removeprefix("lab").strip()
    if f"lab{key}" not in CHECKS:
        raise ValueError(f"There is no lab {lab!r}: use one of {', '.join(k.removeprefix('lab') for k in CHECKS)}.")
    return f"lab{key}"


def public_checks(lab) -> list[str]:
    """The names of a lab's public checks, in the order they run."""
    return [check.name for check in CHECKS[_lab_key(lab)]]


def run_checks(lab, namespace: dict, only: str | Iterable[str] | None = None) -> CheckReport:
    """Run lab ``lab``'s public checks (all, or those of the functions or checks named in ``only``) on the functions in ``namespace``.

    ``namespace`` is the notebook's ``globals()``. Prints ``PASS name`` or ``FAIL name: hint``
    per check and a summary line; returns the :class:`CheckReport`.
    """
    key = _lab_key(lab)
    checks = CHECKS[key]
    if only is not None:
        wanted = {only} if isinstance(only, str) else set(only)
        known = {check.function for check in checks} | {check.name for check in checks}
        if wanted - known:
            raise ValueError(f"No check or function named {sorted(wanted - known)} in {key}: use some of {sorted(known)}.")
        checks = [check for check in checks if check.function in wanted or check.name in wanted]
    report = CheckReport(key)
    for check in checks:
        result = _run_one(check, namespace)
        report.results.append(result)
        print(result.line(), flush=True)
    print(report.summary(), flush=True)
    return report


def check_lab1(namespace: dict, only: str | Iterable[str] | None = None) -> CheckReport:
    """Lab 1 (attention): check split_heads, merge_heads, scaled_dot_product_attention, repeat_kv, self_attention."""
    return run_checks("lab1", namespace, only)


def check_lab2(namespace: dict, only: str | Iterable[str] | None = None) -> CheckReport:
    """Lab 2 (pooling): check mean_pool, max_pool, embed_sentences."""
    return run_checks("lab2", namespace, only)


def check_lab3(namespace: dict, only: str | Iterable[str] | None = None) -> CheckReport:
    """Lab 3 (tokens): check add_tokens."""
    return run_checks("lab3", namespace, only)


def _run_one(check: Check, namespace: dict) -> CheckResult:
    function = namespace.get(check.function)
    if not callable(function):
        return CheckResult(check.name, False, f"{check.function} is not defined: run the cell that defines it first.")
    try:
        check.run(function)
    except CheckFailed as failure:
        return CheckResult(check.name, False, str(failure))
    except Exception as error:  # a student's bug must become a FAIL line, never stop the notebook
        return CheckResult(check.name, False, _describe_error(error, check.function))
    return CheckResult(check.name, True)


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


# --------------------------------------------------------------------------------------------
# Judging results
# --------------------------------------------------------------------------------------------


def _device():
    from book.env import device

    return device()


def _randn(seed: int, *shape, dtype=None):
    """Seeded normal noise on the course device, drawn on the CPU so every device sees the same numbers."""
    import torch

    generator = torch.Generator().manual_seed(seed)
    return torch.randn(*shape, generator=generator, dtype=torch.float64).to(device=_device(), dtype=dtype or torch.float32)


def _tolerance(dtype) -> dict:
    import torch

    if dtype in (torch.bfloat16, torch.float16):
        return {"atol": 2e-2, "rtol": 2e-2}
    if dtype == torch.float64:
        return {"atol": 1e-10, "rtol": 1e-8}
    # float32; a GPU's fused kernels may sum in another order than the truth
    return {"atol": 1e-5, "rtol": 1e-4} if _device().type == "cpu" else {"atol": 1e-4, "rtol": 1e-3}


def _index(flat: int, shape) -> tuple[int, ...]:
    index = []
    for size in reversed(shape):
        index.append(flat % size)
        flat //= size
    return tuple(reversed(index))


def expect_close(got, expected, what: str, atol: float | None = None, rtol: float | None = None) -> None:
    """Raise :class:`CheckFailed` naming the first problem of ``got``: type, shape, dtype, device, NaN or values."""
    import torch

    if not isinstance(got, torch.Tensor):
        raise CheckFailed(f"{what} should be a torch.Tensor, got {type(got).__name__}.")
    if tuple(got.shape) != tuple(expected.shape):
        raise CheckFailed(f"{what} has shape {tuple(got.shape)}, expected {tuple(expected.shape)}.")
    if got.dtype != expected.dtype:
        raise CheckFailed(f"{what} has dtype {got.dtype}, expected {expected.dtype}: compute in float32 if you like, then cast back.")
    if got.device != expected.device:
        raise CheckFailed(f"{what} is on {got.device}, expected {expected.device}: create new tensors with device=x.device.")
    tolerance = _tolerance(expected.dtype)
    atol = tolerance["atol"] if atol is None else atol
    rtol = tolerance["rtol"] if rtol is None else rtol
    got64 = got.detach().to("cpu", torch.float64)
    expected64 = expected.detach().to("cpu", torch.float64)
    bad_values = ~torch.isfinite(got64)
    if bad_values.any():
        first = _index(int(bad_values.flatten().nonzero()[0]), got64.shape)
        kind = "NaN" if torch.isnan(got64).any() else "inf"
        raise CheckFailed(f"{what} contains {kind} ({int(bad_values.sum())} values, the first at index {first}).")
    difference = (got64 - expected64).abs()
    out = difference > atol + rtol * expected64.abs()
    if out.any():
        worst = _index(int(difference.flatten().argmax()), got64.shape)
        raise CheckFailed(
            f"{what} differs from the truth: largest difference {float(difference.max()):.3g} at index {worst} "
            f"(got {float(got64[worst]):.5g}, expected {float(expected64[worst]):.5g}); "
            f"{int(out.sum())} of {out.numel()} values out of tolerance."
        )


def expect(condition: bool, hint: str) -> None:
    if not condition:
        raise CheckFailed(hint)


def _pair(result, what: str):
    """A student's ``(output, weights)`` result, or a clear failure when it is something else."""
    expect(isinstance(result, tuple) and len(result) == 2, f"{what} should return a tuple (output, weights), got {type(result).__name__}.")
    return result


# --------------------------------------------------------------------------------------------
# The models the checks compare with, loaded once per session
# --------------------------------------------------------------------------------------------


@functools.cache
def _encoder():
    from book.models import load_model

    return load_model("encoder").to(_device())


@functools.cache
def _encoder_tokenizer():
    from book.models import load_tokenizer

    return load_tokenizer("encoder")


@functools.cache
def _decoder():
    from book.models import load_model

    return load_model("decoder").to(_device())


@functools.cache
def _decoder_tokenizer():
    from book.models import load_tokenizer

    return load_tokenizer("decoder")


@functools.cache
def _sentence_transformer():
    from sentence_transformers import SentenceTransformer

    from book.models import resolve

    return SentenceTransformer(resolve("encoder").location, device=str(_device()))


# --------------------------------------------------------------------------------------------
# Lab 1: attention
# --------------------------------------------------------------------------------------------


def _allowed_keys(Tq: int, Tk: int, attention_mask=None, is_causal: bool = False):
    """The truth's boolean mask (B or 1, 1, Tq, Tk): which keys each query may see."""
    import torch

    allowed = torch.ones(Tq, Tk, dtype=torch.bool, device=_device())
    if is_causal:  # query i sees keys j <= i + (Tk - Tq): the queries are the last Tq positions
        allowed = allowed.tril(diagonal=Tk - Tq)
    allowed = allowed[None, None]
    if attention_mask is not None:
        allowed = allowed & attention_mask.bool()[:, None, None, :]
    return allowed


def _torch_attention(q, k, v, allowed):
    """torch's own attention and weights, in float32 or float64: weights are its output for value = identity."""
    import torch
    import torch.nn.functional as F

    dtype = torch.promote_types(q.dtype, torch.float32)
    q, k, v = (t.to(dtype) for t in (q, k, v))
    Tk = k.shape[-2]
    eye = torch.eye(Tk, dtype=dtype, device=q.device).expand(*k.shape[:-1], Tk)  # (B, H, Tk, Tk)
    return F.scaled_dot_product_attention(q, k, v, attn_mask=allowed), F.scaled_dot_product_attention(q, k, eye, attn_mask=allowed)


def _check_attention(sdpa, B, H, Tq, Tk, Dh, seed, mask_lengths=None, is_causal=False, dtype=None, label=""):
    """Run the student's attention on one seeded case; a failure names the call, and the causal offset when it matters."""
    try:
        _check_attention_case(sdpa, B, H, Tq, Tk, Dh, seed, mask_lengths, is_causal, dtype, label)
    except CheckFailed as failure:
        if is_causal and Tq < Tk and "differs" in str(failure):
            raise CheckFailed(f"{failure} With fewer queries than keys, query i sees the keys j <= i + (Tk - Tq) = i + {Tk - Tq}.") from None
        raise


def _check_attention_case(sdpa, B, H, Tq, Tk, Dh, seed, mask_lengths, is_causal, dtype, label):
    import torch

    q, k, v = _randn(seed, B, H, Tq, Dh, dtype=dtype), _randn(seed + 1, B, H, Tk, Dh, dtype=dtype), _randn(seed + 2, B, H, Tk, Dh, dtype=dtype)
    mask = None
    if mask_lengths is not None:
        mask = (torch.arange(Tk)[None, :] < torch.tensor(mask_lengths)[:, None]).long().to(_device())  # (B, Tk)
    kwargs = {"attention_mask": mask} if mask is not None else {}
    if is_causal:
        kwargs["is_causal"] = True
    call = f"scaled_dot_product_attention(q {tuple(q.shape)}, k and v {tuple(k.shape)}{label})"
    output, weights = _pair(sdpa(q.clone(), k.clone(), v.clone(), **kwargs), call)
    allowed = _allowed_keys(Tq, Tk, mask, is_causal)
    expected_output, expected_weights = _torch_attention(q, k, v, allowed)
    seen = allowed.expand(B, H, Tq, Tk).any(dim=-1)  # (B, H, Tq): rows with at least one visible key
    expect(isinstance(weights, torch.Tensor), f"{call}: weights should be a torch.Tensor, got {type(weights).__name__}.")
    expect(tuple(weights.shape) == (B, H, Tq, Tk), f"{call}: weights have shape {tuple(weights.shape)}, expected {(B, H, Tq, Tk)}.")
    expect(bool(torch.isfinite(weights).all()), f"{call}: weights contain NaN or inf; mask with a large negative number, not -inf, or handle rows with no visible key.")
    expect(bool(torch.isfinite(output).all()) if isinstance(output, torch.Tensor) else True,
           f"{call}: output contains NaN or inf; a query with no visible key must still give a finite output.")
    row_sums = weights.detach().double().sum(dim=-1)  # (B, H, Tq)
    bad_rows = seen & ((row_sums - 1).abs() > 1e-2)
    if bad_rows.any():
        row = tuple(int(i) for i in bad_rows.nonzero()[0])
        raise CheckFailed(f"{call}: rows of the weights must sum to 1 over the keys; row {row} sums to {float(row_sums[row]):.4g} (softmax over the last dimension?).")
    # Rows whose query sees no key: any finite value is accepted, so both sides count as zero there.
    seen = seen[..., None]  # (B, H, Tq, 1)
    expected_output = torch.where(seen, expected_output, 0.0).to(q.dtype)
    expected_weights = torch.where(seen, expected_weights, 0.0).to(q.dtype)
    if isinstance(output, torch.Tensor) and output.shape == expected_output.shape:
        output = torch.where(seen, output, torch.zeros((), dtype=output.dtype, device=output.device))
    weights = torch.where(seen, weights, torch.zeros((), dtype=weights.dtype, device=weights.device))
    expect_close(output, expected_output, f"{call}: output")
    expect_close(weights, expected_weights, f"{call}: weights")


@_check("lab1", "split_heads", "split_heads")
def _lab1_split_heads(split_heads):
    for seed, (B, T, H, Dh) in enumerate([(3, 7, 5, 13), (1, 13, 7, 3)]):
        x = _randn(seed, B, T, H * Dh)
        expected = x.reshape(B, T, H, Dh).permute(0, 2, 1, 3)  # (B, H, T, Dh): head h holds x[..., h*Dh:(h+1)*Dh]
        expect_close(split_heads(x.clone(), H), expected, f"split_heads(x {tuple(x.shape)}, num_heads={H})")


@_check("lab1", "merge_heads", "merge_heads")
def _lab1_merge_heads(merge_heads):
    for seed, (B, H, T, Dh) in enumerate([(3, 5, 7, 13), (1, 7, 13, 3)], start=10):
        x = _randn(seed, B, H, T, Dh)
        expected = x.permute(0, 2, 1, 3).reshape(B, T, H * Dh)  # (B, T, D): heads side by side again
        expect_close(merge_heads(x.clone()), expected, f"merge_heads(x {tuple(x.shape)})")


@_check("lab1", "scaled_dot_product_attention/no_mask", "scaled_dot_product_attention")
def _lab1_sdpa_plain(sdpa):
    _check_attention(sdpa, B=3, H=5, Tq=7, Tk=7, Dh=13, seed=20)


@_check("lab1", "scaled_dot_product_attention/padding_mask", "scaled_dot_product_attention")
def _lab1_sdpa_padding(sdpa):
    _check_attention(sdpa, B=3, H=5, Tq=7, Tk=13, Dh=11, seed=30, mask_lengths=[13, 9, 4], label=", attention_mask")


@_check("lab1", "scaled_dot_product_attention/causal", "scaled_dot_product_attention")
def _lab1_sdpa_causal(sdpa):
    _check_attention(sdpa, B=3, H=5, Tq=13, Tk=13, Dh=7, seed=40, is_causal=True, label=", is_causal=True")
    # Fewer queries than keys (the newest tokens of a longer sequence): query i sees keys j <= i + Tk - Tq.
    _check_attention(sdpa, B=3, H=5, Tq=7, Tk=13, Dh=11, seed=45, is_causal=True, label=", is_causal=True")


@_check("lab1", "scaled_dot_product_attention/causal_with_padding", "scaled_dot_product_attention")
def _lab1_sdpa_no_nan(sdpa):
    # The last sequence is all padding: its queries see no key at all, and must not produce NaN.
    _check_attention(sdpa, B=3, H=5, Tq=7, Tk=13, Dh=11, seed=50, mask_lengths=[13, 5, 0], is_causal=True,
                     label=", attention_mask with an all-padding row, is_causal=True")


@_check("lab1", "scaled_dot_product_attention/bfloat16", "scaled_dot_product_attention")
def _lab1_sdpa_dtype(sdpa):
    import torch

    _check_attention(sdpa, B=3, H=5, Tq=7, Tk=13, Dh=11, seed=60, mask_lengths=[13, 9, 4], dtype=torch.bfloat16,
                     label=", bfloat16")


@_check("lab1", "repeat_kv", "repeat_kv")
def _lab1_repeat_kv(repeat_kv):
    import torch

    for seed, (B, Hkv, n_rep, T, Dh) in enumerate([(3, 5, 3, 7, 13), (1, 3, 1, 13, 7)], start=70):
        x = _randn(seed, B, Hkv, T, Dh)
        expected = torch.repeat_interleave(x, n_rep, dim=1)  # (B, Hkv * n_rep, T, Dh): head h uses kv head h // n_rep
        expect_close(repeat_kv(x.clone(), n_rep), expected, f"repeat_kv(x {tuple(x.shape)}, n_rep={n_rep})")


SENTENCES = [
    "Attention lets every token look at the others.",
    "Padding fills short sentences up to the longest one in the batch.",
    "Heads attend in parallel.",
]


@_check("lab1", "self_attention/minilm_layer", "self_attention")
def _lab1_self_attention(self_attention):
    """The student's function against a real MiniLM layer's own self-attention, on a padded batch."""
    import torch

    model, tokenizer = _encoder(), _encoder_tokenizer()
    layer = model.encoder.layer[3].attention.self
    captured = {}

    def hook(module, args, kwargs, output):
        captured["hidden_states"] = (args[0] if args else kwargs["hidden_states"]).detach()
        captured["output"] = output[0].detach()

    batch = tokenizer(SENTENCES, padding=True, return_tensors="pt").to(_device())
    handle = layer.register_forward_hook(hook, with_kwargs=True)
    try:
        with torch.no_grad():
            model(**batch)
    finally:
        handle.remove()
    heads = model.config.num_attention_heads
    got = self_attention(captured["hidden_states"].clone(), batch["attention_mask"], layer.query, layer.key, layer.value, heads)
    expect_close(got, captured["output"], f"self_attention on MiniLM layer 3 (3 padded sentences, {heads} heads)")


# --------------------------------------------------------------------------------------------
# Lab 2: pooling
# --------------------------------------------------------------------------------------------


def _pooling_case(seed: int, lengths: list[int], T: int = 7, D: int = 13, dtype=None, padding_value: float = 1e3, negative: bool = False):
    """States (B, T, D) whose padding holds a large value, their mask (B, T), and the real tokens of each row."""
    import torch

    hidden = _randn(seed, len(lengths), T, D, dtype=torch.float64)
    if negative:  # all real values below zero: filling padding with 0 before the max would win
        hidden = -hidden.abs() - 1
    mask = (torch.arange(T)[None, :] < torch.tensor(lengths)[:, None]).long().to(_device())  # (B, T)
    hidden = torch.where(mask.bool()[..., None], hidden, padding_value)
    return hidden.to(dtype or torch.float32), mask


def _truth_pool(hidden, mask, reduce):
    """Pool each row's real tokens one row at a time (zeros for a row with none), in float64."""
    import torch

    rows = []
    for states, real in zip(hidden.double(), mask.bool()):
        tokens = states[real]  # (real tokens, D)
        rows.append(reduce(tokens) if len(tokens) else torch.zeros(states.shape[-1], dtype=torch.float64, device=states.device))
    return torch.stack(rows).to(hidden.dtype)  # (B, D)


def _mean(tokens):
    return tokens.mean(dim=0)


def _max(tokens):
    return tokens.amax(dim=0)


@_check("lab2", "mean_pool/real_tokens_only", "mean_pool")
def _lab2_mean(mean_pool):
    hidden, mask = _pooling_case(80, [7, 4, 1, 6, 2])
    expect_close(mean_pool(hidden.clone(), mask.clone()), _truth_pool(hidden, mask, _mean),
                 f"mean_pool(states {tuple(hidden.shape)} with 1000.0 in the padding, mask with rows of 7, 4, 1, 6, 2 real tokens)")


@_check("lab2", "mean_pool/all_padding_row", "mean_pool")
def _lab2_mean_empty(mean_pool):
    hidden, mask = _pooling_case(81, [5, 0, 7])
    expect_close(mean_pool(hidden.clone(), mask.clone()), _truth_pool(hidden, mask, _mean),
                 "mean_pool with a row of padding only (expected zeros for it)")


@_check("lab2", "mean_pool/keeps_dtype", "mean_pool")
def _lab2_mean_dtype(mean_pool):
    import torch

    for seed, dtype in enumerate((torch.bfloat16, torch.float64), start=82):
        hidden, mask = _pooling_case(seed, [7, 3, 5], dtype=dtype, padding_value=37.0)
        expect_close(mean_pool(hidden.clone(), mask.clone()), _truth_pool(hidden, mask, _mean), f"mean_pool on {dtype} states")


@_check("lab2", "max_pool/real_tokens_only", "max_pool")
def _lab2_max(max_pool):
    hidden, mask = _pooling_case(90, [7, 4, 1, 6, 2], negative=True)
    expect_close(max_pool(hidden.clone(), mask.clone()), _truth_pool(hidden, mask, _max),
                 "max_pool(negative states with 1000.0 in the padding)")
    hidden, mask = _pooling_case(91, [7, 4, 1], negative=True, padding_value=0.0)
    expect_close(max_pool(hidden.clone(), mask.clone()), _truth_pool(hidden, mask, _max),
                 "max_pool(negative states with 0.0 in the padding)")


@_check("lab2", "max_pool/all_padding_row", "max_pool")
def _lab2_max_empty(max_pool):
    hidden, mask = _pooling_case(92, [5, 0, 7], negative=True)
    expect_close(max_pool(hidden.clone(), mask.clone()), _truth_pool(hidden, mask, _max),
                 "max_pool with a row of padding only (expected zeros for it)")


# Seven texts of very different lengths, so that a batch of 3 pads a lot and the last batch is short.
TEXTS = [
    "A cat sleeps on the warm windowsill.",
    "Stock markets fell sharply after the central bank raised interest rates again.",
    "Quantum error correction protects fragile qubits from noise.",
    "Hi!",
    "The recipe calls for two cups of flour, a pinch of salt and one egg, whisked until smooth.",
    "Embeddings place similar sentences close together.",
    "Tokenizers split rare words into pieces.",
]
LONG_TEXT = "Self-attention lets each token gather information from every other token in the sequence. " * 25
TRUNCATION_HINT = " Texts longer than 256 tokens must be truncated at 256, the length all-MiniLM-L6-v2 was trained with."


def _expect_embeddings(got, texts, what, hint=""):
    """Compare with sentence-transformers' encode; ``hint`` is added when only the values differ."""
    import torch

    expected = _sentence_transformer().encode(texts, convert_to_tensor=True, batch_size=32)
    if isinstance(got, torch.Tensor) and got.shape == expected.shape and got.dtype == expected.dtype:
        norms = got.detach().double().norm(dim=-1)
        worst = int((norms - 1).abs().argmax())
        expect(abs(float(norms[worst]) - 1) < 1e-4,
               f"{what}: row {worst} has length {float(norms[worst]):.4g}; scale every embedding to length 1 (F.normalize).")
        got = got.to(expected.device)
        try:
            expect_close(got, expected, what)
        except CheckFailed as failure:
            raise CheckFailed(str(failure) + hint) from None
    expect_close(got, expected, what)


@_check("lab2", "embed_sentences/matches_sentence_transformers", "embed_sentences")
def _lab2_embed(embed_sentences):
    got = embed_sentences(list(TEXTS), _encoder_tokenizer(), _encoder(), batch_size=3)
    _expect_embeddings(got, TEXTS, "embed_sentences(7 texts, batch_size=3) against sentence-transformers' encode")


@_check("lab2", "embed_sentences/long_text", "embed_sentences")
def _lab2_embed_long(embed_sentences):
    texts = [TEXTS[0], LONG_TEXT]
    got = embed_sentences(list(texts), _encoder_tokenizer(), _encoder(), batch_size=2)
    _expect_embeddings(got, texts, "embed_sentences on a short text and one of over 256 tokens", TRUNCATION_HINT)


@_check("lab2", "embed_sentences/empty_list", "embed_sentences")
def _lab2_embed_empty(embed_sentences):
    import torch

    got = embed_sentences([], _encoder_tokenizer(), _encoder())
    width = _encoder().config.hidden_size
    expect(isinstance(got, torch.Tensor), f"embed_sentences([]) should return a torch.Tensor, got {type(got).__name__}.")
    expect(tuple(got.shape) == (0, width), f"embed_sentences([]) has shape {tuple(got.shape)}, expected (0, {width}).")


# --------------------------------------------------------------------------------------------
# Lab 3: adding tokens
# --------------------------------------------------------------------------------------------


def _fresh(role: str):
    """A tokenizer and model of ``role`` that add_tokens may change: copies of the cached ones.

    Only the input embeddings (and a head tied to them) are copied; every other parameter is
    shared with the cached model, which keeps a copy of SmolLM2 cheap.
    """
    tokenizer, model = (_encoder_tokenizer(), _encoder()) if role == "encoder" else (_decoder_tokenizer(), _decoder())
    embeddings = model.get_input_embeddings().weight
    shared = {id(p): p for p in model.parameters() if p is not embeddings}
    return copy.deepcopy(tokenizer), copy.deepcopy(model, memo=shared)


def _expect_added(add_tokens, role: str, new_tokens: list[str], special: bool = False):
    """Call add_tokens on fresh copies and check ids, single-id encodings, sizes and every embedding row."""
    import torch

    tokenizer, model = _fresh(role)
    before = model.get_input_embeddings().weight.detach().clone()  # (V, D)
    old_size = len(tokenizer)
    pieces = {s: tokenizer.encode(s, add_special_tokens=False) for s in new_tokens}
    kwargs = {"special": True} if special else {}
    call = f"add_tokens({role} tokenizer, model, {new_tokens}{', special=True' if special else ''})"
    ids = add_tokens(tokenizer, model, list(new_tokens), **kwargs)

    expect(isinstance(ids, (list, tuple)) and all(isinstance(i, int) for i in ids),
           f"{call} should return a list of ints, got {type(ids).__name__}.")
    expect(len(ids) == len(new_tokens), f"{call} returned {len(ids)} ids for {len(new_tokens)} strings: one id per string, in order.")
    for s, token_id in zip(new_tokens, ids):
        encoded = tokenizer.encode(s, add_special_tokens=False)
        expect(encoded == [token_id], f"{call}: afterwards {s!r} encodes to {encoded}, expected [{token_id}].")
    unknown = tokenizer.unk_token_id
    new = {s: pieces[s] for s in dict.fromkeys(new_tokens) if len(pieces[s]) != 1 or (pieces[s][0] == unknown and s != tokenizer.unk_token)}
    expected_size = old_size + len({tokenizer.encode(s, add_special_tokens=False)[0] for s in new})
    expect(len(tokenizer) == expected_size,
           f"{call}: the tokenizer has {len(tokenizer)} tokens, expected {expected_size}; add only strings that are not one token yet, each once.")
    weight = model.get_input_embeddings().weight.detach()
    expect(tuple(weight.shape) == (len(tokenizer), before.shape[1]),
           f"{call}: the input embeddings have shape {tuple(weight.shape)}, expected {(len(tokenizer), before.shape[1])} (resize to len(tokenizer)).")
    if not torch.equal(weight[:old_size], before[:old_size]):
        changed = (weight[:old_size] != before[:old_size]).any(dim=-1).nonzero().flatten()  # ids of changed rows
        raise CheckFailed(f"{call}: {len(changed)} existing embedding rows changed (the first is row {int(changed[0])}); "
                          "only the new rows may be written.")
    for s, token_id in zip(new_tokens, ids):
        if s in new:
            mean = before[torch.tensor(new[s], device=before.device)].double().mean(dim=0).to(before.dtype)  # (D,)
            expect_close(weight[token_id], mean, f"{call}: the row of {s!r} (expected the mean of the rows of its pieces {new[s]})")
        else:
            expect(token_id == pieces[s][0], f"{call}: {s!r} was already token {pieces[s][0]}, but {token_id} was returned.")
    return tokenizer, model, ids


@_check("lab3", "add_tokens/minilm_new_words", "add_tokens")
def _lab3_minilm(add_tokens):
    # "GPUs" is mixed case: MiniLM lowercases its input, so the token must still match.
    _expect_added(add_tokens, "encoder", ["GPUs", "detokenizer", "MiniLM"])


@_check("lab3", "add_tokens/duplicates_and_existing", "add_tokens")
def _lab3_duplicates(add_tokens):
    _expect_added(add_tokens, "encoder", ["softmax", "hello", "softmax", "attention"])


@_check("lab3", "add_tokens/smollm2_tied_head", "add_tokens")
def _lab3_smollm2(add_tokens):
    _, model, _ = _expect_added(add_tokens, "decoder", ["GPUs", "<think>", "quantization"])
    expect(model.get_output_embeddings().weight is model.get_input_embeddings().weight,
           "SmolLM2's output head is no longer the same tensor as its input embeddings: resize with "
           "model.resize_token_embeddings, which ties them again, instead of replacing one of them.")


@_check("lab3", "add_tokens/special_tokens", "add_tokens")
def _lab3_special(add_tokens):
    tokenizer, _, ids = _expect_added(add_tokens, "decoder", ["<|lab_start|>", "<|lab_end|>"], special=True)
    text = "one <|lab_start|>two<|lab_end|> three"
    decoded = tokenizer.decode(tokenizer.encode(text, add_special_tokens=False), skip_special_tokens=True)
    expect("<|lab" not in decoded,
           f"with special=True the tokens should be special: decode(..., skip_special_tokens=True) still shows them in {decoded!r}.")

