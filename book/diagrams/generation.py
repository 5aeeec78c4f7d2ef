"""The generation chapter's diagrams: the loop, the chat template, sampling filters, padding, the KV cache.

Every diagram uses the course's notation (``B``, ``T``, ``Tq``/``Tk``, ``Hkv``, ``Dh``, ``V``) and
colours (:data:`book.diagrams.draw.COLORS`): tokens yellow, special tokens and padding grey, keys
orange, values blue, hidden states green, what a filter or a mask removes vermillion. Each draws a
meaningful example with no arguments; the chapter passes what it computed (SmolLM2's tokens, the
toy distribution, the tokenizer's padding) so the pictures show the page's own results.
"""

from __future__ import annotations

import math
from typing import Sequence

from book.diagrams import draw
from book.diagrams.core import Diagram, diagram

# The chapter's toy next-token distribution: five words after "The capital of France is".
TOY_WORDS = ("Paris", "a", "the", "Lyon", "big")
TOY_LOGITS = (3.0, 1.5, 1.2, 0.5, -0.5)
SPECIAL = ("<|im_start|>", "<|im_end|>")


def _softmax(logits: Sequence[float]) -> list[float]:
    finite = [z for z in logits if z != -math.inf]
    top = max(finite)
    e = [math.exp(z - top) if z != -math.inf else 0.0 for z in logits]
    return [x / sum(e) for x in e]


def _shown(piece: str) -> str:
    """A token's text as a chip shows it: spaces as ␣, line breaks as ⏎."""
    return piece.replace(" ", "␣").replace("\n", "⏎")


def _roles(pieces: Sequence[str]) -> list[str]:
    return ["special" if p in SPECIAL else "token" for p in pieces]


@diagram
def loop(prompt: Sequence[str] = ("The", " capital", " of", " France", " is"),
         candidates: Sequence[tuple[str, float]] = ((" Paris", 0.81), (" the", 0.05), (" a", 0.03)),
         n_layers: int = 30) -> Diagram:
    """The generation loop: ids -> forward -> logits of the last position -> pick -> append, with the cache."""
    fig, ax = draw.canvas(5.0, 5.3)
    pieces = [_shown(p) for p in prompt]
    top = 4.95
    draw.label(ax, 0.05, top + 0.05, "ids so far (B, T)", ha="left", fontsize=11)
    placed = draw.chips(ax, 0.05, top - 0.38, pieces, _roles(prompt), fontsize=11)
    right = placed[-1][0] + placed[-1][1] / 2
    new = _shown(candidates[0][0])
    new_w = draw.text_size(ax, new, 11, family="monospace")[0] + 0.18
    draw.box(ax, right + 0.06 + new_w / 2, top - 0.38, new_w, 0.36, new, "state", fontsize=11, family="monospace",
             linestyle="--")
    # the forward pass, with the cache beside it
    draw.arrow(ax, (1.6, top - 0.6), (1.6, 3.92), "forward", label_offset=(0.45, 0.0))
    draw.box(ax, 1.6, 3.6, 2.9, 0.6, f"decoder: {n_layers} layers", "weight", fontsize=11)
    draw.box(ax, 4.0, 3.6, 1.2, 0.95, "KV cache\n+1 token\nper step", "key", fontsize=11)
    draw.arrow(ax, (3.07, 3.72), (3.4, 3.72))
    draw.arrow(ax, (3.4, 3.48), (3.07, 3.48))
    # the logits of the last position, as bars
    draw.arrow(ax, (1.6, 3.3), (1.6, 2.95), "last position", label_offset=(0.8, 0.0))
    draw.label(ax, 0.05, 2.75, "logits → softmax (B, V)", ha="left", fontsize=11)
    y = 2.35
    for piece, prob in candidates:
        draw.label(ax, 1.05, y, _shown(piece), ha="right", fontsize=11, family="monospace")
        width = max(0.05, 2.4 * prob)
        draw.box(ax, 1.15 + width / 2, y, width, 0.26, role="token", rounded=False)
        draw.label(ax, 1.22 + width, y, f"{prob:.2f}" if prob >= 0.005 else "< 0.01", ha="left", fontsize=11)
        y -= 0.36
    draw.label(ax, 1.05, y + 0.04, "…", ha="right", fontsize=11)
    # pick, then append
    draw.box(ax, 1.6, 0.42, 2.9, 0.55, "pick: greedy or sample", "neutral", fontsize=11)
    draw.arrow(ax, (1.6, y - 0.1), (1.6, 0.71))
    new_right = right + 0.06 + new_w
    ax.plot([3.07, 4.85, 4.85], [0.42, 0.42, top - 0.38], color=draw.LINE, linewidth=1.3)
    draw.arrow(ax, (4.85, top - 0.38), (new_right + 0.02, top - 0.38))
    draw.label(ax, 4.75, 1.6, "append", ha="right", fontsize=11)
    draw.label(ax, 3.8, 0.64, "next id", fontsize=11)
    return Diagram(
        fig,
        alt=("The generation loop. The ids of the text so far, a row of token chips, go through the decoder's "
             "layers in a forward pass; beside the decoder a KV cache keeps the keys and values of the tokens "
             "already seen and grows by one token per step. The logits at the last position, turned into "
             "probabilities, rank the candidates for the next token; a pick, greedy or sampled, chooses one, "
             "and it is appended to the ids before the loop runs again."),
        caption=("Generation is a loop around the model: forward, read the last position's logits, pick one "
                 "token, append it, repeat until the end-of-sequence token or the token budget."),
    )


def _split(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


@diagram
def chat_template(turns: Sequence[tuple[str, str]] = (("system", "You are a helpful AI assistant named SmolLM…"),
                                                     ("user", "What is the capital of France?")),
                  ids: dict | None = None, user_given: Sequence[bool] = (False, True)) -> Diagram:
    """Messages -> the rendered string: one row of chips per turn, special tokens grey, and the generation prompt."""
    ids = ids or {"<|im_start|>": 1, "<|im_end|>": 2}
    fig, ax = draw.canvas(5.2, 4.2)
    top = 3.95
    draw.label(ax, 0.05, top, "messages (a list of dicts)", ha="left", fontsize=11, weight="bold")
    y = top - 0.42
    for (role, content), given in zip(turns, user_given):
        text = f"{role}: {_split(content, 30 if given else 22)}" + ("" if given else " (default)")
        draw.box(ax, 2.55, y, 5.0, 0.36, text, "neutral" if given else "special", fontsize=11,
                 linestyle="-" if given else "--")
        y -= 0.44
    draw.arrow(ax, (2.55, y + 0.2), (2.55, y - 0.2), "apply_chat_template", label_offset=(1.05, 0.0))
    y -= 0.45
    draw.label(ax, 0.05, y, "the rendered text, one turn per line", ha="left", fontsize=11, weight="bold")
    y -= 0.42
    for role, content in turns:
        pieces = ["<|im_start|>", role, "⏎", _split(content, 10), "<|im_end|>", "⏎"]
        draw.chips(ax, 0.05, y, pieces, _roles(pieces), fontsize=10.5, pad=0.06, gap=0.04)
        y -= 0.46
    pieces = ["<|im_start|>", "assistant", "⏎"]
    placed = draw.chips(ax, 0.05, y, pieces, _roles(pieces), fontsize=10.5, pad=0.06, gap=0.04)
    edge = placed[-1][0] + placed[-1][1] / 2
    draw.label(ax, edge + 0.1, y, "← add_generation_prompt", ha="left", fontsize=10.5)
    y -= 0.5
    start, end = ids["<|im_start|>"], ids["<|im_end|>"]
    draw.box(ax, 1.3, y, 2.5, 0.36, f"<|im_start|> = id {start}", "special", fontsize=10.5, family="monospace")
    draw.box(ax, 3.9, y, 2.5, 0.36, f"<|im_end|> = id {end}", "special", fontsize=10.5, family="monospace")
    return Diagram(
        fig,
        alt=("A conversation as a list of messages, a default system message and a user question, goes through "
             "apply_chat_template and comes out as one text: each turn is the special token im_start, the role, "
             "a line break, the content, the special token im_end and a line break. With "
             "add_generation_prompt, a last line im_start assistant line break opens the answer. The two special "
             "tokens are single ids."),
        caption=("The chat template writes every turn between <|im_start|> and <|im_end|>; the generation "
                 "prompt opens the assistant's turn so that the model's next tokens are its answer."),
    )


def _bars(ax, x, y, probs, removed, words, title, scale=0.95, slot=0.46):
    """One panel of vertical bars, ``y`` the baseline; removed tokens drawn as vermillion dashed outlines."""
    draw.label(ax, x, y + scale + 0.45, title, ha="left", fontsize=11, weight="bold")
    for i, (p, gone, word) in enumerate(zip(probs, removed, words)):
        cx = x + 0.25 + i * slot
        if gone:
            draw.box(ax, cx, y + 0.17, 0.36, 0.34, "×", "blocked", fontsize=11, rounded=False, linestyle="--")
        else:
            h = max(0.03, scale * p)
            draw.box(ax, cx, y + h / 2, 0.36, h, role="token", rounded=False)
            draw.label(ax, cx, y + h + 0.14, f"{p:.2f}".lstrip("0"), fontsize=11)
        draw.label(ax, cx, y - 0.17, word, fontsize=11)


@diagram
def sampling_filters(words: Sequence[str] = TOY_WORDS, logits: Sequence[float] = TOY_LOGITS,
                     tau: float = 2.0, k: int = 2, p: float = 0.9) -> Diagram:
    """The toy distribution under softmax, a temperature, a top-k cut and a top-p cut, as four bar panels."""
    words, logits = list(words), list(logits)
    n = len(words)
    base = _softmax(logits)
    hot = _softmax([z / tau for z in logits])
    order = sorted(range(n), key=lambda i: -logits[i])
    kept_k = set(order[:k])
    topk = _softmax([z if i in kept_k else -math.inf for i, z in enumerate(logits)])
    kept_p, mass = set(), 0.0
    for i in order:
        if mass >= p:
            break
        kept_p.add(i)
        mass += base[i]
    topp = _softmax([z if i in kept_p else -math.inf for i, z in enumerate(logits)])
    slot = 0.46
    panel_w = 0.25 + n * slot
    fig, ax = draw.canvas(2 * panel_w + 0.3, 3.85)
    none = [False] * n
    second = panel_w + 0.25
    _bars(ax, 0.05, 2.3, base, none, words, "softmax, τ = 1", slot=slot)
    _bars(ax, second, 2.3, hot, none, words, f"τ = {tau:g}: flatter", slot=slot)
    _bars(ax, 0.05, 0.3, topk, [i not in kept_k for i in range(n)], words, f"top-k, k = {k}", slot=slot)
    _bars(ax, second, 0.3, topp, [i not in kept_p for i in range(n)], words, f"top-p, p = {p:g}", slot=slot)
    return Diagram(
        fig,
        alt=(f"Four bar charts of the same five-word next-token distribution ({', '.join(words)}). Softmax at "
             f"temperature 1 gives most probability to the first word; temperature {tau:g} flattens the bars; "
             f"top-k with k = {k} keeps only the {k} most likely words and renormalizes; top-p with p = {p:g} "
             "keeps the most likely words until their probability reaches p. Removed words are crossed out in "
             "vermillion."),
        caption=("Temperature reshapes the whole distribution; top-k and top-p remove its tail and "
                 "renormalize what is left. Bars are probabilities; × marks a removed token."),
    )


@diagram
def padding(short: Sequence[str] = ("Hi", "!"), long: Sequence[str] = ("The", "cat", "sat", "on"),
            pad: str = "pad") -> Diagram:
    """A batch of two prompts padded on the right and on the left, the attention mask, and the column generate reads."""
    T = max(len(short), len(long))
    cell = 0.52
    x_right = 0.95
    x_left = x_right + T * cell + 0.35
    fig, ax = draw.canvas(x_left + T * cell + 0.05, 3.7)
    top = 2.85

    def panel(x, side):
        n = T - len(short)
        rows = [list(short) + [pad] * n if side == "right" else [pad] * n + list(short), list(long)]
        shown = [[_shown(p) for p in r] for r in rows]
        fills = [["special" if p == pad else "token" for p in r] for r in rows]
        masks = [["0" if p == pad else "1" for p in r] for r in rows]
        labels = ["ids 0", "ids 1"] if side == "right" else []
        draw.label(ax, x, top + 0.75, f"{side} padding", ha="left", fontsize=11, weight="bold")
        draw.grid(ax, x, top, shown, cell=cell, fills=fills, row_labels=labels, fontsize=11, label_fontsize=11)
        y_mask = top - 2 * cell - 0.12
        draw.grid(ax, x, y_mask, masks, cell=cell, fontsize=11, fills=[["neutral" if m == "0" else None for m in r]
                                                                      for r in masks],
                  row_labels=["mask 0", "mask 1"] if side == "right" else [], label_fontsize=11)
        bad = rows[0][-1] == pad
        color = draw.COLORS["blocked"] if bad else draw.COLORS["state"]
        last_x = x + (T - 0.5) * cell
        draw.arrow(ax, (last_x, top + 0.45), (last_x, top + 0.04), color=color)
        draw.label(ax, last_x - 0.3, top + 0.25, "read", ha="right", fontsize=11, color=color)
        note = "row 0 ends\nin a pad!" if bad else "both rows end\nin a real token"
        draw.label(ax, x, y_mask - 2 * cell - 0.35, note, ha="left", fontsize=11, color=color)

    panel(x_right, "right")
    panel(x_left, "left")
    return Diagram(
        fig,
        alt=("A batch of two prompts of different lengths, as rows of a grid, padded two ways side by side. With "
             "right padding the short prompt's row ends in pad tokens, so the last column, where generate reads "
             "the next-token logits, is a pad for that row. With left padding the pads come first and the last "
             "column holds the real last token of both prompts. Under each grid the attention mask is 1 for real "
             "tokens and 0 for pads."),
        caption=("generate reads the logits of the last column and appends after it: with left padding every "
                 "row's last column is a real token. The attention mask (0 for pads) hides the pads from attention."),
    )


@diagram
def prefill_decode(T: int = 4, steps: int = 2, Hkv: int = 3, Dh: int = 64) -> Diagram:
    """Prefill (Tq = T against Tk = T, causal) then decode steps (Tq = 1 against Tk growing), with the cache."""
    cell = 0.36
    x0 = 0.75
    height = 1.3 + T * cell + steps * (cell + 0.78) + 0.45
    fig, ax = draw.canvas(4.9, height)
    y = height - 0.2
    draw.label(ax, 0.05, y, f"prefill: Tq = {T} queries, Tk = {T} keys", ha="left", fontsize=11, weight="bold")
    y -= 0.55
    rows = [["" if j <= i else "×" for j in range(T)] for i in range(T)]
    fills = [["state" if j <= i else "blocked" for j in range(T)] for i in range(T)]
    draw.grid(ax, x0, y, rows, cell=cell, fills=fills, row_labels=[f"q{i}" for i in range(T)],
              col_labels=[f"k{j}" for j in range(T)], fontsize=11, label_fontsize=11)
    draw.label(ax, x0 + T * cell + 0.2, y - T * cell / 2, f"all {T} keys and values\ncomputed, then cached",
               ha="left", fontsize=11)
    y -= T * cell
    for s in range(steps):
        Tk = T + s + 1
        y -= 0.5
        draw.label(ax, 0.05, y, f"decode step {s + 1}: Tq = 1, Tk = {Tk}", ha="left", fontsize=11, weight="bold")
        y -= 0.28
        row = [["" for _ in range(Tk)]]
        fills = [["key"] * (Tk - 1) + ["state"]]
        draw.grid(ax, x0, y, row, cell=cell, fills=fills, row_labels=[f"q{Tk - 1}"], fontsize=11,
                  label_fontsize=11)
        draw.label(ax, x0 + Tk * cell + 0.15, y - cell / 2, f"{Tk - 1} from the cache + 1 new", ha="left",
                   fontsize=11)
        y -= cell
    y -= 0.3
    draw.box(ax, 0.3, y, 0.3, 0.24, role="state", rounded=False)
    draw.label(ax, 0.55, y, "computed this step", ha="left", fontsize=11)
    draw.box(ax, 2.75, y, 0.3, 0.24, role="key", rounded=False)
    draw.label(ax, 3.0, y, "read from the cache", ha="left", fontsize=11)
    y -= 0.4
    draw.label(ax, 0.05, y, f"per layer: keys and values (B, Hkv, Tk, Dh); Hkv = {Hkv}, Dh = {Dh}", ha="left",
               fontsize=10.5)
    return Diagram(
        fig,
        alt=(f"Prefill and decode. In the prefill the {T} prompt tokens are processed at once: a causal grid of "
             f"{T} queries by {T} keys, with the upper triangle blocked, and every key and value is computed and "
             "cached. Each decode step then has a single query, the newest token, which reads the cached keys "
             "(orange) and computes only its own (green), so the row grows by one key per step while the query "
             "count stays one."),
        caption=("With a KV cache the prompt is processed once (the prefill, Tq = Tk = T); every later step "
                 "feeds one token (Tq = 1) that reads all the cached keys and values (Tk grows by one)."),
    )


@diagram
def batch_stopping(rows: Sequence[Sequence[str]] = (("No", ".", "<|im_end|>", "pad", "pad"),
                                                    ("Red", ",", " blue", ",", " green")),
                   first_step: int = 1, pad: str = "pad") -> Diagram:
    """A batch of two answers: the one that reached the end-of-sequence token is padded while the other continues.

    ``rows`` are the token texts of a window of steps, the first of which is ``first_step``.
    """
    n = max(len(r) for r in rows)
    cell = 0.74
    fig, ax = draw.canvas(0.95 + n * cell + 0.05, 2.35)
    x0 = 0.95
    cells = [["eos" if p == "<|im_end|>" else ("pad" if p == pad else _shown(p)) for p in row] for row in rows]
    fills = [["special" if p in ("<|im_end|>", pad) else "token" for p in row] for row in rows]
    draw.grid(ax, x0, 1.85, cells, cell=cell, fills=fills, row_labels=["row 0", "row 1"],
              col_labels=[f"step {first_step + i}" for i in range(n)], fontsize=11, label_fontsize=10.5)
    first_eos = next((i for i, p in enumerate(rows[0]) if p == "<|im_end|>"), n - 1)
    draw.label(ax, 0.05, 0.14, f"row 0 produced eos at step {first_step + first_eos}: pad after it", ha="left",
               fontsize=11, color=draw.COLORS["blocked"])
    return Diagram(
        fig,
        alt=("Two rows of generated tokens, one per step. Row 0 produces the end-of-sequence token at an early "
             "step; every later step writes the pad token in that row, while row 1 keeps generating real tokens "
             "until it also ends or the token budget runs out."),
        caption=("In a batch, a row that has produced the end-of-sequence token is finished: generate writes "
                 "the pad token in it while the others continue, and stops when every row is finished."),
    )
