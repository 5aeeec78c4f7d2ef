"""One submission in the sandbox: its code loaded into a child of the zygote, its functions called, failures explained.

A :class:`Session` serves one submission for one lab. ``session.student`` is what a rule's check
calls (:mod:`book.labs.calls`): ``student.f(*args)`` runs the submission's ``f`` in a child and
returns plain data; a function that calls another function of the lab runs with the lab's
reference for it. A call that does not return becomes a :class:`StudentFailure`, whose text is the
feedback: what :class:`~autograder.wire.ErrorKind` the worker reported, said in a sentence.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import signal
import socket
import tempfile
import time
from dataclasses import asdict
from pathlib import Path

from autograder import wire
from autograder.extract import Submission
from autograder.sandbox import GRACE_SECONDS, Limits, Sandbox
from autograder.wire import ErrorKind
from book.labs.calls import Reply


class StudentFailure(Exception):
    """A call of a student function that did not return: the text is the feedback shown to the student."""

    def __init__(self, kind: ErrorKind, feedback: str):
        super().__init__(feedback)
        self.kind = ErrorKind(kind)
        self.feedback = feedback


class Session:
    """One submission for one lab: a child that has loaded the code, restarted after a crash.

    ``session.call("f", *args)`` returns a :class:`Reply` or raises :class:`StudentFailure`;
    ``session.student.f(*args)`` is the same, returning just the result. Identical calls are
    answered from a memo, so tests that look at different aspects of one call run it once.
    """

    def __init__(self, sandbox: Sandbox, submission: Submission, limits: Limits | None = None, lab=None):
        self.sandbox = sandbox
        self.lab = lab  # the book.labs.Lab whose references stand in for the functions a function calls
        self.limits = limits or sandbox.limits
        self.submission = submission
        self.workdir = tempfile.mkdtemp(prefix="llm-grade-", dir=sandbox.workroot)
        self.notes: list[str] = []
        self.skipped: dict[str, str] = {}  # name -> why its statement was skipped at load
        self.defined: list[str] = []
        self.spent = 0.0  # seconds of student code so far (loads and calls)
        self._child: tuple[int, socket.socket] | None = None
        self._skip: set[int] = set()  # statements that failed on the first load
        self._first_load = True
        self._memo: dict[str, object] = {}
        self._timed_out: dict[str, str] = {}  # function -> why it is not called again
        self._output: str | None = None
        self._broken: StudentFailure | None = None  # loading the code failed beyond a note
        self.student = Student(self)

    def __enter__(self) -> "Session":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- children ------------------------------------------------------------------------------

    def _start_child(self) -> tuple[int, socket.socket]:
        pid, sock = self.sandbox.fork(self.workdir, self.limits)
        chunks = [asdict(c) for i, c in enumerate(self.submission.chunks) if i not in self._skip]
        message = {"op": "load", "chunks": chunks, "sources": self.submission.sources,
                   "seconds": self.limits.load_seconds}
        budget = min(self.limits.load_seconds * max(1, len(chunks)), max(1.0, self.limits.submission_seconds - self.spent))
        try:
            reply, _ = self._exchange(pid, sock, wire.pack(message), budget + GRACE_SECONDS, "loading your code")
        except StudentFailure as failure:
            self._broken = failure  # every later call would fail the same way: do not try again
            raise
        if self._first_load:
            for note in reply["notes"]:
                chunk = self.submission.chunks[note["chunk"]]
                first = chunk.source.strip().splitlines()[0][:60]
                why = _one_line(note, self.limits)
                self.notes.append(f"{chunk.filename}, line {chunk.line}: `{first}` was skipped: {why}")
                for name in chunk.names:
                    self.skipped.setdefault(name, f"{chunk.filename}, line {chunk.line}, was skipped while loading your "
                                                  f"code ({why})")
            self._skip = set(reply["failed"])  # indices into all the chunks: the first load sends every one
            self.defined = reply["defined"]
            self._first_load = False
        return pid, sock

    def _kill(self, child) -> None:
        pid, sock = child
        self.sandbox.kill(pid)  # the group: the child and whatever it started
        sock.close()

    def close(self) -> None:
        """Stop the child and remove the working folder (its captured output is read first)."""
        if self._child is not None:
            pid, sock = self._child
            try:
                sock.sendall(wire.pack({"op": "exit"}))
            except OSError:
                pass
            self._kill(self._child)
            self._child = None
        self._output = self._read_output()
        shutil.rmtree(self.workdir, ignore_errors=True)

    def _read_output(self) -> str:
        path = Path(self.workdir, "output.txt")
        if not path.is_file():
            return ""
        with open(path, "rb") as handle:
            handle.seek(0, os.SEEK_END)
            size = handle.tell()
            handle.seek(max(0, size - self.limits.output_chars * 4))
            text = handle.read().decode("utf-8", errors="replace")
        return text[-self.limits.output_chars:]

    def output(self) -> str:
        """The tail of what the submission printed (stdout and stderr together)."""
        return self._output if self._output is not None else self._read_output()

    # -- one exchange --------------------------------------------------------------------------

    def _exchange(self, pid: int, sock: socket.socket, frame: bytes, deadline: float, doing: str):
        """Send a frame and wait at most ``deadline`` seconds for the reply; failures become StudentFailure."""
        started = time.monotonic()
        try:
            sock.settimeout(deadline)
            sock.sendall(frame)
            return wire.receive(sock, self.limits.reply_bytes)
        except socket.timeout:
            self._kill((pid, sock))
            raise StudentFailure(ErrorKind.TIMEOUT, f"Time limit reached: {doing} took longer than {deadline - GRACE_SECONDS:.3g} s "
                                 "and was stopped (an endless loop, or far too much work?).") from None
        except (EOFError, ConnectionError, BrokenPipeError):
            sock.close()
            raise StudentFailure(ErrorKind.CRASHED, self._why_it_ended(pid, doing)) from None
        except wire.WireError as error:
            self._kill((pid, sock))
            raise StudentFailure(ErrorKind.UNSENDABLE, f"The grader could not read the result of {doing}: {error}.") from None
        finally:
            self.spent += time.monotonic() - started

    def _why_it_ended(self, pid: int, doing: str) -> str:
        status = {"running": True}
        for _ in range(20):  # the zygote reaps its children every half second
            status = self.sandbox.status(pid)
            if not status.get("running"):
                break
            time.sleep(0.05)
        if status.get("gone"):
            return (f"The grading worker stopped while {doing} (killed from outside, or by code that ends its parent "
                    "process); the grader started it again. Do not signal or end other processes.")
        if "signal" in status:
            try:
                name = signal.Signals(status["signal"]).name
            except ValueError:
                name = str(status["signal"])
            hint = {"SIGXCPU": "it used up its CPU time", "SIGKILL": "it was killed, usually for using too much memory",
                    "SIGSEGV": "a segmentation fault"}.get(str(name), "")
            return f"The process running your code died while {doing} (signal {name}{': ' + hint if hint else ''})."
        if "exit" in status:
            return (f"The process running your code exited while {doing} (exit code {status['exit']}): "
                    "do not call os._exit() or end the process in a graded function.")
        return f"The process running your code stopped while {doing}."

    # -- calls ---------------------------------------------------------------------------------

    def call(self, function: str, *args, observe=(), fresh: bool = False, **kwargs) -> Reply:
        """Run ``function(*args, **kwargs)`` in the child; ``fresh`` runs it in a new child that is discarded after.

        ``observe`` lists what to look at in the (mutated) arguments after the call, see
        :func:`autograder.worker._observe`.
        """
        if self._broken is not None:
            raise self._broken
        if function in self._timed_out:
            raise StudentFailure(ErrorKind.TIMEOUT, self._timed_out[function])
        remaining = self.limits.submission_seconds - self.spent
        if remaining <= 0:
            raise StudentFailure(ErrorKind.TIMEOUT, f"Not run: this submission used up its {self.limits.submission_seconds:.0f} s "
                                 "for the lab on earlier tests.")
        seconds = min(self.limits.call_seconds, remaining)
        request = {"op": "call", "function": function, "observe": list(observe), "fresh": fresh}
        uses = self.lab.uses.get(function, ()) if self.lab is not None else ()
        if uses:  # the callees run as the lab's references (book.labs.<lab>.LAB.references)
            request["references"] = {"lab": self.lab.name, "names": list(uses)}
        message, blob = wire.prepare(request, {"args": list(args), "kwargs": kwargs})
        key = hashlib.sha256(wire.frame(message, blob)).hexdigest()  # the call, whatever time is left
        frame = wire.frame({**message, "seconds": seconds}, blob)
        if key in self._memo:
            memo = self._memo[key]
            if isinstance(memo, StudentFailure):
                raise memo
            return memo
        try:
            reply = self._call(function, frame, seconds, fresh)
        except StudentFailure as failure:
            if failure.kind is ErrorKind.TIMEOUT:
                self._timed_out[function] = (f"Not run: `{function}` reached the time limit in an earlier test, "
                                             "so the grader does not call it again.")
            self._memo[key] = failure
            raise
        self._memo[key] = reply
        return reply

    def _call(self, function: str, frame: bytes, seconds: float, fresh: bool) -> Reply:
        child = self._start_child() if fresh or self._child is None else self._child
        if not fresh:
            self._child = child
        doing = f"running `{function}`"
        try:
            message, value = self._exchange(*child, frame, seconds + GRACE_SECONDS, doing)
        except StudentFailure:
            if not fresh:
                self._child = None  # killed or dead: the next call starts a fresh child
            raise
        finally:
            if fresh:
                self._kill(child)
        if not message.get("ok"):
            kind = ErrorKind(message["error"].get("kind", ErrorKind.EXCEPTION))
            raise StudentFailure(kind, _feedback(function, kind, message["error"], self, seconds))
        return Reply(value["result"], value["observed"], message.get("seconds", 0.0))


class Student:
    """``student.f(*args)``: call the submission's ``f`` in the worker and return its result (see :mod:`book.labs.calls`)."""

    def __init__(self, session: Session):
        self._session = session

    def __getattr__(self, name: str):
        if name.startswith("_"):
            raise AttributeError(name)

        def call(*args, **kwargs):
            return self._session.call(name, *args, **kwargs).result

        call.__name__ = name
        return call

    def call(self, function: str, *args, **kwargs) -> Reply:
        """The full :class:`Reply` (with observations): ``student.call("f", x, observe=[...], fresh=True)``."""
        return self._session.call(function, *args, **kwargs)

    @staticmethod
    def preloaded(name: str) -> wire.Ref:
        """A model or tokenizer the worker loaded ("encoder_model"...), passed by reference."""
        return wire.Ref(name)

    @staticmethod
    def linear(weight, bias) -> wire.Linear:
        """An ``nn.Linear`` the worker builds from its weight and bias."""
        return wire.Linear(weight, bias)


def _one_line(error: dict, limits: Limits) -> str:
    kind = ErrorKind(error["kind"])
    if kind is ErrorKind.TIMEOUT:
        return f"it ran longer than {limits.load_seconds:.3g} s"
    if kind is ErrorKind.EXIT:
        return "it called sys.exit()"
    return error.get("traceback", ["an error"])[-1]


def _feedback(function: str, kind: ErrorKind, error: dict, session: Session, seconds: float) -> str:
    """The student-facing sentence for a call that raised, ran out of time or memory, or was missing."""
    return FEEDBACK[kind](function, error, session, seconds)


def _missing(function: str, error: dict, session: Session, seconds: float) -> str:
    if function in session.skipped:
        return f"`{function}` is not defined: its definition in {session.skipped[function]}."
    if function in session.submission.unparsed:
        return (f"`{function}` is not defined: it is in {session.submission.unparsed[function]}, so the grader "
                "skipped that cell. Fix the error and run the cell to check.")
    return (f"`{function}` is not defined in your submission: define it at the top level of a code cell "
            "(the grader runs only imports, functions, classes and constants).")


def _raised(function: str, error: dict, session: Session, seconds: float) -> str:
    trace = "\n".join(error.get("traceback", []))
    hint = ""
    if error.get("type") == "NameError":
        missing = re.search(r"name '(\w+)' is not defined", trace)
        if missing and missing.group(1) in session.skipped:
            hint = f"\nHint: `{missing.group(1)}` is not defined because its statement in {session.skipped[missing.group(1)]}."
        else:
            hint = ("\nHint: the grader runs only your imports, functions, classes and constants; a graded function "
                    "must not use variables created in other cells (pass them as arguments or define them inside).")
    if error.get("type") in ("ModuleNotFoundError", "ImportError") and "cannot be imported while grading" in trace:
        hint = "\nHint: the grader's packages (solutions, autograder) are not available to submissions."
    prefix = "Inspecting the arguments after " if ErrorKind(error.get("kind")) is ErrorKind.OBSERVE else ""
    return f"{prefix}`{function}` raised an exception:\n{trace}{hint}"


def _unsendable(function: str, error: dict, session: Session, seconds: float) -> str:
    return f"The grader could not send back what `{function}` returned: {error.get('detail')}."


# What a student reads for each way a call can fail (a test checks that every kind has its sentence).
FEEDBACK = {
    ErrorKind.MISSING: _missing,
    ErrorKind.NOT_IMPLEMENTED: lambda function, *_: f"Not implemented yet: `{function}` still raises NotImplementedError.",
    ErrorKind.TIMEOUT: lambda function, error, session, seconds: (
        f"Time limit reached: `{function}` ran longer than {seconds:.3g} s (an endless loop?)."),
    ErrorKind.EXIT: lambda function, error, *_: (
        f"`{function}` called sys.exit({error.get('code')}): return a value instead of ending the program."),
    ErrorKind.MEMORY: lambda function, error, session, seconds: (
        f"Memory limit reached: `{function}` tried to allocate more than the {session.limits.memory_bytes / 2**30:.1f} GiB "
        "a submission may use.\n" + "\n".join(error.get("traceback", []))),
    ErrorKind.UNSENDABLE: _unsendable,
    ErrorKind.PROTOCOL: _unsendable,
    ErrorKind.EXCEPTION: _raised,
    ErrorKind.OBSERVE: _raised,
    ErrorKind.CRASHED: lambda function, *_: f"The process running `{function}` stopped before it returned.",
}
