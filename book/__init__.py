"""The runtime the LLM Internals book, labs and autograder share.

* :mod:`book.models`: the model registry (roles, profiles, offline packages, hub fallback).
* :mod:`book.convert`: the one-time GGUF to safetensors conversion behind the registry.
* :mod:`book.env`: the environment report each chapter shows, and the compute device.
* :mod:`book.corpus`: the course corpus and the loader for your own texts.
* :mod:`book.plotting`: the course's figure style.
* :mod:`book.build`: building the book without stale cached outputs, and timing the build.
* :mod:`book.notebooks`: the MyST pages and their generated ``.ipynb`` pairs.
* :mod:`book.sphinx_site`: the Sphinx extension for the built site (offline math, clean scripts).
"""

from pathlib import Path

# The course checkout: the folder above this package. The grader, the build and the tests find the
# pages, the reference solutions and the lab notebooks from here (an editable install, as
# `make install` does; a lab's install cell never needs it).
ROOT = Path(__file__).resolve().parent.parent

from book.corpus import load_corpus  # noqa: E402
from book.env import device, report  # noqa: E402
from book.models import load_model, load_tokenizer  # noqa: E402

__all__ = ["ROOT", "device", "load_corpus", "load_model", "load_tokenizer", "report"]
