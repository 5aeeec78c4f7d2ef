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
    assert "nothing to grade, all 4 labs are already graded" in capsys.readouterr().out


def test_the_command_line_grades_a_file_for_gradescope(tmp_path, capsys):
    target = tmp_path / "results.json"
    assert cli.main(["grade", str(REFERENCE), "--lab", "lab1", "--gradescope", str(target), "--quiet"]) == 0
    data = json.loads(target.read_text())
    assert data["score"] == data["max_score"] > 0 and all(t["status"] == "passed" for t in data["tests"])
    assert "points; wrote" in capsys.readouterr().out


def test_the_command_line_explains_its_verbs_and_refuses_unknown_ones(capsys):
    assert cli.main(["--help"]) == 0
    assert "grade" in capsys.readouterr().err
    assert cli.main(["regrade"]) == 2
    assert "Unknown command 'regrade': use one of grade, selftest, bench, audit, bundle, tolerances." in capsys.readouterr().err
    with pytest.raises(SystemExit):
        cli.main(["grade", "nowhere", "--lab", "lab7"])
    assert "There is no lab 'lab7'" in capsys.readouterr().err
