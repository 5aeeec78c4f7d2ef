"""autograder.tolerances: every tolerance sits between the worst correct implementation and the least visible mistake."""

from __future__ import annotations

import json

import pytest
import torch

from autograder import tolerances
from book.labs.compare import TOLERANCES


@pytest.fixture(scope="module")
def measured():
    """The evidence measured afresh on the visible inputs and two students' hidden ones (the record used more)."""
    return tolerances.measure(students=2)


def test_every_tolerance_passes_the_correct_implementations_and_fails_the_mistakes(measured):
    outside = [(r.check, r.dtype, f"correct {r.correct:.2e} by {r.correct_by}", f"tolerance {r.tolerance:g}",
                f"mistake {r.mistake:.2e}: {r.mistake_by}") for r in measured if not r.ok]
    assert outside == []


def test_the_evidence_covers_every_numeric_check_and_dtype(measured):
    covered = {(r.check, r.dtype) for r in measured}
    for dtype in ("float64", "float32", "bfloat16"):
        for check in ("scaled_dot_product_attention: output", "scaled_dot_product_attention: weights", "mean_pool",
                      "max_pool"):
            assert (check, dtype) in covered
    assert {("self_attention", "float32"), ("embed_sentences", "float32"), ("add_tokens: new rows", "float32")} <= covered
    assert all(r.cases >= 3 and r.correct_by and r.mistake_by for r in measured)


def test_why_names_the_worst_correct_implementation_even_where_all_are_exact(measured):
    max_pool = [r for r in measured if r.check == "max_pool"]
    assert max_pool and all(r.correct_by for r in max_pool)
    exact = [r for r in max_pool if r.correct == 0]
    assert exact and "every correct implementation is exact" in exact[0].why()
    assert "worst correct: " in measured[0].why() and ": ;" not in " ".join(r.why() for r in measured)


def test_write_never_writes_inside_an_installed_package(tmp_path, monkeypatch):
    assert tolerances.write_target(tmp_path / "evidence.json") == tmp_path / "evidence.json"
    assert tolerances.write_target(None) == tolerances.RECORD  # a checkout: its own record
    installed = tmp_path / "lib" / "python3.11" / "site-packages"
    monkeypatch.setattr(tolerances, "RECORD", installed / "autograder" / "specs" / "tolerances.json")
    monkeypatch.setattr(tolerances, "ROOT", installed)
    with pytest.raises(tolerances.RecordError, match="installed as a package"):
        tolerances.write_target(None)


def test_the_recorded_evidence_matches_the_tolerances_in_force():
    record = json.loads(tolerances.RECORD.read_text())
    in_force = {str(dtype).replace("torch.", ""): tol.atol for dtype, tol in TOLERANCES.items()}
    assert record["margin"] == tolerances.MARGIN and record["rows"]
    for row in record["rows"]:
        assert row["tolerance"] == in_force[row["dtype"]], "the record is stale: python -m autograder tolerances --write"
        assert row["ok"], row


def test_needed_is_the_smallest_passing_tolerance():
    expected = torch.tensor([0.0, 10.0, -3.0])
    actual = expected + torch.tensor([1e-3, 1e-2, 0.0])
    t = tolerances.needed(actual, expected)
    assert t == pytest.approx(max(1e-3 / 1, 1e-2 / 11))
    assert ((actual - expected).abs() <= t + t * expected.abs() + 1e-15).all()
    assert tolerances.needed(torch.tensor([float("nan")]), torch.tensor([1.0])) == float("inf")
    assert tolerances.needed(actual, expected, where=torch.tensor([True, False, True])) == pytest.approx(1e-3)
