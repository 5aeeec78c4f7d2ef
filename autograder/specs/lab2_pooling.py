"""Lab 2, pooling: the graded tests of mean_pool, max_pool and embed_sentences.

The pooling truths are computed one row at a time over the real tokens only, in float64 (and
agree with :mod:`solutions.pooling`); padding positions hold values that any unmasked pooling
would pick up (1000, 0 below negative states, infinities). The sentence embeddings' truth is
sentence-transformers' own ``encode`` for all-MiniLM-L6-v2, checked against the reference
solution. The visible texts are those of the lab's public checks (:mod:`book.labcheck`); the
hidden ones come from the course corpus.
"""

from __future__ import annotations

import torch

from autograder.compare import Cause, Mismatch, as_tensor, check_close, check_shape
from autograder.spec import MODEL_LOCK, Lab, cached, course_model, parametrize, points
from autograder.wire import Ref
from book.labcheck import LONG_TEXT, TEXTS

LAB = Lab(
    name="lab2",
    title="Pooling",
    notebook="labs/lab2_pooling.ipynb",
    reference="solutions/pooling.py",
    functions=("mean_pool", "max_pool", "embed_sentences"),
    preload=("encoder",),
    imports=("sentence_transformers",),  # students compare with it in the lab
)
TOKENIZER, MODEL = Ref("encoder_tokenizer"), Ref("encoder_model")


# --- pooling ------------------------------------------------------------------------------------


@cached
def pooling_case(seed: int, lengths: tuple[int, ...], T: int, D: int, side: str = "right", dtype=torch.float32,
                 padding: float = 1e3, negative: bool = False):
    """States (B, T, D) with ``padding`` in the padding positions, the (B, T) mask, and both truths (mean, max)."""
    generator = torch.Generator().manual_seed(seed)
    hidden = torch.randn(len(lengths), T, D, generator=generator, dtype=torch.float64)  # (B, T, D)
    if negative:  # every real value below zero: a max over zero-filled padding would return 0
        hidden = -hidden.abs() - 1
    positions = torch.arange(T)[None, :]  # (1, T)
    count = torch.tensor(lengths)[:, None]  # (B, 1)
    mask = (positions < count if side == "right" else positions >= T - count).long()  # (B, T)
    hidden = torch.where(mask.bool()[..., None], hidden, padding).to(dtype)
    truths = {}
    for name, reduce in (("mean", lambda x: x.mean(dim=0)), ("max", lambda x: x.amax(dim=0))):
        rows = [reduce(states[real]) if real.any() else torch.zeros(D, dtype=torch.float64)
                for states, real in zip(hidden.double(), mask.bool())]
        truths[name] = torch.stack(rows)  # (B, D)
    from solutions.pooling import max_pool, mean_pool

    torch.testing.assert_close(mean_pool(hidden.double(), mask), truths["mean"])  # the truths agree
    torch.testing.assert_close(max_pool(hidden.double(), mask), truths["max"])
    return hidden, mask, truths


def describe(name: str, hidden, lengths, side, padding) -> str:
    return (f"{name}(states {tuple(hidden.shape)} {str(hidden.dtype).replace('torch.', '')} with {padding:g} in the padding, "
            f"{side}-padded mask with {', '.join(map(str, lengths))} real tokens)")


MEAN_CASES = {
    "right-padding": dict(seed=80, lengths=(7, 4, 1, 6, 2), T=7, D=13),
    "all-padding-row": dict(seed=81, lengths=(5, 0, 7), T=7, D=13),
    "bfloat16": dict(seed=82, lengths=(7, 3, 5), T=7, D=13, dtype=torch.bfloat16, padding=37.0),
    "float64": dict(seed=83, lengths=(7, 3, 5), T=7, D=13, dtype=torch.float64, padding=37.0),
    "left-padding": dict(seed=84, lengths=(9, 3, 1), T=9, D=37, side="left"),
    "one-sequence": dict(seed=85, lengths=(11,), T=11, D=5),
}
MAX_CASES = {
    "padding-1000": dict(seed=90, lengths=(7, 4, 1, 6, 2), T=7, D=13, negative=True),
    "padding-0": dict(seed=91, lengths=(7, 4, 1), T=7, D=13, negative=True, padding=0.0),
    "left-padding": dict(seed=92, lengths=(2, 9, 5), T=9, D=37, side="left", negative=True),
    "padding-inf": dict(seed=93, lengths=(3, 7), T=7, D=11, padding=float("inf")),
    "bfloat16": dict(seed=94, lengths=(7, 3, 5), T=7, D=13, dtype=torch.bfloat16, negative=True),
    "all-padding-row": dict(seed=95, lengths=(4, 0, 7), T=7, D=13, negative=True),
}


def pooling_causes(function: str, hidden: torch.Tensor, mask: torch.Tensor) -> list[Cause]:
    """What the known mistakes of mean or max pooling give on these states (B, T, D) and mask (B, T)."""
    x = hidden.double()
    real = mask.bool()[..., None]  # (B, T, 1)
    if function == "mean_pool":
        summed = torch.where(real, x, 0.0).sum(dim=1)  # (B, D)
        return [Cause("the padding is averaged in: sum and count only the positions where attention_mask is 1.", x.mean(dim=1)),
                Cause("the sum of the real tokens is divided by the sequence length T, not by the number of real tokens "
                      "(attention_mask.sum(dim=1)).", summed / x.shape[1])]
    return [Cause("the padding values won the max: replace the padding positions by -inf before taking it.", x.amax(dim=1)),
            Cause("the padding was set to 0 (a product with the mask), and 0 beats every real value here, which are all "
                  "negative: fill the padding with -inf instead.", (x * real).amax(dim=1))]


def drawn_spec(spec: dict, draw) -> dict:
    """A hidden case like ``spec`` for one student: same side, dtype, padding value and sign, rows with no or all
    real tokens kept; the length T, the width D, the other rows' lengths and the values drawn."""
    T = draw.odd(5, 15)
    D = draw.odd(5, 37, (T,))
    return {**spec, "seed": draw.seed(), "T": T, "D": D, "lengths": draw.lengths(spec["lengths"], T, spec["T"]),
            "hidden": True}


def check_pool(student, function: str, name: str, cases: dict, draw=None) -> None:
    spec = cases[name] if draw is None else drawn_spec(cases[name], draw)
    hidden, mask, truths = pooling_case(*_key(spec))
    side, padding = spec.get("side", "right"), spec.get("padding", 1e3)
    text = (f"{function} on hidden states ({side}-padded, {str(hidden.dtype).replace('torch.', '')}, {padding:g} in the "
            "padding)" if spec.get("hidden") else describe(function, hidden, spec["lengths"], side, padding))
    got = getattr(student, function)(hidden, mask)
    check_close(got, truths[function.split("_")[0]], text, dtype=hidden.dtype, dims="(B, D)",
                causes=lambda: pooling_causes(function, hidden, mask))


def _key(spec: dict) -> tuple:
    """The positional arguments of :func:`pooling_case` for a case (cached functions take positions only)."""
    return (spec["seed"], spec["lengths"], spec["T"], spec["D"], spec.get("side", "right"), spec.get("dtype", torch.float32),
            spec.get("padding", 1e3), spec.get("negative", False))


@points(2, "mean_pool must average the real tokens only: padding (mask 0) must not count, whatever it holds.")
@parametrize("name", ["right-padding"])
def test_mean_pool(student, name):
    check_pool(student, "mean_pool", name, MEAN_CASES)


@points(1, "mean_pool must give zeros, not NaN, for a sequence with no real token.")
@parametrize("name", ["all-padding-row"])
def test_mean_pool_all_padding(student, name):
    check_pool(student, "mean_pool", name, MEAN_CASES)


@points(1, "mean_pool must return the dtype of its input, accurate in it.")
@parametrize("name", ["bfloat16", "float64"])
def test_mean_pool_dtype(student, name):
    check_pool(student, "mean_pool", name, MEAN_CASES)


@points(1, "mean_pool must work for left padding and any size.", hidden=True)
@parametrize("name", ["left-padding", "one-sequence"])
def test_mean_pool_hidden(student, name, draw):
    check_pool(student, "mean_pool", name, MEAN_CASES, draw)


@points(1, "max_pool must take the maximum over the real tokens only, whatever the padding holds.")
@parametrize("name", ["padding-1000", "padding-0"])
def test_max_pool(student, name):
    check_pool(student, "max_pool", name, MAX_CASES)


@points(1, "max_pool must ignore padding for left padding, infinite padding values and bfloat16.", hidden=True)
@parametrize("name", ["left-padding", "padding-inf", "bfloat16"])
def test_max_pool_hidden(student, name, draw):
    check_pool(student, "max_pool", name, MAX_CASES, draw)


@points(1, "max_pool must give zeros, not -inf, for a sequence with no real token.", hidden=True)
@parametrize("name", ["all-padding-row"])
def test_max_pool_all_padding(student, name, draw):
    check_pool(student, "max_pool", name, MAX_CASES, draw)


# --- sentence embeddings --------------------------------------------------------------------------


@cached
def corpus_documents() -> tuple[tuple[str, str], ...]:
    """(genre, text) of every corpus document: hidden sentence batches are drawn from them."""
    from book import load_corpus

    corpus = load_corpus()
    return tuple(zip(corpus["genre"], corpus["text"]))


def drawn_openings(draw, count: int = 5) -> tuple[str, ...]:
    """The first sentences of ``count`` drawn corpus documents, each of another genre."""
    documents = corpus_documents()
    genres = draw.sample(sorted({genre for genre, _ in documents}), count)
    texts = [draw.choice([text for genre_, text in documents if genre_ == genre]) for genre in genres]
    return tuple(text.split(". ")[0].rstrip(".") + "." for text in texts)


def drawn_long_text(draw, tokens: int = 300) -> str:
    """Drawn corpus documents joined until the text is at least ``tokens`` tokens long (past the 256 cut)."""
    tokenizer, _ = course_model("encoder")
    order = draw.sample(range(len(corpus_documents())), len(corpus_documents()))
    parts = []
    for index in order:
        parts.append(corpus_documents()[index][1])
        if len(tokenizer(" ".join(parts))["input_ids"]) >= tokens:
            break
    return " ".join(parts)


@cached
def sentence_transformer():
    from sentence_transformers import SentenceTransformer

    from book.models import resolve

    return SentenceTransformer(resolve("encoder").location, device="cpu")


@cached
def expected_embeddings(texts: tuple[str, ...]) -> torch.Tensor:
    """sentence-transformers' encode of ``texts`` (N, D), which the reference solution must reproduce."""
    from solutions.pooling import embed_sentences

    with MODEL_LOCK:  # one model, shared by the grading threads
        expected = sentence_transformer().encode(list(texts), convert_to_tensor=True, batch_size=32).cpu()  # (N, D)
        reference = embed_sentences(list(texts), *course_model("encoder"))
    torch.testing.assert_close(reference, expected, atol=2e-5, rtol=2e-5)  # the truths agree
    return expected


@cached
def embedding_causes(texts: tuple[str, ...], batch_size: int) -> list[Cause]:
    """What the known mistakes of embed_sentences give on ``texts`` in batches of ``batch_size``."""
    from solutions.pooling import MAX_SEQ_LENGTH, max_pool, mean_pool

    tokenizer, model = course_model("encoder")
    rows = {"unnormalised": [], "cls": [], "max": [], "untruncated": [], "padded": []}
    with MODEL_LOCK, torch.no_grad():
        for text in texts:
            batch = tokenizer([text], truncation=True, max_length=MAX_SEQ_LENGTH, return_tensors="pt")
            hidden = model(**batch).last_hidden_state.double()  # (1, T, D)
            rows["unnormalised"].append(mean_pool(hidden, batch["attention_mask"])[0])
            rows["cls"].append(hidden[0, 0])
            rows["max"].append(max_pool(hidden, batch["attention_mask"])[0])
            whole = tokenizer([text], truncation=True, return_tensors="pt")  # the tokenizer's own limit: 512
            rows["untruncated"].append(mean_pool(model(**whole).last_hidden_state.double(), whole["attention_mask"])[0])
        for start in range(0, len(texts), batch_size):  # the padding depends on the batch
            padded = tokenizer(list(texts[start:start + batch_size]), padding=True, truncation=True,
                               max_length=MAX_SEQ_LENGTH, return_tensors="pt")
            rows["padded"] += list(model(**padded).last_hidden_state.double().mean(dim=1))  # padding included
    unit = {name: torch.nn.functional.normalize(torch.stack(vectors), dim=-1) for name, vectors in rows.items()}
    return [
        Cause("the vectors point the right way but are not scaled to length 1: finish with "
              "torch.nn.functional.normalize(x, dim=-1).", torch.stack(rows["unnormalised"]).float()),
        Cause("the padding tokens of each batch are averaged in: pool with the attention mask (your mean_pool).",
              unit["padded"].float()),
        Cause("these are the first token's states ([CLS]): sentence-transformers averages the states of the real tokens.",
              unit["cls"].float()),
        Cause("these vectors are max-pooled: all-MiniLM-L6-v2 averages (mean-pools) the real tokens.", unit["max"].float()),
        Cause("the text was cut at the tokenizer's limit of 512 tokens or not at all: this model's sentence-transformers "
              "configuration cuts at 256 (truncation=True, max_length=256).", unit["untruncated"].float()),
    ]


def order_hint(got: torch.Tensor, expected: torch.Tensor) -> str:
    """When the rows of ``got`` (N, D) are the expected vectors in another order, say which row holds which text."""
    if got.shape != expected.shape or got.shape[0] < 2:
        return ""
    distance = torch.cdist(got.double(), expected.double())  # (N, N)
    match = distance.argmin(dim=1)  # (N,): the expected row each of yours is closest to
    close = distance.gather(1, match[:, None]).squeeze(1) <= 1e-4
    if not bool(close.all()) or sorted(match.tolist()) != list(range(len(match))) or match.tolist() == list(range(len(match))):
        return ""
    first = int((match != torch.arange(len(match))).nonzero()[0])
    return (f" Likely cause: the rows are the right vectors in another order (row {first} holds the embedding of text "
            f"{int(match[first])}): return them in the order of the input texts, e.g. undo a sort by length.")


def check_embeddings(student, texts: tuple[str, ...], batch_size: int, what: str) -> torch.Tensor:
    got = student.embed_sentences(list(texts), TOKENIZER, MODEL, batch_size=batch_size)
    expected = expected_embeddings(texts)
    try:
        return check_close(got, expected, f"embed_sentences({what}, batch_size={batch_size})", dims="(N, D)",
                           causes=lambda: embedding_causes(texts, batch_size))
    except Mismatch as mismatch:
        if "Likely cause" in str(mismatch):
            raise
        raise Mismatch(f"{mismatch}{order_hint(got, expected)}") from None


@points(2, "embed_sentences must reproduce sentence-transformers' encode for all-MiniLM-L6-v2, in input order.")
def test_embed_sentences(student):
    check_embeddings(student, tuple(TEXTS), 3, f"{len(TEXTS)} texts")


@points(1, "Every sentence embedding must have length 1 (L2-normalise the mean-pooled states).")
def test_embed_sentences_unit_length(student):
    got = as_tensor(student.embed_sentences(list(TEXTS), TOKENIZER, MODEL, batch_size=3), "embed_sentences(...)")
    check_shape(got, expected_embeddings(tuple(TEXTS)).shape, "embed_sentences(...)", "(N, D)")
    norms = got.double().norm(dim=-1)  # (N,)
    worst = int((norms - 1).abs().argmax())
    if not bool(torch.isfinite(norms).all()) or abs(float(norms[worst]) - 1) > 1e-4:
        raise Mismatch(f"Row {worst} of the embeddings has length {float(norms[worst]):.4g}: scale each row to length 1 "
                       "(torch.nn.functional.normalize(x, dim=-1)).")


@points(1, "Texts longer than 256 tokens must be truncated at 256, as sentence-transformers does for this model.")
def test_embed_sentences_long_text(student):
    check_embeddings(student, (LONG_TEXT,), 2, "one text of over 256 tokens")  # alone: no padding to 256 to pay for


@points(1, "embed_sentences([]) must return an empty (0, D) tensor.")
def test_embed_sentences_empty(student):
    got = as_tensor(student.embed_sentences([], TOKENIZER, MODEL), "embed_sentences([])")
    check_shape(got, (0, 384), "embed_sentences([])", "(0, D)")


@points(1, "embed_sentences must give the same vectors whatever the batch size, in input order.", hidden=True)
@parametrize("batch_size", [2, 16])
def test_embed_sentences_corpus(student, batch_size, draw):
    openings = drawn_openings(draw)
    check_embeddings(student, openings, batch_size, f"{len(openings)} hidden corpus sentences")


@points(1, "A corpus text of over 300 tokens must be truncated at 256 tokens.", hidden=True)
def test_embed_sentences_long_corpus_text(student, draw):
    check_embeddings(student, (drawn_long_text(draw),), 1, "a hidden corpus text of over 300 tokens")


def prepare(tests) -> None:
    """Compute the visible tests' expected values once, before grading starts (hidden ones depend on the student)."""
    for cases in (MEAN_CASES, MAX_CASES):
        for spec in cases.values():
            pooling_case(*_key(spec))
    for texts in (tuple(TEXTS), (LONG_TEXT,)):
        expected_embeddings(texts)
    corpus_documents()
    sentence_transformer()
