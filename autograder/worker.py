"""The worker: the only process that ever runs a submission's code.

Started by :mod:`autograder.sandbox` as ``python -I -m autograder.worker --control-fd N``, it
lives in two forms:

* the **zygote** imports torch and transformers, loads the models the labs pass to student
  functions, runs each once (so lazy initialisation happens here, not in every child), then
  waits on its control socket. Each ``fork`` request carries a fresh socket (passed as a file
  descriptor) and becomes a **child** with ``os.fork()``: the imports and the models are shared
  copy-on-write, so a child is ready in milliseconds and sees pristine models whatever the
  previous child did to its own copy.
* a **child** serves one submission on its own socket: ``load`` (run the submission's imports,
  functions, classes and constants in a fresh module), ``call`` (run one function on plain
  data), ``exit``. Before any student code runs it caps its address space, CPU time and file
  sizes (``setrlimit``), moves to an empty working folder (also its ``TMPDIR``), sends stdout
  and stderr to a file, becomes ``nobody`` when the grader runs as root (if ``nobody`` can read
  the Python installation, see :func:`can_drop_privileges`; then a user id of its own from
  :data:`CHILD_UIDS`, so that children cannot signal or read each other, at most
  :data:`MAX_PROCESSES` processes, and a memory nobody else can read), and blocks
  ``import solutions`` and ``import autograder``.

The zygote also answers ``status`` (how a child ended) and ``kill`` (a child's process group:
the grader cannot, since inside bubblewrap the pids are the sandbox's), and kills any process
a child leaves behind (it is their subreaper). On Linux the zygote itself runs inside
bubblewrap (:mod:`autograder.isolation`).

Requests and replies are :mod:`autograder.wire` frames (JSON and safetensors). The worker
never decides a grade: it sends back what the function returned, and the grader compares.
"""

from __future__ import annotations

import __future__
import argparse
import ctypes
import gc
import importlib.abc
import io
import linecache
import os
import resource
import select
import signal
import socket
import sys
import tempfile
import time
import traceback
from dataclasses import dataclass

from autograder import wire
from autograder.wire import ErrorKind
from book.labs.calls import linear_module, observe, references_in

BLOCKED_PACKAGES = ("solutions", "autograder")  # what student code may not import
# Imported by the zygote of a class run so that a submission importing them does not pay for it in every child (a
# run that grades one submission imports only those it imports: autograder.grade.Grader).
COMMON_IMPORTS = ("numpy", "pandas", "tqdm", "book", "book.labcheck", "book.labs", "matplotlib.pyplot", "tokenizers",
                  "transformers")
NOBODY = 65534  # the user whose rights a child gets when the grader runs as root
# Each child gets a user id of its own with nobody's rights (no name, no groups, no files), so that a
# submission cannot signal, trace or read the files of another submission graded at the same time.
CHILD_UIDS = range(10_000_000, 10_060_000)
MAX_PROCESSES = 256  # processes and threads one child's user may have at once (a fork bomb stops there)
PR_SET_PDEATHSIG, PR_SET_DUMPABLE, PR_SET_CHILD_SUBREAPER = 1, 4, 36


class _BlockImports(importlib.abc.MetaPathFinder):
    """Refuses the grader's own packages: a submission must compute its answers itself."""

    def find_spec(self, fullname, path=None, target=None):
        if fullname.split(".")[0] in BLOCKED_PACKAGES:
            raise ImportError(
                f"'{fullname}' cannot be imported while grading: a submission must compute its "
                "answers itself, so remove this import."
            )
        return None


class CallTimeout(BaseException):
    """Raised inside student code by the alarm; a BaseException so `except Exception` cannot swallow it."""


def _on_alarm(signum, frame):
    raise CallTimeout()


# ---------------------------------------------------------------------------------------------
# The zygote: imports and models, loaded once.


def _vm_size() -> int:
    """This process's virtual address space in bytes (what RLIMIT_AS counts)."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmSize:"):
                return int(line.split()[1]) * 1024
    return 0


def preload(names: list[str], imports: list[str], moments: dict | None = None) -> dict:
    """Import torch and ``imports``, and load the models named (``encoder``, ``decoder``, ``decoder:vocabulary``), each run once.

    ``moments`` receives when the imports were done (wall clock), for the grader's timeline.
    """
    import importlib

    import torch

    if names:  # the models need them; a lab without models (lab 1) does not pay their imports (seconds)
        import tokenizers  # noqa: F401
        import transformers  # noqa: F401  (imported here so that no child pays for it)
    torch.set_num_threads(1)  # parallelism comes from grading submissions side by side
    for module in imports:
        try:
            importlib.import_module(module)
        except Exception:  # noqa: BLE001 - a missing optional library only costs the child its import
            pass
    if moments is not None:
        moments["imported"] = time.time()
    objects = {}
    if names:
        import book
        import book.models

        draw_added_rows_only()  # lab 3's calls grow embedding matrices

        for name in names:
            # "decoder:vocabulary": the model without its layers (book.models.load_vocabulary_model), for a lab
            # whose functions only touch the embeddings; it shares the role's name with the full model.
            role, _, part = name.partition(":")
            tokenizer = book.load_tokenizer(role)
            model = book.models.load_vocabulary_model(role) if part == "vocabulary" else book.load_model(role)
            model.requires_grad_(False)
            # A model without its layers runs its base only: a tied head's logits would read every row of the
            # embedding matrix (SmolLM2's 113 MB), pages a lab that only grows the matrix then never needs.
            runner = model.base_model if part == "vocabulary" else model
            with torch.no_grad():  # the first forward initialises kernels: pay it here, once
                runner(**tokenizer(["warm up", "the model once"], padding=True, return_tensors="pt"))
            objects[f"{role}_tokenizer"], objects[f"{role}_model"] = tokenizer, model
        note_room([o for o in objects.values() if isinstance(o, torch.nn.Module)])
    return objects


def return_free_memory() -> None:
    """Give the C allocator's free pages back to the system (glibc's ``malloc_trim``; nothing elsewhere).

    Loading leaves freed memory behind in the allocator's heap: parsing SmolLM2's tokenizer.json
    alone leaves about 16 MB. In the zygote those pages would stay resident for as long as it lives,
    and every child would inherit them.
    """
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass


@dataclass(frozen=True)
class Room:
    """Where a matrix loaded from a file lies: the end of the room after it, and the file and offset it was read from."""

    limit: int  # the address the matrix may grow up to (excluded)
    path: str  # the checkpoint file the mapping reads
    offset: int  # the file offset of the matrix's first byte
    fd: int  # that file, opened read-only by the zygote (a child running as nobody may not open it: /root is private)


# Where a loaded model's input embedding matrix may grow in place: its first element's address -> its Room (the rest
# of its private, copy-on-write file mapping, up to the next tensor a loaded model uses). Filled by the zygote
# (:func:`note_room`), read by its children (same addresses after ``fork``).
ROOM: dict[int, Room] = {}


def note_room(models) -> None:
    """Record how far each model's input embedding matrix could grow within the file mapping it was loaded from.

    transformers reads a checkpoint's tensors from a private (copy-on-write) mapping of the
    ``.safetensors`` file; an embedding matrix sits among the file's other tensors, which a model
    without its layers (:func:`book.models.load_vocabulary_model`) never uses. The room after the
    matrix ends where the mapping does, or at the first tensor of any loaded model, whichever
    comes first: growing into it never touches a tensor in use. Read from ``/proc/self/maps`` here,
    in the zygote: a child running as ``nobody`` may not read its own.
    """
    try:
        with open("/proc/self/maps") as maps:
            mappings = []
            for line in maps:
                fields = line.split()
                low, high = (int(x, 16) for x in fields[0].split("-"))
                private_file = len(fields) >= 6 and fields[1].startswith("rw") and fields[1].endswith("p") and fields[4] != "0"
                path = line.rstrip("\n").split(None, 5)[5] if private_file else ""
                mappings.append((low, high, private_file, path, int(fields[2], 16)))
    except OSError:
        return
    used = [(t.data_ptr(), t.data_ptr() + t.numel() * t.element_size())
            for model in models for t in list(model.parameters()) + list(model.buffers()) if t.numel()]
    for model in models:
        weight = getattr(model.get_input_embeddings(), "weight", None)
        if weight is None or weight.dim() != 2 or not weight.is_contiguous() or weight.device.type != "cpu":
            continue
        start = weight.data_ptr()
        end = start + weight.numel() * weight.element_size()
        mapping = next((m for m in mappings if m[2] and m[0] <= start < m[1]), None)
        if mapping is None:
            continue
        low, high, _, path, offset = mapping
        limit = min([high] + [first for first, last in used if first >= end])
        if limit > end:
            try:
                fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
            except OSError:
                fd = -1
            ROOM[start] = Room(limit, path, offset + start - low, fd)


def _grown_in_place(old, rows: int):
    """A (rows, D) tensor whose first V rows are ``old``'s own memory (nothing copied), or None where there is no room.

    The rows after V are the untouched, copy-on-write pages of the file mapping after the matrix
    (:func:`note_room`): only the pages of the rows written later (the added ones) become this
    process's own. The buffer keeps ``old``'s storage, and with it the mapping, alive.
    """
    import torch

    start = old.data_ptr()
    needed = rows * old.shape[1] * old.element_size()
    if old.dim() != 2 or not old.is_contiguous() or start not in ROOM or start + needed > ROOM[start].limit:
        return None

    class Pages(ctypes.c_char * needed):
        pass

    pages = Pages.from_address(start)
    pages.owner = old.untyped_storage()
    return torch.frombuffer(pages, dtype=old.dtype, count=rows * old.shape[1]).view(rows, old.shape[1])


MADV_DONTNEED = 4


def _drop_unchanged_pages(rows) -> None:
    """Unmap the pages of ``rows`` (a block of a matrix in a file mapping, :data:`ROOM`) that hold what the file holds.

    A page of a private file mapping that was only read is the file's page; dropping it
    (``MADV_DONTNEED``) frees this process of it, and reading it again reads the file: the same
    bytes. A page written since is this process's own, and dropping it would lose what was
    written: so the pages are dropped only if their bytes equal the file's, compared here (a block
    with any change keeps all its pages). Only pages wholly inside ``rows`` are considered. (The
    kernel's ``MADV_PAGEOUT`` would need write permission on the file, which a child running as
    ``nobody`` lacks.)
    """
    start = rows.data_ptr()
    found = next(((low, room) for low, room in ROOM.items() if low <= start < room.limit), None)
    if found is None:
        return
    low, room = found
    page = resource.getpagesize()
    first = -(-start // page) * page
    last = (start + rows.numel() * rows.element_size()) // page * page
    if last <= first:
        return
    try:
        on_disk = os.pread(room.fd, last - first, room.offset + first - low)
        if ctypes.string_at(first, last - first) != on_disk:
            return
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.madvise.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
        libc.madvise(ctypes.c_void_p(first), last - first, MADV_DONTNEED)
    except (OSError, AttributeError):
        pass


def draw_added_rows_only() -> None:
    """Make ``resize_token_embeddings`` draw random values for the added rows only, and copy nothing, in this process.

    transformers builds the grown matrix (V', D) as a new ``nn.Embedding``, whose constructor fills
    every row from a normal distribution, fills them all again (``_init_weights``), then copies the V
    old rows over the first V: two draws of V' x D values of which only the added rows survive. For
    SmolLM2 (V = 49152, D = 576) that is 0.4 s of a lab 3 call, the bulk of grading one submission.
    In the worker the draws are made for rows V on only: the matrix a submission gets is the same
    (old rows copied, added rows from the same normal distribution, or set by ``mean_resizing``).

    Memory: where the old matrix lies in a file mapping with room after it (:func:`note_room`), the
    grown matrix is built over the same memory (:func:`_grown_in_place`), so that transformers' copy
    of the V old rows is a copy onto themselves, which torch skips: SmolLM2's 113 MB are not
    duplicated in each child, only the pages of the added rows are. ``mean_resizing``'s mean and
    covariance are computed a block of rows at a time, without its float32 copy of the centred
    matrix (another 113 MB), and the file's pages it read are given back as it goes
    (:func:`_drop_unchanged_pages`). The values a submission sees are those of transformers' own
    code (the mean and covariance up to rounding). One difference only: a separate tensor kept on the old matrix (``weight.detach()`` before
    resizing) shares memory with the grown matrix's first V rows, where transformers' copy would
    have separated them; writing into the old rows of either shows in both.
    """
    import torch
    from transformers import PreTrainedModel, initialization

    original = PreTrainedModel._get_resized_embeddings
    if getattr(original, "added_rows_only", False):
        return
    torch_normal = initialization.TORCH_INIT_FUNCTIONS["normal_"]
    embedding_init = torch.nn.Embedding.__init__

    def resized(self, old_embeddings, new_num_tokens=None, pad_to_multiple_of=None, mean_resizing=True):
        old = getattr(old_embeddings, "weight", None)
        if not isinstance(old, torch.Tensor) or old.dim() != 2:
            return original(self, old_embeddings, new_num_tokens, pad_to_multiple_of, mean_resizing)
        V, D = old.shape
        rows = V if new_num_tokens is None else new_num_tokens
        if isinstance(pad_to_multiple_of, int) and pad_to_multiple_of > 0:
            rows = -(-rows // pad_to_multiple_of) * pad_to_multiple_of
        grown = _grown_in_place(old, rows) if (isinstance(rows, int) and rows > V and
                                               isinstance(old_embeddings, torch.nn.Embedding)) else None

        def normal_(tensor, *a, **k):  # (V', D) -> only rows V: are kept
            if tensor.dim() == 2 and tensor.shape[0] > V and tensor.shape[1] == D:
                torch_normal(tensor[V:], *a, **k)
                return tensor
            return torch_normal(tensor, *a, **k)

        def build(module, num_embeddings, embedding_dim, *a, **k):  # the new nn.Embedding, over the grown pages
            if grown is not None and (num_embeddings, embedding_dim) == (rows, D) and not a and k.get("_weight") is None:
                k = {**k, "_weight": grown}
                k.pop("device", None)
                k.pop("dtype", None)
            embedding_init(module, num_embeddings, embedding_dim, *a, **k)

        saved, data = torch.nn.init.normal_, old.data
        torch.nn.init.normal_, initialization.TORCH_INIT_FUNCTIONS["normal_"] = normal_, normal_
        if grown is not None:
            old.data = grown[:V]  # the same memory and values: transformers' copy of the old rows is then onto themselves
            torch.nn.Embedding.__init__ = build
        try:
            return original(self, old_embeddings, new_num_tokens, pad_to_multiple_of, mean_resizing)
        except BaseException:
            old.data = data
            raise
        finally:
            torch.nn.init.normal_, initialization.TORCH_INIT_FUNCTIONS["normal_"] = saved, torch_normal
            torch.nn.Embedding.__init__ = embedding_init

    def mean_rows(self, old_embeddings, new_embeddings, old_num_tokens, added_num_tokens):
        """transformers' ``_init_added_embeddings_weights_with_mean``, its mean and covariance summed block by block.

        One pass over the rows, in float64, centred on the first block's mean (the shifted-data
        formula, as stable as centring on the mean itself); each block's file pages are given back
        as soon as it is read, where unchanged (:func:`_drop_unchanged_pages`).
        """
        from torch.distributions import constraints

        weight = old_embeddings.weight.data
        V, D = weight.shape
        shift = weight[:1024].to(torch.float64).mean(dim=0)  # (D,)
        total, products = torch.zeros(D, dtype=torch.float64), torch.zeros(D, D, dtype=torch.float64)
        for i in range(0, V, 1024):
            block = weight[i:i + 1024]
            centred = block.to(torch.float64) - shift
            total += centred.sum(dim=0)
            products += centred.T @ centred
            _drop_unchanged_pages(block)  # the rows just read: SmolLM2's file pages a child would otherwise keep
        del centred
        return_free_memory()  # the blocks' scratch, which the C allocator would otherwise keep
        offset = total / V  # the mean minus the shift
        mean = (shift + offset).to(torch.float32)
        covariance = ((products - V * torch.outer(offset, offset)) / old_num_tokens).to(torch.float32)
        epsilon = 1e-9
        if constraints.positive_definite.check(epsilon * covariance).all():
            distribution = torch.distributions.multivariate_normal.MultivariateNormal(mean, covariance_matrix=epsilon * covariance)
            new_embeddings.weight.data[-1 * added_num_tokens:, :] = distribution.sample(
                sample_shape=(added_num_tokens,)).to(old_embeddings.weight.dtype)
        else:
            new_embeddings.weight.data[-1 * added_num_tokens:, :] = (
                mean[None, :].repeat(added_num_tokens, 1).to(old_embeddings.weight.dtype))

    resized.added_rows_only = True
    PreTrainedModel._get_resized_embeddings = resized
    PreTrainedModel._init_added_embeddings_weights_with_mean = mean_rows


def can_drop_privileges() -> bool:
    """Whether a child can run as ``nobody``: the grader is root, and Python and its packages are readable by ``nobody``.

    (A Python installed under /root, as pyenv does in many containers, is not: a child would
    then fail to import any module the zygote did not import already.)
    """
    if os.geteuid() != 0:
        return False
    pid = os.fork()
    if pid == 0:  # a probe child: become nobody, then read what an import would read
        try:
            os.setgroups([])
            os.setgid(NOBODY)
            os.setuid(NOBODY)
            for entry in sys.path:
                if os.path.isdir(entry):
                    os.listdir(entry)
            with open(os.__file__, "rb"):
                pass
        except BaseException:  # noqa: BLE001 - any failure means no
            os._exit(1)
        os._exit(0)
    _, status = os.waitpid(pid, 0)
    return os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0


def _prctl(option: int, value: int) -> None:
    try:
        ctypes.CDLL(None, use_errno=True).prctl(option, value, 0, 0, 0)
    except (OSError, AttributeError):  # not Linux: the other protections still apply
        pass


def _direct_children() -> set[int]:
    """The pids of this process's children, from /proc (empty where /proc cannot tell)."""
    found: set[int] = set()
    try:
        for task in os.listdir("/proc/self/task"):
            with open(f"/proc/self/task/{task}/children") as listing:
                found.update(int(pid) for pid in listing.read().split())
    except OSError:
        pass
    return found


def _kill_group(pid: int) -> None:
    for kill in (os.killpg, os.kill):  # the group: the child and whatever it started in it
        try:
            kill(pid, signal.SIGKILL)
        except OSError:
            pass


def serve_zygote(control: socket.socket, objects: dict, unprivileged: bool) -> None:
    """Answer ``fork``, ``status`` and ``kill`` requests until the grader closes the control socket.

    The zygote is a subreaper: a process a child left behind (even one that started a session
    of its own) becomes the zygote's when its parent dies, and is killed at the next look.
    """
    import json

    statuses: dict[int, dict] = {}
    children: set[int] = set()
    forked = 0
    _prctl(PR_SET_CHILD_SUBREAPER, 1)

    def reap():
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                break
            if pid == 0:
                break
            if pid not in children:
                continue  # an orphan we killed
            children.discard(pid)
            if os.WIFSIGNALED(status):
                statuses[pid] = {"signal": os.WTERMSIG(status)}
            else:
                statuses[pid] = {"exit": os.WEXITSTATUS(status)}
        for orphan in _direct_children() - children:  # left behind by a child that is gone
            _kill_group(orphan)

    while True:
        ready, _, _ = select.select([control], [], [], 0.5)
        reap()
        if not ready:
            continue
        try:
            data, fds, _, _ = socket.recv_fds(control, 1 << 16, 1)
        except OSError:
            data, fds = b"", []
        if not data:  # the grader is gone: take every child down with it
            for pid in children | _direct_children():
                _kill_group(pid)
            return
        request = json.loads(data)
        if request["op"] == "fork":
            uid = CHILD_UIDS[forked % len(CHILD_UIDS)]  # not reused soon: what a child leaves behind is gone by then
            forked += 1
            request["uid"] = uid
            pid = os.fork()
            if pid == 0:
                try:
                    control.close()
                    child_main(socket.socket(fileno=fds[0]), {**request, "unprivileged": unprivileged}, objects)
                except BaseException:  # noqa: BLE001 - confining failed, or the grader vanished: say why in the log
                    traceback.print_exc()
                    os._exit(1)
                finally:
                    os._exit(0)
            os.close(fds[0])
            children.add(pid)
            control.send(json.dumps({"pid": pid}).encode())
        elif request["op"] == "status":
            reap()
            pid = request["pid"]
            control.send(json.dumps(statuses.get(pid, {"running": pid in children})).encode())
        elif request["op"] == "kill":
            if request["pid"] in children:  # never a pid the zygote did not fork
                _kill_group(request["pid"])
            control.send(b'{"ok": true}')


# ---------------------------------------------------------------------------------------------
# A child: one submission, walled off.


def _confine(request: dict) -> None:
    """Limits, working folder, captured output, privileges and import blocking, in that order."""
    os.setpgid(0, 0)  # its own process group: the grader kills the child and anything it spawned
    _prctl(PR_SET_PDEATHSIG, signal.SIGKILL)  # die with the zygote
    limits = request["limits"]
    workdir = request["workdir"]
    os.chdir(workdir)

    # stdout and stderr (Python's and C's) go to a file the grader shows but never parses.
    capture = os.open(os.path.join(workdir, "output.txt"), os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    os.dup2(capture, 1)
    os.dup2(capture, 2)
    os.close(capture)
    sys.stdout = io.TextIOWrapper(os.fdopen(1, "wb", closefd=False), line_buffering=True, errors="replace")
    sys.stderr = io.TextIOWrapper(os.fdopen(2, "wb", closefd=False), line_buffering=True, errors="replace")

    if request["unprivileged"]:  # never run student code as root when it can be avoided
        uid = request["uid"]
        os.chown(os.path.join(workdir, "output.txt"), uid, uid)
        os.chown(workdir, uid, uid)
        os.setgroups([])
        os.setgid(uid)
        os.setuid(uid)
        os.environ["HOME"] = workdir
        _prctl(PR_SET_DUMPABLE, 0)  # its memory and /proc entries stay unreadable, whatever it runs
        resource.setrlimit(resource.RLIMIT_NPROC, (MAX_PROCESSES, MAX_PROCESSES))
    os.environ["TMPDIR"] = workdir  # tempfile writes into its own folder, not a /tmp shared with others
    tempfile.tempdir = None

    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # an oversized write fails instead of killing
    resource.setrlimit(resource.RLIMIT_FSIZE, (limits["file_bytes"], limits["file_bytes"]))
    cpu = int(limits["cpu_seconds"])
    resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu + 5))
    address_space = _vm_size() + int(limits["memory_bytes"])
    resource.setrlimit(resource.RLIMIT_AS, (address_space, address_space))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))

    for name in list(sys.modules):
        if name.split(".")[0] in BLOCKED_PACKAGES:
            del sys.modules[name]
    sys.meta_path.insert(0, _BlockImports())
    sys.path[:] = [p for p in sys.path if p and os.path.abspath(p) != os.path.abspath(request["repo"])]
    signal.signal(signal.SIGALRM, _on_alarm)


def _student_traceback(error: BaseException, filenames: set[str]) -> list[str]:
    """The traceback lines that point into the submission, then the exception line."""
    frames = [f for f in traceback.extract_tb(error.__traceback__) if f.filename in filenames]
    lines = traceback.format_list(frames) if frames else []
    lines += traceback.format_exception_only(type(error), error)
    return [line.rstrip("\n") for line in lines]


def _is_memory_error(error: BaseException) -> bool:
    text = str(error).lower()
    return isinstance(error, MemoryError) or (
        isinstance(error, RuntimeError) and ("allocate" in text or "out of memory" in text or "not enough memory" in text)
    )


def _describe(error: BaseException, filenames: set[str], seconds: float) -> dict:
    if isinstance(error, CallTimeout):
        return {"kind": ErrorKind.TIMEOUT, "seconds": seconds}
    if isinstance(error, SystemExit):
        return {"kind": ErrorKind.EXIT, "code": str(error.code)}
    kind = (ErrorKind.MEMORY if _is_memory_error(error) else ErrorKind.NOT_IMPLEMENTED
            if isinstance(error, NotImplementedError) else ErrorKind.EXCEPTION)
    return {"kind": kind, "type": type(error).__name__, "traceback": _student_traceback(error, filenames)}


def _run_limited(seconds: float, function, *args, **kwargs):
    """Call ``function`` under a wall-clock alarm (the grader keeps a hard deadline too)."""
    signal.setitimer(signal.ITIMER_REAL, max(seconds, 0.01))
    try:
        return function(*args, **kwargs)
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)


def _load(request: dict, namespace: dict, filenames: set[str]) -> dict:
    """Run each kept statement of the submission; one that fails becomes a note, not a crash."""
    for name, text in request["sources"].items():
        linecache.cache[name] = (len(text), None, text.splitlines(True), name)
        filenames.add(name)
    failed, notes = [], []
    flags = 0  # `from __future__ import annotations` in one cell applies to the cells after it
    for index, chunk in enumerate(request["chunks"]):
        code_text = "\n" * (chunk["line"] - 1) + chunk["source"]  # keeps the cell's line numbers
        started = time.monotonic()
        try:
            code = compile(code_text, chunk["filename"], "exec", flags=flags, dont_inherit=True)
            if chunk["source"].lstrip().startswith("from __future__ import"):
                flags |= sum(getattr(__future__, n).compiler_flag for n in chunk["names"] if hasattr(__future__, n))
            _run_limited(request["seconds"], exec, code, namespace)
        except BaseException as error:  # noqa: BLE001 - anything a top-level statement does is reported
            failed.append(index)
            detail = _describe(error, filenames, time.monotonic() - started)
            notes.append({"chunk": index, **detail})
    defined = sorted(k for k, v in namespace.items() if callable(v) and not k.startswith("__"))
    return {"ok": True, "failed": failed, "notes": notes, "defined": defined}


def child_main(sock: socket.socket, request: dict, objects: dict) -> None:
    """Serve one submission: confine, then answer ``load``/``call``/``exit`` frames."""
    _confine(request)
    import torch

    namespace = {"__name__": "submission", "__builtins__": __builtins__}
    filenames: set[str] = set()

    def resolve(kind, payload):
        if kind == "__ref__":
            if payload not in objects:
                raise wire.WireError(f"the worker did not preload {payload!r}")
            return objects[payload]
        return linear_module(payload["weight"], payload["bias"])

    limit = request["limits"]["message_bytes"]
    while True:
        try:
            message, value = wire.receive(sock, limit, resolve)
        except EOFError:
            return
        except wire.WireError as error:  # a request this worker cannot serve: the grader reports it
            wire.send(sock, {"ok": False, "error": {"kind": ErrorKind.PROTOCOL, "detail": str(error)}})
            continue
        op = message.get("op")
        if op == "exit":
            return
        if op == "load":
            reply, result = _load(message, namespace, filenames), None
        elif op == "call":
            reply, result = _call(message, value, namespace, filenames)
        else:
            reply, result = {"ok": False, "error": {"kind": ErrorKind.PROTOCOL, "detail": f"unknown op {op!r}"}}, None
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except Exception:  # noqa: BLE001 - the submission may have replaced or closed it
                pass
        try:
            wire.send(sock, reply, result)
        except Exception as error:  # noqa: BLE001 - e.g. a result too odd to encode
            wire.send(sock, {"ok": False, "error": {"kind": ErrorKind.UNSENDABLE, "detail": f"{type(error).__name__}: {error}"}})


def _call(message: dict, value, namespace: dict, filenames: set[str]):
    """Run one student function on decoded arguments; return (reply, value to send)."""
    name = message["function"]
    function = namespace.get(name)
    if not callable(function):
        return {"ok": False, "error": {"kind": ErrorKind.MISSING, "function": name}}, None
    args, kwargs = value["args"], value["kwargs"]
    references = _references(message.get("references"))
    started = time.monotonic()
    try:
        with references_in(namespace, references):
            result = _run_limited(message["seconds"], function, *args, **kwargs)
    except BaseException as error:  # noqa: BLE001 - SystemExit and timeouts included: all are feedback
        return {"ok": False, "error": _describe(error, filenames, time.monotonic() - started)}, None
    seconds = time.monotonic() - started
    try:
        observed = {spec["name"]: observe(spec, args) for spec in message.get("observe", [])}
    except BaseException as error:  # noqa: BLE001 - a model the student broke beyond inspection
        return {"ok": False, "error": {**_describe(error, filenames, 0.0), "kind": ErrorKind.OBSERVE}}, None
    return {"ok": True, "seconds": seconds}, {"result": result, "observed": observed}


def _references(request: dict | None) -> dict:
    """The lab's references for the functions a called function calls (``{"lab": "lab1", "names": [...]}``)."""
    if not request:
        return {}
    from book import labs

    available = labs.load(request["lab"]).references
    return {name: available[name] for name in request["names"]}


def main(argv: list[str] | None = None) -> None:
    import json

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--control-fd", type=int, required=True)
    parser.add_argument("--preload", default="", help="comma-separated model roles: encoder,decoder")
    parser.add_argument("--imports", default="", help="comma-separated modules to import besides the common ones")
    args = parser.parse_args(argv)
    control = socket.socket(fileno=args.control_fd)
    started = time.monotonic()
    from autograder.timeline import process_start

    moments = {"python started": process_start()}
    # No garbage collection while torch, transformers and the models load: the collector would walk the
    # hundreds of thousands of objects the imports create, again and again, for almost nothing to free
    # (a quarter of the start-up time). One collection follows, then the objects are frozen.
    gc.disable()
    try:
        objects = preload([r for r in args.preload.split(",") if r], [m for m in args.imports.split(",") if m], moments)
    except Exception as error:  # noqa: BLE001 - reported to the grader, which explains it
        control.send(json.dumps({"op": "failed", "error": f"{type(error).__name__}: {error}"}).encode())
        raise
    unprivileged = can_drop_privileges()
    # Move everything loaded so far out of the garbage collector's sight: a collection in a child
    # would otherwise touch every object and copy the zygote's memory page by page.
    gc.collect()
    return_free_memory()
    gc.freeze()
    gc.enable()  # the children run student code with the collector on, as Python always does
    moments["ready"] = time.time()
    control.send(json.dumps({"op": "ready", "pid": os.getpid(), "seconds": time.monotonic() - started,
                             "unprivileged": unprivileged, "root": os.geteuid() == 0, "moments": moments}).encode())
    serve_zygote(control, objects, unprivileged)
    # The grader closed the socket and every child is gone: end now, without tearing down torch's and the models'
    # modules one object at a time, which the grader would wait for (a tenth to a fifth of a second per submission).
    for stream in (sys.stdout, sys.stderr):
        stream.flush()
    os._exit(0)


if __name__ == "__main__":
    main()
