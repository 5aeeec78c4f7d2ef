"""Shared fixtures: a hermetic environment for every test, and one real SmolLM2 conversion per session."""

from __future__ import annotations

import pytest

from book import models


@pytest.fixture(autouse=True)
def _hermetic_env(monkeypatch):
    """No test sees the developer's profile or corpus choice, and none may reach the hub."""
    for name in (models.PROFILE_ENV, "LLM_INTERNALS_CORPUS"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")


@pytest.fixture(scope="session")
def converted_cache(tmp_path_factory):
    """A cache folder holding a real conversion of the packaged SmolLM2 GGUF file (done once, ~30 s)."""
    from book.convert import converted_checkpoint

    cache = tmp_path_factory.mktemp("llm-internals-cache")
    converted_checkpoint(models.gguf_path(), cache / "smollm2-135m-instruct")
    return cache
