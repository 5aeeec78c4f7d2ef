"""What decides a lab's result, recorded beside it, so that a new run grades again exactly what changed and says why.

A lab's result is decided by five things, and a class run skips a lab only when all five are
what they were when it was graded (its record's ``decided_by``):

* ``submission``: the SHA-256 of the file graded;
* ``seed`` and ``secret``: the seed its hidden inputs were drawn from and a fingerprint of the
  course secret (:func:`autograder.seeding.fingerprint`, which reveals nothing of it): a new
  secret, a new identity for the student (a roster) or ``--seed`` draws other inputs;
* ``grader``: the code that runs and judges every submission (reading it, the sandbox, the
  calls, the comparisons), a hash of its sources;
* ``spec``: the lab's tests and truth (its spec module and ``book/labs/<lab>.py``);
* ``tolerances``: the tolerance of every dtype in force (:data:`book.labs.compare.TOLERANCES`).

:func:`why_regrade` names the first of them that changed, in words the run prints
("the course secret changed"), or None when the recorded result still stands.
"""

from __future__ import annotations

import functools
import hashlib
import importlib
from pathlib import Path

# The modules whose code decides every lab's result (besides the lab's own spec and truth).
ENGINE = ("autograder.extract", "autograder.sandbox", "autograder.session", "autograder.spec", "autograder.wire",
          "autograder.worker", "autograder.isolation", "autograder.seeding", "book.labs", "book.labs.calls",
          "book.labs.compare")
# The order reasons are looked for in, and how the run says each.
REASONS = {
    "submission": "a new file was submitted",
    "secret": "the course secret changed",
    "seed": "the hidden inputs are drawn for another identity or seed",
    "grader": "the grader's code changed",
    "spec": "the lab's tests changed",
    "tolerances": "the tolerances changed",
}
NEW = "for the first time"
UNRECORDED = "graded by an earlier llm-grade that did not record what decided the result"


def _hash_sources(modules: tuple[str, ...]) -> str:
    digest = hashlib.sha256()
    for name in modules:
        path = Path(importlib.import_module(name).__file__)
        digest.update(name.encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()[:16]


@functools.lru_cache(maxsize=1)
def grader_version() -> str:
    """A hash of the sources of :data:`ENGINE`."""
    return _hash_sources(ENGINE)


@functools.lru_cache(maxsize=None)
def spec_version(lab: str) -> str:
    """A hash of ``lab``'s spec module and its truth (``book/labs/<lab>.py``)."""
    from autograder import specs

    return _hash_sources((specs.load(lab).__name__, f"book.labs.{lab}"))


def tolerance_version() -> str:
    """A hash of the tolerance of every dtype in force, and of the GPU slack."""
    from book.labs.compare import GPU_SLACK, TOLERANCES

    table = sorted((str(dtype), t.atol, t.rtol, GPU_SLACK.get(dtype, 1.0)) for dtype, t in TOLERANCES.items())
    return hashlib.sha256(repr(table).encode()).hexdigest()[:16]


def decided_by(lab: str, sha256: str | None, seed: int, secret_fingerprint: str | None) -> dict:
    """What decides ``lab``'s result for a submission with ``sha256`` graded with ``seed`` under a secret."""
    return {"submission": sha256, "seed": str(seed), "secret": secret_fingerprint, "grader": grader_version(),
            "spec": spec_version(lab), "tolerances": tolerance_version()}


def why_regrade(recorded: dict | None, now: dict, graded: bool = True) -> str | None:
    """Why a lab recorded with ``recorded`` must be graded again under ``now``; None when its result still stands.

    ``graded`` is false when there is no record of the lab at all.
    """
    if not graded:
        return NEW
    if not recorded:
        return UNRECORDED
    for key, reason in REASONS.items():
        if recorded.get(key) != now.get(key):
            return reason
    return None
