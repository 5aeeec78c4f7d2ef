"""autograder.extract: what of a submission the grader runs (definitions only), and clear refusals."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from book import ROOT

from autograder.extract import SubmissionError, clean_cell, load_submission


def notebook(path: Path, cells: list[str | tuple[str, str]]) -> Path:
    """A notebook file with these cells (a plain string is a code cell; (type, source) for others)."""
    cells = [c if isinstance(c, tuple) else ("code", c) for c in cells]
    data = {"nbformat": 4, "nbformat_minor": 5, "metadata": {},
            "cells": [{"cell_type": kind, "metadata": {}, "source": source.splitlines(True),
                       **({"outputs": [], "execution_count": None} if kind == "code" else {})} for kind, source in cells]}
    path.write_text(json.dumps(data))
    return path


COLAB_CELLS = [
    ("markdown", "# Lab 1\nSome text with `def fake(): pass` in it."),
    "!pip install -q llm-internals\n%load_ext autoreload",
    "import torch\nfrom torch import Tensor\nimport book\nmodel = book.load_model('encoder')  # exploratory",
    "NEG = float('-inf')\nscale = 0.5\nF = torch.nn.functional\nresult = torch.ones(3)",
    "@torch.no_grad()\ndef split_heads(x: Tensor, num_heads: int) -> Tensor:\n    return x  # wrong, but defined\n",
    "%%time\ndef merge_heads(x):\n    %time y = x\n    return x\nprint(merge_heads(1))",
    "%%bash\necho this is shell",
    "def broken(:\n    pass",
    "split_heads?\nfiles = !ls\nclass Helper:\n    pass",
    "for i in range(3):\n    print(i)",
]


def test_notebook_keeps_imports_definitions_and_constants_only(tmp_path):
    submission = load_submission(notebook(tmp_path / "alice.ipynb", COLAB_CELLS))
    kept = [(c.kind, c.names) for c in submission.chunks]
    assert kept == [
        ("import", ("torch",)), ("import", ("Tensor",)), ("import", ("book",)),
        ("constant", ("NEG",)), ("constant", ("scale",)), ("constant", ("F",)),
        ("function", ("split_heads",)), ("function", ("merge_heads",)), ("class", ("Helper",)),
    ]
    assert submission.functions == ("split_heads", "merge_heads")


def test_notebook_keeps_decorators_and_cell_line_numbers(tmp_path):
    submission = load_submission(notebook(tmp_path / "alice.ipynb", COLAB_CELLS))
    split = next(c for c in submission.chunks if c.names == ("split_heads",))
    assert split.source.startswith("@torch.no_grad()\ndef split_heads")
    assert (split.filename, split.line) == ("code cell 4", 1)  # the 4th code cell; markdown is not counted
    merge = next(c for c in submission.chunks if c.names == ("merge_heads",))
    assert merge.line == 2 and "pass" in merge.source  # the %%time line is blanked, the %time line is `pass`


def test_notebook_notes_say_what_was_skipped(tmp_path):
    notes = "\n".join(load_submission(notebook(tmp_path / "alice.ipynb", COLAB_CELLS)).notes)
    assert "code cell 6 was skipped: it is a `%%bash` cell" in notes
    assert "code cell 7 was skipped: it is not valid Python (SyntaxError" in notes
    assert "top-level statement(s) that are not imports, definitions or constants" in notes


def test_clean_cell_replaces_ipython_syntax_and_keeps_line_numbers():
    source = "x = 1\n!ls\n  %timeit f()\nout = !ls\nf??\ny = x != 2\n"
    cleaned = clean_cell(source)
    assert cleaned.splitlines() == ["x = 1", "pass", "  pass", "pass", "pass", "y = x != 2"]
    assert clean_cell("%%writefile a.py\nprint(1)") is None
    assert clean_cell("%%capture\nimport torch").splitlines() == ["", "import torch"]


def test_python_file(tmp_path):
    path = tmp_path / "bob.py"
    path.write_text("import torch\n\n\ndef mean_pool(h, m):\n    return h.mean(1)\n\n\nprint(mean_pool)\n")
    submission = load_submission(path)
    assert submission.functions == ("mean_pool",)
    assert submission.chunks[1].filename == "bob.py" and submission.chunks[1].line == 4
    assert len(submission.sha256) == 64


def test_jupytext_percent_file_with_magics_is_read_cell_by_cell(tmp_path):
    path = tmp_path / "carol.py"
    path.write_text("# %%\n!pip install x\nimport torch\n\n# %%\ndef f(:\n\n# %%\ndef max_pool(h, m):\n    return h\n")
    submission = load_submission(path)
    assert submission.functions == ("max_pool",)
    assert any("not valid Python" in note for note in submission.notes)


@pytest.mark.parametrize("content, message", [
    ("", "is empty"),
    ("   \n", "is empty"),
    ("{not json", "is not a valid notebook (invalid JSON"),
    ('{"metadata": {}}', "is JSON but not a Jupyter notebook"),
])
def test_unreadable_notebooks_are_refused_with_the_fix(tmp_path, content, message):
    path = tmp_path / "dave.ipynb"
    path.write_text(content)
    with pytest.raises(SubmissionError, match=re.escape(message)):
        load_submission(path)


def test_a_huge_file_is_refused_before_it_is_read(tmp_path):
    import resource
    import time

    from autograder import audit

    path = tmp_path / "gina.ipynb"
    {name: make for name, make, _ in audit.GENERATED}["hostile/huge_notebook.ipynb"](path)
    assert path.stat().st_size > 100 << 20
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # kB
    started = time.monotonic()
    with pytest.raises(SubmissionError, match=r"gina.ipynb is 10\d MB, more than the 32 MB a submission may be: clear"):
        load_submission(path)
    assert time.monotonic() - started < 0.5
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before < 50 << 10  # far less than the file's 100 MB


def test_json_nested_too_deeply_is_refused_not_a_crash(tmp_path):
    path = tmp_path / "hank.ipynb"
    path.write_text("[" * 100_000 + "]" * 100_000)
    with pytest.raises(SubmissionError, match="nested too deeply to read"):
        load_submission(path)
    deep = tmp_path / "ivan.py"
    deep.write_text("def f():\n    return " + "(" * 5000 + ")" * 5000 + "\n")
    with pytest.raises(SubmissionError, match="not valid Python"):
        load_submission(deep)


def test_a_python_file_with_a_syntax_error_is_refused_with_the_error(tmp_path):
    path = tmp_path / "judy.py"
    path.write_text("import torch\n\ndef split_heads(x, num_heads)\n    return x\n")
    with pytest.raises(SubmissionError, match=r"judy.py defines no function the grader can run: they are in judy.py, "
                                              r"which is not valid Python \(SyntaxError: expected ':', line 3\)"):
        load_submission(path)


def test_functions_in_a_cell_that_does_not_parse_are_remembered(tmp_path):
    submission = load_submission(notebook(tmp_path / "kim.ipynb", ["def split_heads(x, h):\n    return x",
                                                                    "def repeat_kv(x, n:\n    return x"]))
    assert submission.functions == ("split_heads",)
    assert submission.unparsed["repeat_kv"].startswith("code cell 2, which is not valid Python (SyntaxError")


def test_a_notebook_without_functions_is_refused(tmp_path):
    path = notebook(tmp_path / "erin.ipynb", ["import torch\nprint(torch.ones(2))", ("markdown", "def f(): pass")])
    with pytest.raises(SubmissionError, match="defines no function the grader can find"):
        load_submission(path)


def test_other_files_are_refused(tmp_path):
    path = tmp_path / "frank.txt"
    path.write_text("def f(): pass")
    with pytest.raises(SubmissionError, match="not a notebook or a Python file"):
        load_submission(path)
    with pytest.raises(SubmissionError, match="cannot be read"):
        load_submission(tmp_path / "missing.py")


@pytest.mark.parametrize("lab", ["lab1_attention", "lab2_pooling", "lab3_tokens"])
def test_the_lab_notebooks_yield_their_stubs(lab):
    from autograder import specs

    path = ROOT / "labs" / f"{lab}.ipynb"
    if not path.exists():
        pytest.skip(f"{path.name} is not written yet")
    submission = load_submission(path)
    assert set(specs.load(lab.split("_")[0]).LAB.functions) <= set(submission.functions)
