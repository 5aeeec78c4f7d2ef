"""autograder.bench: the generated class is what the benchmark claims (mutants apply, notebooks extract)."""

from __future__ import annotations

from pathlib import Path

import pytest

from autograder import bench, specs
from autograder.extract import load_submission
from book import ROOT



@pytest.mark.parametrize("mutant", bench.MUTANTS, ids=lambda m: f"{m.lab}-{m.name}")
def test_every_mutant_still_applies_to_the_reference(mutant):
    source = (ROOT / specs.load(mutant.lab).LAB.reference).read_text()
    mutated = bench.mutate(source, mutant)
    assert mutated is not None and mutated != source, f"{mutant.name}: update its text to the current reference"


def test_generate_spreads_correct_and_faulty_files_over_the_labs(tmp_path):
    written, skipped = bench.generate(tmp_path, 12)
    assert skipped == []
    assert {lab: len(names) for lab, names in written.items()} == {"lab1": 4, "lab2": 4, "lab3": 4}
    names = [name for names in written.values() for name in names]
    assert sum("correct" in n for n in names) == 6 and {Path(n).suffix for n in names} == {".py", ".ipynb"}


def test_a_generated_notebook_extracts_to_the_reference_functions(tmp_path):
    source = (ROOT / "solutions" / "pooling.py").read_text()
    path = tmp_path / "x.ipynb"
    path.write_text(bench.as_notebook(source))
    submission = load_submission(path)
    assert set(submission.functions) == {"mean_pool", "max_pool", "embed_sentences"}
    assert any("not imports, definitions or constants" in note for note in submission.notes)
