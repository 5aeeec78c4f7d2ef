"""book.configs: the published configurations build the models they name, with their published sizes."""

from __future__ import annotations

import pytest

from book.configs import (PUBLISHED, PUBLISHED_SIZES, PublishedSize, build_on_meta, count_parameters,
                          published_config)

# Parameter counts of the published checkpoints (model cards), in billions, and their key/value heads.
KNOWN = {"gemma-2b": (2.51, 1), "gemma-2-2b": (2.61, 4), "llama-3-8b": (8.03, 8), "opt-1.3b": (1.32, 32),
         "bert-base-uncased": (0.11, 12), "smollm2-1.7b": (1.71, 32)}


@pytest.mark.parametrize("name", sorted(PUBLISHED))
def test_each_published_config_builds_a_model_of_the_published_size(name):
    model = build_on_meta(name)
    assert all(p.device.type == "meta" for p in model.parameters())
    billions, kv_heads = KNOWN[name]
    assert count_parameters(model) / 1e9 == pytest.approx(billions, abs=0.01)
    config = published_config(name)
    assert getattr(config, "num_key_value_heads", config.num_attention_heads) == kv_heads
    published = PUBLISHED_SIZES[name]
    assert published.matches(count_parameters(model, published.counts)), published


def test_every_published_config_has_a_published_size():
    assert set(PUBLISHED_SIZES) == set(PUBLISHED)


@pytest.mark.parametrize("count, expected", [(1_315_758_080, True), (1_249_000_000, False),
                                             (1_349_999_999, True), (1_350_000_001, False)])
def test_a_published_size_matches_at_the_precision_it_was_given(count, expected):
    assert PublishedSize("1.3B", 13 * 10**8, 10**8, "all", "test").matches(count) is expected


def test_non_embedding_parameters_leave_out_the_embedding_and_an_untied_head():
    llama = build_on_meta("llama-3-8b")  # untied: the head is a matrix of its own
    config = published_config("llama-3-8b")
    embedding = config.vocab_size * config.hidden_size
    assert count_parameters(llama, "non-embedding") == count_parameters(llama) - 2 * embedding
    gemma = build_on_meta("gemma-2b")  # tied: one matrix
    config = published_config("gemma-2b")
    assert count_parameters(gemma, "non-embedding") == (count_parameters(gemma)
                                                        - config.vocab_size * config.hidden_size)


def test_an_unknown_name_lists_the_choices():
    with pytest.raises(KeyError, match="gemma-2-2b"):
        published_config("gemma-7b")
