"""book.configs: the published configurations build the models they name, with their known sizes."""

from __future__ import annotations

import pytest
import torch
import transformers

from book.configs import PUBLISHED, published_config

# Parameter counts of the published checkpoints (model cards), in billions, and their attention kind.
KNOWN = {"gemma-2b": (2.51, 1), "gemma-2-2b": (2.61, 4), "llama-3-8b": (8.03, 8),
         "smollm2-1.7b": (1.71, 32)}


@pytest.mark.parametrize("name", sorted(PUBLISHED))
def test_each_published_config_builds_a_model_of_the_published_size(name):
    config = published_config(name)
    with torch.device("meta"):
        model = transformers.AutoModelForCausalLM.from_config(config)
    billions, kv_heads = KNOWN[name]
    assert sum(p.numel() for p in model.parameters()) / 1e9 == pytest.approx(billions, abs=0.01)
    assert config.num_key_value_heads == kv_heads


def test_an_unknown_name_lists_the_choices():
    with pytest.raises(KeyError, match="gemma-2-2b"):
        published_config("gemma-7b")
