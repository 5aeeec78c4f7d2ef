"""The :class:`Diagram` a chapter shows, the registry of all diagrams, and their legibility checks.

A diagram is a matplotlib figure (made with :mod:`book.diagrams.draw`) plus the words a reader
who cannot see it needs: the alt text, and a caption. It renders as an SVG image, embedded in
the page (a ``data:`` URI, so the page and a Colab notebook need no image file), with the text
drawn as paths so that it looks the same in every browser.

Before it is shown, a diagram checks that a student can read it on a phone:

* every label is at least :data:`MIN_TEXT_PX` CSS pixels high once the image is scaled down to
  the text column of a 390 px wide screen (:data:`PHONE_COLUMN_PX`);
* no two labels overlap, and a label drawn in a box stays inside it;
* the alt text says something (at least :data:`MIN_ALT_WORDS` words).

A failed check raises :class:`IllegibleDiagram` naming the label and the fix, so an unreadable
diagram fails the book build instead of reaching a reader.
"""

from __future__ import annotations

import base64
import functools
import html
import io
import re
from dataclasses import dataclass, field
from typing import Callable

# The text column of the book at a 390 px phone width, in CSS pixels (measured in Chromium on the
# built site; tests/test_site.py checks it still holds).
PHONE_COLUMN_PX = 340
# The widest a diagram may be drawn, in inches (576 CSS px: it fits the column at a 1280 px desktop).
MAX_WIDTH_IN = 6.0
# The smallest a label may appear on a phone, in CSS pixels (the cap height then stays legible).
MIN_TEXT_PX = 9.0
MIN_ALT_WORDS = 8
PX_PER_PT = 96 / 72  # CSS pixels per typographic point; an SVG's width is given in points
# Two labels may touch (their boxes include a little white space) but not overlap by more.
OVERLAP_TOLERANCE_PX = 1.5

_REGISTRY: dict[str, Callable[..., "Diagram"]] = {}


class IllegibleDiagram(ValueError):
    """A diagram a reader could not read: the message says which label and how to fix it."""


@dataclass
class Diagram:
    """One concept diagram: the figure, its alt text and caption.

    Shows itself in a notebook (``_repr_html_``) as a ``<figure class="diagram">`` holding an
    ``<img>`` with the alt text, so Jupyter, Colab and the built book show the same thing.
    """

    figure: object  # matplotlib.figure.Figure
    alt: str
    caption: str = ""
    name: str = ""
    _svg: str | None = field(default=None, repr=False)

    # -- rendering -------------------------------------------------------------------------
    def svg(self) -> str:
        """The diagram as SVG text (rendered once, after the legibility checks)."""
        if self._svg is None:
            self.check()
            import matplotlib as mpl

            buffer = io.StringIO()
            with mpl.rc_context({"svg.hashsalt": f"llm-internals-{self.name}", "svg.fonttype": "path"}):
                self.figure.savefig(buffer, format="svg", bbox_inches="tight", pad_inches=0.04,
                                    metadata={"Date": None}, facecolor="white")
            self._svg = buffer.getvalue()
        return self._svg

    @property
    def size_pt(self) -> tuple[float, float]:
        """(width, height) of the rendered SVG in points."""
        match = re.search(r'<svg[^>]*\swidth="([\d.]+)pt"[^>]*\sheight="([\d.]+)pt"', self.svg())
        if not match:
            raise IllegibleDiagram(f"{self.name}: the SVG has no width and height in points")
        return float(match.group(1)), float(match.group(2))

    @property
    def min_font_pt(self) -> float:
        return min(text.get_fontsize() for text in _labels(self.figure))

    def text_px(self, column_px: float) -> float:
        """The height in CSS px of the smallest label once the image fits a ``column_px`` column."""
        width_px = self.size_pt[0] * PX_PER_PT
        return self.min_font_pt * PX_PER_PT * min(1.0, column_px / width_px)

    def _repr_html_(self) -> str:
        width_pt, height_pt = self.size_pt
        data = base64.b64encode(self.svg().encode()).decode()
        caption = f"<figcaption>{html.escape(self.caption)}</figcaption>" if self.caption else ""
        return (
            f'<figure class="diagram" id="diagram-{html.escape(self.name.replace(".", "-"))}">'
            f'<img class="diagram" src="data:image/svg+xml;base64,{data}" alt="{html.escape(self.alt)}" '
            f'width="{width_pt * PX_PER_PT:.0f}" height="{height_pt * PX_PER_PT:.0f}" '
            f'data-min-font-pt="{self.min_font_pt:g}">{caption}</figure>'
        )

    def __repr__(self) -> str:
        return f"Diagram {self.name}: {self.alt}"

    # -- legibility ------------------------------------------------------------------------
    def check(self) -> None:
        """Raise :class:`IllegibleDiagram` if a reader could not read this diagram on a phone."""
        figure = self.figure
        if len(self.alt.split()) < MIN_ALT_WORDS:
            raise IllegibleDiagram(
                f"{self.name}: the alt text {self.alt!r} is too short to stand in for the picture; "
                f"describe what the diagram shows in at least {MIN_ALT_WORDS} words.")
        figure.draw_without_rendering()
        renderer = figure.canvas.get_renderer()
        # The SVG is cut to what is drawn (bbox_inches="tight"): a label outside the canvas widens it.
        width_in = max(figure.get_figwidth(), figure.get_tightbbox(renderer).width)
        if width_in > MAX_WIDTH_IN + 1e-6:
            raise IllegibleDiagram(
                f"{self.name}: the diagram is {width_in:.2f} in wide as drawn, wider than the text "
                f"column ({MAX_WIDTH_IN} in); draw it narrower or stack its parts vertically.")
        labels = _labels(figure)
        if not labels:
            raise IllegibleDiagram(f"{self.name}: the diagram has no labels; name its parts in the course notation.")
        # Smallest label on a phone, judged on the figure's own width (the SVG's is checked by the browser tests).
        scale = min(1.0, PHONE_COLUMN_PX / (width_in * 96))
        for text in labels:
            px = text.get_fontsize() * PX_PER_PT * scale
            if px < MIN_TEXT_PX:
                raise IllegibleDiagram(
                    f"{self.name}: the label {text.get_text()!r} is {text.get_fontsize():g} pt, "
                    f"{px:.1f} px high on a phone (at least {MIN_TEXT_PX} px needed); use a larger "
                    f"font or draw the figure narrower than {width_in:.2f} in.")
        for axes in figure.axes:
            if axes.axison:
                continue  # a data plot inside a diagram clips to its axes on purpose
            frame = axes.get_window_extent(renderer)
            for patch in axes.patches:
                if not patch.get_visible() or not patch.get_clip_on():
                    continue
                extent = patch.get_window_extent(renderer)
                if (extent.x0 < frame.x0 - 1 or extent.x1 > frame.x1 + 1
                        or extent.y0 < frame.y0 - 1 or extent.y1 > frame.y1 + 1):
                    raise IllegibleDiagram(
                        f"{self.name}: a shape reaches beyond the canvas and would be cut off "
                        f"({extent.x0:.0f}..{extent.x1:.0f} x {extent.y0:.0f}..{extent.y1:.0f} px on a "
                        f"{frame.width:.0f} x {frame.height:.0f} px canvas); make the canvas larger.")
        extents = [(text, text.get_window_extent(renderer)) for text in labels]
        for text, box in getattr(figure, "course_boxes", []):
            inner = text.get_window_extent(renderer)
            outer = box.get_window_extent(renderer)
            if (inner.x0 < outer.x0 - 0.5 or inner.x1 > outer.x1 + 0.5
                    or inner.y0 < outer.y0 - 0.5 or inner.y1 > outer.y1 + 0.5):
                raise IllegibleDiagram(
                    f"{self.name}: the label {text.get_text()!r} does not fit in its box; make the "
                    f"box larger or the label shorter.")
        for i, (first, a) in enumerate(extents):
            for second, b in extents[i + 1:]:
                dx = min(a.x1, b.x1) - max(a.x0, b.x0)
                dy = min(a.y1, b.y1) - max(a.y0, b.y0)
                if dx > OVERLAP_TOLERANCE_PX and dy > OVERLAP_TOLERANCE_PX:
                    raise IllegibleDiagram(
                        f"{self.name}: the labels {first.get_text()!r} and {second.get_text()!r} "
                        f"overlap; move one of them.")


def _labels(figure) -> list:
    """The visible, non-empty text of a figure: what a reader has to read."""
    texts = list(figure.texts)
    for axes in figure.axes:
        texts += list(axes.texts)
        texts += [axes.title, axes._left_title, axes._right_title]
        if axes.axison:
            texts += [axes.xaxis.label, axes.yaxis.label]
            texts += [t for t in axes.get_xticklabels() + axes.get_yticklabels()]
        legend = axes.get_legend()
        if legend is not None:
            texts += list(legend.get_texts())
    return [t for t in texts if t.get_visible() and t.get_text().strip()]


def diagram(function: Callable[..., Diagram]) -> Callable[..., Diagram]:
    """Register a function that draws a diagram; its name (``attention.score_matrix``) is set on the result.

    Registered functions must draw a meaningful example when called with no arguments: the tests
    draw every one of them and check it.
    """
    name = f"{function.__module__.rsplit('.', 1)[-1]}.{function.__name__}"

    @functools.wraps(function)
    def draw(*args, **kwargs) -> Diagram:
        result = function(*args, **kwargs)
        if not isinstance(result, Diagram):
            raise TypeError(f"{name} must return a Diagram, not {type(result).__name__}")
        result.name = name
        return result

    _REGISTRY[name] = draw
    return draw


def registry() -> dict[str, Callable[..., Diagram]]:
    """Every registered diagram function by name (only the chapter modules imported so far)."""
    return dict(_REGISTRY)
