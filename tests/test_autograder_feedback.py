"""autograder.feedback: reports a student may read, without a drawn hidden input, a seed, a path or the sandbox.

A small class is graded for labs 1 and 3 with a course secret: a correct submission, faulty ones
that fail hidden tests whose cases are drawn sentences (lab 1) and drawn strings (lab 3), and one
whose own exception quotes every string it was given. Each report is then checked against the very
inputs drawn for that student (recomputed here from their seed), published or not.
"""

from __future__ import annotations

import html
import json
import shutil

import pytest

from autograder import cli, feedback, results, spec, specs
from autograder.grade import Grader, grade_folder
from autograder.seeding import student_seed
from book import ROOT

SECRET = "the feedback tests' course secret"
CATALOGUE = ROOT / "autograder" / "catalogue"
QUOTES_ITS_INPUTS = '''
def add_tokens(tokenizer, model, new_tokens, special=False):
    """list of N strings -> list of N ids."""
    raise ValueError(f"cannot add {new_tokens}")
'''


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    folder = tmp_path_factory.mktemp("class")
    shutil.copy(ROOT / "solutions" / "attention.py", folder / "ada.py")
    shutil.copy(CATALOGUE / "lab1" / "faulty_self_attention_scaled_by_model_width.py", folder / "cy.py")
    shutil.copy(CATALOGUE / "lab3" / "faulty_repeat_gets_a_new_id.py", folder / "dee.py")
    shutil.copy(CATALOGUE / "lab3" / "faulty_new_rows_zero.py", folder / "eve.py")
    (folder / "fay.py").write_text(QUOTES_ITS_INPUTS)
    out = tmp_path_factory.mktemp("results")
    with Grader(["lab1", "lab3"], secret=SECRET) as grader:
        grade_folder(folder, out, ["lab1", "lab3"], progress=False, grader=grader, layout="class")
    return out


def public(lab: str) -> set[str]:
    """The texts of ``lab``'s public cases: students know them, feedback may quote them."""
    from book.labs import lab1, lab3

    return set(lab1.SENTENCES) if lab == "lab1" else {s for c in lab3.CASES.values() for s in c.strings + c.sentences}


def drawn(student: str, lab: str) -> list[str]:
    """Every text drawn for ``student``'s hidden tests of ``lab`` that no public case has, recomputed from their seed."""
    seed = student_seed(student, SECRET)
    found = [t for test in spec.collect(specs.load(lab)) if test.hidden for t in spec.drawn_texts(test, seed)]
    return [t for t in found if t not in public(lab)]


def texts(folder):
    return {path: path.read_text() for path in sorted(folder.rglob("*")) if path.is_file()}


@pytest.mark.parametrize("published", [False, True], ids=["released", "published"])
def test_a_report_never_holds_a_drawn_input_a_seed_a_path_or_the_sandbox(graded, tmp_path, published):
    written = feedback.write(graded, tmp_path, published=published)
    assert {p.relative_to(tmp_path).as_posix() for p in written} >= {"cy/lab1.md", "cy/lab1.html", "dee/lab3.md",
                                                                      "fay/lab3.html"}
    record = json.loads((graded / "students" / "dee.json").read_text())
    assert record["labs"]["lab3"]["hidden_inputs"]["seed"]  # the instructor's file has the seed; no report does
    for path, text in texts(tmp_path).items():
        student, lab = path.parent.name, path.stem
        for secret in drawn(student, lab):
            assert secret not in text and html.escape(secret) not in text, (path.name, secret)
        assert str(student_seed(student, SECRET)) not in text
        for internal in ("/tmp/", "hidden_inputs", "sandbox", "bubblewrap", "seed", SECRET):
            assert internal not in text, (path, internal)


def test_the_drawn_inputs_checked_are_the_ones_the_grader_used(graded):
    """The check above is not empty: lab 3's hidden cases drew strings the public cases do not have."""
    assert len(drawn("dee", "lab3")) >= 4 and len(drawn("fay", "lab3")) >= 4
    cy_sentences = drawn("cy", "lab1")
    assert len(cy_sentences) >= 4 and all(len(s) > 3 for s in cy_sentences)


def test_hidden_tests_show_only_what_they_check_until_published(graded, tmp_path):
    released = (feedback.write(graded, tmp_path / "released") and (tmp_path / "released" / "cy" / "lab1.md").read_text())
    published = (feedback.write(graded, tmp_path / "published", published=True)
                 and (tmp_path / "published" / "cy" / "lab1.md").read_text())
    sentence = specs.load("lab1").LAB.truth.rule("self_attention_minilm_hidden").sentence
    assert f"- hidden test failed: {sentence.rstrip('.')} (2 cases)." in released  # one line per rule
    assert "### self_attention_minilm_hidden" not in released and "Likely cause" not in released.split("## Hidden")[1]
    assert "### self_attention_minilm_hidden" in published and "hidden padded sentences" in published
    ada = (tmp_path / "released" / "ada" / "lab1.md").read_text()
    assert "**Score: 33 / 33**" in ada and "## What to fix" not in ada and "File graded: `ada.py`." in ada


def test_a_report_says_what_failed_why_and_the_likely_cause(graded, tmp_path):
    feedback.write(graded, tmp_path)
    eve = (tmp_path / "eve" / "lab3.md").read_text()
    assert "## What to fix" in eve and "### new_rows_are_mean_of_pieces" in eve
    assert "**Likely cause:** the row is all zeros" in eve
    page = (tmp_path / "eve" / "lab3.html").read_text()
    assert page.startswith("<!DOCTYPE html>") and "<h2>What to fix</h2>" in page and "<script" not in page
    ada = (tmp_path / "ada" / "lab3.md").read_text()  # ada's file holds no lab 3 function
    assert "**Not submitted**" in ada


def test_a_students_own_exception_never_shows_their_hidden_inputs(graded):
    record = results.read_student(graded, "fay").labs["lab3"]
    hidden = [t for t in record.tests if t.visibility != "visible"]
    visible = [t for t in record.tests if t.visibility == "visible"]
    assert hidden and all("cannot add [" in t.output for t in hidden)
    for test in hidden:
        for secret in drawn("fay", "lab3"):
            assert repr(secret) not in test.output and secret not in test.output
        assert spec.HIDDEN_INPUT in test.output
    assert any("'GPUs'" in t.output for t in visible)  # public inputs are still quoted: students know them


def test_the_command_line_writes_the_reports_with_the_rosters_names(graded, tmp_path, capsys):
    roster = tmp_path / "roster.csv"
    roster.write_text("student,name,email\ncy,Cyrus Smith,cy@example.edu\n")
    out = tmp_path / "reports"
    assert cli.main(["feedback", str(graded), "--out", str(out), "--lab", "lab1", "--roster", str(roster)]) == 0
    assert "reports for 5 students" in capsys.readouterr().out
    assert (out / "cy" / "lab1.md").read_text().startswith("# Lab 1: Attention, Cyrus Smith")
    assert not list(out.rglob("lab3.md"))
    with pytest.raises(SystemExit):
        cli.main(["feedback", str(tmp_path)])
    assert "holds no students/ folder" in capsys.readouterr().err
