"""Diagrams of the embeddings chapter: from token states to one sentence vector.

* :func:`states_to_sentence`: the whole idea: tokens, the ``L + 1`` per-layer states
  ``hidden_states``, the padding mask, and the masked mean that makes one vector per text.
* :func:`word_in_context`: one word in three sentences, the angle between its vectors layer by layer.
* :func:`pooling_choices`: ``[CLS]``, masked mean and masked max on a toy ``(T, D)`` matrix.
* :func:`encode_pipeline`: what ``SentenceTransformer.encode`` runs (tokenize, encoder, pool, normalize).
* :func:`cosine_angles`: cosine similarity between sentence vectors, drawn as angles.

Every function draws a meaningful example with no arguments; the chapter passes the values it
computed (its toy matrix, the real cosines of its sentences, its search results).
"""

from __future__ import annotations

import math
from typing import Sequence

from book.diagrams import draw
from book.diagrams.core import Diagram, diagram

SPECIAL = ("[CLS]", "[SEP]", "[PAD]")


def _token_role(token: str) -> str:
    return "special" if token in SPECIAL else "token"


def _fmt(value: float) -> str:
    """A toy value as a reader would write it: 1.5, 0.75, -1."""
    text = f"{value:.2f}".rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text


@diagram
def states_to_sentence(tokens: Sequence[str] = ("[CLS]", "the", "bank", "rose", "[SEP]", "[PAD]", "[PAD]"),
                       mask: Sequence[int] | None = None) -> Diagram:
    """Tokens -> per-layer states (``hidden_states``) -> masked mean -> one unit vector per text."""
    tokens = list(tokens)
    mask = [0 if t == "[PAD]" else 1 for t in tokens] if mask is None else list(mask)
    T = len(tokens)
    cell, left = 0.56, 0.92
    width = max(left + T * cell + 0.05, left + 3.5)  # room for the mean box whatever T
    fig, ax = draw.canvas(width, 6.05)
    xs = [left + (i + 0.5) * cell for i in range(T)]
    # tokens (bottom row)
    y_tok = 0.22
    for x, token in zip(xs, tokens):
        draw.box(ax, x, y_tok, cell - 0.06, 0.38, token, _token_role(token), fontsize=10,
                 family="monospace")
    draw.label(ax, left - 0.1, y_tok, "tokens", ha="right", fontsize=11)
    # the states after each layer: h(0) is the embedding output, h(L) the last layer
    rows = [("$h^{(0)}$", 1.25), ("$h^{(1)}$", 1.85), ("$h^{(L)}$", 2.75)]
    for name, y in rows:
        for x, m in zip(xs, mask):
            # a padding position still gets a state (its query attends to the real tokens)
            draw.box(ax, x, y, cell - 0.12, 0.4, "", "state" if m else "special",
                     linestyle="-" if m else "--")
        draw.label(ax, left - 0.1, y, name, ha="right", fontsize=13)
    draw.label(ax, xs[T // 2], 2.3, "⋮", fontsize=14)
    draw.label(ax, left - 0.1, 2.3, "⋮", ha="right", fontsize=14)
    draw.arrow(ax, (xs[0], y_tok + 0.21), (xs[0], 1.25 - 0.22))
    draw.label(ax, xs[0] + 0.12, 0.76, "embed: word + position + type, LayerNorm", ha="left",
               fontsize=10)
    draw.label(ax, width / 2 + 0.45, 3.2, "hidden_states: L + 1 tensors (B, T, D)", fontsize=10)
    # the mask: which positions the mean averages
    y_mask = 3.72
    for x, m in zip(xs, mask):
        draw.box(ax, x, y_mask, cell - 0.12, 0.36, str(m), "neutral" if m else "blocked",
                 fontsize=11, rounded=False)
    draw.label(ax, left - 0.1, y_mask, "mask $m$", ha="right", fontsize=11)
    # arrows from the real positions into the mean
    y_mean = 4.65
    real = [x for x, m in zip(xs, mask) if m]
    centre = sum(real) / len(real)
    for x in real:
        draw.arrow(ax, (x, y_mask + 0.2), (centre + (x - centre) * 0.35, y_mean - 0.26), width=1.0)
    draw.box(ax, centre, y_mean, 3.4, 0.48, r"masked mean $s = \sum_t m_t h_t \,/ \sum_t m_t$",
             "neutral", fontsize=11)
    y_vec = 5.75
    draw.arrow(ax, (centre, y_mean + 0.25), (centre, y_vec - 0.25), "normalize", label_offset=(0.55, 0))
    draw.box(ax, centre, y_vec, 3.4, 0.46, r"sentence vector $e = s / \|s\|$   (B, D)", "state",
             fontsize=11)
    alt = (f"A column diagram. At the bottom a row of {T} tokens, {sum(mask)} real and "
           f"{T - sum(mask)} padding. Above each token a stack of hidden states, one per layer "
           "boundary, from h(0), the embedding output, to h(L), the last layer; padding positions "
           "have states too, drawn dashed. A mask row marks real positions 1 and padding 0; arrows "
           "from the real positions only lead into a masked mean, which is normalized into one "
           "sentence vector of shape (B, D).")
    caption = ("From tokens to one vector: every layer boundary gives one state per token, "
               "padding included; the masked mean averages the last layer's real positions, and "
               "normalizing gives the sentence vector.")
    return Diagram(fig, alt=alt, caption=caption)


def _fan(ax, cx: float, cy: float, r: float, angles: Sequence[float], names: Sequence[str],
         styles: Sequence[tuple[str, str]], fontsize: float = 10) -> None:
    """Arrows of length r from (cx, cy): angle 0 points up, positive angles to the right (degrees).

    An arrow within 10 degrees of the first one shares its label ("A=B").
    """
    merged = [names[0]] + [n for n, a in zip(names[1:], angles[1:]) if abs(a - angles[0]) < 10]
    for i, (angle, name, (role, style)) in enumerate(zip(angles, names, styles)):
        a = math.radians(angle)
        draw.arrow(ax, (cx, cy), (cx + r * math.sin(a), cy + r * math.cos(a)), color=draw.COLORS[role],
                   width=1.7, linestyle=style)
        if i == 0:
            name = "=".join(merged)
        elif name in merged:
            continue
        draw.label(ax, cx + (r + 0.16) * math.sin(a), cy + (r + 0.16) * math.cos(a), name,
                   fontsize=fontsize)


@diagram
def word_in_context(same: Sequence[float] = (1.0, 0.96, 0.96, 0.96, 0.96, 0.96, 0.92),
                    different: Sequence[float] = (1.0, 0.91, 0.86, 0.80, 0.83, 0.86, 0.78),
                    sentences: Sequence[str] = ("we sat on the bank of the river.",
                                                "they fished from the bank of the stream.",
                                                "the loan from the bank had high interest."),
                    word: str = "bank") -> Diagram:
    """The word's vector in sentence A (up), B (same sense, left) and C (other sense, right), per layer.

    ``same[l]`` and ``different[l]`` are the cosines of A's vector with B's and with C's after
    layer ``l`` (0 = the embedding output); each is drawn as the angle arccos(cosine).
    """
    n = len(same)
    per_row = 4
    n_rows = math.ceil(n / per_row)
    step, row_h = 1.2, 1.72
    width = per_row * step + 0.2
    legend_h = 1.05
    top = legend_h + n_rows * row_h
    fig, ax = draw.canvas(width, top)
    for i, (key, text) in enumerate(zip("ABC", sentences)):
        draw.label(ax, 0.1, top - 0.22 - 0.3 * i, f"{key}:  {text}", ha="left", fontsize=10)
    theta_b = [math.degrees(math.acos(max(-1.0, min(1.0, c)))) for c in same]
    theta_c = [math.degrees(math.acos(max(-1.0, min(1.0, c)))) for c in different]
    spread = max([math.sin(math.radians(min(t, 90))) for t in theta_b + theta_c] + [0.1])
    r = min(0.72, (step - 0.3) / (2 * spread))
    styles = (("neutral", "-"), ("state", "-"), ("state", "--"))
    for layer in range(n):
        row, col = divmod(layer, per_row)
        cx = 0.1 + (col + 0.5) * step
        base = top - legend_h - row * row_h - r - 0.3  # where the arrows start
        _fan(ax, cx, base, r, (0.0, -theta_b[layer], theta_c[layer]), "ABC", styles)
        draw.label(ax, cx, base - 0.2, f"layer {layer}", fontsize=10)
        draw.label(ax, cx, base - 0.45, f"B {same[layer]:.2f} C {different[layer]:.2f}",
                   fontsize=10)
    if n % per_row:
        cx = 0.1 + (n % per_row + (per_row - n % per_row) / 2) * step
        base = top - legend_h - (n_rows - 1) * row_h - 0.3 - r / 2
        draw.label(ax, cx, base + 0.15, "angle from A", fontsize=10)
        draw.label(ax, cx, base - 0.12, "= arccos(cosine)", fontsize=10)
    alt = (f"{n} small fans of arrows, one per layer from 0 to {n - 1}. Each shows the vector of "
           f"the word {word!r} in sentence A pointing up, in sentence B (same sense) to its left "
           "and in sentence C (other sense, dashed) to its right, at the angle given by their cosine. "
           "At layer 0 all three coincide; with depth C turns further away from A than B does: "
           f"the cosine of A with C falls from {different[0]:.2f} to {different[-1]:.2f}, "
           f"with B from {same[0]:.2f} to {same[-1]:.2f}.")
    caption = (f'One word, three contexts: the angle between the vectors of "{word}" opens with '
               "depth, wider for the other sense (C, dashed) than for the same sense (B). The "
               "angles are the real ones, arccos of the cosines the page computes.")
    return Diagram(fig, alt=alt, caption=caption)


@diagram
def pooling_choices(states: Sequence[Sequence[float]] = ((2, 0, 1), (1, 3, -1), (3, -1, 2), (0, 1, 0),
                                                        (5, 5, 5)),
                    mask: Sequence[int] = (1, 1, 1, 1, 0),
                    tokens: Sequence[str] = ("[CLS]", "the", "bank", "[SEP]", "[PAD]")) -> Diagram:
    """``[CLS]``, masked mean and masked max of a toy (T, D) matrix of token states."""
    states = [list(map(float, row)) for row in states]
    mask = list(mask)
    T, D = len(states), len(states[0])
    real = [row for row, m in zip(states, mask) if m]
    results = [("[CLS]: row 0", states[0]),
               ("masked mean", [sum(col) / len(real) for col in zip(*real)]),
               ("masked max", [max(col) for col in zip(*real)])]
    cell, left = 0.56, 1.35
    width = left + (D + 1) * cell + 0.12 + 0.75
    height = 0.55 + T * cell + 0.55 + len(results) * (cell + 0.14)
    fig, ax = draw.canvas(width, height)
    top = height - 0.4
    fills = [["state" if m else "special"] * D for m in mask]
    draw.grid(ax, left, top, [[_fmt(v) for v in row] for row in states], cell=cell, fills=fills,
              row_labels=tokens, col_labels=[f"d={j + 1}" for j in range(D)], fontsize=11,
              label_fontsize=10)
    # the mask as a column beside the states
    x_mask = left + D * cell + 0.12
    draw.grid(ax, x_mask, top, [[str(m)] for m in mask], cell=cell,
              fills=[["neutral" if m else "blocked"] for m in mask], col_labels=["m"], fontsize=11,
              label_fontsize=10)
    draw.label(ax, x_mask + cell + 0.08, top - (T - 0.5) * cell, "masked\nout", ha="left",
               fontsize=10)
    y = top - T * cell - 0.45
    draw.label(ax, left + D * cell / 2, y + 0.22, "one (D,) vector each", fontsize=10)
    for name, values in results:
        draw.grid(ax, left, y, [[_fmt(v) for v in values]], cell=cell, fills=[["state"] * D],
                  row_labels=[name], fontsize=11, label_fontsize=10)
        y -= cell + 0.14
    alt = (f"A grid of token states, {T} rows (tokens {', '.join(tokens)}) by {D} columns, with a "
           "mask column that is 1 for real tokens and 0 for the padding row. Below, three pooled "
           "vectors of the same width: the [CLS] row itself, the column means over the rows with "
           "mask 1, and the column maxima over the same rows; the padding row takes no part.")
    caption = ("Three ways to pool (T, D) states into one (D,) vector: take the [CLS] row, average "
               "the real rows, or take each column's maximum over them. The padding row is never "
               "read.")
    return Diagram(fig, alt=alt, caption=caption)


@diagram
def encode_pipeline(max_seq_length: int = 256, n_layers: int = 6, width: int = 384,
                    text: str = "Bake the bread.",
                    pieces: Sequence[str] = ("[CLS]", "bake", "the", "bread", ".", "[SEP]")) -> Diagram:
    """What ``SentenceTransformer.encode`` runs, module by module, with the shapes between them."""
    fig, ax = draw.canvas(4.6, 5.95)
    cx, w_op, w_data = 2.95, 3.1, 2.7
    y = 5.7
    draw.box(ax, cx, y, 2.2, 0.42, f'"{text}"', "token", fontsize=11)
    draw.label(ax, 0.05, y, "text", ha="left", fontsize=10)
    steps = [  # (module name, label, role): a module's step, or the data between two modules
        ("tokenizer", f"tokenize, truncate at {max_seq_length}", "neutral"),
        ("ids and mask\n(B, T)", None, "token"),
        ("module 0\nTransformer", f"BertModel, {n_layers} layers", "weight"),
        ("", f"token states (B, T, D={width})", "state"),
        ("module 1\nPooling", "mean over T where mask = 1", "neutral"),
        ("", "s  (B, D)", "state"),
        ("module 2\nNormalize", r"$e = s / \|s\|_2$", "neutral"),
        ("", "e  (B, D), unit length", "state"),
    ]
    for module, s, role in steps:
        y_next = y - 0.67
        draw.arrow(ax, (cx, y - 0.22), (cx, y_next + 0.22))
        y = y_next
        if s is None:  # the token ids, as chips
            roles = ["special" if p in SPECIAL else "token" for p in pieces]
            sizes = [draw.text_size(ax, p, 10, family="monospace")[0] + 0.12 for p in pieces]
            start = cx - (sum(sizes) + 0.05 * (len(pieces) - 1)) / 2
            draw.chips(ax, start, y, list(pieces), roles, fontsize=10, height=0.36, pad=0.06, gap=0.05)
        else:
            draw.box(ax, cx, y, w_data if role == "state" else w_op, 0.42, s, role, fontsize=11)
        if module:
            draw.label(ax, 0.05, y, module, ha="left", fontsize=10,
                       style="italic" if "module" in module else "normal")
    alt = ("A vertical pipeline. The text 'Bake the bread.' is tokenized and truncated at "
           f"{max_seq_length} tokens into input ids and an attention mask of shape (B, T); module 0, "
           f"the Transformer (a BertModel of {n_layers} layers), turns them into token states "
           f"(B, T, D={width}); module 1, Pooling, takes the masked mean over T into s of shape "
           "(B, D); module 2, Normalize, divides s by its L2 norm into the unit-length embedding e.")
    caption = ("SentenceTransformer.encode, as the model folder's modules.json assembles it: "
               "tokenize, encoder, masked mean, L2 normalization.")
    return Diagram(fig, alt=alt, caption=caption)


@diagram
def cosine_angles(query: str = "how long to bake the bread",
                  documents: Sequence[tuple[str, float]] = (("Rye loaf (recipe)", 0.62),
                                                            ("Sourdough starter (recipe)", 0.48),
                                                            ("Lease clause (legal)", 0.05))) -> Diagram:
    """Sentence vectors as arrows: each document at the angle arccos(cosine) from the query."""
    from matplotlib.patches import Arc

    n = len(documents)
    width, r = 4.8, 1.55
    legend_h = 0.4 + 0.3 * n
    # room below the centre for documents more than 90 degrees away (negative cosine)
    below = r * max([0.0] + [-max(-1.0, min(1.0, cos)) for _, cos in documents]) + 0.3
    height = legend_h + below + r + 0.45
    fig, ax = draw.canvas(width, height)
    cx, cy = width / 2, legend_h + below
    angles = [math.degrees(math.acos(max(-1.0, min(1.0, cos)))) for _, cos in documents]
    right, left = max([90.0] + angles[0::2]), max([90.0] + angles[1::2])
    # the unit circle, as far round as the arrows go (angles counter-clockwise from +x)
    ax.add_patch(Arc((cx, cy), 2 * r, 2 * r, theta1=90 - right, theta2=90 + left, color="#bbbbbb",
                     linewidth=1.0, linestyle="--"))
    draw.arrow(ax, (cx, cy), (cx, cy + r), color=draw.COLORS["neutral"], width=2.2)
    draw.label(ax, cx, cy + r + 0.2, f'query: "{query}"', fontsize=10)
    for rank, (name, cos) in enumerate(documents):
        angle = math.degrees(math.acos(max(-1.0, min(1.0, cos))))
        a = math.radians(angle) * (1 if rank % 2 == 0 else -1)  # alternately right and left
        draw.arrow(ax, (cx, cy), (cx + r * math.sin(a), cy + r * math.cos(a)),
                   color=draw.COLORS["state"], width=1.6)
        draw.label(ax, cx + (r + 0.17) * math.sin(a), cy + (r + 0.17) * math.cos(a), str(rank + 1),
                   fontsize=11, weight="bold")
        draw.label(ax, 0.1, legend_h - 0.45 - 0.3 * rank,
                   f"{rank + 1}  {name}: cos {cos:.2f}, angle {angle:.0f}°", ha="left", fontsize=10)
    draw.label(ax, 0.1, legend_h - 0.12, "unit vectors, so cosine = dot product", ha="left",
               fontsize=10, style="italic")
    alt = ("A circle of unit vectors. The query's sentence vector points straight up; each "
           "document's vector is drawn at its angle from the query, arccos of their cosine, "
           "alternately to the right and left: "
           + "; ".join(f"{name} at cosine {cos:.2f}" for name, cos in documents) + ".")
    caption = ("Cosine similarity as an angle: the smaller the angle between two unit sentence "
               "vectors, the larger their dot product. Each document is drawn at its real angle "
               "from the query (the angles between documents are not to scale).")
    return Diagram(fig, alt=alt, caption=caption)
