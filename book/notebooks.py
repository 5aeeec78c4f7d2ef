"""The MyST pages and their paired notebooks: the ``.md`` is the source, the ``.ipynb`` is generated.

The book is built from the ``.md`` files (``_config.yml`` excludes ``*.ipynb``); the committed
``.ipynb`` beside each one is what the "Open in Colab" button and the download button serve.
:func:`sync` regenerates the notebooks and :func:`out_of_sync` (run by the tests) lists the
pages whose notebook no longer matches its source.

Usage: ``python -m book.notebooks`` (what ``make sync`` runs).
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
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


def _cells(notebook) -> list[tuple[str, str]]:
    return [(cell.cell_type, cell.source.strip()) for cell in notebook.cells]


def out_of_sync(root: Path = ROOT) -> list[str]:
    """Pages whose ``.ipynb`` is missing or whose cells differ from the ``.md`` source."""
    import jupytext

    stale = []
    for page in paired_pages(root):
        notebook = page.with_suffix(".ipynb")
        if not notebook.is_file() or _cells(jupytext.read(page)) != _cells(jupytext.read(notebook)):
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
        notebook = jupytext.read(page)
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
