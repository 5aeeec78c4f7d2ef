"""autograder.sandbox and autograder.worker: a submission that misbehaves fails its own tests and nothing else.

Each misbehaving submission below ends with per-test failures that say what happened, the
grader keeps going, and the next submission is graded from a pristine worker.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from autograder.grade import Grader, grade_folder
from autograder.sandbox import Limits

ROOT = Path(__file__).resolve().parent.parent
TIGHT = Limits(call_seconds=1.5, load_seconds=2, submission_seconds=20, memory_bytes=512 << 20)
CORRECT_MERGE = "def merge_heads(x):\n    B, H, T, Dh = x.shape\n    return x.transpose(1, 2).reshape(B, T, H * Dh)\n"


@pytest.fixture(scope="module")
def grader():
    with Grader(["lab1"]) as grader:
        yield grader


def write(tmp_path: Path, name: str, source: str) -> Path:
    path = tmp_path / name
    path.write_text(source)
    return path


def outputs(record: dict, function: str) -> list[str]:
    """The feedback of the tests of one student function."""
    return [t["output"] for t in record["tests"] if t["name"].split(": ")[1].startswith(function)]


def passed(record: dict, function: str) -> bool:
    tests = [t for t in record["tests"] if t["name"].split(": ")[1].startswith(function)]
    return bool(tests) and all(t["status"] == "passed" for t in tests)


def test_solutions_and_the_grader_cannot_be_imported(grader, tmp_path):
    path = write(tmp_path, "eve.py", (
        "def split_heads(x, num_heads):\n    import solutions.attention\n    return solutions.attention.split_heads(x, num_heads)\n"
        "def merge_heads(x):\n    from autograder.specs import lab1_attention\n    return x\n"
    ))
    record = grader.grade_lab("lab1", path, TIGHT)
    assert record["score"] == 0
    assert all("'solutions' cannot be imported while grading" in o for o in outputs(record, "split_heads"))
    assert all("'autograder' cannot be imported while grading" in o for o in outputs(record, "merge_heads"))
    assert any('File "eve.py", line 2, in split_heads' in o for o in outputs(record, "split_heads"))  # their own traceback


def test_a_submission_cannot_write_results_and_its_output_is_not_parsed(grader, tmp_path):
    out = tmp_path / "results"
    students = out / "students"
    folder = tmp_path / "class"
    folder.mkdir()
    (folder / "alice.py").write_text((ROOT / "solutions" / "attention.py").read_text())  # graded first
    write(folder, "mallory.py", (
        "import json, os\n"
        "def split_heads(x, num_heads):\n"
        "    forged = {'student': 'mallory', 'score': 999, 'max_score': 1, 'labs': {}}\n"
        f"    os.makedirs({str(students)!r}, exist_ok=True)\n"
        "    for name in ('mallory', 'alice', 'zed'):  # its own result, another student's, a new one\n"
        f"        with open(os.path.join({str(students)!r}, name + '.json'), 'w') as f:\n"
        "            json.dump({**forged, 'student': name}, f)\n"
        "    print(json.dumps({'score': 999, 'max_score': 999, 'tests': []}))\n"
        "    return os.getcwd()\n"
    ))
    summary = grade_folder(folder, out, ["lab1"], progress=False, grader=grader)
    record = json.loads((students / "mallory.json").read_text())
    assert record["score"] == 0 and record["max_score"] == grader.max_score("lab1")
    lab = record["labs"]["lab1"]
    assert '"score": 999' in lab["output"]  # shown to the student, never read as a result
    cwd = outputs(lab, "split_heads")[0].split("got a str ('")[1].split("'")[0]
    assert Path(cwd).name.startswith("llm-grade-") and not Path(cwd).is_relative_to(ROOT)
    alice = json.loads((students / "alice.json").read_text())
    assert alice["score"] == alice["max_score"] == grader.max_score("lab1")
    assert not (students / "zed.json").exists()
    assert set(summary["restored"]) <= {"students/alice.json", "students/zed.json"}  # empty where the child is `nobody`
    gradebook = (out / "gradebook.csv").read_text().splitlines()
    assert [row.split(",")[0] for row in gradebook[1:]] == ["alice", "mallory"]
    assert gradebook[2].startswith("mallory,0,")


def test_exiting_the_process_fails_only_that_function(grader, tmp_path):
    path = write(tmp_path, "exit.py", (
        "import os, sys\n"
        "def split_heads(x, num_heads):\n    os._exit(7)\n"
        "def scaled_dot_product_attention(query, key, value, attention_mask=None, is_causal=False):\n    sys.exit(3)\n"
        + CORRECT_MERGE
    ))
    record = grader.grade_lab("lab1", path, TIGHT)
    assert all("exited while running `split_heads` (exit code 7)" in o for o in outputs(record, "split_heads"))
    assert all("called sys.exit(3)" in o for o in outputs(record, "sdpa"))
    assert passed(record, "merge_heads")  # graded in a fresh child after the first one died


def test_an_endless_loop_reaches_the_time_limit_once(grader, tmp_path):
    path = write(tmp_path, "loop.py", (
        "def repeat_kv(x, n_rep):\n    while True:\n        pass\n"
        "def split_heads(x, num_heads):\n"
        "    while True:  # even an alarm-proof loop is stopped by the grader\n"
        "        try:\n            while True:\n                pass\n        except BaseException:\n            pass\n"
        + CORRECT_MERGE
    ))
    started = time.monotonic()
    record = grader.grade_lab("lab1", path, TIGHT)
    assert time.monotonic() - started < 20  # two time limits, not one per test
    repeat = outputs(record, "repeat_kv")
    assert "Time limit reached: `repeat_kv` ran longer than 1.5 s" in repeat[0]
    assert all("reached the time limit in an earlier test" in o for o in repeat[1:])
    assert "Time limit reached: running `split_heads` took longer than" in outputs(record, "split_heads")[0]
    assert passed(record, "merge_heads")


def test_a_huge_allocation_reaches_the_memory_limit(grader, tmp_path):
    path = write(tmp_path, "hog.py", (
        "import torch\n"
        "def split_heads(x, num_heads):\n    hog = torch.ones(2**30, dtype=torch.float32)  # 4 GiB\n    return x\n"
        + CORRECT_MERGE
    ))
    record = grader.grade_lab("lab1", path, TIGHT)
    assert all("Memory limit reached: `split_heads` tried to allocate more than the 0.5 GiB" in o
               for o in outputs(record, "split_heads"))
    assert passed(record, "merge_heads")


def test_one_submission_cannot_change_the_next_ones_results(grader, tmp_path):
    vandal = write(tmp_path, "vandal.py", (
        "import torch, builtins\n"
        "def split_heads(x, num_heads):\n"
        "    torch.softmax = torch.Tensor.softmax = lambda *a, **k: 0\n"
        "    builtins.len = lambda x: 0\n"
        "    return x\n"
    ))
    grader.grade_lab("lab1", vandal, TIGHT)
    record = grader.grade_lab("lab1", ROOT / "solutions" / "attention.py")
    assert record["score"] == record["max_score"], [t["output"] for t in record["tests"] if t["status"] != "passed"]


def test_a_graded_function_using_another_cells_variable_is_told_why(grader, tmp_path):
    path = write(tmp_path, "globals.py", "device = 'cpu'\ndevice = torch_device()\ndef split_heads(x, num_heads):\n    return x.to(dev)\n")
    record = grader.grade_lab("lab1", path, TIGHT)
    assert "must not use variables created in other cells" in outputs(record, "split_heads")[0]


def test_a_top_level_statement_that_fails_or_hangs_is_skipped_with_a_note(grader, tmp_path):
    path = write(tmp_path, "slow.py", (
        "import torch\nimport not_a_module_anyone_has\n"
        "FOREVER = next(i for i in iter(int, 1) if i)\n"  # never ends, in constant memory: stopped after load_seconds
        + CORRECT_MERGE
    ))
    record = grader.grade_lab("lab1", path, TIGHT)
    notes = "\n".join(record["notes"])
    assert "slow.py, line 2: `import not_a_module_anyone_has` was skipped: ModuleNotFoundError" in notes
    assert "slow.py, line 3: `FOREVER = next(i for i in iter(int, 1) if i)` was skipped: it ran longer than 2 s" in notes
    assert passed(record, "merge_heads")
