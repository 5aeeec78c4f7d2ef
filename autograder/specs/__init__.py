"""The graded labs: one spec module per lab, ``lab<N>_<topic>.py``, each declaring its :class:`~autograder.spec.Lab` as ``LAB``.

A spec gives points to the rules of its lab (:mod:`book.labs`) and draws its hidden cases. Specs
are found by their file names, so adding a lab adds no line here. The worker can never import
this package (nor ``solutions``): only the grader reads how hidden cases are drawn. ``conftest.py``
lets pytest run a spec directly (``python -m pytest autograder/specs/lab1_attention.py --submission
alice.ipynb``) to debug it.
"""

from __future__ import annotations

import importlib
import re
from pathlib import Path

SPEC_FILE = re.compile(r"^(lab\d+)_\w+\.py$")


def _specs() -> dict[str, str]:
    """Lab name -> spec module, from the files of this folder, in lab order."""
    found = {}
    for path in Path(__file__).parent.glob("lab*_*.py"):
        match = SPEC_FILE.match(path.name)
        if match:
            found[match.group(1)] = f"{__name__}.{path.stem}"
    return dict(sorted(found.items(), key=lambda item: int(item[0][3:])))


def select(lab: str) -> list[str]:
    """The lab names ``--lab`` means: one lab, or every lab for ``all``."""
    specs = _specs()
    if lab == "all":
        return list(specs)
    if lab not in specs:
        raise ValueError(f"There is no lab {lab!r}: use one of {', '.join(specs)} or all.")
    return [lab]


def load(lab: str):
    """The spec module of ``lab`` (imported on first use: lab 2 and 3 load models to compute their truths)."""
    return importlib.import_module(_specs()[select(lab)[0]])
