"""The grader's side of the sandbox: the zygote's lifecycle (start, fork a child, restart, stop).

One submission's use of the sandbox (loading its code into a child, calling its functions, the
feedback when a call fails) is :mod:`autograder.session`.

Why this design
---------------
Student code must never run in the process that decides the grade, and importing torch and
transformers and loading the two models takes several seconds, far more than grading a
submission should. So the grader starts **one zygote** (:mod:`autograder.worker`) that pays
for the imports and the models once, and **forks a child per submission** from it:

* *speed*: a fork shares the zygote's memory copy-on-write, so a child is ready in tens of
  milliseconds with the libraries imported and the models loaded and warmed;
* *isolation between students*: each submission gets a pristine copy of everything; whatever
  one submission monkeypatches, mutates or leaks dies with its child;
* *isolation from the grader*: on Linux the zygote runs inside bubblewrap
  (:mod:`autograder.isolation`): a read-only view of only what it needs, no network, its own
  PID namespace. Each child runs as a user of its own, with ``nobody``'s rights, when the grader
  is root (and ``nobody`` can read the Python installation), in an empty working folder, with
  ``RLIMIT_AS``, ``RLIMIT_CPU``, ``RLIMIT_FSIZE`` and ``RLIMIT_NPROC`` caps, with ``solutions``
  and ``autograder`` unimportable, and with stdout/stderr in a file that is shown to the student
  but never parsed. It receives inputs and returns outputs as plain data (:mod:`autograder.wire`:
  JSON and safetensors, no pickle). The grader computes the expected values and the verdicts and
  writes every file itself, and a class run ends by putting back any result file that changed
  behind its back (:class:`autograder.results.Guard`). :attr:`Sandbox.protections` says which of
  these protections are on; without bubblewrap only the process-level ones are.

The alternatives cost more: a fresh ``subprocess`` per submission pays the imports and the
models every time, and a pool of long-lived workers that run each submission in a fresh
namespace shares one interpreter between students, so a monkeypatched ``torch.softmax``
leaks into the next grade. The zygote freezes its objects out of the garbage collector's
sight (``gc.freeze``) so that children do not copy its memory page by page.

Time limits are enforced twice: an alarm inside the child (which keeps the child usable for
the next test) and a hard deadline here (which has the zygote kill the child's process group
when the alarm cannot fire; the next call starts a fresh child). A function that reached the
time limit once is not called again in that submission, so an infinite loop costs one time
limit, not one per test. Processes a submission leaves behind (even in a session of their
own) are killed by the zygote, which adopts them as a subreaper. A zygote that dies (the
kernel's out-of-memory killer, or a submission running as the grader's user) is started again.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from typing import TYPE_CHECKING

from autograder import isolation, timeline
from autograder.extract import Submission
from autograder.isolation import Protections

if TYPE_CHECKING:
    from autograder.session import Session

from book import ROOT
GRACE_SECONDS = 3.0  # how long past its own alarm the grader waits before killing a child


@dataclass(frozen=True)
class Limits:
    """What one submission may use. The defaults suit the course's labs on a laptop CPU."""

    call_seconds: float = 30.0  # one call of a student function
    load_seconds: float = 10.0  # one top-level statement of the submission (an import, a constant)
    submission_seconds: float = 180.0  # all the calls of one submission for one lab, together
    memory_bytes: int = 3 << 30  # address space a child may add to what the zygote already maps
    file_bytes: int = 16 << 20  # largest file (captured output included) a child may write
    reply_bytes: int = 256 << 20  # largest reply the grader accepts from a child
    output_chars: int = 4000  # how much of the captured stdout/stderr the report keeps (the tail)


class SandboxError(RuntimeError):
    """The sandbox itself failed (the zygote could not start): a problem of the grader, not of a student."""


class WorkerGone(SandboxError):
    """The zygote stopped answering (it died, or was killed): :meth:`Sandbox.fork` starts it again."""


def _copy_font_cache(target: Path) -> None:
    """Give the zygote matplotlib's font list, so that importing pyplot does not rebuild it (seconds) in every run."""
    import importlib.util

    if importlib.util.find_spec("matplotlib") is None:  # no matplotlib: nothing to copy
        return
    # matplotlib.get_cachedir()'s place, found without importing matplotlib into the grader (15 MB it would keep):
    # $MPLCONFIGDIR, else $XDG_CACHE_HOME/matplotlib, else ~/.cache/matplotlib. Elsewhere (a temporary folder when
    # those are not writable) there is no font list to copy, and the zygote builds its own.
    configured = os.environ.get("MPLCONFIGDIR")
    source = Path(configured) if configured else Path(
        os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache", "matplotlib")
    target.mkdir(parents=True, exist_ok=True)
    for found in source.glob("fontlist-*.json"):
        shutil.copy(found, target / found.name)


def process_tree(pid: int) -> list[int]:
    """``pid`` and every process below it, parents first (from /proc; just ``[pid]`` where there is none)."""
    parents: dict[int, list[int]] = {}
    for name in os.listdir("/proc") if os.path.isdir("/proc") else []:
        if name.isdigit():
            try:
                with open(f"/proc/{name}/stat") as stat:
                    parent = int(stat.read().rsplit(")", 1)[1].split()[1])
            except (OSError, ValueError, IndexError):
                continue
            parents.setdefault(parent, []).append(int(name))
    tree, index = [pid], 0
    while index < len(tree):
        tree += parents.get(tree[index], [])
        index += 1
    return tree


class Sandbox:
    """The zygote worker and the control socket to it. Use as a context manager.

    ``preload`` names the model roles the labs pass to student functions (``"encoder"``,
    ``"decoder"``); the zygote loads only those. ``imports`` names the modules it imports besides
    torch (those submissions are likely to import, :data:`autograder.worker.COMMON_IMPORTS`). ``isolation`` is
    ``"auto"`` (bubblewrap where it can start), ``"bubblewrap"`` (required) or ``"none"``.
    """

    def __init__(self, preload=(), limits: Limits = Limits(), imports=(), isolation: str = "auto"):
        self.preload = tuple(sorted(set(preload)))
        self.imports = tuple(sorted(set(imports)))
        self.limits = limits
        self.isolation = isolation
        self._process: subprocess.Popen | None = None
        self._control: socket.socket | None = None
        self._lock = threading.Lock()  # one request on the control socket at a time
        self._restart_lock = threading.Lock()
        self._home = None
        self.workroot: str | None = None  # the children's working folders, the same path inside and out
        self.startup_seconds = 0.0
        self.generation = 0  # how many times the zygote was started
        self.unprivileged = False  # children run as users of their own (the grader is root and nobody can read Python)
        self.as_root = False  # children run as root: the grader is root but nobody cannot read Python
        self.protections: Protections | None = None
        self._bwrap: str | None = None

    def __enter__(self) -> "Sandbox":
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def start(self) -> None:
        """Start the zygote and wait until its imports and models are loaded."""
        if self._process is not None:
            return
        started = time.monotonic()
        timeline.mark("sandbox starting")
        bwrap, reason = isolation.choose(self.isolation)
        self._home = tempfile.mkdtemp(prefix="llm-grade-zygote-")
        os.chmod(self._home, 0o711)  # children (nobody) may walk through to their own folder, not list it
        self.workroot = os.path.join(self._home, "work")
        os.mkdir(self.workroot, 0o711)
        os.chmod(self.workroot, 0o711)
        private = Path(self._home, "private")  # the zygote's caches: root only
        private.mkdir(mode=0o700)
        _copy_font_cache(private / "matplotlib")
        try:
            self._launch(bwrap)
        except SandboxError as error:
            if bwrap is None or self.isolation == "bubblewrap":
                self.close()
                raise
            reason = f"the worker did not start inside bubblewrap ({str(error).splitlines()[0]})"
            bwrap = None
            self._launch(None)  # auto: grade with the process-level protections, and say so
        self._bwrap = bwrap
        self.protections = Protections(
            isolation="bubblewrap" if bwrap else "process", filesystem=bool(bwrap), network=bool(bwrap),
            processes=bool(bwrap), user=self.unprivileged, reason="" if bwrap else reason)
        self.startup_seconds = time.monotonic() - started

    def _launch(self, bwrap: str | None) -> None:
        """Start one zygote (inside bubblewrap when ``bwrap`` is a path) and wait for it to be ready."""
        from book.models import cache_dir, resolve

        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        private = os.path.join(self._home, "private")
        # An allowlist, not the grader's environment: nothing of the instructor's shell reaches student code.
        env = isolation.worker_environment(dict(
            OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", TOKENIZERS_PARALLELISM="false",
            HF_HUB_OFFLINE="1", TRANSFORMERS_VERBOSITY="error", TQDM_DISABLE="1", HF_HUB_DISABLE_PROGRESS_BARS="1",
            MPLBACKEND="Agg", LLM_INTERNALS_CACHE=str(cache_dir()), HOME=private,
            MPLCONFIGDIR=os.path.join(private, "matplotlib"), HF_HOME=os.path.join(private, "huggingface")))
        log = open(os.path.join(self._home, "zygote.log"), "ab")
        # Isolated mode (-I: no PYTHONPATH, no current folder), with this course's checkout first on the path, so that
        # the worker runs the same book and autograder as the grader (a copy of the course grades with its own code).
        boot = f"import sys; sys.path.insert(0, {str(ROOT)!r}); from autograder.worker import main; main(sys.argv[1:])"
        command = [sys.executable, "-I", "-c", boot,
                   "--control-fd", str(theirs.fileno()), "--preload", ",".join(self.preload),
                   "--imports", ",".join(self.imports)]
        if bwrap is not None:
            models = [resolve(role.partition(":")[0]).location for role in self.preload]
            command = isolation.command(command, bwrap=bwrap, workroot=Path(self.workroot), private=Path(private),
                                        models=models)
        timeline.mark("worker launched")
        self._process = subprocess.Popen(command, pass_fds=[theirs.fileno()], cwd=self.workroot, env=env,
                                         stdin=subprocess.DEVNULL, stdout=log, stderr=log)
        theirs.close()
        log.close()
        ours.settimeout(600)
        try:
            ready = json.loads(ours.recv(1 << 16) or b'{"op": "failed", "error": "it exited"}')
        except (OSError, ValueError) as error:
            ready = {"op": "failed", "error": str(error)}
        if ready.get("op") != "ready":
            ours.close()
            self._stop_process()
            tail = Path(self._home, "zygote.log").read_text(errors="replace")[-3000:]
            raise SandboxError(f"The grading worker could not start ({ready.get('error')}); its log ends with:\n{tail}")
        ours.settimeout(30)
        for moment, when in ready.get("moments", {}).items():
            timeline.mark(f"worker: {moment}", when)
        with self._lock:
            self._control = ours
        self.generation += 1
        self.unprivileged = bool(ready.get("unprivileged"))
        self.as_root = bool(ready.get("root")) and not self.unprivileged

    def _stop_process(self, kill: bool = False) -> None:
        """Wait for the zygote to go (it does once its control socket is closed); kill its whole tree if it does not, or if ``kill``."""
        if self._process is not None:
            try:
                if kill:
                    raise subprocess.TimeoutExpired(self._process.args, 0)
                self._process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                for pid in reversed(process_tree(self._process.pid)):  # inside bubblewrap, the zygote is its grandchild
                    try:
                        os.kill(pid, signal.SIGKILL)
                    except OSError:
                        pass
                self._process.wait()
            self._process = None

    def close(self) -> None:
        """Stop the zygote; it takes its remaining children down with it."""
        with self._lock:
            if self._control is not None:
                self._control.close()
                self._control = None
        self._stop_process()
        if self._home:
            shutil.rmtree(self._home, ignore_errors=True)
            self._home = None

    def restart(self, generation: int) -> None:
        """Start the zygote again if it is still the one of ``generation`` (another thread may have done it)."""
        with self._restart_lock:
            if generation != self.generation or self._home is None:
                return
            with self._lock:
                if self._control is not None:
                    self._control.close()
                    self._control = None
            self._stop_process(kill=True)  # whatever is left of it
            print("The grading worker stopped (killed from outside, or by a submission); starting it again.",
                  file=sys.stderr)
            self._launch(self._bwrap)

    def _request(self, message: dict, fds=()) -> dict:
        with self._lock:
            if self._control is None:
                if self._home is None:
                    raise SandboxError("The sandbox is not running: use it inside `with Sandbox(...)`.")
                raise WorkerGone("the grading worker is being started again")
            try:
                socket.send_fds(self._control, [json.dumps(message).encode()], list(fds))
                reply = self._control.recv(1 << 16)
            except OSError:
                reply = b""
        if not reply:
            raise WorkerGone("the grading worker stopped answering")
        return json.loads(reply)

    def fork(self, workdir: str, limits: Limits | None = None) -> tuple[int, socket.socket]:
        """A new child of the zygote, confined to ``workdir``; returns its pid and its socket.

        A zygote that is gone is started again first.
        """
        limits = limits or self.limits
        limits = {
            "memory_bytes": limits.memory_bytes,
            "file_bytes": limits.file_bytes,
            "cpu_seconds": limits.submission_seconds + 30,
            "message_bytes": 1 << 30,
        }
        for attempt in range(2):
            generation = self.generation
            ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
            try:
                reply = self._request({"op": "fork", "workdir": workdir, "limits": limits, "repo": str(ROOT)},
                                      [theirs.fileno()])
                return reply["pid"], ours
            except WorkerGone:
                ours.close()
                if attempt:
                    raise
                self.restart(generation)
            finally:
                theirs.close()
        raise AssertionError("unreachable")

    def status(self, pid: int) -> dict:
        """How a child ended ({"exit": code} or {"signal": number}), or {"running": bool}."""
        try:
            return self._request({"op": "status", "pid": pid})
        except WorkerGone:
            return {"gone": True}

    def kill(self, pid: int) -> None:
        """Have the zygote kill child ``pid`` and its process group (pids are the zygote's: the sandbox has its own)."""
        try:
            self._request({"op": "kill", "pid": pid})
        except WorkerGone:
            pass  # a zygote that is gone took its children with it

    def session(self, submission: Submission, limits: Limits | None = None, lab=None) -> "Session":
        """A :class:`~autograder.session.Session` for one submission (``limits``: this submission's, instead of the
        sandbox's; ``lab``: the :class:`book.labs.Lab` whose references its functions call)."""
        from autograder.session import Session

        return Session(self, submission, limits, lab)
