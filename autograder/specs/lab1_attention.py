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

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from transformers.models.llama.modeling_llama import repeat_kv as library_repeat_kv

from autograder.compare import (as_pair, as_tensor, check_close, check_finite, check_rows_sum_to_one,
                                check_shape, check_zero_where)
from autograder.spec import Lab, cached, course_model, parametrize, points
from autograder.wire import Linear

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
    check_close(student.split_heads(x, H), expected, f"split_heads(x {tuple(x.shape)}, num_heads={H})", dims="(B, H, T, Dh)")


@points(1, "merge_heads must turn (B, H, T, Dh) back into (B, T, D), the heads side by side.")
@parametrize("B, H, T, Dh", [(3, 5, 7, 13), (1, 7, 13, 3)])
def test_merge_heads(student, B, H, T, Dh):
    x = randn(B * T + H + 1, B, H, T, Dh)
    expected = x.permute(0, 2, 1, 3).reshape(B, T, H * Dh)  # (B, T, D)
    check_close(student.merge_heads(x), expected, f"merge_heads(x {tuple(x.shape)})", dims="(B, T, D)")


@points(1, "merge_heads(split_heads(x, H)) must give x back, for any batch, length and number of heads.", hidden=True)
@parametrize("B, T, H, Dh", [(2, 11, 3, 1), (5, 1, 1, 17)])
def test_heads_round_trip(student, B, T, H, Dh):
    x = randn(7 * B + T, B, T, H * Dh, dtype=torch.float64)
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

    def label(self) -> str:
        extras = [f"attention_mask with {self.side} padding" if self.lengths else "", "is_causal=True" if self.causal else "",
                  str(self.dtype).replace("torch.", "")]
        return (f"scaled_dot_product_attention(q {(self.B, self.H, self.Tq, self.Dh)}, k and v "
                f"{(self.B, self.H, self.Tk, self.Dh)}{''.join(', ' + e for e in extras if e)})")


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
    kwargs = {}
    if mask is not None:
        kwargs["attention_mask"] = mask
    if case.causal:
        kwargs["is_causal"] = True
    return (q, k, v), kwargs, allowed, seen, output, weights


def check_attention(student, case: Case) -> None:
    """Call the student's attention on ``case`` and compare output and weights with the truth."""
    (q, k, v), kwargs, allowed, seen, output, weights = attention_case(case)
    got_output, got_weights = as_pair(student.scaled_dot_product_attention(q, k, v, **kwargs), case.label(), "output", "weights")
    check_close(got_weights, weights, f"{case.label()}: the weights", dtype=case.dtype, where=seen, dims="(B, H, Tq, Tk)")
    check_close(got_output, output, f"{case.label()}: the output", dtype=case.dtype, where=seen, dims="(B, H, Tq, Dh)")


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
    check_rows_sum_to_one(weights, seen[..., 0])


@points(2, "Without a mask, the output and weights must equal softmax(q kᵀ / √Dh) v and its softmax.")
@parametrize("case", [Case(23, B=3, H=5, Tq=7, Tk=7, Dh=13)], ids=["3x5x7x13"])
def test_sdpa_no_mask(student, case):
    check_attention(student, case)


@points(1, "Attention must be right for any size: one sequence, one head, one query, Tq != Tk.", hidden=True)
@parametrize("case", [Case(24, B=1, H=1, Tq=1, Tk=9, Dh=5), Case(25, B=2, H=3, Tq=11, Tk=5, Dh=37),
                      Case(26, B=1, H=7, Tq=13, Tk=13, Dh=1)], ids=["one-query", "more-queries-than-keys", "Dh=1"])
def test_sdpa_sizes(student, case):
    check_attention(student, case)


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
def test_sdpa_left_padding(student, case):
    check_attention(student, case)


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
def test_sdpa_causal_with_padding(student, case):
    check_attention(student, case)


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
                dims="(B, Hkv * n_rep, T, Dh)")


@points(1, "repeat_kv must work for SmolLM2's grouping and any dtype.", hidden=True)
@parametrize("B, Hkv, n_rep, T, Dh, dtype", [(2, 3, 3, 5, 64, torch.bfloat16), (1, 1, 9, 3, 11, torch.float64)])
def test_repeat_kv_hidden(student, B, Hkv, n_rep, T, Dh, dtype):
    x = randn(75 + n_rep, B, Hkv, T, Dh, dtype=dtype)
    check_close(student.repeat_kv(x, n_rep), library_repeat_kv(x, n_rep), f"repeat_kv(x {tuple(x.shape)}, n_rep={n_rep})",
                dims="(B, Hkv * n_rep, T, Dh)")


# --- self-attention in a real layer ---------------------------------------------------------------

SENTENCES = (
    "Attention lets every token look at the others.",
    "Padding fills short sentences up to the longest one in the batch.",
    "Heads attend in parallel.",
)
HIDDEN_SENTENCES = (
    "A tokenizer's mask marks the real tokens with ones.",
    "Why?",
    "Grouped-query attention shares each key and value head among several query heads, shrinking the cache.",
    "Seven, thirteen and thirty-seven are odd sizes.",
)


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
    handle = module.register_forward_hook(hook, with_kwargs=True)
    try:
        with torch.no_grad():
            model(**batch)
    finally:
        handle.remove()
    projections = [Linear(p.weight.detach().clone(), p.bias.detach().clone()) for p in (module.query, module.key, module.value)]
    return captured["hidden_states"], batch["attention_mask"], projections, model.config.num_attention_heads, captured["output"]


@points(2, "self_attention must equal the output of a MiniLM layer's own self-attention (before its output projection).")
@parametrize("layer", [3])
def test_self_attention_minilm(student, layer):
    hidden, mask, (query, key, value), heads, expected = minilm_layer_case(layer, SENTENCES)
    got = student.self_attention(hidden, mask, query, key, value, heads)
    check_close(got, expected, f"self_attention on MiniLM layer {layer} (3 padded sentences, {heads} heads)", dims="(B, T, D)")


@points(1, "self_attention must match every MiniLM layer, on other sentences.", hidden=True)
@parametrize("layer", [0, 5])
def test_self_attention_minilm_hidden(student, layer):
    hidden, mask, (query, key, value), heads, expected = minilm_layer_case(layer, HIDDEN_SENTENCES)
    got = student.self_attention(hidden, mask, query, key, value, heads)
    check_close(got, expected, f"self_attention on MiniLM layer {layer} (4 padded sentences, {heads} heads)", dims="(B, T, D)")


@cached
def small_layer_case():
    """A random layer with D = 35 and 5 heads (Dh = 7): num_heads must come from the argument."""
    from solutions.attention import self_attention as reference

    D, H = 35, 5
    hidden = randn(90, 2, 9, D)  # (B, T, D)
    mask = padding_mask((9, 6), 9)
    weights = [(randn(91 + i, D, D) / D**0.5, randn(95 + i, D)) for i in range(3)]
    layers = [torch.nn.Linear(D, D) for _ in range(3)]
    with torch.no_grad():
        for layer, (w, b) in zip(layers, weights):
            layer.weight.copy_(w)
            layer.bias.copy_(b)
        expected = reference(hidden.double(), mask, *[layer.double() for layer in layers], H)
    return hidden, mask, [Linear(w, b) for w, b in weights], H, expected


@points(1, "self_attention must use the num_heads it is given (here 5 heads of width 7), not MiniLM's 12.", hidden=True)
def test_self_attention_other_sizes(student):
    hidden, mask, (query, key, value), heads, expected = small_layer_case()
    got = student.self_attention(hidden, mask, query, key, value, heads)
    check_close(got, expected, "self_attention with D = 35, 5 heads", dtype=torch.float32, dims="(B, T, D)")


def prepare(tests) -> None:
    """Compute every expected value once, before grading starts, so that no submission pays for it."""
    for test in tests:
        if "case" in test.kwargs:
            attention_case(test.kwargs["case"])
    minilm_layer_case(3, SENTENCES)
    for layer in (0, 5):
        minilm_layer_case(layer, HIDDEN_SENTENCES)
    small_layer_case()

