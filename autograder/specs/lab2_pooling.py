"""Lab 2, pooling: the points of each rule of :mod:`book.labs.lab2`, and how its hidden cases are drawn.

Hidden pooling cases keep their template's side, dtype, padding value and sign, and its rows with
no or all real tokens; their sizes, other lengths and values are drawn. Hidden sentence batches
are corpus texts: the openings of drawn documents, and a long text of documents taken in corpus
order from a drawn one. Their truth is sentence-transformers' ``encode``, saved for every such
text of the bundled corpus in ``data/lab2_corpus_embeddings.safetensors`` (grader side: students
never receive it), so that grading needs neither sentence-transformers (a quarter of a gigabyte
once imported) nor the model for a correct submission; a text not saved (a corpus swapped in
with ``LLM_INTERNALS_CORPUS``, another encoder) is encoded with sentence-transformers when drawn.
:func:`write_saved` writes both saved files (the labs' own texts in ``book/labs/data/``), and the
instructors' tests check them against ``encode``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from pathlib import Path

import torch

from autograder.spec import Lab, hidden, visible
from book.labs import MODEL_LOCK, cached, lab2
from book.labs.lab2 import Pooling, Texts

LAB = Lab(lab2.LAB, notebook="labs/lab2_pooling.ipynb", reference="solutions/pooling.py", preload=("encoder",),
          imports=("sentence_transformers",))  # students compare with it in the lab
rule = lab2.LAB.rule


def drawn_pooling(case: Pooling, draw) -> Pooling:
    T = draw.odd(5, 15)
    D = draw.odd(5, 37, (T,))
    return replace(case, seed=draw.seed(), T=T, D=D, lengths=draw.lengths(case.lengths, T, case.T), hidden=True)


CORPUS_SAVED = Path(__file__).parent / "data" / "lab2_corpus_embeddings.safetensors"
LONG_TOKENS = 300  # a hidden long text has at least this many tokens: past the 256 cut


@cached
def sentence_transformer():
    from sentence_transformers import SentenceTransformer

    from book.models import resolve

    return SentenceTransformer(resolve("encoder").location, device="cpu")


def st_encode(texts: tuple[str, ...]) -> torch.Tensor:
    """sentence-transformers' encode of ``texts`` (N, D), computed now."""
    with MODEL_LOCK:  # one model, shared by the grading threads
        return sentence_transformer().encode(list(texts), convert_to_tensor=True, batch_size=32).cpu()


@cached
def saved_corpus_embeddings() -> dict[str, torch.Tensor]:
    """sentence-transformers' encode of every hidden text of the bundled corpus, by text, as saved (empty when the file
    is missing or was made with another encoder than the course's)."""
    from safetensors import safe_open

    from book.models import resolve

    if not CORPUS_SAVED.is_file():
        return {}
    with safe_open(str(CORPUS_SAVED), "pt") as saved:
        metadata = saved.metadata() or {}
        if metadata.get("model") != resolve("encoder").name:
            return {}
        vectors = saved.get_tensor("embeddings")  # (N, D)
    return dict(zip(json.loads(metadata["texts"]), vectors))


@cached
def encode(texts: tuple[str, ...]) -> torch.Tensor:
    """sentence-transformers' encode of ``texts`` (N, D): the truth of embed_sentences (saved, or computed now)."""
    saved = saved_corpus_embeddings()
    if all(text in saved for text in texts):
        return torch.stack([saved[text] for text in texts])
    return st_encode(texts)


@dataclass(frozen=True)
class EncodedTexts(Texts):
    """Texts drawn for one student: their truth is sentence-transformers' encode (:func:`encode`)."""

    def expected(self) -> torch.Tensor:
        return encode(self.texts)

    def drawn_texts(self) -> tuple[str, ...]:
        """The drawn texts: never shown in feedback (autograder.spec.redact)."""
        return self.texts


@cached
def corpus_documents() -> tuple[tuple[str, str], ...]:
    """(genre, text) of every corpus document: hidden sentence batches are drawn from them."""
    from book.corpus import load_documents

    return tuple((document["genre"], document["text"]) for document in load_documents())


def opening(text: str) -> str:
    """A document's first sentence."""
    return text.split(". ")[0].rstrip(".") + "."


def encoder_tokens(text: str) -> int:
    """How many tokens the encoder's tokenizer makes of ``text``, [CLS] and [SEP] included, uncut."""
    if lab2.encoder_tokenizer() is None:  # a checkpoint without tokenizer.json: transformers' tokenizer
        from book.models import load_tokenizer

        return len(load_tokenizer("encoder")(text)["input_ids"])
    return lab2.encoder_length(text)


@cached
def long_corpus_text(start: int, tokens: int = LONG_TOKENS) -> str:
    """Corpus documents from number ``start`` on, in corpus order (round the end), joined until the text is at least
    ``tokens`` tokens long."""
    documents = corpus_documents()
    parts = []
    for step in range(len(documents)):
        parts.append(documents[(start + step) % len(documents)][1])
        if encoder_tokens(" ".join(parts)) >= tokens:
            break
    return " ".join(parts)


def hidden_texts() -> tuple[str, ...]:
    """Every text a hidden test can draw from the corpus: each document's opening, and the long text from each."""
    documents = corpus_documents()
    return tuple(dict.fromkeys([opening(text) for _, text in documents] +
                               [long_corpus_text(start) for start in range(len(documents))]))


def write_saved() -> None:
    """Save sentence-transformers' embeddings of the lab's own texts with the course (book/labs/data/), and of every
    hidden corpus text with the grader (data/ here)."""
    from safetensors.torch import save_file

    from book.models import resolve

    texts = lab2.TEXTS + (lab2.LONG_TEXT,)
    lab2.SAVED.parent.mkdir(parents=True, exist_ok=True)
    save_file({"embeddings": st_encode(texts).contiguous()}, lab2.SAVED)
    hidden = hidden_texts()
    CORPUS_SAVED.parent.mkdir(parents=True, exist_ok=True)
    save_file({"embeddings": st_encode(hidden).contiguous()}, CORPUS_SAVED,
              metadata={"model": resolve("encoder").name, "texts": json.dumps(hidden)})


def drawn_openings(case: Texts, draw) -> EncodedTexts:
    """The first sentences of 5 drawn corpus documents, each of another genre, in the template's batch size."""
    documents = corpus_documents()
    genres = draw.sample(sorted({genre for genre, _ in documents}), 5)
    texts = [draw.choice([text for genre_, text in documents if genre_ == genre]) for genre in genres]
    openings = tuple(opening(text) for text in texts)
    return EncodedTexts(openings, case.batch_size, f"{len(openings)} hidden corpus sentences")


def drawn_long_text(case: Texts, draw) -> EncodedTexts:
    """The corpus documents from a drawn one on, joined until the text is at least 300 tokens long (past the 256 cut)."""
    text = long_corpus_text(draw.integer(0, len(corpus_documents()) - 1))
    return EncodedTexts((text,), case.batch_size, "a hidden corpus text of over 300 tokens")


test_mean_pool = visible(rule("mean_pool"), points=2)
test_mean_pool_nonfinite_padding = visible(rule("mean_pool_nonfinite_padding"), points=1)
test_mean_pool_all_padding = visible(rule("mean_pool_all_padding"), points=1)
test_mean_pool_dtype = visible(rule("mean_pool_dtype"), points=1)
test_mean_pool_hidden = hidden(rule("mean_pool_hidden"), points=1, draw=drawn_pooling)
test_max_pool = visible(rule("max_pool"), points=1)
test_max_pool_hidden = hidden(rule("max_pool_hidden"), points=1, draw=drawn_pooling)
test_max_pool_all_padding = hidden(rule("max_pool_all_padding"), points=1, draw=drawn_pooling)
test_embed_sentences = visible(rule("embed_sentences"), points=2)
test_embed_sentences_unit_length = visible(rule("embed_sentences_unit_length"), points=1)
test_embed_sentences_long_text = visible(rule("embed_sentences_long_text"), points=1)
test_embed_sentences_empty = visible(rule("embed_sentences_empty"), points=1)
test_embed_sentences_corpus = hidden(rule("embed_sentences_corpus"), points=1, draw=drawn_openings)
test_embed_sentences_long_corpus_text = hidden(rule("embed_sentences_long_corpus_text"), points=1, draw=drawn_long_text)


def prepare(tests) -> None:
    """Compute the visible tests' truths once, before grading starts (hidden ones depend on the student)."""
    lab2.visible_truths()
    corpus_documents()
    saved_corpus_embeddings()
    lab2.encoder_tokenizer()
