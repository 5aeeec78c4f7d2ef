"""Where the worker runs: inside bubblewrap when it can start, otherwise as a plain process, and which protections that gives.

On Linux the zygote (:mod:`autograder.worker`) is started inside `bubblewrap
<https://github.com/containers/bubblewrap>`_ (``bwrap``, Debian's ``bubblewrap`` package), the
sandbox Flatpak uses, so that no home-made confinement is trusted with hostile code:

* **filesystem**: a read-only view of only what the worker needs (the system's ``/usr``, a few
  files of ``/etc``, the Python installation and its packages, the course's ``book`` and
  ``autograder`` packages without ``autograder/specs`` and ``autograder/catalogue``, the models
  the labs preload), a private ``/tmp``, and one writable folder for the children's working
  folders. The solutions, the hidden tests, the submissions and the results are not in it;
* **network**: a network namespace of its own, with nothing but an unconnected loopback;
* **processes**: a PID namespace of its own: a submission sees only the worker's processes and
  cannot signal the grader; the sandbox dies with the grader (the zygote exits when its
  control socket closes, and the namespace with it) and has no controlling terminal
  (``--new-session``). As root, the worker keeps only the capabilities it needs to give each
  child a user of its own (``setuid``, ``setgid``, ``chown``, ``dac_override``, ``kill``).

The process-level limits of :mod:`autograder.worker` apply inside as well: memory, CPU time and
file sizes (``setrlimit``), an empty working folder, a user of its own when the grader is root,
``import solutions`` refused. Where bubblewrap is missing or cannot start (not root and no user
namespaces; macOS), the worker runs with those limits only, and :class:`Protections` says
which protections are off, so that the grader can warn and record it.
"""

from __future__ import annotations

import functools
import importlib.util
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

# Files of /etc that Python and the libraries read (user names, the dynamic linker's cache, the time zone).
ETC_FILES = ("/etc/passwd", "/etc/group", "/etc/nsswitch.conf", "/etc/ld.so.cache", "/etc/ld.so.conf",
             "/etc/ld.so.conf.d", "/etc/localtime", "/etc/hosts")
# The top-level system folders: a symlink into /usr on merged-/usr systems (Debian 12), else bound as they are.
SYSTEM_DIRS = ("/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32")
# Packages a submission must never read, masked with an empty folder wherever they lie inside the view.
HIDDEN_PACKAGES = ("solutions", "autograder.specs", "autograder.catalogue")
COURSE_PACKAGES = ("book", "autograder", "solutions")  # a folder holding any of them is a copy of the course's sources
ROOT_CAPABILITIES = ("CAP_SETUID", "CAP_SETGID", "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_KILL")  # what the zygote needs as root


# What the worker, and so every submission, receives of the grader's environment: only these, when set. Nothing else
# reaches student code (an instructor's shell holds tokens and cloud credentials).
INHERITED_ENVIRONMENT = (
    "PATH", "LANG", "LANGUAGE", "LC_ALL", "LC_CTYPE", "LC_NUMERIC", "LC_MESSAGES", "TZ",  # the locale and time zone
    "LD_LIBRARY_PATH",  # a Python built with shared libraries outside the system's folders needs it
    "OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "NUMEXPR_NUM_THREADS", "VECLIB_MAXIMUM_THREADS",
    "LLM_INTERNALS_PROFILE",  # which models the roles name: the worker must load the grader's
)
# What the grader sets for the worker itself (the libraries' settings, the caches), and the child for its submission.
WORKER_SETTINGS = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "TOKENIZERS_PARALLELISM", "HF_HUB_OFFLINE",
                   "TRANSFORMERS_VERBOSITY", "TQDM_DISABLE", "HF_HUB_DISABLE_PROGRESS_BARS", "MPLBACKEND",
                   "LLM_INTERNALS_CACHE", "HOME", "MPLCONFIGDIR", "HF_HOME")
CHILD_SETTINGS = ("HOME", "TMPDIR", "PWD")  # PWD: bubblewrap sets it to the working folder
# Every variable a submission may see (tests/test_autograder_sandbox.py checks it against a catalogue entry that
# prints os.environ).
ALLOWED_ENVIRONMENT = frozenset(INHERITED_ENVIRONMENT + WORKER_SETTINGS + CHILD_SETTINGS)


def worker_environment(settings: dict[str, str]) -> dict[str, str]:
    """The worker's environment: the allowed variables of this one (:data:`INHERITED_ENVIRONMENT`), then ``settings``."""
    unknown = set(settings) - set(WORKER_SETTINGS)
    if unknown:
        raise ValueError(f"Not a worker setting: {', '.join(sorted(unknown))}: add it to WORKER_SETTINGS first.")
    environment = {name: os.environ[name] for name in INHERITED_ENVIRONMENT if name in os.environ}
    environment.update(settings)
    return environment


class IsolationError(RuntimeError):
    """Bubblewrap was required (``--isolation bubblewrap``) but cannot start here."""


INSTALL_HINT = "install bubblewrap (Debian/Ubuntu: apt-get install bubblewrap; or run scripts/setup_sandbox.sh)"


@dataclass(frozen=True)
class Protections:
    """What walls off a submission in one grading run, beyond the process-level limits that always apply."""

    isolation: str  # "bubblewrap" or "process"
    filesystem: bool  # only a read-only view of Python, its packages and the course runtime
    network: bool  # no network
    processes: bool  # a PID namespace: the grader and other processes are out of sight and reach
    user: bool  # children run as users of their own with nobody's rights, not as the grader's user
    reason: str = ""  # why bubblewrap is not used, when it is not

    def to_dict(self) -> dict:
        """The ``"sandbox"`` field of a results file."""
        return {"isolation": self.isolation, "filesystem": "read-only view" if self.filesystem else "open",
                "network": "off" if self.network else "on", "processes": "hidden" if self.processes else "visible",
                "user": "one per submission" if self.user else "the grader's", "protections_off": self.off()}

    def off(self) -> list[str]:
        """One sentence per protection that is off, saying what a submission can then do."""
        off = []
        if not self.filesystem:
            off.append("filesystem: a submission can read any file the worker's user can (the solutions, the hidden "
                       "tests, other students' files)")
        if not self.network:
            off.append("network: a submission can open network connections")
        if not self.processes:
            off.append("processes: a submission can see the grader's processes")
        if not self.user:
            off.append("user: a submission runs as the grader's user, not as a user of its own, so it can signal the "
                       "grader's processes and write where the grader can")
        return off

    def warning(self) -> str:
        """What the grader prints when some protection is off ("" when all are on)."""
        off = self.off()
        if not off:
            return ""
        how = (f"with process-level limits only ({self.reason})" if self.isolation == "process"
               else "inside bubblewrap, but with children that keep the grader's user")
        as_nobody = "grade as root, with a Python installation that `nobody` can read"
        fix = (f"To turn them on, {INSTALL_HINT}" + (f", and {as_nobody}." if not self.user else ".")
               if self.isolation == "process" else f"To turn it on, {as_nobody}.")
        return f"Warning: grading {how}. Protections off: " + "; ".join(off) + f". {fix}"

    def covers(self, required: list[str] | tuple[str, ...]) -> bool:
        """Whether every named protection ("filesystem", "network", "processes", "user") is on."""
        return all(getattr(self, name) for name in required)


@functools.lru_cache(maxsize=1)
def bubblewrap() -> tuple[str | None, str]:
    """The path of a ``bwrap`` that can start a sandbox here, or None and why not (checked once per process)."""
    if not sys.platform.startswith("linux"):
        return None, f"bubblewrap needs Linux, this is {sys.platform}"
    path = shutil.which("bwrap")
    if path is None:
        return None, "bwrap is not installed"
    probe = [path, "--ro-bind", "/", "/", "--proc", "/proc", "--dev", "/dev", "--unshare-net", "--unshare-pid",
             "--die-with-parent", "--new-session", "true"]
    try:
        result = subprocess.run(probe, capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired) as error:
        return None, f"bwrap could not start ({error})"
    if result.returncode != 0:
        return None, f"bwrap could not start a sandbox here ({result.stderr.strip() or f'exit code {result.returncode}'})"
    return path, ""


def _package_dir(name: str) -> Path | None:
    """Where package ``name`` lies, without importing it (None when it is not installed)."""
    try:
        spec = importlib.util.find_spec(name)
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(list(spec.submodule_search_locations)[0]).resolve()


def _inside(path: Path, folders: list[Path]) -> bool:
    return any(path == f or f in path.parents for f in folders)


def _path_folders() -> list[Path]:
    """The folders on ``sys.path`` that exist, resolved, in order."""
    return [Path(entry).resolve() for entry in sys.path if entry and os.path.isdir(entry)]


def _holds_course(folder: Path) -> bool:
    """Whether ``folder`` holds the course's packages side by side, as a checkout (or a site-packages) does."""
    return any((folder / name).is_dir() for name in COURSE_PACKAGES)


def checkouts(prefixes: list[Path]) -> list[Path]:
    """The copies of the course's sources outside the Python installation, none of which is ever bound whole.

    This process's checkout (``book.ROOT``), and every other one on ``sys.path``: a book build runs
    its kernels with ``PYTHONPATH`` on a copy of the sources while the editable install's path entry
    still names the original checkout, with its solutions, catalogue and tests.
    """
    from book import ROOT

    found = [ROOT.resolve()]
    found += [path for path in _path_folders() if path not in found and _holds_course(path)]
    return [c for c in found if not _inside(c, prefixes)]


def readable_paths(models: list[str]) -> list[Path]:
    """What the worker reads: the Python installation, its packages, the course's packages, and the ``models`` folders.

    Of a checkout of the course (:func:`checkouts`), only the ``book`` and ``autograder`` packages
    this process imports, and what lies in the Python installation (a ``.venv`` inside it).
    """
    prefixes = sorted({Path(p).resolve() for p in (sys.base_prefix, sys.base_exec_prefix, sys.prefix, sys.exec_prefix)})
    paths = set(prefixes) | {Path(sys.executable).resolve().parent}
    sources = checkouts(prefixes)

    paths |= {path for path in _path_folders()  # the packages' folders
              if not _inside(path, sources) or _inside(path, prefixes)}
    for package in ("book", "autograder"):
        found = _package_dir(package)
        if found is not None:
            paths.add(found)
    # never a checkout whole, nor a folder above one
    paths = {p for p in paths if not any(_inside(c, [p]) for c in sources)}
    paths |= {Path(m).resolve() for m in models}
    kept: list[Path] = []
    for path in sorted(paths, key=lambda p: len(p.parts)):  # a folder inside one already bound is visible already
        if path.exists() and not _inside(path, kept) and not _inside(path, [Path(d) for d in SYSTEM_DIRS]):
            kept.append(path)
    return kept


def hidden_folders(bound: list[Path]) -> list[Path]:
    """The folders of :data:`HIDDEN_PACKAGES` visible inside ``bound``, each to be masked with an empty folder.

    Where this process imports them from, wherever an import could find them (every ``sys.path``
    folder: a site-packages with the instructors' package installed, inside a bound virtual
    environment), and wherever else a bound folder holds them (a bound ``autograder`` package of
    another copy of the sources).
    """
    roots = _path_folders() + list(bound)  # folders that may hold a top-level package
    found: list[Path] = []
    for package in HIDDEN_PACKAGES:
        parts = package.split(".")
        candidates = [_package_dir(package)] + [root.joinpath(*parts) for root in roots]
        if len(parts) > 1:
            candidates += [folder.joinpath(*parts[1:]) for folder in bound if folder.name == parts[0]]
        for candidate in candidates:
            if candidate is not None and candidate.is_dir() and _inside(candidate, bound) and candidate not in found:
                found.append(candidate)
    return found


def command(worker: list[str], *, bwrap: str, workroot: Path, private: Path, models: list[str]) -> list[str]:
    """The ``bwrap`` command line that runs ``worker`` in the sandbox described in the module docstring.

    ``workroot`` (the children's working folders) is writable and shared with the grader at the
    same path; ``private`` (the zygote's own caches) is writable too; both must exist.
    """
    args = [bwrap]
    made: set[str] = set()

    def ancestors(path: Path) -> None:
        """Create the folders above ``path`` as 0755, so that `nobody` can walk down to it (bwrap makes them 0700)."""
        for parent in reversed(path.parents):
            text = str(parent)
            if text != "/" and text not in made and not _inside(parent, bound):
                args.extend(["--perms", "0755", "--dir", text])
                made.add(text)

    bound: list[Path] = []
    for folder in SYSTEM_DIRS:
        if os.path.islink(folder):
            args.extend(["--symlink", os.readlink(folder), folder])
        elif os.path.isdir(folder):
            args.extend(["--ro-bind", folder, folder])
            bound.append(Path(folder))
    for name in ETC_FILES:
        if os.path.exists(name):
            args.extend(["--ro-bind", name, name])
    args.extend(["--proc", "/proc", "--dev", "/dev", "--perms", "1777", "--tmpfs", "/tmp"])
    for path in readable_paths(models):
        ancestors(path)
        args.extend(["--ro-bind", str(path), str(path)])
        bound.append(path)
    for folder in hidden_folders(bound):  # e.g. autograder/specs inside the autograder package: an empty folder instead
        args.extend(["--tmpfs", str(folder)])
    for path in (workroot, private):
        ancestors(path)
        args.extend(["--bind", str(path), str(path)])
        bound.append(path)
    args.extend(["--chdir", str(workroot), "--unshare-net", "--unshare-pid", "--unshare-ipc", "--unshare-uts",
                 "--unshare-cgroup-try", "--hostname", "grader", "--new-session"])
    # Not --die-with-parent: it ties the sandbox to the *thread* that started it (PR_SET_PDEATHSIG), and the
    # grader starts it from a helper thread. The zygote exits when the grader's end of its control socket
    # closes, which the kernel does when the grader dies, and the PID namespace dies with the zygote.
    if os.geteuid() == 0:
        args.extend(["--cap-drop", "ALL"])
        for capability in ROOT_CAPABILITIES:
            args.extend(["--cap-add", capability])
    return args + ["--"] + worker


def choose(isolation: str) -> tuple[str | None, str]:
    """The bwrap to use for ``isolation`` ("auto", "bubblewrap" or "none"), or None and why not.

    "bubblewrap" insists: it raises when bubblewrap cannot start, instead of grading with fewer protections.
    """
    if isolation not in ("auto", "bubblewrap", "none"):
        raise ValueError(f"Unknown isolation {isolation!r}: use auto, bubblewrap or none.")
    if isolation == "none":
        return None, "isolation 'none' was asked for"
    path, reason = bubblewrap()
    if path is None and isolation == "bubblewrap":
        raise IsolationError(f"Grading needs bubblewrap, but {reason}: {INSTALL_HINT}, or grade with --isolation auto.")
    return path, reason
