"""Lab 3, tokens: the points of each rule of :mod:`book.labs.lab3`, and how its hidden cases are drawn.

A hidden case keeps its template's model, special or not, and kinds of string (a mixed-case
word, an angle-bracket tag, a word that is a token already, a repeated string, a non-ASCII
word...); the strings themselves are drawn for each student from the pools below.
"""

from __future__ import annotations

from autograder.spec import Lab, hidden, visible
from book.labs import lab3
from book.labs.lab3 import CASES, AddCase, pristine

LAB = Lab(lab3.LAB, notebook="labs/lab3_tokens.ipynb", reference="solutions/tokens.py",
          # add_tokens touches only the tokenizer, the embeddings and a tied head: the layers stay unloaded (memory).
          preload=("encoder:vocabulary", "decoder:vocabulary"))
rule = lab3.LAB.rule


# What hidden cases are drawn from: each template's kinds of string, a pool for each kind.
POOLS = {
    "mixed-case": ("GPUs", "TPUs", "LoRA", "ReLU", "FLOPs", "GeLU", "QLoRA", "NaNs"),
    "angle": ("<think>", "<tool>", "<cite>", "<plan>", "<step>", "<draft>"),
    "common": ("hello", "attention", "house", "world", "water", "music", "river", "paper"),
    "rare": ("detokenizer", "quantization", "dequantizer", "perplexities", "softmaxed", "embeddable", "rotary",
             "tokenwise", "unpadded", "prefill"),
    "model-name": ("MiniLM", "SmolLM", "DeBERTa", "RoBERTa", "ELECTRA", "ALBERT"),
    "non-ascii": ("Gödel", "naïve", "Erdős", "façade", "Ångström", "Dvořák"),
    "marker": ("lab", "quiz", "note", "step", "task"),
    "entity": ("ENT", "LOC", "ORG", "PER", "DATE"),
}


# How feedback names a drawn string of each pool (it never quotes one: book.labs.lab3.AddCase.quote).
KINDS = {"mixed-case": "a mixed-case word", "angle": "an angle-bracket tag", "common": "a word that is one token already",
         "rare": "a rare word", "model-name": "a model name", "non-ascii": "a non-ASCII word"}


def _fresh(tokenizer, draw, pool: str, taken: set[str]) -> str:
    """A string of ``pool`` that the tokenizer splits into several pieces (a new token), not taken yet."""
    options = [s for s in POOLS[pool] if s not in taken and not lab3.is_token(tokenizer, s)]
    return draw.choice(options)


def _existing(tokenizer, draw) -> str:
    """A common word that is one token already (it must not be added)."""
    return draw.choice([s for s in POOLS["common"] if lab3.is_token(tokenizer, s)])


def drawn_case(template: AddCase, draw) -> AddCase:
    """A hidden case with the structure of ``template`` for one student (shared by the hidden tests of that template).

    Kept: the model, special or not, and the kinds of string (a mixed-case word, an angle-bracket tag, a word
    that is a token already, a repeated string, a non-ASCII word...); drawn: the strings themselves.
    """
    name = next(name for name, case in CASES.items() if case == template)
    draw = draw.named(f"lab3/{name}")
    case = template
    tokenizer, _ = pristine(case.role)
    taken: set[str] = set()

    def fresh(pool: str) -> str:
        string = _fresh(tokenizer, draw, pool, taken)
        taken.add(string)
        return string

    if name == "minilm":
        mixed = fresh("mixed-case")
        strings = (mixed, _existing(tokenizer, draw), fresh("rare"), mixed, fresh("model-name"), _existing(tokenizer, draw))
        kinds = (KINDS["mixed-case"], KINDS["common"], KINDS["rare"], f"{KINDS['mixed-case']}, repeated",
                 KINDS["model-name"], KINDS["common"])
        sentences = ()
    elif name == "smollm2":
        tag, mixed = fresh("angle"), fresh("mixed-case")
        strings = (mixed, tag, _existing(tokenizer, draw), fresh("rare"), tag, fresh("non-ascii"))
        kinds = (KINDS["mixed-case"], KINDS["angle"], KINDS["common"], KINDS["rare"], f"{KINDS['angle']}, repeated",
                 KINDS["non-ascii"])
        sentences = (f"We {tag} about {mixed}.",)
    elif name == "smollm2-special":
        marker = draw.choice(POOLS["marker"])
        strings = (f"<|{marker}_start|>", f"<|{marker}_end|>")
        kinds = ("an opening special marker", "a closing special marker")
        sentences = (f"one {strings[0]}two{strings[1]} three",)
    else:  # minilm-special
        entity = draw.choice(POOLS["entity"])
        strings = (f"[{entity}]", f"[/{entity}]")
        kinds = ("an opening bracketed tag", "a closing bracketed tag")
        sentences = (f"the {strings[0]} paris {strings[1]} city",)
    return AddCase(case.role, strings, case.special, sentences, hidden=True, kinds=kinds)



test_ids = visible(rule("ids"), points=1)
test_existing_and_repeated_strings = visible(rule("existing_and_repeated_strings"), points=1)
test_existing_and_repeated_strings_smollm2 = hidden(rule("existing_and_repeated_strings_smollm2"), points=1, draw=drawn_case)
test_encodes_to_one_id = visible(rule("encodes_to_one_id"), points=1)
test_embeddings_resized = visible(rule("embeddings_resized"), points=1)
test_new_rows_are_mean_of_pieces = visible(rule("new_rows_are_mean_of_pieces"), points=2)
test_special_rows_are_mean_of_pieces = hidden(rule("special_rows_are_mean_of_pieces"), points=1, draw=drawn_case)
test_tied_head = visible(rule("tied_head"), points=1)
test_special_tokens = visible(rule("special_tokens"), points=2)
test_special_tokens_minilm = hidden(rule("special_tokens_minilm"), points=1, draw=drawn_case)
test_ordinary_tokens_are_kept_by_decode = hidden(rule("ordinary_tokens_are_kept_by_decode"), points=1, draw=drawn_case)


def prepare(tests) -> None:
    """Compute the visible cases' truths once, before grading starts (hidden ones depend on the student)."""
    lab3.visible_truths()
