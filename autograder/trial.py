"""``try``: run a bundle's ``run_autograder`` on a submission as Gradescope would, before uploading the bundle.

The zip is unpacked into a tree laid out like Gradescope's ``/autograder`` (``source/``,
``submission/``, ``results/``, ``submission_metadata.json``), the submission (a file, or a folder
of files as a student uploads them) is put in ``submission/``, and ``run_autograder`` runs with
this machine's Python and models (:func:`autograder.bundle.try_locally`). It prints the score, the
wall time and the peak memory of every process involved (the grader, the worker, the child running
the submission; each page once), and what the student would read::

    llm-grade try lab1-autograder.zip alice.ipynb
    llm-grade try lab1-autograder.zip submissions/alice/ --email alice@example.edu --keep trial/
"""

from __future__ import annotations

import shutil
import sys
import tempfile
from pathlib import Path

from autograder import cli


def main(argv: list[str] | None = None) -> int:
    parser = cli.parser("try")
    parser.add_argument("bundle", type=Path, help="the zip llm-grade bundle wrote")
    parser.add_argument("submission", type=Path, help="a notebook, a .py file, or a folder of them (what a student uploads)")
    parser.add_argument("--email", default="student@example.edu",
                        help="the submitter's email in submission_metadata.json: hidden inputs are drawn for it")
    parser.add_argument("--keep", type=Path, help="keep the /autograder-like tree in this folder (results.json, grader.log)")
    args = parser.parse_args(argv)
    if not args.bundle.is_file():
        parser.error(f"{args.bundle} does not exist: write it with llm-grade bundle --lab <lab>.")
    if not args.submission.exists():
        parser.error(f"{args.submission} does not exist: give a notebook, a .py file or a folder of them.")
    from autograder import bundle

    workspace = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="llm-grade-try-"))
    if args.keep and (workspace / "autograder").exists():
        parser.error(f"{workspace / 'autograder'} exists already: give --keep an empty or new folder.")
    try:
        run = bundle.try_locally(args.bundle, args.submission, workspace, email=args.email)
    except RuntimeError as error:
        print(f"The bundle's run_autograder failed: {error}", file=sys.stderr)
        return 1
    finally:
        if not args.keep:
            shutil.rmtree(workspace, ignore_errors=True)
    results = run.results
    failed = [t for t in results.get("tests", []) if t.get("status") == "failed"]
    print(f"{results.get('score', 0):g} / {results.get('max_score', 0):g} points in {run.seconds:.1f} s, "
          f"peak memory {run.peak_bytes / 2**20:.0f} MiB (every process of run_autograder)")
    if results.get("output"):
        print(results["output"])
    if failed:
        print(f"{len(failed)} failed test(s): " + ", ".join(t["name"] for t in failed))
    if args.keep:
        print(f"The tree is in {run.root}: results/results.json, results/grader.log.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
