"""The tokenization chapter's diagrams: the pipeline, BPE merges, the byte alphabet, three algorithms, special tokens, padding.

Tokens are yellow chips (:data:`book.diagrams.draw.COLORS` ``"token"``), special tokens and padding
grey, what is lost or read from the wrong place vermillion, operations dark grey. Every function
draws a meaningful example when called with no arguments (values computed once with the course's
tokenizers and written here); the chapter passes the values it computes, so the pictures show the
page's own results.
"""

from __future__ import annotations

from typing import Sequence

from book.diagrams import draw
from book.diagrams.core import Diagram, diagram

MONO = "monospace"

# -- the examples drawn when no values are passed (the page passes its own) ------------------------
PIPELINE_TEXT = "Naïve tokenizers!"
PIPELINE = {
    "SmolLM2": {
        "normalizer": ["Naïve tokenizers!"],
        "pre-tokenizer": ["NaÃ¯ve", "Ġtokenizers", "!"],
        "model": ["Na", "Ã¯ve", "Ġtoken", "izers", "!"],
        "post-processor": ["Na", "Ã¯ve", "Ġtoken", "izers", "!"],
    },
    "MiniLM": {
        "normalizer": ["naive tokenizers!"],
        "pre-tokenizer": ["naive", "tokenizers", "!"],
        "model": ["naive", "token", "##izer", "##s", "!"],
        "post-processor": ["[CLS]", "naive", "token", "##izer", "##s", "!", "[SEP]"],
    },
}
PIPELINE_IDS = {"SmolLM2": [26062, 46494, 9624, 7927, 17], "MiniLM": [101, 15743, 19204, 17629, 2015, 999, 102]}

TOY_WORDS = {"low": 5, "lower": 2, "newest": 6, "widest": 3}  # Sennrich et al.'s example words
TOY_MERGES = [("e", "s", 9), ("es", "t", 9), ("l", "o", 7), ("lo", "w", 7), ("e", "w", 6), ("n", "ew", 6)]
TOY_WORD = "lowest"

BYTES_TEXT = "Go  café\n"
BYTES_TOKENS = ["Go", "Ġ", "ĠcafÃ©", "Ċ"]

THREE_WORD = "tokenizers"
THREE = [
    ("BPE", "SmolLM2", "replay the learned merges", ["Ġ", *"tokenizers"], ["Ġtoken", "izers"],
     ["ĠðŁ", "¤", "ĸ"], "token"),
    ("WordPiece", "MiniLM", "longest match from the left", ["tokenizers"], ["token", "##izer", "##s"],
     ["[UNK]"], "blocked"),
    ("SentencePiece", "toy unigram, byte fallback", "most probable split", ["▁tokenizers"],
     ["▁token", "i", "z", "ers"], ["▁", "<0xF0>", "<0x9F>", "<0xA4>", "<0x96>"], "token"),
]

SPECIAL = {
    "MiniLM, one text": (["[CLS]", "where", "is", "it", "?", "[SEP]"], None),
    "MiniLM, a pair": (["[CLS]", "where", "is", "it", "?", "[SEP]", "left", ".", "[SEP]"],
                       [0, 0, 0, 0, 0, 0, 1, 1, 1]),
    "SmolLM2, one text": (["Where", "Ġis", "Ġit", "?"], None),
}
CHAT = ["<|im_start|>", "system", "Ċ", "(default system prompt)", "<|im_end|>", "Ċ", "<|im_start|>", "user", "Ċ",
        "Where", "Ġis", "Ġit", "?", "<|im_end|>", "Ċ", "<|im_start|>", "ass", "istant", "Ċ"]

PADDING = {
    "short": ["Hi", "Ġthere"],
    "long": ["The", "Ġcapital", "Ġof", "ĠFrance", "Ġis"],
}


def _is_special(piece: str) -> bool:
    return (piece.startswith("[") and piece.endswith("]")) or (piece.startswith("<|") and piece.endswith("|>"))


def _width(ax, piece: str, fontsize: float, pad: float = 0.07) -> float:
    return draw.text_size(ax, piece, fontsize, family=MONO)[0] + 2 * pad


def _row(ax, x: float, y: float, pieces: Sequence[str], fontsize: float = 10.5, roles=None,
         pad: float = 0.07, gap: float = 0.05, height: float = 0.32) -> list[tuple[float, float]]:
    """A row of chips from x; special tokens grey. Returns each chip's (centre, width)."""
    roles = roles or ["special" if _is_special(p) else "neutral" if p.startswith("(") else "token" for p in pieces]
    return draw.chips(ax, x, y, list(pieces), roles, fontsize=fontsize, height=height, pad=pad, gap=gap,
                      family=MONO)


def _row_width(ax, pieces: Sequence[str], fontsize: float = 10.5, pad: float = 0.07, gap: float = 0.05) -> float:
    return sum(_width(ax, p, fontsize, pad) for p in pieces) + gap * max(len(pieces) - 1, 0)


# -- 1. the pipeline ------------------------------------------------------------------------------------
@diagram
def pipeline(text: str = PIPELINE_TEXT, stages: dict | None = None, ids: dict | None = None) -> Diagram:
    """One sentence through both tokenizers' four stages: normalizer, pre-tokenizer, model, post-processor.

    ``stages[tokenizer][stage]`` is the list of pieces after that stage; ``ids[tokenizer]`` the final ids.
    """
    stages = stages or PIPELINE
    ids = ids or PIPELINE_IDS
    names = list(stages)
    steps = list(next(iter(stages.values())))
    what = {"normalizer": "clean up the text", "pre-tokenizer": "cut it into words",
            "model": "split words into vocabulary tokens", "post-processor": "add special tokens",
            "input_ids": "look up each token's id"}
    font, x0 = 10.5, 0.28
    lane_w = x0 + 0.85
    band = 0.5 + 0.4 * len(names)
    height = 0.55 + band * (len(steps) + 1)
    probe = draw.canvas(1.0, 1.0)[1]
    widest = max(_row_width(probe, [str(i) for i in ids[n]] if step == "input_ids" else stages[n][step], font)
                 for n in names for step in [*steps, "input_ids"])
    fig, ax = draw.canvas(max(5.0, lane_w + widest + 0.1), height)
    y = height - 0.3
    draw.box(ax, lane_w + _width(ax, text, 11.5, 0.14) / 2, y, _width(ax, text, 11.5, 0.14), 0.4, text, "token",
             fontsize=11.5, family=MONO)
    draw.label(ax, x0, y, "text", fontsize=10.5, ha="left", style="italic")
    draw.arrow(ax, (0.1, y), (0.1, 0.25), width=1.2)
    y -= 0.05
    for number, step in enumerate([*steps, "input_ids"], start=1):
        y -= 0.5
        head = f"{number}  {step}"
        draw.label(ax, x0, y, head, fontsize=11, ha="left", weight="bold")
        head_w = draw.text_size(ax, head, 11, weight="bold")[0]
        draw.label(ax, x0 + head_w + 0.12, y, what[step], fontsize=10.5, ha="left", color=draw.COLORS["neutral"])
        for name in names:
            y -= 0.4
            draw.label(ax, x0 + 0.08, y, name, fontsize=10.5, ha="left", color=draw.COLORS["neutral"])
            if step == "input_ids":
                pieces = [str(i) for i in ids[name]]
                roles = ["special" if _is_special(p) else "token" for p in stages[name][steps[-1]]]
                _row(ax, lane_w, y, pieces, font, roles=roles)
            else:
                _row(ax, lane_w, y, stages[name][step], font)
    return Diagram(
        fig,
        alt=(f"The text {text!r} goes down through four stages for two tokenizers, SmolLM2 above and "
             "MiniLM below. The normalizer leaves SmolLM2's text unchanged and lowercases MiniLM's and "
             "removes its accents. The pre-tokenizer cuts the text into words and punctuation; SmolLM2's "
             "pieces are already written in its byte alphabet, with G-dot for a space. The model splits each "
             "piece into vocabulary tokens: SmolLM2 into byte-pair pieces, MiniLM into WordPiece pieces "
             "marked with two hashes. The post-processor adds [CLS] and [SEP] around MiniLM's tokens and "
             "nothing to SmolLM2's. The last row gives each token's id, what the model reads."),
        caption=("A tokenizer is four stages in a row. The same text ends as different tokens and ids for "
                 "the two models: only the ids reach the network."),
    )


# -- 2. BPE merges ----------------------------------------------------------------------------------------
def _apply(word: str, merges) -> list[tuple[str, str, str, int]]:
    """The merges that fire on ``word`` in rank order: (left, right, merged, rank)."""
    symbols, fired = list(word), []
    for rank, (a, b, *_) in enumerate(merges, start=1):
        i = 0
        while i < len(symbols) - 1:
            if symbols[i] == a and symbols[i + 1] == b:
                symbols[i:i + 2] = [a + b]
                fired.append((a, b, a + b, rank))
            i += 1
    return fired


@diagram
def bpe_merges(words: dict | None = None, merges: Sequence | None = None, word: str = TOY_WORD) -> Diagram:
    """The merge table learned from a toy corpus, and an unseen word built from it bottom-up.

    ``merges`` is a list of (left, right, count) in the order they were learned.
    """
    words = words or TOY_WORDS
    merges = list(merges or TOY_MERGES)
    fig, ax = draw.canvas(5.2, 0.95 + 0.34 * len(merges) + 0.55)
    top = fig.get_figheight()
    corpus = "   ".join(f"{w} ×{f}" for w, f in words.items())
    draw.label(ax, 0.05, top - 0.2, "corpus:", fontsize=11, ha="left", weight="bold")
    draw.label(ax, 0.85, top - 0.2, corpus, fontsize=11, ha="left", family=MONO)
    # the merge table
    y = top - 0.62
    for x, name in [(0.3, "rank"), (1.2, "merge"), (2.15, "count")]:
        draw.label(ax, x, y, name, fontsize=10.5, weight="bold")
    for rank, (a, b, count) in enumerate(merges, start=1):
        y -= 0.34
        draw.label(ax, 0.3, y, str(rank), fontsize=11)
        draw.box(ax, 1.2, y, 1.15, 0.28, f"{a}+{b}", "weight", fontsize=10.5, family=MONO)
        draw.label(ax, 2.15, y, str(count), fontsize=11)
    # the tree of the unseen word
    fired = _apply(word, merges)
    levels = len(fired)
    x_left, step = 2.85, 0.36
    base = 0.3
    nodes = [(ch, x_left + step * i + step / 2, base) for i, ch in enumerate(word)]
    for ch, x, yy in nodes:
        draw.box(ax, x, yy, 0.3, 0.28, ch, "token", fontsize=10.5, family=MONO)
    row_h = (top - 0.62 - base - 0.45) / max(levels + 1, 1)
    for level, (a, b, merged, rank) in enumerate(fired, start=1):
        i = next(k for k in range(len(nodes) - 1) if nodes[k][0] == a and nodes[k + 1][0] == b)
        (_, xa, ya), (_, xb, yb) = nodes[i], nodes[i + 1]
        x, yy = (xa + xb) / 2, base + level * row_h
        ax.plot([xa, x], [ya + 0.14, yy - 0.14], color=draw.LINE, lw=1.0)
        ax.plot([xb, x], [yb + 0.14, yy - 0.14], color=draw.LINE, lw=1.0)
        w = _width(ax, merged, 10.5, 0.07)
        draw.box(ax, x, yy, w, 0.28, merged, "token", fontsize=10.5, family=MONO)
        draw.label(ax, x + w / 2 + 0.05, yy, str(rank), fontsize=10.5, ha="left", color=draw.COLORS["weight"],
                   weight="bold")
        nodes[i:i + 2] = [(merged, x, yy)]
    draw.label(ax, x_left + step * len(word) / 2, top - 0.62, f"encoding “{word}”", fontsize=10.5,
               weight="bold")
    tokens = " + ".join(n[0] for n in nodes)
    draw.label(ax, x_left + step * len(word) / 2, top - 0.62 - 0.3, f"→ {tokens}", fontsize=10.5, family=MONO)
    return Diagram(
        fig,
        alt=(f"Left: the merge table learned from the toy corpus {corpus}, one row per merge with its rank "
             f"and the number of times the pair occurred. Right: the unseen word {word} starts as single "
             f"characters at the bottom; each merge of the table that applies joins two neighbours into "
             f"one symbol one level up, labelled with its rank, until the word is the tokens {tokens}."),
        caption=("Byte-pair encoding learns a ranked list of merges from counts; encoding replays the list "
                 "on a new word, so a word never seen in training is built from learned pieces."),
    )


# -- 3. the byte alphabet -----------------------------------------------------------------------------
def _byte_symbol(b: int) -> str:
    visible = [*range(0x21, 0x7F), *range(0xA1, 0xAD), *range(0xAE, 0x100)]
    if b in visible:
        return chr(b)
    return chr(256 + [x for x in range(256) if x not in visible].index(b))


def _shown(ch: str) -> str:
    return {" ": "␣", "\n": "↵", "\t": "⇥"}.get(ch, ch)


@diagram
def byte_alphabet(text: str = BYTES_TEXT, tokens: Sequence[str] = tuple(BYTES_TOKENS)) -> Diagram:
    """Characters -> UTF-8 bytes -> printable symbols (Ġ for 0x20, Ċ for 0x0A) -> SmolLM2's tokens."""
    data = text.encode("utf-8")
    cell, x0 = 0.4, 1.15
    width = x0 + cell * len(data) + 0.1
    fig, ax = draw.canvas(width, 2.75)
    rows = {"character": 2.35, "UTF-8 byte": 1.8, "symbol": 1.25, "token": 0.5}
    for name, y in rows.items():
        draw.label(ax, x0 - 0.1, y, name, fontsize=10.5, ha="right")
    col = 0
    for ch in text:
        n = len(ch.encode("utf-8"))
        left = x0 + cell * col
        draw.box(ax, left + n * cell / 2, rows["character"], n * cell - 0.05, 0.36, _shown(ch), "neutral",
                 fontsize=11, family=MONO, fill="white")
        col += n
    for i, b in enumerate(data):
        x = x0 + cell * (i + 0.5)
        draw.label(ax, x, rows["UTF-8 byte"], f"{b:02X}", fontsize=10.5, family=MONO)
        symbol = _byte_symbol(b)
        spacing = b in (0x20, 0x0A)  # the symbols to notice: the space and newline bytes
        draw.box(ax, x, rows["symbol"], cell - 0.05, 0.36, symbol, "token" if spacing else "neutral", fontsize=11,
                 family=MONO, fill=None if spacing else "white")
    start = 0
    for token in tokens:
        n = len(token)
        left = x0 + cell * start
        draw.box(ax, left + n * cell / 2, rows["token"], n * cell - 0.05, 0.42, token, "token", fontsize=11,
                 family=MONO)
        start += n
    if start != len(data):
        raise ValueError(f"the tokens {list(tokens)} spell {start} bytes, not the {len(data)} bytes of {text!r}; "
                         "pass the tokenizer's tokens for this text")
    ax.plot([x0, x0 + cell * len(data)], [0.88, 0.88], color=draw.LINE, lw=0.6, ls=":")
    return Diagram(
        fig,
        alt=(f"The text {text!r} written four ways, one column per byte. Top row: its characters, the "
             "accented letter spanning the two bytes it takes in UTF-8. Second row: each byte in hexadecimal. "
             "Third row: the printable symbol byte-level BPE uses for each byte; the space byte 20 is always "
             "G-dot and the newline byte 0A is always C-dot, highlighted, whether they start a token, stand "
             "alone or follow another space. Bottom row: SmolLM2's tokens, each covering the bytes it "
             f"spells: {' '.join(tokens)}."),
        caption=("Byte-level BPE works on UTF-8 bytes, each written as one printable symbol: Ġ is the space "
                 "byte 0x20 and Ċ the newline byte 0x0A, wherever they stand in a token."),
    )


# -- 4. three algorithms ------------------------------------------------------------------------------
@diagram
def three_algorithms(word: str = THREE_WORD, rows: Sequence | None = None) -> Diagram:
    """One word through BPE, WordPiece and SentencePiece: what each sees, how it splits, what it does with an unknown character.

    ``rows`` holds (algorithm, model, rule, input pieces, output pieces, unknown pieces, unknown role).
    """
    rows = list(rows or THREE)
    font = 10.5
    per = 1.62
    fig, ax = draw.canvas(4.9, per * len(rows) + 0.1)
    y = fig.get_figheight() - 0.2
    for algorithm, model, rule, seen, pieces, unknown, unknown_role in rows:
        draw.label(ax, 0.05, y, f"{algorithm}", fontsize=11.5, ha="left", weight="bold")
        name_w = draw.text_size(ax, algorithm, 11.5, weight="bold")[0]
        draw.label(ax, 0.05 + name_w + 0.12, y, f"({model}): {rule}", fontsize=10.5, ha="left")
        for label, chips, role in [("sees", seen, "token"), ("tokens", pieces, "token"),
                                   ("an emoji", unknown, unknown_role)]:
            y -= 0.4
            draw.label(ax, 0.15, y, label, fontsize=10.5, ha="left", color=draw.COLORS["neutral"])
            _row(ax, 1.05, y, chips, font, roles=[role] * len(chips), pad=0.05, gap=0.04)
        y -= 0.42
    return Diagram(
        fig,
        alt=(f"The word {word} through three algorithms, one panel each. Byte-level BPE, as in SmolLM2, sees "
             "the word as bytes after a G-dot space symbol and merges learned pairs into a few pieces; an "
             "emoji becomes byte pieces. WordPiece, as in MiniLM, sees the lowercased word and takes the "
             "longest vocabulary piece from the left, marking continuations with two hashes; an emoji it "
             "has no piece for becomes [UNK]. SentencePiece sees the word after the meta symbol for a space "
             "and picks the most probable split; with byte fallback an emoji becomes its four UTF-8 bytes."),
        caption=("Three ways to split a word. They differ in what they start from (bytes, lowercased "
                 "characters, characters with ▁ for spaces), in the rule and in what becomes of text "
                 "the vocabulary cannot spell."),
    )


# -- 5. special tokens ----------------------------------------------------------------------------------
@diagram
def special_tokens(rows: dict | None = None, chat: Sequence[str] = tuple(CHAT)) -> Diagram:
    """What the post-processor wraps around a sequence (MiniLM) or not (SmolLM2), and what a chat template writes."""
    rows = rows or SPECIAL
    font, limit = 10.5, 4.95
    probe = draw.canvas(1.0, 1.0)[1]
    lines, line, x = [], [], 0.15
    for piece in chat:  # wrap the chat tokens into lines that fit
        w = _width(probe, piece, font, 0.05)
        if x + w > limit and line:
            lines.append(line)
            line, x = [], 0.15
        line.append(piece)
        x += w + 0.04
    lines.append(line)
    height = sum(0.95 + (0.62 if seg is not None else 0) for _, seg in rows.values()) + 0.5 + 0.42 * len(lines)
    fig, ax = draw.canvas(5.0, height)
    y = height - 0.22
    for name, (pieces, segments) in rows.items():
        draw.label(ax, 0.05, y, name, fontsize=11, ha="left", weight="bold")
        y -= 0.4
        placed = _row(ax, 0.15, y, pieces, font)
        if segments is not None:
            y -= 0.34
            for (cx, _), segment in zip(placed, segments):
                draw.label(ax, cx, y, str(segment), fontsize=10.5, family=MONO,
                           color=draw.COLORS["weight"] if segment else draw.TEXT)
            y -= 0.28
            draw.label(ax, 0.15, y, "↑ token_type_ids: which text each token belongs to", fontsize=10.5,
                       ha="left", color=draw.COLORS["neutral"])
        y -= 0.55
    draw.label(ax, 0.05, y, "SmolLM2, through its chat template", fontsize=11, ha="left", weight="bold")
    for line in lines:
        y -= 0.42
        _row(ax, 0.15, y, line, font, pad=0.05, gap=0.04)
    return Diagram(
        fig,
        alt=("Four token rows. MiniLM's post-processor wraps one text as [CLS] text [SEP], shown in grey, "
             "and a pair of texts as [CLS] first [SEP] second [SEP], with token_type_ids 0 for the first "
             "segment and 1 for the second. SmolLM2's post-processor adds nothing to a text. In a chat, "
             "SmolLM2's special tokens come from its chat template instead: <|im_start|> and a role open "
             "each turn, <|im_end|> closes it, and the prompt ends by opening the assistant's turn."),
        caption=("Special tokens enter a sequence in two ways: MiniLM's post-processor adds [CLS] and [SEP] "
                 "to every input; SmolLM2's adds none, and its chat template writes the turn markers."),
    )


# -- 6. padding ------------------------------------------------------------------------------------------
@diagram
def padding(short: Sequence[str] = tuple(PADDING["short"]), long: Sequence[str] = tuple(PADDING["long"])) -> Diagram:
    """A batch of two prompts padded on the right and on the left: tokens, attention mask, and the column generate reads."""
    font = 10.5
    probe = draw.canvas(1.0, 1.0)[1]
    cell_w = max(_width(probe, p, font, 0.0) for p in (*short, *long, "pad")) + 0.14
    T = max(len(short), len(long))
    x0 = 0.1
    fig, ax = draw.canvas(max(x0 + cell_w * T + 0.1, 4.2), 5.5)
    y = 5.28
    for side in ["right", "left"]:
        draw.label(ax, x0, y, f'padding_side="{side}"', fontsize=11, ha="left", weight="bold", family=MONO)
        y -= 0.32
        draw.label(ax, x0, y, "tokens (B, T)", fontsize=10.5, ha="left", color=draw.COLORS["neutral"])
        for pieces in (short, long):
            y -= 0.38
            pad = T - len(pieces)
            cells = [*pieces, *[None] * pad] if side == "right" else [*[None] * pad, *pieces]
            for j, piece in enumerate(cells):
                x = x0 + cell_w * (j + 0.5)
                if piece is None:
                    role = "blocked" if side == "right" and j == T - 1 else "special"
                    draw.box(ax, x, y, cell_w - 0.05, 0.32, "pad", role, fontsize=font, family=MONO, rounded=False)
                else:
                    draw.box(ax, x, y, cell_w - 0.05, 0.32, piece, "token", fontsize=font, family=MONO,
                             rounded=False)
        y -= 0.36
        draw.label(ax, x0, y, "attention_mask (B, T)", fontsize=10.5, ha="left", color=draw.COLORS["neutral"])
        for pieces in (short, long):
            y -= 0.32
            pad = T - len(pieces)
            mask = [1] * len(pieces) + [0] * pad if side == "right" else [0] * pad + [1] * len(pieces)
            for j, bit in enumerate(mask):
                draw.box(ax, x0 + cell_w * (j + 0.5), y, cell_w - 0.05, 0.26, str(bit),
                         "neutral", fontsize=10.5, family=MONO, fill="white" if bit else draw.tint("special"),
                         rounded=False)
        y -= 0.34
        colour = draw.COLORS["blocked"] if side == "right" else draw.TEXT
        verdict = "a pad" if side == "right" else "each prompt's last token"
        draw.label(ax, x0 + cell_w * T, y, f"generate reads the last column: {verdict} ↑", fontsize=10.5,
                   ha="right", color=colour)
        y -= 0.5
    return Diagram(
        fig,
        alt=("Two prompts of different lengths batched into a rectangle twice, each time with its attention "
             "mask below, 1 for a real token and 0 for a pad. With padding on the right, the short prompt is "
             "followed by pad cells and its last column is a pad, marked in vermillion: generate, which reads "
             "the last column, would continue from a pad. With padding on the left, the pads come first and "
             "every prompt's last real token sits in the last column."),
        caption=("Padding makes a batch rectangular and the attention mask marks the real tokens. A decoder "
                 "that generates reads the last column, so its prompts are padded on the left."),
    )
