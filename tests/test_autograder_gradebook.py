"""autograder.gradebook: blank for not submitted, 0 only for a graded zero, a roster joined, Canvas and Moodle files.

The results are written here as grade writes them (no grading needed): ada submitted both labs,
ben submitted lab 1 and scored a real zero and no lab 2, cy's lab 2 file was refused (a zero),
and the roster adds dee, who submitted nothing, and keeps its own columns. The LMS files are
read back the way each system's importer reads them (the rules quoted in autograder.gradebook).
"""

from __future__ import annotations

import csv
import io

import pytest

from autograder import cli, gradebook, results
from autograder.results import LabRecord, StudentRecord, TestResult
from autograder.roster import read_roster

LAB1, LAB2 = 33.0, 22.0


def lab(title: str, maximum: float, score: float | None, refused: bool = False) -> LabRecord:
    """A lab as graded (score), not submitted (None), or refused (a file that could not be read)."""
    record = LabRecord(title, max_score=maximum)
    if score is None:
        record.error = "no file of this submission defines any of mean_pool, max_pool, embed_sentences: ..."
    else:
        record.file, record.sha256, record.score = "/submissions/x.py", "0" * 64, score
        record.error = "x.ipynb is empty: save the notebook before downloading it" if refused else None
    record.tests = [TestResult("t", score or 0.0, maximum, "passed" if score else "failed", "", "visible")]
    return record


@pytest.fixture
def out(tmp_path):
    folder = tmp_path / "results"
    for student, labs in {"ada": {"lab1": lab("Attention", LAB1, 33), "lab2": lab("Pooling", LAB2, 20.5)},
                          "ben": {"lab1": lab("Attention", LAB1, 0), "lab2": lab("Pooling", LAB2, None)},
                          "cy": {"lab1": lab("Attention", LAB1, 30), "lab2": lab("Pooling", LAB2, 0, refused=True)},
                          "zed": {"lab1": lab("Attention", LAB1, 12)}}.items():
        results.write_student(folder, StudentRecord(student, labs))
    return folder


@pytest.fixture
def roster(tmp_path):
    path = tmp_path / "roster.csv"
    path.write_text("student,name,email,lms_id,sis_user_id,sis_login_id,section,tutorial\n"
                    "ada,Ada Lovelace,ada@uni.edu,101,S1,ada.l,Mon,T1\n"
                    "ben,Ben Franklin,ben@uni.edu,102,S2,ben.f,Mon,T2\n"
                    "cy,\"Smith, Cy\",cy@uni.edu,103,S3,cy.s,Tue,T1\n"
                    "dee,Dee Dee,dee@uni.edu,104,S4,dee.d,Tue,T2\n")
    return read_roster(path)


def rows(text: str) -> list[dict]:
    return list(csv.DictReader(io.StringIO(text)))


def test_not_submitted_is_blank_and_a_graded_zero_is_zero(out):
    book = {r["student"]: r for r in rows(gradebook.as_csv(gradebook.build(out)))}
    assert book["ben"]["lab1"] == "0" and book["ben"]["lab2"] == ""  # a real zero; nothing submitted
    assert book["cy"]["lab2"] == "0"  # a file that could not be read was submitted: a zero
    assert book["zed"]["lab2"] == "" and book["zed"]["lab2_max"] == "22"  # no result at all for lab 2
    assert book["ada"]["total"] == "53.5" and book["ben"]["total"] == "0"


def test_totals_are_over_the_labs_graded_or_listed(out):
    graded = rows(gradebook.as_csv(gradebook.build(out)))
    assert {r["total_max"] for r in graded} == {"55"}  # both labs graded for someone: every student out of 55
    listed = rows(gradebook.as_csv(gradebook.build(out, labs=["lab1"])))
    assert list(listed[0]) == ["student", "lab1", "lab1_max", "total", "total_max"]
    assert {r["total_max"] for r in listed} == {"33"} and listed[0]["total"] == "33"
    ahead = rows(gradebook.as_csv(gradebook.build(out, labs=["lab1", "lab3"])))  # lab 3 listed, graded for nobody yet
    assert {r["lab3"] for r in ahead} == {""} and {r["lab3_max"] for r in ahead} == {"18"}


def test_a_roster_is_joined_by_student_its_columns_kept_and_everyone_listed(out, roster):
    book = gradebook.build(out, roster=roster)
    table = rows(gradebook.as_csv(book))
    assert [r["student"] for r in table] == ["ada", "ben", "cy", "dee", "zed"]  # roster order, then the others
    assert list(table[0])[:8] == ["student", "name", "email", "lms_id", "sis_user_id", "sis_login_id", "section",
                                  "tutorial"]
    dee = table[3]
    assert (dee["name"], dee["lab1"], dee["lab2"], dee["total"]) == ("Dee Dee", "", "", "0")
    assert book.not_in_roster == ["zed"]


def test_the_canvas_file_is_what_canvas_imports(out, roster):
    text, left_out = gradebook.as_canvas(gradebook.build(out, roster=roster))
    lines = list(csv.reader(io.StringIO(text)))
    header, points = lines[0], lines[1]
    # Canvas's importer: "Student" then "ID" first, then SIS User ID and SIS Login ID, "Section" last of the
    # student columns; a "Points Possible" row; every other column an assignment (so no total column).
    assert header[:5] == ["Student", "ID", "SIS User ID", "SIS Login ID", "Section"]
    assert header[5:] == ["Lab 1: Attention", "Lab 2: Pooling"]
    assert points == ["Points Possible", "", "", "", "", "33", "22"]
    students = {line[0]: line for line in lines[2:]}
    assert students["Ben Franklin"] == ["Ben Franklin", "102", "S2", "ben.f", "Mon", "0", ""]
    assert students["Smith, Cy"][1] == "103" and students["Dee Dee"][5:] == ["", ""]
    assert left_out == ["zed"]  # no id and no name Canvas could match: left out, and said
    assert {len(line) for line in lines} == {7}


def test_the_moodle_file_is_what_moodle_imports(out, roster):
    text, left_out = gradebook.as_moodle(gradebook.build(out, roster=roster))
    lines = list(csv.reader(io.StringIO(text)))
    assert lines[0] == ["Name", "ID number", "Email address", "Lab 1: Attention", "Lab 2: Pooling"]
    students = {line[2]: line for line in lines[1:]}
    assert students["ben@uni.edu"][3:] == ["0", ""]  # Moodle: an empty cell is no grade, 0 a grade of zero
    assert students["ada@uni.edu"][3:] == ["33", "20.5"]
    assert left_out == ["zed"]  # Moodle stops a whole import at a user it cannot find: never such a row
    assert {len(line) for line in lines} == {5}  # Moodle refuses rows of another length


def test_the_command_line_writes_each_format_and_names_what_it_left_out(out, roster, tmp_path, capsys):
    roster_file = tmp_path / "roster.csv"
    assert cli.main(["gradebook", str(out), "--roster", str(roster_file), "--lab", "lab1"]) == 0
    printed = capsys.readouterr()
    assert "labs lab1 (out of 33 points), 1 blank cells" in printed.out and "not in the roster: zed" in printed.err
    assert (out / "gradebook.csv").read_text().startswith("student,name,email,lms_id")
    assert cli.main(["gradebook", str(out), "--roster", str(roster_file), "--format", "canvas"]) == 0
    assert "Left out" in capsys.readouterr().err and (out / "canvas.csv").is_file()
    assert cli.main(["gradebook", str(out), "--roster", str(roster_file), "--format", "moodle", "--out",
                     str(tmp_path / "m.csv")]) == 0
    assert (tmp_path / "m.csv").read_text().startswith("Name,ID number,Email address,")
    capsys.readouterr()
    with pytest.raises(SystemExit):
        cli.main(["gradebook", str(out), "--format", "moodle"])
    assert "give --roster" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        cli.main(["gradebook", str(out), "--lab", "lab9"])
    assert "There is no lab 'lab9'" in capsys.readouterr().err
