"""How long a page takes to read, and whether a chapter follows the course's template.

Measured on the built HTML, as a reader meets it:

* **main path**: what is visible without opening anything. Prose words (inline math counts as
  one word; code, outputs and display equations do not) and visible code lines (the inputs of
  code cells and code blocks). Reading time = words / 200 + code lines / 20 minutes.
* **folded**: what a reader opens on demand: "Going deeper" blocks, answers in dropdowns,
  hidden cell inputs. Same formula.
* **diagrams**: concept diagrams (``figure.diagram``, drawn by :mod:`book.diagrams`) on the main path.
* **numbers per 100 words**: numbers in main-path prose, per 100 main-path words. A number is a
  whitespace-separated word that, stripped of surrounding punctuation, is digits with optional
  separators, sign, ``%``, ``×`` or a k/M/B/G multiplier: ``4.5``, ``1,000``, ``30%``, ``2×``, ``256k``. Numbers inside names
  (``SmolLM2``, ``int8``), inline code, math and citations are not counted.
* **key ideas** (bullets in the "Key ideas" section) and **questions** (exercises in the "Check
  your understanding" section), and whether the page opens with "In this chapter".

A chapter that opens with "In this chapter" is held to the template (:data:`LIMITS`):
:func:`problems` lists where it falls short.

Usage::

    python -m book.reading [_build/html]     # the table for every page of the built book
    python -m book.reading path/to/page.html # one page, with the template's verdict
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from dataclasses import asdict, dataclass
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
WORDS_PER_MINUTE = 200
CODE_LINES_PER_MINUTE = 20
# The template's limits for a chapter (CONTRIBUTING.md): main path, pictures, density, endings.
LIMITS = {
    "max_main_minutes": 30.0,
    "min_diagrams": 3,
    "max_numbers_per_100_words": 3.0,
    "key_ideas": (5, 8),
    "questions": (3, 6),
}
FOLDED = ("details", ".dropdown", ".toggle", ".toggle-hidden")
NUMBER = re.compile(r"^[−\-+~≈]?\d[\d,.]*(?:%|×|x|k|K|M|B|G)?$")
PUNCTUATION = "()[]{}<>,.;:!?\"'“”‘’…—–"


@dataclass
class PageReading:
    """The reading figures of one built page (see the module docstring for each definition)."""

    page: str
    main_words: int
    main_code_lines: int
    folded_words: int
    folded_code_lines: int
    diagrams: int
    numbers: int
    key_ideas: int
    questions: int
    in_this_chapter: bool

    @property
    def main_minutes(self) -> float:
        return self.main_words / WORDS_PER_MINUTE + self.main_code_lines / CODE_LINES_PER_MINUTE

    @property
    def folded_minutes(self) -> float:
        return self.folded_words / WORDS_PER_MINUTE + self.folded_code_lines / CODE_LINES_PER_MINUTE

    @property
    def numbers_per_100_words(self) -> float:
        return 100 * self.numbers / max(self.main_words, 1)

    def problems(self) -> list[str]:
        """Where a chapter falls short of the template (empty when it follows it)."""
        found = []
        if not self.in_this_chapter:
            found.append("does not open with an 'In this chapter' box")
        if self.main_minutes > LIMITS["max_main_minutes"]:
            found.append(f"main path takes {self.main_minutes:.0f} min (at most {LIMITS['max_main_minutes']:.0f})")
        if self.diagrams < LIMITS["min_diagrams"]:
            found.append(f"{self.diagrams} diagrams on the main path (at least {LIMITS['min_diagrams']})")
        if self.numbers_per_100_words > LIMITS["max_numbers_per_100_words"]:
            found.append(f"{self.numbers_per_100_words:.1f} numbers per 100 words "
                         f"(at most {LIMITS['max_numbers_per_100_words']:g}): put results in a table or figure")
        low, high = LIMITS["key_ideas"]
        if not low <= self.key_ideas <= high:
            found.append(f"{self.key_ideas} key ideas ({low} to {high})")
        low, high = LIMITS["questions"]
        if not low <= self.questions <= high:
            found.append(f"{self.questions} questions in 'Check your understanding' ({low} to {high})")
        return found

    def row(self) -> dict:
        return {**asdict(self), "main_minutes": round(self.main_minutes, 1),
                "folded_minutes": round(self.folded_minutes, 1),
                "numbers_per_100_words": round(self.numbers_per_100_words, 2)}


def _text_words(element) -> list[str]:
    return element.get_text(" ", strip=True).split()


def _code_lines(element) -> int:
    lines = element.get_text().rstrip("\n").split("\n")
    return sum(1 for line in lines if line.strip())


def _is_folded(element) -> bool:
    for parent in [element, *element.parents]:
        if parent.name == "details":
            return True
        classes = parent.get("class") or []
        if {"dropdown", "toggle", "toggle-hidden"} & set(classes):
            return True
    return False


def _section(article, title: str):
    for heading in article.find_all(["h2", "h3"]):
        if heading.get_text(" ", strip=True).rstrip("#").strip().lower() == title.lower():
            return heading.parent
    return None


def _is_number(word: str) -> bool:
    return bool(NUMBER.match(word.strip(PUNCTUATION)))


def measure(html: str, page: str = "") -> PageReading:
    """The reading figures of one page's HTML."""
    from bs4 import BeautifulSoup

    soup = BeautifulSoup(html, "html.parser")
    article = soup.find("article") or soup
    diagrams = sum(1 for figure in article.select("figure.diagram") if not _is_folded(figure))
    # Outputs are looked at, not read as prose; display equations are not words.
    for junk in article.select("script, style, nav, a.headerlink, div.cell_output, div.math, mjx-container"):
        junk.decompose()
    code_main = code_folded = 0
    for pre in article.find_all("pre"):
        lines = _code_lines(pre)
        if _is_folded(pre):
            code_folded += lines
        else:
            code_main += lines
        pre.decompose()
    for inline in article.select("span.math, .math"):
        inline.replace_with(" x ")  # inline math: one word, not a number
    numbers = 0
    main_words = folded_words = 0
    for element in article.find_all(string=True):
        if not element.strip():
            continue
        words = element.split()
        if _is_folded(element.parent):
            folded_words += len(words)
            continue
        main_words += len(words)
        if element.find_parent(["code", "kbd"]) or _is_citation(element):
            continue
        numbers += sum(_is_number(word) for word in words)
    key_ideas_section = _section(article, "Key ideas")
    key_ideas = len(key_ideas_section.find_all("li")) if key_ideas_section else 0
    questions_section = _section(article, "Check your understanding")
    questions = len(questions_section.select("div.exercise")) if questions_section else 0
    first_box = article.select_one("div.admonition p.admonition-title")
    in_this_chapter = bool(first_box and first_box.get_text(strip=True).lower() == "in this chapter")
    return PageReading(page, main_words, code_main, folded_words, code_folded, diagrams, numbers,
                       key_ideas, questions, in_this_chapter)


def _is_citation(element) -> bool:
    for parent in element.parents:
        if parent.name == "a" and "references.html#" in (parent.get("href") or "") and "id" in (parent.get("href") or ""):
            return True
        if parent.name == "article":
            return False
    return False


def toc_pages(root: Path = ROOT) -> list[str]:
    """The book's pages in reading order (``chapters/intro``)."""
    toc = yaml.safe_load((root / "_toc.yml").read_text())
    return [toc["root"]] + [c["file"] for part in toc["parts"] for c in part["chapters"]]


def chapter_pages(root: Path = ROOT) -> list[str]:
    """The pages of the part of the book that teaches the model ("Inside a language model")."""
    toc = yaml.safe_load((root / "_toc.yml").read_text())
    part = next(p for p in toc["parts"] if p["caption"] == "Inside a language model")
    return [c["file"] for c in part["chapters"]]


def report(html_dir: Path, root: Path = ROOT) -> list[PageReading]:
    """The reading figures of every page of the built book in ``html_dir``."""
    html_dir = Path(html_dir)
    readings = []
    for page in toc_pages(root):
        path = html_dir / f"{page}.html"
        if path.is_file():
            readings.append(measure(path.read_text(encoding="utf-8"), page))
    return readings


def table(readings: list[PageReading]) -> str:
    """The report as a Markdown table, with the template's verdict for each chapter."""
    head = ("| page | main min | folded min | diagrams | numbers/100 words | key ideas | questions | template |\n"
            "|---|---:|---:|---:|---:|---:|---:|---|")
    rows = []
    for r in readings:
        verdict = "" if not r.in_this_chapter else ("ok" if not r.problems() else "; ".join(r.problems()))
        rows.append(f"| {r.page} | {r.main_minutes:.1f} | {r.folded_minutes:.1f} | {r.diagrams} | "
                    f"{r.numbers_per_100_words:.1f} | {r.key_ideas} | {r.questions} | {verdict} |")
    return "\n".join([head, *rows])


def write(html_dir: Path, destination: Path, root: Path = ROOT) -> list[PageReading]:
    """Measure the built book and write the report as JSON and Markdown beside it; returns the readings."""
    readings = report(html_dir, root)
    destination = Path(destination)
    destination.with_suffix(".json").write_text(json.dumps([r.row() for r in readings], indent=2))
    destination.with_suffix(".md").write_text(table(readings) + "\n")
    return readings


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("html", nargs="?", type=Path, default=ROOT / "_build" / "html")
    args = parser.parse_args(argv)
    if args.html.is_file():
        measured = measure(args.html.read_text(encoding="utf-8"), args.html.stem)
        print(table([measured]))
        for problem in measured.problems():
            print(f"- {problem}")
        return 0
    if not (args.html / "index.html").is_file() and not any(args.html.glob("chapters/*.html")):
        print(f"No built book in {args.html}: run `make book` first.", file=sys.stderr)
        return 2
    print(table(report(args.html)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
