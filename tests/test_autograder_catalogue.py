"""autograder.audit and autograder/catalogue: every correct variant gets full marks, every faulty one loses exactly
the points of what it breaks and is told why, every hostile one is contained.

The whole catalogue is graded once per session (one grader, a class folder per lab, about a
minute and a half on two cores); each entry is then one parametrized test, so a failure names
the submission and says what it got.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from autograder import audit, cli, spec, specs
from autograder.results import LabRecord, TestResult
from autograder.isolation import Protections

ENTRIES = audit.load()
BY_KIND = {kind: [e for e in ENTRIES if e.kind == kind] for kind in audit.KINDS}
# What the issue asks the hostile catalogue to hold, by entry name.
HOSTILE = ("syntax_error.py", "syntax_error_in_one_cell.ipynb", "invalid_json.ipynb", "empty.ipynb", "missing_function.py",
           "loop_at_import.py", "loop_in_function.py", "loop_ignoring_the_alarm.py", "memory_bomb.py", "sys_exit.py",
           "os_exit.py", "raise_systemexit.py", "keyboard_interrupt.py", "leaves_a_process.py", "returns_none.py",
           "returns_a_list.py", "returns_numpy.py", "wrong_shape.py", "wrong_dtype.py", "equals_everything.py",
           "tensor_subclass.py", "monkeypatches_torch.py", "monkeypatches_the_grader.py", "reads_the_solutions.py",
           "reads_the_hidden_tests.py", "reads_another_submission.py", "writes_the_results.py", "prints_a_fake_score.py",
           "huge_notebook.ipynb", "opens_the_network.py", "prints_the_environment.py")


@pytest.fixture(scope="module")
def tests_of():
    return {lab: spec.collect(specs.load(lab)) for lab in specs.select("all")}


def names(entries) -> list[str]:
    return [e.name for e in entries]


# --- the catalogue itself ------------------------------------------------------------------------------


@pytest.mark.parametrize("lab", specs.select("all"))
def test_each_lab_has_twelve_faulty_and_four_correct_variants(lab):
    faulty = [e for e in BY_KIND["faulty"] if e.lab == lab]
    correct = [e for e in BY_KIND["correct"] if e.lab == lab]
    assert len(faulty) >= 12 and len(correct) >= 4, (names(faulty), names(correct))


def test_the_hostile_catalogue_holds_every_case_of_the_issue():
    held = {Path(e.name).name for e in BY_KIND["hostile"]}
    assert set(HOSTILE) <= held, sorted(set(HOSTILE) - held)


def test_large_entries_are_generated_not_committed():
    committed = [p for p in audit.CATALOGUE.rglob("*") if p.is_file()]
    assert max(p.stat().st_size for p in committed) < 100_000
    assert {"hostile/huge_notebook.ipynb", "hostile/nested_too_deeply.ipynb"} <= set(names(ENTRIES))
    assert not (audit.CATALOGUE / "hostile" / "huge_notebook.ipynb").exists()


@pytest.mark.parametrize("entry", ENTRIES, ids=lambda e: e.name)
def test_every_entry_declares_an_expectation_the_grader_can_check(entry, tests_of):
    assert entry.title and entry.lab in tests_of, f"{entry.name}: a title line and a lab"
    assert audit.unmatched_patterns(entry, tests_of[entry.lab]) == [], f"{entry.name}: `fails` names no such test"
    assert set(entry.requires) <= {"filesystem", "network", "processes", "user"}
    if entry.kind == "correct":
        assert not (entry.fails or entry.says or entry.error)
    if entry.kind == "faulty":
        wanted = audit.expected_failures(entry, tests_of[entry.lab])
        assert wanted and len(wanted) < len(tests_of[entry.lab]) or "all" in entry.fails
        assert entry.says, f"{entry.name}: say which phrase of the feedback names the cause"
    if entry.kind == "hostile":
        assert entry.fails or entry.error or entry.process or entry.says, f"{entry.name}: declare what it must get"


# --- what each entry gets ------------------------------------------------------------------------------


@pytest.mark.parametrize("entry", BY_KIND["correct"], ids=lambda e: e.name)
def test_a_correct_variant_gets_full_marks(audited, entry):
    row = audited[0][entry.name]
    record = row.record
    failed = {t.name: t.output for t in record.tests if t.status != "passed"}
    assert record.score == record.max_score and not failed and record.error is None, failed
    assert row.ok, row.problems


@pytest.mark.parametrize("entry", BY_KIND["faulty"], ids=lambda e: e.name)
def test_a_faulty_variant_loses_exactly_the_points_of_what_it_breaks_and_is_told_why(audited, tests_of, entry):
    record = audited[0][entry.name].record
    wanted = audit.expected_failures(entry, tests_of[entry.lab])
    failed = {t.name: t for t in record.tests if t.status != "passed"}
    assert sorted(failed) == sorted(t.name for t in wanted), "the tests that fail are not the ones its header names"
    lost = sum(t.points for t in wanted)
    assert record.score == pytest.approx(record.max_score - lost)
    assert all(t.score == 0 for t in failed.values())
    for phrase in entry.says:
        assert any(phrase in t.output for t in failed.values()), f"no feedback names the cause: {phrase!r}"
    for test in failed.values():  # every failure starts with the test's own sentence, then says what went wrong
        message = next(t.message for t in wanted if t.name == test.name)
        assert test.output.startswith(message + "\n") and len(test.output) > len(message) + 20


@pytest.mark.parametrize("entry", BY_KIND["hostile"], ids=lambda e: e.name)
def test_a_hostile_submission_is_contained(audited, entry):
    row = audited[0][entry.name]
    protections: Protections = audited[1]
    if row.ok is None:
        pytest.skip(f"{entry.name} needs the {', '.join(entry.requires)} protection, which is off here: "
                    f"{'; '.join(protections.off())}")
    assert row.ok, row.problems
    record = row.record
    if entry.error:
        assert record.score == 0 and all("Not graded: " in t.output for t in record.tests)


def test_feedback_never_shows_hidden_tests_or_reference_code(audited):
    rows, protections, _ = audited
    hidden = [Path(specs.load(lab).__file__).read_text() for lab in specs.select("all")]
    secrets = [line.strip() for source in hidden for line in source.splitlines()  # how hidden cases are drawn
               if re.match(r"\s*(def drawn_|POOLS = |return .*draw)", line)]
    reference = [(audit.ROOT / specs.load(lab).LAB.reference).read_text() for lab in specs.select("all")]
    comments = [line.strip() for source in reference for line in source.splitlines()  # the reference's own words
                if line.strip().startswith("# ") and len(line.strip()) > 30]
    assert secrets and comments
    for row in rows.values():
        if row.record is None:
            continue
        shown = "\n".join(t.output for t in row.record.tests)
        assert not any(secret in shown for secret in secrets + comments), row.entry.name


def test_the_other_submissions_of_each_run_are_unaffected(audited):
    rows, _, workspace = audited
    for lab in specs.select("all"):
        out = workspace / f"llm-grade-audit-{lab}" / "results"
        for canary in audit.CANARIES:
            record = json.loads((out / "students" / f"{lab}-{canary}.json").read_text())
            assert record["score"] == record["max_score"] > 0, (lab, canary)
        students = {p.stem for p in (out / "students").glob("*.json")}
        graded = {row.entry.student for row in rows.values() if row.entry.lab == lab and row.ok is not None}
        assert students == graded | {f"{lab}-{c}" for c in audit.CANARIES}  # no forged student either


def test_a_fake_score_printed_is_shown_but_not_the_score(audited):
    record = audited[0]["hostile/prints_a_fake_score.py"].record
    assert '"score": 33.0' in record.output and record.score == 0


def test_every_record_says_which_protections_were_on(audited):
    rows, protections, _ = audited
    for row in rows.values():
        if row.record is not None:
            assert row.record.sandbox == protections.to_dict()


# --- the audit's own logic, on made-up records -------------------------------------------------------------


def fake_record(failing: dict[str, str], tests) -> LabRecord:
    records = [TestResult(t.name, 0.0 if t.name in failing else float(t.points), float(t.points),
                          "failed" if t.name in failing else "passed", failing.get(t.name, ""), "visible") for t in tests]
    return LabRecord("Fake", score=sum(r.score for r in records), max_score=sum(float(t.points) for t in tests),
                     tests=records)


def test_judge_finds_every_way_an_entry_can_get_the_wrong_result(tests_of):
    tests = tests_of["lab1"]
    entry = audit._entry("lab1/faulty_x.py", "X\nfails: repeat_kv\nsays: tiled")
    repeat = [t.name for t in tests if "repeat_kv[" in t.name]
    assert audit.judge(entry, fake_record({n: "it is tiled" for n in repeat}, tests), tests).ok
    too_many = fake_record({n: "it is tiled" for n in repeat + ["lab1: sdpa_no_mask[3x5x7x13]"]}, tests)
    assert "fails tests it should pass: lab1: sdpa_no_mask[3x5x7x13]" in audit.judge(entry, too_many, tests).problems[0]
    too_few = audit.judge(entry, fake_record({repeat[0]: "it is tiled"}, tests), tests)
    assert any("passes tests it should fail" in p for p in too_few.problems)
    silent = audit.judge(entry, fake_record({n: "wrong values" for n in repeat}, tests), tests)
    assert silent.problems == ["no failing test's feedback says 'tiled'"]
    correct = audit._entry("lab1/correct_x.py", "Y")
    assert not audit.judge(correct, fake_record({repeat[0]: "no"}, tests), tests).ok


def test_headers_are_read_from_docstrings_and_expect_files(tmp_path):
    (tmp_path / "lab1").mkdir()
    (tmp_path / "lab1" / "faulty_a.py").write_text('"""Title.\n\nProse.\n\nfails: split_heads\n    merge_heads\nsays: one\nsays: two\n"""\n')
    (tmp_path / "hostile").mkdir()
    (tmp_path / "hostile" / "b.ipynb").write_text("{")
    (tmp_path / "hostile" / "b.ipynb.expect").write_text("Broken\nlab: lab2\nerror: is not a valid notebook\n")
    first, second = audit.load(tmp_path)
    assert (first.name, first.kind, first.lab, first.fails, first.says) == (
        "hostile/b.ipynb", "hostile", "lab2", (), ())
    assert first.error == "is not a valid notebook"
    assert (second.kind, second.lab, second.title, second.fails, second.says) == (
        "faulty", "lab1", "Title.", ("split_heads", "merge_heads"), ("one", "two"))


# --- the report ----------------------------------------------------------------------------------------------


def test_the_report_prints_the_table_and_the_counts(audited):
    rows = list(audited[0].values())
    counts = audit.counts(rows)
    assert counts["faulty"] == len(BY_KIND["faulty"]) and counts["correct"] == len(BY_KIND["correct"])
    assert counts["faulty_caught"] == counts["faulty"] and counts["correct_passed"] == counts["correct"]
    assert counts["hostile_contained"] + counts["hostile_not_run"] == counts["hostile"] == len(BY_KIND["hostile"])
    for width in (90, 120, 200):  # it fits the terminal, wrapping long cells onto more lines, and cuts nothing
        text = audit.table(rows, width=width)
        assert text.splitlines()[0].split() == ["submission", "what", "expected", "got", "verdict"]
        assert max(len(line) for line in text.splitlines()) <= width and "..." not in text
        words = text.split()
        for row in rows[:: 1 if width >= 200 else len(rows)]:  # narrower, a long word may break across lines
            assert all(word in words for word in row.entry.title.split()), row.entry.title
    assert "lab1/faulty_softmax_over_queries.py" in audit.table(rows, width=200)
    markdown = audit.table(rows, markdown=True)
    assert markdown.startswith("| submission | what | expected | got | verdict |\n|---|---|---|---|---|\n")
    assert f"faulty caught: {counts['faulty']} of {counts['faulty']}" in audit.summary(rows)


def test_the_audit_command_grades_part_of_the_catalogue(capsys):
    assert cli.main(["audit", "--lab", "lab2", "--kind", "correct", "--markdown"]) == 0
    out = capsys.readouterr().out
    assert "| lab2/correct_einsum.py |" in out
    count = len([e for e in BY_KIND["correct"] if e.lab == "lab2"])
    assert f"correct passed: {count} of {count}; hostile contained: 0 of 0" in out
