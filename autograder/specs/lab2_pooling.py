"""Lab 2, pooling: the points of each rule of :mod:`book.labs.lab2`, and how its hidden cases are drawn.

Hidden pooling cases keep their template's side, dtype, padding value and sign, and its rows with
no or all real tokens; their sizes, other lengths and values are drawn. Hidden sentence batches
are corpus texts, whose truth (sentence-transformers' ``encode``) is computed here: the saved
truths the labs use cover only the lab's own texts, and :func:`write_saved` writes them.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import torch
from safetensors.torch import save_file

from autograder.spec import Lab, hidden, visible
from book.labs import MODEL_LOCK, cached, course_model, lab2
from book.labs.lab2 import Pooling, Texts

LAB = Lab(lab2.LAB, notebook="labs/lab2_pooling.ipynb", reference="solutions/pooling.py", preload=("encoder",),
          imports=("sentence_transformers",))  # students compare with it in the lab
rule = lab2.LAB.rule


def drawn_pooling(case: Pooling, draw) -> Pooling:
    T = draw.odd(5, 15)
    D = draw.odd(5, 37, (T,))
    return replace(case, seed=draw.seed(), T=T, D=D, lengths=draw.lengths(case.lengths, T, case.T), hidden=True)


@cached
def sentence_transformer():
    from sentence_transformers import SentenceTransformer

    from book.models import resolve

    return SentenceTransformer(resolve("encoder").location, device="cpu")


@cached
def encode(texts: tuple[str, ...]) -> torch.Tensor:
    """sentence-transformers' encode of ``texts`` (N, D): the truth of embed_sentences."""
    with MODEL_LOCK:  # one model, shared by the grading threads
        return sentence_transformer().encode(list(texts), convert_to_tensor=True, batch_size=32).cpu()


@dataclass(frozen=True)
class EncodedTexts(Texts):
    """Texts drawn for one student: their truth is computed with sentence-transformers, not saved."""

    def expected(self) -> torch.Tensor:
        return encode(self.texts)

    def drawn_texts(self) -> tuple[str, ...]:
        """The drawn texts: never shown in feedback (autograder.spec.redact)."""
        return self.texts


def write_saved() -> None:
    """Save sentence-transformers' embeddings of the lab's own texts with the course (book/labs/data/)."""
    texts = lab2.TEXTS + (lab2.LONG_TEXT,)
    lab2.SAVED.parent.mkdir(parents=True, exist_ok=True)
    save_file({"embeddings": encode(texts).contiguous()}, lab2.SAVED)


@cached
def corpus_documents() -> tuple[tuple[str, str], ...]:
    """(genre, text) of every corpus document: hidden sentence batches are drawn from them."""
    from book import load_corpus

    corpus = load_corpus()
    return tuple(zip(corpus["genre"], corpus["text"]))


def drawn_openings(case: Texts, draw) -> EncodedTexts:
    """The first sentences of 5 drawn corpus documents, each of another genre, in the template's batch size."""
    documents = corpus_documents()
    genres = draw.sample(sorted({genre for genre, _ in documents}), 5)
    texts = [draw.choice([text for genre_, text in documents if genre_ == genre]) for genre in genres]
    openings = tuple(text.split(". ")[0].rstrip(".") + "." for text in texts)
    return EncodedTexts(openings, case.batch_size, f"{len(openings)} hidden corpus sentences")


def drawn_long_text(case: Texts, draw, tokens: int = 300) -> EncodedTexts:
    """Drawn corpus documents joined until the text is at least ``tokens`` tokens long (past the 256 cut)."""
    tokenizer, _ = course_model("encoder")
    order = draw.sample(range(len(corpus_documents())), len(corpus_documents()))
    parts = []
    for index in order:
        parts.append(corpus_documents()[index][1])
        if len(tokenizer(" ".join(parts))["input_ids"]) >= tokens:
            break
    return EncodedTexts((" ".join(parts),), case.batch_size, "a hidden corpus text of over 300 tokens")


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
    sentence_transformer()
