"""What grading imports, at the exact versions of the instructor's environment: a bundle's ``constraints.txt``.

A Gradescope image is built again whenever the assignment is rebuilt, so a bundle that named
only torch would grade next term with whatever transformers, tokenizers or numpy were newest
then. Instead the bundle carries one line ``name==version`` for every distribution grading
imports, at the version installed where the instructor tested it (``llm-grade selftest``, the
audit), and ``setup.sh`` installs exactly those, with ``--no-deps``: nothing else (no seaborn,
bitsandbytes or Jupyter, which the book needs and grading does not).

:func:`imported` finds them by doing, in a fresh Python, every import grading does for the
labs: the grader and the labs' specs and truths; the worker's imports (its common ones, the
labs' own, the model classes of the roles it loads, :func:`model_roles`); each lab notebook's
imports (what a submission runs); converting SmolLM2 (``gguf``) where a lab uses it. The packages that hold the models' files are
added (they are read, never imported). ``tests/test_autograder_requirements.py`` checks that a
whole grading run (the grader and its worker) imports nothing outside this list.
"""

from __future__ import annotations

import functools
import json
import re
import subprocess
import sys

COURSE_DISTRIBUTIONS = ("llm-internals", "llm-internals-instructor")  # installed from the bundle's own copy
MODEL_CLASSES = {"encoder": "transformers.models.bert.modeling_bert",  # all-MiniLM-L6-v2
                 "decoder": "transformers.models.llama.modeling_llama"}  # SmolLM2
PROBE = r"""
import importlib, importlib.metadata, json, sys
from autograder import extract, specs, worker
import autograder.grade
from book import ROOT

labs = sys.argv[1].split(",")
modules = list(worker.COMMON_IMPORTS) + ["tokenizers", "transformers", "safetensors.torch"]
modules += sorted(set(sys.argv[2].split(",")) - {""})
for lab in labs:
    spec = specs.load(lab)
    modules += list(spec.LAB.imports)
    for chunk in extract.load_submission(ROOT / spec.LAB.notebook).chunks:  # what a submission imports
        if chunk.kind == "import":
            try:
                exec(chunk.source, {})
            except Exception:
                pass
for module in modules:
    try:
        importlib.import_module(module)
    except Exception:
        pass
owners = importlib.metadata.packages_distributions()
found = {}
for top in {name.split(".")[0] for name in list(sys.modules)}:
    if top in sys.stdlib_module_names or top.startswith("_"):
        continue
    for distribution in owners.get(top, []):
        found[distribution] = importlib.metadata.version(distribution)
print(json.dumps(found))
"""


def _canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _public(version: str) -> str:
    """A version without its local label: torch's ``2.13.0+cpu`` is pinned as ``2.13.0`` (the CPU index serves it)."""
    return version.split("+", 1)[0]


def model_roles(lab: str) -> set[str]:
    """The model roles grading ``lab`` loads: those its worker preloads, and those its truth and spec load
    (``course_model("encoder")``, ``resolve("encoder")``, a case of role ``"decoder"``), read from their sources."""
    import importlib
    import inspect

    from autograder import specs

    spec = specs.load(lab)
    roles = {role.partition(":")[0] for role in spec.LAB.preload}
    for module in (importlib.import_module(f"book.labs.{lab}"), spec):
        source = inspect.getsource(module)
        roles |= set(re.findall(r'(?:course_model|course_vocabulary_model|resolve|load_model)\("(encoder|decoder)"\)', source))
        roles |= set(re.findall(r'Case\("(encoder|decoder)"', source))
    return roles


@functools.lru_cache(maxsize=None)
def imported(labs: tuple[str, ...]) -> dict[str, str]:
    """Every distribution grading ``labs`` imports (model packages included), with its version here: name -> version."""
    from book import models

    roles = sorted(set().union(*(model_roles(lab) for lab in labs)))
    extra = [MODEL_CLASSES[role] for role in roles if role in MODEL_CLASSES]
    if "decoder" in roles:
        extra += ["book.convert", "gguf"]  # SmolLM2 ships as GGUF: converted once, when the image is built
    finished = subprocess.run([sys.executable, "-c", PROBE, ",".join(labs), ",".join(extra)], capture_output=True,
                              text=True, timeout=600)
    if finished.returncode != 0:
        raise RuntimeError(f"Listing what grading imports failed:\n{finished.stderr[-2000:]}")
    found = json.loads(finished.stdout.strip().splitlines()[-1])
    import importlib.metadata

    for role in roles:  # the packages holding the models' files (read from disk, never imported)
        package = models.spec(role).package
        if package:
            try:
                found[package] = importlib.metadata.version(package)
            except importlib.metadata.PackageNotFoundError:
                pass
    return {name: version for name, version in found.items() if _canonical(name) not in COURSE_DISTRIBUTIONS}


def prefetch(labs) -> None:
    """Probe what grading each of ``labs`` imports, the labs side by side (each probe is a fresh Python that imports
    torch and transformers, seconds of one core's work): the bundles written next find them in :func:`imported`'s cache."""
    from concurrent.futures import ThreadPoolExecutor

    labs = list(labs)
    with ThreadPoolExecutor(max_workers=max(1, len(labs))) as pool:
        list(pool.map(lambda lab: imported((lab,)), labs))


def constraints(labs: list[str] | tuple[str, ...]) -> str:
    """``constraints.txt``: ``name==version`` for every distribution grading ``labs`` imports, sorted, with a header."""
    found = imported(tuple(labs))
    lines = [f"# What grading {', '.join(labs)} imports, at the versions of the environment the bundle was written in",
             f"# (Python {sys.version_info.major}.{sys.version_info.minor}). setup.sh installs exactly these, --no-deps."]
    lines += [f"{_canonical(name)}=={_public(version)}" for name, version in sorted(found.items(), key=lambda i: _canonical(i[0]))]
    return "\n".join(lines) + "\n"


def pinned(text: str) -> dict[str, str]:
    """The ``name -> version`` pins of a constraints file."""
    pins = {}
    for line in text.splitlines():
        line = line.split("#", 1)[0].strip()
        if "==" in line:
            name, version = line.split("==", 1)
            pins[_canonical(name)] = version.strip()
    return pins
