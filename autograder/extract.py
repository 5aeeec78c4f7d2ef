"""Reading a submission: the definitions a student wrote, and nothing else their notebook ran.

A submission is the lab notebook downloaded from Colab (``.ipynb``) or a Python file (``.py``,
plain or in jupytext's ``# %%`` cell format). The grader keeps only the top-level statements
that *define* something, found with :mod:`ast`:

* imports (``import torch``, ``from torch import nn``);
* function and class definitions, with their decorators;
* constants: an ``UPPER_CASE`` name bound to anything (``NEG_INF = float("-inf")``), any name
  bound to a literal (``eps = 1e-9``), or an alias of something imported (``F = torch.nn.functional``).

Everything else a notebook does (loading models, exploring, printing, plotting, the lab's own
checks) is left out, so a graded function cannot lean on a variable from another cell, and
grading does not pay for the student's experiments.

IPython syntax is removed before parsing: line magics (``%time``), shell lines (``!pip``),
help lines (``name?``) and assignments from either (``files = !ls``) become ``pass``; a cell
starting with ``%%time`` or ``%%capture`` keeps its Python body, and other cell magics
(``%%bash``, ``%%writefile``...) are skipped. A cell that still does not parse is skipped with
a note. A submission is refused, with a :class:`SubmissionError` that says what to do, only
when it cannot be read at all (empty, not UTF-8, not a notebook, larger than :data:`MAX_BYTES`,
which is checked before reading) or defines no function.
"""

from __future__ import annotations

import ast
import hashlib
import json
import re
import threading
from dataclasses import dataclass, field
from pathlib import Path

SUFFIXES = (".ipynb", ".py")
# Larger files are refused before they are read: a lab notebook is a few hundred kB, a few MB with
# plots in its outputs.
MAX_BYTES = 32 << 20
PYTHON_CELL_MAGICS = {"time", "capture", "timeit", "prun"}  # cell magics whose body is Python
_IPYTHON_LINE = re.compile(r"^\s*([%!]|[\w.]+\s*=\s*[%!]|[\w.\[\]()]+\?{1,2}\s*$)")
_CELL_MARKER = re.compile(r"^# (%%|In\[[ \d]*\]:)", re.MULTILINE)
_UPPER = re.compile(r"^_*[A-Z][A-Z0-9_]*$")
_PARSE_LOCK = threading.Lock()


class SubmissionError(ValueError):
    """A file the grader cannot take as a submission; the message says why and what to do."""


@dataclass(frozen=True)
class Chunk:
    """One kept top-level statement, with where it came from so that tracebacks point at it."""

    filename: str  # "code cell 4" for a notebook, the file's name for a .py file
    line: int  # the statement's first line (its first decorator) within that cell
    source: str
    kind: str  # "import", "function", "class" or "constant"
    names: tuple[str, ...]


@dataclass(frozen=True)
class Submission:
    """What the grader runs of one file: the kept statements in order, and notes on what was skipped."""

    path: str
    chunks: tuple[Chunk, ...]
    sources: dict  # cleaned source of each cell by filename, for tracebacks with source lines
    notes: tuple[str, ...]
    sha256: str
    unparsed: dict = field(default_factory=dict)  # name -> why: what cells that are not valid Python seem to define

    @property
    def functions(self) -> tuple[str, ...]:
        """The names of the top-level functions, in order of definition (redefinitions once)."""
        names = [n for c in self.chunks if c.kind == "function" for n in c.names]
        return tuple(dict.fromkeys(names))


def clean_cell(source: str) -> str | None:
    """A code cell with IPython syntax replaced by ``pass`` (same line numbers); None for a non-Python cell magic."""
    lines = source.splitlines()
    if lines and lines[0].lstrip().startswith("%%"):
        magic = lines[0].lstrip()[2:].split()[0] if lines[0].lstrip()[2:].split() else ""
        if magic not in PYTHON_CELL_MAGICS:
            return None
        lines[0] = ""
    cleaned = []
    for line in lines:
        if _IPYTHON_LINE.match(line):
            indent = line[: len(line) - len(line.lstrip())]
            line = f"{indent}pass"
        cleaned.append(line)
    return "\n".join(cleaned) + "\n"


def _is_literal(node: ast.expr) -> bool:
    try:
        ast.literal_eval(node)
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        return False
    return True


def _root_name(node: ast.expr) -> str | None:
    while isinstance(node, ast.Attribute):
        node = node.value
    return node.id if isinstance(node, ast.Name) else None


def _classify(node: ast.stmt, imported: set[str]) -> tuple[str, tuple[str, ...]] | None:
    """(kind, names) for a statement the grader keeps, None for one it leaves out."""
    if isinstance(node, (ast.Import, ast.ImportFrom)):
        names = tuple((a.asname or a.name).split(".")[0] for a in node.names)
        return "import", names
    if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
        return "function", (node.name,)
    if isinstance(node, ast.ClassDef):
        return "class", (node.name,)
    if isinstance(node, (ast.Assign, ast.AnnAssign)) and node.value is not None:
        targets = node.targets if isinstance(node, ast.Assign) else [node.target]
        if not all(isinstance(t, ast.Name) for t in targets):
            return None
        names = tuple(t.id for t in targets)
        alias = isinstance(node.value, (ast.Name, ast.Attribute)) and _root_name(node.value) in imported
        if all(_UPPER.match(n) for n in names) or _is_literal(node.value) or alias:
            return "constant", names
    return None


def from_cells(cells: list[str], path: str, sha256: str, filename: str | None = None) -> Submission:
    """The submission made of these code cells (``filename``: one name for every cell, for a plain .py file)."""
    chunks, sources, notes = [], {}, []
    unparsed: dict[str, str] = {}
    imported: set[str] = set()
    ignored = 0
    for number, raw in enumerate(cells, start=1):
        name = filename or f"code cell {number}"
        source = clean_cell(raw)
        if source is None:
            notes.append(f"{name} was skipped: it is a `{raw.lstrip().split()[0]}` cell, not Python.")
            continue
        if not source.strip():
            continue
        try:
            tree = ast.parse(source, filename=name)
        except (SyntaxError, ValueError, RecursionError, MemoryError) as error:  # too deeply nested: not Python either
            where = f", line {error.lineno}" if getattr(error, "lineno", None) else ""
            why = f"{type(error).__name__}: {getattr(error, 'msg', error)}{where}"
            notes.append(f"{name} was skipped: it is not valid Python ({why}); fix it if it defines a graded function.")
            for defined in re.findall(r"^(?:async\s+)?(?:def|class)\s+(\w+)", source, re.MULTILINE):
                unparsed.setdefault(defined, f"{name}, which is not valid Python ({why})")
            continue
        sources[name] = source
        lines = source.splitlines()
        for node in tree.body:
            kept = _classify(node, imported)
            if kept is None:
                ignored += 1
                continue
            kind, names = kept
            if kind == "import":
                imported.update(names)
            first = min([node.lineno] + [d.lineno for d in getattr(node, "decorator_list", [])])
            text = "\n".join(lines[first - 1 : node.end_lineno]) + "\n"
            chunks.append(Chunk(name, first, text, kind, names))
    if ignored:
        notes.append(f"{ignored} top-level statement(s) that are not imports, definitions or constants "
                     "(model loading, exploration, checks) were not run by the grader.")
    submission = Submission(path, tuple(chunks), sources, tuple(notes), sha256, unparsed)
    if not submission.functions:
        if unparsed:  # the functions are there, in code that does not parse
            where = next(iter(unparsed.values()))
            raise SubmissionError(f"{Path(path).name} defines no function the grader can run: they are in {where}. "
                                  "Fix the error (run the code once to check) and submit again.")
        raise SubmissionError(f"{Path(path).name} defines no function the grader can find: submit the lab "
                              "notebook with your functions defined at the top level of its code cells.")
    return submission


def _notebook_cells(text: str, name: str) -> list[str]:
    try:
        notebook = json.loads(text)
    except json.JSONDecodeError as error:
        raise SubmissionError(f"{name} is not a valid notebook (invalid JSON at line {error.lineno}): download it "
                              "again from Colab with File > Download > Download .ipynb, or submit a .py file.") from None
    except RecursionError:
        raise SubmissionError(f"{name} is not a valid notebook (its JSON is nested too deeply to read): download it "
                              "again from Colab with File > Download > Download .ipynb, or submit a .py file.") from None
    if not isinstance(notebook, dict) or not isinstance(notebook.get("cells"), list):
        raise SubmissionError(f"{name} is JSON but not a Jupyter notebook (it has no list of cells): "
                              "submit the lab's .ipynb file itself.")
    cells = []
    for cell in notebook["cells"]:
        if isinstance(cell, dict) and cell.get("cell_type") == "code":
            source = cell.get("source", "")
            cells.append("".join(source) if isinstance(source, list) else str(source))
    return cells


def load_submission(path: str | Path) -> Submission:
    """Read a ``.ipynb`` or ``.py`` submission and keep its definitions (see the module docstring)."""
    # One parse at a time: CPython 3.11's parser is not safe in concurrent threads (it can raise
    # "SystemError: AST constructor recursion depth mismatch"), and grading runs students in threads.
    with _PARSE_LOCK:
        return _load_submission(Path(path))


def _load_submission(path: Path) -> Submission:
    if path.suffix not in SUFFIXES:
        raise SubmissionError(f"{path.name} is not a notebook or a Python file: submit the lab as .ipynb or .py.")
    try:
        size = path.stat().st_size
        if size > MAX_BYTES:
            raise SubmissionError(f"{path.name} is {size / 2**20:.0f} MB, more than the {MAX_BYTES >> 20} MB a submission "
                                  "may be: clear the notebook's outputs (Edit > Clear all outputs), save, and download it again.")
        with open(path, "rb") as handle:
            data = handle.read(MAX_BYTES + 1)  # a file still growing is not read past the limit either
    except OSError as error:
        raise SubmissionError(f"{path} cannot be read ({error.strerror}): check the path and its permissions.") from None
    if len(data) > MAX_BYTES:
        raise SubmissionError(f"{path.name} is more than the {MAX_BYTES >> 20} MB a submission may be: clear the "
                              "notebook's outputs (Edit > Clear all outputs), save, and download it again.")
    if not data.strip():
        raise SubmissionError(f"{path.name} is empty: save the notebook before downloading it, then submit it again.")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise SubmissionError(f"{path.name} is not UTF-8 text: submit the notebook as Colab or Jupyter saves it.") from None
    sha256 = hashlib.sha256(data).hexdigest()
    if path.suffix == ".ipynb":
        return from_cells(_notebook_cells(text, path.name), str(path), sha256)
    try:  # a plain script: one cell named after the file
        ast.parse(clean_cell(text) or "")
        return from_cells([text], str(path), sha256, filename=path.name)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        pass
    parts = _CELL_MARKER.split(text)  # jupytext percent format: grade it cell by cell
    if len(parts) == 1:  # no cells: a plain script that does not parse
        return from_cells([text], str(path), sha256, filename=path.name)
    cells = [parts[0]] + [parts[i + 1] for i in range(1, len(parts) - 1, 2)]
    return from_cells(cells, str(path), sha256)
