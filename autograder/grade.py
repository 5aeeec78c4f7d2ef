"""``grade``: grade one submission or a class folder, for one lab or all, and write the results.

Python API: :class:`Grader` (a sandbox and the specs of some labs, reused for every
submission), :func:`grade_folder` (a class, in parallel, resumable) and
:func:`find_students`. Command line (:func:`main`)::

    python -m autograder grade submissions/ --lab all --out results/ --jobs 2
    python -m autograder grade alice.ipynb --lab lab1
    python -m autograder grade /autograder/submission --lab all --gradescope /autograder/results/results.json

A class folder holds one file per student (``alice.ipynb``, ``bob.py``: the student is the
file's name) or one folder per student (``alice/lab1_attention.ipynb``...); for each lab, a
student's file is the one that defines most of that lab's functions. A folder of files in which
no two files hold the same lab (``alice/lab1_attention.ipynb``, ``alice/lab2_pooling.ipynb``) is
one student's folder instead, named after the folder (:func:`folder_layout`; ``--layout`` says
which it is when the guess would be wrong, and the run always says which it assumed). With
``--gradescope`` the path is a single student's submission and one results.json is written.
"""

from __future__ import annotations

import argparse
import gc
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from autograder import cli, resume, results, specs, timeline
from autograder.extract import SUFFIXES, Submission, SubmissionError, load_submission
from autograder.isolation import IsolationError, Protections
from autograder.roster import Roster, RosterError, read_roster
from autograder.sandbox import Limits, Sandbox
from autograder.seeding import Seeding, fingerprint, seeding_for
from autograder.results import LabRecord, StudentRecord, TestResult
from autograder.spec import HIDDEN, VISIBLE, collect, run_test
from autograder.worker import COMMON_IMPORTS, return_free_memory


class Interrupted(Exception):
    """The run is stopping: a lab in progress is not recorded (it is graded again next time)."""


@dataclass
class FolderSummary:
    """What a class run did: students, labs graded now and skipped (already graded), times, the layout assumed."""

    students: int
    graded: int
    skipped: int
    layout: str  # "student" or "class"
    layout_reason: str
    startup_seconds: float = 0.0
    seconds: float = 0.0
    restored: list[str] = field(default_factory=list)  # result files put back after something else changed them
    reasons: dict[str, int] = field(default_factory=dict)  # why labs are graded (again): reason -> how many
    not_in_roster: list[str] = field(default_factory=list)  # students with files but no row in the roster

    def why(self) -> str:
        """Why the labs graded now were graded, e.g. "4 for the first time, 2 because the course secret changed"."""
        parts = [f"{count} {reason}" if reason == resume.NEW else f"{count} because {reason}"
                 for reason, count in sorted(self.reasons.items(), key=lambda item: -item[1])]
        return ", ".join(parts)


@dataclass(frozen=True)
class Layout:
    """What a folder given to ``grade`` is: one student's ("student") or a class's ("class"), and why."""

    kind: str
    reason: str


def folder_layout(path: Path, functions: dict[str, set[str]]) -> Layout:
    """Whether ``path`` is one student's folder or a class folder, from what its files define.

    ``functions`` maps each lab to the functions it asks for. A folder with sub-folders of
    submissions is a class (a folder per student); a folder of two or more files in which no two
    files define functions of the same lab is one student's (a notebook per lab); anything else
    is a class of one file per student.
    """
    path = Path(path)
    if path.is_file():
        return Layout("student", f"{path.name} is a file")
    entries = [e for e in sorted(path.iterdir()) if not e.name.startswith(".")]
    if any(e.is_dir() and student_files(e) for e in entries):
        return Layout("class", f"{path} holds a folder per student")
    files = [e for e in entries if e.is_file() and e.suffix in SUFFIXES]
    labs_of = {}
    for file in files:
        try:
            defined = set(load_submission(file).functions)
        except SubmissionError:
            defined = set()
        labs_of[file.name] = {lab for lab, wanted in functions.items() if defined & wanted}
    shared = [lab for lab in functions if sum(lab in labs for labs in labs_of.values()) > 1]
    if len(files) >= 2 and not shared:
        return Layout("student", f"its {len(files)} files each hold a different lab")
    if shared:
        return Layout("class", f"{', '.join(shared)} is defined in more than one of its files")
    return Layout("class", "it holds one file")


def find_students(path: Path, layout: str = "class") -> dict[str, list[Path]]:
    """Students and their files: a file is one student; a class folder holds a file or a folder per student; a
    student's folder (``layout="student"``) is one student named after the folder."""
    path = Path(path)
    if path.is_file():
        return {path.stem: [path]}
    if not path.is_dir():
        raise FileNotFoundError(f"{path} does not exist: give a submission file or a folder of submissions.")
    if layout == "student":
        return {path.resolve().name: student_files(path)}
    students: dict[str, list[Path]] = {}
    for entry in sorted(path.iterdir()):
        if entry.name.startswith("."):
            continue
        if entry.is_file() and entry.suffix in SUFFIXES:
            students.setdefault(entry.stem, []).append(entry)
        elif entry.is_dir():
            files = student_files(entry)
            if files:
                students[entry.name] = files
    return students


def student_files(folder: Path) -> list[Path]:
    """The notebooks and Python files anywhere in one student's folder (hidden ones and checkpoints left out)."""
    return sorted(f for f in Path(folder).rglob("*") if f.is_file() and f.suffix in SUFFIXES
                  and not any(part.startswith(".") for part in f.relative_to(folder).parts))


class Grader:
    """A sandbox and the specs of some labs, reused for every submission. Use as a context manager.

    Starting it starts the worker (imports and models, in the background) while the grader
    computes every expected value, so that no submission pays for either.
    """

    def __init__(self, labs: list[str] | str = "all", limits: Limits = Limits(), isolation: str = "auto",
                 secret: str | None = None, seed: int | None = None, files: list[Path] | None = None):
        self.labs = specs.select(labs) if isinstance(labs, str) else list(labs)
        self.limits = limits
        self.secret = secret  # the course secret: hidden inputs are drawn from it and each student's id
        self.seed = seed  # one seed for every submission instead (a regrade of one student with a recorded seed)
        self.modules = {lab: specs.load(lab) for lab in self.labs}
        self.tests = {lab: collect(module) for lab, module in self.modules.items()}
        preload = merge_preloads(role for module in self.modules.values() for role in module.LAB.preload)
        likely = set(COMMON_IMPORTS) | {name for module in self.modules.values() for name in module.LAB.imports}
        # ``files``: the only submission this grader grades (Gradescope): the worker imports only what it imports.
        imports = likely if files is None else imports_among(likely, files)
        imports |= {f"book.labs.{lab}" for lab in self.labs}  # the references a checked function's callees run as
        self.sandbox = Sandbox(preload, limits, imports, isolation)
        self._truths: threading.Thread | None = None
        self._truths_failed: list[BaseException] = []
        self.stopping = threading.Event()
        self.started = False
        self.startup_seconds = 0.0

    def __enter__(self) -> "Grader":
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def start(self) -> None:
        """Start the worker, and compute the expected values of the labs' public cases meanwhile (once; later calls do nothing).

        Returns once the worker is ready: the expected values go on being computed in the background
        while the first submission is graded, a test waiting only for the values it needs (each is
        computed once, :func:`book.labs.cached`). If computing them fails, the lab in progress is not
        recorded (:meth:`grade_lab` raises): a problem of the grader never becomes a student's failure.
        """
        if self.started:
            return
        started = time.monotonic()
        quiet_libraries()
        from book.models import resolve

        for role in self.sandbox.preload:  # a first use converts SmolLM2 once: not twice at the same time
            resolve(role.partition(":")[0])
        failure = []
        worker = threading.Thread(target=lambda: _capture(self.sandbox.start, failure), daemon=True)
        worker.start()
        self._truths = threading.Thread(target=lambda: _capture(self._prepare, self._truths_failed), daemon=True)
        self._truths.start()
        worker.join()
        timeline.mark("sandbox ready")
        if failure:
            raise failure[0]
        self.started = True
        self.startup_seconds = time.monotonic() - started
        if self.protections.warning():
            print(self.protections.warning(), file=sys.stderr)

    def _prepare(self) -> None:
        timeline.mark("truths started")
        try:
            for lab, module in self.modules.items():
                if self.stopping.is_set():  # closed before every lab's values were needed: the rest are not
                    break
                module.prepare(self.tests[lab])
        finally:
            # The command starts with the garbage collector off (autograder.cli): the start-up's objects (torch,
            # transformers, the models) are frozen out of its sight, and it runs again for the grading.
            if not gc.isenabled():
                gc.freeze()
                gc.enable()
            return_free_memory()  # what loading the truths' tokenizers and files freed (tens of MB)
        timeline.mark("truths ready")

    def truths_ready(self) -> None:
        """Wait until the expected values of the public cases are computed; raise what stopped them, if anything."""
        if self._truths is not None:
            self._truths.join()
        if self._truths_failed:
            raise self._truths_failed[0]

    @property
    def protections(self) -> Protections:
        """What walls off the submissions in this run (known once the grader has started)."""
        if self.sandbox.protections is None:
            raise RuntimeError("The grader has not started: use it inside `with Grader(...)` or call start().")
        return self.sandbox.protections

    def close(self) -> None:
        """Stop the worker, and wait for the expected values still being computed (the lab in progress at most).

        The values are computed by torch in a daemon thread: a process that exits while that thread is
        inside torch aborts at interpreter shutdown ("terminate called without an active exception",
        pytorch/pytorch#38228), so the thread must be done before :meth:`close` returns.
        """
        self.stopping.set()
        self.sandbox.close()
        if self._truths is not None:
            self._truths.join()

    def max_score(self, lab: str) -> float:
        return float(sum(test.points for test in self.tests[lab]))

    def _not_graded(self, lab: str, reason: str) -> list[TestResult]:
        return [TestResult(t.name, 0.0, float(t.points), "failed", f"{t.message}\nNot graded: {reason}",
                           HIDDEN if t.hidden else VISIBLE) for t in self.tests[lab]]

    def seeding(self, student: str | None) -> Seeding:
        """How the hidden inputs of ``student`` are drawn (their seed, and what it comes from)."""
        return seeding_for(student, self.secret, self.seed)

    def decided_by(self, lab: str, sha256: str | None, student: str | None) -> dict:
        """What decides ``lab``'s result for a file with ``sha256`` graded for ``student`` (:mod:`autograder.resume`)."""
        return resume.decided_by(lab, sha256, self.seeding(student).seed, fingerprint(self.secret))

    def grade_lab(self, lab: str, submission: Submission | Path | str | None, limits: Limits | None = None,
                  student: str | None = None, choice: "Choice | None" = None) -> LabRecord:
        """Grade one lab of one submission (a path, an extracted :class:`Submission`, or None when missing).

        ``limits`` replaces the grader's limits for this submission. The hidden tests draw their
        inputs from ``student``'s seed (:mod:`autograder.seeding`), which the record keeps, with
        what decided the result (:mod:`autograder.resume`). ``choice`` says how the file was chosen.
        """
        module = self.modules[lab]
        started = time.monotonic()
        seeding = self.seeding(student)
        record = LabRecord(module.LAB.title, max_score=self.max_score(lab), hidden_inputs=seeding.to_dict(),
                           graded_at=datetime.now(timezone.utc).isoformat(timespec="seconds"),
                           sandbox=self.protections.to_dict() if self.sandbox.protections else None)
        if choice is not None:
            record.file_name, record.candidates = choice.name, list(choice.candidates)
        if submission is not None and not isinstance(submission, Submission):
            record.file, record.sha256 = str(submission), _sha256(submission)
            record.decided_by = self.decided_by(lab, record.sha256, student)
            try:
                submission = load_submission(submission)
            except SubmissionError as error:
                record.error, record.tests = str(error), self._not_graded(lab, str(error))
                return record
        if submission is None:
            reason = (f"no file of this submission defines any of {', '.join(module.LAB.functions)}: submit the lab's "
                      "notebook with these functions, their names unchanged.")
            record.error, record.tests = reason, self._not_graded(lab, reason)
            record.decided_by = self.decided_by(lab, None, student)
            return record
        record.file, record.sha256, record.notes = submission.path, submission.sha256, list(submission.notes)
        record.file_name = record.file_name or Path(submission.path).name
        record.decided_by = self.decided_by(lab, submission.sha256, student)
        with self.sandbox.session(submission, limits, module.LAB.truth) as session:
            for test in self.tests[lab]:
                if self.stopping.is_set():
                    raise Interrupted()
                record.tests.append(run_test(test, session, seeding.seed))
            record.notes += session.notes
        record.output = session.output()
        self.truths_ready()  # a test that failed because an expected value could not be computed is not recorded
        record.score = round(sum(t.score for t in record.tests), 4)
        record.seconds = round(time.monotonic() - started, 3)
        return record

    def pick(self, files: list[Path], lab: str) -> "Choice":
        """The student's file for ``lab`` among ``files``, by the stated rule (:data:`results.CHOICE_RULE`), and the others.

        The most complete file wins: the one that implements most of the lab's functions (defines them with
        a body that is not a stub raising NotImplementedError), then the one that defines most of them; then
        the newest (modified last); then one whose name holds the lab's; then the first by name. No file wins
        when none defines any of the functions; a lone file that cannot be read is returned as is, so that the
        student is told why.
        """
        wanted = set(self.modules[lab].LAB.functions)
        root = _common_folder(files)
        found = []
        for path in files:
            try:
                submission = load_submission(path)
            except SubmissionError:
                continue
            defined = wanted & set(submission.functions)
            if defined:
                key = (len(implemented(submission, wanted)), len(defined), _mtime(path), lab in Path(path).name)
                found.append((key, str(path), submission, path))
        found.sort(key=lambda item: item[1])
        names = [_shown(path, root) for *_, path in found]
        if found:
            best = max(found, key=lambda item: item[0])  # the first by name among equals
            return Choice(best[2], _shown(best[3], root), names)
        if len(files) == 1:
            try:
                load_submission(files[0])
            except SubmissionError:
                return Choice(files[0], _shown(files[0], root), [])
        return Choice(None, None, [])

    def choose(self, files: list[Path], lab: str) -> Submission | Path | None:
        """The student's file for ``lab`` (:meth:`pick`): an extracted submission, a lone unreadable path, or None."""
        return self.pick(files, lab).submission

    def pending(self, student: str, files: list[Path], out: Path, labs: list[str], force: bool = False,
                identity: str | None = None) -> dict[str, str]:
        """The labs of ``labs`` to grade for ``student``, each with why (:func:`autograder.resume.why_regrade`).

        A lab is left out when its recorded result in ``out`` was decided by the same file, hidden inputs
        (drawn for ``identity``, default the student), grader, spec and tolerances; ``force`` grades every lab.
        """
        record = results.read_student(out, student)
        reasons = {}
        for lab in labs:
            if force:
                reasons[lab] = "--force"
                continue
            recorded = record.labs.get(lab) if record is not None else None
            now = self.decided_by(lab, _sha256(self.choose(files, lab)), identity or student)
            why = resume.why_regrade(recorded.decided_by if recorded else None, now, graded=recorded is not None)
            if why:
                reasons[lab] = why
        return reasons

    def grade_student(self, student: str, files: list[Path], out: Path | None = None, labs: list[str] | None = None,
                      on_lab=None, guard: results.Guard | None = None, identity: str | None = None) -> StudentRecord:
        """Grade ``labs`` (default: the grader's) of one student; with ``out``, update their JSON after each lab.

        The hidden inputs are drawn for ``identity`` (default: ``student``; a roster maps a folder name to
        the id Gradescope uses). The student's labs already in ``out`` and not graded now are kept in the JSON.
        """
        record = (results.read_student(out, student) if out is not None else None) or StudentRecord(student)
        record.student = student
        for lab in labs or self.labs:
            choice = self.pick(files, lab)
            record.labs[lab] = self.grade_lab(lab, choice.submission, student=identity or student, choice=choice)
            if self.stopping.is_set():
                raise Interrupted()
            if out is not None:
                results.write_student(out, record, guard)
            if on_lab:
                on_lab(student, lab)
        return record


@dataclass(frozen=True)
class Choice:
    """The file chosen for a lab: the submission (or a lone unreadable path, or None), its name in the student's
    folder, and the names of every file that defines some of the lab's functions."""

    submission: Submission | Path | None
    name: str | None
    candidates: list[str]


def imports_among(modules: set[str], files: list[Path]) -> set[str]:
    """The modules of ``modules`` that the submission in ``files`` imports (``import book`` counts for ``book.labs``)."""
    import ast

    imported = set()
    for path in files:
        try:
            chunks = load_submission(path).chunks
        except SubmissionError:
            continue
        for chunk in chunks:
            if chunk.kind != "import":
                continue
            try:
                tree = ast.parse(chunk.source)
            except (SyntaxError, ValueError, RecursionError, MemoryError):
                continue
            for node in ast.walk(tree):
                if isinstance(node, ast.Import):
                    imported |= {alias.name for alias in node.names}
                elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                    imported |= {node.module} | {f"{node.module}.{alias.name}" for alias in node.names}
    return {m for m in modules for name in imported
            if m == name or m.startswith(name + ".") or name.startswith(m + ".")}


def implemented(submission: Submission, wanted: set[str]) -> set[str]:
    """The functions of ``wanted`` that ``submission`` defines with a real body: not only a docstring, ``pass``,
    ``...`` or ``raise NotImplementedError`` (a lab's stub)."""
    import ast

    found = set()
    for chunk in submission.chunks:
        if chunk.kind != "function" or not wanted & set(chunk.names):
            continue
        try:
            node = ast.parse(chunk.source).body[-1]
        except (SyntaxError, ValueError, IndexError, RecursionError, MemoryError):
            continue
        body = list(getattr(node, "body", []))
        if body and isinstance(body[0], ast.Expr) and isinstance(getattr(body[0], "value", None), ast.Constant):
            body = body[1:]  # the docstring
        stub = all(isinstance(statement, ast.Pass) or (isinstance(statement, ast.Expr) and isinstance(
            statement.value, ast.Constant)) or _raises_not_implemented(statement) for statement in body)
        if stub:
            found -= set(chunk.names)  # a later stub replaces an earlier definition
        else:
            found |= wanted & set(chunk.names)
    return found


def _raises_not_implemented(statement) -> bool:
    import ast

    if not isinstance(statement, ast.Raise) or statement.exc is None:
        return False
    raised = statement.exc.func if isinstance(statement.exc, ast.Call) else statement.exc
    return isinstance(raised, ast.Name) and raised.id == "NotImplementedError"


def _mtime(path: Path) -> float:
    try:
        return Path(path).stat().st_mtime
    except OSError:
        return 0.0


def _common_folder(files: list[Path]) -> Path | None:
    import os

    try:
        return Path(os.path.commonpath([str(Path(f).resolve().parent) for f in files])) if files else None
    except ValueError:
        return None


def _shown(path: Path, root: Path | None) -> str:
    """``path`` as the student knows it: relative to their folder (never the grader's own paths)."""
    try:
        return Path(path).resolve().relative_to(root).as_posix() if root else Path(path).name
    except ValueError:
        return Path(path).name


def quiet_libraries() -> None:
    """No progress bars or notes from the libraries in the grader's output (loading weights, resizing embeddings)."""
    import os

    # Read when the libraries are imported: this does not import them (seconds) before they are needed.
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    if "transformers" in sys.modules:
        from transformers.utils import logging as transformers_logging

        transformers_logging.set_verbosity_error()
        transformers_logging.disable_progress_bar()
    if "huggingface_hub" in sys.modules:
        from huggingface_hub.utils import disable_progress_bars

        disable_progress_bars()


def merge_preloads(names) -> set[str]:
    """The models the worker loads for several labs: a role's full model replaces its vocabulary-only one."""
    names = set(names)
    return {n for n in names if not (n.endswith(":vocabulary") and n.partition(":")[0] in names)}


def gradescope_student(metadata: Path) -> str | None:
    """The student a Gradescope submission belongs to (the first submitter's email, else their id), or None.

    ``submission_metadata.json`` lists the submitters under ``users``; a group submission is
    graded with the first one's hidden inputs.
    """
    import json

    try:
        users = json.loads(Path(metadata).read_text(encoding="utf-8")).get("users") or []
    except (OSError, ValueError, AttributeError):
        return None
    first = users[0] if users and isinstance(users[0], dict) else {}
    identifier = first.get("email") or first.get("id")
    return str(identifier) if identifier else None


def _sha256(chosen) -> str | None:
    if chosen is None:
        return None
    if isinstance(chosen, Submission):
        return chosen.sha256
    import hashlib

    digest = hashlib.sha256()
    try:
        with open(chosen, "rb") as handle:  # in pieces: a submission may be huge
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
    except OSError:
        return None
    return digest.hexdigest()


def _capture(function, failures: list) -> None:
    try:
        function()
    except BaseException as error:  # noqa: BLE001 - handed to the main thread
        failures.append(error)


def grade_folder(path: Path, out: Path, labs: str | list[str] = "all", jobs: int = 1, force: bool = False,
                 limits: Limits = Limits(), progress: bool = True, grader: Grader | None = None,
                 isolation: str = "auto", secret: str | None = None, seed: int | None = None,
                 layout: str = "auto", roster: Roster | None = None) -> FolderSummary:
    """Grade every student under ``path`` into ``out`` (JSON per student, Gradescope files, gradebook.csv).

    Runs ``jobs`` students side by side; a lab already graded for a student is skipped unless what
    decides its result changed (:mod:`autograder.resume`) or ``force``. ``layout`` is "student",
    "class" or "auto" (:func:`folder_layout`). With a ``roster`` (:mod:`autograder.roster`), hidden
    inputs are drawn for each student's roster id (their email, as on Gradescope) and the gradebook
    lists every student of the roster. Returns a summary: students, labs graded and skipped and why,
    seconds, and the layout assumed.
    """
    from collections import Counter

    from tqdm import tqdm

    own = grader is None
    grader = grader or Grader(labs, limits, isolation, secret, seed)
    if layout == "auto":
        assumed = folder_layout(path, {lab: set(module.LAB.functions) for lab, module in grader.modules.items()})
    else:
        assumed = Layout(layout, "--layout said so")
    students = find_students(path, assumed.kind)
    labs = specs.select(labs) if isinstance(labs, str) else list(labs)
    if set(labs) - set(grader.labs):
        raise ValueError(f"The grader was started for {', '.join(grader.labs)}, not {', '.join(labs)}: "
                         "start one for every lab you grade.")
    out = Path(out)
    identities = {student: roster.identity(student) if roster else student for student in students}
    plan = {student: grader.pending(student, files, out, labs, force, identities[student])
            for student, files in students.items()}
    todo = sum(len(p) for p in plan.values())
    summary = FolderSummary(len(students), 0, len(students) * len(labs) - todo, assumed.kind, assumed.reason)
    summary.reasons = dict(Counter(reason for reasons in plan.values() for reason in reasons.values()))
    summary.not_in_roster = sorted(s for s in students if roster is not None and s not in roster)
    if todo and own:
        grader.start()  # only when there is something to grade: a finished run resumes in a second
    summary.startup_seconds = round(grader.startup_seconds, 3)
    bar = tqdm(total=todo, unit="lab", desc="grading", disable=not progress, file=sys.stderr)
    lock = threading.Lock()

    def done(student, lab):
        with lock:
            summary.graded += 1
            bar.update(1)

    guard = results.Guard(out)
    started = time.monotonic()
    try:
        with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
            futures = [pool.submit(grader.grade_student, student, students[student], out, list(plan[student]), done,
                                   guard, identities[student])
                       for student in plan if plan[student]]
            try:
                for future in as_completed(futures):
                    future.result()
            except BaseException:
                grader.stopping.set()  # labs in progress are not recorded
                for future in futures:
                    future.cancel()
                if own:
                    grader.sandbox.close()  # ends the calls in flight at once
                raise
        summary.seconds = round(time.monotonic() - started, 3)
    finally:
        bar.close()
        if own:
            grader.close()
        summary.restored = guard.restore()
        if summary.restored:
            print(f"Restored result files changed during the run by something other than the grader: "
                  f"{', '.join(summary.restored)}.", file=sys.stderr)
        if (out / results.STUDENTS).is_dir():
            from autograder import gradebook

            gradebook.write(out, roster=roster)
    return summary


def main(argv: list[str] | None = None) -> int:
    timeline.mark("grader imported")
    parser = cli.parser("grade")
    parser.add_argument("path", type=Path, help="a submission (.ipynb or .py), a student's folder, or a folder of them")
    cli.lab_option(parser)
    parser.add_argument("--out", type=Path, default=Path("results"), help="output folder (default: results)")
    cli.jobs_option(parser, 1, "students")
    parser.add_argument("--force", action="store_true", help="grade again the labs already in the output folder")
    parser.add_argument("--gradescope", type=Path, help="PATH is one student's submission: write Gradescope's results.json here")
    cli.limits_options(parser)
    cli.isolation_option(parser)
    cli.secret_option(parser)
    parser.add_argument("--seed", type=int, help="draw every submission's hidden inputs from this seed (to regrade a "
                                                 "student exactly as before: the seed is in their results)")
    parser.add_argument("--metadata", type=Path, help="with --gradescope: Gradescope's submission_metadata.json, whose "
                                                      "student (their email) the hidden inputs are drawn for")
    parser.add_argument("--layout", choices=("auto", "student", "class"), default="auto",
                        help="PATH is one student's folder (a notebook per lab), a class folder (a file or a folder per "
                             "student), or auto (the default: told apart by what the files define; the run says which)")
    parser.add_argument("--roster", type=Path, help="the class roster (CSV with a student column; email, name, lms_id... "
                                                    "kept): hidden inputs are drawn for each student's email, as on "
                                                    "Gradescope, and the gradebook lists every student of the roster")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    parser.add_argument("--timings", type=Path, help="write where this run's time went to this file (JSON: moments in "
                                                      "seconds since the process started, the grader's and the worker's)")
    args = parser.parse_args(argv)
    try:
        return _main(parser, args)
    finally:
        if args.timings:
            timeline.write(args.timings)


def _main(parser: argparse.ArgumentParser, args) -> int:
    # A course secret is created on a class's first run; never inside a Gradescope container (each would draw its own),
    # nor for a regrade on a recorded --seed, which does not need one.
    secret = cli.secret_from(parser, args, create=not args.gradescope and args.seed is None)
    if secret is None and args.seed is None:
        print("Note: no course secret (--secret-file): hidden inputs are drawn from each student's id alone, which "
              "anyone with the course's code can repeat.", file=sys.stderr)
    limits = cli.limits_from(args)
    labs = cli.labs_from(parser, args)
    if not args.path.exists():
        parser.error(f"{args.path} does not exist: give a submission file or a folder of submissions.")
    try:
        roster = read_roster(args.roster) if args.roster else None
    except RosterError as error:
        parser.error(str(error))

    if args.gradescope:
        import json

        try:
            student = gradescope_student(args.metadata) if args.metadata else None
            files = [args.path] if args.path.is_file() else student_files(args.path)
            with Grader(labs, limits, args.isolation, secret, args.seed, files=files) as grader:
                record = grader.grade_student(student or (args.path.stem if args.path.is_file() else "submission"), files)
                timeline.mark("graded")
        except IsolationError as error:
            print(error, file=sys.stderr)
            return 2
        timeline.mark("sandbox closed")
        results.atomic_write(args.gradescope, json.dumps(results.gradescope(record), indent=1) + "\n")
        timeline.mark("results written")
        print(f"{record.score:g} / {record.max_score:g} points; wrote {args.gradescope}")
        return 0

    try:
        summary = grade_folder(args.path, args.out, labs, args.jobs, args.force, limits, progress=not args.quiet,
                               isolation=args.isolation, secret=secret, seed=args.seed, layout=args.layout, roster=roster)
    except IsolationError as error:
        print(error, file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"Interrupted: the labs graded so far are in {args.out / results.STUDENTS}; run the same command "
              "again to grade the rest.", file=sys.stderr)
        return 130
    if args.path.is_dir():
        other = "class" if summary.layout == "student" else "student"
        print(f"Graded {args.path} as {'one student' if summary.layout == 'student' else 'a class'}'s folder "
              f"({summary.layout_reason}); --layout {other} says otherwise.")
    if summary.not_in_roster:
        print(f"Not in the roster (their hidden inputs are drawn for their folder name): "
              f"{', '.join(summary.not_in_roster)}.", file=sys.stderr)
    if summary.graded:
        print(f"{summary.students} students: {summary.graded} labs graded ({summary.why()}) in {summary.seconds:.1f} s "
              f"after a {summary.startup_seconds:.1f} s start; {summary.skipped} unchanged since they were graded.")
    else:
        print(f"{summary.students} students: nothing to grade, all {summary.skipped} labs are unchanged since they were "
              "graded: same files, course secret, grader, tests and tolerances (--force grades them again).")
    print(f"Results in {args.out}/: gradebook.csv, students/<student>.json, gradescope/<student>.json "
          f"(llm-grade feedback {args.out} writes each student's report).")
    return 0
