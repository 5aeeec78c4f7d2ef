"""autograder.spec and autograder.specs: how graded tests are declared and run, and the feedback faulty code gets."""

from __future__ import annotations

import threading
import types
from pathlib import Path

import pytest
import torch

from autograder import bench, spec, specs
from book import labs
from book.labs.compare import Mismatch
from autograder.grade import Grader
from autograder.session import FEEDBACK, StudentFailure
from autograder.wire import ErrorKind
from book import ROOT



def fake_spec_module():
    """A spec module of three tests, two of them parametrized, against a student given as a plain object."""
    module = types.ModuleType("fake_spec")
    module.LAB = spec.Lab(labs.Lab("labX", "Fake", ("double",), ()), "labs/x.ipynb", "solutions/x.py")

    @spec.points(2, "double must double.")
    @spec.parametrize("x", [1, 3])
    def test_double(student, x):
        if student.double(x) != 2 * x:
            raise Mismatch(f"double({x}) is {student.double(x)}")

    @spec.points(1, "Any dtype.", hidden=True)
    @spec.parametrize("dtype", [torch.float32, torch.bfloat16])
    @spec.parametrize("n", [5, 7])
    def test_dtypes(student, dtype, n):
        student.double(torch.ones(n, dtype=dtype))

    @spec.points(1, "Never crashes the grader.")
    def test_spec_bug(student):
        return student.missing_attribute_of_a_result.value

    def helper_not_a_test(student):
        raise AssertionError("not collected")

    module.test_double, module.test_dtypes, module.test_spec_bug, module.helper = test_double, test_dtypes, test_spec_bug, helper_not_a_test
    return module


class Student:
    def double(self, x):
        if isinstance(x, int) and x == 3:
            return 7
        return 2 * x


def test_collect_expands_parameters_in_order():
    tests = spec.collect(fake_spec_module())
    assert [t.name for t in tests] == [
        "labX: double[1]", "labX: double[3]",
        "labX: dtypes[float32, 5]", "labX: dtypes[float32, 7]", "labX: dtypes[bfloat16, 5]", "labX: dtypes[bfloat16, 7]",
        "labX: spec_bug",
    ]
    assert [t.points for t in tests] == [2, 2, 1, 1, 1, 1, 1]
    assert tests[3].kwargs == {"dtype": torch.float32, "n": 7} and tests[3].hidden


def test_run_test_turns_every_failure_into_feedback():
    session = types.SimpleNamespace(student=Student())
    results = {t.name: spec.run_test(t, session) for t in spec.collect(fake_spec_module())}
    assert results["labX: double[1]"].status == "passed" and results["labX: double[1]"].score == 2
    failed = results["labX: double[3]"]
    assert (failed.status, failed.score, failed.max_score) == ("failed", 0.0, 2)
    assert failed.output == "double must double.\ndouble(3) is 7"
    assert results["labX: dtypes[bfloat16, 7]"].visibility == spec.HIDDEN
    assert results["labX: double[1]"].visibility == spec.VISIBLE
    bug = results["labX: spec_bug"]
    assert bug.status == "failed" and "The grader could not check what your function returned (AttributeError" in bug.output


def test_student_failures_carry_their_own_feedback():
    class Crashing:
        def double(self, x):
            raise StudentFailure(ErrorKind.TIMEOUT, "Time limit reached: `double` ran longer than 30 s.")

    test = spec.collect(fake_spec_module())[0]
    result = spec.run_test(test, types.SimpleNamespace(student=Crashing()))
    assert result.output == "double must double.\nTime limit reached: `double` ran longer than 30 s."


def test_cached_computes_each_key_once_across_threads():
    calls = []

    @labs.cached
    def slow(x):
        calls.append(x)
        threading.Event().wait(0.05)
        return x * 2

    threads = [threading.Thread(target=slow, args=(i % 2,)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(calls) == [0, 1] and slow(1) == 2


@pytest.mark.parametrize("lab", specs.select("all"))
def test_every_spec_declares_its_lab_and_gives_each_test_points_and_a_message(lab):
    module = specs.load(lab)
    tests = spec.collect(module)
    assert module.LAB.name == lab and (ROOT / module.LAB.reference).is_file()
    assert tests and all(t.points > 0 and t.message.endswith(".") for t in tests)
    assert len({t.name for t in tests}) == len(tests)
    assert any(t.hidden for t in tests) and any(not t.hidden for t in tests)
    assert callable(module.prepare)


@pytest.mark.parametrize("lab", specs.select("all"))
def test_every_graded_test_is_a_stated_rule_with_a_public_check_of_the_same_kind(lab):
    """A hidden test is a rule of the lab's public module, run on drawn cases: its sentence is stated, and the public
    checks run the same rule on its template cases."""
    module = specs.load(lab)
    truth = labs.load(lab)
    graded = {}
    for name, function in vars(module).items():
        if name.startswith("test_") and hasattr(function, "_grading"):
            graded[function._grading.rule] = function._grading
    assert set(graded) == {rule.name for rule in truth.rules}, "every rule graded, every graded test a rule"
    for rule in truth.rules:
        assert graded[rule.name].message == rule.sentence
        assert rule.cases and all(case is not None for case in rule.cases.values()) or list(rule.cases) == [""]


def test_every_kind_of_failed_call_has_its_feedback():
    assert set(FEEDBACK) == set(ErrorKind)


def test_unknown_labs_are_refused_with_the_choices():
    with pytest.raises(ValueError, match="There is no lab 'lab9': use one of lab1, lab2, lab3 or all."):
        specs.select("lab9")


# --- feedback for faulty implementations, through the sandbox ---------------------------------------


@pytest.fixture(scope="module")
def grader():
    with Grader(["lab1"]) as grader:
        yield grader


def faulty(tmp_path: Path, name: str, old: str, new: str) -> Path:
    """The reference solution of lab 1 with one text replaced (the text must still be there)."""
    source = (ROOT / "solutions" / "attention.py").read_text()
    assert old in source, f"the reference no longer contains {old!r}: update this test"
    path = tmp_path / f"{name}.py"
    path.write_text(source.replace(old, new))
    return path


def failures(record: dict) -> dict[str, str]:
    return {t.name: t.output for t in record.tests if t.status != "passed"}


def test_softmax_over_the_wrong_axis_is_told_rows_must_sum_to_one_along_the_keys(grader, tmp_path):
    record = grader.grade_lab("lab1", faulty(tmp_path, "axis", "scores.softmax(dim=-1)", "scores.softmax(dim=-2)"))
    wrong = failures(record)
    rows = wrong["lab1: sdpa_weights_rows_sum_to_one[square]"]
    assert rows.startswith("Rows of the attention weights must sum to 1 along the keys (a softmax over the last dimension).")
    assert "the attention weights: the row at [0, 0, 0] sums to" in rows and "along the keys, not 1" in rows
    assert "They sum to 1 along the queries (dim -2) instead" in rows
    assert "wrong values; the largest difference is" in wrong["lab1: sdpa_no_mask[3x5x7x13]"]
    assert "lab1: split_heads[3-7-5-13]" not in wrong and 0 < record.score < record.max_score


def test_masking_with_minus_infinity_is_told_where_the_nan_is(grader, tmp_path):
    path = faulty(tmp_path, "nan", "weights = weights.masked_fill(~allowed, 0.0)", "pass")
    path.write_text(path.read_text().replace("torch.finfo(compute).min", 'float("-inf")'))
    wrong = failures(grader.grade_lab("lab1", path))
    message = wrong["lab1: sdpa_fully_masked_rows_are_finite[all-padding-row]"]
    assert "NaN found" in message and "the first at index [2, 0, 0" in message
    assert "lab1: sdpa_causal[Tq=Tk]" not in wrong  # no fully masked row there: still full marks


def test_a_missing_function_and_a_stub_are_named(grader, tmp_path):
    path = tmp_path / "partial.py"
    path.write_text("def split_heads(x, num_heads):\n    raise NotImplementedError\n")
    wrong = failures(grader.grade_lab("lab1", path))
    assert "Not implemented yet: `split_heads` still raises NotImplementedError." in wrong["lab1: split_heads[3-7-5-13]"]
    assert "`repeat_kv` is not defined in your submission" in wrong["lab1: repeat_kv[3-5-3-7-13]"]


def test_a_lost_dtype_is_reported_as_a_dtype(grader, tmp_path):
    path = faulty(tmp_path, "dtype", "return output.to(query.dtype), weights.to(query.dtype)", "return output, weights")
    message = failures(grader.grade_lab("lab1", path))["lab1: sdpa_dtype[bfloat16]"]
    assert "the weights: dtype float32, expected bfloat16 (the dtype of the inputs)" in message


@pytest.mark.parametrize("mutant", [m for m in bench.MUTANTS if m.lab == "lab1"], ids=lambda m: m.name)
def test_every_classic_mistake_of_the_benchmark_loses_points(grader, tmp_path, mutant):
    source = bench.mutate((ROOT / "solutions" / "attention.py").read_text(), mutant)
    path = tmp_path / f"{mutant.name}.py"
    path.write_text(source)
    record = grader.grade_lab("lab1", path)
    assert record.score < record.max_score


def test_a_spec_also_runs_under_pytest_against_the_reference():
    import subprocess
    import sys

    result = subprocess.run([sys.executable, "-m", "pytest", "autograder/specs/lab1_attention.py", "-q", "-p", "no:cacheprovider",
                             "-k", "split_heads or merge_heads"], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout[-2000:]
    assert "4 passed" in result.stdout


def test_lab2s_saved_truths_are_sentence_transformers_encode_of_every_text_a_test_can_draw():
    """Lab 2's embedding truths are saved (the labs' texts with the course, the hidden corpus texts with the grader, so
    that grading imports neither sentence-transformers nor the model): every text a hidden test can draw is saved, and
    the saved vectors are sentence-transformers' encode of them today."""
    from safetensors.torch import load_file

    from autograder.seeding import Draw
    from autograder.specs import lab2_pooling as spec2
    from book.labs import lab2

    saved = spec2.saved_corpus_embeddings()
    hidden = spec2.hidden_texts()
    assert set(saved) == set(hidden), "the saved truths are stale: run autograder.specs.lab2_pooling.write_saved()"
    drawn = [spec2.drawn_openings(lab2.Texts(lab2.TEXTS, 2, ""), Draw(seed, "openings")).texts for seed in range(20)]
    drawn += [spec2.drawn_long_text(lab2.Texts((lab2.LONG_TEXT,), 1, ""), Draw(seed, "long")).texts for seed in range(20)]
    assert all(text in saved for texts in drawn for text in texts)
    assert len(set(drawn)) >= 36  # students draw other texts (140 long texts: two of 20 students may share one)
    tokenizer, _ = labs.course_model("encoder")
    long = [tokenizer(text)["input_ids"] for text in hidden if text not in map(spec2.opening, hidden)]
    assert min(len(ids) for ids in long) >= spec2.LONG_TOKENS > lab2.MAX_SEQ_LENGTH  # the 256 cut is exercised
    sample = hidden[::9] + (hidden[-1],)  # both kinds of text, computed now
    torch.testing.assert_close(torch.stack([saved[t] for t in sample]), spec2.st_encode(sample), atol=1e-6, rtol=0)
    labs_texts = lab2.TEXTS + (lab2.LONG_TEXT,)
    torch.testing.assert_close(load_file(lab2.SAVED)["embeddings"], spec2.st_encode(labs_texts), atol=1e-6, rtol=0)
    # a text the file does not hold (a corpus swapped in) is encoded when it is drawn
    torch.testing.assert_close(spec2.encode(("A text no corpus holds.",)), spec2.st_encode(("A text no corpus holds.",)))
