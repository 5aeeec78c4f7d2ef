"""The worker's own speed-ups keep what a submission sees unchanged."""

from __future__ import annotations

from copy import deepcopy

import pytest
import torch

from autograder import worker


@pytest.mark.parametrize("mean_resizing", [False, True])
def test_resizing_draws_only_the_added_rows_and_grows_the_same_matrix(monkeypatch, mean_resizing):
    from transformers import BertConfig, BertModel, PreTrainedModel, initialization

    monkeypatch.setattr(PreTrainedModel, "_get_resized_embeddings", PreTrainedModel._get_resized_embeddings)  # undone after
    V, D, added = 37, 13, 7
    torch.manual_seed(11)
    config = BertConfig(vocab_size=V, hidden_size=D, num_attention_heads=1, num_hidden_layers=1, intermediate_size=5)
    model = BertModel(config).eval()
    old = model.get_input_embeddings().weight.detach().clone()  # (V, D)
    drawn = []
    torch_normal = initialization.TORCH_INIT_FUNCTIONS["normal_"]

    def counting(tensor, *args, **kwargs):
        drawn.append(tensor.numel())
        return torch_normal(tensor, *args, **kwargs)

    grown = {}
    for fast in (False, True):
        copy = deepcopy(model)
        if fast:
            worker.draw_added_rows_only()
        drawn.clear()
        monkeypatch.setattr(torch.nn.init, "normal_", counting)
        monkeypatch.setitem(initialization.TORCH_INIT_FUNCTIONS, "normal_", counting)
        copy.resize_token_embeddings(V + added, mean_resizing=mean_resizing)
        monkeypatch.undo()  # the counters, and on the second pass the speed-up too
        monkeypatch.setattr(PreTrainedModel, "_get_resized_embeddings", PreTrainedModel._get_resized_embeddings)
        grown[fast] = (copy.get_input_embeddings().weight.detach(), sum(drawn))
    for fast, (weight, values) in grown.items():
        assert weight.shape == (V + added, D)
        torch.testing.assert_close(weight[:V], old, rtol=0, atol=0)  # old rows copied, unchanged
        assert torch.isfinite(weight[V:]).all() and weight[V:].abs().sum() > 0  # added rows drawn (or set), not left empty
    assert grown[False][1] >= (V + added) * D  # transformers draws the whole new matrix (twice without mean_resizing)
    assert grown[True][1] <= 2 * added * D  # the worker draws the added rows only
