"""The book's configuration, the stale-output guard around the execution cache, and the paired notebooks."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest
import yaml

from book import ROOT, build, models, notebooks


@pytest.fixture(scope="module")
def config():
    return yaml.safe_load((ROOT / "_config.yml").read_text())


def test_execution_is_cached_strict_and_patient(config):
    execute = config["execute"]
    assert execute["execute_notebooks"] == "cache"
    assert execute["raise_on_error"] is True and execute["allow_errors"] is False
    assert execute["timeout"] >= 300


def test_build_reads_markdown_not_the_paired_notebooks(config):
    assert "**.ipynb" in config["exclude_patterns"]


def test_colab_launch_buttons_and_one_repository_url(config):
    assert config["launch_buttons"]["colab_url"] == "https://colab.research.google.com"
    url = config["repository"]["url"]
    assert url.startswith("https://github.com/")
    for page in notebooks.paired_pages():
        for named in re.findall(r"git\+(https://github\.com/[\w./-]+)", page.read_text()):
            assert named == url, f"{page.name} installs from {named}, but _config.yml names {url}"


def test_bibliography_and_toc_pages_exist(config):
    assert (ROOT / config["bibtex_bibfiles"][0]).is_file()
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    files = [toc["root"]] + [c["file"] for part in toc["parts"] for c in part["chapters"]]
    missing = [f for f in files if not (ROOT / f"{f}.md").is_file()]
    assert missing == []
    assert "{nb-exec-table}" in "".join((ROOT / f"{f}.md").read_text() for f in files)


def test_paired_notebooks_match_their_markdown():
    assert notebooks.paired_pages(), "no executable pages found"
    assert notebooks.out_of_sync() == [], "run `make sync` to regenerate the notebooks"


def test_out_of_sync_notebook_is_detected(tmp_path):
    (tmp_path / "chapters").mkdir()
    page = ROOT / "chapters" / "intro.md"
    shutil.copy(page, tmp_path / "chapters" / "intro.md")
    assert notebooks.out_of_sync(tmp_path) == ["chapters/intro.md"]  # no notebook yet
    notebooks.sync(tmp_path)
    assert notebooks.out_of_sync(tmp_path) == []
    edited = page.read_text().replace("import book\n", "import book  # edited\n", 1)
    (tmp_path / "chapters" / "intro.md").write_text(edited)
    assert notebooks.out_of_sync(tmp_path) == ["chapters/intro.md"]


# --- the stale-output guard -------------------------------------------------------------


@pytest.fixture
def fake_root(tmp_path):
    """A minimal checkout: a runtime package (book/) and an instructors' one (solutions/, installed from
    instructor/pyproject.toml), whose changes must re-execute the pages; tests/ is installed by neither."""
    (tmp_path / "pyproject.toml").write_text('[tool.setuptools.packages.find]\ninclude = ["book*"]\n')
    (tmp_path / "instructor").mkdir()
    (tmp_path / "instructor" / "pyproject.toml").write_text(
        '[tool.setuptools]\npackage-dir = { "" = ".." }\npackages = ["solutions"]\n')
    for name in ("book", "solutions", "tests"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "__init__.py").write_text("")
        (tmp_path / name / "code.py").write_text("import numpy\nVALUE = 1\n")
    return tmp_path


def test_the_fingerprint_covers_every_installed_package_and_what_they_import(fake_root):
    assert build.first_party_packages(fake_root) == ["book", "solutions"]
    assert "numpy" in build.library_versions(fake_root)
    # the real checkout: the grader the instructors' page runs, and the libraries the pages import
    assert {"book", "autograder", "solutions"} <= set(build.first_party_packages(ROOT))
    assert {"torch", "transformers", "myst-nb"} <= set(build.library_versions(ROOT))


def test_a_change_to_an_uninstalled_folder_keeps_the_cache(fake_root):
    before = build.fingerprint(fake_root)
    (fake_root / "tests" / "code.py").write_text("VALUE = 2\n")
    assert build.fingerprint(fake_root) == before


def _cached_build(build_dir: Path) -> None:
    for folder in (".jupyter_cache", ".doctrees", "html"):
        (build_dir / folder).mkdir(parents=True, exist_ok=True)
        (build_dir / folder / "stale-output").write_text("from the last build")


def _change_code(root, monkeypatch):
    (root / "solutions" / "code.py").write_text("VALUE = 2\n")


def _change_corpus(root, monkeypatch):
    mine = root / "mine.csv"
    mine.write_text("text\nan instructor's own document\n")
    monkeypatch.setenv("LLM_INTERNALS_CORPUS", str(mine))


def _change_profile(root, monkeypatch):
    monkeypatch.setenv(models.PROFILE_ENV, "large")


def _change_library(root, monkeypatch):
    real = build.metadata.version
    monkeypatch.setattr(build.metadata, "version", lambda name: "99.0" if name == "numpy" else real(name))


@pytest.mark.parametrize(
    "change, part",
    [(_change_code, "code"), (_change_corpus, "corpus"), (_change_profile, "profile"), (_change_library, "versions")],
)
def test_a_change_outside_the_cells_clears_the_execution_cache(fake_root, monkeypatch, change, part):
    build_dir = fake_root / "_build"
    assert build.invalidate_if_stale(build_dir, build.fingerprint(fake_root)) == []
    _cached_build(build_dir)
    change(fake_root, monkeypatch)
    assert build.invalidate_if_stale(build_dir, build.fingerprint(fake_root)) == [part]
    assert not any((build_dir / f).exists() for f in (".jupyter_cache", ".doctrees", "html"))


def test_no_change_keeps_the_execution_cache(fake_root):
    build_dir = fake_root / "_build"
    build.invalidate_if_stale(build_dir, build.fingerprint(fake_root))
    _cached_build(build_dir)
    assert build.invalidate_if_stale(build_dir, build.fingerprint(fake_root)) == []
    assert (build_dir / ".jupyter_cache" / "stale-output").is_file()


def test_a_cache_without_fingerprint_is_not_trusted(fake_root):
    build_dir = fake_root / "_build"
    _cached_build(build_dir)
    assert build.invalidate_if_stale(build_dir, build.fingerprint(fake_root)) != []
    assert not (build_dir / ".jupyter_cache").exists()


def test_a_copy_of_the_sources_can_find_the_installed_mathjax(tmp_path):
    """The clean-checkout build (make test-book, make bench-build) reads MathJax from the repository's node_modules."""
    from book import sphinx_site

    if not (ROOT / sphinx_site.BUNDLE / "tex-chtml.js").is_file():
        pytest.fail("MathJax is not installed in this checkout: run `make install` (npm ci)")
    build._copy_sources(ROOT, tmp_path)
    assert (tmp_path / "_toc.yml").is_file() and not (tmp_path / ".venv").exists()
    assert (tmp_path / sphinx_site.BUNDLE / "tex-chtml.js").is_file()


# The longest code line a desktop reader sees whole: a code box of the built site holds 90
# characters at 1280 px (_static/course.css); longer lines hide their end behind a scroll bar.
CODE_LINE_LIMIT = 90


@pytest.mark.parametrize("page", notebooks.paired_pages(), ids=lambda p: p.relative_to(ROOT).as_posix())
def test_code_cells_fit_the_page_width(page):
    import jupytext

    long = [f"cell {index}: {line.strip()[:50]}... ({len(line)} characters)"
            for index, cell in enumerate(jupytext.read(page).cells) if cell.cell_type == "code"
            for line in cell.source.splitlines() if len(line) > CODE_LINE_LIMIT]
    assert long == [], f"lines longer than {CODE_LINE_LIMIT} characters: break them"


GLOSSARY = ROOT / "chapters" / "glossary.md"


def _glossary_terms() -> set[str]:
    block = GLOSSARY.read_text().split("```{glossary}", 1)[1].split("```", 1)[0]
    return {line.strip().lower() for line in block.splitlines() if line and not line.startswith((" ", "\t"))}


def _term_links() -> dict[str, list[str]]:
    """Each {term} role's target (lowercased) -> the pages that use it."""
    uses: dict[str, list[str]] = {}
    for page in notebooks.paired_pages():
        for match in re.finditer(r"\{term\}`([^`]+)`", page.read_text()):
            text = match.group(1)
            target = re.search(r"<([^>]+)>\s*$", text)  # {term}`shown text <glossary term>`
            uses.setdefault((target.group(1) if target else text).strip().lower(), []).append(page.stem)
    return uses


def test_every_glossary_link_names_a_defined_term():
    undefined = {term: pages for term, pages in _term_links().items() if term not in _glossary_terms()}
    assert undefined == {}, "add these terms to chapters/glossary.md or fix the links"


def test_every_glossary_term_is_linked_from_a_chapter():
    unlinked = sorted(_glossary_terms() - set(_term_links()))
    assert unlinked == [], "link each term where a chapter first uses it: {term}`...`"
