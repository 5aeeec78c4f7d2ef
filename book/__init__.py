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

from book.corpus import load_corpus
from book.env import device, report
from book.models import load_model, load_tokenizer

__all__ = ["device", "load_corpus", "load_model", "load_tokenizer", "report"]
