"""The references and the catalogue's correct implementations keep their tensors on the inputs' device.

On a GPU (Colab's), a tensor made without ``device=`` lies on the CPU and the first operation that
mixes it with the inputs fails; the grader, on a CPU, never sees it. PyTorch's ``meta`` device
shows the same mistake without a GPU: a function given meta tensors that creates a CPU tensor and
mixes the two raises a device error. A function whose arithmetic depends on values (``.item()``,
``nonzero``) cannot run on meta at all; such a run proves nothing either way and is skipped.
(The first run on a real GPU, book/data/gpu/labs.json, found nine correct entries failing this way.)
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
import torch

from tests.conftest import ROOT

CATALOGUE = ROOT / "autograder" / "catalogue"
DEVICE_ERRORS = ("device", "Device")
VALUE_DEPENDENT = ("cannot be called on meta tensors", "data-independent", "data-dependent")


def _load(path: Path):
    spec = importlib.util.spec_from_file_location(f"_meta_{path.parent.name}_{path.stem}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _implementations(lab: str, reference: str) -> list[Path]:
    return [ROOT / reference] + sorted((CATALOGUE / lab).glob("correct_*.py"))


def _run_on_meta(call):
    try:
        result = call()
    except RuntimeError as error:
        message = str(error)
        if any(words in message for words in VALUE_DEPENDENT):
            pytest.skip(f"depends on values, cannot run on meta: {message.splitlines()[0]}")
        raise
    for tensor in result if isinstance(result, (tuple, list)) else [result]:
        assert tensor.device.type == "meta", f"returned a tensor on {tensor.device}, not on the inputs' device"


@pytest.mark.parametrize("path", _implementations("lab1", "solutions/attention.py"), ids=lambda p: p.stem)
def test_attention_stays_on_the_inputs_device(path):
    module = _load(path)
    meta = torch.device("meta")
    q = torch.empty(2, 3, 5, 4, device=meta)
    k, v = torch.empty(2, 3, 7, 4, device=meta), torch.empty(2, 3, 7, 4, device=meta)
    mask = torch.ones(2, 7, dtype=torch.long, device=meta)
    _run_on_meta(lambda: module.scaled_dot_product_attention(q, k, v, attention_mask=mask, is_causal=True))
    _run_on_meta(lambda: module.repeat_kv(k, 2))
    _run_on_meta(lambda: module.merge_heads(module.split_heads(torch.empty(2, 5, 12, device=meta), 3)))


@pytest.mark.parametrize("function", ["mean_pool", "max_pool"])
@pytest.mark.parametrize("path", _implementations("lab2", "solutions/pooling.py"), ids=lambda p: p.stem)
def test_pooling_stays_on_the_inputs_device(path, function):
    module = _load(path)
    states = torch.empty(2, 7, 4, device="meta")
    mask = torch.ones(2, 7, dtype=torch.long, device="meta")
    _run_on_meta(lambda: getattr(module, function)(states, mask))


def test_meta_catches_a_tensor_made_on_the_cpu():
    def leaky(query):
        return query + torch.ones(query.shape[-1])  # no device=: lies on the CPU

    with pytest.raises(RuntimeError, match="device"):
        leaky(torch.empty(3, 4, device="meta"))
