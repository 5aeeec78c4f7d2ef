"""autograder.grade, autograder.results and the CLI: grading a class folder into JSON, CSV and Gradescope files, resumably."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import pytest

from autograder import cli, results
from autograder.grade import Grader, find_students, folder_layout, grade_folder
from book import ROOT

REFERENCE = ROOT / "solutions" / "attention.py"
BROKEN = "def split_heads(x, num_heads):\n    return x\n"


@pytest.fixture(scope="module")
def grader():
    with Grader(["lab1"]) as grader:
        yield grader


@pytest.fixture
def classroom(tmp_path) -> Path:
    """alice: the reference as .py; bob: a wrong split_heads; carol: a folder with two files; dave: an empty notebook."""
    folder = tmp_path / "submissions"
    folder.mkdir()
    shutil.copy(REFERENCE, folder / "alice.py")
    (folder / "bob.py").write_text(BROKEN)
    (folder / "carol").mkdir()
    (folder / "carol" / "notes.py").write_text("def helper():\n    return 1\n")
    shutil.copy(REFERENCE, folder / "carol" / "lab1_attention.py")
    (folder / "dave.ipynb").write_text("")
    (folder / ".hidden.py").write_text(BROKEN)
    return folder


def test_find_students_reads_files_and_folders(classroom):
    students = find_students(classroom)
    assert sorted(students) == ["alice", "bob", "carol", "dave"]
    assert [p.name for p in students["carol"]] == ["lab1_attention.py", "notes.py"]


@pytest.fixture
def alices_folder(tmp_path) -> Path:
    """One student's folder as downloaded from Colab: a notebook (here a file) per lab."""
    folder = tmp_path / "alice"
    folder.mkdir()
    shutil.copy(REFERENCE, folder / "lab1_attention.py")
    shutil.copy(ROOT / "solutions" / "pooling.py", folder / "lab2_pooling.py")
    return folder


FUNCTIONS = {"lab1": {"split_heads", "merge_heads", "scaled_dot_product_attention", "repeat_kv", "self_attention"},
             "lab2": {"mean_pool", "max_pool", "embed_sentences"}}


def test_a_students_folder_is_told_from_a_class_folder(classroom, alices_folder, tmp_path):
    assert folder_layout(alices_folder, FUNCTIONS).kind == "student"
    assert folder_layout(classroom, FUNCTIONS).kind == "class"  # a folder per student
    files = tmp_path / "files"
    files.mkdir()
    for name in ("ada", "ben"):
        shutil.copy(REFERENCE, files / f"{name}.py")
    layout = folder_layout(files, FUNCTIONS)  # two files of the same lab: two students
    assert layout.kind == "class" and "lab1 is defined in more than one" in layout.reason
    assert find_students(alices_folder, "student") == {"alice": sorted(alices_folder.iterdir())}


def test_grading_a_students_folder_grades_one_student_and_says_so(grader, alices_folder, tmp_path, capsys):
    summary = grade_folder(alices_folder, tmp_path / "results", ["lab1"], progress=False, grader=grader)
    assert (summary.students, summary.graded, summary.layout) == (1, 1, "student")
    alice = json.loads((tmp_path / "results" / "students" / "alice.json").read_text())
    assert alice["labs"]["lab1"]["file"].endswith("lab1_attention.py") and alice["score"] == alice["max_score"]
    assert cli.main(["grade", str(alices_folder), "--lab", "lab1", "--out", str(tmp_path / "again"), "--quiet"]) == 0
    assert "as one student's folder (its 2 files each hold a different lab); --layout class" in capsys.readouterr().out


def test_a_class_folder_gives_json_csv_and_gradescope_files(grader, classroom, tmp_path):
    out = tmp_path / "results"
    summary = grade_folder(classroom, out, ["lab1"], jobs=2, progress=False, grader=grader)
    assert (summary.students, summary.graded, summary.skipped) == (4, 4, 0)
    full = grader.max_score("lab1")

    alice = json.loads((out / "students" / "alice.json").read_text())
    assert alice["score"] == alice["max_score"] == full
    lab = alice["labs"]["lab1"]
    assert lab["file"].endswith("alice.py") and len(lab["sha256"]) == 64 and lab["error"] is None
    assert {"name", "score", "max_score", "status", "output", "visibility"} <= set(lab["tests"][0])

    bob = json.loads((out / "students" / "bob.json").read_text())
    assert 0 == bob["score"] < bob["max_score"] == full
    carol = json.loads((out / "students" / "carol.json").read_text())
    assert carol["score"] == full and carol["labs"]["lab1"]["file"].endswith("lab1_attention.py")
    dave = json.loads((out / "students" / "dave.json").read_text())
    assert "dave.ipynb is empty" in dave["labs"]["lab1"]["error"] and dave["max_score"] == full
    assert all("Not graded: dave.ipynb is empty" in t["output"] for t in dave["labs"]["lab1"]["tests"])

    rows = list(csv.DictReader((out / "gradebook.csv").open()))
    assert [r["student"] for r in rows] == ["alice", "bob", "carol", "dave"]
    assert float(rows[0]["lab1"]) == float(rows[0]["total"]) == float(rows[0]["lab1_max"]) == full
    assert float(rows[1]["lab1"]) == 0.0

    gradescope = json.loads((out / "gradescope" / "bob.json").read_text())
    assert set(gradescope) >= {"score", "max_score", "tests"} and gradescope["max_score"] == full
    test = gradescope["tests"][0]
    assert set(test) == {"name", "score", "max_score", "output", "visibility", "status"}
    assert test["status"] == "failed" and test["visibility"] in ("visible", "after_published")


def test_an_interrupted_run_resumes_without_grading_again(grader, classroom, tmp_path):
    out = tmp_path / "results"
    grade_folder(classroom, out, ["lab1"], progress=False, grader=grader)
    # Simulate a run interrupted after alice: bob's file is gone, alice's is marked to tell a regrade apart.
    (out / "students" / "bob.json").unlink()
    alice = results.read_student(out, "alice")
    alice.labs["lab1"].graded_at = "before the interruption"
    results.write_student(out, alice)

    summary = grade_folder(classroom, out, ["lab1"], progress=False, grader=grader)
    assert (summary.graded, summary.skipped) == (1, 3)
    assert json.loads((out / "students" / "alice.json").read_text())["labs"]["lab1"]["graded_at"] == "before the interruption"
    assert (out / "students" / "bob.json").is_file()

    (classroom / "alice.py").write_text(BROKEN)  # a new version of a file is graded again
    summary = grade_folder(classroom, out, ["lab1"], progress=False, grader=grader)
    assert (summary.graded, summary.skipped) == (1, 3)
    assert json.loads((out / "students" / "alice.json").read_text())["score"] == 0

    summary = grade_folder(classroom, out, ["lab1"], force=True, progress=False, grader=grader)
    assert (summary.graded, summary.skipped) == (4, 0)


def test_files_are_written_atomically(tmp_path):
    path = tmp_path / "a" / "b.json"
    results.atomic_write(path, "one")
    results.atomic_write(path, "two")
    assert path.read_text() == "two" and [p.name for p in path.parent.iterdir()] == ["b.json"]


def test_the_command_line_grades_a_folder_then_resumes(classroom, tmp_path, capsys):
    out = tmp_path / "results"
    assert cli.main(["grade", str(classroom), "--lab", "lab1", "--out", str(out), "--jobs", "2", "--quiet"]) == 0
    assert "4 students: 4 labs graded" in capsys.readouterr().out
    assert sorted(p.name for p in (out / "students").iterdir()) == ["alice.json", "bob.json", "carol.json", "dave.json"]
    assert sorted(p.name for p in (out / "gradescope").iterdir()) == ["alice.json", "bob.json", "carol.json", "dave.json"]
    assert (out / "gradebook.csv").read_text().startswith("student,lab1,lab1_max,total,total_max\nalice,")
    assert cli.main(["grade", str(classroom), "--lab", "lab1", "--out", str(out), "--quiet"]) == 0
    assert "nothing to grade, all 4 labs are unchanged since they were graded" in capsys.readouterr().out


def test_the_command_line_grades_a_file_for_gradescope(tmp_path, capsys):
    target = tmp_path / "results.json"
    assert cli.main(["grade", str(REFERENCE), "--lab", "lab1", "--gradescope", str(target), "--quiet"]) == 0
    data = json.loads(target.read_text())
    assert data["score"] == data["max_score"] > 0 and all(t["status"] == "passed" for t in data["tests"])
    assert "points; wrote" in capsys.readouterr().out


def test_the_command_line_explains_its_verbs_in_plain_text_and_refuses_unknown_ones(capsys):
    assert cli.main(["--help"]) == 0
    shown = capsys.readouterr().out
    for verb in ("grade", "feedback", "gradebook", "bundle", "try", "selftest", "audit", "bench", "tolerances"):
        assert f"\n  {verb} " in shown
    assert not any(markup in shown for markup in ("``", ":mod:", ":func:", ":class:", "*"))  # no reStructuredText
    assert max(len(line) for line in shown.splitlines()) <= 120
    with pytest.raises(SystemExit):
        cli.main(["grade", "--help"])
    assert "``" not in capsys.readouterr().out
    assert cli.main(["regrade"]) == 2
    assert ("Unknown command 'regrade': use one of grade, feedback, gradebook, bundle, try, selftest, audit, bench, "
            "tolerances.") in capsys.readouterr().err
    with pytest.raises(SystemExit):
        cli.main(["grade", "nowhere", "--lab", "lab7"])
    assert "There is no lab 'lab7'" in capsys.readouterr().err


# --- what decides a result, and a run that says why it grades again ------------------------------------------------


def test_a_changed_secret_grader_spec_or_tolerance_regrades_and_the_run_says_why(grader, classroom, tmp_path,
                                                                               monkeypatch):
    from autograder import resume

    out = tmp_path / "results"
    summary = grade_folder(classroom, out, ["lab1"], progress=False, grader=grader)
    assert summary.reasons == {resume.NEW: 4} and summary.why() == "4 for the first time"
    decided = results.read_student(out, "alice").labs["lab1"].decided_by
    assert set(decided) == set(resume.REASONS) and decided["secret"] is None  # this grader has no secret
    assert grade_folder(classroom, out, ["lab1"], progress=False, grader=grader).graded == 0

    for key, changed in (("tolerances", "tolerance_version"), ("grader", "grader_version"), ("spec", "spec_version")):
        with monkeypatch.context() as patch:
            patch.setattr(resume, changed, lambda *args: "changed")
            summary = grade_folder(classroom, out, ["lab1"], progress=False, grader=grader)
        assert (summary.graded, summary.reasons) == (4, {resume.REASONS[key]: 4}), key
        grade_folder(classroom, out, ["lab1"], progress=False, grader=grader)  # back as it was: all graded again

    record = results.read_student(out, "alice")
    record.labs["lab1"].decided_by = None  # a result written by an llm-grade that did not record it
    results.write_student(out, record)
    summary = grade_folder(classroom, out, ["lab1"], progress=False, grader=grader)
    assert summary.reasons == {resume.UNRECORDED: 1}


def test_the_command_line_regrades_everything_when_the_secret_changes(classroom, tmp_path, capsys):
    out = tmp_path / "results"
    grade = ["grade", str(classroom), "--lab", "lab1", "--out", str(out), "--quiet"]
    assert cli.main(grade) == 0
    first = capsys.readouterr()
    assert "Created the course secret in" in first.err and "4 labs graded (4 for the first time)" in first.out
    seed = results.read_student(out, "alice").labs["lab1"].hidden_inputs
    assert seed["source"] == "secret and student id"
    secret = tmp_path / "secret.txt"
    secret.write_text("another course secret, long enough")
    assert cli.main(grade + ["--secret-file", str(secret)]) == 0
    assert "4 labs graded (4 because the course secret changed)" in capsys.readouterr().out
    assert results.read_student(out, "alice").labs["lab1"].hidden_inputs["seed"] != seed["seed"]
    assert cli.main(grade + ["--secret-file", str(secret)]) == 0
    assert "nothing to grade" in capsys.readouterr().out


# --- one identity: a roster draws a folder's hidden inputs for the email Gradescope uses ---------------------------


def test_a_roster_draws_a_students_hidden_inputs_for_their_email_as_gradescope_does(grader, classroom, tmp_path, capsys):
    from autograder.roster import read_roster
    from autograder.seeding import student_seed

    roster = tmp_path / "roster.csv"
    roster.write_text("student,name,email\nalice,Alice Liddell,Alice@Example.edu\nbob,Bob Dylan,bob@example.edu\n")
    out = tmp_path / "results"
    summary = grade_folder(classroom, out, ["lab1"], progress=False, grader=grader, roster=read_roster(roster))
    assert summary.not_in_roster == ["carol", "dave"]
    alice = results.read_student(out, "alice").labs["lab1"]
    assert alice.hidden_inputs["seed"] == str(student_seed("alice@example.edu", grader.secret))
    carol = results.read_student(out, "carol").labs["lab1"]
    assert carol.hidden_inputs["seed"] == str(student_seed("carol", grader.secret))

    metadata = tmp_path / "submission_metadata.json"  # Gradescope's, for the same student
    metadata.write_text(json.dumps({"users": [{"email": "alice@example.edu", "id": 5}]}))
    target = tmp_path / "results.json"
    assert cli.main(["grade", str(classroom / "alice.py"), "--lab", "lab1", "--gradescope", str(target),
                     "--metadata", str(metadata), "--quiet"]) == 0
    assert json.loads(target.read_text())["extra_data"]["lab1"]["hidden_inputs"]["seed"] == alice.hidden_inputs["seed"]

    summary = grade_folder(classroom, out, ["lab1"], progress=False, grader=grader)  # without the roster: other inputs
    assert summary.reasons == {"the hidden inputs are drawn for another identity or seed": 2}


def test_a_roster_that_cannot_be_used_is_refused_with_what_to_fix(tmp_path):
    from autograder.roster import RosterError, read_roster

    cases = {"name,email\nada,a@x\n": "has no 'student' column",
             "student,email\nada,a@x\nada,b@x\n": "lists 'ada' twice",
             "student,email\nada,a@x\nben,A@x\n": "gives a@x to more than one student",
             "student,email\n,a@x\n": "Line 2 of the roster"}
    for text, problem in cases.items():
        path = tmp_path / "roster.csv"
        path.write_text(text)
        with pytest.raises(RosterError, match=problem):
            read_roster(path)
    with pytest.raises(RosterError, match="does not exist"):
        read_roster(tmp_path / "missing.csv")
    path.write_bytes("\ufeffstudent,name\nada,Ada Lovelace\n".encode())  # Excel's byte-order mark
    assert read_roster(path).name("ada") == "Ada Lovelace"


# --- several files that could be a lab's: the most complete, then the newest, and the student is told which ---------


STUB = (ROOT / "labs" / "lab1_attention.ipynb")


def test_the_most_complete_file_then_the_newest_is_graded_and_the_student_is_told(grader, tmp_path):
    import os

    folder = tmp_path / "submission"
    folder.mkdir()
    shutil.copy(REFERENCE, folder / "lab1_attention.py")
    shutil.copy(STUB, folder / "lab1_attention (1).ipynb")  # newer, but only the lab's stubs
    os.utime(folder / "lab1_attention.py", (1_000_000, 1_000_000))
    record = grader.grade_student("ada", sorted(folder.iterdir()))
    lab = record.labs["lab1"]
    assert lab.file_name == "lab1_attention.py" and lab.score == lab.max_score
    assert lab.candidates == ["lab1_attention (1).ipynb", "lab1_attention.py"]
    shown = results.gradescope(record)["output"]
    assert "lab1: graded lab1_attention.py, chosen among the 2 files" in shown and results.CHOICE_RULE in shown

    shutil.copy(ROOT / "autograder" / "catalogue" / "lab1" / "faulty_softmax_over_queries.py", folder / "old.py")
    os.utime(folder / "old.py", (2_000_000, 2_000_000))  # complete too, and newer than the reference
    lab = grader.grade_student("ada", sorted(folder.iterdir())).labs["lab1"]
    assert lab.file_name == "old.py" and lab.score < lab.max_score
    single = grader.grade_student("ada", [folder / "lab1_attention.py"])
    assert results.gradescope(single)["output"].startswith("lab1: graded lab1_attention.py.")


def test_a_stub_is_told_from_an_implementation(grader):
    from autograder.extract import load_submission
    from autograder.grade import implemented

    wanted = set(grader.modules["lab1"].LAB.functions)
    assert implemented(load_submission(STUB), wanted) == set()
    assert implemented(load_submission(REFERENCE), wanted) == wanted


# --- one submission's grader (Gradescope): what it prepares, and that it grades the same ---------------------------


def test_imports_among_keeps_only_the_modules_a_submission_imports(tmp_path):
    from autograder.grade import imports_among
    from autograder.worker import COMMON_IMPORTS

    path = tmp_path / "alice.py"
    path.write_text("import torch\nimport matplotlib.pyplot as plt\nfrom book import labcheck\n"
                    "from . import sibling\n\ndef split_heads(x, num_heads):\n    import pandas\n    return x\n")
    # pandas is imported inside a function: the child imports it if the function runs; relative imports name nothing;
    # a package imported from counts for its submodules (book.labs: importing too much costs a little, never a failure)
    assert imports_among(set(COMMON_IMPORTS), [path]) == {"matplotlib.pyplot", "book", "book.labcheck", "book.labs"}
    (tmp_path / "bob.py").write_text("import book\n\ndef split_heads(x, num_heads):\n    return x\n")
    assert imports_among(set(COMMON_IMPORTS), [tmp_path / "bob.py"]) == {"book", "book.labcheck", "book.labs"}


def test_one_submissions_grader_imports_less_and_grades_the_same(grader, tmp_path):
    mistake = REFERENCE.read_text().replace("scores.softmax(dim=-1)", "scores.softmax(dim=-2)")
    assert mistake != REFERENCE.read_text()
    for name, text in (("correct.py", REFERENCE.read_text()), ("mistake.py", mistake)):
        path = tmp_path / name
        path.write_text(text)
        with Grader(["lab1"], files=[path]) as alone:  # its expected values computed while it grades
            assert "pandas" not in alone.sandbox.imports and "book.labs.lab1" in alone.sandbox.imports
            theirs = alone.grade_lab("lab1", path, student="ada")
        mine = grader.grade_lab("lab1", path, student="ada")
        assert [(t.name, t.score) for t in theirs.tests] == [(t.name, t.score) for t in mine.tests]
        assert theirs.score == mine.score and (theirs.score == theirs.max_score) == (name == "correct.py")
    assert "pandas" in grader.sandbox.imports  # a class run's worker imports what submissions often import


def test_expected_values_that_cannot_be_computed_stop_the_lab_instead_of_failing_the_student(monkeypatch):
    from autograder import specs

    def broken(tests):
        raise RuntimeError("the model file is damaged")

    monkeypatch.setattr(specs.load("lab1"), "prepare", broken)
    with Grader(["lab1"]) as broken_grader:
        with pytest.raises(RuntimeError, match="damaged"):
            broken_grader.grade_lab("lab1", REFERENCE, student="ada")


def test_closing_waits_for_the_expected_values_still_being_computed(monkeypatch):
    """They are computed by torch in a daemon thread; a process that exits while that thread is inside torch aborts at
    interpreter shutdown ("terminate called without an active exception", pytorch/pytorch#38228). CI saw it once:
    ``python -m pytest`` on a spec, whose few selected tests finished before the expected values, exited with -6."""
    import threading
    import time

    from autograder import specs

    calls, closing = [], threading.Event()

    def slow(tests):  # the first lab's values are still being computed when the grader closes
        calls.append("lab1")
        closing.wait(timeout=60)
        time.sleep(0.5)

    monkeypatch.setattr(specs.load("lab1"), "prepare", slow)
    monkeypatch.setattr(specs.load("lab3"), "prepare", lambda tests: calls.append("lab3"))
    with Grader(["lab1", "lab3"]) as early:
        assert early._truths.is_alive()
        closing.set()
    assert not early._truths.is_alive()
    assert calls == ["lab1"]  # the lab in progress is finished, the next one is not started


def test_the_start_up_runs_without_garbage_collection_and_student_code_with_it(tmp_path):
    """``llm-grade grade`` starts with the collector off (a quarter of a cold start); the grader turns it back on once
    its expected values are computed, and the worker's children run student code with it on."""
    import gc

    path = tmp_path / "collector.py"
    header = "def split_heads(x: Tensor, num_heads: int) -> Tensor:\n"
    assert header in REFERENCE.read_text()
    path.write_text(REFERENCE.read_text().replace(header, header + "    import gc\n\n    assert gc.isenabled(), "
                                                  "'student code ran with the garbage collector off'\n"))
    frozen = gc.get_freeze_count()
    gc.disable()  # as autograder.cli does for the grade verb
    try:
        with Grader(["lab1"], files=[path]) as alone:
            record = alone.grade_lab("lab1", path, student="ada")
            assert gc.isenabled() and gc.get_freeze_count() > frozen
    finally:
        gc.enable()
        gc.unfreeze()
    assert record.score == record.max_score, [t.output for t in record.tests if not t.passed]
