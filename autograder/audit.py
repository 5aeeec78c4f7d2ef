"""``audit``: grade the catalogue of correct, faulty and hostile submissions, and check that each gets what it declares.

The catalogue (``autograder/catalogue/``) is a folder of whole submissions, one file each:

* ``<lab>/correct_*.py``: right, but written differently from the reference (einsum, loops,
  float64 inside, torch's own attention...): each must get full marks;
* ``<lab>/faulty_*.py``: wrong in one realistic way: each must fail exactly the tests its
  header names, lose exactly their points, and its feedback must contain the header's phrases;
* ``hostile/*``: broken or hostile files (syntax errors, an empty notebook, endless loops,
  memory bombs, ``sys.exit``, processes left running, monkeypatching, reading the solutions or
  another student's file, writing into the results, a fake score...): each must end with the
  per-test failures (or the refusal) its header names, without crashing the grader or changing
  any other submission's result. A few files are made when the audit runs instead of being
  committed (:data:`GENERATED`: a 100 MB notebook, one nested too deeply to parse).

A ``.py`` entry declares what it expects in its docstring; any other file in a ``<file>.expect``
next to it. The first line is the title; then ``key: value`` lines (a value may go on over
indented lines):

=================  ======================================================================
key                meaning
=================  ======================================================================
lab                the lab it is graded for (the folder says it for correct and faulty ones)
fails              the tests that must fail, all others must pass: a test's name without its
                   parameters (every parameter set), a full name with them
                   (``sdpa_dtype[bfloat16]``), a shell pattern (``sdpa_*``), or ``all``
says              a phrase the feedback of some failing test must contain (one per line)
never-says         a phrase that must appear nowhere in the record (feedback, notes, output)
error              the submission is refused: a phrase of the reason
note               a phrase of the notes on what was skipped
output             a phrase of the captured output (shown to the student, never parsed)
requires           protections the entry needs to be contained (filesystem, network,
                   processes, user: :class:`autograder.isolation.Protections`); without
                   them it is not run, and reported so
leaves-no-process  a marker no process may carry in its command line once grading is done
=================  ======================================================================

Every lab is graded as a class folder with one :class:`~autograder.grade.Grader`: the entries,
a copy of the reference graded in an earlier run (its result files must come out unchanged)
and one graded in the same run (it must get full marks whatever its neighbours did).

With ``--public`` the audit also runs the lab's public checks (:mod:`book.labcheck`, what a
student sees in Colab) on every correct and faulty entry, and checks that they agree with the
grader (:func:`agreement`): a correct entry passes every public check; a faulty one fails exactly
the public checks of the rules whose graded tests it fails, with the same likely causes.

    python -m autograder audit                 # the table and the counts
    python -m autograder audit --markdown      # the table in Markdown (the instructors' page)
    python -m autograder audit --lab lab2 --kind faulty
    python -m autograder audit --public --kind faulty   # with the public checks' verdicts
"""

from __future__ import annotations

import argparse
import contextlib
import fnmatch
import json
import os
import re
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from autograder import cli, results, specs
from autograder.grade import Grader, grade_folder
from autograder.results import LabRecord
from autograder.sandbox import Limits
from book import ROOT, labcheck

CATALOGUE = Path(__file__).resolve().parent / "catalogue"
KINDS = ("correct", "faulty", "hostile")
KEYS = ("lab", "fails", "says", "never-says", "error", "note", "output", "requires", "leaves-no-process")
# Tighter than a class run's defaults, so that the endless loops and memory bombs cost seconds,
# and still ample for every correct submission (the slowest call, growing SmolLM2's embeddings a row at a
# time, takes about 3 s on a busy 2-core machine).
AUDIT_LIMITS = Limits(call_seconds=15.0, load_seconds=3.0, submission_seconds=90.0, memory_bytes=3 << 29)
CANARIES = ("canary_graded_earlier", "canary_graded_alongside")  # copies of the reference
# A credential planted in the grader's environment while the audit runs: hostile/prints_the_environment.py must not see it.
PLANTED = {"AWS_SECRET_ACCESS_KEY": "planted-by-llm-grade-audit", "LLM_GRADE_PLANTED_TOKEN": "planted-by-llm-grade-audit"}


@contextlib.contextmanager
def planted_secrets():
    """Put :data:`PLANTED` in this process's environment (a variable already set is left as it is), then take it out.

    A grader started inside inherits it, as it would an instructor's credentials.
    """
    added = [name for name in PLANTED if name not in os.environ]
    os.environ.update({name: PLANTED[name] for name in added})
    try:
        yield
    finally:
        for name in added:
            os.environ.pop(name, None)


@dataclass(frozen=True)
class Entry:
    """One catalogue submission and what it must get."""

    name: str  # its path in the catalogue, "lab1/faulty_softmax_over_queries.py"
    kind: str  # "correct", "faulty" or "hostile"
    lab: str
    title: str
    fails: tuple[str, ...] = ()
    says: tuple[str, ...] = ()
    never_says: tuple[str, ...] = ()
    error: str = ""
    notes: tuple[str, ...] = ()
    output: tuple[str, ...] = ()
    requires: tuple[str, ...] = ()
    process: str = ""  # leaves-no-process
    make: Callable[[Path], None] | None = field(default=None, compare=False)  # writes a generated entry

    @property
    def student(self) -> str:
        """Its student name in the class folder (its file's name, which says the lab, kind and fault)."""
        return f"{self.lab}-{Path(self.name).stem}"

    @property
    def suffix(self) -> str:
        return Path(self.name).suffix

    def source(self, catalogue: Path = CATALOGUE) -> Path:
        return catalogue / self.name


def _fields(text: str) -> tuple[str, dict[str, list[str]]]:
    """The title (first line) and the ``key: value`` lines of a header; indented lines continue a value."""
    lines = text.strip().splitlines()
    title = lines[0].strip() if lines else ""
    found: dict[str, list[str]] = {}
    key = None
    for line in lines[1:]:
        match = re.match(r"^([a-z-]+):\s*(.*)$", line.strip())
        if match and match.group(1) in KEYS and not line[:1].isspace():
            key = match.group(1)
            found.setdefault(key, []).append(match.group(2).strip())
        elif key and line[:1].isspace() and line.strip():
            found[key][-1] = (found[key][-1] + " " + line.strip()).strip()
        else:
            key = None
    return title, found


def _header(path: Path) -> str:
    """The docstring at the top of a ``.py`` entry (read as text: the file may not parse), else its ``.expect`` file."""
    sidecar = path.with_name(path.name + ".expect")
    if sidecar.is_file():
        return sidecar.read_text(encoding="utf-8")
    text = path.read_text(encoding="utf-8", errors="replace")
    match = re.match(r'\s*(?:#[^\n]*\n\s*)*(?:"""|\'\'\')(.*?)(?:"""|\'\'\')', text, re.DOTALL)
    if not match:
        raise ValueError(f"{path}: a catalogue entry starts with a docstring that says what it expects "
                         "(or has a .expect file next to it).")
    return match.group(1)


def _entry(name: str, header: str, make=None) -> Entry:
    title, found = _fields(header)
    folder = name.split("/")[0]
    kind = "hostile" if folder == "hostile" else Path(name).stem.split("_")[0]
    if kind not in KINDS:
        raise ValueError(f"{name}: a lab's entry is named correct_*.py or faulty_*.py.")
    lab = found.get("lab", [folder])[0]

    def words(key: str) -> tuple[str, ...]:
        return tuple(w for value in found.get(key, []) for w in re.split(r"[,\s]+", value) if w)

    return Entry(name, kind, lab, title, fails=words("fails"), says=tuple(found.get("says", [])),
                 never_says=tuple(found.get("never-says", [])), error=" ".join(found.get("error", [])),
                 notes=tuple(found.get("note", [])), output=tuple(found.get("output", [])), requires=words("requires"),
                 process=" ".join(found.get("leaves-no-process", [])), make=make)


# --- entries made when the audit runs ------------------------------------------------------------


def _huge_notebook(path: Path) -> None:
    """A valid notebook of 100 MB: the lab's stubs, and a cell output of 100 MB of text (as runaway printing leaves)."""
    cell = {"cell_type": "code", "metadata": {}, "execution_count": 1,
            "source": ["def split_heads(x, num_heads):\n", "    return x\n"],
            "outputs": [{"output_type": "stream", "name": "stdout", "text": ["x" * 1023 + "\n"] * (100 * 1024)}]}
    path.write_text(json.dumps({"nbformat": 4, "nbformat_minor": 5, "metadata": {}, "cells": [cell]}))


def _nested_notebook(path: Path) -> None:
    """JSON nested 100,000 levels deep (a few hundred kB): a parser that recursed without a guard would crash."""
    path.write_text('{"cells": ' + "[" * 100_000 + "]" * 100_000 + "}")


GENERATED = (
    ("hostile/huge_notebook.ipynb", _huge_notebook,
     "A 100 MB notebook (runaway output saved in it)\nlab: lab1\nerror: more than the 32 MB a submission may be"),
    ("hostile/nested_too_deeply.ipynb", _nested_notebook,
     "A notebook whose JSON is nested 100,000 levels deep\nlab: lab1\nerror: nested too deeply to read"),
)


def load(catalogue: Path = CATALOGUE, labs: list[str] | None = None, kinds: tuple[str, ...] = KINDS) -> list[Entry]:
    """Every entry of the catalogue (and the generated ones), sorted by name; optionally only some labs and kinds."""
    entries = []
    for path in sorted(catalogue.rglob("*")):
        if path.is_file() and path.suffix in (".py", ".ipynb") and "__pycache__" not in path.parts:
            name = path.relative_to(catalogue).as_posix()
            entries.append(_entry(name, _header(path)))
    if catalogue == CATALOGUE:
        entries += [_entry(name, header, make) for name, make, header in GENERATED]
    return sorted((e for e in entries if (labs is None or e.lab in labs) and e.kind in kinds), key=lambda e: e.name)


# --- what an entry must get ------------------------------------------------------------------------


def expected_failures(entry: Entry, tests: list) -> list:
    """The lab's tests that ``entry`` declares failing (all of them for ``fails: all`` or a refused file)."""
    if entry.error or "all" in entry.fails:
        return list(tests)
    chosen = []
    for test in tests:
        full = test.name.split(": ", 1)[1]
        base = full.split("[")[0]
        if any(full == p if "[" in p else fnmatch.fnmatchcase(base, p) for p in entry.fails):
            chosen.append(test)
    return chosen


def unmatched_patterns(entry: Entry, tests: list) -> list[str]:
    """The patterns of ``fails`` that name no test of the lab (a typo, or a test renamed since)."""
    names = [t.name.split(": ", 1)[1] for t in tests]
    return [p for p in entry.fails if p != "all" and not any(
        n == p if "[" in p else fnmatch.fnmatchcase(n.split("[")[0], p) for n in names)]


@dataclass
class Row:
    """One line of the report: an entry, what it must get, what it got, and whether that is what it must."""

    entry: Entry
    expected: str
    got: str
    ok: bool | None  # None: not run, a protection it needs is off
    problems: list[str] = field(default_factory=list)
    record: LabRecord | None = None
    public: "labcheck.CheckReport | None" = None  # the lab's public checks on the entry (with --public)

    @property
    def verdict(self) -> str:
        return {True: "ok", False: "WRONG", None: "not run"}[self.ok]

    def to_dict(self) -> dict:
        return {"submission": self.entry.name, "kind": self.entry.kind, "lab": self.entry.lab, "title": self.entry.title,
                "expected": self.expected, "got": self.got, "verdict": self.verdict, "problems": self.problems}


def _short(names: list[str]) -> str:
    """Test names grouped by base name: ``sdpa_sizes (3), sdpa_no_mask``."""
    counts: dict[str, int] = {}
    for name in names:
        base = name.split(": ", 1)[-1].split("[")[0]
        counts[base] = counts.get(base, 0) + 1
    return ", ".join(f"{b} ({n})" if n > 1 else b for b, n in counts.items())


# --- the public checks on the same entries -----------------------------------------------------------------


def public_report(entry: Entry):
    """The lab's public checks run on a correct or faulty entry, as in a notebook (the entry is the course's own code)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location(f"_catalogue_{Path(entry.name).stem}", entry.source())
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return labcheck.run_checks(entry.lab, vars(module), quiet=True)  # its own globals, as a notebook's are


CAUSE = re.compile(r"Likely cause: (.*?)(?=\n|$)", re.DOTALL)


def likely_causes(texts, numbers: bool = False) -> set[str]:
    """The "Likely cause" sentences in ``texts``, numbers left out to compare them (a hidden case's sizes differ from a
    public one's) unless ``numbers`` (to show them as the student reads them)."""
    causes = {cause.strip() for text in texts for cause in CAUSE.findall(text)}
    return causes if numbers else {re.sub(r"\d+", "#", cause) for cause in causes}


def failing_rules(record: LabRecord) -> set[str]:
    """The rules whose graded tests failed: a test's name without its lab and parameters."""
    return {t.name.split(": ", 1)[1].split("[")[0] for t in record.failed}


def agreement(row: Row) -> list[str]:
    """How the public checks disagree with the grader on ``row``'s entry (empty when they agree): they must fail exactly
    the rules whose graded tests fail, name only likely causes the grader names too, and say the entry's phrases."""
    report, record = row.public, row.record
    if report is None or record is None:
        return ["not compared: the public checks or the grader did not run"]
    failed = {r.name: r.hint for r in report.results if not r.passed}
    problems = []
    if set(failed) != failing_rules(record):
        problems.append(f"public checks failing {sorted(failed)}, graded rules failing {sorted(failing_rules(record))}")
    graded = [t.output for t in record.failed]
    # A public check stops at its first failing case; the grader runs every case as a test of its own, so it may name
    # more causes. Every cause the student reads in Colab must be one the grader gives.
    if not likely_causes(failed.values()) <= likely_causes(graded):
        problems.append(f"likely causes differ: public {sorted(likely_causes(failed.values()))}, grader "
                        f"{sorted(likely_causes(graded))}")
    for phrase in row.entry.says:
        if not any(phrase in hint for hint in failed.values()):
            problems.append(f"no public check says {phrase!r}")
    return problems


def judge(entry: Entry, record: LabRecord, tests: list) -> Row:
    """Compare a graded lab record with what ``entry`` declares."""
    maximum = float(record.max_score)
    failing = [t.name for t in record.failed]
    wanted = [t.name for t in expected_failures(entry, tests)]
    lost = sum(float(t.points) for t in tests if t.name in wanted)
    problems = []
    feedback = [t.output for t in record.failed]
    everything = "\n".join(feedback + list(record.notes) + [record.error or "", record.output])

    if entry.kind == "correct":
        expected = f"{maximum:g} / {maximum:g}"
    elif entry.error:
        expected = f"0 / {maximum:g}, refused"
    else:
        expected = f"{maximum - lost:g} / {maximum:g}" + (f", fails {_short(wanted)}" if wanted else "")
    got = f"{float(record.score):g} / {maximum:g}"
    if record.error:
        got += ", refused"
    if entry.error:
        if not record.error or entry.error not in record.error:
            problems.append(f"expected a refusal saying {entry.error!r}, got {record.error!r}")
    elif record.error:
        problems.append(f"refused: {record.error}")
    extra = [n for n in failing if n not in wanted]
    missed = [n for n in wanted if n not in failing]
    if extra:
        got += f", also fails {_short(extra)}"
        problems.append(f"fails tests it should pass: {', '.join(extra)}")
    if missed:
        got += f", passes {_short(missed)}"
        problems.append(f"passes tests it should fail: {', '.join(missed)}")
    if abs(float(record.score) - (maximum - lost)) > 1e-9:
        problems.append(f"scored {record.score:g}, expected {maximum - lost:g}")
    for phrase in entry.says:
        if not any(phrase in text for text in feedback):
            problems.append(f"no failing test's feedback says {phrase!r}")
    for phrase in entry.never_says:
        if phrase in everything:
            problems.append(f"the record shows {phrase!r}, which it must never show")
    for phrase in entry.notes:
        if not any(phrase in note for note in record.notes):
            problems.append(f"no note says {phrase!r}")
    for phrase in entry.output:
        if phrase not in record.output:
            problems.append(f"the captured output does not show {phrase!r}")
    return Row(entry, expected, got, not problems, problems, record)


def processes_with(marker: str) -> list[int]:
    """The pids of the processes whose command line contains ``marker``."""
    found = []
    for name in os.listdir("/proc") if os.path.isdir("/proc") else []:
        if name.isdigit():
            try:
                with open(f"/proc/{name}/cmdline", "rb") as handle:
                    if marker.encode() in handle.read():
                        found.append(int(name))
            except OSError:
                pass
    return found


# --- running the catalogue -------------------------------------------------------------------------


def _stage(entries: list[Entry], folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for entry in entries:
        target = folder / f"{entry.student}{entry.suffix}"
        if entry.make is not None:
            entry.make(target)
        else:
            shutil.copy(entry.source(), target)


def audit(entries: list[Entry] | None = None, grader: Grader | None = None, workspace: Path | None = None,
          jobs: int = 2, limits: Limits = AUDIT_LIMITS, public: bool = False) -> list[Row]:
    """Grade ``entries`` (default: the whole catalogue) lab by lab with one grader, and judge each; one :class:`Row` each.

    ``workspace`` keeps the class folders and results (default: a temporary folder, removed after).
    With ``public``, every correct and faulty entry also gets the verdict of the lab's public checks.
    """
    entries = load() if entries is None else entries
    labs = [lab for lab in specs.select("all") if any(e.lab == lab for e in entries)]
    own = grader is None
    grader = grader or Grader(labs, limits)
    temporary = workspace is None
    workspace = Path(tempfile.mkdtemp(prefix="llm-grade-audit-") if temporary else workspace)
    rows: list[Row] = []
    try:
        with planted_secrets():  # a grader started here inherits them (one given to the audit was started before)
            grader.start()
        protections = grader.protections
        for lab in labs:
            rows += _audit_lab(grader, lab, [e for e in entries if e.lab == lab], workspace / f"llm-grade-audit-{lab}",
                               protections, jobs)
    finally:
        if own:
            grader.close()
        if temporary:
            shutil.rmtree(workspace, ignore_errors=True)
    if public:
        for row in rows:
            if row.entry.kind in ("correct", "faulty"):
                row.public = public_report(row.entry)
    return rows


def _audit_lab(grader: Grader, lab: str, entries: list[Entry], workspace: Path, protections, jobs: int) -> list[Row]:
    tests = grader.tests[lab]
    out = workspace / "results"
    reference = ROOT / grader.modules[lab].LAB.reference
    run = [e for e in entries if protections.covers(e.requires)]
    skipped = [e for e in entries if e not in run]

    earlier = workspace / "earlier"  # a student graded in an earlier run: their files must come out unchanged
    earlier.mkdir(parents=True)
    shutil.copy(reference, earlier / f"{lab}-{CANARIES[0]}.py")
    grade_folder(earlier, out, [lab], progress=False, grader=grader)
    before = {p: p.read_bytes() for p in sorted(out.rglob("*.json"))}

    folder = workspace / "class"
    _stage(run, folder)
    shutil.copy(earlier / f"{lab}-{CANARIES[0]}.py", folder)  # the same file: already graded, skipped
    shutil.copy(reference, folder / f"{lab}-{CANARIES[1]}.py")
    crash = None
    try:
        grade_folder(folder, out, [lab], jobs=jobs, progress=False, grader=grader)
    except Exception as error:  # noqa: BLE001 - a grader that crashes fails every hostile entry of the lab
        crash = f"the grader crashed: {type(error).__name__}: {error}"

    shared = []  # what any entry of this run could have caused
    if crash:
        shared.append(crash)
    changed = [str(p.relative_to(out)) for p, data in before.items() if not p.is_file() or p.read_bytes() != data]
    if changed:
        shared.append(f"results written before the run changed: {', '.join(changed)}")
    alongside = results.read_student(out, f"{lab}-{CANARIES[1]}")
    if not crash and (alongside is None or alongside.score != alongside.max_score):
        shared.append("the reference solution graded in the same run did not get full marks")
    students = {e.student for e in run} | {f"{lab}-{c}" for c in CANARIES}
    strangers = sorted(p.stem for p in (out / results.STUDENTS).glob("*.json") if p.stem not in students)
    if strangers:
        shared.append(f"result files of students who do not exist: {', '.join(strangers)}")

    rows = []
    for entry in run:
        record = results.read_student(out, entry.student)
        if record is None or lab not in record.labs:
            rows.append(Row(entry, "-", "not graded", False, shared + ["no result was written for it"]))
            continue
        row = judge(entry, record.labs[lab], tests)
        if entry.process:
            left = processes_with(entry.process)
            for _ in range(50):  # the zygote kills what a child left behind within a second
                if not left:
                    break
                time.sleep(0.1)
                left = processes_with(entry.process)
            if left:
                row.problems.append(f"processes it started are still running: {left}")
        if entry.kind == "hostile":
            row.problems += shared
        row.ok = not row.problems
        rows.append(row)
    for entry in skipped:
        missing = [name for name in entry.requires if not getattr(protections, name)]
        rows.append(Row(entry, "contained", f"not run: needs {', '.join(missing)} protection", None))
    return sorted(rows, key=lambda r: r.entry.name)


# --- the report ---------------------------------------------------------------------------------------


def counts(rows: list[Row]) -> dict:
    """How many of each kind got what they declare: faulty caught, correct passed, hostile contained (and not run)."""
    def of(kind):
        return [r for r in rows if r.entry.kind == kind]

    return {"faulty_caught": sum(r.ok is True for r in of("faulty")), "faulty": len(of("faulty")),
            "correct_passed": sum(r.ok is True for r in of("correct")), "correct": len(of("correct")),
            "hostile_contained": sum(r.ok is True for r in of("hostile")), "hostile": len(of("hostile")),
            "hostile_not_run": sum(r.ok is None for r in of("hostile"))}


def summary(rows: list[Row]) -> str:
    c = counts(rows)
    text = (f"faulty caught: {c['faulty_caught']} of {c['faulty']}; correct passed: {c['correct_passed']} of "
            f"{c['correct']}; hostile contained: {c['hostile_contained']} of {c['hostile']}")
    return text + (f" ({c['hostile_not_run']} not run: a protection they need is off)" if c["hostile_not_run"] else "")


def table(rows: list[Row], markdown: bool = False, width: int | None = None) -> str:
    """The rows as a text table that fits ``width`` columns (default: the terminal's), long cells wrapped onto more
    lines, never cut; or a Markdown table."""
    import shutil
    import textwrap

    header = ["submission", "what", "expected", "got", "verdict"]
    body = [[r.entry.name, r.entry.title, r.expected, r.got, r.verdict] for r in rows]
    if markdown:
        def cell(text):
            return str(text).replace("|", "\\|")

        lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        lines += ["| " + " | ".join(cell(c) for c in row) + " |" for row in body]
        return "\n".join(lines)
    width = width or shutil.get_terminal_size((120, 24)).columns
    gap = 2
    natural = [max(len(str(row[i])) for row in [header] + body) for i in range(len(header))]
    # The submission's name takes up to a third of the width, "expected" and "got" up to a quarter of what is left
    # each, the title the rest (16 columns at least each: the table fits any terminal of 90 columns or more).
    widths = {4: natural[4], 0: min(natural[0], max(20, width // 3))}
    room = width - widths[0] - widths[4] - gap * (len(header) - 1)
    widths[2], widths[3] = (min(natural[i], max(16, room // 4)) for i in (2, 3))
    widths[1] = min(natural[1], max(16, room - widths[2] - widths[3]))
    excess = sum(widths.values()) + gap * (len(header) - 1) - width
    if excess > 0:  # a narrow terminal: the submission's name wraps sooner
        widths[0] = max(12, widths[0] - excess)
    lines = []
    for row in [header] + body:
        cells = [textwrap.wrap(str(c), widths[i], break_on_hyphens=False) or [""] for i, c in enumerate(row)]
        for k in range(max(len(c) for c in cells)):
            parts = [(c[k] if k < len(c) else "").ljust(widths[i]) for i, c in enumerate(cells)]
            lines.append((" " * gap).join(parts).rstrip())
    return "\n".join(lines)


def agreement_table(rows: list[Row], markdown: bool = False) -> str:
    """Each correct and faulty entry: the public checks' verdict, the grader's score, the likely causes, and whether
    the two agree (rows that went through :func:`audit` with ``public``)."""
    header = ["submission", "public checks", "grader", "likely cause", "agree"]
    body = []
    for row in rows:
        if row.public is None:
            continue
        report = row.public
        verdict = (f"pass {report.total} of {report.total}" if report.all_passed
                   else f"fail {len(report.failed)} of {report.total}: {', '.join(report.failed)}")
        causes = sorted(likely_causes((r.hint for r in report.results if not r.passed), numbers=True))
        body.append([row.entry.name, verdict, row.got, "; ".join(causes) or "-", "yes" if not agreement(row) else "NO"])
    if markdown:
        lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        lines += ["| " + " | ".join(str(c).replace("|", "\\|") for c in row) + " |" for row in body]
        return "\n".join(lines)
    return "\n".join("\t".join(row) for row in [header] + body)


def main(argv: list[str] | None = None) -> int:
    parser = cli.parser("audit")
    cli.lab_option(parser, "; hostile entries go with their lab")
    parser.add_argument("--kind", choices=KINDS + ("all",), default="all", help="correct, faulty, hostile or all (default)")
    parser.add_argument("--markdown", action="store_true", help="print the table in Markdown")
    parser.add_argument("--json", action="store_true", help="print the rows as JSON")
    cli.jobs_option(parser, 2)
    parser.add_argument("--keep", type=Path, help="keep the class folders and results in this folder")
    parser.add_argument("--public", action="store_true",
                        help="also run the labs' public checks on the correct and faulty entries and compare with the grader")
    cli.isolation_option(parser)  # without bubblewrap, the entries that need the sandbox are reported as not run
    args = parser.parse_args(argv)
    labs = cli.labs_from(parser, args)
    entries = load(labs=labs, kinds=KINDS if args.kind == "all" else (args.kind,))
    if args.keep:
        args.keep.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    with planted_secrets(), Grader(sorted({e.lab for e in entries}), AUDIT_LIMITS, args.isolation) as grader:
        rows = audit(entries, grader, args.keep, args.jobs, public=args.public)
        protections = grader.protections
    if args.json:
        print(json.dumps({"rows": [r.to_dict() for r in rows], "counts": counts(rows),
                          "sandbox": protections.to_dict()}, indent=1))
    else:
        print(table(rows, args.markdown))
        print()
        for row in rows:
            if row.ok is False:
                print(f"WRONG {row.entry.name}: " + "; ".join(row.problems))
        print(summary(rows))
        if args.public:
            print()
            print(agreement_table(rows, args.markdown))
            disagreements = [row for row in rows if row.public is not None and agreement(row)]
            for row in disagreements:
                print(f"DISAGREE {row.entry.name}: " + "; ".join(agreement(row)))
            print(f"public checks agree with the grader on {sum(r.public is not None for r in rows) - len(disagreements)} "
                  f"of {sum(r.public is not None for r in rows)} correct and faulty entries")
        print(f"isolation: {protections.isolation}; protections off: {', '.join(p.split(':')[0] for p in protections.off()) or 'none'}"
              f"; {time.monotonic() - started:.0f} s")
    agree = not args.public or not any(row.public is not None and agreement(row) for row in rows)
    return 0 if all(r.ok is not False for r in rows) and agree else 1
