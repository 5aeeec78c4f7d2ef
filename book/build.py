"""Build the HTML book without stale outputs, and time cold and warm builds.

myst-nb executes every page in *cache* mode: a page is re-executed only when its code cells
change. That key knows nothing of what the cells *import*: a change to ``book/`` or
``solutions/``, to the corpus, to the model profile, to a library version or to the device
would otherwise leave last week's outputs in this week's book. So before each build this module
computes a fingerprint of all of those and compares it with the one stored beside the
execution cache; when they differ it deletes the cache and the parsed pages, and every page is
executed again.

Nothing in the fingerprint is listed by hand. The code is every package this checkout installs
(read from its ``pyproject.toml`` files: the course runtime and the instructors' side, so the grader
the instructors' page runs is covered), data files included; the library versions are those of
every distribution that the pages or that code import.

Usage::

    python -m book.build               # build into _build/html
    python -m book.build --benchmark   # print cold (no cache) and warm (no change) build times

After a successful build it writes the reading report (:mod:`book.reading`) to
``_build/reading-report.md`` and ``.json``.
"""

from __future__ import annotations

import argparse
import ast
import fnmatch
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from importlib import metadata
from pathlib import Path

from book import ROOT
FINGERPRINT_FILE = "execution-fingerprint.json"
# The reading report (book/reading.py) each successful build writes beside the HTML (.json and .md).
READING_REPORT = "reading-report"
# Ignored folders the build reads that a copy of the sources links to instead of copying.
INSTALLED_ASSETS = ("node_modules",)
# jupyter-book's command line, run with this interpreter (its module has no __main__ guard).
JUPYTER_BOOK = [sys.executable, "-c", "import sys; from jupyter_book.cli.main import main; sys.exit(main())"]


def _hash_tree(digest, root: Path, relative_to: Path) -> None:
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        if "__pycache__" in path.parts or path.suffix == ".pyc":
            continue
        digest.update(path.relative_to(relative_to).as_posix().encode())
        digest.update(path.read_bytes())


def first_party_packages(root: Path = ROOT) -> list[str]:
    """The top-level packages this checkout installs, from its ``pyproject.toml`` files (the root's and the
    ones a folder down, such as ``instructor/``): setuptools' ``packages`` lists and ``packages.find`` patterns."""
    try:
        import tomllib
    except ImportError:  # Python 3.10: every folder of the checkout that is a package
        return sorted(p.parent.name for p in Path(root).glob("*/__init__.py"))
    names: set[str] = set()
    for project in [Path(root) / "pyproject.toml", *sorted(Path(root).glob("*/pyproject.toml"))]:
        if not project.is_file():
            continue
        setuptools = tomllib.loads(project.read_text()).get("tool", {}).get("setuptools", {})
        base = (project.parent / setuptools.get("package-dir", {}).get("", ".")).resolve()
        names |= {name.split(".")[0] for name in setuptools.get("packages", []) if (base / name.split(".")[0]).is_dir()}
        found = setuptools.get("packages", {}) if isinstance(setuptools.get("packages"), dict) else {}
        for pattern in found.get("find", {}).get("include", []):
            names |= {p.parent.name for p in base.glob("*/__init__.py") if fnmatch.fnmatch(p.parent.name, pattern)}
    return sorted(names)


def imported_modules(root: Path = ROOT) -> set[str]:
    """The top-level modules imported by the pages' code cells and by the checkout's own packages."""
    from book import notebooks

    sources = [cell for page in notebooks.paired_pages(root) for cell in notebooks.code_cells(page)]
    sources += [path.read_text(encoding="utf-8") for name in first_party_packages(root) for path in (Path(root) / name).rglob("*.py")
                if "catalogue" not in path.parts]
    found: set[str] = set()
    for source in sources:
        try:
            trees = [ast.parse(source)]
        except SyntaxError:  # a cell with IPython syntax (%pip, !ls): its import lines still count, one by one
            trees = []
            for line in source.splitlines():
                if re.match(r"\s*(import|from)\s", line):
                    try:
                        trees.append(ast.parse(line.strip()))
                    except SyntaxError:  # a multi-line import: its first line is enough to name the module
                        trees.append(ast.parse(line.strip().split("(")[0].rstrip() + " x" if " import " in line else "pass"))
        for node in (node for tree in trees for node in ast.walk(tree)):
            if isinstance(node, ast.Import):
                found |= {alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                found.add(node.module.split(".")[0])
    return found


def library_versions(root: Path = ROOT) -> dict[str, str | None]:
    """The version of every installed distribution that provides a module the pages or the course's code import."""
    providers = metadata.packages_distributions()
    names = sorted({dist for module in imported_modules(root) for dist in providers.get(module, [])})
    versions = {}
    for name in names:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def fingerprint(root: Path = ROOT) -> dict:
    """Everything outside the cells that decides what the cells print.

    Returns a dict of parts (code hash, corpus hash, profile, device, package versions) so a
    rebuild can say *what* changed.
    """
    from book import corpus, models

    code = hashlib.sha256()
    for name in first_party_packages(root):
        _hash_tree(code, root / name, root)
    source = corpus.corpus_source()
    data = hashlib.sha256()
    if source.is_dir():
        _hash_tree(data, source, source)
    elif source.is_file():
        data.update(source.read_bytes())
    versions = library_versions(root)
    return {
        "code": code.hexdigest(),
        "corpus": data.hexdigest(),
        "profile": models.profile(),
        "device": _device_name(),
        "versions": versions,
    }


def _device_name() -> str:
    import torch

    return torch.cuda.get_device_name(0) if torch.cuda.is_available() else "cpu"


def invalidate_if_stale(build_dir: Path, current: dict) -> list[str]:
    """Delete the execution cache and parsed pages under ``build_dir`` if ``current`` differs from the stored fingerprint.

    Returns the names of the parts that changed (empty when the cache is still valid, or when
    there was no cache yet). Writes the current fingerprint either way.
    """
    build_dir = Path(build_dir)
    stored_file = build_dir / FINGERPRINT_FILE
    changed: list[str] = []
    if stored_file.is_file():
        try:
            stored = json.loads(stored_file.read_text())
        except json.JSONDecodeError:
            stored = {}
        changed = sorted(key for key in current.keys() | stored.keys() if current.get(key) != stored.get(key))
    elif (build_dir / ".jupyter_cache").exists():
        changed = ["unknown (no fingerprint stored)"]
    if changed:
        for stale in (".jupyter_cache", ".doctrees", "html", "jupyter_execute"):
            shutil.rmtree(build_dir / stale, ignore_errors=True)
    build_dir.mkdir(parents=True, exist_ok=True)
    stored_file.write_text(json.dumps(current, indent=2, sort_keys=True))
    return changed


def build(root: Path = ROOT, extra_args: tuple[str, ...] = ()) -> int:
    """Build the book in ``root`` into ``root/_build/html``; returns jupyter-book's exit code."""
    root = Path(root)
    changed = invalidate_if_stale(root / "_build", fingerprint(root))
    if changed:
        print(f"Execution cache cleared: {', '.join(changed)} changed since the last build.", flush=True)
    env = dict(os.environ, TOKENIZERS_PARALLELISM="false", PYTHONPATH=str(root))
    command = JUPYTER_BOOK + ["build", str(root), *extra_args]
    code = subprocess.call(command, cwd=root, env=env)
    if code == 0:
        from book import reading

        reading.write(root / "_build" / "html", root / "_build" / READING_REPORT, root)
    return code


def _copy_sources(root: Path, destination: Path) -> None:
    """Copy the book's sources (tracked and untracked, not ignored) into ``destination``."""
    listed = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"],
        cwd=root, check=True, capture_output=True,
    ).stdout.decode().split("\0")
    for name in filter(None, listed):
        source = root / name
        if source.is_file():
            target = destination / name
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target)
    # Installed front-end assets (MathJax, see book/sphinx_site.py) are ignored by git but needed
    # by the build: link them into the copy instead of installing them again.
    for installed in INSTALLED_ASSETS:
        if (root / installed).is_dir() and not (destination / installed).exists():
            (destination / installed).symlink_to((root / installed).resolve(), target_is_directory=True)


def benchmark(root: Path = ROOT) -> dict[str, float]:
    """Time a cold build (empty cache, in a fresh copy of the sources) and a warm rebuild (no change)."""
    times = {}
    with tempfile.TemporaryDirectory(prefix="llm-internals-bench-") as tmp:
        copy = Path(tmp)
        _copy_sources(root, copy)
        for label in ("cold", "warm"):
            start = time.perf_counter()
            code = build(copy, ("--quiet",))
            times[label] = time.perf_counter() - start
            if code != 0:
                raise SystemExit(f"The {label} build failed (exit code {code}): run `make book` to see why.")
    return times


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--benchmark", action="store_true", help="print cold and warm build times")
    args = parser.parse_args(argv)
    if args.benchmark:
        times = benchmark()
        print(f"cold build (no cache):         {times['cold']:7.1f} s")
        print(f"warm rebuild (nothing changed): {times['warm']:7.1f} s")
        return 0
    return build()


if __name__ == "__main__":
    sys.exit(main())
