"""The labs' reference solutions against independent truths: torch, transformers and sentence-transformers.

Each test seeds its own inputs, uses small distinct odd sizes (7, 13, 37...) so that a swapped
axis fails loudly, and compares with two truths where two exist (torch's fused kernel and
transformers' eager path for attention; a row-by-row loop and sentence-transformers' pooling
module for pooling).
"""

from __future__ import annotations

import copy
import inspect

import pytest
import torch
import torch.nn.functional as F
from torch.testing import assert_close

import book
from book import models
from solutions import attention, pooling, tokens

# The course's two models by registry name, whatever profile the developer's environment selects.
ENCODER, DECODER = "all-minilm-l6-v2", "smollm2-135m-instruct"
DTYPES = [torch.float32, torch.float64, torch.bfloat16]
TOLERANCE = {
    torch.float32: {"atol": 1e-5, "rtol": 1e-4},
    torch.float64: {"atol": 1e-10, "rtol": 1e-8},
    torch.bfloat16: {"atol": 2e-2, "rtol": 2e-2},
}


def randn(seed: int, *shape, dtype=torch.float32) -> torch.Tensor:
    """Seeded normal noise drawn in float64, so every dtype sees the same numbers."""
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed), dtype=torch.float64).to(dtype)


def padding_mask(lengths: list[int], T: int) -> torch.Tensor:
    """The tokenizer's (B, T) mask: 1 for the first lengths[b] positions of row b, 0 after."""
    return (torch.arange(T)[None, :] < torch.tensor(lengths)[:, None]).long()


# --------------------------------------------------------------------------------------------
# Lab 1: attention
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("B, T, H, Dh", [(3, 7, 5, 13), (1, 13, 7, 3), (2, 37, 1, 7)])
def test_split_heads_gives_head_h_its_own_slice(B, T, H, Dh):
    x = randn(B * T, B, T, H * Dh)
    heads = attention.split_heads(x, H)
    expected = torch.stack([x[..., h * Dh:(h + 1) * Dh] for h in range(H)], dim=1)  # (B, H, T, Dh)
    assert heads.shape == (B, H, T, Dh)
    assert torch.equal(heads, expected)
    assert torch.equal(attention.merge_heads(heads), x)


def test_split_heads_names_an_indivisible_width():
    with pytest.raises(ValueError, match="cannot be split into 5 equal heads"):
        attention.split_heads(randn(0, 3, 7, 13), 5)


@pytest.mark.parametrize("B, Hkv, n_rep, T, Dh", [(3, 5, 3, 7, 13), (1, 3, 1, 13, 7), (2, 1, 7, 5, 3)])
def test_repeat_kv_matches_transformers_and_repeat_interleave(B, Hkv, n_rep, T, Dh):
    from transformers.models.llama.modeling_llama import repeat_kv as transformers_repeat_kv

    x = randn(Hkv * n_rep, B, Hkv, T, Dh)
    repeated = attention.repeat_kv(x, n_rep)
    assert torch.equal(repeated, torch.repeat_interleave(x, n_rep, dim=1))
    assert torch.equal(repeated, transformers_repeat_kv(x, n_rep))
    for h in range(Hkv * n_rep):
        assert torch.equal(repeated[:, h], x[:, h // n_rep])


def allowed_keys(Tq, Tk, mask=None, is_causal=False) -> torch.Tensor:
    """Which keys each query may see, (B or 1, 1, Tq, Tk), built independently of the solution."""
    allowed = torch.ones(Tq, Tk, dtype=torch.bool)
    if is_causal:
        allowed = torch.tensor([[j <= i + (Tk - Tq) for j in range(Tk)] for i in range(Tq)])
    allowed = allowed[None, None]
    return allowed & mask.bool()[:, None, None, :] if mask is not None else allowed


ATTENTION_CASES = {
    # name: (B, H, Tq, Tk, Dh, key lengths or None, is_causal)
    "self, no mask": (3, 5, 7, 7, 13, None, False),
    "cross, padding": (3, 5, 7, 13, 11, [13, 9, 4], False),
    "causal, square": (2, 3, 13, 13, 7, None, True),
    "causal, fewer queries than keys": (3, 5, 7, 13, 11, None, True),
    "causal and padding": (3, 7, 13, 37, 5, [37, 20, 13], True),
    "one new query against a cache": (3, 5, 1, 13, 7, [13, 11, 7], True),
}


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("case", list(ATTENTION_CASES))
def test_attention_matches_torch_and_transformers_eager(case, dtype):
    from transformers.models.bert.modeling_bert import eager_attention_forward

    B, H, Tq, Tk, Dh, lengths, is_causal = ATTENTION_CASES[case]
    seed = 10 * list(ATTENTION_CASES).index(case)
    q, k, v = randn(seed, B, H, Tq, Dh, dtype=dtype), randn(seed + 1, B, H, Tk, Dh, dtype=dtype), randn(seed + 2, B, H, Tk, Dh, dtype=dtype)
    mask = padding_mask(lengths, Tk) if lengths else None
    output, weights = attention.scaled_dot_product_attention(q, k, v, attention_mask=mask, is_causal=is_causal)
    assert output.shape == (B, H, Tq, Dh) and weights.shape == (B, H, Tq, Tk)
    assert output.dtype == dtype and weights.dtype == dtype

    allowed = allowed_keys(Tq, Tk, mask, is_causal)
    compute = torch.promote_types(dtype, torch.float32)
    q32, k32, v32 = (t.to(compute) for t in (q, k, v))
    # truth 1: torch's own attention
    assert_close(output, F.scaled_dot_product_attention(q32, k32, v32, attn_mask=allowed).to(dtype), **TOLERANCE[dtype])
    # truth 2: transformers' eager path, which also returns the weights
    additive = torch.zeros(allowed.shape, dtype=compute).masked_fill(~allowed, torch.finfo(compute).min)
    module = torch.nn.Module().eval()
    eager_output, eager_weights = eager_attention_forward(module, q32, k32, v32, additive)
    assert_close(output, eager_output.transpose(1, 2).to(dtype), **TOLERANCE[dtype])
    assert_close(weights, eager_weights.to(dtype), **TOLERANCE[dtype])
    assert (weights[~allowed.expand(B, H, Tq, Tk)] == 0).all()
    assert_close(weights.double().sum(-1), torch.ones(B, H, Tq, dtype=torch.float64), atol=1e-2, rtol=0)


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
def test_a_query_that_sees_no_key_gives_zeros_and_finite_gradients(dtype):
    """An all-padding row, and left padding with a causal mask: rows with no visible key."""
    B, H, T, Dh = 3, 5, 7, 13
    q, k, v = (randn(s, B, H, T, Dh, dtype=dtype).requires_grad_() for s in (1, 2, 3))
    mask = torch.tensor([[1] * 7, [0] * 7, [0, 0, 0, 1, 1, 1, 1]])  # row 1 all padding, row 2 left-padded
    output, weights = attention.scaled_dot_product_attention(q, k, v, attention_mask=mask, is_causal=True)
    assert torch.isfinite(output).all() and torch.isfinite(weights).all()
    assert (output[1] == 0).all() and (weights[1] == 0).all()
    assert (weights[2, :, :3] == 0).all()  # queries 0..2 of the left-padded row see no real key
    output.sum().backward()
    assert all(torch.isfinite(t.grad).all() for t in (q, k, v))
    # the rows that do see keys are unaffected by the empty ones
    allowed = allowed_keys(T, T, mask, True)
    expected = F.scaled_dot_product_attention(*(t.detach().to(torch.promote_types(dtype, torch.float32)) for t in (q, k, v)), attn_mask=allowed)
    assert_close(output[0].detach(), expected[0].to(dtype), **TOLERANCE[dtype])
    assert_close(output[2, :, 3:].detach(), expected[2, :, 3:].to(dtype), **TOLERANCE[dtype])


@pytest.fixture(scope="module")
def encoder():
    return book.load_model(ENCODER), book.load_tokenizer(ENCODER)


SENTENCES = [
    "Attention lets every token look at the others.",
    "Padding fills short sentences up to the longest one in the batch, so masks matter.",
    "Heads attend in parallel.",
]


@pytest.mark.parametrize("layer_index", [0, 5])
def test_self_attention_equals_a_minilm_layer(encoder, layer_index):
    """Truth: the layer's own attention.self, captured with a forward hook inside a real forward pass."""
    model, tokenizer = encoder
    layer = model.encoder.layer[layer_index].attention.self
    captured = {}

    def hook(module, args, kwargs, output):
        captured["input"], captured["output"] = args[0], output[0]

    batch = tokenizer(SENTENCES, padding=True, return_tensors="pt")
    handle = layer.register_forward_hook(hook, with_kwargs=True)
    with torch.no_grad():
        model(**batch)
    handle.remove()
    with torch.no_grad():
        got = attention.self_attention(captured["input"], batch["attention_mask"], layer.query, layer.key, layer.value,
                                       model.config.num_attention_heads)
    assert got.shape == captured["output"].shape == (3, batch["input_ids"].shape[1], model.config.hidden_size)
    assert_close(got, captured["output"], atol=1e-5, rtol=1e-4)


# --------------------------------------------------------------------------------------------
# Lab 2: pooling
# --------------------------------------------------------------------------------------------


def pooling_case(seed, lengths, T=7, D=13, dtype=torch.float32, padding=float("nan")):
    hidden = randn(seed, len(lengths), T, D)
    mask = padding_mask(lengths, T)
    hidden = torch.where(mask.bool()[..., None], hidden, padding)
    return hidden.to(dtype), mask


def loop_pool(hidden, mask, reduce) -> torch.Tensor:
    """Truth 1: pool each row's real tokens, one row at a time (zeros for a row with none)."""
    rows = [reduce(h[m.bool()].double()) if m.any() else torch.zeros(h.shape[-1], dtype=torch.float64) for h, m in zip(hidden, mask)]
    return torch.stack(rows).to(hidden.dtype)


def st_pool(hidden, mask, mode) -> torch.Tensor:
    """Truth 2: sentence-transformers' own pooling module."""
    try:
        from sentence_transformers.sentence_transformer.modules import Pooling
    except ImportError:  # sentence-transformers before 6
        from sentence_transformers.models import Pooling

    features = {"token_embeddings": hidden, "attention_mask": mask}
    return Pooling(hidden.shape[-1], pooling_mode=mode)(features)["sentence_embedding"]


POOLING_LENGTHS = [[7, 4, 1, 6, 2], [7, 7, 7], [1, 3]]


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("lengths", POOLING_LENGTHS, ids=str)
@pytest.mark.parametrize("padding", [float("nan"), float("inf"), 1e4, -1e4])
def test_mean_pool_uses_real_tokens_only(lengths, dtype, padding):
    hidden, mask = pooling_case(len(lengths), lengths, dtype=dtype, padding=padding)
    pooled = pooling.mean_pool(hidden, mask)
    assert pooled.shape == (len(lengths), 13) and pooled.dtype == dtype
    assert_close(pooled, loop_pool(hidden, mask, lambda t: t.mean(0)), **TOLERANCE[dtype])
    clean = torch.where(mask.bool()[..., None], hidden, 0)
    assert_close(pooled, st_pool(clean, mask, "mean"), check_dtype=False, **TOLERANCE[dtype])


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("lengths", POOLING_LENGTHS, ids=str)
@pytest.mark.parametrize("padding", [float("nan"), float("inf"), 0.0, 1e4])
def test_max_pool_ignores_whatever_the_padding_holds(lengths, dtype, padding):
    hidden, mask = pooling_case(len(lengths) + 50, lengths, dtype=dtype)
    hidden = torch.where(mask.bool()[..., None], -hidden.abs() - 1, padding)  # real values all negative
    pooled = pooling.max_pool(hidden, mask)
    assert pooled.shape == (len(lengths), 13) and pooled.dtype == dtype
    assert_close(pooled, loop_pool(hidden, mask, lambda t: t.amax(0)), **TOLERANCE[dtype])
    assert_close(pooled, st_pool(torch.where(mask.bool()[..., None], hidden, 0), mask, "max"), check_dtype=False, **TOLERANCE[dtype])


@pytest.mark.parametrize("pool", [pooling.mean_pool, pooling.max_pool], ids=lambda f: f.__name__)
@pytest.mark.parametrize("dtype", DTYPES, ids=str)
def test_a_row_without_real_tokens_pools_to_zeros(pool, dtype):
    hidden, mask = pooling_case(7, [5, 0, 7], dtype=dtype, padding=37.0)
    pooled = pool(hidden, mask)
    assert torch.isfinite(pooled).all()
    assert (pooled[1] == 0).all()


@pytest.fixture(scope="module")
def sentence_transformer():
    from sentence_transformers import SentenceTransformer

    return SentenceTransformer(models.resolve(ENCODER).location, device="cpu")


LONG_TEXT = "Self-attention lets each token gather information from every other token in the sequence. " * 25


@pytest.fixture(scope="module")
def texts():
    """Corpus documents of several genres and lengths, a one-word text and a text of over 256 tokens."""
    corpus = book.load_corpus()
    return list(corpus.groupby("genre").head(1)["text"]) + ["Hi!", LONG_TEXT]


def test_embed_sentences_matches_sentence_transformers(encoder, sentence_transformer, texts):
    model, tokenizer = encoder
    assert len(tokenizer(LONG_TEXT)["input_ids"]) > pooling.MAX_SEQ_LENGTH  # the truncation is exercised
    got = pooling.embed_sentences(texts, tokenizer, model, batch_size=4)  # batches of 4, 4 and 1
    expected = sentence_transformer.encode(texts, convert_to_tensor=True)
    assert got.shape == (len(texts), model.config.hidden_size)
    assert_close(got, expected, atol=1e-5, rtol=1e-4)
    assert_close(got.norm(dim=-1), torch.ones(len(texts)))


def test_embed_sentences_keeps_the_input_order(encoder):
    model, tokenizer = encoder
    short = SENTENCES + ["Hi!", "A cat sleeps on the warm windowsill."]
    order = [3, 0, 4, 2, 1]
    forward = pooling.embed_sentences(short, tokenizer, model, batch_size=2)
    shuffled = pooling.embed_sentences([short[i] for i in order], tokenizer, model, batch_size=2)
    assert_close(shuffled, forward[order], atol=1e-5, rtol=1e-4)


def test_embed_sentences_of_no_text_is_empty(encoder):
    model, tokenizer = encoder
    got = pooling.embed_sentences([], tokenizer, model)
    assert got.shape == (0, model.config.hidden_size)


# --------------------------------------------------------------------------------------------
# Lab 3: adding tokens
# --------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def base_models():
    """Each role's tokenizer and model, loaded once; tests get copies (see ``fresh``)."""
    return {role: (book.load_tokenizer(name), book.load_model(name)) for role, name in (("encoder", ENCODER), ("decoder", DECODER))}


@pytest.fixture
def fresh(base_models):
    """A function giving a tokenizer and model that add_tokens may change: only the embeddings are copied."""

    def make(role):
        tokenizer, model = base_models[role]
        embeddings = model.get_input_embeddings().weight
        shared = {id(p): p for p in model.parameters() if p is not embeddings}
        return copy.deepcopy(tokenizer), copy.deepcopy(model, memo=shared)

    return make


def assert_added(tokenizer, model, new_tokens, special=False):
    """Call add_tokens and check every promise of its contract against the state before the call."""
    before = model.get_input_embeddings().weight.detach().clone()
    old_size = len(tokenizer)
    pieces = {s: tokenizer.encode(s, add_special_tokens=False) for s in new_tokens}
    ids = tokens.add_tokens(tokenizer, model, list(new_tokens), special=special)

    assert len(ids) == len(new_tokens) and all(isinstance(i, int) for i in ids)
    for s, token_id in zip(new_tokens, ids):
        assert tokenizer.encode(s, add_special_tokens=False) == [token_id], s
    weight = model.get_input_embeddings().weight.detach()
    assert weight.shape == (len(tokenizer), before.shape[1])
    assert torch.equal(weight[:old_size], before[:old_size])
    added = {}
    for s, token_id in zip(new_tokens, ids):
        if len(pieces[s]) == 1:  # already a token (even [UNK], an emoji for MiniLM): its id, nothing added
            assert token_id == pieces[s][0]
        else:
            assert token_id >= old_size
            added.setdefault(token_id, s)
            assert_close(weight[token_id], before[pieces[s]].mean(0))
    assert len(tokenizer) == old_size + len(added)
    return ids


MINILM_WORDS = [["GPUs"], ["GPUs", "detokenizer", "MiniLM"], ["Ünïcödé", "tokenizer-free", "llama.cpp"], ["🤖", "🤖robot"]]


@pytest.mark.parametrize("new_tokens", MINILM_WORDS, ids=str)
def test_add_tokens_on_minilm(fresh, new_tokens):
    tokenizer, model = fresh("encoder")
    ids = assert_added(tokenizer, model, new_tokens)
    # the uncased tokenizer lowercases its input, and still finds the token, inside a sentence too
    sentence = tokenizer.encode(f"I use {new_tokens[0]} daily", add_special_tokens=False)
    assert ids[0] in sentence
    with torch.no_grad():
        out = model(**tokenizer([f"I use {' '.join(new_tokens)}"], return_tensors="pt")).last_hidden_state
    assert torch.isfinite(out).all()


def test_add_tokens_skips_repeats_and_existing_tokens(fresh):
    tokenizer, model = fresh("encoder")
    hello = tokenizer.encode("hello", add_special_tokens=False)
    ids = assert_added(tokenizer, model, ["softmax", "hello", "softmax", "GPUs", "gpus"])
    assert ids[1] == hello[0]
    assert ids[0] == ids[2]
    assert ids[3] == ids[4]  # "gpus" is "GPUs" once lowercased: one token, not two


def test_add_tokens_is_a_no_op_for_known_tokens(fresh):
    tokenizer, model = fresh("encoder")
    size = len(tokenizer)
    embeddings = model.get_input_embeddings()
    assert assert_added(tokenizer, model, ["the", "[CLS]"]) == [1996, 101]
    assert len(tokenizer) == size and model.get_input_embeddings() is embeddings


def test_add_tokens_on_smollm2_keeps_the_head_tied(fresh):
    tokenizer, model = fresh("decoder")
    ids = assert_added(tokenizer, model, ["GPUs", "<think>", "Ünïcödé", "GPUs", "hello"])
    assert model.get_output_embeddings().weight is model.get_input_embeddings().weight
    with torch.no_grad():
        logits = model(input_ids=torch.tensor([ids])).logits  # (1, N, V')
    assert logits.shape == (1, len(ids), len(tokenizer))
    assert torch.isfinite(logits).all()


@pytest.mark.parametrize("role", ["encoder", "decoder"])
def test_add_tokens_special(fresh, role):
    tokenizer, model = fresh(role)
    ids = assert_added(tokenizer, model, ["<|lab_start|>", "<|Lab_End|>"], special=True)
    text = "one <|lab_start|>two<|Lab_End|> three"
    encoded = tokenizer.encode(text, add_special_tokens=False)
    assert ids[0] in encoded and ids[1] in encoded
    decoded = tokenizer.decode(encoded, skip_special_tokens=True)
    assert "lab_start" not in decoded and "Lab_End" not in decoded
    assert "<|Lab_End|>" in tokenizer.all_special_tokens


def test_add_tokens_in_bfloat16(fresh):
    tokenizer, model = fresh("encoder")
    model = model.to(torch.bfloat16)
    before = model.get_input_embeddings().weight.detach().clone()
    pieces = tokenizer.encode("GPUs", add_special_tokens=False)
    [token_id] = tokens.add_tokens(tokenizer, model, ["GPUs"])
    weight = model.get_input_embeddings().weight
    assert weight.dtype == torch.bfloat16
    assert_close(weight[token_id].detach(), before[pieces].float().mean(0).to(torch.bfloat16))


def test_solution_docstrings_state_shapes():
    """Every public function's first docstring line says what shapes it maps from and to."""
    for module in (attention, pooling, tokens):
        for name, function in inspect.getmembers(module, inspect.isfunction):
            if function.__module__ == module.__name__ and not name.startswith("_"):
                first = inspect.getdoc(function).splitlines()[0]
                assert "->" in first, f"{module.__name__}.{name}: {first!r}"
