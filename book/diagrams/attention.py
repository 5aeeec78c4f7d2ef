"""The attention chapter's diagrams: Q, K and V, the score matrix, masks, heads and shared key/value heads.

Every diagram uses the course's notation (``B``, ``T``, ``Tq``/``Tk``, ``H``, ``Hkv``, ``D``,
``Dh``) and colours (:data:`book.diagrams.draw.COLORS`): queries purple, keys orange, values
blue, hidden states and outputs green, what a mask removes vermillion. Each draws a meaningful
example with no arguments; the chapter passes the numbers it computed (the toy example's
vectors, SmolLM2's head counts) so the pictures show the page's own results.
"""

from __future__ import annotations

import math
from typing import Sequence

from book.diagrams import draw
from book.diagrams.core import Diagram, diagram

# The chapter's toy example: three tokens with 2-d queries, keys and values small enough to
# follow with a pencil (the page builds the same tensors and passes them in).
TOY_TOKENS = ("the", "cat", "sat")
TOY_Q = ((0.0, 1.0), (1.0, 1.0), (2.0, 0.0))
TOY_K = ((0.0, 1.0), (2.0, 0.0), (1.0, 1.0))
TOY_V = ((1.0, 0.0), (0.0, 1.0), (1.0, 1.0))


def _matmul(a, b):
    return [[sum(x * y for x, y in zip(row, col)) for col in zip(*b)] for row in a]


def _softmax(row):
    top = max(row)
    e = [math.exp(s - top) for s in row]
    return [x / sum(e) for x in e]


def _fmt(x: float, digits: int = 2) -> str:
    """A number as a short label: integers without decimals, the rest rounded, minus signs typeset."""
    text = f"{x:.0f}" if abs(x - round(x)) < 1e-9 else f"{x:.{digits}f}"
    return text.replace("-", "−")


def _toy(q, k, v, tokens):
    q = [list(map(float, r)) for r in (q if q is not None else TOY_Q)]
    k = [list(map(float, r)) for r in (k if k is not None else TOY_K)]
    v = [list(map(float, r)) for r in (v if v is not None else TOY_V)]
    return q, k, v, list(tokens if tokens is not None else TOY_TOKENS)


@diagram
def overview() -> Diagram:
    """The whole idea: tokens -> Q, K, V -> scores -> softmax weights -> weighted sum of values."""
    fig, ax = draw.canvas(4.6, 6.1)
    cx = 2.3
    draw.chips(ax, 1.15, 5.82, ["the", "cat", "sat"], fontsize=11)
    draw.box(ax, cx, 5.12, 3.2, 0.5, "X: token states (T, D)", "state", fontsize=11)
    draw.arrow(ax, (cx, 5.6), (cx, 5.39))
    xs = (0.75, 2.3, 3.85)
    roles = ("query", "key", "value")
    names = ("Q = X W_Qᵀ", "K = X W_Kᵀ", "V = X W_Vᵀ")
    for x, role, name in zip(xs, roles, names):
        draw.arrow(ax, (cx, 4.86), (x, 4.28))
        draw.box(ax, x, 3.98, 1.42, 0.58, f"{name}\n(T, Dh)", role, fontsize=11)
    draw.box(ax, 1.55, 2.88, 2.4, 0.58, "scores S = Q Kᵀ / √Dh\n(Tq, Tk)", fontsize=11)
    draw.arrow(ax, (0.75, 3.68), (1.1, 3.18))
    draw.arrow(ax, (2.3, 3.68), (1.95, 3.18))
    draw.box(ax, 1.55, 1.78, 2.4, 0.58, "weights = softmax(S + M)\n(Tq, Tk), rows sum to 1", fontsize=11)
    draw.arrow(ax, (1.55, 2.58), (1.55, 2.08))
    draw.label(ax, 3.05, 2.33, "mask M, then\nsoftmax over keys", fontsize=10.5, ha="left")
    draw.box(ax, cx, 0.45, 3.6, 0.62, "output = weights V  (Tq, Dh)\neach row: a weighted average of values", "state",
             fontsize=11)
    draw.arrow(ax, (1.55, 1.48), (1.55, 0.77))
    draw.arrow(ax, (3.85, 3.68), (3.85, 0.77))
    return Diagram(
        fig,
        alt=("Flow of attention from top to bottom. Three tokens, the cat sat, become token states X of "
             "shape (T, D). Three learned maps give queries Q (purple), keys K (orange) and values V (blue), "
             "each (T, Dh). Q and K meet in the score matrix S = Q K transposed over root Dh, of shape "
             "(Tq, Tk). A mask and a softmax over the keys turn each row into weights that sum to one, and "
             "the weights times V give the output, a weighted average of the values for every query."),
        caption=("Attention in one picture: every token asks a query, offers a key and a value; a query's "
                 "weights over the keys decide how much of each value it takes."),
    )


@diagram
def toy_matrices(q: Sequence[Sequence[float]] | None = None, k: Sequence[Sequence[float]] | None = None,
                 v: Sequence[Sequence[float]] | None = None, tokens: Sequence[str] | None = None) -> Diagram:
    """The toy example as matrix products: scores = Q Kᵀ, then output = weights V, every number shown."""
    q, k, v, tokens = _toy(q, k, v, tokens)
    T, Dh = len(q), len(q[0])
    scores = _matmul(q, [list(c) for c in zip(*k)])
    weights = [_softmax([s / math.sqrt(Dh) for s in row]) for row in scores]
    out = _matmul(weights, v)
    cell = 0.46
    left = 2.05  # left edge of the score and weight grids
    right = left + T * cell + 0.1  # left edge of V and the output
    height = (Dh + 3 * T) * cell + 2.05
    fig, ax = draw.canvas(4.9, height)
    # Panel 1: scores = Q Kᵀ, with Kᵀ above the result and Q to its left.
    y = height - 0.2
    draw.label(ax, 0.05, y, "1. scores = Q Kᵀ  (Tq, Tk)", ha="left", fontsize=11, weight="bold")
    y -= 0.45
    draw.grid(ax, left, y, [[_fmt(k[j][i]) for j in range(T)] for i in range(Dh)], cell=cell,
              fills=[["key"] * T for _ in range(Dh)], col_labels=[f"k {t}" for t in tokens], fontsize=11,
              label_fontsize=10.5)
    draw.label(ax, left + T * cell + 0.1, y - Dh * cell / 2, "Kᵀ", ha="left", fontsize=11)
    draw.label(ax, left - Dh * cell / 2 - 0.1, y - Dh * cell / 2, "Q", fontsize=11)
    y -= Dh * cell + 0.1
    draw.grid(ax, left - Dh * cell - 0.1, y, [[_fmt(x) for x in row] for row in q], cell=cell,
              fills=[["query"] * Dh for _ in range(T)], row_labels=[f"q {t}" for t in tokens], fontsize=11,
              label_fontsize=10.5)
    draw.grid(ax, left, y, [[_fmt(s) for s in row] for row in scores], cell=cell, fontsize=11)
    draw.label(ax, right, y - T * cell / 2, "÷ √Dh,\nthen softmax\nalong rows", ha="left", fontsize=10.5)
    y -= T * cell + 0.45
    # Panel 2: output = weights V, with V above the result and the weights to its left.
    draw.label(ax, 0.05, y, "2. output = weights V  (Tq, Dh)", ha="left", fontsize=11, weight="bold")
    y -= 0.3
    draw.grid(ax, right, y, [[_fmt(v[j][i]) for i in range(Dh)] for j in range(T)], cell=cell,
              fills=[["value"] * Dh for _ in range(T)], row_labels=[f"v {t}" for t in tokens], fontsize=11,
              label_fontsize=10.5)
    draw.label(ax, right + Dh * cell + 0.1, y - T * cell / 2, "V", ha="left", fontsize=11)
    y -= T * cell + 0.1
    shades = [[draw.tint("neutral", 1 - 0.6 * w) for w in row] for row in weights]
    draw.grid(ax, left, y, [[_fmt(w) for w in row] for row in weights], cell=cell, fills=shades,
              row_labels=[f"q {t}" for t in tokens], fontsize=10.5, label_fontsize=10.5)
    draw.grid(ax, right, y, [[_fmt(x) for x in row] for row in out], cell=cell,
              fills=[["state"] * Dh for _ in range(T)], fontsize=10.5)
    draw.label(ax, right + Dh * cell + 0.1, y - T * cell / 2, "out", ha="left", fontsize=11)
    return Diagram(
        fig,
        alt=(f"Two matrix products for {T} tokens with {Dh}-dimensional vectors. First, the query matrix Q "
             "(purple, one row per token) times the transposed key matrix (orange, one column per token) gives "
             "the score matrix, one row per query and one column per key, every entry written out. Then, after "
             "dividing by root Dh and a softmax along each row, the weights (grey, shaded by size) times the "
             "value matrix V (blue) give the output (green), one row per query."),
        caption=("The toy example, every number shown: a score is a dot product of a query row with a key "
                 "column, and an output row is the value rows mixed by that query's weights."),
    )


@diagram
def softmax_row(scores: Sequence[float] = (0.0, 4.0, 2.0), tokens: Sequence[str] | None = None,
                Dh: int = 2) -> Diagram:
    """One query's row of scores becoming weights: divide by √Dh, exponentiate, normalize."""
    tokens = list(tokens if tokens is not None else TOY_TOKENS)
    scaled = [s / math.sqrt(Dh) for s in scores]
    e = [math.exp(s) for s in scaled]
    total = sum(e)
    weights = [x / total for x in e]
    cell = 0.62
    fig, ax = draw.canvas(4.2, 2.95)
    rows = [[_fmt(s) for s in scores], [_fmt(s) for s in scaled], [_fmt(x, 1) for x in e], [_fmt(w) for w in weights]]
    fills = [["query"] * len(scores)] * 3 + [[draw.tint("neutral", 1 - 0.6 * w) for w in weights]]
    labels = ["q · k", f"÷ √{Dh}", "exp", f"÷ {_fmt(total, 1)}"]
    draw.grid(ax, 1.25, 2.55, rows, cell=cell, fills=fills, row_labels=labels, col_labels=[f"k {t}" for t in tokens],
              fontsize=11, label_fontsize=11)
    x_note = 1.25 + len(scores) * cell + 0.12
    draw.label(ax, x_note, 2.55 - 3.5 * cell, "weights:\nsum to 1", ha="left", fontsize=10.5)
    draw.label(ax, x_note, 2.55 - 1.5 * cell, "largest\nscore wins\nmost", ha="left", fontsize=10.5)
    return Diagram(
        fig,
        alt=("One query's scores against three keys, in four rows: the raw dot products, the same divided by "
             "root Dh, their exponentials, and the exponentials divided by their sum, which are the attention "
             "weights; they are positive, sum to one, and the largest score gets the largest weight."),
        caption="Softmax, step by step, for one query: exponentiate the scaled scores, then divide by their sum.",
    )


SHADES = (draw.tint("neutral", 0.8), "#ffffff")  # alternating fills that tell the heads apart


def _mask_panel(ax, x, y, allowed, rows, cols, title, cell=0.34, col_roles=None, note_rows=()):
    """One mask as a grid: white where the query may read the key, vermillion x where it may not."""
    cells = [["" if a else "×" for a in row] for row in allowed]
    fills = [[None if a else "blocked" for a in row] for row in allowed]
    if col_roles:
        for i, row in enumerate(fills):
            for j, role in enumerate(col_roles):
                if role == "special" and row[j] is None:
                    row[j] = "special"
    draw.label(ax, x - 0.5, y + 0.56, title, ha="left", fontsize=11, weight="bold")
    draw.grid(ax, x, y, cells, cell=cell, fills=fills, row_labels=rows, col_labels=cols, fontsize=11,
              label_fontsize=10.5)
    for i in note_rows:
        draw.label(ax, x + len(cols) * cell + 0.06, y - (i + 0.5) * cell, "← no key", ha="left", fontsize=10.5,
                   color=draw.COLORS["blocked"])


@diagram
def masks(Tq: int = 2, Tk: int = 5) -> Diagram:
    """Causal, padding, causal with left padding (rows with no key), and new queries against a KV cache."""
    fig, ax = draw.canvas(5.3, 5.35)
    n = 4
    causal = [[j <= i for j in range(n)] for i in range(n)]
    keys = [f"k{j}" for j in range(n)]
    queries = [f"q{i}" for i in range(n)]
    _mask_panel(ax, 0.55, 4.62, causal, queries, keys, "causal (T = 4)")
    pad = [[j < 3 for j in range(n)] for _ in range(n)]
    _mask_panel(ax, 3.3, 4.62, pad, queries, ["k0", "k1", "k2", "pad"], "padding key")
    left = [[(j <= i) and j >= 2 for j in range(n)] for i in range(n)]
    _mask_panel(ax, 0.55, 2.12, left, ["pad", "pad", "q2", "q3"], ["pad", "pad", "k2", "k3"],
                "causal + left pad", note_rows=(0, 1))
    cache = [[j <= i + Tk - Tq for j in range(Tk)] for i in range(Tq)]
    _mask_panel(ax, 3.3, 2.12, cache, [f"q{Tk - Tq + i}" for i in range(Tq)], [f"k{j}" for j in range(Tk)],
                f"KV cache: Tq={Tq}, Tk={Tk}")
    # mark the cached keys under the KV-cache panel
    cell = 0.34
    cached = Tk - Tq
    y_brace = 2.12 - Tq * cell - 0.2
    draw.label(ax, 3.3 + cached * cell / 2, y_brace, "cached", fontsize=10.5)
    draw.label(ax, 3.3 + (cached + Tq / 2) * cell, y_brace, "new", fontsize=10.5)
    draw.label(ax, 0.05, 0.2, "white: the query may read the key;  ×: masked (score → −∞)", ha="left", fontsize=10.5)
    return Diagram(
        fig,
        alt=("Four attention masks drawn as grids, rows are queries and columns are keys; white cells may be "
             "read, vermillion crosses are masked. Causal: a lower triangle, each query sees itself and earlier "
             "keys. Padding: the padding key's column is masked for every query. Causal with left padding: the "
             "two padding queries at the start may see no key at all. KV cache: two new queries against five "
             "keys, three of them cached, each new query sees every cached key and the new keys up to itself."),
        caption=("Masks as grids (rows: queries, columns: keys). With a KV cache the new queries are the last "
                 "rows of the full causal mask, so the triangle is aligned bottom-right."),
    )


@diagram
def heads(H: int = 4, D: int = 384) -> Diagram:
    """Splitting (B, T, D) into H heads of width Dh, attending per head, and merging them back."""
    fig, ax = draw.canvas(4.8, 5.6)
    Dh = D // H
    width = 3.6
    x0 = 0.6
    seg = width / H

    def bar(y, label_text):
        for h in range(H):
            draw.box(ax, x0 + (h + 0.5) * seg, y, seg, 0.42, f"h{h}", "neutral", fill=SHADES[h % 2],
                     fontsize=11, rounded=False)
        draw.label(ax, x0 + width / 2, y + 0.38, label_text, fontsize=11)

    bar(5.0, f"q, k or v (B, T, D): D = H × Dh = {H} × {Dh}")
    draw.arrow(ax, (x0 + width / 2, 4.76), (x0 + width / 2, 4.28),
               "view (B, T, H, Dh),\ntranspose(1, 2)", label_offset=(1.25, 0.0))
    head_w, gap = 0.72, (width - H * 0.72) / (H - 1)
    for h in range(H):
        xc = x0 + head_w / 2 + h * (head_w + gap)
        draw.box(ax, xc, 3.75, head_w, 0.9, f"head {h}\nT × Dh", "neutral", fill=SHADES[h % 2], fontsize=10.5)
        draw.arrow(ax, (xc, 3.28), (xc, 2.82))
        draw.box(ax, xc, 2.45, head_w, 0.7, f"attn\n{h}", "state", fontsize=10.5)
    draw.label(ax, x0 + width + 0.05, 3.05, "each head\non its own", ha="left", fontsize=10)
    draw.label(ax, x0 - 0.08, 3.75, "(B, H,\nT, Dh)", ha="right", fontsize=10)
    draw.arrow(ax, (x0 + width / 2, 2.08), (x0 + width / 2, 1.72),
               "transpose(1, 2),\nreshape (B, T, D)", label_offset=(1.25, -0.08))
    bar(1.08, "(B, T, D): the heads side by side again")
    draw.arrow(ax, (x0 + width / 2, 0.86), (x0 + width / 2, 0.64))
    draw.box(ax, x0 + width / 2, 0.38, width, 0.5, "W_O mixes the heads → (B, T, D)", "weight", fontsize=11)
    return Diagram(
        fig,
        alt=(f"A token state of width D = {D} drawn as a bar cut into {H} slices, one per head, each of width "
             f"Dh = {Dh}. A view and a transpose turn the tensor (B, T, D) into (B, H, T, Dh): {H} separate "
             "heads, each a T by Dh block, and each runs attention on its own. A transpose and a reshape put "
             "the heads' outputs back side by side as (B, T, D), and the output projection W_O mixes them."),
        caption=("Heads are slices of the projections' output: split with a view and a transpose, attend "
                 "independently, merge with the inverse, then W_O mixes them."),
    )


@diagram
def gqa(H: int = 9, Hkv: int = 3) -> Diagram:
    """Query heads served by shared key/value heads: MHA (Hkv = H), GQA, MQA (Hkv = 1)."""
    width = 5.2
    fig, ax = draw.canvas(width, 5.1)
    chip = min(0.46, (width - 0.4) / H - 0.06)
    span = H * (chip + 0.06) - 0.06
    x0 = (width - span) / 2
    qx = [x0 + chip / 2 + h * (chip + 0.06) for h in range(H)]
    cases = [("multi-head (MHA): Hkv = H", H), (f"grouped-query (GQA): Hkv = {Hkv}", Hkv),
             ("multi-query (MQA): Hkv = 1", 1)]
    y = 4.78
    for title, n_kv in cases:
        group = H // n_kv
        draw.label(ax, 0.05, y, title, ha="left", fontsize=11, weight="bold")
        for h in range(H):
            draw.box(ax, qx[h], y - 0.42, chip, 0.34, f"q{h}", "query", fontsize=10.5)
        kv_w = min(max(chip, group * (chip + 0.06) - 0.16), 1.6)
        for g in range(n_kv):
            members = qx[g * group:(g + 1) * group]
            kx = sum(members) / len(members)
            ky = y - 1.16
            draw.box(ax, kx - kv_w / 4, ky, kv_w / 2, 0.34, "k" if kv_w < 0.9 else f"k{g}", "key", fontsize=10.5)
            draw.box(ax, kx + kv_w / 4, ky, kv_w / 2, 0.34, "v" if kv_w < 0.9 else f"v{g}", "value", fontsize=10.5)
            for mx in members:
                draw.arrow(ax, (kx, ky + 0.17), (mx, y - 0.59), width=0.9, color="#888888")
        y -= 1.62
    return Diagram(
        fig,
        alt=(f"Three rows of {H} query heads (purple), each connected to the key/value head it reads (an "
             f"orange key and a blue value). Multi-head attention: {H} key/value heads, one per query head. "
             f"Grouped-query attention: {Hkv} key/value heads, each shared by {H // Hkv} consecutive query heads. "
             "Multi-query attention: a single key/value head shared by all query heads."),
        caption=(f"How many key/value heads serve the H = {H} query heads. SmolLM2 uses GQA with "
                 f"Hkv = {Hkv}: query head h reads key/value head h // (H / Hkv)."),
    )
