"""The labs stay in step with their reference solutions, their public checks and their notebooks.

The drift test executes each lab top to bottom twice: once as published, where every
self-check must report a failure and the notebook must still reach its end (the book executes
the labs with their stubs), and once with the reference solutions imported after each stub
cell, where every public check must pass. It reads the verdicts from the printed
``PASS name`` / ``FAIL name: hint`` lines, as a student does.
"""

from __future__ import annotations

import ast
import inspect
import os
import re
from importlib import import_module
from pathlib import Path

import jupytext
import nbformat
import pytest
import torch
import yaml

from book import ROOT, corpus, labcheck, labs, models, notebooks

# lab page -> (labcheck's lab, the module of its reference solutions, the chapter it builds on)
LABS = {
    "lab1_attention": ("lab1", "solutions.attention", "attention"),
    "lab2_pooling": ("lab2", "solutions.pooling", "embeddings"),
    "lab3_tokens": ("lab3", "solutions.tokens", "tokenization"),
}
CHECK_LINE = re.compile(r"^(PASS|FAIL) (\S+?)(?:: (.*))?$")
SUMMARY_LINE = re.compile(r"^(\d+) of (\d+) public checks passed; hidden tests run at grading$")


def read_lab(name: str):
    return jupytext.read(ROOT / "labs" / f"{name}.md")


def stub_cells(notebook) -> dict[int, list[str]]:
    """Index of each code cell that defines stubs -> the names of the functions it defines."""
    found = {}
    for index, cell in enumerate(notebook.cells):
        if cell.cell_type == "code" and "raise NotImplementedError" in cell.source:
            tree = ast.parse(cell.source)
            found[index] = [node.name for node in tree.body if isinstance(node, ast.FunctionDef)]
    return found


def with_solutions(notebook, module: str):
    """The lab with ``from <module> import <names>`` inserted after each stub cell."""
    notebook = nbformat.from_dict(notebook)  # a copy
    for index in sorted(stub_cells(notebook), reverse=True):
        names = ", ".join(stub_cells(notebook)[index])
        notebook.cells.insert(index + 1, nbformat.v4.new_code_cell(f"from {module} import {names}  # the reference solutions"))
    return notebook


def kernel_environment() -> dict[str, str]:
    """The developer's environment without their profile or corpus choice, and offline (as in conftest.py)."""
    env = {name: value for name, value in os.environ.items() if name not in (models.PROFILE_ENV, corpus.CORPUS_ENV)}
    return env | {"HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}


def execute(*notebooks) -> list[list[str]]:
    """Run each notebook top to bottom, one after the other, in one fresh kernel started in the labs folder.

    The user namespace is reset between notebooks (``%reset -f``); imported modules stay, so
    the models labcheck loaded for the first run are reused by the second. Raises
    CellExecutionError if any cell raises. Returns each notebook's printed lines.
    """
    from nbclient import NotebookClient

    client = NotebookClient(notebooks[0], timeout=300, kernel_name="python3", resources={"metadata": {"path": str(ROOT / "labs")}})
    printed = []
    with client.setup_kernel(env=kernel_environment()):
        for number, notebook in enumerate(notebooks):
            if number:
                client.execute_cell(nbformat.v4.new_code_cell("%reset -f"), 0)
            client.nb = notebook
            for index, cell in enumerate(notebook.cells):
                if cell.cell_type == "code":
                    client.execute_cell(cell, index)
            lines = []
            for cell in notebook.cells:
                for output in cell.get("outputs", []):
                    if output.get("output_type") == "stream" and output.get("name") == "stdout":
                        lines += output["text"].splitlines()
            printed.append(lines)
    return printed


def verdicts(lines: list[str]) -> tuple[list[tuple[str, str, str]], list[tuple[int, int]]]:
    """The (status, check, hint) of every check line and the (passed, total) of every summary line."""
    checks = [match.groups("") for match in map(CHECK_LINE.match, lines) if match]
    summaries = [(int(m[1]), int(m[2])) for m in map(SUMMARY_LINE.match, lines) if m]
    return checks, summaries


@pytest.fixture(scope="module", params=list(LABS))
def lab(request):
    return request.param


@pytest.fixture(scope="module")
def executed(lab):
    """The printed lines of the lab run as published (stubs), then with the reference solutions."""
    _, module, _ = LABS[lab]
    notebook = read_lab(lab)
    stubs, solutions = execute(notebook, with_solutions(notebook, module))
    return {"stubs": stubs, "solutions": solutions}


def test_every_public_check_passes_with_the_reference_solutions(lab, executed):
    checks, summaries = verdicts(executed["solutions"])
    failed = [f"{name}: {hint}" for status, name, hint in checks if status == "FAIL"]
    assert failed == []
    assert {name for _, name, _ in checks} == set(labcheck.public_checks(LABS[lab][0]))
    assert summaries and all(passed == total for passed, total in summaries)
    assert summaries[-1][1] == len(labcheck.public_checks(LABS[lab][0]))  # the last cell runs every check


def test_with_the_stubs_the_lab_runs_to_the_end_and_every_check_fails(lab, executed):
    checks, summaries = verdicts(executed["stubs"])
    assert checks and all(status == "FAIL" for status, _, _ in checks)
    assert {name for _, name, _ in checks} == set(labcheck.public_checks(LABS[lab][0]))
    assert all(hint.startswith("not implemented yet") for _, _, hint in checks)
    assert summaries and all(passed == 0 for passed, _ in summaries)


def test_each_part_is_checked_right_after_its_stubs(lab):
    """Every stub cell is followed, before the next stub cell, by a check cell for its functions."""
    notebook = read_lab(lab)
    stubs = stub_cells(notebook)
    starts = sorted(stubs) + [len(notebook.cells)]
    for begin, end in zip(starts, starts[1:]):
        following = " ".join(cell.source for cell in notebook.cells[begin + 1:end] if cell.cell_type == "code")
        assert f"labcheck.check_{LABS[lab][0]}(globals()" in following, f"no self-check after the stubs of {stubs[begin]}"
    code = [cell.source for cell in notebook.cells if cell.cell_type == "code"]
    assert any(source.strip() == f"labcheck.check_{LABS[lab][0]}(globals())" for source in code), "no final cell runs every check"


def lab_namespace(lab) -> dict:
    """The lab's stub functions, defined by executing its stub cells only."""
    namespace = {"torch": torch, "Tensor": torch.Tensor, "nn": torch.nn, "F": torch.nn.functional}
    notebook = read_lab(lab)
    for index in stub_cells(notebook):
        exec(compile(notebook.cells[index].source, f"{lab}.md", "exec"), namespace)
    return namespace


def test_every_contract_function_is_a_stub_in_step_with_its_solution(lab):
    key, module_name, _ = LABS[lab]
    namespace, solutions = lab_namespace(lab), import_module(module_name)
    for name in labs.load(key).functions:
        stub, solution = namespace.get(name), getattr(solutions, name)
        assert callable(stub), f"{lab} has no stub for {name}"
        stub_parameters = inspect.signature(stub).parameters.values()
        solution_parameters = inspect.signature(solution).parameters.values()
        assert [(p.name, p.kind, p.default) for p in stub_parameters] == [(p.name, p.kind, p.default) for p in solution_parameters], name
        assert inspect.getdoc(stub).splitlines()[0] == inspect.getdoc(solution).splitlines()[0], f"{name}: first docstring lines differ"
        assert "TODO" in inspect.getdoc(stub)
        with pytest.raises(NotImplementedError):
            stub(*[None] * sum(p.default is inspect.Parameter.empty for p in stub_parameters))


def test_the_notebook_is_generated_from_the_page_without_outputs(lab):
    page = ROOT / "labs" / f"{lab}.md"
    assert str(page.relative_to(ROOT)) not in notebooks.out_of_sync(), "run `make sync` to regenerate the notebook"
    generated = nbformat.read(page.with_suffix(".ipynb"), as_version=4)
    for cell in generated.cells:
        if cell.cell_type == "code":
            assert cell.outputs == [] and cell.execution_count is None


def test_the_page_has_the_colab_badge_install_cell_and_chapter_link(lab):
    config = yaml.safe_load((ROOT / "_config.yml").read_text())
    repository = config["repository"]["url"].removeprefix("https://github.com/").rstrip("/")
    branch = config["repository"].get("branch", "main")
    url = f"https://colab.research.google.com/github/{repository}/blob/{branch}/labs/{lab}.ipynb"
    text = (ROOT / "labs" / f"{lab}.md").read_text()
    assert f"[![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)]({url})" in text
    first_code = next(cell for cell in read_lab(lab).cells if cell.cell_type == "code")
    assert 'if "google.colab" in sys.modules:' in first_code.source and "%pip install" in first_code.source
    assert f'"llm-internals @ git+https://github.com/{repository}"' in first_code.source  # the runtime alone


def test_links_to_chapters_work_in_the_book_and_in_colab(lab):
    """The page links to its chapter relatively (Jupyter Book resolves it); the notebook Colab opens, to the published
    page. No {doc} role: Colab shows it as raw text."""
    text = (ROOT / "labs" / f"{lab}.md").read_text()
    assert f"](../chapters/{LABS[lab][2]}.md)" in text and "{doc}" not in text
    notebook = nbformat.read(ROOT / "labs" / f"{lab}.ipynb", as_version=4)
    markdown = "\n".join(cell.source for cell in notebook.cells if cell.cell_type == "markdown")
    assert f"]({notebooks.published_url()}chapters/{LABS[lab][2]}.html)" in markdown
    assert ".md)" not in markdown


PUBLIC_MODULES = [Path(labcheck.__file__)] + sorted(Path(labs.__file__).parent.glob("*.py"))


@pytest.mark.parametrize("path", PUBLIC_MODULES, ids=lambda p: p.name)
def test_the_public_checks_and_truths_hold_no_answer(path):
    """What ships to students never imports the solutions or the grader, and defines none of the functions the labs
    ask for: its truths are torch's own kernels, the models' own modules and saved library outputs."""
    tree = ast.parse(path.read_text())
    imported = [alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names]
    imported += [node.module or "" for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)]
    assert not [name for name in imported if name.split(".")[0] in ("solutions", "autograder")]
    asked = {name for lab in labs.names() for name in labs.load(lab).functions}
    defined = {node.name for node in ast.walk(tree) if isinstance(node, ast.FunctionDef)}
    assert not asked & defined


def test_labcheck_reports_a_students_errors_without_raising(capsys):
    def split_heads(x, num_heads):
        return x.view(x.shape[0], num_heads, x.shape[1], -1)  # wrong: heads and tokens mixed up

    def merge_heads(x):
        raise ValueError("oops")

    report = labcheck.check_lab1({"split_heads": split_heads, "merge_heads": merge_heads, "repeat_kv": 3},
                                 only=["split_heads", "merge_heads", "repeat_kv"])
    lines = capsys.readouterr().out.splitlines()
    assert (report.passed, report.total) == (0, 5)  # the rules of these functions: heads_round_trip, repeat_kv_hidden too
    assert lines[0].startswith("FAIL split_heads: split_heads must turn (B, T, D) into (B, H, T, Dh)")
    assert "split_heads(x (3, 7, 65), num_heads=5): wrong values; the largest difference" in lines[0]
    assert "Likely cause: a reshape to (B, H, T, Dh) alone" in lines[0]
    assert lines[1] == "FAIL merge_heads: merge_heads must turn (B, H, T, Dh) back into (B, T, D), the heads side by side. ValueError: oops"
    assert lines[3] == "FAIL repeat_kv: repeat_kv is not defined: run the cell that defines it first."
    assert lines[-1] == "0 of 5 public checks passed; hidden tests run at grading"


def test_a_function_is_checked_with_the_labs_references_for_the_functions_it_calls():
    """A bug in split_heads fails split_heads' checks, not self_attention's: in the notebook's namespace (the globals
    self_attention looks split_heads up in), the checks of self_attention put the lab's references for its callees."""
    from solutions import attention

    namespace: dict = {}
    exec(compile(Path(attention.__file__).read_text(), "notebook", "exec"), namespace)  # functions defined in a notebook
    buggy = "def split_heads(x, num_heads):\n    return x.reshape(x.shape[0], num_heads, x.shape[1], -1)\n"
    exec(buggy, namespace)  # no transpose: mixes tokens into heads
    report = labcheck.run_checks("lab1", namespace, quiet=True)
    assert set(report.failed) == {"split_heads", "heads_round_trip"}
    assert namespace["split_heads"].__code__.co_filename == "<string>"  # the student's function is put back


def test_lab2s_written_out_encoder_gives_the_models_own_states_and_the_same_causes(monkeypatch):
    """Lab 2 names an embedding mistake with a BERT forward pass written out over MiniLM's memory-mapped weights (the
    grader then needs no transformers model class): it must give the model's own states, and the same causes."""
    from book.labs import lab2

    tokenizer, model = labs.course_model("encoder")
    # its tokenizer (the tokenizers library on tokenizer.json) gives what transformers' does
    for texts, max_length, padding in ((lab2.TEXTS, None, True), (lab2.TEXTS, 256, True), ((lab2.LONG_TEXT,), None, False),
                                       ((lab2.LONG_TEXT, "Hi!"), 256, True), (("Hi!",), 256, False)):
        theirs = tokenizer(list(texts), padding=padding, truncation=True, max_length=max_length, return_tensors="pt")
        ours = lab2.encoder_batch(texts, max_length, padding)
        assert set(ours) == set(theirs) and all(torch.equal(ours[k], theirs[k]) for k in ours), (texts, max_length)
    assert lab2.encoder_batch(("word " * 600,))["input_ids"].shape[1] == tokenizer.model_max_length == 512
    assert lab2.encoder_length("word " * 600) == len(tokenizer("word " * 600)["input_ids"]) == 602  # uncut
    for batch in (tokenizer(list(lab2.TEXTS), padding=True, return_tensors="pt"),
                  tokenizer([lab2.LONG_TEXT, "Hi!"], padding=True, truncation=True, return_tensors="pt")):
        with torch.no_grad():
            theirs = model(**batch).last_hidden_state
        ours = lab2.encoder_states(batch)
        real = batch["attention_mask"].bool()
        torch.testing.assert_close(ours[real], theirs[real], atol=1e-5, rtol=0)
        torch.testing.assert_close(ours, theirs, atol=1e-4, rtol=0)  # the padding positions' states too
    texts = lab2.TEXTS[:4] + (lab2.LONG_TEXT,)
    written_out = lab2.embedding_causes.__wrapped__(texts, 2)
    monkeypatch.setattr(lab2, "encoder_weights", lambda: None)  # another encoder: its own model computes them
    own = lab2.embedding_causes.__wrapped__(texts, 2)
    assert [c.hint for c in written_out] == [c.hint for c in own]
    for ours, theirs in zip(written_out, own):
        torch.testing.assert_close(ours.value, theirs.value, atol=1e-6, rtol=0)


@pytest.mark.parametrize("role", ["encoder", "decoder"])
def test_lab3s_saved_row_means_are_the_checkpoints(role):
    """The mean of every embedding row (a likely cause's value) is saved so the grader need not read the whole
    matrix; it must be the mean of the checkpoint's rows today, and a matrix that differs must not use it."""
    from book.labs import lab3

    _, weight = lab3.pristine(role)
    from safetensors import safe_open

    with safe_open(str(lab3.ROW_MEANS), "pt") as saved:  # saved for this very checkpoint: the grader uses it
        assert saved.metadata()[role] == lab3.fingerprint(weight)
    torch.testing.assert_close(lab3.row_mean(role), weight.mean(dim=0).double(), rtol=0, atol=0)
    changed = weight.clone()
    changed[0] += 1  # another checkpoint: a row the fingerprint reads differs
    assert lab3.fingerprint(changed) != lab3.fingerprint(weight)


@pytest.mark.parametrize("role", ["encoder", "decoder"])
def test_lab3s_truths_read_the_checkpoints_files_as_transformers_loads_them(role):
    """Lab 3's truths read the tokenizer (tokenizer.json) and the embedding matrix (memory-mapped) from the checkpoint's
    files, so that the grader needs no transformers model class: they must be what transformers loads."""
    from autograder.specs import lab3_tokens
    from book.labs import lab3

    tokenizer, weight = lab3.pristine(role)
    assert isinstance(tokenizer, lab3.FileTokenizer)  # the course checkpoints have the files
    theirs, model = labs.course_vocabulary_model(role)
    assert torch.equal(weight, model.get_input_embeddings().weight)
    assert len(tokenizer) == len(theirs)
    texts = [s for pool in lab3_tokens.POOLS.values() for s in pool] + [
        s for case in lab3.CASES.values() for s in case.strings + case.sentences] + ["", " GPUs", "<|im_start|>", "[CLS]"]
    for text in texts:
        for special in (False, True):
            assert tokenizer.encode(text, add_special_tokens=special) == theirs.encode(text, add_special_tokens=special), text
