"""autograder.seeding and the hidden tests: inputs drawn per student from the course secret, recorded, reproducible."""

from __future__ import annotations

import json

import pytest

from autograder import cli, seeding, spec
from autograder.grade import Grader, gradescope_student
from book import ROOT
from autograder.seeding import Draw, student_seed
from autograder.specs import lab1_attention as lab1
from autograder.specs import lab3_tokens as lab3
from book.labs import lab3 as truth3
from book.labs.lab1 import Case

SECRET = "a secret for the tests, long enough"
FAULTY = ROOT / "autograder" / "catalogue" / "lab1" / "faulty_self_attention_scaled_by_model_width.py"


def test_a_students_seed_is_stable_and_depends_on_the_secret():
    assert student_seed("alice@example.edu", SECRET) == student_seed("Alice@Example.edu ", SECRET)
    assert student_seed("alice@example.edu", SECRET) != student_seed("bob@example.edu", SECRET)
    assert student_seed("alice@example.edu", SECRET) != student_seed("alice@example.edu", SECRET + "!")
    assert 0 <= student_seed("alice", None) < 2**63


def test_the_secret_is_read_from_a_file_and_refused_when_short(tmp_path, monkeypatch):
    path = tmp_path / "secret.txt"
    path.write_text(SECRET + "\n")
    assert seeding.read_secret(path) == SECRET
    monkeypatch.setenv(seeding.SECRET_FILE_ENV, str(path))
    assert seeding.read_secret() == SECRET
    path.write_text("short")
    with pytest.raises(seeding.SecretError, match="at least 16"):
        seeding.read_secret(path)
    with pytest.raises(seeding.SecretError, match="cannot be read"):
        seeding.read_secret(tmp_path / "missing.txt")


def test_the_seeding_of_a_submission_says_where_it_comes_from():
    assert seeding.seeding_for("alice", SECRET).source == "secret and student id"
    assert seeding.seeding_for("alice", None).source == "student id only"
    assert seeding.seeding_for("alice", SECRET, seed=7) == seeding.Seeding(7, "given")
    assert seeding.seeding_for(None, SECRET).seed == seeding.DEFAULT_SEED


@pytest.mark.parametrize("name, template", [(t.name, t.kwargs["case"]) for t in spec.collect(lab1) if t.hidden
                                            and isinstance(t.kwargs.get("case"), Case)], ids=lambda x: x if isinstance(x, str) else "")
def test_drawn_attention_cases_keep_their_templates_structure_and_differ_between_students(name, template):
    drawn = [lab1.drawn_case(template, Draw(student_seed(f"s{i}", SECRET), name)) for i in range(40)]
    assert len({(c.seed, c.B, c.H, c.Tq, c.Tk, c.Dh) for c in drawn}) >= 35  # different students, different inputs
    assert drawn[0] == lab1.drawn_case(template, Draw(student_seed("s0", SECRET), name))  # the same student, the same inputs
    for case in drawn:
        assert (case.side, case.causal, case.dtype, case.hidden) == (template.side, template.causal, template.dtype, True)
        for size in ("B", "H", "Tq", "Dh"):
            assert (getattr(case, size) == 1) == (getattr(template, size) == 1), size
        assert (case.Tq > case.Tk) == (template.Tq > template.Tk) and (case.Tq == case.Tk) == (template.Tq == template.Tk)
        if template.lengths:
            assert len(case.lengths) == len(template.lengths)
            for got, was in zip(case.lengths, template.lengths):
                assert (got == 0) == (was == 0) and (got == case.Tk) == (was == template.Tk)
        # the label names the structure, not the drawn shapes
        assert str((case.B, case.H, case.Tq, case.Dh)) not in case.label() and "hidden case" in case.label()


def test_drawn_token_cases_keep_their_kinds_of_string():
    for name in ("smollm2", "smollm2-special", "minilm-special"):
        cases = {lab3.drawn_case(lab3.CASES[name], Draw(student_seed(f"s{i}", SECRET), "t")) for i in range(30)}
        assert len(cases) > 3
        for case in cases:
            expected = truth3.expectation(case)
            template = truth3.expectation(lab3.CASES[name])
            assert len(expected["new"]) == len(template["new"]) and len(expected["existing"]) == len(template["existing"])
            assert case.special == lab3.CASES[name].special and str(list(case.strings)) not in case.label()


def test_gradescope_metadata_names_the_student(tmp_path):
    path = tmp_path / "submission_metadata.json"
    path.write_text(json.dumps({"users": [{"email": "ada@example.edu", "id": 3}, {"email": "bo@example.edu"}]}))
    assert gradescope_student(path) == "ada@example.edu"
    path.write_text("not json")
    assert gradescope_student(path) is None


@pytest.fixture(scope="module")
def grader():
    with Grader(["lab1"], secret=SECRET) as grader:
        yield grader


def test_each_student_is_graded_on_their_own_hidden_inputs_and_the_seed_is_recorded(grader):
    records = {s: grader.grade_lab("lab1", ROOT / "solutions" / "attention.py", student=s) for s in ("ada", "bo")}
    for student, record in records.items():
        assert record.score == record.max_score, [t.name for t in record.tests if t.status != "passed"]
        assert record.hidden_inputs == {"seed": str(student_seed(student, SECRET)), "source": "secret and student id"}


def test_hidden_feedback_does_not_show_the_students_drawn_sentences(grader):
    record = grader.grade_lab("lab1", FAULTY, student="cy")
    hidden = [t for t in record.tests if t.name.startswith("lab1: self_attention_minilm_hidden")]
    assert hidden and all(t.status == "failed" for t in hidden)
    seed = student_seed("cy", SECRET)
    for test in hidden:
        for sentence in lab1.drawn_sentences(Draw(seed, test.name)):
            assert sentence not in test.output


def test_a_regrade_with_the_recorded_seed_draws_the_same_inputs(tmp_path, capsys):
    first, second = tmp_path / "first.json", tmp_path / "second.json"
    secret = tmp_path / "secret.txt"
    secret.write_text(SECRET)
    assert cli.main(["grade", str(FAULTY), "--lab", "lab1", "--gradescope", str(first), "--secret-file", str(secret),
                     "--quiet"]) == 0
    seed = json.loads(first.read_text())["extra_data"]["lab1"]["hidden_inputs"]["seed"]
    assert cli.main(["grade", str(FAULTY), "--lab", "lab1", "--gradescope", str(second), "--seed", seed, "--quiet"]) == 0
    a, b = (json.loads(p.read_text()) for p in (first, second))
    assert json.loads(second.read_text())["extra_data"]["lab1"]["hidden_inputs"] == {"seed": seed, "source": "given"}
    assert [(t["name"], t["status"], t["output"]) for t in a["tests"]] == [(t["name"], t["status"], t["output"])
                                                                           for t in b["tests"]]
    capsys.readouterr()


def test_the_first_run_creates_a_course_secret_outside_the_repository_and_later_runs_reuse_it(tmp_path, monkeypatch):
    import os
    import stat

    home = tmp_path / "config"
    monkeypatch.setenv(seeding.HOME_ENV, str(home))
    assert seeding.course_secret(create=False) is None
    first = seeding.course_secret()
    assert first.created and first.path == home / "courses" / "llm-internals" / "secret"
    assert stat.S_IMODE(os.stat(first.path).st_mode) == 0o600 and len(first.value) >= 32
    again = seeding.course_secret()
    assert (again.value, again.created) == (first.value, False)
    assert seeding.course_secret("term-2").value != first.value  # another course, another secret
    monkeypatch.delenv(seeding.HOME_ENV)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    assert seeding.course_secret_path() == tmp_path / "xdg" / "llm-grade" / "courses" / "llm-internals" / "secret"
    assert ROOT not in seeding.course_secret_path().parents
    with pytest.raises(seeding.SecretError, match="cannot name a folder"):
        seeding.course_secret_path("../elsewhere")


def test_without_a_secret_file_the_course_secret_draws_the_inputs_and_a_recorded_seed_still_regrades(tmp_path, capsys):
    first = tmp_path / "first.json"
    assert cli.main(["grade", str(FAULTY), "--lab", "lab1", "--out", str(tmp_path / "class"), "--quiet"]) == 0
    created = capsys.readouterr().err
    assert "Created the course secret in" in created and "no course secret" not in created
    secret = seeding.course_secret(create=False).value
    stored = json.loads((tmp_path / "class" / "students" / f"{FAULTY.stem}.json").read_text())
    inputs = stored["labs"]["lab1"]["hidden_inputs"]
    assert inputs == {"seed": str(student_seed(FAULTY.stem, secret)), "source": "secret and student id"}
    # Anyone with the code alone, without the secret, draws other inputs for the same student.
    assert str(student_seed(FAULTY.stem, None)) != inputs["seed"]
    assert cli.main(["grade", str(FAULTY), "--lab", "lab1", "--gradescope", str(first), "--seed", inputs["seed"],
                     "--quiet"]) == 0
    assert json.loads(first.read_text())["extra_data"]["lab1"]["hidden_inputs"] == {"seed": inputs["seed"],
                                                                                   "source": "given"}
    capsys.readouterr()


def test_a_gradescope_run_never_creates_a_secret_of_its_own(tmp_path, capsys):
    target = tmp_path / "results.json"
    assert cli.main(["grade", str(FAULTY), "--lab", "lab1", "--gradescope", str(target), "--quiet"]) == 0
    assert "no course secret" in capsys.readouterr().err
    assert seeding.course_secret(create=False) is None
