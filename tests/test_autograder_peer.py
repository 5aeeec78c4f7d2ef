"""autograder.peer: the otter assignment is the lab's spec, test for test, and its tests run as otter runs them.

otter-grader itself is not needed here: its OK-format tests are doctests run on a copy of the
notebook's globals (``doctest.DocTest`` copies them), which is what these tests do.
"""

from __future__ import annotations

import doctest
import json

import pytest

from autograder import bench, peer, spec, specs
from book import ROOT


def run_ok_test(text: str, namespace: dict) -> bool:
    """Run one OK-format test file's cases as otter does (doctest, on the namespace); True when all pass."""
    loaded: dict = {}
    exec(text, loaded)
    examples = []
    for case in loaded["test"]["suites"][0]["cases"]:
        examples += [e for e in doctest.DocTestParser().parse(case["code"]) if isinstance(e, doctest.Example)]
    test = doctest.DocTest(examples, namespace, "peer", None, None, None)
    runner = doctest.DocTestRunner(verbose=False)
    runner.run(test, clear_globs=False, out=lambda text: None)
    return runner.summarize(verbose=False).failed == 0


def executed(source: str) -> dict:
    """The globals of the notebook ``peer.notebook(source)`` after running every cell, as a kernel leaves them."""
    namespace = {"__name__": "__main__"}
    for cell in json.loads(peer.notebook(source))["cells"]:
        exec(compile(cell["source"], "<cell>", "exec"), namespace)
    return namespace


@pytest.fixture(scope="module")
def lab1_tests():
    return peer.ok_tests("lab1")


def test_one_otter_test_per_graded_test_with_the_same_points_and_visibility(lab1_tests):
    graded = spec.collect(specs.load("lab1"))
    assert len(lab1_tests) == len(graded)  # file names are unique: none overwrites another
    cases = []
    for text in lab1_tests.values():
        loaded: dict = {}
        exec(text, loaded)
        cases += loaded["test"]["suites"][0]["cases"]
    assert [(c["name"], c["points"], c["hidden"]) for c in cases] == [(t.name, t.points, t.hidden) for t in graded]


def test_the_reference_passes_every_otter_test(lab1_tests):
    namespace = executed((ROOT / "solutions" / "attention.py").read_text())
    failed = [name for name, text in lab1_tests.items() if not run_ok_test(text, dict(namespace))]
    assert failed == []


def test_a_mistake_fails_its_own_tests_and_not_those_of_the_functions_that_call_it(lab1_tests):
    reference = (ROOT / "solutions" / "attention.py").read_text()
    mutant = next(m for m in bench.MUTANTS if m.name == "softmax-over-queries")
    namespace = executed(bench.mutate(reference, mutant))
    failed = {name for name, text in lab1_tests.items() if not run_ok_test(text, dict(namespace))}
    assert any("sdpa_no_mask" in name for name in failed)
    # self_attention runs with the lab's reference attention, as in llm-grade: its points are not lost twice
    assert not any("self_attention" in name for name in failed)


def test_submissions_alternate_the_reference_and_the_classic_mistakes(tmp_path):
    paths = peer.submissions(tmp_path, "lab1", 6)
    assert [p.name.split("-", 1)[1] for p in paths][::2] == ["correct.ipynb"] * 3
    assert len({p.read_text() for p in paths[1::2]}) == 3
