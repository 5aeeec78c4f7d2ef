"""The command line: ``llm-grade <verb> ...`` (or ``python -m autograder <verb> ...``), a thin layer over each verb's ``main``.

:data:`VERBS` maps each verb to its module and the line ``llm-grade --help`` prints for it (plain text:
a terminal shows it as it is).
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from pathlib import Path

# verb -> (module, what it does), in the order of a term: grade, release feedback, export grades, Gradescope; then checks.
VERBS = {
    "grade": ("autograder.grade", "grade a submission or a class folder, for one lab or all; resumes where it stopped"),
    "feedback": ("autograder.feedback", "write each student's report of each lab (Markdown and HTML) to release"),
    "gradebook": ("autograder.gradebook", "write the gradebook, or the file Canvas or Moodle imports as it is"),
    "bundle": ("autograder.bundle", "write the Gradescope autograder zip of a lab (one zip per lab)"),
    "try": ("autograder.trial", "run a bundle's run_autograder on a submission, as Gradescope would: score, time, memory"),
    "selftest": ("autograder.selftest", "check that the reference solutions score full marks and the lab stubs zero"),
    "audit": ("autograder.audit", "grade the catalogue of correct, faulty and hostile submissions; report what each got"),
    "bench": ("autograder.bench", "time the grading of generated submissions"),
    "tolerances": ("autograder.tolerances", "measure the evidence behind every numeric tolerance and check them"),
}


def usage() -> str:
    """What ``llm-grade --help`` prints."""
    width = max(len(verb) for verb in VERBS)
    lines = ["usage: llm-grade <command> [options]    (python -m autograder <command> is the same)", "", "commands:"]
    lines += [f"  {verb.ljust(width)}  {what}" for verb, (_, what) in VERBS.items()]
    lines += ["", "llm-grade <command> --help lists a command's options."]
    return "\n".join(lines)


def parser(verb: str) -> argparse.ArgumentParser:
    """A verb's argument parser, described by its line of :data:`VERBS`."""
    what = VERBS[verb][1]
    return argparse.ArgumentParser(prog=f"llm-grade {verb}", description=what[:1].upper() + what[1:] + ".")


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
    """``--secret-file`` and ``--course``: the course secret hidden inputs are drawn from (:func:`secret_from`)."""
    from autograder.seeding import COURSE, SECRET_FILE_ENV

    parser.add_argument("--secret-file", type=Path,
                        help="the course secret (a file): each student's hidden inputs are drawn from it and their id "
                             f"(default: the file named by ${SECRET_FILE_ENV}, else the course's own secret, created "
                             "on first use; see --course)")
    parser.add_argument("--course", default=COURSE,
                        help=f"the course whose own secret is used without --secret-file (default {COURSE}): kept in "
                             "$LLM_GRADE_HOME/courses/<course>/secret, by default ~/.config/llm-grade/courses/<course>/secret")


def secret_from(parser: argparse.ArgumentParser, args, create: bool = True) -> str | None:
    """The secret ``--secret-file`` or ``$LLM_GRADE_SECRET_FILE`` names, else the course's own (created when ``create``
    and missing; where it lies is printed). None only without ``create`` and without a course secret."""
    from autograder.seeding import SecretError, course_secret, read_secret

    try:
        secret = read_secret(args.secret_file)
        if secret is not None:
            return secret
        found = course_secret(getattr(args, "course", None) or "llm-internals", create=create)
    except SecretError as error:
        parser.error(str(error))
    if found is None:
        return None
    if found.created:
        print(f"Created the course secret in {found.path}: hidden inputs are drawn from it and each student's id, and "
              "later runs and bundles reuse it. Keep it private and back it up (a new secret draws new inputs).",
              file=sys.stderr)
    else:
        print(f"Course secret: {found.path}", file=sys.stderr)
    return found.value


def main(argv: list[str] | None = None) -> int:
    from autograder import timeline

    timeline.mark("command line read")
    program = argv is None  # the command itself, not a call from Python (a test)
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] in ("-h", "--help"):
        print(usage())
        return 0
    if not argv or argv[0] not in VERBS:
        print(usage(), file=sys.stderr)
        if argv:
            print(f"\nUnknown command {argv[0]!r}: use one of {', '.join(VERBS)}.", file=sys.stderr)
        return 2
    if program and argv[0] == "grade":
        # No garbage collection while torch, transformers and the models load (a quarter of a cold start goes to
        # collections that free almost nothing): the grader turns it back on once its expected values are computed.
        import gc

        gc.disable()
    code = importlib.import_module(VERBS[argv[0]][0]).main(argv[1:])
    if program and argv[0] == "grade":
        exit_at_once(code)
    return code


def exit_at_once(code: int) -> None:
    """End the process now, its output flushed: tearing down torch's and transformers' modules takes about a
    second, which every Gradescope submission would pay for nothing (the grader has closed its sandbox and
    written its results, and registers no exit handlers)."""
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            pass
    os._exit(code)
