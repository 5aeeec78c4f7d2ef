"""The MyST pages and their paired notebooks: the ``.md`` is the source, the ``.ipynb`` is generated.

The book is built from the ``.md`` files (``_config.yml`` excludes ``*.ipynb``); the committed
``.ipynb`` beside each one is what the "Open in Colab" button and the download button serve.
A page links to another with a relative Markdown link (``[the attention chapter](../chapters/attention.md)``),
which Jupyter Book turns into a link between the built pages; Colab cannot follow it, so in the
generated notebook such a link points to the published page instead (``html.baseurl`` in ``_config.yml``).
:func:`sync` regenerates the notebooks and :func:`out_of_sync` (run by the tests) lists the
pages whose notebook no longer matches its source.

Usage: ``python -m book.notebooks`` (what ``make sync`` runs).
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

from book import ROOT

PAGE_FOLDERS = ("chapters", "labs")


def paired_pages(root: Path = ROOT) -> list[Path]:
    """Every MyST page with a jupytext header (the executable ones), in a stable order."""
    pages = []
    for folder in PAGE_FOLDERS:
        for page in sorted((root / folder).glob("*.md")):
            head = page.read_text(encoding="utf-8")[:600]
            if head.startswith("---") and "jupytext:" in head:
                pages.append(page)
    return pages


CODE_CELL = re.compile(r"^```\{code-cell\}[^\n]*\n(.*?)^```", re.MULTILINE | re.DOTALL)
PAGE_LINK = re.compile(r"\]\(((?:\.\./)*[\w/-]+)\.md(#[\w-]+)?\)")


def code_cells(page: Path) -> list[str]:
    """The sources of a MyST page's code cells (their ``:tags:`` lines left out)."""
    cells = CODE_CELL.findall(Path(page).read_text(encoding="utf-8"))
    return ["\n".join(line for line in cell.splitlines() if not line.startswith(":")) for cell in cells]


def published_url(root: Path = ROOT) -> str:
    """Where the built book is published (``html.baseurl`` in ``_config.yml``), ending in a slash."""
    import yaml

    config = yaml.safe_load((Path(root) / "_config.yml").read_text())
    return config["html"]["baseurl"].rstrip("/") + "/"


def colab_links(text: str, page: Path, root: Path = ROOT) -> str:
    """``text`` with each relative link to another page made absolute: the published HTML, which Colab can open."""
    folder = Path(page).resolve().parent

    def absolute(match):
        target = (folder / f"{match.group(1)}.html").resolve().relative_to(Path(root).resolve())
        return f"]({published_url(root)}{target.as_posix()}{match.group(2) or ''})"

    return PAGE_LINK.sub(absolute, text)


def _for_colab(notebook, page: Path, root: Path):
    for cell in notebook.cells:
        if cell.cell_type == "markdown":
            cell.source = colab_links(cell.source, page, root)
    return notebook


def _cells(notebook) -> list[tuple[str, str]]:
    return [(cell.cell_type, cell.source.strip()) for cell in notebook.cells]


def out_of_sync(root: Path = ROOT) -> list[str]:
    """Pages whose ``.ipynb`` is missing or whose cells differ from the ``.md`` source."""
    import jupytext

    stale = []
    for page in paired_pages(root):
        notebook = page.with_suffix(".ipynb")
        expected = _cells(_for_colab(jupytext.read(page), page, root))
        if not notebook.is_file() or expected != _cells(jupytext.read(notebook)):
            stale.append(str(page.relative_to(root)))
    return stale


def sync(root: Path = ROOT) -> list[Path]:
    """Write the ``.ipynb`` of every page whose notebook is missing or stale (outputs are not kept: Colab runs them)."""
    import jupytext

    written = []
    stale = set(out_of_sync(root))
    for page in paired_pages(root):
        if str(page.relative_to(root)) not in stale:
            continue  # unchanged: leave the file (and its diff) alone
        notebook = _for_colab(jupytext.read(page), page, root)
        notebook.metadata.setdefault("jupytext", {})["formats"] = "ipynb,md:myst"
        for index, cell in enumerate(notebook.cells):
            cell.id = f"cell-{index:03d}"  # stable ids: regenerating a notebook changes only what changed
        jupytext.write(notebook, page.with_suffix(".ipynb"))
        written.append(page.with_suffix(".ipynb"))
    return written


if __name__ == "__main__":
    for path in sync():
        print(f"wrote {path.relative_to(ROOT)}")
    sys.exit(0)
