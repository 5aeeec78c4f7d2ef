"""Lab 1, attention: the truth behind the checks of split_heads, merge_heads, scaled_dot_product_attention,
repeat_kv and self_attention.

Every truth comes from torch or from the model itself, never from a copy of what the lab asks
for: attention is ``torch.nn.functional.scaled_dot_product_attention`` in float64 (its weights
are its output when the values are the identity), the heads are ``split``/``cat`` along the
features, ``repeat_kv`` is ``torch.repeat_interleave``, and a MiniLM layer's self-attention is
what the layer's own module computes. Inputs are seeded, of odd and distinct sizes, drawn in
float64 and rounded to the case's dtype; the truth is computed in float64 from the rounded
inputs. Rows of a query that may see no key accept any finite answer.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from book.labs import MODEL_LOCK, Lab, Rules, cached, course_model
from book.labs.compare import (Cause, as_pair, as_tensor, check_close, check_finite, check_rows_sum_to_one,
                               check_shape, check_zero_where)

FUNCTIONS = ("split_heads", "merge_heads", "scaled_dot_product_attention", "repeat_kv", "self_attention")
RULES = Rules()


def randn(seed: int, *shape: int, dtype=torch.float32) -> torch.Tensor:
    """Seeded normal noise, drawn in float64 then rounded to ``dtype`` (the same numbers on every machine)."""
    generator = torch.Generator().manual_seed(seed)
    return torch.randn(*shape, generator=generator, dtype=torch.float64).to(dtype)


def padding_mask(lengths: tuple[int, ...], T: int, side: str = "right") -> torch.Tensor:
    """The tokenizer's (B, T) mask: ``lengths[b]`` ones on the left (right padding) or on the right (left padding)."""
    positions = torch.arange(T)[None, :]  # (1, T)
    count = torch.tensor(lengths)[:, None]  # (B, 1)
    real = positions < count if side == "right" else positions >= T - count
    return real.long()  # (B, T)


# --- heads ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Heads:
    """A (B, T, D = H * Dh) input for the head functions."""

    B: int
    T: int
    H: int
    Dh: int
    seed: int = 0
    dtype: torch.dtype = torch.float32

    def x(self) -> torch.Tensor:
        return randn(self.seed or self.B * self.T + self.H, self.B, self.T, self.H * self.Dh, dtype=self.dtype)


def heads_of(x: torch.Tensor, H: int) -> torch.Tensor:
    """(B, T, D) -> (B, H, T, Dh) by definition: head h is the slice of features h * Dh to (h + 1) * Dh - 1."""
    if x.shape[-1] % H:
        raise ValueError(f"A width of {x.shape[-1]} cannot be cut into {H} heads of one width: num_heads must divide D.")
    return torch.stack(x.split(x.shape[-1] // H, dim=-1), dim=1)


def merged(x: torch.Tensor) -> torch.Tensor:
    """(B, H, T, Dh) -> (B, T, D): the heads' features side by side."""
    return torch.cat(x.unbind(dim=1), dim=-1)


@RULES.add("split_heads", "split_heads",
           "split_heads must turn (B, T, D) into (B, H, T, Dh), head h holding features h*Dh to (h+1)*Dh - 1.",
           {"3-7-5-13": Heads(3, 7, 5, 13), "1-13-7-3": Heads(1, 13, 7, 3)})
def check_split_heads(student, case: Heads) -> None:
    x = case.x()
    B, T, H, Dh = case.B, case.T, case.H, case.Dh
    causes = [Cause("a reshape to (B, H, T, Dh) alone cuts the sequence of features into H pieces, mixing tokens "
                    "into heads: reshape to (B, T, H, Dh), then transpose(1, 2).", x.reshape(B, H, T, Dh))]
    check_close(student.split_heads(x, H), heads_of(x, H), f"split_heads(x {tuple(x.shape)}, num_heads={H})",
                dims="(B, H, T, Dh)", causes=causes)


@RULES.add("merge_heads", "merge_heads", "merge_heads must turn (B, H, T, Dh) back into (B, T, D), the heads side by side.",
           {"3-5-7-13": Heads(3, 7, 5, 13, seed=27), "1-7-13-3": Heads(1, 13, 7, 3, seed=21)})
def check_merge_heads(student, case: Heads) -> None:
    x = randn(case.seed, case.B, case.H, case.T, case.Dh)
    causes = [Cause("a reshape of (B, H, T, Dh) straight to (B, T, D) puts one head's tokens side by side: "
                    "transpose(1, 2) first, then reshape.", x.reshape(case.B, case.T, case.H * case.Dh))]
    check_close(student.merge_heads(x), merged(x), f"merge_heads(x {tuple(x.shape)})", dims="(B, T, D)", causes=causes)


@RULES.add("heads_round_trip", "merge_heads",
           "merge_heads(split_heads(x, H)) must give x back, for any batch, length and number of heads.",
           {"Dh=1": Heads(2, 11, 3, 1, seed=3, dtype=torch.float64), "T=1-H=1": Heads(5, 1, 1, 17, seed=4, dtype=torch.float64)})
def check_heads_round_trip(student, case: Heads) -> None:
    x = case.x()
    split = as_tensor(student.split_heads(x, case.H), "split_heads(x)")
    check_shape(split, (case.B, case.H, case.T, case.Dh), f"split_heads(x {tuple(x.shape)}, num_heads={case.H})",
                "(B, H, T, Dh)")
    check_close(student.merge_heads(split), x, "merge_heads(split_heads(x))")


# --- scaled dot-product attention ---------------------------------------------------------------


@dataclass(frozen=True)
class Case:
    """One attention call: sizes, mask, causality, dtype, and how large q and k are (real models' scores can be large)."""

    seed: int
    B: int
    H: int
    Tq: int
    Tk: int
    Dh: int
    lengths: tuple[int, ...] | None = None  # real tokens per sequence (None: no attention_mask)
    side: str = "right"
    causal: bool = False
    dtype: torch.dtype = torch.float32
    scale: float = 1.0  # q and k are drawn this many times larger than standard normal
    hidden: bool = False  # drawn for one student: its label does not show the inputs

    def label(self) -> str:
        extras = [f"attention_mask with {self.side} padding" if self.lengths else "", "is_causal=True" if self.causal else "",
                  str(self.dtype).replace("torch.", ""), f"q and k scaled by {self.scale:g}" if self.scale != 1 else ""]
        if self.hidden:
            return f"scaled_dot_product_attention on a hidden case ({', '.join(e for e in extras if e)})"
        return (f"scaled_dot_product_attention(q {(self.B, self.H, self.Tq, self.Dh)}, k and v "
                f"{(self.B, self.H, self.Tk, self.Dh)}{''.join(', ' + e for e in extras if e)})")


def allowed_keys(Tq: int, Tk: int, mask: torch.Tensor | None = None, is_causal: bool = False, *,
                 padding: str = "keys", causal: str = "offset") -> torch.Tensor:
    """Which keys each query may see, (B or 1, 1, Tq, Tk): query i sees key j <= i + (Tk - Tq) when causal, and real keys.

    The keyword arguments build the masks of known mistakes: ``padding`` "inverted", "queries" or
    "ignored"; ``causal`` "no-offset", "no-diagonal" or "ignored".
    """
    allowed = torch.ones(Tq, Tk, dtype=torch.bool)  # (Tq, Tk)
    if is_causal and causal != "ignored":
        allowed = allowed.tril({"offset": Tk - Tq, "no-offset": 0, "no-diagonal": Tk - Tq - 1}[causal])
    allowed = allowed[None, None]  # (1, 1, Tq, Tk)
    if mask is not None and padding != "ignored":
        real = mask.cpu().bool()
        real = ~real if padding == "inverted" else real
        allowed = allowed & (real[:, None, :, None] if padding == "queries" else real[:, None, None, :])  # (B, 1, Tq, Tk)
    return allowed


def torch_attention(q, k, v, allowed, scale: float | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """torch's own attention in float64: output (B, H, Tq, Dh) and weights (B, H, Tq, Tk), the kernel's output for
    values that are the identity. Rows with no allowed key are zeros. ``scale`` replaces 1/√Dh."""
    q, k, v = (t.double() for t in (q, k, v))
    Tk = k.shape[-2]
    eye = torch.eye(Tk, dtype=torch.float64, device=k.device).expand(*k.shape[:-1], Tk)  # (B, H, Tk, Tk)
    allowed = allowed.to(q.device)
    output = F.scaled_dot_product_attention(q, k, v, attn_mask=allowed, scale=scale)
    weights = F.scaled_dot_product_attention(q, k, eye, attn_mask=allowed, scale=scale)
    seen = allowed.any(dim=-1, keepdim=True)  # (B or 1, 1, Tq, 1): zeros for a query that sees nothing
    return torch.where(seen, output, 0.0), torch.where(seen, weights, 0.0)


def _softmax_over_queries(q, k, v, allowed):
    """The weights of a softmax taken over the queries (dim -2): torch's attention with queries and keys swapped."""
    allowed = allowed.expand(q.shape[0], 1, q.shape[-2], k.shape[-2])
    _, swapped = torch_attention(k, q, k[..., :1], allowed.transpose(-2, -1), scale=q.shape[-1] ** -0.5)  # (B, H, Tk, Tq)
    weights = swapped.transpose(-2, -1) * allowed  # (B, H, Tq, Tk)
    return weights @ v.double(), weights


def _low_precision_softmax(q, k, v, allowed, dtype):
    """Attention computed in ``dtype`` (bfloat16) throughout, softmax included, as code that never promotes does."""
    q, k, v = (t.to(dtype) for t in (q, k, v))
    scores = q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])  # (B, H, Tq, Tk), rounded to dtype at every step
    weights = scores.masked_fill(~allowed, torch.finfo(dtype).min).softmax(dim=-1).masked_fill(~allowed, 0.0)
    return (weights @ v).double(), weights.double()


def _masked(**options):
    def compute(q, k, v, mask, is_causal):
        return torch_attention(q, k, v, allowed_keys(q.shape[-2], k.shape[-2], mask, is_causal, **options))
    return compute


def _scaled_after(q, k, v, mask, is_causal):
    _, weights = torch_attention(q, k, v, allowed_keys(q.shape[-2], k.shape[-2], mask, is_causal), scale=1.0)
    weights = weights / math.sqrt(q.shape[-1])
    return weights @ v.double(), weights


def _mask_after(q, k, v, mask, is_causal):
    allowed = allowed_keys(q.shape[-2], k.shape[-2], mask, is_causal)
    _, weights = torch_attention(q, k, v, torch.ones_like(allowed))
    weights = weights * allowed
    return weights @ v.double(), weights


# Known mistakes: what each computes from (q, k, v, attention_mask, is_causal), and the sentence that names it.
MISTAKES = (
    ("the scores are not scaled: divide q kᵀ by √Dh (the head width, query.shape[-1]) before the softmax.",
     lambda q, k, v, mask, c: torch_attention(q, k, v, allowed_keys(q.shape[-2], k.shape[-2], mask, c), scale=1.0)),
    ("the scores are divided by Dh instead of √Dh: divide them by math.sqrt(Dh).",
     lambda q, k, v, mask, c: torch_attention(q, k, v, allowed_keys(q.shape[-2], k.shape[-2], mask, c),
                                              scale=1.0 / q.shape[-1])),
    ("the weights are scaled after the softmax: divide the scores by √Dh before the softmax.", _scaled_after),
    ("the softmax is taken over the queries (dim -2), not the keys: use softmax(dim=-1).",
     lambda q, k, v, mask, c: _softmax_over_queries(q, k, v, allowed_keys(q.shape[-2], k.shape[-2], mask, c))),
    ("the mask is applied after the softmax: the hidden keys were zeroed but the other weights not renormalised; "
     "fill the hidden scores with a large negative number before the softmax.", _mask_after),
    ("the padding mask is inverted: attention_mask is 1 for a real token and 0 for padding, so hide the keys where "
     "it is 0.", _masked(padding="inverted")),
    ("the padding mask was applied to the queries instead of the keys: broadcast it as attention_mask[:, None, None, :], "
     "one entry per key.", _masked(padding="queries")),
    ("attention_mask is ignored: the padding keys get weight.", _masked(padding="ignored")),
    ("the causal mask ignores the offset: with Tq < Tk the queries are the last Tq tokens, so query i may see keys "
     "j <= i + (Tk - Tq) (tril with diagonal=Tk - Tq).", _masked(causal="no-offset")),
    ("the causal mask hides each query's own position: query i may see keys j <= i + (Tk - Tq), itself included.",
     _masked(causal="no-diagonal")),
    ("is_causal is ignored: queries see later keys.", _masked(causal="ignored")),
)


def mistakes(q, k, v, mask, is_causal, dtype) -> list[tuple[str, tuple[torch.Tensor, torch.Tensor]]]:
    """The known mistakes of attention and what each gives on these inputs: (hint, (output, weights))."""
    found = []
    for hint, compute in MISTAKES:
        try:
            found.append((hint, compute(q, k, v, mask, is_causal)))
        except RuntimeError:  # the mistake cannot even run on these shapes (a mask on the queries with Tq != Tk)
            pass
    if dtype in (torch.bfloat16, torch.float16):
        allowed = allowed_keys(q.shape[-2], k.shape[-2], mask, is_causal)
        low = str(dtype).replace("torch.", "")
        found.append((f"the softmax is computed in {low} (arithmetic computed in {low} rounds large scores before they "
                      "are exponentiated): compute the scores and the softmax in float32 (torch.promote_types(x.dtype, "
                      "torch.float32)) and cast the results back.", _low_precision_softmax(q, k, v, allowed, dtype)))
    return found


@cached
def attention_case(case: Case):
    """Inputs of ``case``, the keys each query may see (B or 1, 1, Tq, Tk), which queries see any (B, 1, Tq, 1), and the
    float64 truth: output (B, H, Tq, Dh) and weights (B, H, Tq, Tk)."""
    q = (randn(case.seed, case.B, case.H, case.Tq, case.Dh, dtype=torch.float64) * case.scale).to(case.dtype)
    k = (randn(case.seed + 1, case.B, case.H, case.Tk, case.Dh, dtype=torch.float64) * case.scale).to(case.dtype)
    v = randn(case.seed + 2, case.B, case.H, case.Tk, case.Dh, dtype=case.dtype)
    mask = padding_mask(case.lengths, case.Tk, case.side) if case.lengths else None
    allowed = allowed_keys(case.Tq, case.Tk, mask, case.causal)
    seen = allowed.expand(case.B, 1, case.Tq, case.Tk).any(dim=-1)[..., None]  # (B, 1, Tq, 1): some key visible
    output, weights = torch_attention(q, k, v, allowed)
    kwargs = {}
    if mask is not None:
        kwargs["attention_mask"] = mask
    if case.causal:
        kwargs["is_causal"] = True
    return (q, k, v), kwargs, allowed, seen, output, weights


@cached
def attention_causes(case: Case) -> tuple[list[Cause], list[Cause]]:
    """The known mistakes that change the result of ``case``: (causes for the weights, causes for the output)."""
    (q, k, v), kwargs, allowed, seen, output, weights = attention_case(case)
    on_weights, on_output = [], []
    for hint, (wrong_output, wrong_weights) in mistakes(q, k, v, kwargs.get("attention_mask"), case.causal, case.dtype):
        if torch.allclose(torch.where(seen, wrong_weights, 0.0), torch.where(seen, weights, 0.0), atol=1e-9):
            continue  # the same result here: not a cause of anything
        on_weights.append(Cause(hint, wrong_weights))
        on_output.append(Cause(hint, wrong_output))
    return on_weights, on_output


def check_attention(student, case: Case) -> None:
    """Call the student's attention on ``case`` and compare output and weights with the truth."""
    (q, k, v), kwargs, allowed, seen, output, weights = attention_case(case)
    got_output, got_weights = as_pair(student.scaled_dot_product_attention(q, k, v, **kwargs), case.label(), "output", "weights")
    check_close(got_weights, weights, f"{case.label()}: the weights", dtype=case.dtype, where=seen, dims="(B, H, Tq, Tk)",
                causes=lambda: attention_causes(case)[0])
    check_close(got_output, output, f"{case.label()}: the output", dtype=case.dtype, where=seen, dims="(B, H, Tq, Dh)",
                causes=lambda: attention_causes(case)[1])


@RULES.add("sdpa_returns_output_and_weights", "scaled_dot_product_attention",
           "scaled_dot_product_attention must return a pair: output (B, H, Tq, Dh) and weights (B, H, Tq, Tk).",
           {"": Case(20, B=3, H=5, Tq=7, Tk=11, Dh=13)})
def check_sdpa_pair(student, case: Case) -> None:
    (q, k, v), *_ = attention_case(case)
    output, weights = as_pair(student.scaled_dot_product_attention(q, k, v), case.label(), "output", "weights")
    check_shape(as_tensor(output, "the output"), (case.B, case.H, case.Tq, case.Dh), "the output", "(B, H, Tq, Dh)")
    check_shape(as_tensor(weights, "the weights"), (case.B, case.H, case.Tq, case.Tk), "the weights", "(B, H, Tq, Tk)")


@RULES.add("sdpa_weights_rows_sum_to_one", "scaled_dot_product_attention",
           "Rows of the attention weights must sum to 1 along the keys (a softmax over the last dimension).",
           {"square": Case(21, B=3, H=5, Tq=7, Tk=7, Dh=13), "padding": Case(22, B=3, H=5, Tq=7, Tk=13, Dh=11, lengths=(13, 9, 4))})
def check_sdpa_rows(student, case: Case) -> None:
    (q, k, v), kwargs, allowed, seen, *_ = attention_case(case)
    _, weights = as_pair(student.scaled_dot_product_attention(q, k, v, **kwargs), case.label(), "output", "weights")
    check_shape(as_tensor(weights, "the weights"), (case.B, case.H, case.Tq, case.Tk), "the weights", "(B, H, Tq, Tk)")
    check_rows_sum_to_one(weights, seen[..., 0], head_width=case.Dh)


RULES.add("sdpa_no_mask", "scaled_dot_product_attention",
          "Without a mask, the output and weights must equal softmax(q kᵀ / √Dh) v and its softmax.",
          {"3x5x7x13": Case(23, B=3, H=5, Tq=7, Tk=7, Dh=13)})(check_attention)


RULES.add("sdpa_sizes", "scaled_dot_product_attention",
          "Attention must be right for any size: one sequence, one head, one query, Tq != Tk.",
          {"one-query": Case(24, B=1, H=1, Tq=1, Tk=9, Dh=5), "more-queries-than-keys": Case(25, B=2, H=3, Tq=11, Tk=5, Dh=37),
           "Dh=1": Case(26, B=1, H=7, Tq=13, Tk=13, Dh=1)})(check_attention)


@RULES.add("sdpa_padding_mask", "scaled_dot_product_attention",
           "Padding keys (attention_mask 0) must get zero weight, and the output must match.",
           {"right-padding": Case(30, B=3, H=5, Tq=7, Tk=13, Dh=11, lengths=(13, 9, 4))})
def check_sdpa_padding(student, case: Case) -> None:
    (q, k, v), kwargs, allowed, seen, *_ = attention_case(case)
    _, weights = as_pair(student.scaled_dot_product_attention(q, k, v, **kwargs), case.label(), "output", "weights")
    check_shape(as_tensor(weights, "the weights"), (case.B, case.H, case.Tq, case.Tk), "the weights", "(B, H, Tq, Tk)")
    check_zero_where(weights, ~allowed, f"{case.label()}: the weights", "the key is padding")
    check_attention(student, case)


RULES.add("sdpa_left_padding", "scaled_dot_product_attention", "Left padding must be masked as well as right padding.",
          {"left-padding": Case(31, B=4, H=3, Tq=9, Tk=9, Dh=7, lengths=(9, 2, 5, 1), side="left")})(check_attention)


RULES.add("sdpa_causal", "scaled_dot_product_attention", "With is_causal=True, query i must see only keys j <= i + (Tk - Tq).",
          {"Tq=Tk": Case(40, B=3, H=5, Tq=13, Tk=13, Dh=7, causal=True),
           "Tq<Tk": Case(45, B=3, H=5, Tq=7, Tk=13, Dh=11, causal=True)})(check_attention)


@RULES.add("sdpa_fully_masked_rows_are_finite", "scaled_dot_product_attention",
           "A query that may see no key (all padding, or left padding with is_causal) must not produce NaN.",
           {"all-padding-row": Case(50, B=3, H=5, Tq=7, Tk=13, Dh=11, lengths=(13, 5, 0), causal=True)})
def check_sdpa_finite(student, case: Case) -> None:
    (q, k, v), kwargs, *_ = attention_case(case)
    output, weights = as_pair(student.scaled_dot_product_attention(q, k, v, **kwargs), case.label(), "output", "weights")
    check_finite(as_tensor(output, "the output"), f"{case.label()}: the output")
    check_finite(as_tensor(weights, "the weights"), f"{case.label()}: the weights")


RULES.add("sdpa_causal_with_padding", "scaled_dot_product_attention",
          "Causal attention with padding must combine both masks, rows with no visible key included.",
          {"right-padding": Case(51, B=3, H=5, Tq=7, Tk=13, Dh=11, lengths=(13, 5, 0), causal=True),
           "left-padding": Case(52, B=3, H=2, Tq=9, Tk=9, Dh=5, lengths=(9, 4, 6), side="left", causal=True)})(check_attention)


RULES.add("sdpa_dtype", "scaled_dot_product_attention",
          "The output and weights must keep the inputs' dtype and be accurate in it: on bfloat16 inputs, compute the "
          "softmax in float32.",
          {"bfloat16": Case(63, B=3, H=5, Tq=7, Tk=13, Dh=11, lengths=(13, 9, 4), dtype=torch.bfloat16, scale=8.0),
           "float64": Case(61, B=2, H=3, Tq=9, Tk=9, Dh=37, causal=True, dtype=torch.float64)})(check_attention)


# --- grouped-query attention --------------------------------------------------------------------


@dataclass(frozen=True)
class Repeat:
    """A (B, Hkv, T, Dh) input of repeat_kv and its n_rep."""

    B: int
    Hkv: int
    n_rep: int
    T: int
    Dh: int
    dtype: torch.dtype = torch.float32
    seed: int = 0


def check_repeat(student, case: Repeat) -> None:
    x = randn(case.seed or 70 + case.B + case.Hkv + case.n_rep, case.B, case.Hkv, case.T, case.Dh, dtype=case.dtype)
    causes = [Cause("the heads are tiled (k0 k1 k0 k1, what x.repeat gives): query head h needs key/value head "
                    "h // n_rep, so repeat each head in place (k0 k0 k1 k1): x.repeat_interleave(n_rep, dim=1).",
                    x.repeat(1, case.n_rep, 1, 1))]
    check_close(student.repeat_kv(x, case.n_rep), torch.repeat_interleave(x, case.n_rep, dim=1),
                f"repeat_kv(x {tuple(x.shape)}, n_rep={case.n_rep})", dims="(B, Hkv * n_rep, T, Dh)", causes=causes)


RULES.add("repeat_kv", "repeat_kv",
          "repeat_kv must give query head h the key/value head h // n_rep (k0 k0 k1 k1, not k0 k1 k0 k1).",
          {"3-5-3-7-13": Repeat(3, 5, 3, 7, 13), "1-3-1-13-7": Repeat(1, 3, 1, 13, 7)})(check_repeat)
RULES.add("repeat_kv_hidden", "repeat_kv", "repeat_kv must work for SmolLM2's grouping and any dtype.",
          {"smollm2-grouping": Repeat(2, 3, 3, 5, 64, torch.bfloat16, seed=71),
           "one-kv-head": Repeat(1, 1, 9, 3, 11, torch.float64, seed=72)})(check_repeat)


# --- self-attention in a real layer ---------------------------------------------------------------

SENTENCES = (
    "Attention lets every token look at the others.",
    "Padding fills short sentences up to the longest one in the batch.",
    "Heads attend in parallel.",
)


def self_attention64(hidden, mask, projections, H: int, *, split: str = "transpose", attention=None) -> torch.Tensor:
    """(B, T, D), (B, T) -> (B, T, D) in float64: the projections, H heads, attention (torch's, or a mistake's), merged.

    ``attention(q, k, v, mask)`` returns (output, weights); ``split="reshape"`` cuts the heads with a reshape alone
    (and merges them back the same way), a known mistake.
    """
    x = hidden.double()
    B, T, D = x.shape
    q, k, v = (F.linear(x, p.weight.double(), p.bias.double()) for p in projections)  # (B, T, D) each

    def heads(t):
        return heads_of(t, H) if split == "transpose" else t.reshape(B, H, T, D // H)

    attention = attention or (lambda q, k, v, mask: torch_attention(q, k, v, allowed_keys(T, T, mask)))
    context, _ = attention(heads(q), heads(k), heads(v), mask)  # (B, H, T, Dh)
    return merged(context) if split == "transpose" else context.reshape(B, T, D)


@cached
def self_attention_causes(key: tuple) -> list[Cause]:
    """What the known mistakes give on a self-attention case (``key``: ("minilm", layer, sentences) or ("small", *sizes))."""
    hidden, mask, projections, H, expected = minilm_layer_case(*key[1:]) if key[0] == "minilm" else small_layer_case(*key[1:])
    D = hidden.shape[-1]
    T = hidden.shape[1]
    variants = [(f"the scores are divided by √D (the model width, {D}) instead of √Dh (the head width, D / num_heads = "
                 f"{D // H}): each head uses its own width.",
                 dict(attention=lambda q, k, v, m: torch_attention(q, k, v, allowed_keys(T, T, m), scale=D ** -0.5))),
                ("the heads are split (and merged) with a reshape alone, which mixes tokens into heads: reshape to "
                 "(B, T, H, Dh), then transpose(1, 2).", dict(split="reshape"))]
    variants += [(hint, dict(attention=lambda q, k, v, m, compute=compute: compute(q, k, v, m, False)))
                 for hint, compute in MISTAKES]
    causes = []
    for hint, options in variants:
        try:
            wrong = self_attention64(hidden, mask, projections, H, **options)
        except RuntimeError:  # a mistake that does not apply to these shapes
            continue
        if not torch.allclose(wrong, expected.double(), atol=1e-6):
            causes.append(Cause(hint, wrong))
    return causes


@cached
def minilm_layer_case(layer_index: int, sentences: tuple[str, ...]):
    """The input and output of MiniLM layer ``layer_index``'s own ``attention.self`` on a padded batch."""
    tokenizer, model = course_model("encoder")
    module = model.encoder.layer[layer_index].attention.self
    captured = {}

    def hook(_, args, kwargs, output):
        captured["hidden_states"] = (args[0] if args else kwargs["hidden_states"]).detach().cpu().clone()  # (B, T, D)
        captured["output"] = output[0].detach().cpu().clone()  # (B, T, D)

    device = next(model.parameters()).device
    batch = tokenizer(list(sentences), padding=True, return_tensors="pt").to(device)
    with MODEL_LOCK:  # the hook must see this forward pass only
        handle = module.register_forward_hook(hook, with_kwargs=True)
        try:
            with torch.no_grad():
                model(**batch)
        finally:
            handle.remove()
    projections = [Projection(p.weight.detach().cpu().clone(), p.bias.detach().cpu().clone())
                   for p in (module.query, module.key, module.value)]
    heads = model.config.num_attention_heads
    mask = batch["attention_mask"].cpu()
    ours = self_attention64(captured["hidden_states"], mask, projections, heads)
    torch.testing.assert_close(ours.float(), captured["output"])  # torch's kernels give the layer's own output
    return captured["hidden_states"], mask, projections, heads, captured["output"]


@dataclass(frozen=True)
class Projection:
    """The weight (out, in) and bias (out,) of an ``nn.Linear``, as plain tensors."""

    weight: torch.Tensor
    bias: torch.Tensor


@cached
def small_layer_case(seed: int = 90, H: int = 5, Dh: int = 7, T: int = 9, short: int = 6):
    """A random layer of H heads of width Dh (not MiniLM's sizes): num_heads must come from the argument."""
    D = H * Dh
    hidden = randn(seed, 2, T, D)  # (B, T, D)
    mask = padding_mask((T, short), T)
    projections = [Projection(randn(seed + 1 + i, D, D) / D**0.5, randn(seed + 5 + i, D)) for i in range(3)]
    return hidden, mask, projections, H, self_attention64(hidden, mask, projections, H)


def _layer(student, projections):
    return [student.linear(p.weight, p.bias) for p in projections]


@RULES.add("self_attention_minilm", "self_attention",
           "self_attention must equal the output of a MiniLM layer's own self-attention (before its output projection).",
           {"3": (3, SENTENCES)})
def check_self_attention_minilm(student, case) -> None:
    layer, sentences = case
    hidden, mask, projections, heads, expected = minilm_layer_case(layer, sentences)
    got = student.self_attention(hidden, mask, *_layer(student, projections), heads)
    which = "3 padded sentences" if sentences == SENTENCES else f"{len(sentences)} hidden padded sentences"
    check_close(got, expected, f"self_attention on MiniLM layer {layer} ({which}, {heads} heads)", dims="(B, T, D)",
                causes=lambda: self_attention_causes(("minilm", layer, sentences)))


RULES.add("self_attention_minilm_hidden", "self_attention", "self_attention must match every MiniLM layer, on other sentences.",
          {"0": (0, SENTENCES), "5": (5, SENTENCES)})(check_self_attention_minilm)


@RULES.add("self_attention_other_sizes", "self_attention",
           "self_attention must use the num_heads it is given (a few heads of a small width), not MiniLM's 12.",
           {"": (90, 5, 7, 9, 6)})
def check_self_attention_sizes(student, case) -> None:
    hidden, mask, projections, heads, expected = small_layer_case(*case)
    got = student.self_attention(hidden, mask, *_layer(student, projections), heads)
    check_close(got, expected, f"self_attention with D = {hidden.shape[-1]}, {heads} heads", dtype=torch.float32,
                dims="(B, T, D)", causes=lambda: self_attention_causes(("small",) + tuple(case)))


# --- references for the functions self_attention calls: torch's kernels, in the inputs' dtype --------------


def _reference_attention(query, key, value, attention_mask=None, is_causal=False):
    allowed = allowed_keys(query.shape[-2], key.shape[-2], attention_mask, is_causal)
    output, weights = torch_attention(query, key, value, allowed)
    return output.to(query.dtype), weights.to(query.dtype)


LAB = Lab(
    name="lab1",
    title="Attention",
    functions=FUNCTIONS,
    rules=tuple(RULES.rules),
    uses={"self_attention": ("split_heads", "merge_heads", "scaled_dot_product_attention")},
    references={"split_heads": heads_of, "merge_heads": merged, "scaled_dot_product_attention": _reference_attention},
)


def visible_truths() -> None:
    """Compute the truths of every public case once (the grader does it before grading starts)."""
    for rule in LAB.rules:
        for case in rule.cases.values():
            if isinstance(case, Case):
                attention_case(case)
    minilm_layer_case(3, SENTENCES)

