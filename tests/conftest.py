"""Shared fixtures: a hermetic environment for every test, and one real SmolLM2 conversion per session."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import yaml

from book import ROOT, build, models


def toc_pages() -> list[str]:
    """The book's pages in reading order, as paths without suffix (``chapters/intro``)."""
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    return [toc["root"]] + [c["file"] for part in toc["parts"] for c in part["chapters"]]


@pytest.fixture(autouse=True)
def _hermetic_env(monkeypatch, tmp_path_factory):
    """No test sees the developer's profile, corpus choice or course secrets, and none may reach the hub."""
    for name in (models.PROFILE_ENV, "LLM_INTERNALS_CORPUS", "LLM_GRADE_SECRET_FILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("LLM_GRADE_HOME", str(tmp_path_factory.mktemp("llm-grade-home")))  # course secrets go here


@pytest.fixture(scope="session")
def converted_cache(tmp_path_factory):
    """A cache folder holding a real conversion of the packaged SmolLM2 GGUF file (done once, ~30 s)."""
    from book.convert import converted_checkpoint

    cache = tmp_path_factory.mktemp("llm-internals-cache")
    converted_checkpoint(models.gguf_path(), cache / "smollm2-135m-instruct")
    return cache


@pytest.fixture(scope="session")
def built_book(tmp_path_factory):
    """The whole book built once from a fresh copy of the sources (no _build, no cache): its html folder.

    ``LLM_INTERNALS_BUILT_BOOK=_build/html`` reuses a build you already have (quick iteration on
    the site tests); CI never sets it.
    """
    reuse = os.environ.get("LLM_INTERNALS_BUILT_BOOK")
    if reuse:
        return Path(reuse).resolve()
    copy = tmp_path_factory.mktemp("clean-checkout")
    build._copy_sources(ROOT, copy)
    assert not (copy / "_build").exists()
    assert build.build(copy) == 0, "the book build failed: a cell raised or Sphinx stopped (see the log above)"
    return copy / "_build" / "html"


@pytest.fixture(scope="session")
def audited(tmp_path_factory):
    """The whole catalogue graded once, and the labs' public checks run on its correct and faulty entries: rows by entry
    name, the protections of the run, and its workspace (tests/test_autograder_catalogue.py, tests/test_lab_agreement.py)."""
    from autograder import audit
    from autograder.grade import Grader

    workspace = tmp_path_factory.mktemp("catalogue")
    with audit.planted_secrets(), Grader("all", audit.AUDIT_LIMITS) as grader:
        rows = audit.audit(audit.load(), grader, workspace, jobs=2, public=True)
        protections = grader.protections
    return {row.entry.name: row for row in rows}, protections, workspace
