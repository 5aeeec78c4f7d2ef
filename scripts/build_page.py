"""Build one page of the book on its own, executing it, to check it while writing it.

Copies the book's configuration and bibliography with the given pages into a scratch folder,
builds a small book whose root is the first page, and prints where the HTML is and how long
each page took to execute. Exits non-zero if a cell fails (the same strictness as the book).

Usage: python scripts/build_page.py chapters/attention.md [more pages...] [--out /tmp/pages]
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
from pathlib import Path

from book import ROOT
from book.build import JUPYTER_BOOK


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("pages", nargs="+", type=Path)
    parser.add_argument("--out", type=Path, default=Path("/tmp/llm-internals-pages"))
    args = parser.parse_args()
    pages = [page.resolve() for page in args.pages]
    scratch = args.out / pages[0].stem
    scratch.mkdir(parents=True, exist_ok=True)
    for name in ("_config.yml", "references.bib"):
        shutil.copy(ROOT / name, scratch / name)
    shutil.copytree(ROOT / "_static", scratch / "_static", dirs_exist_ok=True)
    chapters = []
    for page in pages:
        relative = page.relative_to(ROOT)
        (scratch / relative).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(page, scratch / relative)
        chapters.append(relative.with_suffix("").as_posix())
    toc = {"format": "jb-book", "root": chapters[0]}
    if chapters[1:]:
        toc["chapters"] = [{"file": c} for c in chapters[1:]]
    (scratch / "_toc.yml").write_text(json.dumps(toc))
    code = subprocess.call(JUPYTER_BOOK + ["build", str(scratch)], cwd=ROOT)
    print(f"\nHTML: {scratch / '_build' / 'html' / (chapters[0] + '.html')}")
    return code


if __name__ == "__main__":
    sys.exit(main())
