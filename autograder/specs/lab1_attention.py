"""Lab 1, attention: the points of each rule of :mod:`book.labs.lab1`, and how its hidden cases are drawn.

Visible tests run a rule on the cases the lab's own checks run; hidden ones on cases of the same
structure (one query, left padding, Dh = 1, bfloat16...) whose sizes, values and sentences are
drawn for each student. The truths, the known mistakes and the wording are the lab module's.
"""

from __future__ import annotations

import re
from dataclasses import replace

from autograder.spec import Lab, hidden, visible
from book.labs import cached, lab1
from book.labs.lab1 import Case, Heads, Repeat

LAB = Lab(lab1.LAB, notebook="labs/lab1_attention.ipynb", reference="solutions/attention.py")
rule = lab1.LAB.rule


def drawn_size(draw, template: int, avoid: tuple[int, ...] = (), high: int = 17) -> int:
    """A size drawn for a hidden case: 1 stays 1 (the edge case the test is about), others odd in [3, ``high``]."""
    return 1 if template == 1 else draw.odd(3, high, avoid)


def drawn_heads(case: Heads, draw) -> Heads:
    H = drawn_size(draw, case.H, high=9)
    Dh = drawn_size(draw, case.Dh, (H,), high=37)
    T = drawn_size(draw, case.T, (H, Dh))
    return Heads(draw.integer(2, 5), T, H, Dh, seed=draw.seed(), dtype=case.dtype)


def drawn_case(case: Case, draw) -> Case:
    """A hidden attention case of ``case``'s structure, its sizes and values drawn for one student.

    Kept from the template: one sequence, one head, one query or Dh = 1 where it has them; the
    order of Tq and Tk; sequences with no real token and full-length ones; side, causality and
    dtype. Drawn: the other sizes (odd, distinct where they can be), the other lengths, the values.
    """
    H = drawn_size(draw, case.H, high=9)
    Dh = drawn_size(draw, case.Dh, (H,), high=37)
    if case.Tq == 1:
        Tq, Tk = 1, draw.odd(5, 17, (H, Dh))
    elif case.Tq == case.Tk:
        Tq = Tk = draw.odd(5, 17, (H, Dh))
    elif case.Tq < case.Tk:
        Tq = draw.odd(3, 11, (H, Dh))
        Tk = draw.odd(Tq + 2, 19, (H, Dh))
    else:
        Tk = draw.odd(3, 11, (H, Dh))
        Tq = draw.odd(Tk + 2, 19, (H, Dh))
    lengths = draw.lengths(case.lengths, Tk, case.Tk) if case.lengths else None
    B = len(lengths) if lengths else 1 if case.B == 1 else draw.integer(2, 5)
    return replace(case, seed=draw.seed(), B=B, H=H, Tq=Tq, Tk=Tk, Dh=Dh, lengths=lengths, hidden=True)


def drawn_repeat(case: Repeat, draw) -> Repeat:
    """SmolLM2's 3 groups of 3 and Dh = 64 are kept; one key/value head stays one. The rest is drawn."""
    n_rep, Dh = case.n_rep, case.Dh
    if case.Hkv == 1:
        n_rep, Dh = draw.odd(3, 9), draw.odd(5, 17)
    B, T = (1 if case.B == 1 else draw.integer(2, 5)), draw.odd(3, 13, (case.Hkv, n_rep))
    return Repeat(B, case.Hkv, n_rep, T, Dh, case.dtype, seed=draw.seed())


@cached
def corpus_sentences() -> tuple[tuple[str, ...], tuple[str, ...]]:
    """The course corpus cut into sentences: (short ones of at most 4 words, ones of 8 to 40 words)."""
    from book.corpus import load_documents

    texts = [document["text"] for document in load_documents()]
    sentences = {s.strip() for text in texts for s in re.split(r"(?<=[.!?])\s+", text) if s.strip()}
    short = tuple(sorted(s for s in sentences if len(s.split()) <= 4))
    long = tuple(sorted(s for s in sentences if 8 <= len(s.split()) <= 40))
    return short or ("Why?",), long


def drawn_sentences(draw) -> tuple[str, ...]:
    """Four corpus sentences for one student's hidden batch, in a drawn order: three long ones and a short one, so that
    most rows carry padding."""
    short, long = corpus_sentences()
    return tuple(draw.sample(draw.sample(long, 3) + [draw.choice(short)], 4))


def drawn_layer(case, draw):
    layer, _ = case
    return layer, drawn_sentences(draw)


def drawn_small_layer(case, draw):
    H = draw.odd(3, 7)
    Dh = draw.odd(3, 9, (H,))
    T = draw.odd(5, 11, (H, Dh))
    return draw.seed(), H, Dh, T, draw.integer(1, T - 1)


test_split_heads = visible(rule("split_heads"), points=1)
test_merge_heads = visible(rule("merge_heads"), points=1)
test_heads_round_trip = hidden(rule("heads_round_trip"), points=1, draw=drawn_heads)
test_sdpa_returns_output_and_weights = visible(rule("sdpa_returns_output_and_weights"), points=1)
test_sdpa_weights_rows_sum_to_one = visible(rule("sdpa_weights_rows_sum_to_one"), points=1)
test_sdpa_no_mask = visible(rule("sdpa_no_mask"), points=2)
test_sdpa_sizes = hidden(rule("sdpa_sizes"), points=1, draw=drawn_case)
test_sdpa_padding_mask = visible(rule("sdpa_padding_mask"), points=2)
test_sdpa_left_padding = hidden(rule("sdpa_left_padding"), points=1, draw=drawn_case)
test_sdpa_causal = visible(rule("sdpa_causal"), points=1)
test_sdpa_fully_masked_rows_are_finite = visible(rule("sdpa_fully_masked_rows_are_finite"), points=1)
test_sdpa_causal_with_padding = hidden(rule("sdpa_causal_with_padding"), points=1, draw=drawn_case)
test_sdpa_dtype = visible(rule("sdpa_dtype"), points=1)
test_repeat_kv = visible(rule("repeat_kv"), points=1)
test_repeat_kv_hidden = hidden(rule("repeat_kv_hidden"), points=1, draw=drawn_repeat)
test_self_attention_minilm = visible(rule("self_attention_minilm"), points=2)
test_self_attention_minilm_hidden = hidden(rule("self_attention_minilm_hidden"), points=1, draw=drawn_layer)
test_self_attention_other_sizes = hidden(rule("self_attention_other_sizes"), points=1, draw=drawn_small_layer)


def prepare(tests) -> None:
    """Compute the visible tests' truths once, before grading starts (hidden ones depend on the student)."""
    lab1.visible_truths()
    corpus_sentences()  # hidden batches are drawn from them

