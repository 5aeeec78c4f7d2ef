"""autograder.selftest: for every lab, the reference solution scores full marks and the lab's stubs score zero."""

from __future__ import annotations

import pytest

from autograder.selftest import selftest


@pytest.fixture(scope="module")
def rows():
    return {(row.lab, row.side): row for row in selftest("all")}


@pytest.mark.parametrize("lab", ["lab1", "lab2", "lab3"])
def test_the_reference_solution_scores_full_marks(rows, lab):
    row = rows[(lab, "reference")]
    assert row.ok and row.score == row.max_score > 0, row.wrong


@pytest.mark.parametrize("lab", ["lab1", "lab2", "lab3"])
def test_the_lab_stubs_score_zero(rows, lab):
    row = rows[(lab, "stubs")]
    assert row.ok and row.score == 0 and row.error is None, row.wrong
