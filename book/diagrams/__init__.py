"""Concept diagrams drawn by code: the pictures of the mechanisms the chapters explain.

Each chapter has a module here (``book.diagrams.attention``, ``book.diagrams.tokenization``...)
whose functions return a :class:`Diagram`. A page shows one with a cell whose input is removed::

    ```{code-cell} ipython3
    :tags: [remove-input]
    diagrams.attention.score_matrix()
    ```

The diagram carries its own alt text and caption, renders as an SVG image in the book and in
Colab, and checks its own legibility when it is drawn (no text smaller than a phone can show,
no label outside its box, no two labels on top of each other): a diagram that would be
unreadable on a 390 px screen fails the build with a message that says what to change.

* :mod:`book.diagrams.core`: the :class:`Diagram` object, the registry and the legibility checks.
* :mod:`book.diagrams.draw`: the drawing primitives (boxes, arrows, grids, token chips) and the
  course's colours for each role (query, key, value, mask...).
"""

from __future__ import annotations

import importlib

from book.diagrams.core import Diagram, diagram, registry
from book.diagrams.draw import COLORS

# The chapter modules, imported on first use (``diagrams.attention``) so that a page loads only its own.
CHAPTERS = ("tokenization", "attention", "architecture", "generation", "quantization", "embeddings")

__all__ = ["COLORS", "CHAPTERS", "Diagram", "diagram", "registry"]


def __getattr__(name: str):
    if name in CHAPTERS:
        return importlib.import_module(f"book.diagrams.{name}")
    raise AttributeError(f"module 'book.diagrams' has no attribute {name!r}")


def load_all() -> dict:
    """Import every chapter module that exists and return the registry of all diagrams."""
    for name in CHAPTERS:
        try:
            importlib.import_module(f"book.diagrams.{name}")
        except ModuleNotFoundError as error:
            if error.name != f"book.diagrams.{name}":
                raise
    return registry()
