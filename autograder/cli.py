"""The command line: ``llm-grade <verb> ...`` (or ``python -m autograder <verb> ...``), a thin layer over each verb's ``main``.

* ``grade``: grade a submission or a folder of them (:mod:`autograder.grade`);
* ``selftest``: the reference solutions must score full marks, the lab stubs zero (:mod:`autograder.selftest`);
* ``bench``: generate submissions and time their grading (:mod:`autograder.bench`);
* ``audit``: grade the catalogue of correct, faulty and hostile submissions and report what each got (:mod:`autograder.audit`);
* ``bundle``: write the Gradescope autograder zip of a lab or all labs (:mod:`autograder.bundle`);
* ``tolerances``: measure how far correct implementations disagree and check each check's tolerance against it (:mod:`autograder.tolerances`).
"""

from __future__ import annotations

import argparse
import importlib
import sys
from pathlib import Path

VERBS = {
    "grade": "autograder.grade",
    "selftest": "autograder.selftest",
    "bench": "autograder.bench",
    "audit": "autograder.audit",
    "bundle": "autograder.bundle",
    "tolerances": "autograder.tolerances",
}


# --- the options several verbs share, declared once --------------------------------------------------------------


def lab_option(parser: argparse.ArgumentParser, note: str = "") -> None:
    """``--lab``: one lab or all of them (checked by :func:`labs_from`)."""
    from autograder import specs

    parser.add_argument("--lab", default="all", help=f"{', '.join(specs.select('all'))} or all (default){note}")


def labs_from(parser: argparse.ArgumentParser, args) -> list[str]:
    """The labs ``--lab`` names, or the parser's error naming the choices."""
    from autograder import specs

    try:
        return specs.select(args.lab)
    except ValueError as error:
        parser.error(str(error))


def limits_options(parser: argparse.ArgumentParser) -> None:
    """``--call-seconds``, ``--submission-seconds`` and ``--memory-gb``: a submission's limits (:func:`limits_from`)."""
    from autograder.sandbox import Limits

    parser.add_argument("--call-seconds", type=float, default=Limits.call_seconds, help="time limit of one function call")
    parser.add_argument("--submission-seconds", type=float, default=Limits.submission_seconds,
                        help="time limit of all the calls of one lab of one submission")
    parser.add_argument("--memory-gb", type=float, default=Limits.memory_bytes / 2**30, help="memory one submission may add")


def limits_from(args):
    from autograder.sandbox import Limits

    return Limits(call_seconds=args.call_seconds, submission_seconds=args.submission_seconds,
                  memory_bytes=int(args.memory_gb * 2**30))


def isolation_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--isolation", choices=("auto", "bubblewrap", "none"), default="auto",
                        help="where submissions run: inside bubblewrap where it can start (auto, the default), "
                             "only there (bubblewrap), or with process-level limits only (none)")


def jobs_option(parser: argparse.ArgumentParser, default: int, what: str = "submissions") -> None:
    parser.add_argument("--jobs", type=int, default=default, help=f"{what} graded side by side (default {default}; "
                                                                  "about one per CPU core)")


def secret_option(parser: argparse.ArgumentParser) -> None:
    """``--secret-file``: the course secret hidden inputs are drawn from (:func:`secret_from`)."""
    from autograder.seeding import SECRET_FILE_ENV

    parser.add_argument("--secret-file", type=Path,
                        help="the course secret (a file): each student's hidden inputs are drawn from it and their id "
                             f"(default: the file named by ${SECRET_FILE_ENV}; without one, from the id alone)")


def secret_from(parser: argparse.ArgumentParser, args) -> str | None:
    from autograder.seeding import SecretError, read_secret

    try:
        return read_secret(args.secret_file)
    except SecretError as error:
        parser.error(str(error))


def main(argv: list[str] | None = None) -> int:
    from autograder import timeline

    timeline.mark("command line read")
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help") or argv[0] not in VERBS:
        known = ", ".join(VERBS)
        print(__doc__.strip(), file=sys.stderr)
        if argv and argv[0] not in ("-h", "--help"):
            print(f"\nUnknown command {argv[0]!r}: use one of {known}.", file=sys.stderr)
            return 2
        return 0 if argv else 2
    return importlib.import_module(VERBS[argv[0]]).main(argv[1:])
