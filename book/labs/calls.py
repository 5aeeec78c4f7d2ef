"""How a rule's check calls a student's function, in a notebook and in the grader's worker alike.

A check talks to the student's code through a *student* object:

* ``student.f(*args, **kwargs)`` calls the student's ``f`` and returns its result;
* ``student.call("f", *args, fresh=False, observe=(), **kwargs)`` returns a :class:`Reply`: the
  result and what :func:`observe` saw of the (mutated) arguments afterwards; ``fresh`` gives
  the function copies of the preloaded objects it receives, which it may change;
* ``student.preloaded("encoder_model")`` is a handle on a course model or tokenizer the function
  receives (the grader's worker loaded them once; a notebook loads them once too);
* ``student.linear(weight, bias)`` is a handle on a ``torch.nn.Linear`` built from plain weights.

:class:`book.labcheck.NotebookStudent` calls the functions of a notebook directly;
``autograder.session.Student`` calls them in the grader's sandbox, where the same two helpers below
run: :func:`observe`, and :func:`references_in` (a function that calls another function of the
lab runs with the lab's reference for it).
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field


@dataclass
class Reply:
    """What a call returned: the function's result, what was observed afterwards, the time it took."""

    result: object
    observed: dict = field(default_factory=dict)
    seconds: float = 0.0


def linear_module(weight, bias):
    """The ``torch.nn.Linear`` of a weight (out, in) and bias (out,), in the weight's dtype, without gradients."""
    import torch

    layer = torch.nn.Linear(weight.shape[1], weight.shape[0], bias=bias is not None)
    with torch.no_grad():
        layer.weight.copy_(weight)
        if bias is not None:
            layer.bias.copy_(bias)
    return layer.to(weight.dtype).requires_grad_(False)


@contextlib.contextmanager
def references_in(namespace: dict, references: dict):
    """Within the block, ``namespace`` (a notebook's or a submission's globals) holds ``references`` instead of
    the student's functions of those names: a function that calls them by name calls the references."""
    missing = object()
    saved = {name: namespace.get(name, missing) for name in references}
    namespace.update(references)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is missing:
                namespace.pop(name, None)
            else:
                namespace[name] = value


def observe(spec: dict, args: list) -> dict:
    """What a check asked to see of a mutated argument after a call (a tokenizer, a model's embeddings).

    ``spec["what"]`` is ``"tokenizer"`` (with ``"texts"``: how each encodes, and decodes without the
    special tokens; and the tokenizer's length) or ``"embeddings"`` (with ``"rows"`` and ``"from_row"``:
    those rows of the input and output embeddings, rows ``from_row`` on (at most 64), their shapes,
    and whether the output head is still the input embeddings' tensor).
    """
    import torch

    target = args[spec["arg"]]
    if spec["what"] == "tokenizer":
        encoded = [target.encode(s, add_special_tokens=False) for s in spec["texts"]]
        return {
            "len": len(target),
            "encode": encoded,
            "decode_skipping_special": [target.decode(ids, skip_special_tokens=True) for ids in encoded],
        }
    if spec["what"] == "embeddings":
        size = target.get_input_embeddings().weight.shape[0]
        tail = list(range(spec["from_row"], min(size, spec["from_row"] + 64)))
        rows = torch.tensor(list(spec["rows"]) + tail, dtype=torch.long)
        found = {}
        with torch.no_grad():
            for side, module in (("input", target.get_input_embeddings()), ("output", target.get_output_embeddings())):
                if module is None:
                    continue
                weight = module.weight
                found[side] = {"shape": list(weight.shape), "dtype": str(weight.dtype).replace("torch.", "")}
                inside = rows[rows < weight.shape[0]]
                found[side]["rows"] = weight[inside.to(weight.device)].detach().cpu().clone()  # (rows, D)
                found[side]["row_ids"] = inside.tolist()
            if "input" in found and "output" in found:
                found["tied"] = bool(
                    target.get_output_embeddings().weight.data_ptr() == target.get_input_embeddings().weight.data_ptr()
                )
        return found
    raise ValueError(f"unknown observation {spec['what']!r}")
