"""The concept diagrams: every one draws, reads on a phone and carries its words; the checks catch bad ones."""

from __future__ import annotations

import importlib
import xml.etree.ElementTree as ET

import pytest

from book import diagrams
from book.diagrams import Diagram, core, draw

REGISTRY = diagrams.load_all()


@pytest.mark.parametrize("name", sorted(REGISTRY))
def test_every_diagram_draws_and_reads_on_a_phone(name):
    drawn = REGISTRY[name]()
    svg = drawn.svg()  # runs the legibility checks
    root = ET.fromstring(svg)
    assert root.tag.endswith("svg") and root.findall(".//{http://www.w3.org/2000/svg}path"), name
    assert drawn.text_px(core.PHONE_COLUMN_PX) >= core.MIN_TEXT_PX
    html = drawn._repr_html_()
    assert 'class="diagram"' in html and "alt=" in html and drawn.name == name


@pytest.mark.parametrize("name", sorted(REGISTRY))
def test_a_diagram_is_reproducible(name):
    assert REGISTRY[name]().svg() == REGISTRY[name]().svg()


@pytest.mark.parametrize("chapter", diagrams.CHAPTERS)
def test_each_chapter_with_a_diagram_module_has_at_least_three(chapter):
    try:
        importlib.import_module(f"book.diagrams.{chapter}")
    except ModuleNotFoundError:
        pytest.skip(f"no diagrams for {chapter} yet")
    assert sum(name.startswith(f"{chapter}.") for name in REGISTRY) >= 3


def _demo(alt="A row of three boxes joined by arrows, each box naming one step.", width=4.0, font=draw.FONT,
          overlap=False, overflow=False, clipped=False, outside=False):
    fig, ax = draw.canvas(width, 1.2)
    draw.box(ax, 1.0, 0.6, 1.4 if not overflow else 0.3, 0.5, "normalize", "token", fontsize=font)
    if outside:
        draw.label(ax, width + 1.5, 0.6, "a label far outside", fontsize=font)
    if clipped:
        draw.box(ax, width - 0.2, 0.6, 0.8, 0.4, "", "value")
    draw.label(ax, 2.8 if not overlap else 1.0, 0.6, "pre-tokenize", fontsize=font)
    return Diagram(fig, alt=alt, caption="demo", name="demo")


def test_a_good_diagram_passes():
    _demo().check()


@pytest.mark.parametrize("bad, words", [
    (dict(font=6.0), "px high on a phone"),
    (dict(overlap=True), "overlap"),
    (dict(overflow=True), "does not fit in its box"),
    (dict(alt="A diagram."), "alt text"),
    (dict(width=7.5), "wider than the text"),
    (dict(width=5.5, outside=True), "wider than the text"),
    (dict(clipped=True), "beyond the canvas"),
])
def test_the_checks_name_what_makes_a_diagram_illegible(bad, words):
    with pytest.raises(core.IllegibleDiagram, match=words):
        _demo(**bad).check()


def test_a_diagram_function_must_return_a_diagram():
    @diagrams.diagram
    def not_a_diagram():
        return "a string"

    try:
        with pytest.raises(TypeError, match="must return a Diagram"):
            not_a_diagram()
    finally:
        core._REGISTRY.pop("test_diagrams.not_a_diagram", None)


def test_roles_have_one_colour_each_and_tints_keep_text_readable():
    assert len(set(draw.COLORS.values())) == len(draw.COLORS)
    for role in draw.COLORS:
        fill = draw.tint(role)
        r, g, b = (int(fill[i:i + 2], 16) / 255 for i in (1, 3, 5))
        assert 0.2126 * r + 0.7152 * g + 0.0722 * b > 0.6, role  # light enough for near-black text
