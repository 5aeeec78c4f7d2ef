"""Drawing primitives for the course's diagrams, in inches, with one colour per role.

A diagram is drawn on a :func:`canvas` whose coordinates are inches from the bottom-left corner,
so a label's size and the space it needs are judged in the units the reader sees. The colours
follow one rule across the book (the Okabe-Ito palette, distinguishable with every common form
of colour blindness): a query is always purple, a key orange, a value blue, and so on
(:data:`COLORS`). Shapes are filled with a light tint of the role's colour and outlined in the
colour itself, so black text stays readable on every fill.

Every function returns what it drew, so a diagram can place the next part relative to it.
"""

from __future__ import annotations

from typing import Sequence

# One colour per role, the same in every diagram of the book (Okabe & Ito's palette).
COLORS: dict[str, str] = {
    "query": "#CC79A7",    # reddish purple: queries, q, Q
    "key": "#E69F00",      # orange: keys, k, K
    "value": "#56B4E9",    # sky blue: values, v, V
    "state": "#009E73",    # bluish green: hidden states, the residual stream, outputs of a block
    "weight": "#0072B2",   # blue: parameters (weight matrices, embeddings, scales)
    "token": "#F0E442",    # yellow: tokens, text pieces, ids
    "blocked": "#D55E00",  # vermillion: what a mask removes, errors, what is lost
    "special": "#999999",  # grey: special tokens, padding
    "neutral": "#666666",  # dark grey: everything else (operations, plain boxes)
}
# Outlines darker than the role's colour where the colour itself is too pale on white.
EDGES: dict[str, str] = {"token": "#a89a00"}
FONT = 12.0        # points: the default label size (legible on a phone at up to 6 in wide)
SMALL = 11.0       # points: secondary labels (shapes, annotations) on narrower diagrams
TEXT = "#1a1a1a"   # near-black text on every tint
LINE = "#333333"   # arrows and plain outlines


def tint(color: str, amount: float = 0.72) -> str:
    """``color`` mixed with white (``amount`` of white): the fill that keeps black text readable."""
    color = COLORS.get(color, color).lstrip("#")
    r, g, b = (int(color[i:i + 2], 16) for i in (0, 2, 4))
    mixed = (round(c + (255 - c) * amount) for c in (r, g, b))
    return "#" + "".join(f"{c:02x}" for c in mixed)


def canvas(width: float, height: float):
    """A blank figure ``width`` x ``height`` inches whose data coordinates are inches. Returns (fig, ax).

    The figure is not registered with pyplot, so a notebook shows it only through its Diagram.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=100)
    FigureCanvasAgg(fig)  # a renderer to measure text with, without pyplot
    ax = fig.add_axes((0, 0, 1, 1))
    ax.set_xlim(0, width)
    ax.set_ylim(0, height)
    ax.set_aspect("equal")
    ax.axis("off")
    fig.course_boxes = []  # (text, patch) pairs whose fit core.Diagram.check verifies
    return fig, ax


def text_size(ax, s: str, fontsize: float = FONT, weight: str = "normal", family: str = "sans-serif") -> tuple[float, float]:
    """(width, height) in inches that ``s`` takes at ``fontsize`` points."""
    from matplotlib.font_manager import FontProperties

    fig = ax.figure
    renderer = fig.canvas.get_renderer()
    props = FontProperties(size=fontsize, weight=weight, family=family)
    width, height, _ = renderer.get_text_width_height_descent(s, props, ismath=False)
    return width / fig.dpi, height / fig.dpi


def label(ax, x: float, y: float, s: str, fontsize: float = FONT, ha: str = "center", va: str = "center",
          color: str = TEXT, **kwargs):
    """A free label centred (by default) on (x, y)."""
    return ax.text(x, y, s, fontsize=fontsize, ha=ha, va=va, color=color, **kwargs)


def box(ax, x: float, y: float, w: float, h: float, s: str = "", role: str = "neutral",
        fontsize: float = FONT, weight: str = "normal", family: str = "sans-serif", fill: str | None = None,
        linestyle: str = "-", rounded: bool = True):
    """A box of ``w`` x ``h`` inches centred on (x, y), tinted by ``role``, with ``s`` written inside.

    Returns the patch. The label's fit is checked when the diagram is rendered.
    """
    from matplotlib.patches import FancyBboxPatch

    edge = EDGES.get(role) or COLORS.get(role, role)
    radius = min(0.08, h / 4, w / 4) if rounded else 0.0
    patch = FancyBboxPatch((x - w / 2, y - h / 2), w, h, boxstyle=f"round,pad=0,rounding_size={radius}",
                           facecolor=fill or tint(role), edgecolor=edge, linewidth=1.3, linestyle=linestyle)
    ax.add_patch(patch)
    if s:
        text = ax.text(x, y, s, fontsize=fontsize, ha="center", va="center", color=TEXT, weight=weight,
                       family=family)
        ax.figure.course_boxes.append((text, patch))
    return patch


def arrow(ax, start: tuple[float, float], end: tuple[float, float], s: str = "", color: str = LINE,
          fontsize: float = SMALL, curve: float = 0.0, label_offset: tuple[float, float] = (0.0, 0.12),
          linestyle: str = "-", width: float = 1.3):
    """An arrow from ``start`` to ``end`` (inches), optionally labelled near its middle."""
    from matplotlib.patches import FancyArrowPatch

    patch = FancyArrowPatch(start, end, arrowstyle="-|>", mutation_scale=12, color=COLORS.get(color, color),
                            linewidth=width, linestyle=linestyle, connectionstyle=f"arc3,rad={curve}",
                            shrinkA=2, shrinkB=2)
    ax.add_patch(patch)
    if s:
        mx, my = (start[0] + end[0]) / 2 + label_offset[0], (start[1] + end[1]) / 2 + label_offset[1]
        ax.text(mx, my, s, fontsize=fontsize, ha="center", va="center", color=TEXT)
    return patch


def chips(ax, x: float, y: float, pieces: Sequence[str], role: str | Sequence[str] = "token",
          fontsize: float = FONT, height: float = 0.36, pad: float = 0.09, gap: float = 0.06,
          family: str = "monospace") -> list[tuple[float, float]]:
    """A row of token chips starting at x (left edge), centred vertically on y.

    ``role`` is one role for all chips or one per chip. Returns each chip's (centre x, width), so
    arrows can point at a given token.
    """
    roles = [role] * len(pieces) if isinstance(role, str) else list(role)
    placed = []
    for piece, chip_role in zip(pieces, roles):
        w = text_size(ax, piece, fontsize, family=family)[0] + 2 * pad
        box(ax, x + w / 2, y, w, height, piece, chip_role, fontsize=fontsize, family=family)
        placed.append((x + w / 2, w))
        x += w + gap
    return placed


def grid(ax, x: float, y: float, cells: Sequence[Sequence[str]], cell: float = 0.42,
         fills: Sequence[Sequence[str | None]] | None = None, row_labels: Sequence[str] = (),
         col_labels: Sequence[str] = (), fontsize: float = SMALL, label_fontsize: float | None = None,
         row_title: str = "", col_title: str = ""):
    """A matrix of square cells whose top-left corner is (x, y); ``cells[i][j]`` is written in row i, column j.

    ``fills[i][j]`` is a role (tinted) or a colour, or None for white. Row labels go left of the
    rows, column labels above the columns, and the titles beyond them. Returns the grid's
    (left, bottom, right, top) in inches.
    """
    from matplotlib.patches import Rectangle

    label_fontsize = label_fontsize or fontsize
    rows, cols = len(cells), len(cells[0]) if cells else 0
    for i in range(rows):
        for j in range(cols):
            role = fills[i][j] if fills is not None else None
            face = "white" if role is None else (tint(role) if role in COLORS else role)
            left, bottom = x + j * cell, y - (i + 1) * cell
            ax.add_patch(Rectangle((left, bottom), cell, cell, facecolor=face, edgecolor=LINE, linewidth=0.9))
            if cells[i][j]:
                ax.text(left + cell / 2, bottom + cell / 2, cells[i][j], fontsize=fontsize, ha="center",
                        va="center", color=TEXT)
    for i, name in enumerate(row_labels):
        ax.text(x - 0.08, y - (i + 0.5) * cell, name, fontsize=label_fontsize, ha="right", va="center", color=TEXT)
    for j, name in enumerate(col_labels):
        ax.text(x + (j + 0.5) * cell, y + 0.08, name, fontsize=label_fontsize, ha="center", va="bottom", color=TEXT)
    if row_title:
        width = max((text_size(ax, n, label_fontsize)[0] for n in row_labels), default=0)
        ax.text(x - 0.2 - width, y - rows * cell / 2, row_title, fontsize=label_fontsize, ha="right",
                va="center", color=TEXT)
    if col_title:
        height = text_size(ax, "Ag", label_fontsize)[1] if col_labels else 0
        ax.text(x + cols * cell / 2, y + 0.16 + height, col_title, fontsize=label_fontsize, ha="center",
                va="bottom", color=TEXT)
    return x, y - rows * cell, x + cols * cell, y
