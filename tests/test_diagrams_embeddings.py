"""The embeddings chapter's diagrams with the kinds of values the page passes them.

``tests/test_diagrams.py`` draws every diagram with its defaults; these draw them with other
values a real run may produce (negative cosines, no padding, a longer toy) and check that they
stay legible and say what they show.
"""

from __future__ import annotations

import pytest

from book.diagrams import core
from book.diagrams import embeddings as diagrams


def _legible(drawn) -> None:
    drawn.svg()  # runs the legibility checks
    assert drawn.text_px(core.PHONE_COLUMN_PX) >= core.MIN_TEXT_PX, drawn.name


@pytest.mark.parametrize("same, other", [
    ((1.0, 0.9, 0.7, 0.5), (1.0, 0.6, 0.2, -0.3)),  # the other sense turns past 90 degrees
    ((1.0,) * 7, (1.0,) * 7),                          # no change at all: one label A=B=C
    ((1.0, 0.99, 0.98, 0.97, 0.96, 0.95, 0.94, 0.93, 0.92), (1.0,) + (0.5,) * 8),  # 9 boundaries
])
def test_word_in_context_draws_any_cosines(same, other):
    drawn = diagrams.word_in_context(same, other)
    _legible(drawn)
    assert f"{other[-1]:.2f}" in drawn.alt and f"from 0 to {len(same) - 1}" in drawn.alt


def test_pooling_choices_computes_what_it_shows():
    states = [[1, -2], [3, 4], [0, 0], [9, 9]]
    drawn = diagrams.pooling_choices(states, [1, 1, 1, 0], ["[CLS]", "a", "[SEP]", "[PAD]"])
    _legible(drawn)
    shown = {text.get_text() for ax in drawn.figure.axes for text in ax.texts}
    assert {"1.33", "0.67"} <= shown  # the masked mean of the three real rows, (1+3+0)/3, (-2+4)/3
    assert "4" in shown and "9" in shown  # the masked max of column 2; the padding row itself


def test_states_to_sentence_without_padding():
    drawn = diagrams.states_to_sentence(["[CLS]", "a", "b", "[SEP]"])
    _legible(drawn)
    assert "4 real and 0 padding" in drawn.alt


def test_cosine_angles_with_a_document_pointing_away():
    drawn = diagrams.cosine_angles("a query", [("first", 0.6), ("second", 0.4), ("last", -0.35)])
    _legible(drawn)
    assert "at cosine -0.35" in drawn.alt


def test_encode_pipeline_names_the_real_settings():
    drawn = diagrams.encode_pipeline(128, 12, 768)
    _legible(drawn)
    assert "truncated at 128" in drawn.alt and "12 layers" in drawn.alt and "D=768" in drawn.alt
