"""The graded labs: one spec module per lab, each declaring its :class:`~autograder.spec.Lab` as ``LAB``.

* :mod:`autograder.specs.lab1_attention`: split_heads, merge_heads, scaled_dot_product_attention, repeat_kv, self_attention.
* :mod:`autograder.specs.lab2_pooling`: mean_pool, max_pool, embed_sentences.
* :mod:`autograder.specs.lab3_tokens`: add_tokens.

The worker can never import this package (nor ``solutions``): only the grader reads the
hidden cases and computes the expected values. ``conftest.py`` lets pytest run a spec directly
(``python -m pytest autograder/specs/lab1_attention.py --submission alice.ipynb``) to debug it.
"""

from __future__ import annotations

import importlib

SPECS = {
    "lab1": "autograder.specs.lab1_attention",
    "lab2": "autograder.specs.lab2_pooling",
    "lab3": "autograder.specs.lab3_tokens",
}


def select(lab: str) -> list[str]:
    """The lab names ``--lab`` means: one lab, or every lab for ``all``."""
    if lab == "all":
        return list(SPECS)
    if lab not in SPECS:
        raise ValueError(f"There is no lab {lab!r}: use one of {', '.join(SPECS)} or all.")
    return [lab]


def load(lab: str):
    """The spec module of ``lab`` (imported on first use: lab 2 and 3 load models to compute their truths)."""
    return importlib.import_module(SPECS[select(lab)[0]])
