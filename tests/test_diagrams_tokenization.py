"""The tokenization diagrams draw what the tokenizers do: the byte table, the merge tree, the default examples."""

from __future__ import annotations

import json

import pytest
from tokenizers import Tokenizer, models, pre_tokenizers, trainers
from transformers.convert_slow_tokenizer import bytes_to_unicode

from book.diagrams import tokenization as diagrams


def test_the_byte_symbols_are_gpt2s_table():
    table = bytes_to_unicode()
    assert [diagrams._byte_symbol(b) for b in range(256)] == [table[b] for b in range(256)]
    assert diagrams._byte_symbol(0x20) == "Ġ" and diagrams._byte_symbol(0x0A) == "Ċ"


def test_the_toy_merges_are_what_the_library_learns():
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    alphabet = set("".join(diagrams.TOY_WORDS))
    trainer = trainers.BpeTrainer(vocab_size=len(alphabet) + len(diagrams.TOY_MERGES), show_progress=False)
    tok.train_from_iterator([" ".join([w] * n) for w, n in diagrams.TOY_WORDS.items()], trainer)
    learned = [tuple(m) for m in json.loads(tok.to_str())["model"]["merges"]]
    assert learned == [(a, b) for a, b, _ in diagrams.TOY_MERGES]


def test_the_merge_tree_replays_the_table_in_rank_order():
    fired = diagrams._apply("lowest", diagrams.TOY_MERGES)
    assert [merged for _, _, merged, _ in fired] == ["es", "est", "lo", "low"]
    assert [rank for *_, rank in fired] == sorted(rank for *_, rank in fired)


def test_the_byte_diagram_refuses_tokens_that_do_not_spell_the_text():
    with pytest.raises(ValueError, match="spell"):
        diagrams.byte_alphabet("Go  café\n", ["Go", "Ġ"])
