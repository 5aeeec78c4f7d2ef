"""Lab 3, tokens: the truth behind the checks of add_tokens, on MiniLM (WordPiece, uncased, untied) and SmolLM2
(byte-level BPE, tied head).

``add_tokens`` changes the tokenizer and the model it is given, so every call gets fresh copies
of both. After the call the check looks at what it needs (:func:`book.labs.calls.observe`): how
each string encodes and decodes now, the tokenizer's length, the embedding matrices' shapes,
their new rows and a seeded sample of the old ones, and whether the output head is still tied.
The truth is computed from the tokenizer and embeddings as they were before the call: that is
the definition of the task (a new row is the mean of the rows of the pieces the string used to
be split into). A string is already a token when it encodes to exactly one id (:func:`is_token`),
and then it is not added again.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from pathlib import Path

import torch

from book.labs import Lab, Rules, cached, course_vocabulary_model
from book.labs.compare import Cause, Mismatch, check_close

FUNCTIONS = ("add_tokens",)
# The mean of every row of each role's embedding matrix (a likely cause's value), saved so that the grader need not
# read the whole matrix: for SmolLM2 that is 113 MB of pages a lab 3 grading otherwise never touches. Used only where
# the checkpoint's fingerprint matches (:func:`row_mean`); ``tests/test_labs.py`` checks it against the files.
ROW_MEANS = Path(__file__).parent / "data" / "lab3_row_means.safetensors"
RULES = Rules()
MODELS = {"encoder": "MiniLM", "decoder": "SmolLM2"}


@dataclass(frozen=True)
class AddCase:
    role: str  # "encoder" (MiniLM) or "decoder" (SmolLM2)
    strings: tuple[str, ...]
    special: bool = False
    sentences: tuple[str, ...] = ()  # also encoded and decoded afterwards
    hidden: bool = False  # drawn for one student: feedback describes its strings, never quotes them
    kinds: tuple[str, ...] = ()  # a hidden case's kind of each string ("a mixed-case word"), what feedback says instead

    def label(self) -> str:
        strings = f"{len(self.strings)} hidden strings" if self.hidden else str(list(self.strings))
        return f"add_tokens({MODELS[self.role]} tokenizer, model, {strings}{', special=True' if self.special else ''})"

    def quote(self, text: str) -> str:
        """``text`` as feedback names it: quoted for a public case; for a hidden one, its place and kind
        ("hidden string 2 (an angle-bracket tag)", "hidden sentence 1"), so that no drawn input is ever shown."""
        if not self.hidden:
            return repr(text)
        if text in self.strings:
            index = self.strings.index(text)
            kind = f" ({self.kinds[index]})" if index < len(self.kinds) else ""
            return f"hidden string {index + 1}{kind}"
        if text in self.sentences:
            return f"hidden sentence {self.sentences.index(text) + 1}"
        return "a hidden text"

    def quote_all(self, texts) -> str:
        return "[" + ", ".join(self.quote(t) for t in texts) + "]"

    def drawn_texts(self) -> tuple[str, ...]:
        """What the grader removes from any feedback on this case (autograder.spec.redact): a hidden case's texts."""
        return self.strings + self.sentences if self.hidden else ()

    def ids(self, ids: list[int]) -> str:
        """Token ids of a string as feedback shows them: for a hidden string, only how many (its pieces' ids would
        spell it out)."""
        return f"{len(ids)} ids" if self.hidden else str(ids)


CASES = {
    # "GPUs" is mixed case: MiniLM lowercases its input, and the added token must still match. "hello" and
    # "attention" are tokens already; "GPUs" comes twice. One call per case serves all its rules.
    "minilm": AddCase("encoder", ("GPUs", "hello", "detokenizer", "GPUs", "MiniLM", "attention")),
    "smollm2": AddCase("decoder", ("GPUs", "<think>", "hello", "quantization", "<think>", "Gödel"),
                       sentences=("We <think> about GPUs.",)),
    "smollm2-special": AddCase("decoder", ("<|lab_start|>", "<|lab_end|>"), special=True,
                               sentences=("one <|lab_start|>two<|lab_end|> three",)),
    "minilm-special": AddCase("encoder", ("[ENT]", "[/ENT]"), special=True, sentences=("the [ENT] paris [/ENT] city",)),
}


def is_token(tokenizer, text: str) -> bool:
    """Whether ``text`` is already a token: it encodes to exactly one id (without [CLS]/[SEP] and the like)."""
    return len(tokenizer.encode(text, add_special_tokens=False)) == 1


class FileTokenizer:
    """A checkpoint's ``tokenizer.json`` read by the tokenizers library, with what the truths ask of transformers'
    tokenizer before any token is added: ``encode(text, add_special_tokens=...)`` and ``len``."""

    def __init__(self, tokenizer):
        self.tokenizer = tokenizer
        tokenizer.no_truncation()
        tokenizer.no_padding()

    def encode(self, text: str, add_special_tokens: bool = True) -> list[int]:
        return self.tokenizer.encode(text, add_special_tokens=add_special_tokens).ids

    def __len__(self) -> int:
        return self.tokenizer.get_vocab_size(with_added_tokens=True)


# The input embedding matrix's name in the course checkpoints (SmolLM2's Llama, MiniLM's BERT).
EMBEDDING_NAMES = ("model.embed_tokens.weight", "embeddings.word_embeddings.weight", "bert.embeddings.word_embeddings.weight")


def _from_files(role: str):
    """``role``'s tokenizer and input embedding matrix read from its checkpoint's files, or None where it has no
    tokenizer.json and single model.safetensors holding the matrix."""
    from safetensors import safe_open
    from tokenizers import Tokenizer

    from book.models import resolve

    folder = Path(resolve(role).location)
    if not (folder / "tokenizer.json").is_file() or not (folder / "model.safetensors").is_file():
        return None
    with safe_open(str(folder / "model.safetensors"), "pt") as opened:
        name = next((n for n in EMBEDDING_NAMES if n in opened.keys()), None)
        if name is None:
            return None
        weight = opened.get_tensor(name)  # memory-mapped: only the pages of the rows read are loaded
    return FileTokenizer(Tokenizer.from_file(str(folder / "tokenizer.json"))), weight


@cached
def pristine(role: str):
    """The tokenizer and the input embedding matrix (V, D) of ``role`` as loaded, never changed.

    Read from the checkpoint's own files where it can be (``tokenizer.json`` by the tokenizers
    library, the matrix memory-mapped from ``model.safetensors``): the grader then imports no
    transformers model class (about 130 MB of modules) for lab 3. ``tests/test_labs.py`` checks
    both against transformers' tokenizer and the loaded model's embeddings.
    """
    found = _from_files(role)
    if found is not None:
        return found
    tokenizer, model = course_vocabulary_model(role)
    # No copy: nothing in the grader writes to it, and only the rows the truths read are paged in.
    return tokenizer, model.get_input_embeddings().weight.detach()  # (V, D)


def fingerprint(weight: torch.Tensor) -> str:
    """The shape, dtype and a checksum of 16 rows spread over an embedding matrix (V, D): which checkpoint it is."""
    V = weight.shape[0]
    rows = weight[torch.linspace(0, V - 1, 16).long()].contiguous()  # (16, D): 16 pages read, not the matrix
    return f"{tuple(weight.shape)} {weight.dtype} {zlib.crc32(rows.view(torch.uint8).numpy().tobytes()):08x}"


@cached
def row_mean(role: str) -> torch.Tensor:
    """The mean of every row of ``role``'s embedding matrix, (D,) float64: saved where the checkpoint is the saved one."""
    _, weight = pristine(role)
    if ROW_MEANS.is_file():
        from safetensors import safe_open

        with safe_open(str(ROW_MEANS), "pt") as saved:
            if (saved.metadata() or {}).get(role) == fingerprint(weight):
                return saved.get_tensor(role)
    return weight.mean(dim=0).double()  # no float64 copy of the whole matrix


def save_row_means(path: Path = ROW_MEANS) -> None:
    """Write :data:`ROW_MEANS` from the course's checkpoints (after a model changes: the fingerprint then differs)."""
    from safetensors.torch import save_file

    means, prints = {}, {}
    for role in MODELS:
        _, weight = pristine(role)
        means[role], prints[role] = weight.mean(dim=0).double().contiguous(), fingerprint(weight)
    save_file(means, str(path), metadata=prints)


@cached
def expectation(case: AddCase) -> dict:
    """What add_tokens must do for ``case``, from the tokenizer and embeddings before the call."""
    tokenizer, weight = pristine(case.role)
    old = len(tokenizer)
    pieces = {s: tokenizer.encode(s, add_special_tokens=False) for s in case.strings}
    existing = {s: pieces[s][0] for s in case.strings if is_token(tokenizer, s)}  # already one token: not added
    new = [s for s in dict.fromkeys(case.strings) if s not in existing]
    means = {s: weight[torch.tensor(pieces[s])].double().mean(dim=0) for s in new}  # (D,) each
    average = row_mean(case.role)  # (D,): the mean of every row
    causes = {s: [Cause("the row is all zeros: set it to the mean of the rows of the pieces the string was split into.",
                        torch.zeros_like(means[s])),
                  Cause("the row is the mean of every row of the matrix (what resize_token_embeddings puts in new rows by "
                        "default), not the mean of the rows of this string's own pieces.", average),
                  # the same words in Colab and in hidden feedback (which must not quote a drawn string's pieces)
                  Cause(f"the row is the row of its first piece: average the rows of all its {len(pieces[s])} pieces.",
                        weight[pieces[s][0]].double()),
                  Cause("the row is the sum of its pieces' rows: divide by their number (take the mean).",
                        weight[torch.tensor(pieces[s])].double().sum(dim=0))] for s in new}
    generator = torch.Generator().manual_seed(zlib.crc32(repr(case.strings).encode()))
    sample = sorted({0, old - 1, *torch.randint(0, old, (32,), generator=generator).tolist(),
                     *[i for s in new for i in pieces[s]]})
    return {"old": old, "width": weight.shape[1], "pieces": pieces, "existing": existing, "new": new, "means": means,
            "causes": causes, "sample": sample, "old_rows": weight[torch.tensor(sample)]}


def add(student, case: AddCase):
    """Run the student's add_tokens on ``case`` in a fresh child; every test of the case shares this one call."""
    expected = expectation(case)
    observe = [
        {"name": "tokenizer", "what": "tokenizer", "arg": 0, "texts": list(case.strings) + list(case.sentences)},
        {"name": "embeddings", "what": "embeddings", "arg": 1, "rows": expected["sample"], "from_row": expected["old"]},
    ]
    kwargs = {"special": True} if case.special else {}
    reply = student.call("add_tokens", student.preloaded(f"{case.role}_tokenizer"),
                         student.preloaded(f"{case.role}_model"), list(case.strings),
                         fresh=True, observe=observe, **kwargs)
    ids = reply.result
    if not (isinstance(ids, (list, tuple)) and all(isinstance(i, int) and not isinstance(i, bool) for i in ids)):
        raise Mismatch(f"{case.label()} should return a list of int ids, but it returned {type(ids).__name__} "
                       f"{str(ids)[:80]}.")
    if len(ids) != len(case.strings):
        raise Mismatch(f"{case.label()} returned {len(ids)} ids for {len(case.strings)} strings: return one id per "
                       "requested string, in order (repeats and existing tokens included).")
    return case, expected, list(ids), reply.observed


def rows_by_id(observed: dict, side: str = "input") -> dict[int, torch.Tensor]:
    found = observed["embeddings"].get(side)
    if found is None:
        return {}
    return dict(zip(found["row_ids"], found["rows"]))


@RULES.add("ids", "add_tokens",
           "add_tokens must return one int id per requested string, in order, a new id for each new string.",
           {"minilm": CASES["minilm"], "smollm2": CASES["smollm2"]})
def check_ids(student, case: AddCase) -> None:
    case, expected, ids, _ = add(student, case)
    fresh = {s: token_id for s, token_id in zip(case.strings, ids) if s in expected["new"]}
    if len(set(fresh.values())) != len(fresh) or any(i < expected["old"] for i in fresh.values()):
        raise Mismatch(f"{case.label()}: the new strings {case.quote_all(expected['new'])} got ids {list(fresh.values())}; "
                       f"each new token needs its own id, from {expected['old']} (the old vocabulary size) up.")


def check_existing_and_repeated(student, case: AddCase) -> None:
    case, expected, ids, observed = add(student, case)
    first = {}
    for s, token_id in zip(case.strings, ids):
        if s in expected["existing"] and token_id != expected["existing"][s]:
            raise Mismatch(f"{case.label()}: {case.quote(s)} is already a token, but another id was returned; do not add "
                           "a string that already encodes to one id." if case.hidden else
                           f"{case.label()}: {s!r} is already token {expected['existing'][s]}, but {token_id} was returned; "
                           "do not add a string that already encodes to one id.")
        if s in first and first[s] != token_id:
            raise Mismatch(f"{case.label()}: {case.quote(s)} appears twice and got two ids, {first[s]} and {token_id}: "
                           "add it once.")
        first.setdefault(s, token_id)
    size, grown = observed["tokenizer"]["len"], expected["old"] + len(expected["new"])
    if size != grown:
        raise Mismatch(f"{case.label()}: the tokenizer has {size} tokens, expected {grown} ({expected['old']} + "
                       f"{len(expected['new'])} new strings); add only strings that are not one token yet, each once.")


RULES.add("existing_and_repeated_strings", "add_tokens",
          "A string that is already a token, or repeated, must not be added again: it keeps its one id.",
          {"minilm": CASES["minilm"]})(check_existing_and_repeated)


RULES.add("existing_and_repeated_strings_smollm2", "add_tokens",
          "Existing and repeated strings must be handled for SmolLM2's byte-level tokenizer too.",
          {"smollm2": CASES["smollm2"]})(check_existing_and_repeated)


@RULES.add("encodes_to_one_id", "add_tokens",
           "After add_tokens, tokenizer.encode(s, add_special_tokens=False) must be [id] for every string.",
           {"minilm": CASES["minilm"], "smollm2": CASES["smollm2"]})
def check_encodes_to_one_id(student, case: AddCase) -> None:
    case, _, ids, observed = add(student, case)
    for s, token_id, encoded in zip(case.strings, ids, observed["tokenizer"]["encode"]):
        if encoded != [token_id]:
            raise Mismatch(f"{case.label()}: afterwards {case.quote(s)} encodes to {case.ids(encoded)}, expected "
                           f"[{token_id}]. Add it with tokenizer.add_tokens (an uncased tokenizer needs a normalized token).")


@RULES.add("embeddings_resized", "add_tokens",
           "The input embeddings must grow to len(tokenizer) rows, every old row unchanged.",
           {"minilm": CASES["minilm"], "smollm2": CASES["smollm2"]})
def check_embeddings_resized(student, case: AddCase) -> None:
    case, expected, _, observed = add(student, case)
    size, shape = observed["tokenizer"]["len"], observed["embeddings"]["input"]["shape"]
    if shape != [size, expected["width"]]:
        raise Mismatch(f"{case.label()}: the input embeddings have shape {tuple(shape)}, expected ({size}, "
                       f"{expected['width']}) for a tokenizer of {size} tokens: resize them to len(tokenizer) with "
                       "model.resize_token_embeddings.")
    rows = rows_by_id(observed)
    old_rows = torch.stack([rows[i] for i in expected["sample"]])  # (sample, D)
    changed = (old_rows != expected["old_rows"]).any(dim=-1)
    if changed.any():
        first = expected["sample"][int(changed.nonzero()[0])]
        raise Mismatch(f"{case.label()}: the existing embedding row {first} changed ({int(changed.sum())} of "
                       f"{len(expected['sample'])} sampled old rows did): only the new rows may be written.")


def check_new_rows(student, case: AddCase) -> None:
    case, expected, ids, observed = add(student, case)
    rows = rows_by_id(observed)
    for s, token_id in zip(case.strings, ids):
        if s not in expected["new"]:
            continue
        if token_id not in rows:
            raise Mismatch(f"{case.label()}: there is no embedding row {token_id} for {case.quote(s)}: resize the "
                           "embeddings to len(tokenizer).")
        try:
            check_close(rows[token_id], expected["means"][s],
                        f"{case.label()}: the row of {case.quote(s)} (the mean of the rows of its pieces "
                        f"{case.ids(expected['pieces'][s])})",
                        dtype=rows[token_id].dtype, dims="(D,)", causes=expected["causes"][s])
        except Mismatch as mismatch:
            if "Likely cause" in str(mismatch):
                raise
            raise Mismatch(f"{mismatch} Likely cause: the row is none of the usual mistakes (zeros, the matrix's mean, "
                           "one piece's row) and looks random, as resize_token_embeddings leaves new rows: after resizing, "
                           "set it from the pieces the string was split into before it was added.") from None


RULES.add("new_rows_are_mean_of_pieces", "add_tokens",
          "Each new token's embedding row must be the mean of the rows of the pieces it was split into before.",
          {"minilm": CASES["minilm"], "smollm2": CASES["smollm2"]})(check_new_rows)


RULES.add("special_rows_are_mean_of_pieces", "add_tokens",
          "Special tokens get mean-of-pieces embedding rows too.",
          {"smollm2-special": CASES["smollm2-special"]})(check_new_rows)


@RULES.add("tied_head", "add_tokens",
           "SmolLM2's output head must stay tied to the input embeddings, with the same new rows.",
           {"smollm2": CASES["smollm2"]})
def check_tied_head(student, case: AddCase) -> None:
    case, expected, ids, observed = add(student, case)
    embeddings = observed["embeddings"]
    if "output" not in embeddings or not embeddings.get("tied"):
        raise Mismatch(f"{case.label()}: SmolLM2's output head is no longer the same tensor as its input embeddings: resize "
                       "with model.resize_token_embeddings, which ties them again, instead of replacing one of them.")
    if embeddings["output"]["shape"] != embeddings["input"]["shape"]:
        raise Mismatch(f"{case.label()}: the output head has shape {tuple(embeddings['output']['shape'])}, the input "
                       f"embeddings {tuple(embeddings['input']['shape'])}: both must have len(tokenizer) rows.")


def check_special(student, case: AddCase) -> None:
    case, _, ids, observed = add(student, case)
    tokenizer = observed["tokenizer"]
    for s, token_id, encoded in zip(case.strings, ids, tokenizer["encode"]):
        if encoded != [token_id]:
            raise Mismatch(f"{case.label()}: afterwards {case.quote(s)} encodes to {case.ids(encoded)}, expected [{token_id}].")
    for text, decoded in zip(case.strings + case.sentences, tokenizer["decode_skipping_special"]):
        shown = [s for s in case.strings if s.lower() in decoded.lower()]  # an uncased tokenizer decodes "[ENT]" as "[ent]"
        if not shown:
            continue
        shows = f"still shows them: {decoded!r}" if not case.hidden else "still shows them"
        raise Mismatch(f"{case.label()}: with special=True the tokens must be special, but decode(encode({case.quote(text)}), "
                       f"skip_special_tokens=True) {shows}. Likely cause: the tokenizer does not "
                       "know them as special tokens. Add them with tokenizer.add_special_tokens as AddedToken(..., "
                       "special=True, normalized=False): with normalized=True an uncased tokenizer such as MiniLM's "
                       "lowercases them, and no longer knows them as special.")


RULES.add("special_tokens", "add_tokens",
          "With special=True the strings must become special tokens: one id each, dropped by decode(..., skip_special_tokens=True).",
          {"smollm2-special": CASES["smollm2-special"]})(check_special)


RULES.add("special_tokens_minilm", "add_tokens",
          "special=True must work for MiniLM's tokenizer too.",
          {"minilm-special": CASES["minilm-special"]})(check_special)


@RULES.add("ordinary_tokens_are_kept_by_decode", "add_tokens",
           "Without special=True the new tokens are ordinary text: decoding keeps them.",
           {"smollm2": CASES["smollm2"]})
def check_ordinary_tokens_are_kept_by_decode(student, case: AddCase) -> None:
    case, expected, _, observed = add(student, case)
    for text, decoded in zip(case.strings, observed["tokenizer"]["decode_skipping_special"]):
        # Only ASCII strings: a byte-level tokenizer decodes an added non-ASCII token byte by byte ("Gödel" -> "G�del").
        if text in expected["new"] and text.isascii() and decoded.strip() != text:
            decodes = f"decodes to {decoded!r}" if not case.hidden else "decodes to something else"
            raise Mismatch(f"{case.label()}: {case.quote(text)} {decodes} with skip_special_tokens=True: without "
                           "special=True, add ordinary tokens.")


LAB = Lab(name="lab3", title="Tokens", functions=FUNCTIONS, rules=tuple(RULES.rules))


def visible_truths() -> None:
    """Compute the truths of every public case once (the grader does it before grading starts)."""
    for case in CASES.values():
        expectation(case)
