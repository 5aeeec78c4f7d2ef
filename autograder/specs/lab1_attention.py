"""Lab 1, attention: the graded tests of split_heads, merge_heads, scaled_dot_product_attention, repeat_kv, self_attention.

Two truths per result, as in the lab's own checks: the library (torch's
``F.scaled_dot_product_attention``, transformers' ``repeat_kv``, a MiniLM layer's own
``attention.self`` module) and the reference solution (:mod:`solutions.attention`, for the
attention weights, which torch does not return). Inputs are seeded, of odd and distinct sizes,
generated in float64 and rounded to the test's dtype; the expected values are computed in
float64 from those rounded inputs. Rows of a query that may see no key accept any finite
answer, so they are only checked for NaN.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import torch
import torch.nn.functional as F
from transformers.models.llama.modeling_llama import repeat_kv as library_repeat_kv

from autograder.compare import (Cause, as_pair, as_tensor, check_close, check_finite, check_rows_sum_to_one,
                                check_shape, check_zero_where)
from autograder.spec import MODEL_LOCK, Lab, cached, course_model, parametrize, points
from autograder.wire import Linear, linear_module

LAB = Lab(
    name="lab1",
    title="Attention",
    notebook="labs/lab1_attention.ipynb",
    reference="solutions/attention.py",
    functions=("split_heads", "merge_heads", "scaled_dot_product_attention", "repeat_kv", "self_attention"),
)


def randn(seed: int, *shape: int, dtype=torch.float32) -> torch.Tensor:
    """Seeded normal noise, drawn in float64 then rounded to ``dtype`` (the same numbers on every machine)."""
    generator = torch.Generator().manual_seed(seed)
    return torch.randn(*shape, generator=generator, dtype=torch.float64).to(dtype)


def padding_mask(lengths: tuple[int, ...], T: int, side: str = "right") -> torch.Tensor:
    """The tokenizer's (B, T) mask: ``lengths[b]`` ones on the left (right padding) or on the right (left padding)."""
    positions = torch.arange(T)[None, :]  # (1, T)
    lengths_ = torch.tensor(lengths)[:, None]  # (B, 1)
    real = positions < lengths_ if side == "right" else positions >= T - lengths_
    return real.long()  # (B, T)


# --- heads ------------------------------------------------------------------------------------


@points(1, "split_heads must turn (B, T, D) into (B, H, T, Dh), head h holding features h*Dh to (h+1)*Dh - 1.")
@parametrize("B, T, H, Dh", [(3, 7, 5, 13), (1, 13, 7, 3)])
def test_split_heads(student, B, T, H, Dh):
    x = randn(B * T + H, B, T, H * Dh)
    expected = x.reshape(B, T, H, Dh).permute(0, 2, 1, 3)  # (B, H, T, Dh)
    causes = [Cause("a reshape to (B, H, T, Dh) alone cuts the sequence of features into H pieces, mixing tokens "
                    "into heads: reshape to (B, T, H, Dh), then transpose(1, 2).", x.reshape(B, H, T, Dh))]
    check_close(student.split_heads(x, H), expected, f"split_heads(x {tuple(x.shape)}, num_heads={H})", dims="(B, H, T, Dh)",
                causes=causes)


@points(1, "merge_heads must turn (B, H, T, Dh) back into (B, T, D), the heads side by side.")
@parametrize("B, H, T, Dh", [(3, 5, 7, 13), (1, 7, 13, 3)])
def test_merge_heads(student, B, H, T, Dh):
    x = randn(B * T + H + 1, B, H, T, Dh)
    expected = x.permute(0, 2, 1, 3).reshape(B, T, H * Dh)  # (B, T, D)
    causes = [Cause("a reshape of (B, H, T, Dh) straight to (B, T, D) puts one head's tokens side by side: "
                    "transpose(1, 2) first, then reshape.", x.reshape(B, T, H * Dh))]
    check_close(student.merge_heads(x), expected, f"merge_heads(x {tuple(x.shape)})", dims="(B, T, D)", causes=causes)


def drawn_size(draw, template: int, avoid: tuple[int, ...] = (), high: int = 17) -> int:
    """A size drawn for a hidden case: 1 stays 1 (the edge case the test is about), others odd in [3, ``high``]."""
    return 1 if template == 1 else draw.odd(3, high, avoid)


@points(1, "merge_heads(split_heads(x, H)) must give x back, for any batch, length and number of heads.", hidden=True)
@parametrize("B, T, H, Dh", [(2, 11, 3, 1), (5, 1, 1, 17)], ids=["Dh=1", "T=1-H=1"])
def test_heads_round_trip(student, B, T, H, Dh, draw):
    H = drawn_size(draw, H, high=9)
    Dh = drawn_size(draw, Dh, (H,), high=37)
    T = drawn_size(draw, T, (H, Dh))
    B = draw.integer(2, 5)
    x = randn(draw.seed(), B, T, H * Dh, dtype=torch.float64)
    split = as_tensor(student.split_heads(x, H), "split_heads(x)")
    check_shape(split, (B, H, T, Dh), f"split_heads(x {tuple(x.shape)}, num_heads={H})", "(B, H, T, Dh)")
    check_close(student.merge_heads(split), x, "merge_heads(split_heads(x))")


# --- scaled dot-product attention ---------------------------------------------------------------


@dataclass(frozen=True)
class Case:
    """One attention call: sizes, mask, causality, dtype."""

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
    hidden: bool = False  # drawn for one student: its label does not show the inputs

    def label(self) -> str:
        extras = [f"attention_mask with {self.side} padding" if self.lengths else "", "is_causal=True" if self.causal else "",
                  str(self.dtype).replace("torch.", "")]
        if self.hidden:
            return f"scaled_dot_product_attention on a hidden case ({', '.join(e for e in extras if e)})"
        return (f"scaled_dot_product_attention(q {(self.B, self.H, self.Tq, self.Dh)}, k and v "
                f"{(self.B, self.H, self.Tk, self.Dh)}{''.join(', ' + e for e in extras if e)})")

    def drawn(self, draw) -> "Case":
        """A hidden case of this template's structure, its sizes and values drawn for one student.

        Kept from the template: one sequence, one head, one query or Dh = 1 where it has them; the
        order of Tq and Tk; sequences with no real token and full-length ones; side, causality and
        dtype. Drawn: the other sizes (odd, distinct where they can be), the other lengths, the values.
        """
        H = drawn_size(draw, self.H, high=9)
        Dh = drawn_size(draw, self.Dh, (H,), high=37)
        if self.Tq == 1:
            Tq, Tk = 1, draw.odd(5, 17, (H, Dh))
        elif self.Tq == self.Tk:
            Tq = Tk = draw.odd(5, 17, (H, Dh))
        elif self.Tq < self.Tk:
            Tq = draw.odd(3, 11, (H, Dh))
            Tk = draw.odd(Tq + 2, 19, (H, Dh))
        else:
            Tk = draw.odd(3, 11, (H, Dh))
            Tq = draw.odd(Tk + 2, 19, (H, Dh))
        lengths = draw.lengths(self.lengths, Tk, self.Tk) if self.lengths else None
        B = len(lengths) if lengths else 1 if self.B == 1 else draw.integer(2, 5)
        return replace(self, seed=draw.seed(), B=B, H=H, Tq=Tq, Tk=Tk, Dh=Dh, lengths=lengths, hidden=True)


def attention64(q, k, v, mask=None, is_causal=False, *, scale: str | float = "sqrt", dim: int = -1, mask_after: bool = False,
                scale_after: bool = False, padding: str = "keys", causal: str = "offset"):
    """(B, H, Tq, Dh) x3 -> output (B, H, Tq, Dh), weights (B, H, Tq, Tk) in float64, with a known mistake switched on.

    The defaults are right. ``scale`` "sqrt", "none", "width" (Dh) or the divisor itself; ``dim`` the softmax's axis;
    ``mask_after`` zeroes the masked weights after an unmasked softmax; ``scale_after`` divides the
    weights instead of the scores; ``padding`` "keys", "inverted", "queries" or "ignored";
    ``causal`` "offset", "no-offset", "no-diagonal" or "ignored".
    """
    Tq, Tk, Dh = q.shape[-2], k.shape[-2], q.shape[-1]
    scores = q.double() @ k.double().transpose(-2, -1)  # (B, H, Tq, Tk)
    divisor = {"sqrt": Dh ** 0.5, "none": 1.0, "width": float(Dh)}[scale] if isinstance(scale, str) else scale
    if not scale_after:
        scores = scores / divisor
    allowed = torch.ones(Tq, Tk, dtype=torch.bool)  # (Tq, Tk)
    if is_causal and causal != "ignored":
        allowed = allowed.tril({"offset": Tk - Tq, "no-offset": 0, "no-diagonal": Tk - Tq - 1}[causal])
    if mask is not None and padding != "ignored":
        real = mask.bool()
        real = ~real if padding == "inverted" else real
        allowed = allowed & (real[:, None, :, None] if padding == "queries" else real[:, None, None, :])  # (B, 1, Tq, Tk)
    if not mask_after:
        scores = scores.masked_fill(~allowed, torch.finfo(torch.float64).min)
    weights = scores.softmax(dim=dim).masked_fill(~allowed, 0.0)  # (B, H, Tq, Tk)
    if scale_after:
        weights = weights / divisor
    return weights @ v.double(), weights  # (B, H, Tq, Dh), (B, H, Tq, Tk)


# Known mistakes: the options of attention64 that make them, and the sentence that names them.
MISTAKES = (
    (dict(scale="none"), "the scores are not scaled: divide q kᵀ by √Dh (the head width, query.shape[-1]) before the softmax."),
    (dict(scale="width"), "the scores are divided by Dh instead of √Dh: divide them by math.sqrt(Dh)."),
    (dict(scale_after=True), "the weights are scaled after the softmax: divide the scores by √Dh before the softmax."),
    (dict(dim=-2), "the softmax is taken over the queries (dim -2), not the keys: use softmax(dim=-1)."),
    (dict(mask_after=True), "the mask is applied after the softmax: the hidden keys were zeroed but the other weights "
                            "not renormalised; fill the hidden scores with a large negative number before the softmax."),
    (dict(padding="inverted"), "the padding mask is inverted: attention_mask is 1 for a real token and 0 for padding, "
                               "so hide the keys where it is 0."),
    (dict(padding="queries"), "the padding mask was applied to the queries instead of the keys: broadcast it as "
                              "attention_mask[:, None, None, :], one entry per key."),
    (dict(padding="ignored"), "attention_mask is ignored: the padding keys get weight."),
    (dict(causal="no-offset"), "the causal mask ignores the offset: with Tq < Tk the queries are the last Tq tokens, "
                               "so query i may see keys j <= i + (Tk - Tq) (tril with diagonal=Tk - Tq)."),
    (dict(causal="no-diagonal"), "the causal mask hides each query's own position: query i may see keys j <= i + (Tk - Tq), "
                                 "itself included."),
    (dict(causal="ignored"), "is_causal is ignored: queries see later keys."),
)


def attention_causes(q, k, v, mask, is_causal, seen, weights) -> tuple[list[Cause], list[Cause]]:
    """The known mistakes that change the result on these inputs: (causes for the weights, causes for the output)."""
    on_weights, on_output = [], []
    for options, hint in MISTAKES:
        try:
            output, wrong = attention64(q, k, v, mask, is_causal, **options)
        except RuntimeError:  # the mistake cannot even run on these shapes (a mask on the queries with Tq != Tk)
            continue
        if torch.allclose(torch.where(seen, wrong, 0.0), torch.where(seen, weights, 0.0), atol=1e-9):
            continue  # the same result here: not a cause of anything
        on_weights.append(Cause(hint, wrong))
        on_output.append(Cause(hint, output))
    return on_weights, on_output


@cached
def attention_case(case: Case):
    """Inputs of ``case``, the keys each query may see (B or 1, 1, Tq, Tk), and the float64 truth."""
    from solutions.attention import scaled_dot_product_attention as reference

    q = randn(case.seed, case.B, case.H, case.Tq, case.Dh, dtype=case.dtype)
    k = randn(case.seed + 1, case.B, case.H, case.Tk, case.Dh, dtype=case.dtype)
    v = randn(case.seed + 2, case.B, case.H, case.Tk, case.Dh, dtype=case.dtype)
    mask = padding_mask(case.lengths, case.Tk, case.side) if case.lengths else None

    allowed = torch.ones(case.Tq, case.Tk, dtype=torch.bool)  # (Tq, Tk)
    if case.causal:
        allowed = allowed.tril(diagonal=case.Tk - case.Tq)  # query i sees keys j <= i + Tk - Tq
    allowed = allowed[None, None]  # (1, 1, Tq, Tk)
    if mask is not None:
        allowed = allowed & mask.bool()[:, None, None, :]  # (B, 1, Tq, Tk)

    q64, k64, v64 = q.double(), k.double(), v.double()
    library = F.scaled_dot_product_attention(q64, k64, v64, attn_mask=allowed)  # (B, H, Tq, Dh)
    output, weights = reference(q64, k64, v64, attention_mask=mask, is_causal=case.causal)
    seen = allowed.expand(case.B, 1, case.Tq, case.Tk).any(dim=-1)[..., None]  # (B, 1, Tq, 1): some key visible
    torch.testing.assert_close(torch.where(seen, output, 0.0), torch.where(seen, library, 0.0))  # the truths agree
    torch.testing.assert_close(attention64(q64, k64, v64, mask, case.causal), (output, weights))  # and the variants' base
    kwargs = {}
    if mask is not None:
        kwargs["attention_mask"] = mask
    if case.causal:
        kwargs["is_causal"] = True
    return (q, k, v), kwargs, allowed, seen, output, weights


@cached
def case_causes(case: Case) -> tuple[list[Cause], list[Cause]]:
    """What the known mistakes give on ``case`` (computed on the first mismatch only, then kept)."""
    (q, k, v), kwargs, allowed, seen, output, weights = attention_case(case)
    mask = kwargs.get("attention_mask")
    return attention_causes(q, k, v, mask, case.causal, seen, weights)


def check_attention(student, case: Case) -> None:
    """Call the student's attention on ``case`` and compare output and weights with the truth."""
    (q, k, v), kwargs, allowed, seen, output, weights = attention_case(case)
    got_output, got_weights = as_pair(student.scaled_dot_product_attention(q, k, v, **kwargs), case.label(), "output", "weights")
    check_close(got_weights, weights, f"{case.label()}: the weights", dtype=case.dtype, where=seen, dims="(B, H, Tq, Tk)",
                causes=lambda: case_causes(case)[0])
    check_close(got_output, output, f"{case.label()}: the output", dtype=case.dtype, where=seen, dims="(B, H, Tq, Dh)",
                causes=lambda: case_causes(case)[1])


@points(1, "scaled_dot_product_attention must return a pair: output (B, H, Tq, Dh) and weights (B, H, Tq, Tk).")
def test_sdpa_returns_output_and_weights(student):
    case = Case(20, B=3, H=5, Tq=7, Tk=11, Dh=13)
    (q, k, v), kwargs, *_ = attention_case(case)
    output, weights = as_pair(student.scaled_dot_product_attention(q, k, v), case.label(), "output", "weights")
    check_shape(as_tensor(output, "the output"), (3, 5, 7, 13), "the output", "(B, H, Tq, Dh)")
    check_shape(as_tensor(weights, "the weights"), (3, 5, 7, 11), "the weights", "(B, H, Tq, Tk)")


@points(1, "Rows of the attention weights must sum to 1 along the keys (a softmax over the last dimension).")
@parametrize("case", [Case(21, B=3, H=5, Tq=7, Tk=7, Dh=13), Case(22, B=3, H=5, Tq=7, Tk=13, Dh=11, lengths=(13, 9, 4))],
             ids=["square", "padding"])
def test_sdpa_weights_rows_sum_to_one(student, case):
    (q, k, v), kwargs, allowed, seen, *_ = attention_case(case)
    _, weights = as_pair(student.scaled_dot_product_attention(q, k, v, **kwargs), case.label(), "output", "weights")
    check_shape(as_tensor(weights, "the weights"), (case.B, case.H, case.Tq, case.Tk), "the weights", "(B, H, Tq, Tk)")
    check_rows_sum_to_one(weights, seen[..., 0], head_width=case.Dh)


@points(2, "Without a mask, the output and weights must equal softmax(q kᵀ / √Dh) v and its softmax.")
@parametrize("case", [Case(23, B=3, H=5, Tq=7, Tk=7, Dh=13)], ids=["3x5x7x13"])
def test_sdpa_no_mask(student, case):
    check_attention(student, case)


@points(1, "Attention must be right for any size: one sequence, one head, one query, Tq != Tk.", hidden=True)
@parametrize("case", [Case(24, B=1, H=1, Tq=1, Tk=9, Dh=5), Case(25, B=2, H=3, Tq=11, Tk=5, Dh=37),
                      Case(26, B=1, H=7, Tq=13, Tk=13, Dh=1)], ids=["one-query", "more-queries-than-keys", "Dh=1"])
def test_sdpa_sizes(student, case, draw):
    check_attention(student, case.drawn(draw))


@points(2, "Padding keys (attention_mask 0) must get zero weight, and the output must match.")
@parametrize("case", [Case(30, B=3, H=5, Tq=7, Tk=13, Dh=11, lengths=(13, 9, 4))], ids=["right-padding"])
def test_sdpa_padding_mask(student, case):
    (q, k, v), kwargs, allowed, seen, *_ = attention_case(case)
    _, weights = as_pair(student.scaled_dot_product_attention(q, k, v, **kwargs), case.label(), "output", "weights")
    check_shape(as_tensor(weights, "the weights"), (case.B, case.H, case.Tq, case.Tk), "the weights", "(B, H, Tq, Tk)")
    check_zero_where(weights, ~allowed, f"{case.label()}: the weights", "the key is padding")
    check_attention(student, case)


@points(1, "Left padding must be masked as well as right padding.", hidden=True)
@parametrize("case", [Case(31, B=4, H=3, Tq=9, Tk=9, Dh=7, lengths=(9, 2, 5, 1), side="left")], ids=["left-padding"])
def test_sdpa_left_padding(student, case, draw):
    check_attention(student, case.drawn(draw))


@points(1, "With is_causal=True, query i must see only keys j <= i + (Tk - Tq).")
@parametrize("case", [Case(40, B=3, H=5, Tq=13, Tk=13, Dh=7, causal=True),
                      Case(45, B=3, H=5, Tq=7, Tk=13, Dh=11, causal=True)], ids=["Tq=Tk", "Tq<Tk"])
def test_sdpa_causal(student, case):
    check_attention(student, case)


@points(1, "A query that may see no key (all padding, or left padding with is_causal) must not produce NaN.")
@parametrize("case", [Case(50, B=3, H=5, Tq=7, Tk=13, Dh=11, lengths=(13, 5, 0), causal=True)], ids=["all-padding-row"])
def test_sdpa_fully_masked_rows_are_finite(student, case):
    (q, k, v), kwargs, *_ = attention_case(case)
    output, weights = as_pair(student.scaled_dot_product_attention(q, k, v, **kwargs), case.label(), "output", "weights")
    check_finite(as_tensor(output, "the output"), f"{case.label()}: the output")
    check_finite(as_tensor(weights, "the weights"), f"{case.label()}: the weights")


@points(1, "Causal attention with padding must combine both masks, rows with no visible key included.", hidden=True)
@parametrize("case", [Case(51, B=3, H=5, Tq=7, Tk=13, Dh=11, lengths=(13, 5, 0), causal=True),
                      Case(52, B=3, H=2, Tq=9, Tk=9, Dh=5, lengths=(9, 4, 6), side="left", causal=True)],
             ids=["right-padding", "left-padding"])
def test_sdpa_causal_with_padding(student, case, draw):
    check_attention(student, case.drawn(draw))


@points(1, "The output and weights must keep the inputs' dtype and be accurate in it.")
@parametrize("case", [Case(60, B=3, H=5, Tq=7, Tk=13, Dh=11, lengths=(13, 9, 4), dtype=torch.bfloat16),
                      Case(61, B=2, H=3, Tq=9, Tk=9, Dh=37, causal=True, dtype=torch.float64)], ids=["bfloat16", "float64"])
def test_sdpa_dtype(student, case):
    check_attention(student, case)


# --- grouped-query attention --------------------------------------------------------------------


@points(1, "repeat_kv must give query head h the key/value head h // n_rep (k0 k0 k1 k1, not k0 k1 k0 k1).")
@parametrize("B, Hkv, n_rep, T, Dh", [(3, 5, 3, 7, 13), (1, 3, 1, 13, 7)])
def test_repeat_kv(student, B, Hkv, n_rep, T, Dh):
    x = randn(70 + B + Hkv + n_rep, B, Hkv, T, Dh)
    check_close(student.repeat_kv(x, n_rep), library_repeat_kv(x, n_rep), f"repeat_kv(x {tuple(x.shape)}, n_rep={n_rep})",
                dims="(B, Hkv * n_rep, T, Dh)", causes=repeat_causes(x, n_rep))


def repeat_causes(x: torch.Tensor, n_rep: int) -> list[Cause]:
    return [Cause("the heads are tiled (k0 k1 k0 k1, what x.repeat gives): query head h needs key/value head h // n_rep, "
                  "so repeat each head in place (k0 k0 k1 k1): x.repeat_interleave(n_rep, dim=1).", x.repeat(1, n_rep, 1, 1))]


@points(1, "repeat_kv must work for SmolLM2's grouping and any dtype.", hidden=True)
@parametrize("B, Hkv, n_rep, T, Dh, dtype", [(2, 3, 3, 5, 64, torch.bfloat16), (1, 1, 9, 3, 11, torch.float64)],
             ids=["smollm2-grouping", "one-kv-head"])
def test_repeat_kv_hidden(student, B, Hkv, n_rep, T, Dh, dtype, draw):
    # SmolLM2's 3 groups of 3 and Dh = 64 are kept; one key/value head stays one. The rest is drawn.
    if Hkv == 1:
        n_rep, Dh = draw.odd(3, 9), draw.odd(5, 17)
    B, T = (1 if B == 1 else draw.integer(2, 5)), draw.odd(3, 13, (Hkv, n_rep))
    x = randn(draw.seed(), B, Hkv, T, Dh, dtype=dtype)
    check_close(student.repeat_kv(x, n_rep), library_repeat_kv(x, n_rep), f"repeat_kv(x {tuple(x.shape)}, n_rep={n_rep})",
                dims="(B, Hkv * n_rep, T, Dh)", causes=repeat_causes(x, n_rep))


# --- self-attention in a real layer ---------------------------------------------------------------

SENTENCES = (
    "Attention lets every token look at the others.",
    "Padding fills short sentences up to the longest one in the batch.",
    "Heads attend in parallel.",
)


@cached
def corpus_sentences() -> tuple[tuple[str, ...], tuple[str, ...]]:
    """The course corpus cut into sentences: (short ones of at most 4 words, ones of 8 to 40 words).

    Hidden self-attention batches are drawn from them: three long sentences and a short one, so
    that most rows carry padding.
    """
    import re

    from book import load_corpus

    sentences = {s.strip() for text in load_corpus()["text"] for s in re.split(r"(?<=[.!?])\s+", text) if s.strip()}
    short = tuple(sorted(s for s in sentences if len(s.split()) <= 4))
    long = tuple(sorted(s for s in sentences if 8 <= len(s.split()) <= 40))
    return short or ("Why?",), long


def drawn_sentences(draw) -> tuple[str, ...]:
    """Four corpus sentences for one student's hidden self-attention batch, in a drawn order."""
    short, long = corpus_sentences()
    return tuple(draw.sample(draw.sample(long, 3) + [draw.choice(short)], 4))


def self_attention64(hidden, mask, projections, H: int, *, split: str = "transpose", **options) -> torch.Tensor:
    """(B, T, D), (B, T) -> (B, T, D) in float64: the projections, H heads, :func:`attention64` with ``options``, merged.

    ``split="reshape"`` cuts the heads with a reshape alone (and merges them back the same way).
    """
    x = hidden.double()
    B, T, D = x.shape
    q, k, v = (x @ p.weight.double().T + p.bias.double() for p in projections)  # (B, T, D) each

    def heads(t):
        return t.view(B, T, H, D // H).transpose(1, 2) if split == "transpose" else t.reshape(B, H, T, D // H)

    context, _ = attention64(heads(q), heads(k), heads(v), mask, **options)  # (B, H, T, Dh)
    return context.transpose(1, 2).reshape(B, T, D) if split == "transpose" else context.reshape(B, T, D)


@cached
def self_attention_causes(key: tuple) -> list[Cause]:
    """What the known mistakes give on a self-attention case (``key``: ("minilm", layer, sentences) or ("small", *sizes))."""
    hidden, mask, projections, H, expected = (minilm_layer_case(*key[1:]) if key[0] == "minilm"
                                              else small_layer_case(*key[1:]))
    D = hidden.shape[-1]
    mistakes = ((dict(scale=D ** 0.5), f"the scores are divided by √D (the model width, {D}) instead of √Dh (the head "
                                       f"width, D / num_heads = {D // H}): each head uses its own width."),
                (dict(split="reshape"), "the heads are split (and merged) with a reshape alone, which mixes tokens into "
                                        "heads: reshape to (B, T, H, Dh), then transpose(1, 2)."),
                ) + MISTAKES
    causes = []
    for options, hint in mistakes:
        wrong = self_attention64(hidden, mask, projections, H, **options)
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
        captured["hidden_states"] = (args[0] if args else kwargs["hidden_states"]).detach().clone()  # (B, T, D)
        captured["output"] = output[0].detach().clone()  # (B, T, D)

    batch = tokenizer(list(sentences), padding=True, return_tensors="pt")
    with MODEL_LOCK:  # the hook must see this forward pass only
        handle = module.register_forward_hook(hook, with_kwargs=True)
        try:
            with torch.no_grad():
                model(**batch)
        finally:
            handle.remove()
    projections = [Linear(p.weight.detach().clone(), p.bias.detach().clone()) for p in (module.query, module.key, module.value)]
    heads = model.config.num_attention_heads
    ours = self_attention64(captured["hidden_states"], batch["attention_mask"], projections, heads)
    torch.testing.assert_close(ours.float(), captured["output"])  # the variants' base is the layer itself
    return captured["hidden_states"], batch["attention_mask"], projections, heads, captured["output"]


@points(2, "self_attention must equal the output of a MiniLM layer's own self-attention (before its output projection).")
@parametrize("layer", [3])
def test_self_attention_minilm(student, layer):
    hidden, mask, (query, key, value), heads, expected = minilm_layer_case(layer, SENTENCES)
    got = student.self_attention(hidden, mask, query, key, value, heads)
    check_close(got, expected, f"self_attention on MiniLM layer {layer} (3 padded sentences, {heads} heads)", dims="(B, T, D)",
                causes=lambda: self_attention_causes(("minilm", layer, SENTENCES)))


@points(1, "self_attention must match every MiniLM layer, on other sentences.", hidden=True)
@parametrize("layer", [0, 5])
def test_self_attention_minilm_hidden(student, layer, draw):
    sentences = drawn_sentences(draw)
    hidden, mask, (query, key, value), heads, expected = minilm_layer_case(layer, sentences)
    got = student.self_attention(hidden, mask, query, key, value, heads)
    check_close(got, expected, f"self_attention on MiniLM layer {layer} (4 hidden padded sentences, {heads} heads)",
                dims="(B, T, D)", causes=lambda: self_attention_causes(("minilm", layer, sentences)))


@cached
def small_layer_case(seed: int = 90, H: int = 5, Dh: int = 7, T: int = 9, short: int = 6):
    """A random layer of H heads of width Dh (not MiniLM's sizes): num_heads must come from the argument."""
    from solutions.attention import self_attention as reference

    D = H * Dh
    hidden = randn(seed, 2, T, D)  # (B, T, D)
    mask = padding_mask((T, short), T)
    weights = [(randn(seed + 1 + i, D, D) / D**0.5, randn(seed + 5 + i, D)) for i in range(3)]
    layers = [linear_module(w.double(), b.double()) for w, b in weights]
    with torch.no_grad():
        expected = reference(hidden.double(), mask, *layers, H)
    return hidden, mask, [Linear(w, b) for w, b in weights], H, expected


@points(1, "self_attention must use the num_heads it is given (a few heads of a small width), not MiniLM's 12.", hidden=True)
def test_self_attention_other_sizes(student, draw):
    H = draw.odd(3, 7)
    Dh = draw.odd(3, 9, (H,))
    T = draw.odd(5, 11, (H, Dh))
    key = (draw.seed(), H, Dh, T, draw.integer(1, T - 1))
    hidden, mask, (query, key_proj, value), heads, expected = small_layer_case(*key)
    got = student.self_attention(hidden, mask, query, key_proj, value, heads)
    check_close(got, expected, f"self_attention with D = {H * Dh}, {H} heads", dtype=torch.float32, dims="(B, T, D)",
                causes=lambda: self_attention_causes(("small",) + key))


def prepare(tests) -> None:
    """Compute the visible tests' expected values once, before grading starts (hidden ones depend on the student)."""
    for test in tests:
        if "case" in test.kwargs and not test.hidden:
            attention_case(test.kwargs["case"])
    minilm_layer_case(3, SENTENCES)
    corpus_sentences()  # hidden cases are drawn per student, from these

