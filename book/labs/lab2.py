"""Lab 2, pooling: the truth behind the checks of mean_pool, max_pool and embed_sentences.

The pooling truths are the definition itself, one row at a time in float64: the mean, or the
maximum, of the states of that row's real tokens (zeros for a row with none). Padding positions
hold values that any unmasked pooling picks up (1000, 0 below negative states, infinities, NaN).
The sentence embeddings' truth is sentence-transformers' own ``encode`` for all-MiniLM-L6-v2: for
the lab's texts, its vectors are saved with the course (``data/lab2_embeddings.safetensors``,
written and checked against ``encode`` by the instructors' tests), so the labs need no
sentence-transformers; the grader has them saved for the texts it draws (its spec says how).
The known mistakes are computed with a BERT forward pass written out over the model's
memory-mapped weights (:func:`encoder_states`), checked against the model's own states: naming
a mistake then needs neither transformers nor a second copy of the model.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F

from book.labs import MODEL_LOCK, Lab, Rules, cached, course_model
from book.labs.compare import Cause, Mismatch, as_tensor, check_close, check_shape

FUNCTIONS = ("mean_pool", "max_pool", "embed_sentences")
RULES = Rules()
# all-MiniLM-L6-v2's sentence-transformers configuration cuts texts at 256 tokens (max_seq_length in its
# sentence_bert_config.json); its tokenizer's own limit, 512, is the architecture's.
MAX_SEQ_LENGTH = 256
SAVED = Path(__file__).parent / "data" / "lab2_embeddings.safetensors"


# --- pooling ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Pooling:
    """States (B, T, D) whose padding positions hold ``padding``, and their mask."""

    seed: int
    lengths: tuple[int, ...]
    T: int
    D: int
    side: str = "right"
    dtype: torch.dtype = torch.float32
    padding: float = 1e3
    negative: bool = False  # every real value below zero: a max over zero-filled padding would return 0
    hidden: bool = False  # drawn for one student: the label does not list the lengths

    def describe(self, function: str) -> str:
        dtype = str(self.dtype).replace("torch.", "")
        if self.hidden:
            return f"{function} on hidden states ({self.side}-padded, {dtype}, {self.padding:g} in the padding)"
        return (f"{function}(states {(len(self.lengths), self.T, self.D)} {dtype} with {self.padding:g} in the padding, "
                f"{self.side}-padded mask with {', '.join(map(str, self.lengths))} real tokens)")


def pool_rows(hidden: torch.Tensor, mask: torch.Tensor, reduce) -> torch.Tensor:
    """(B, T, D), (B, T) -> (B, D) in float64: ``reduce`` of each row's real-token states, one row at a time (zeros
    for a row with none)."""
    rows = [reduce(states[real.bool()]) if real.any() else torch.zeros(states.shape[-1], dtype=torch.float64)
            for states, real in zip(hidden.detach().cpu().double(), mask.cpu())]
    return torch.stack(rows)  # (B, D)


@cached
def pooling_case(case: Pooling):
    """The states (B, T, D), the mask (B, T), and both truths: {"mean": (B, D), "max": (B, D)}."""
    generator = torch.Generator().manual_seed(case.seed)
    hidden = torch.randn(len(case.lengths), case.T, case.D, generator=generator, dtype=torch.float64)  # (B, T, D)
    if case.negative:
        hidden = -hidden.abs() - 1
    positions = torch.arange(case.T)[None, :]  # (1, T)
    count = torch.tensor(case.lengths)[:, None]  # (B, 1)
    mask = (positions < count if case.side == "right" else positions >= case.T - count).long()  # (B, T)
    hidden = torch.where(mask.bool()[..., None], hidden, case.padding).to(case.dtype)
    truths = {"mean": pool_rows(hidden, mask, lambda x: x.mean(dim=0)), "max": pool_rows(hidden, mask, lambda x: x.amax(dim=0))}
    return hidden, mask, truths


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


def check_pool(student, function: str, case: Pooling) -> None:
    hidden, mask, truths = pooling_case(case)
    got = getattr(student, function)(hidden, mask)
    try:
        check_close(got, truths[function.split("_")[0]], case.describe(function), dtype=case.dtype, dims="(B, D)",
                    causes=lambda: pooling_causes(function, hidden, mask))
    except Mismatch as mismatch:
        if function == "mean_pool" and not torch.isfinite(torch.tensor(case.padding)) and "found" in str(mismatch):
            raise Mismatch(f"{mismatch} Likely cause: the padding holds {case.padding:g} here, and a product with the mask "
                           f"gives 0 * {case.padding:g} = nan: select the real tokens with torch.where instead.") from None
        raise


def _pool_rule(name: str, function: str, sentence: str, cases: dict) -> None:
    RULES.add(name, function, sentence, cases)(lambda student, case: check_pool(student, function, case))


_pool_rule("mean_pool", "mean_pool",
           "mean_pool must average the real tokens only: padding (mask 0) must not count, whatever it holds.",
           {"right-padding": Pooling(80, (7, 4, 1, 6, 2), T=7, D=13)})
_pool_rule("mean_pool_nonfinite_padding", "mean_pool",
           "mean_pool must keep inf and nan in the padding out of the result (select with torch.where, not a product "
           "with the mask).",
           {"nan-padding": Pooling(86, (7, 3, 5), T=7, D=13, padding=float("nan"))})
_pool_rule("mean_pool_all_padding", "mean_pool", "mean_pool must give zeros, not NaN, for a sequence with no real token.",
           {"all-padding-row": Pooling(81, (5, 0, 7), T=7, D=13)})
_pool_rule("mean_pool_dtype", "mean_pool", "mean_pool must return the dtype of its input, accurate in it.",
           {"bfloat16": Pooling(82, (7, 3, 5), T=7, D=13, dtype=torch.bfloat16, padding=37.0),
            "float64": Pooling(83, (7, 3, 5), T=7, D=13, dtype=torch.float64, padding=37.0)})
_pool_rule("mean_pool_hidden", "mean_pool", "mean_pool must work for left padding and any size.",
           {"left-padding": Pooling(84, (9, 3, 1), T=9, D=37, side="left"), "one-sequence": Pooling(85, (11,), T=11, D=5)})
_pool_rule("max_pool", "max_pool", "max_pool must take the maximum over the real tokens only, whatever the padding holds.",
           {"padding-1000": Pooling(90, (7, 4, 1, 6, 2), T=7, D=13, negative=True),
            "padding-0": Pooling(91, (7, 4, 1), T=7, D=13, negative=True, padding=0.0)})
_pool_rule("max_pool_hidden", "max_pool",
           "max_pool must ignore padding for left padding, infinite padding values and bfloat16.",
           {"left-padding": Pooling(92, (2, 9, 5), T=9, D=37, side="left", negative=True),
            "padding-inf": Pooling(93, (3, 7), T=7, D=11, padding=float("inf")),
            "bfloat16": Pooling(94, (7, 3, 5), T=7, D=13, dtype=torch.bfloat16, negative=True)})
_pool_rule("max_pool_all_padding", "max_pool", "max_pool must give zeros, not -inf, for a sequence with no real token.",
           {"all-padding-row": Pooling(95, (4, 0, 7), T=7, D=13, negative=True)})


# --- sentence embeddings --------------------------------------------------------------------------

# Seven texts of very different lengths, so that a batch of 3 pads a lot and the last batch is short.
TEXTS = (
    "A cat sleeps on the warm windowsill.",
    "Stock markets fell sharply after the central bank raised interest rates again.",
    "Quantum error correction protects fragile qubits from noise.",
    "Hi!",
    "The recipe calls for two cups of flour, a pinch of salt and one egg, whisked until smooth.",
    "Embeddings place similar sentences close together.",
    "Tokenizers split rare words into pieces.",
)
LONG_TEXT = "Self-attention lets each token gather information from every other token in the sequence. " * 25


@dataclass(frozen=True)
class Texts:
    """Texts to embed in batches of ``batch_size``; their truth is sentence-transformers' ``encode``, saved for these."""

    texts: tuple[str, ...]
    batch_size: int
    what: str  # how feedback names them: "7 texts", "a hidden corpus text of over 300 tokens"

    def expected(self) -> torch.Tensor:
        """sentence-transformers' encode of the texts (N, D), saved with the course for the labs' texts."""
        found = saved_embeddings()
        missing = [text for text in self.texts if text not in found]
        if missing:
            raise KeyError(f"No saved embedding for {missing[0][:40]!r}: the saved truths cover the labs' own texts.")
        return torch.stack([found[text] for text in self.texts])


@cached
def saved_embeddings() -> dict[str, torch.Tensor]:
    """The saved sentence-transformers embeddings of the lab's texts, by text."""
    from safetensors.torch import load_file

    vectors = load_file(SAVED)["embeddings"]  # (N, D)
    return dict(zip(TEXTS + (LONG_TEXT,), vectors))


@cached
def encoder_weights():
    """all-MiniLM-L6-v2's configuration and weights, memory-mapped from its safetensors file (nothing copied, pages
    shared with any other process mapping the file); None for a checkpoint that is not a BERT in one such file."""
    import json

    from safetensors import safe_open

    from book.models import resolve

    folder = Path(resolve("encoder").location)
    config = json.loads((folder / "config.json").read_text()) if (folder / "config.json").is_file() else {}
    if config.get("model_type") != "bert" or not (folder / "model.safetensors").is_file():
        return None
    with safe_open(str(folder / "model.safetensors"), "pt") as opened:
        weights = {name.removeprefix("bert."): opened.get_tensor(name) for name in opened.keys()}
    return config, weights


_TOKENIZER_LOCK = threading.Lock()  # encoder_batch configures the one tokenizer for each call


@cached
def encoder_tokenizer():
    """all-MiniLM-L6-v2's tokenizer as the tokenizers library reads it from its tokenizer.json (no truncation, no
    padding until asked), and the tokenizer's own length limit; None without a tokenizer.json.

    What transformers' tokenizer gives, without importing transformers (checked in ``tests/test_labs.py``).
    """
    import json

    from tokenizers import Tokenizer

    from book.models import resolve

    folder = Path(resolve("encoder").location)
    if not (folder / "tokenizer.json").is_file():
        return None
    tokenizer = Tokenizer.from_file(str(folder / "tokenizer.json"))
    tokenizer.no_truncation()
    tokenizer.no_padding()
    settings = folder / "tokenizer_config.json"
    limit = json.loads(settings.read_text()).get("model_max_length", 512) if settings.is_file() else 512
    return tokenizer, int(limit)


def encoder_length(text: str) -> int:
    """How many tokens the encoder's tokenizer makes of ``text``, [CLS] and [SEP] included, uncut."""
    tokenizer, _ = encoder_tokenizer()
    with _TOKENIZER_LOCK:  # never while encoder_batch has truncation on
        return len(tokenizer.encode(text).ids)


def encoder_batch(texts, max_length: int | None = None, padding: bool = False) -> dict[str, torch.Tensor]:
    """What ``tokenizer(texts, padding=padding, truncation=True, max_length=max_length, return_tensors="pt")`` gives
    for the encoder (``max_length`` None: the tokenizer's own limit): input_ids, token_type_ids, attention_mask."""
    tokenizer, limit = encoder_tokenizer()
    with _TOKENIZER_LOCK:
        tokenizer.enable_truncation(max_length or limit)
        if padding:
            tokenizer.enable_padding(pad_id=tokenizer.token_to_id("[PAD]"), pad_token="[PAD]")
        try:
            encodings = tokenizer.encode_batch(list(texts))
        finally:
            tokenizer.no_truncation()
            tokenizer.no_padding()
    return {"input_ids": torch.tensor([e.ids for e in encodings]),
            "token_type_ids": torch.tensor([e.type_ids for e in encodings]),
            "attention_mask": torch.tensor([e.attention_mask for e in encodings])}


def encoder_states(batch) -> torch.Tensor:
    """(B, T) token ids and mask -> (B, T, D): the encoder's last hidden states, a BERT forward pass written out.

    For the likely causes only (what the known mistakes give), never for a truth: it spares the
    grader transformers' model classes (their imports alone hold about 130 MB), so that grading a
    faulty submission fits a small container. ``tests/test_labs.py`` checks it against the
    model's own ``last_hidden_state``.
    """
    config, w = encoder_weights()
    ids, mask = batch["input_ids"].cpu(), batch["attention_mask"].cpu()
    B, T = ids.shape
    types = batch.get("token_type_ids", torch.zeros_like(ids)).cpu()

    def linear(x, name):
        return F.linear(x, w[f"{name}.weight"], w[f"{name}.bias"])

    def norm(x, name):
        return F.layer_norm(x, x.shape[-1:], w[f"{name}.weight"], w[f"{name}.bias"], config["layer_norm_eps"])

    x = (w["embeddings.word_embeddings.weight"][ids] + w["embeddings.position_embeddings.weight"][:T]
         + w["embeddings.token_type_embeddings.weight"][types])  # (B, T, D)
    x = norm(x, "embeddings.LayerNorm")
    H = config["num_attention_heads"]
    Dh = x.shape[-1] // H
    allowed = mask.bool()[:, None, None, :]  # (B, 1, 1, T): every query sees the real tokens
    for i in range(config["num_hidden_layers"]):
        layer = f"encoder.layer.{i}"
        q, k, v = (linear(x, f"{layer}.attention.self.{p}").view(B, T, H, Dh).transpose(1, 2)
                   for p in ("query", "key", "value"))  # (B, H, T, Dh) each
        context = F.scaled_dot_product_attention(q, k, v, attn_mask=allowed).transpose(1, 2).reshape(B, T, H * Dh)
        x = norm(linear(context, f"{layer}.attention.output.dense") + x, f"{layer}.attention.output.LayerNorm")
        x = norm(linear(F.gelu(linear(x, f"{layer}.intermediate.dense")), f"{layer}.output.dense") + x,
                 f"{layer}.output.LayerNorm")
    return x


@cached
def embedding_causes(texts: tuple[str, ...], batch_size: int) -> list[Cause]:
    """What the known mistakes of embed_sentences give on ``texts`` in batches of ``batch_size``."""
    if encoder_weights() is not None and encoder_tokenizer() is not None:  # no transformers model class needed
        tokenize, states = encoder_batch, encoder_states
    else:  # another encoder than a BERT: its own tokenizer and model
        tokenizer, model = course_model("encoder")
        device = next(model.parameters()).device

        def tokenize(texts, max_length=None, padding=False):
            return tokenizer(list(texts), padding=padding, truncation=True, max_length=max_length,
                             return_tensors="pt").to(device)

        def states(batch):
            with MODEL_LOCK:
                return model(**batch).last_hidden_state

    rows = {"unnormalised": [], "cls": [], "max": [], "untruncated": [], "padded": []}
    with torch.no_grad():
        for text in texts:  # alone, a text has no padding: every position is a real token
            hidden = states(tokenize([text], MAX_SEQ_LENGTH)).double().cpu()  # (1, T, D)
            rows["unnormalised"].append(hidden[0].mean(dim=0))
            rows["cls"].append(hidden[0, 0])
            rows["max"].append(hidden[0].amax(dim=0))
            whole = tokenize([text])  # cut at the tokenizer's own limit: 512
            rows["untruncated"].append(states(whole).double().cpu()[0].mean(dim=0))
        for start in range(0, len(texts), batch_size):  # the padding depends on the batch
            padded = tokenize(texts[start:start + batch_size], MAX_SEQ_LENGTH, padding=True)
            rows["padded"] += list(states(padded).double().cpu().mean(dim=1))  # padding included
    unit = {name: F.normalize(torch.stack(vectors), dim=-1) for name, vectors in rows.items()}
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
    got = got.detach().cpu()
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


def _embed(student, case: Texts):
    return student.embed_sentences(list(case.texts), student.preloaded("encoder_tokenizer"),
                                   student.preloaded("encoder_model"), batch_size=case.batch_size)


def check_embeddings(student, case: Texts) -> None:
    got = _embed(student, case)
    expected = case.expected()
    try:
        check_close(got, expected, f"embed_sentences({case.what}, batch_size={case.batch_size})", dims="(N, D)",
                    causes=lambda: embedding_causes(case.texts, case.batch_size))
    except Mismatch as mismatch:
        if "Likely cause" in str(mismatch):
            raise
        raise Mismatch(f"{mismatch}{order_hint(got, expected)}") from None


RULES.add("embed_sentences", "embed_sentences",
          "embed_sentences must reproduce sentence-transformers' encode for all-MiniLM-L6-v2, in input order.",
          {"": Texts(TEXTS, 3, "7 texts")})(check_embeddings)


@RULES.add("embed_sentences_unit_length", "embed_sentences",
           "Every sentence embedding must have length 1 (L2-normalise the mean-pooled states).",
           {"": Texts(TEXTS, 3, "7 texts")})
def check_unit_length(student, case: Texts) -> None:
    got = as_tensor(_embed(student, case), "embed_sentences(...)")
    check_shape(got, case.expected().shape, "embed_sentences(...)", "(N, D)")
    norms = got.detach().cpu().double().norm(dim=-1)  # (N,)
    worst = int((norms - 1).abs().argmax())
    if not bool(torch.isfinite(norms).all()) or abs(float(norms[worst]) - 1) > 1e-4:
        raise Mismatch(f"Row {worst} of the embeddings has length {float(norms[worst]):.4g}: scale each row to length 1 "
                       "(torch.nn.functional.normalize(x, dim=-1)).")


RULES.add("embed_sentences_long_text", "embed_sentences",
          "Texts longer than 256 tokens must be truncated at 256, as sentence-transformers does for this model.",
          {"": Texts((LONG_TEXT,), 2, "one text of over 256 tokens")})(check_embeddings)


@RULES.add("embed_sentences_empty", "embed_sentences", "embed_sentences([]) must return an empty (0, D) tensor.")
def check_empty(student, case) -> None:
    width = next(iter(saved_embeddings().values())).shape[-1]  # D: the model's hidden size, as encode returns it
    got = as_tensor(student.embed_sentences([], student.preloaded("encoder_tokenizer"), student.preloaded("encoder_model")),
                    "embed_sentences([])")
    check_shape(got, (0, width), "embed_sentences([])", "(0, D)")


RULES.add("embed_sentences_corpus", "embed_sentences",
          "embed_sentences must give the same vectors whatever the batch size, in input order.",
          {"2": Texts(TEXTS, 2, "7 texts"), "16": Texts(TEXTS, 16, "7 texts")})(check_embeddings)
RULES.add("embed_sentences_long_corpus_text", "embed_sentences",
          "A text of over 300 tokens must be truncated at 256 tokens.",
          {"": Texts((LONG_TEXT,), 1, "one text of over 256 tokens")})(check_embeddings)


def _reference_mean_pool(hidden_states, attention_mask):
    """The mean of each row's real tokens, one row at a time (the definition), in the input's dtype and device."""
    return pool_rows(hidden_states, attention_mask, lambda x: x.mean(dim=0)).to(hidden_states.dtype).to(hidden_states.device)


LAB = Lab(
    name="lab2",
    title="Pooling",
    functions=FUNCTIONS,
    rules=tuple(RULES.rules),
    uses={"embed_sentences": ("mean_pool",)},
    references={"mean_pool": _reference_mean_pool},
)


def visible_truths() -> None:
    """Compute the truths of every public case once (the grader does it before grading starts)."""
    for rule in LAB.rules:
        for case in rule.cases.values():
            if isinstance(case, Pooling):
                pooling_case(case)
    saved_embeddings()
