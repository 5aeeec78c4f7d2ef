"""The one-time GGUF conversion: a real checkpoint that loads, reused until its source changes."""

from __future__ import annotations

import json

import pytest
import torch

from book import convert, models


@pytest.fixture
def checkpoint(converted_cache):
    return converted_cache / "smollm2-135m-instruct"


def test_conversion_writes_a_plain_checkpoint_with_chat_template(checkpoint):
    assert (checkpoint / "model.safetensors").is_file()
    config = json.loads((checkpoint / "config.json").read_text())
    assert config["model_type"] == "llama" and "quantization_config" not in config
    assert (checkpoint / "chat_template.jinja").read_text().count("<|im_start|>") >= 1
    marker = json.loads((checkpoint / convert.MARKER).read_text())
    assert marker == convert.source_record(models.gguf_path())


def test_converted_model_answers_a_question(checkpoint):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(checkpoint)
    model = AutoModelForCausalLM.from_pretrained(checkpoint).eval()
    messages = [{"role": "user", "content": "What is the capital of France?"}]
    inputs = tokenizer.apply_chat_template(messages, add_generation_prompt=True, return_tensors="pt", return_dict=True)
    with torch.no_grad():
        output = model.generate(**inputs, max_new_tokens=12, do_sample=False)
    assert "Paris" in tokenizer.decode(output[0, inputs["input_ids"].shape[1]:])


def test_second_resolution_reuses_the_conversion(monkeypatch, converted_cache, checkpoint):
    monkeypatch.setenv(models.CACHE_ENV, str(converted_cache))
    before = (checkpoint / "model.safetensors").stat().st_mtime_ns

    def must_not_convert(*args):
        raise AssertionError("the checkpoint was converted again although it is current")

    monkeypatch.setattr(convert, "convert", must_not_convert)
    assert models.resolve("decoder").location == str(checkpoint)
    assert (checkpoint / "model.safetensors").stat().st_mtime_ns == before


@pytest.mark.parametrize("damage", ["other source", "no marker", "unreadable marker", "half written"])
def test_stale_or_incomplete_conversion_is_redone(tmp_path, monkeypatch, checkpoint, damage):
    import shutil

    copy = tmp_path / "smollm2-135m-instruct"
    shutil.copytree(checkpoint, copy)
    marker = copy / convert.MARKER
    if damage == "other source":
        marker.write_text(json.dumps({**json.loads(marker.read_text()), "sha256": "0" * 64}))
    elif damage == "no marker":
        marker.unlink()
    elif damage == "unreadable marker":
        marker.write_text("{not json")
    else:
        (copy / "config.json").unlink()
    calls = []
    monkeypatch.setattr(convert, "convert", lambda source, out: calls.append((source, out)))
    convert.converted_checkpoint(models.gguf_path(), copy)
    assert calls == [(models.gguf_path(), copy)]


def test_current_conversion_is_recognised(checkpoint):
    assert convert.is_current(checkpoint, convert.source_record(models.gguf_path()))
