"""The files the grader writes: a JSON per student, a class gradebook (CSV), Gradescope's results.json.

An output folder holds::

    students/<student>.json     every lab graded for the student: tests, feedback, notes, captured output,
                                the seed of their hidden inputs and what decided the result
    gradescope/<student>.json   the same in Gradescope's results.json format
    gradebook.csv               one row per student: each lab's score (blank when not submitted) and maximum,
                                the total (:mod:`autograder.gradebook`)
    feedback/<student>/<lab>.md the report a student may read, and .html (:mod:`autograder.feedback`)

Every file is written atomically (a temporary file in the same folder, then a rename), and a
student's JSON as soon as one of their labs is graded, so an interrupted run loses at most the
labs in progress and a new run resumes where it stopped.
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

STUDENTS, GRADESCOPE, GRADEBOOK = "students", "gradescope", "gradebook.csv"


@dataclass
class TestResult:
    """The outcome of one graded test, in the shape Gradescope's results.json uses for a test."""

    __test__ = False  # a record, not a pytest test class
    name: str
    score: float
    max_score: float
    status: str  # "passed" or "failed"
    output: str
    visibility: str
    seconds: float = 0.0

    @property
    def passed(self) -> bool:
        return self.status == "passed"

    def to_dict(self) -> dict:
        return {**asdict(self), "seconds": round(self.seconds, 3)}


@dataclass
class LabRecord:
    """One lab of one student as graded: what a student's JSON keeps under ``labs.<lab>``."""

    title: str
    file: str | None = None  # the file graded, None when no file of the submission holds the lab (not submitted)
    sha256: str | None = None
    file_name: str | None = None  # the file graded as the student named it (in their folder), shown to them
    candidates: list[str] = field(default_factory=list)  # every file that defines some of the lab's functions
    score: float = 0.0
    max_score: float = 0.0
    error: str | None = None  # why the submission was refused, if it was
    notes: list[str] = field(default_factory=list)  # what was skipped while loading it
    output: str = ""  # the tail of what it printed (shown, never parsed)
    seconds: float = 0.0
    hidden_inputs: dict | None = None  # the seed hidden inputs were drawn from, and where it came from
    graded_at: str = ""
    sandbox: dict | None = None  # which protections were on
    decided_by: dict | None = None  # what decides the result (autograder.resume): a change means a regrade
    tests: list[TestResult] = field(default_factory=list)

    @property
    def failed(self) -> list[TestResult]:
        return [test for test in self.tests if not test.passed]

    @property
    def submitted(self) -> bool:
        """Whether some file of the submission held the lab (a refused file counts: it was submitted, and scores 0)."""
        return self.file is not None

    def to_dict(self) -> dict:
        return {**{f.name: getattr(self, f.name) for f in fields(self)}, "tests": [t.to_dict() for t in self.tests]}

    @classmethod
    def from_dict(cls, data: dict) -> "LabRecord":
        known = {f.name for f in fields(cls)}
        values = {key: value for key, value in data.items() if key in known}
        values["tests"] = [TestResult(**test) for test in data.get("tests", [])]
        return cls(**values)


@dataclass
class StudentRecord:
    """Every lab graded for one student: what ``students/<student>.json`` holds."""

    student: str
    labs: dict[str, LabRecord] = field(default_factory=dict)

    @property
    def score(self) -> float:
        return round(sum(lab.score for lab in self.labs.values()), 4)

    @property
    def max_score(self) -> float:
        return round(sum(lab.max_score for lab in self.labs.values()), 4)

    def to_dict(self) -> dict:
        return {"student": self.student, "labs": {name: lab.to_dict() for name, lab in self.labs.items()},
                "score": self.score, "max_score": self.max_score}

    @classmethod
    def from_dict(cls, data: dict) -> "StudentRecord":
        return cls(str(data["student"]), {name: LabRecord.from_dict(lab) for name, lab in data["labs"].items()})


# How the file of a lab is chosen when several files of one submission define its functions (autograder.grade.Grader.pick).
CHOICE_RULE = "the most complete (most of the lab's functions implemented), then the newest"


def chosen_note(lab: LabRecord) -> str:
    """Why the graded file is the lab's when several files could have been ("" when it was the only one)."""
    if not [name for name in lab.candidates if name != lab.file_name]:
        return ""
    return (f"chosen among the {len(lab.candidates)} files that define this lab's functions "
            f"({', '.join(lab.candidates)}) as {CHOICE_RULE}; submit one file per lab to choose it yourself")


def graded_file_sentence(lab: LabRecord) -> str:
    """Which file was graded, and why that one when several could have been: shown to the student."""
    note = chosen_note(lab)
    return f"graded {lab.file_name}" + (f", {note}" if note else "") + "."


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


def read_student(out: Path, student: str) -> StudentRecord | None:
    """A student's results from an earlier run, or None (also for a file that does not parse)."""
    path = student_path(out, student)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        return StudentRecord.from_dict(data)
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None


def gradescope(record: StudentRecord) -> dict:
    """A student's record in Gradescope's results.json format (one test per graded test, all labs)."""
    tests, lines = [], []
    for name, lab in record.labs.items():
        if lab.file_name:
            lines.append(f"{name}: {graded_file_sentence(lab)}")
        if lab.error:
            lines.append(f"{name}: {lab.error}")
        lines += [f"{name}: {note}" for note in lab.notes]
        for test in lab.tests:
            tests.append({key: getattr(test, key) for key in ("name", "score", "max_score", "output", "visibility", "status")})
    seconds = sum(lab.seconds for lab in record.labs.values())
    return {
        "score": record.score,
        "max_score": record.max_score,
        "execution_time": round(seconds),
        "output": "\n".join(lines),
        "visibility": "visible",
        "stdout_visibility": "hidden",  # the autograder's own output is never shown to the student
        "tests": tests,
        # Kept by Gradescope, not shown: how each lab's hidden inputs were drawn and what walled the code off.
        "extra_data": {name: {"hidden_inputs": lab.hidden_inputs, "sandbox": lab.sandbox}
                       for name, lab in record.labs.items()},
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


def write_student(out: Path, record: StudentRecord, guard: "Guard | None" = None) -> Path:
    """Write a student's JSON and their Gradescope file; returns the JSON's path. ``guard`` remembers both."""
    path = student_path(out, record.student)
    files = {path: json.dumps(record.to_dict(), indent=1, ensure_ascii=False) + "\n",
             Path(out) / GRADESCOPE / f"{record.student}.json": json.dumps(gradescope(record), indent=1) + "\n"}
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
