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


MAPS_A_FILE = r"""
import mmap, os, sys, time
with open(sys.argv[1], "rb") as f:
    pages = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
touched = sum(pages[i] for i in range(0, len(pages), 4096))  # every page of the file, mapped
read, write = os.pipe()
if os.fork() == 0:  # a child maps the very same pages
    touched = sum(pages[i] for i in range(0, len(pages), 4096))
    os.write(write, b"x")
    time.sleep(120)
    os._exit(0)
os.read(read, 1)
print("ready", flush=True)
time.sleep(120)
"""


def test_a_process_trees_memory_counts_each_page_once_whatever_runs_beside(tmp_path):
    """The Gradescope figures: pages shared inside the tree count once, and pages it shares with a process outside it
    (the measuring Python's own torch, a bundle graded beside) count whole, where PSS would give part of them away."""
    import mmap
    import os
    import signal
    import subprocess
    import sys

    if not bench.frames_readable():
        pytest.skip("page frame numbers are readable by root only: tree_resident is PSS here")
    size = 32 << 20
    shared = tmp_path / "shared.bin"
    shared.write_bytes(os.urandom(size))
    tree = subprocess.Popen([sys.executable, "-c", MAPS_A_FILE, str(shared)], stdout=subprocess.PIPE, text=True,
                            start_new_session=True)
    try:
        assert tree.stdout.readline().strip() == "ready"
        alone, pss_alone = bench.tree_resident(tree.pid), bench.tree_pss(tree.pid)
        with open(shared, "rb") as f, mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as outside:
            sum(outside[i] for i in range(0, size, 4096))  # this process maps the same pages too
            beside, pss_beside = bench.tree_resident(tree.pid), bench.tree_pss(tree.pid)
        rss = sum(p.memory_info().rss for p in bench._tree(tree.pid))
    finally:
        os.killpg(tree.pid, signal.SIGKILL)
        tree.wait()
    assert alone >= size and abs(beside - alone) < 4 << 20, (alone, beside)  # the file whole, with or without us
    assert pss_beside < pss_alone - size // 4, (pss_alone, pss_beside)  # PSS gave a third of the file to us
    assert alone < rss - size * 3 // 4, (alone, rss)  # the two processes' copies of the mapping counted once
