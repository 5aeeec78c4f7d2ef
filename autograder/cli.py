"""The command line: ``llm-grade <verb> ...`` (or ``python -m autograder <verb> ...``), a thin layer over each verb's ``main``.

* ``grade``: grade a submission or a folder of them (:mod:`autograder.grade`);
* ``selftest``: the reference solutions must score full marks, the lab stubs zero (:mod:`autograder.selftest`);
* ``bench``: generate submissions and time their grading (:mod:`autograder.bench`);
* ``audit``: grade the catalogue of correct, faulty and hostile submissions and report what each got (:mod:`autograder.audit`);
* ``bundle``: write the Gradescope autograder zip of a lab or all labs (:mod:`autograder.bundle`);
* ``tolerances``: measure how far correct implementations disagree and check each check's tolerance against it (:mod:`autograder.tolerances`).
"""

from __future__ import annotations

import importlib
import sys

VERBS = {
    "grade": "autograder.grade",
    "selftest": "autograder.selftest",
    "bench": "autograder.bench",
    "audit": "autograder.audit",
    "bundle": "autograder.bundle",
    "tolerances": "autograder.tolerances",
}


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help") or argv[0] not in VERBS:
        known = ", ".join(VERBS)
        print(__doc__.strip(), file=sys.stderr)
        if argv and argv[0] not in ("-h", "--help"):
            print(f"\nUnknown command {argv[0]!r}: use one of {known}.", file=sys.stderr)
            return 2
        return 0 if argv else 2
    return importlib.import_module(VERBS[argv[0]]).main(argv[1:])
