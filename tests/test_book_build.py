"""The whole book, built from a clean checkout with every cell executed (slow: `make test-book`)."""

from __future__ import annotations

import subprocess
import textwrap

import pytest

from book import ROOT, build, notebooks
from tests.conftest import toc_pages

pytestmark = pytest.mark.book_build


def test_every_page_of_the_toc_is_built(built_book):
    missing = [page for page in toc_pages() if not (built_book / f"{page}.html").is_file()]
    assert missing == []


@pytest.mark.parametrize("page", [p.relative_to(ROOT).with_suffix("").as_posix() for p in notebooks.paired_pages()])
def test_every_executable_page_shows_outputs(built_book, page):
    html = (built_book / f"{page}.html").read_text()
    assert "cell_output" in html, f"{page} has no executed output"
    assert "Traceback" not in html, f"{page} shows a traceback"


def test_environment_report_and_glued_numbers_are_rendered(built_book):
    html = (built_book / "chapters" / "setup.html").read_text()
    assert "Where this page was executed" in html
    assert "smollm2-135m-instruct" in html
    assert "{glue" not in html and "glue:" not in html


def test_execution_statistics_page_lists_the_pages(built_book):
    html = (built_book / "chapters" / "execution.html").read_text()
    for page in notebooks.paired_pages():
        assert page.stem in html


def test_a_failing_cell_fails_the_build(tmp_path):
    """raise_on_error is really on: a tiny book with one raising cell must not build."""
    (tmp_path / "_config.yml").write_text((ROOT / "_config.yml").read_text().replace("references.bib", "refs.bib"))
    (tmp_path / "refs.bib").write_text("")
    (tmp_path / "_toc.yml").write_text("format: jb-book\nroot: page\n")
    (tmp_path / "page.md").write_text(textwrap.dedent("""\
        ---
        kernelspec: {name: python3, display_name: Python 3}
        jupytext: {text_representation: {format_name: myst}}
        ---
        # A page that breaks

        ```{code-cell} ipython3
        raise RuntimeError("this cell fails on purpose")
        ```
        """))
    result = subprocess.run(build.JUPYTER_BOOK + ["build", str(tmp_path)],
                            capture_output=True, text=True)
    assert result.returncode != 0
    assert "this cell fails on purpose" in result.stdout + result.stderr
