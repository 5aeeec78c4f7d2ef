"""The architecture chapter's diagrams: the model as a stack, the blocks inside it, positions, parameters.

Each function draws a meaningful example with no arguments (SmolLM2-135M's sizes) and takes the
page's computed values where they matter: the sizes read from a configuration, the rotation
frequencies of the model's rotary embedding, the parameter counts of built models, the positions
OPT computes from an attention mask.
"""

from __future__ import annotations

import math
from typing import Mapping, Sequence

from book.diagrams import draw
from book.diagrams.core import Diagram, diagram

# SmolLM2-135M's configuration: the default example of every diagram here.
SMOL = {"V": 49152, "D": 576, "L": 30, "H": 9, "Hkv": 3, "Dh": 64, "Dff": 1536}


# -- small helpers (drawn with the primitives of draw.py) ---------------------------------------
def _path(ax, points, color=draw.LINE, width=1.3, arrow=True, linestyle="-"):
    """A polyline through ``points`` (inches), with an arrowhead on its last segment."""
    xs, ys = zip(*points)
    if len(points) > 2:
        ax.plot(xs[:-1], ys[:-1], color=color, linewidth=width, linestyle=linestyle,
                solid_capstyle="butt")
    if arrow:
        draw.arrow(ax, points[-2], points[-1], color=color, width=width, linestyle=linestyle)
    else:
        ax.plot(xs[-2:], ys[-2:], color=color, linewidth=width, linestyle=linestyle)


def _node(ax, x, y, symbol="+", role="state", r=0.15):
    """A small circle with an operator in it: + for a residual addition, ⊙ for a product."""
    from matplotlib.patches import Circle

    ax.add_patch(Circle((x, y), r, facecolor=draw.tint(role), edgecolor=draw.COLORS[role],
                        linewidth=1.3, zorder=3))
    ax.text(x, y, symbol, fontsize=draw.FONT, ha="center", va="center", color=draw.TEXT, zorder=4)


def _stream(ax, x, top, bottom):
    """The residual stream: a thick green line from ``top`` down to ``bottom``."""
    ax.plot([x, x], [top, bottom], color=draw.COLORS["state"], linewidth=3.2, zorder=1,
            solid_capstyle="butt")


def human_count(n: float) -> str:
    """135M, 2.5B: a parameter count as people write it."""
    for unit, scale in (("B", 1e9), ("M", 1e6), ("k", 1e3)):
        if n >= scale:
            value = n / scale
            return f"{value:.1f}{unit}" if value < 10 else f"{value:.0f}{unit}"
    return str(int(n))


# -- 1. the whole model ------------------------------------------------------------------------
@diagram
def model_stack(V: int = SMOL["V"], D: int = SMOL["D"], L: int = SMOL["L"],
                tokens: Sequence[str] = ("The", " cat", " sat"), tied: bool = True) -> Diagram:
    """Token ids -> embedding -> L decoder blocks -> final norm -> LM head -> logits, shapes labelled."""
    fig, ax = draw.canvas(4.8, 7.0)
    x = 1.9  # the column everything flows down
    draw.label(ax, x, 6.78, "token ids (B, T)", fontsize=draw.SMALL)
    width = sum(draw.text_size(ax, t, draw.SMALL, family="monospace")[0] + 0.18 for t in tokens)
    width += 0.06 * (len(tokens) - 1)
    draw.chips(ax, x - width / 2, 6.35, list(tokens), fontsize=draw.SMALL)
    draw.arrow(ax, (x, 6.12), (x, 5.78))
    draw.box(ax, x, 5.45, 2.9, 0.6, f"embedding E\n(V, D) = ({V:,}, {D})", "weight",
             fontsize=draw.SMALL)
    draw.arrow(ax, (x, 5.13), (x, 4.72), "h(0): (B, T, D)", label_offset=(1.05, 0.0))
    # the stack of blocks: L cards, the front one labelled
    for k in (2, 1):
        draw.box(ax, x + 0.08 * k, 4.05 - 0.08 * k, 2.9, 1.2, "", "state")
    draw.box(ax, x, 4.05, 2.9, 1.2, f"decoder block\n(attention + MLP)\n× L = {L}", "state",
             fontsize=draw.SMALL)
    draw.arrow(ax, (x, 3.26), (x, 2.9), "h(L): (B, T, D)", label_offset=(1.05, 0.0))
    draw.box(ax, x, 2.65, 2.9, 0.5, "final RMSNorm", "neutral", fontsize=draw.SMALL)
    draw.arrow(ax, (x, 2.38), (x, 2.07))
    head = f"LM head = Eᵀ\n(D, V) = ({D}, {V:,})" if tied else f"LM head\n(D, V) = ({D}, {V:,})"
    draw.box(ax, x, 1.76, 2.9, 0.6, head, "weight", fontsize=draw.SMALL)
    draw.arrow(ax, (x, 1.44), (x, 1.08))
    draw.box(ax, x, 0.8, 2.9, 0.5, "logits (B, T, V)", "neutral", fontsize=draw.SMALL)
    draw.label(ax, x, 0.3, "one score per vocabulary entry", fontsize=draw.SMALL)
    if tied:
        draw.arrow(ax, (x + 1.47, 1.9), (x + 1.47, 5.3), color="weight", curve=0.35,
                   linestyle="--")
        draw.label(ax, 4.35, 3.62, "tied:\nsame\ntensor", fontsize=draw.SMALL)
    alt = (f"A decoder drawn top to bottom: token ids of shape (B, T) are looked up in the "
           f"embedding matrix E of shape ({V}, {D}), giving hidden states (B, T, D) that pass "
           f"through {L} identical decoder blocks, a final RMSNorm and the LM head, which "
           f"produces logits of shape (B, T, V)."
           + (" A dashed arrow marks the LM head as the same tensor as E (tied embeddings)." if tied
              else ""))
    caption = ("The whole decoder: every block reads and writes the same (B, T, D) stream; the "
               "configuration fixes V, D and L." + (" With tied embeddings the LM head reuses E."
                                                   if tied else ""))
    return Diagram(fig, alt=alt, caption=caption)


# -- 2. the decoder block ----------------------------------------------------------------------
@diagram
def decoder_block(D: int = SMOL["D"], Dff: int = SMOL["Dff"], H: int = SMOL["H"],
                  Hkv: int = SMOL["Hkv"]) -> Diagram:
    """A pre-norm Llama block: the residual stream, two RMSNorms, attention and the gated SiLU MLP."""
    fig, ax = draw.canvas(5.0, 7.4)
    s = 0.55  # x of the residual stream
    c = 3.05  # x of the branch column
    _stream(ax, s, 7.0, 0.55)
    draw.label(ax, s + 0.15, 7.2, f"h(ℓ−1): (B, T, D = {D})", ha="left", fontsize=draw.SMALL)
    # attention branch
    _path(ax, [(s, 6.65), (c - 1.05, 6.65)])
    draw.box(ax, c, 6.65, 2.1, 0.42, "RMSNorm", "neutral", fontsize=draw.SMALL)
    draw.arrow(ax, (c, 6.44), (c, 6.12))
    draw.box(ax, c, 5.75, 3.6, 0.7, f"self-attention (causal)\nH = {H} query, Hkv = {Hkv} kv heads",
             "query", fontsize=draw.SMALL)
    _path(ax, [(c, 5.4), (c, 5.05), (s + 0.16, 5.05)])
    _node(ax, s, 5.05)
    # MLP branch
    _path(ax, [(s, 4.55), (c - 1.05, 4.55)])
    draw.box(ax, c, 4.55, 2.1, 0.42, "RMSNorm", "neutral", fontsize=draw.SMALL)
    gx, ux = c - 0.85, c + 0.85
    _path(ax, [(c, 4.34), (c, 4.18), (gx, 4.18), (gx, 3.98)])
    _path(ax, [(c, 4.18), (ux, 4.18), (ux, 3.98)])
    draw.box(ax, gx, 3.72, 1.5, 0.5, "gate: D→Dff", "weight", fontsize=draw.SMALL)
    draw.box(ax, ux, 3.72, 1.5, 0.5, "up: D→Dff", "weight", fontsize=draw.SMALL)
    draw.arrow(ax, (gx, 3.47), (gx, 3.17))
    draw.box(ax, gx, 2.95, 1.1, 0.4, "SiLU", "neutral", fontsize=draw.SMALL)
    _path(ax, [(gx, 2.75), (gx, 2.45), (c - 0.16, 2.45)])
    _path(ax, [(ux, 3.47), (ux, 2.45), (c + 0.16, 2.45)])
    _node(ax, c, 2.45, "⊙", role="neutral")
    draw.label(ax, c + 1.05, 2.2, f"(B, T, Dff = {Dff})", fontsize=draw.SMALL)
    draw.arrow(ax, (c, 2.3), (c, 1.98))
    draw.box(ax, c, 1.74, 1.9, 0.46, "down: Dff→D", "weight", fontsize=draw.SMALL)
    _path(ax, [(c, 1.51), (c, 1.1), (s + 0.16, 1.1)])
    _node(ax, s, 1.1)
    draw.label(ax, s + 0.15, 0.35, f"h(ℓ): (B, T, D = {D})", ha="left", fontsize=draw.SMALL)
    draw.label(ax, s - 0.32, 3.1, "residual stream", rotation=90, fontsize=draw.SMALL,
               color=draw.COLORS["state"])
    alt = (f"A Llama decoder block. The residual stream of shape (B, T, {D}) runs down the left. "
           f"A branch normalizes it with RMSNorm, runs causal self-attention with {H} query heads "
           f"and {Hkv} key/value heads and adds the result back. A second branch normalizes "
           f"again, projects up to width {Dff} twice (gate and up), multiplies SiLU of the gate "
           f"by the up projection elementwise, projects back down to {D} and adds that too.")
    caption = ("A pre-norm decoder block (SmolLM2, Llama): each branch reads a normalized copy of "
               "the stream and adds its result back; the stream itself is never normalized.")
    return Diagram(fig, alt=alt, caption=caption)


# -- 3. pre-norm against post-norm -------------------------------------------------------------
def _mini_block(ax, s, c, title, norm, attn, mlp, post):
    """One block in a narrow column: stream at x = s, branch boxes centred on x = c."""
    draw.label(ax, (s + c) / 2 + 0.25, 6.25, title, fontsize=draw.SMALL, weight="bold")
    step = 1.85 if post else 1.6
    _stream(ax, s, 5.9, 5.5 - 2 * step + 0.05)
    for k, (name, role) in enumerate([(attn, "query"), (mlp, "weight")]):
        y0 = 5.5 - k * step
        if not post:  # norm on the branch, before the sublayer
            _path(ax, [(s, y0), (c - 0.7, y0)])
            draw.box(ax, c, y0, 1.4, 0.4, norm, "neutral", fontsize=draw.SMALL)
            draw.arrow(ax, (c, y0 - 0.2), (c, y0 - 0.45))
            draw.box(ax, c, y0 - 0.75, 1.6, 0.55, name, role, fontsize=draw.SMALL)
            join = y0 - 1.3
            _path(ax, [(c, y0 - 1.03), (c, join), (s + 0.16, join)])
            _node(ax, s, join)
        else:  # the sublayer reads the stream as it is; the norm sits on the stream after the sum
            _path(ax, [(s, y0), (c, y0), (c, y0 - 0.3)])
            draw.box(ax, c, y0 - 0.58, 1.6, 0.55, name, role, fontsize=draw.SMALL)
            join = y0 - 1.1
            _path(ax, [(c, y0 - 0.86), (c, join), (s + 0.16, join)])
            _node(ax, s, join)
            draw.box(ax, s, y0 - 1.55, 1.1, 0.4, norm, "neutral", fontsize=draw.SMALL)


@diagram
def block_norms() -> Diagram:
    """SmolLM2's pre-norm block beside MiniLM's post-norm block: where the norm sits, mask and MLP."""
    fig, ax = draw.canvas(5.4, 6.5)
    _mini_block(ax, 0.3, 1.55, "SmolLM2, Llama", "RMSNorm", "attention\n(causal)",
                "gated MLP\n(SiLU)", post=False)
    _mini_block(ax, 3.25, 4.55, "MiniLM, BERT", "LayerNorm", "attention\n(all tokens)",
                "MLP (GELU)", post=True)
    fig.set_size_inches(5.4, 4.75)  # keep the drawn part only: inches stay inches
    ax.set_ylim(1.75, 6.5)
    alt = ("Two transformer blocks side by side. Left, SmolLM2 and Llama: each branch applies "
           "RMSNorm before causal attention or the gated SiLU MLP and adds its output to the "
           "residual stream, which is never normalized. Right, MiniLM and BERT: attention over all "
           "tokens and a GELU MLP add their outputs to the stream, and a LayerNorm then normalizes "
           "the stream itself after each addition.")
    caption = ("Pre-norm (left) normalizes what a branch reads; post-norm (right) normalizes the "
               "stream after each addition. The decoder's attention is causal, the encoder's "
               "sees every token.")
    return Diagram(fig, alt=alt, caption=caption)


# -- 4. rotary position embedding --------------------------------------------------------------
@diagram
def rope_rotation(thetas: Sequence[float] = (1.0, 100000 ** (-8 / 64)), pairs: Sequence[int] = (0, 4),
                  positions: Sequence[int] = (0, 1, 2, 3), Dh: int = SMOL["Dh"]) -> Diagram:
    """Pairs of query coordinates rotated by m·θ_i at positions m: a fast pair and a slower one."""
    fig, ax = draw.canvas(4.8, 3.5)
    shades = ["#d9d9d9", "#a6a6a6", "#6e6e6e", draw.COLORS["query"]]
    radius = 0.85
    for panel, (theta, pair) in enumerate(zip(thetas, pairs)):
        cx, cy = 1.2 + 2.4 * panel, 1.7
        from matplotlib.patches import Circle

        ax.add_patch(Circle((cx, cy), radius, facecolor="none", edgecolor="#bbbbbb",
                            linewidth=1.0, linestyle=":"))
        ax.plot([cx - radius - 0.1, cx + radius + 0.1], [cy, cy], color="#cccccc", linewidth=0.8)
        ax.plot([cx, cx], [cy - radius - 0.1, cy + radius + 0.1], color="#cccccc", linewidth=0.8)
        for k, m in enumerate(positions):
            angle = m * theta
            end = (cx + radius * math.cos(angle), cy + radius * math.sin(angle))
            color = shades[min(k, len(shades) - 1)] if k < len(positions) - 1 else draw.COLORS["query"]
            draw.arrow(ax, (cx, cy), end, color=color, width=1.8)
            lx = cx + (radius + 0.24) * math.cos(angle)
            ly = cy + (radius + 0.2) * math.sin(angle)
            draw.label(ax, lx, ly, f"m={m}", fontsize=draw.SMALL)
        draw.label(ax, cx, 3.3, f"pair i = {pair}", fontsize=draw.SMALL, weight="bold")
        draw.label(ax, cx, 0.4, f"θ = {theta:.3g} rad/token", fontsize=draw.SMALL)
    alt = ("Two circles, each showing one pair of query coordinates as an arrow that rotates as "
           "the token's position m goes from 0 to 3. In the left pair the angle per token is "
           f"{thetas[0]:.3g} radians, so the arrow turns fast; in the right pair it is "
           f"{thetas[1]:.3g} radians, so it turns slowly.")
    caption = (f"Rotary position embedding: the Dh = {Dh} coordinates of a query (or key) form "
               f"{Dh // 2} pairs, and pair i is rotated by m·θ_i at position m. Early pairs turn fast, "
               "later ones slowly; a score then depends only on the distance between tokens.")
    return Diagram(fig, alt=alt, caption=caption)


# -- 5. where the parameters are ---------------------------------------------------------------
PART_ROLES = {"embedding": "token", "attention": "query", "MLP": "weight",
              "LM head": "key", "other": "special"}


@diagram
def parameter_areas(counts: Mapping[str, Mapping[str, float]] | None = None) -> Diagram:
    """One bar per model, split into areas proportional to its embedding, attention, MLP... parameters."""
    if counts is None:  # SmolLM2-135M and all-MiniLM-L6-v2, counted from their configurations
        counts = {"SmolLM2-135M": {"embedding": 28311552, "attention": 26542080, "MLP": 79626240,
                                   "other": 35136},
                  "all-MiniLM-L6-v2": {"embedding": 11918592, "attention": 3548160,
                                       "MLP": 7091712, "other": 189312}}
    bar_w, bar_h, pitch = 4.6, 0.38, 0.86
    n = len(counts)
    height = 0.95 + n * pitch
    fig, ax = draw.canvas(5.0, height)
    x0 = 0.2
    # legend: the parts that occur, in a fixed order
    parts = [p for p in PART_ROLES if any(c.get(p, 0) > 0 for c in counts.values())]
    lx = x0
    for part in parts:
        w = draw.text_size(ax, part, draw.SMALL)[0] + 0.2
        draw.box(ax, lx + w / 2, height - 0.3, w, 0.34, part, PART_ROLES[part], fontsize=draw.SMALL)
        lx += w + 0.1
    for row, (model, parts_of) in enumerate(counts.items()):
        total = sum(parts_of.values())
        top = height - 0.75 - row * pitch
        draw.label(ax, x0, top - 0.08, f"{model}: {human_count(total)}", ha="left", fontsize=draw.SMALL)
        y = top - 0.28 - bar_h / 2
        x = x0
        for part in parts:
            share = parts_of.get(part, 0) / total
            if share <= 0:
                continue
            w = bar_w * share
            text = f"{100 * share:.0f}%" if w > 0.5 else ""
            draw.box(ax, x + w / 2, y, w, bar_h, text, PART_ROLES[part], fontsize=draw.SMALL,
                     rounded=False)
            x += w
    shares = "; ".join(
        f"{model}: " + ", ".join(f"{part} {100 * v / sum(c.values()):.0f}%" for part, v in c.items()
                                 if v > 0)
        for model, c in counts.items())
    alt = ("Horizontal bars, one per model, each split into coloured areas proportional to the "
           f"parameters of its parts. {shares}.")
    caption = ("Where the parameters are, each model's bar split in proportion to its parts "
               "(counted from the configurations; a tied LM head is counted once, in the "
               "embedding). Bars have the same length whatever the model's size.")
    return Diagram(fig, alt=alt, caption=caption)


# -- 6. OPT's positions from the attention mask ------------------------------------------------
@diagram
def opt_positions(tokens: Sequence[str] = ("pad", "pad", "The", "cat", "sat"),
                  mask: Sequence[int] = (0, 0, 1, 1, 1), offset: int = 2) -> Diagram:
    """How OPT computes each token's row of the position table from the attention mask."""
    cumsum = []
    running = 0
    for m in mask:
        running += m
        cumsum.append(running)
    position = [c * m - 1 for c, m in zip(cumsum, mask)]
    row = [p + offset for p in position]
    cell = 0.56
    fig, ax = draw.canvas(5.0, 3.75)
    x = 2.05
    names = ["token", "attention mask", "cumsum", "× mask − 1", f"+ {offset}: table row"]
    cells = [list(tokens)] + [[str(v).replace("-", "−") for v in values]
                              for values in (mask, cumsum, position, row)]
    fills = [[("special" if m == 0 else "token") for m in mask],
             [("special" if m == 0 else "state") for m in mask],
             [None] * len(mask),
             [None] * len(mask),
             [("special" if m == 0 else "weight") for m in mask]]
    top = 3.55
    draw.grid(ax, x, top, cells, cell=cell, fills=fills, row_labels=names, fontsize=draw.SMALL)
    real = [i for i, m in enumerate(mask) if m]
    draw.label(ax, 2.5, 0.3,
               f"first real token → row {row[real[0]]}, whatever the padding", fontsize=draw.SMALL)
    alt = ("A table for a left-padded sequence of tokens " + ", ".join(tokens) + ". Row by row: "
           "the attention mask " + " ".join(cells[1]) + ", its cumulative sum " + " ".join(cells[2])
           + ", that times the mask minus one " + " ".join(cells[3]) + ", and plus the offset "
           f"{offset}, the row of OPT's position table each token reads: " + " ".join(cells[4])
           + ". Padding shares one row; the first real token always gets the same row.")
    caption = ("OPT's learned positions: the position of a token is counted from the attention "
               "mask, so left padding does not shift the real tokens; padding reads row 1.")
    return Diagram(fig, alt=alt, caption=caption)
