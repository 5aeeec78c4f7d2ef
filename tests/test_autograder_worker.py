"""The worker's own speed-ups keep what a submission sees unchanged."""

from __future__ import annotations

from copy import deepcopy

import pytest
import torch

from autograder import worker


def _restore_after(monkeypatch) -> None:
    """Undo the worker's resizing patches when the test ends (they are set on transformers' class)."""
    from transformers import PreTrainedModel

    for name in ("_get_resized_embeddings", "_init_added_embeddings_weights_with_mean"):
        monkeypatch.setattr(PreTrainedModel, name, getattr(PreTrainedModel, name))
    monkeypatch.setattr(worker, "ROOM", {})


@pytest.mark.parametrize("mean_resizing", [False, True])
def test_resizing_draws_only_the_added_rows_and_grows_the_same_matrix(monkeypatch, mean_resizing):
    from transformers import BertConfig, BertModel, PreTrainedModel, initialization

    _restore_after(monkeypatch)
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
        _restore_after(monkeypatch)
        grown[fast] = (copy.get_input_embeddings().weight.detach(), sum(drawn))
    for fast, (weight, values) in grown.items():
        assert weight.shape == (V + added, D)
        torch.testing.assert_close(weight[:V], old, rtol=0, atol=0)  # old rows copied, unchanged
        assert torch.isfinite(weight[V:]).all() and weight[V:].abs().sum() > 0  # added rows drawn (or set), not left empty
    assert grown[False][1] >= (V + added) * D  # transformers draws the whole new matrix (twice without mean_resizing)
    assert grown[True][1] <= 2 * added * D  # the worker draws the added rows only


def _rollup(field: str = "Private_Dirty") -> int:
    """A figure of this process's memory in bytes: Private_Dirty (written, copy-on-write pages copied included), Rss..."""
    with open("/proc/self/smaps_rollup") as rollup:
        return sum(int(line.split()[1]) * 1024 for line in rollup if line.startswith(f"{field}:"))


@pytest.mark.parametrize("mean_resizing", [False, True])
def test_a_matrix_loaded_from_a_file_grows_in_place_with_the_values_transformers_gives(tmp_path, monkeypatch,
                                                                                        mean_resizing):
    """A model loaded from safetensors (its weights a private mapping of the file), without its layers as lab 3 loads
    it: the grown matrix holds the same old rows, added rows drawn as transformers draws them, stays tied, and its
    first V rows are the file's pages themselves (no copy); other tensors of the model are untouched. The grader's
    memory figures for lab 3 rest on this (scripts/bench_gradescope.py)."""
    from transformers import LlamaConfig, LlamaForCausalLM

    _restore_after(monkeypatch)
    V, D, added = 20000, 64, 5  # 5 MB: enough pages that a copy would show
    config = LlamaConfig(vocab_size=V, hidden_size=D, intermediate_size=32, num_hidden_layers=2, num_attention_heads=2,
                         num_key_value_heads=1, tie_word_embeddings=True)
    torch.manual_seed(3)
    LlamaForCausalLM(config).save_pretrained(tmp_path)
    grown = {}
    for fast in (False, True):
        model = LlamaForCausalLM.from_pretrained(tmp_path, num_hidden_layers=0).requires_grad_(False)
        norm = model.model.norm.weight.detach().clone()
        old = model.get_input_embeddings().weight.detach().clone()  # (V, D)
        address = model.get_input_embeddings().weight.data_ptr()
        if fast:
            worker.draw_added_rows_only()
            worker.note_room([model])
            assert address in worker.ROOM  # the layers' tensors follow the matrix in the file: room to grow
        torch.manual_seed(5)
        before, resident = _rollup(), _rollup("Rss")
        model.resize_token_embeddings(V + added, mean_resizing=mean_resizing)
        written, resident = _rollup() - before, _rollup("Rss") - resident
        weight = model.get_input_embeddings().weight
        assert weight.shape == (V + added, D) and model.lm_head.weight is weight  # grown, still tied
        torch.testing.assert_close(weight[:V], old, rtol=0, atol=0)  # old rows unchanged
        torch.testing.assert_close(model.model.norm.weight, norm, rtol=0, atol=0)
        assert torch.isfinite(weight[V:]).all() and weight[V:].abs().sum() > 0
        with torch.no_grad():
            weight[V:] = 1.0  # a submission setting its new rows
        assert weight[:V].equal(old)
        grown[fast] = (weight.detach().clone(), written, weight.data_ptr() == address, resident)
        _restore_after(monkeypatch)
    assert not grown[False][2] and grown[True][2]  # transformers copies; the worker grows the matrix where it lies
    # (what transformers' copy writes is not asserted: in a long test run it may land in heap pages already dirty)
    assert grown[True][1] < V * D * 4 * 0.25  # in place: the added rows' pages (and the sampling's scratch) only
    # mean_resizing reads every old row (its mean and covariance); the worker gives the file's pages back as it goes
    assert grown[True][3] < V * D * 4 * 0.25
    if mean_resizing:
        torch.testing.assert_close(grown[True][0], grown[False][0], rtol=0, atol=1e-5)  # drawn around the same mean
    else:
        torch.testing.assert_close(grown[True][0], grown[False][0], rtol=0, atol=0)


def test_pages_a_submission_wrote_are_kept(tmp_path, monkeypatch):
    """Giving back a block's file pages never loses what was written into it: a changed block keeps its pages."""
    from transformers import BertConfig, BertModel

    _restore_after(monkeypatch)
    torch.manual_seed(8)
    BertModel(BertConfig(vocab_size=30000, hidden_size=32, num_attention_heads=1, num_hidden_layers=1,
                         intermediate_size=4)).save_pretrained(tmp_path)
    model = BertModel.from_pretrained(tmp_path, num_hidden_layers=0).requires_grad_(False)
    worker.note_room([model])
    weight = model.get_input_embeddings().weight
    original = weight.detach().clone()
    with torch.no_grad():
        weight[100] = 7.0  # a submission writing an old row (block 0)
    weight.sum()  # every page read (resident)
    freed = []
    for first in (0, 10000):  # a changed block, an unchanged one (1.3 MB each)
        resident = _rollup("Rss")
        worker._drop_unchanged_pages(weight[first:first + 10000])
        freed.append(resident - _rollup("Rss"))
    assert freed[0] < 2**19 and freed[1] > 2**20
    assert torch.equal(weight[100], torch.full((32,), 7.0))
    expected = original.clone()
    expected[100] = 7.0
    assert torch.equal(weight, expected)  # dropped pages read the file again: the same values


def test_without_room_the_matrix_is_grown_by_transformers_own_copy(monkeypatch):
    """A matrix in ordinary memory (not a file mapping, so no room recorded) is grown as transformers grows it."""
    from transformers import BertConfig, BertModel

    _restore_after(monkeypatch)
    torch.manual_seed(2)
    model = BertModel(BertConfig(vocab_size=50, hidden_size=8, num_attention_heads=1, num_hidden_layers=1,
                                 intermediate_size=4))
    worker.draw_added_rows_only()
    worker.note_room([model])
    assert worker.ROOM == {}
    old = model.get_input_embeddings().weight.detach().clone()
    model.resize_token_embeddings(53)
    weight = model.get_input_embeddings().weight
    assert weight.shape == (53, 8) and weight.data_ptr() != old.data_ptr()
    torch.testing.assert_close(weight[:50], old, rtol=0, atol=0)


def test_mean_resizing_by_blocks_draws_what_transformers_draws(monkeypatch):
    """The worker's block-by-block mean and covariance give transformers' own added rows (same seed, rounding aside)."""
    from transformers import BertConfig, BertModel

    _restore_after(monkeypatch)
    torch.manual_seed(4)
    model = BertModel(BertConfig(vocab_size=9000, hidden_size=16, num_attention_heads=1, num_hidden_layers=1,
                                 intermediate_size=4))
    rows = {}
    for fast in (False, True):
        copy = deepcopy(model)
        if fast:
            worker.draw_added_rows_only()
        torch.manual_seed(6)
        copy.resize_token_embeddings(9003, mean_resizing=True)
        rows[fast] = copy.get_input_embeddings().weight[9000:].detach()
        _restore_after(monkeypatch)
    # The rows are the old rows' mean plus noise of covariance 1e-9 x theirs (std about 6e-7 here, the rows' own
    # values 2e-2 / sqrt(V)): the summation order moves the noise by a few times that, and nothing more.
    torch.testing.assert_close(rows[True], rows[False], rtol=0, atol=1e-5)
    assert not torch.equal(rows[True], torch.zeros_like(rows[True]))
