"""The files the grader writes: a JSON per student, a class gradebook (CSV), Gradescope's results.json.

An output folder holds::

    students/<student>.json     every lab graded for the student: tests, feedback, notes, captured output
    gradescope/<student>.json   the same in Gradescope's results.json format
    gradebook.csv               one row per student: each lab's score and maximum, the total

Every file is written atomically (a temporary file in the same folder, then a rename), and a
student's JSON as soon as one of their labs is graded, so an interrupted run loses at most the
labs in progress and a new run resumes where it stopped.
"""

from __future__ import annotations

import csv
import io
import json
import os
import tempfile
from pathlib import Path

STUDENTS, GRADESCOPE, GRADEBOOK = "students", "gradescope", "gradebook.csv"


def atomic_write(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` so that readers see the old file or the new one, never a part."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as file:
            file.write(text)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def student_path(out: Path, student: str) -> Path:
    return Path(out) / STUDENTS / f"{student}.json"


def read_student(out: Path, student: str) -> dict | None:
    """A student's results from an earlier run, or None (also for a file that does not parse)."""
    path = student_path(out, student)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) and isinstance(data.get("labs"), dict) else None


def totals(record: dict) -> dict:
    """``record`` with its score and max_score recomputed from its labs."""
    labs = record["labs"]
    record["score"] = round(sum(lab["score"] for lab in labs.values()), 4)
    record["max_score"] = round(sum(lab["max_score"] for lab in labs.values()), 4)
    return record


def gradescope(record: dict) -> dict:
    """A student's record in Gradescope's results.json format (one test per graded test, all labs)."""
    tests, lines = [], []
    for name, lab in record["labs"].items():
        if lab.get("error"):
            lines.append(f"{name}: {lab['error']}")
        lines += [f"{name}: {note}" for note in lab.get("notes", [])]
        for test in lab["tests"]:
            tests.append({key: test[key] for key in ("name", "score", "max_score", "output", "visibility", "status")})
    seconds = sum(lab.get("seconds", 0.0) for lab in record["labs"].values())
    return {
        "score": record["score"],
        "max_score": record["max_score"],
        "execution_time": round(seconds),
        "output": "\n".join(lines),
        "visibility": "visible",
        "stdout_visibility": "hidden",  # the autograder's own output is never shown to the student
        "tests": tests,
        # Kept by Gradescope, not shown: how each lab's hidden inputs were drawn and what walled the code off.
        "extra_data": {name: {"hidden_inputs": lab.get("hidden_inputs"), "sandbox": lab.get("sandbox")}
                       for name, lab in record["labs"].items()},
    }


# Gradescope's results.json, as its documentation specifies it (autograder specifications, "Output format").
GRADESCOPE_VISIBILITY = ("hidden", "after_due_date", "after_published", "visible")
GRADESCOPE_STATUS = ("passed", "failed")
GRADESCOPE_TOP = {"score": (int, float), "max_score": (int, float), "execution_time": (int, float), "output": str,
                  "output_format": str, "test_output_format": str, "test_name_format": str, "visibility": str,
                  "stdout_visibility": str, "extra_data": dict, "tests": list, "leaderboard": list}
GRADESCOPE_TEST = {"score": (int, float), "max_score": (int, float), "status": str, "name": str, "name_format": str,
                   "number": str, "output": str, "output_format": str, "tags": list, "visibility": str, "extra_data": dict}


def gradescope_problems(data) -> list[str]:
    """What makes ``data`` an invalid Gradescope results.json (empty when it is valid)."""
    if not isinstance(data, dict):
        return [f"results.json must hold an object, not {type(data).__name__}"]
    problems = [f"unknown field {key!r}" for key in data if key not in GRADESCOPE_TOP]
    problems += [f"{key} must be {kinds}" for key, kinds in GRADESCOPE_TOP.items()
                 if key in data and (not isinstance(data[key], kinds) or isinstance(data[key], bool))]
    tests = data.get("tests") if isinstance(data.get("tests"), list) else []
    if "score" not in data and not all(isinstance(t, dict) and "score" in t for t in tests):
        problems.append("a score is needed: at the top level, or on every test")
    for key in ("visibility", "stdout_visibility"):
        if key in data and data[key] not in GRADESCOPE_VISIBILITY:
            problems.append(f"{key} {data[key]!r} is not one of {GRADESCOPE_VISIBILITY}")
    for index, test in enumerate(tests):
        if not isinstance(test, dict):
            problems.append(f"tests[{index}] must be an object")
            continue
        problems += [f"tests[{index}]: unknown field {key!r}" for key in test if key not in GRADESCOPE_TEST]
        problems += [f"tests[{index}].{key} must be {kinds}" for key, kinds in GRADESCOPE_TEST.items()
                     if key in test and (not isinstance(test[key], kinds) or isinstance(test[key], bool))]
        if test.get("status", "passed") not in GRADESCOPE_STATUS:
            problems.append(f"tests[{index}].status {test['status']!r} is not one of {GRADESCOPE_STATUS}")
        if test.get("visibility", "visible") not in GRADESCOPE_VISIBILITY:
            problems.append(f"tests[{index}].visibility {test['visibility']!r} is not one of {GRADESCOPE_VISIBILITY}")
        if isinstance(test.get("score"), (int, float)) and isinstance(test.get("max_score"), (int, float)) \
                and not 0 <= test["score"] <= test["max_score"]:
            problems.append(f"tests[{index}]: score {test['score']} outside 0..{test['max_score']}")
    return problems


def write_student(out: Path, record: dict, guard: "Guard | None" = None) -> Path:
    """Write a student's JSON and their Gradescope file; returns the JSON's path. ``guard`` remembers both."""
    record = totals(record)
    path = student_path(out, record["student"])
    files = {path: json.dumps(record, indent=1, ensure_ascii=False) + "\n",
             Path(out) / GRADESCOPE / f"{record['student']}.json": json.dumps(gradescope(record), indent=1) + "\n"}
    for target, text in files.items():
        atomic_write(target, text)
        if guard is not None:
            guard.wrote(target, text)
    return path


class Guard:
    """What the result files of ``out`` must hold at the end of a run, to undo any change the grader did not make.

    A submission whose code runs as root (where ``nobody`` cannot read Python) could write into
    the output folder. The guard remembers every result file as the run found it and as the
    grader wrote it; :meth:`restore` puts back any file changed since and removes any file the
    grader did not write, and returns their names.
    """

    def __init__(self, out: Path):
        self.out = Path(out)
        self.expected: dict[Path, bytes] = {path: path.read_bytes() for path in self._files()}

    def _files(self) -> list[Path]:
        return [p for folder in (STUDENTS, GRADESCOPE) for p in sorted((self.out / folder).glob("*.json"))]

    def wrote(self, path: Path, text: str) -> None:
        self.expected[Path(path)] = text.encode("utf-8")

    def restore(self) -> list[str]:
        changed = []
        for path in self._files():
            if path not in self.expected:
                path.unlink(missing_ok=True)
                changed.append(str(path.relative_to(self.out)))
        for path, content in self.expected.items():
            if not path.is_file() or path.read_bytes() != content:
                atomic_write(path, content.decode("utf-8"))
                changed.append(str(path.relative_to(self.out)))
        return sorted(set(changed))


def _number(value: float) -> str:
    return f"{round(value, 4):g}"


def write_gradebook(out: Path, labs: list[str] | None = None) -> Path:
    """The class gradebook from every student JSON in ``out`` (labs: the columns; default all found)."""
    records = []
    for path in sorted((Path(out) / STUDENTS).glob("*.json")):
        record = read_student(out, path.stem)
        if record is not None:
            records.append(record)
    labs = labs or sorted({lab for record in records for lab in record["labs"]})
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["student"] + [f"{lab}{suffix}" for lab in labs for suffix in ("", "_max")] + ["total", "total_max"])
    for record in records:
        row = [record["student"]]
        for lab in labs:
            entry = record["labs"].get(lab)
            row += [_number(entry["score"]), _number(entry["max_score"])] if entry else ["", ""]
        chosen = [record["labs"][lab] for lab in labs if lab in record["labs"]]
        row += [_number(sum(e["score"] for e in chosen)), _number(sum(e["max_score"] for e in chosen))]
        writer.writerow(row)
    path = Path(out) / GRADEBOOK
    atomic_write(path, buffer.getvalue())
    return path
