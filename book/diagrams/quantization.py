"""The quantization chapter's diagrams: a round trip through int8, where 4-bit levels sit, blocks
and their scales, double quantization, LLM.int8()'s outlier columns, memory per format.

Weights and scales are blue (:data:`book.diagrams.draw.COLORS` ``"weight"``), integer codes
dark grey, activations green, what rounding loses vermillion, the parts of a model that stay in
16 bits grey. Every function draws a meaningful example when called with no arguments (the
chapter's eight toy numbers, SmolLM2-135M's sizes, values computed once and written here); the
chapter passes the values it computes, so the pictures show the page's own results.
"""

from __future__ import annotations

import random
from typing import Mapping, Sequence

from book.diagrams import draw
from book.diagrams.core import Diagram, diagram

# -- the examples drawn when no values are passed (the page passes its own) ------------------------
TOY = (0.12, -0.40, 0.03, 0.91, -0.07, 0.25, -1.60, 0.48)  # the chapter's eight numbers
# bitsandbytes' NF4 table (get_4bit_type("nf4")), to 4 decimals; the page passes the library's own
NF4 = (-1.0, -0.6962, -0.5251, -0.3949, -0.2844, -0.1848, -0.0911, 0.0, 0.0796, 0.1609, 0.2461,
       0.3379, 0.4407, 0.5626, 0.7230, 1.0)
# SmolLM2-135M's memory in MB by format and part, as the chapter computes it
MEMORY = {
    "float32": {"linear weights": 424.7, "scales": 0.0, "embedding, norms": 113.4},
    "bfloat16": {"linear weights": 212.3, "scales": 0.0, "embedding, norms": 56.7},
    "int8": {"linear weights": 106.2, "scales": 0.6, "embedding, norms": 56.7},
    "NF4": {"linear weights": 53.1, "scales": 6.6, "embedding, norms": 56.7},
    "NF4 + DQ": {"linear weights": 53.1, "scales": 1.7, "embedding, norms": 56.7},
}
# linear weights light blue, their scales solid blue (both weights), the unquantized rest grey
PART_FILLS = {"linear weights": ("weight", None), "scales": ("weight", "#0072B2"),
              "embedding, norms": ("special", None)}


def _cells(ax, x0: float, y: float, texts: Sequence[str], width: float, role: str = "weight",
           height: float = 0.36, gap: float = 0.05, fontsize: float = draw.SMALL) -> list[float]:
    """A row of equal boxes, left edge at x0, centred on y; returns the centres."""
    centres = []
    for i, text in enumerate(texts):
        x = x0 + i * (width + gap) + width / 2
        draw.box(ax, x, y, width, height, text, role, fontsize=fontsize)
        centres.append(x)
    return centres


def _num(value: float, digits: int = 2) -> str:
    """A number as the page prints it, with a real minus sign."""
    return f"{value:.{digits}f}".replace("-", "−")


# -- 1. the whole idea: a round trip through int8 --------------------------------------------------
@diagram
def round_trip(weights: Sequence[float] = TOY, qmax: int = 127) -> Diagram:
    """Eight float32 weights -> one absmax scale and eight int8 codes -> the dequantized weights."""
    absmax = max(abs(w) for w in weights)
    scale = absmax / qmax
    codes = [round(w / scale) for w in weights]
    approx = [scale * q for q in codes]
    n = len(weights)
    fig, ax = draw.canvas(5.3, 4.6)
    width, x0 = 0.58, 0.08
    draw.label(ax, x0, 4.4, f"{n} weights w, float32: 32 bits each", ha="left")
    _cells(ax, x0, 4.0, [_num(w) for w in weights], width, "weight")
    draw.arrow(ax, (0.7, 3.76), (0.7, 3.28))
    draw.label(ax, 0.9, 3.52, f"s = max|w| / {qmax} = {scale:.4f};  q = round(w / s)", ha="left",
               fontsize=draw.SMALL)
    draw.label(ax, x0, 2.98, f"codes q, int8: 8 bits each, plus s (32 bits)", ha="left")
    _cells(ax, x0, 2.58, [str(q).replace("-", "−") for q in codes], width, "neutral")
    draw.arrow(ax, (0.7, 2.34), (0.7, 1.86))
    draw.label(ax, 0.9, 2.1, "ŵ = s · q", ha="left", fontsize=draw.SMALL)
    draw.label(ax, x0, 1.56, "dequantized weights ŵ", ha="left")
    _cells(ax, x0, 1.16, [_num(a, 3) for a in approx], width, "weight", fontsize=10.5)
    before, after = 32 * n, 8 * n + 32
    draw.label(ax, x0, 0.55, f"stored: {n} × 32 = {before} bits  →  {n} × 8 + 32 = {after} bits",
               ha="left")
    worst = max(abs(a - w) for a, w in zip(approx, weights))
    draw.label(ax, x0, 0.2, f"largest error |ŵ − w| = {worst:.4f}, at most s / 2", ha="left",
               fontsize=draw.SMALL, color=draw.COLORS["blocked"])
    alt = (f"Three rows of {n} boxes. The first holds {n} float32 weights, the largest in magnitude "
           f"{_num(absmax)}. Dividing by the scale s = {_num(absmax)} / {qmax} and rounding gives the "
           f"second row, {n} int8 codes from {min(codes)} to {max(codes)}. Multiplying the codes "
           f"by s gives the third row, the dequantized weights, close to the first. Storage goes "
           f"from {before} to {after} bits.")
    caption = ("Quantization in one picture: store small integers and one scale, multiply back when "
               "the weights are needed. The largest weight sets the scale.")
    return Diagram(fig, alt=alt, caption=caption)


# -- 2. where the levels sit: int8, int4 and NF4 ------------------------------------------------
def _nearest(value: float, levels: Sequence[float]) -> float:
    return min(levels, key=lambda level: abs(level - value))


@diagram
def levels(nf4: Sequence[float] = NF4, points: Sequence[float] = TOY) -> Diagram:
    """Three number lines on [-1, 1]: int8's 255 levels, int4's 15, NF4's 16; the toy points snap."""
    absmax = max(abs(p) for p in points)
    normalized = [p / absmax for p in points]
    lines = [
        ("int8 absmax", "255 levels", [k / 127 for k in range(-127, 128)], 0.5),
        ("int4 absmax", "15 levels", [k / 7 for k in range(-7, 8)], 1.2),
        ("NF4", "16 levels", list(nf4), 1.6),
    ]
    fig, ax = draw.canvas(5.4, 3.45)
    left, right = 1.45, 5.2
    half = (right - left) / 2
    mid = left + half
    ys = [2.6, 1.55, 0.5]
    for (name, count, grid, width), y in zip(lines, ys):
        ax.plot([left, right], [y, y], color=draw.LINE, linewidth=0.8)
        color = draw.COLORS["weight"] if name == "NF4" else draw.LINE
        for level in grid:
            x = mid + level * half
            ax.plot([x, x], [y - 0.12, y + 0.12], color=color, linewidth=width * 0.8)
        draw.label(ax, 0.05, y + 0.13, name, ha="left", fontsize=draw.SMALL, weight="bold")
        draw.label(ax, 0.05, y - 0.17, count, ha="left", fontsize=draw.SMALL)
        # the toy points, above the line, each joined to the level it rounds to
        for p in normalized:
            target = _nearest(p, grid)
            ax.plot([mid + p * half], [y + 0.42], marker="o", markersize=5,
                    color=draw.COLORS["blocked"], zorder=3)
            ax.plot([mid + p * half, mid + target * half], [y + 0.38, y + 0.14],
                    color=draw.COLORS["blocked"], linewidth=0.9)
    for value, text in [(-1, "−1"), (0, "0"), (1, "1")]:
        draw.label(ax, mid + value * half, ys[-1] - 0.32, text, fontsize=draw.SMALL)
    draw.label(ax, mid, 3.3, f"the {len(points)} toy weights, divided by their absmax (dots)",
               fontsize=draw.SMALL)
    alt = (f"Three number lines from −1 to 1. The first, int8 absmax, has 255 evenly spaced "
           f"levels, so dense they form a band. The second, int4 absmax, has 15 evenly spaced "
           f"levels. The third, NF4, has 16 levels crowded near zero and sparse near ±1. Above "
           f"each line, the {len(points)} toy weights divided by their largest magnitude are dots, "
           f"each joined to the level it rounds to; on the 4-bit lines the small weights move "
           f"visibly, most of all on int4.")
    caption = ("Same range, different levels: int8 has plenty; with 4 bits, NF4 spends its sixteen "
               "levels where weights are common, near zero.")
    return Diagram(fig, alt=alt, caption=caption)


# -- 3. blocks and their scales ------------------------------------------------------------------
def _example_row(n: int, seed: int = 11) -> list[float]:
    rng = random.Random(seed)
    row = [rng.gauss(0.0, 0.15) for _ in range(n)]
    row[5 * 64 + 17] = 2.27  # one large weight in the last block drawn
    return row


@diagram
def blocks(row: Sequence[float] | None = None, block: int = 64, n_blocks: int = 6,
           title: str = "one row of a weight matrix") -> Diagram:
    """A weight row cut into blocks of ``block``: each block's weights as bars, its absmax scale dashed."""
    row = list(row) if row is not None else _example_row(block * n_blocks)
    chunks = [row[i * block:(i + 1) * block] for i in range(n_blocks)]
    scales = [max(abs(w) for w in chunk) for chunk in chunks]
    fig, ax = draw.canvas(5.4, 2.9)
    x0, width, gap = 0.1, 0.8, 0.06
    y, half = 1.55, 0.72  # the row's zero line and the height of the largest |w|
    top = max(scales)
    for k, (chunk, scale) in enumerate(zip(chunks, scales)):
        left = x0 + k * (width + gap)
        draw.box(ax, left + width / 2, y, width, 2 * half + 0.16, "", "weight", rounded=False,
                 fill=draw.tint("weight", 0.9))
        step = width / len(chunk)
        for i, w in enumerate(chunk):
            x = left + (i + 0.5) * step
            ax.plot([x, x], [y, y + half * w / top], color=draw.COLORS["weight"], linewidth=0.8)
        for sign in (-1, 1):
            ax.plot([left + 0.02, left + width - 0.02], [y + sign * half * scale / top] * 2,
                    color=draw.COLORS["blocked"], linewidth=1.1, linestyle="--")
        draw.label(ax, left + width / 2, y - half - 0.28, f"s = {scale:.2f}", fontsize=draw.SMALL)
    draw.label(ax, x0, 2.7, f"{title}: blocks of {block} weights", ha="left", fontsize=draw.SMALL)
    draw.label(ax, x0, 0.2, f"each block: {block} codes + its own scale s = max|w| (dashed)",
               ha="left", fontsize=draw.SMALL)
    biggest = max(range(n_blocks), key=lambda k: scales[k])
    alt = (f"{n_blocks} boxes side by side, each holding {block} thin bars, the weights of one "
           f"block of a matrix row. Dashed lines mark each block's largest magnitude, its scale s, "
           f"printed below: from {min(scales):.2f} to {max(scales):.2f}. Block {biggest + 1} holds "
           f"one large weight and gets a large scale; the other blocks keep small scales, so their "
           f"small weights keep fine steps.")
    caption = ("Blocks keep an outlier's damage local: only its own block gets a coarse step. The "
               "price is one scale per block.")
    return Diagram(fig, alt=alt, caption=caption)


# -- 4. double quantization ----------------------------------------------------------------------
@diagram
def double_quant(block: int = 64, dq_block: int = 256, code_bits: int = 4, scale_bits: int = 32,
                 dq_bits: int = 8) -> Diagram:
    """Two levels of scales: float32 scales per block of weights, themselves 8-bit per block of scales."""
    fig, ax = draw.canvas(5.4, 4.45)
    last = _subscript(dq_block)
    draw.label(ax, 0.1, 4.25, f"level 1: blocks of {block} weights, {code_bits}-bit codes",
               ha="left", fontsize=draw.SMALL, weight="bold")
    xs = _cells(ax, 0.1, 3.85, ["block 1", "block 2", "block 3", "…", f"block {dq_block}"], 0.96,
                "neutral", gap=0.1)
    for x, (s, c) in zip(xs, [("s₁", "c₁"), ("s₂", "c₂"), ("s₃", "c₃"), ("…", "…"),
                              (f"s{last}", f"c{last}")]):
        if s == "…":
            draw.label(ax, x, 3.27, "…", fontsize=draw.SMALL)
            draw.label(ax, x, 2.03, "…", fontsize=draw.SMALL)
            continue
        ax.plot([x, x], [3.67, 3.44], color=draw.LINE, linewidth=0.9)
        draw.box(ax, x, 3.27, 0.62, 0.34, s, "weight", fontsize=draw.SMALL)
        draw.box(ax, x, 2.03, 0.62, 0.34, c, "neutral", fontsize=draw.SMALL)
    draw.label(ax, 0.1, 2.87, f"…each with a float32 scale s ({scale_bits} bits)", ha="left",
               fontsize=draw.SMALL)
    draw.label(ax, 0.1, 2.5, f"level 2: the {dq_block} scales, minus their mean, as {dq_bits}-bit "
               "codes c", ha="left", fontsize=draw.SMALL, weight="bold")
    left, right = xs[0] - 0.31, xs[-1] + 0.31
    ax.plot([left, left, right, right], [1.8, 1.68, 1.68, 1.8], color=draw.LINE, linewidth=1.0)
    draw.box(ax, (left + right) / 2, 1.38, 3.6, 0.38, f"one float32 scale for these {dq_block}",
             "weight", fontsize=draw.SMALL)
    single = code_bits + scale_bits / block
    double = code_bits + dq_bits / block + scale_bits / (block * dq_block)
    draw.label(ax, 0.1, 0.88, f"without: {code_bits} + {scale_bits}/{block} = {single:.3f} bits "
               "per weight", ha="left", fontsize=draw.SMALL)
    draw.label(ax, 0.1, 0.53, f"with: {code_bits} + {dq_bits}/{block} + {scale_bits}/({block}·"
               f"{dq_block}) = {double:.3f} bits", ha="left", fontsize=draw.SMALL)
    draw.label(ax, 0.1, 0.18, "(and the mean: one float32 per matrix)", ha="left",
               fontsize=draw.SMALL)
    alt = (f"Top: a row of blocks of {block} weights stored as {code_bits}-bit codes, each with a "
           f"float32 scale below it, s1 to s{dq_block}. Below, level 2: those scales, minus the "
           f"mean of all of them, become {dq_bits}-bit codes c1 to c{dq_block}, and a bracket "
           f"groups the {dq_block} codes under one float32 scale. The cost per weight drops from "
           f"{single:.3f} to {double:.3f} bits.")
    caption = ("Double quantization: the block scales are numbers too, so they are quantized in "
               "their own blocks, under a second, much rarer float32 scale.")
    return Diagram(fig, alt=alt, caption=caption)


def _subscript(n: int) -> str:
    return str(n).translate(str.maketrans("0123456789", "₀₁₂₃₄₅₆₇₈₉"))


# -- 5. LLM.int8(): outlier columns in 16 bits ---------------------------------------------------
@diagram
def int8_outliers(T: int = 4, Din: int = 8, Dout: int = 3, outliers: Sequence[int] = (2, 6)) -> Diagram:
    """X @ W.T split in two: int8 for the regular columns of X, 16 bits for its outlier columns."""
    fig, ax = draw.canvas(5.2, 6.0)
    cell = 0.27
    strong = draw.tint("state", 0.4)  # the outlier columns, where they are used
    regular = [[("state" if j not in outliers else "blocked") for j in range(Din)] for _ in range(T)]
    only = [[strong for _ in outliers] for _ in range(T)]
    w_regular = [[("weight" if i not in outliers else "blocked") for _ in range(Dout)]
                 for i in range(Din)]
    w_only = [["weight" for _ in range(Dout)] for _ in outliers]
    empty = lambda rows, cols: [["" for _ in range(cols)] for _ in range(rows)]  # noqa: E731

    def product(y_top, x_fill, w_fill, title, x_label, w_label):
        draw.label(ax, 0.1, y_top + 0.35, title, ha="left", fontsize=draw.SMALL, weight="bold")
        cols = len(x_fill[0])
        left = 0.35
        draw.grid(ax, left, y_top - 0.35, empty(T, cols), cell=cell, fills=x_fill)
        x_right = left + cols * cell
        draw.label(ax, (left + x_right) / 2, y_top - 0.17, x_label, fontsize=draw.SMALL)
        draw.label(ax, x_right + 0.2, y_top - 0.35 - T * cell / 2, "×", fontsize=draw.FONT)
        w_left = x_right + 0.4
        rows = len(w_fill)
        draw.grid(ax, w_left, y_top - 0.35, empty(rows, Dout), cell=cell, fills=w_fill)
        w_right = w_left + Dout * cell
        draw.label(ax, w_right + 0.08, y_top - 0.35 - rows * cell / 2, w_label, ha="left",
                   fontsize=draw.SMALL)
        return y_top - 0.35 - max(T, rows) * cell

    bottom = product(5.55, regular, w_regular, "int8 part: regular columns",
                     "X (T, Dff)", "Wᵀ (Dff, D)\nX and W int8,\none absmax\nper row")
    draw.label(ax, 0.1, bottom - 0.3, "outlier columns of X and their rows of Wᵀ: left out",
               ha="left", fontsize=draw.SMALL)
    bottom = product(bottom - 1.1, only, w_only, "16-bit part: the outlier columns",
                     "X outliers", "their rows of Wᵀ,\ndequantized to 16 bits")
    draw.label(ax, 0.1, bottom - 0.4, "output (T, D) = int8 part, rescaled + 16-bit part",
               ha="left", fontsize=draw.SMALL)
    alt = (f"Two matrix products stacked. Top, the int8 part: an input X of {T} rows and {Din} "
           f"columns, in which columns {', '.join(str(j + 1) for j in outliers)} are struck out in "
           f"vermillion, times the transposed weight with the matching rows struck out, both in int8. Bottom, "
           f"the 16-bit part: only those {len(outliers)} outlier columns of X times their "
           f"{len(outliers)} rows of the weight. The layer's output is the sum of both parts.")
    caption = ("LLM.int8(): an input column with any value past the threshold leaves the int8 "
               "product and is multiplied in 16 bits; the rest stays int8.")
    return Diagram(fig, alt=alt, caption=caption)


# -- 6. memory per format ------------------------------------------------------------------------
@diagram
def memory_bars(memory: Mapping[str, Mapping[str, float]] = MEMORY, model: str = "SmolLM2-135M",
                unit: str = "MB") -> Diagram:
    """One bar per format, as long as its memory (in ``unit``), split into linear weights, scales, the rest."""
    formats = list(memory)
    totals = {f: sum(memory[f].values()) for f in formats}
    parts = list(next(iter(memory.values())))
    height = 0.6 + 0.5 * len(formats)
    fig, ax = draw.canvas(5.4, height)
    left, longest = 1.35, 3.2
    per_mb = longest / max(totals.values())
    # legend: one swatch per part
    x = 0.1
    for part in parts:
        role, fill = PART_FILLS.get(part, ("neutral", None))
        draw.box(ax, x + 0.1, height - 0.25, 0.2, 0.2, "", role, fill=fill, rounded=False)
        draw.label(ax, x + 0.28, height - 0.25, part, ha="left", fontsize=draw.SMALL)
        x += 0.5 + draw.text_size(ax, part, draw.SMALL)[0]
    for k, fmt in enumerate(formats):
        y = height - 0.7 - 0.5 * k
        draw.label(ax, left - 0.1, y, fmt, ha="right", fontsize=draw.SMALL)
        start = left
        for part in parts:
            length = memory[fmt][part] * per_mb
            if length > 0.005:
                role, fill = PART_FILLS.get(part, ("neutral", None))
                draw.box(ax, start + length / 2, y, length, 0.32, "", role, fill=fill, rounded=False)
            start += length
        draw.label(ax, start + 0.08, y, _amount(totals[fmt], unit), ha="left", fontsize=draw.SMALL)
    alt = (f"Horizontal bars, one per format, for {model}, each as long as the memory its weights "
           f"take: " + "; ".join(f"{f} {_amount(totals[f], unit)}" for f in formats) + ". Each bar is split "
           "into the linear layers' weights, their scales, and the embedding and norms, which the "
           "quantized formats keep in 16 bits, so the bars stop shrinking at that part.")
    caption = (f"Memory of {model}'s weights by format, drawn to scale: quantization shrinks the "
               "linear layers, the 16-bit embedding stays.")
    return Diagram(fig, alt=alt, caption=caption)


def _amount(value: float, unit: str) -> str:
    """538 MB, 16.1 GB: a memory size with the digits that matter."""
    return f"{value:.0f} {unit}" if value >= 100 else f"{value:.1f} {unit}"
