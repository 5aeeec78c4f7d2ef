"""Where the time of one grading process goes: moments on the wall clock, from the process's own start.

A cold ``llm-grade grade`` (one Gradescope submission) pays fixed costs before its first test:
the interpreter, the grader's imports, starting the sandbox (bubblewrap, then the worker's own
imports and models, in parallel with the grader), computing expected values. The grader and the
worker each note when they reach a moment (:func:`mark`); ``llm-grade grade --timings FILE``
writes them all, in seconds since the grader's process started, and :func:`breakdown` turns
them into the spans the peer benchmark prints (:mod:`autograder.peer`).

Standard library only: the command line imports this before anything heavy.
"""

from __future__ import annotations

import json
import os
import threading
import time
from pathlib import Path


def process_start() -> float:
    """When this process started, on the wall clock (``time.time()``); now where /proc cannot tell."""
    try:
        with open("/proc/self/stat") as stat:
            ticks = int(stat.read().rsplit(")", 1)[1].split()[19])  # field 22: start time, in clock ticks after boot
        with open("/proc/uptime") as uptime:
            since_boot = float(uptime.read().split()[0])
        return time.time() - (since_boot - ticks / os.sysconf("SC_CLK_TCK"))
    except (OSError, ValueError, IndexError):
        return time.time()


_lock = threading.Lock()
_marks: list[tuple[str, float]] = []  # (moment, time.time())


def mark(moment: str, when: float | None = None) -> None:
    """Note that this process reached ``moment`` (now, or at ``when`` on the wall clock)."""
    with _lock:
        _marks.append((moment, time.time() if when is None else when))


def marks() -> list[tuple[str, float]]:
    with _lock:
        return list(_marks)


def write(path: Path) -> None:
    """Write this process's moments as JSON: ``{"moments": [[moment, seconds since the process started], ...]}``."""
    start = process_start()
    moments = [[moment, round(when - start, 4)] for moment, when in sorted(marks(), key=lambda m: m[1])]
    Path(path).write_text(json.dumps({"moments": moments}, indent=1) + "\n")


# What the time before each moment went to (the span ends at that moment). The grader's lane starts with the process;
# the worker's lane (the sandbox's moments) starts when the sandbox starts, in a thread of the grader, in parallel.
GRADER = {
    "command line read": "Python starts, reads the command line",
    "grader imported": "imports (torch, the verb's modules)",
    "truths started": "the lab's specs loaded, the sandbox's start begun",
    # The expected values are computed in a thread of their own, from "truths started", while the grader waits for
    # the worker and then grades: a test waits only for the values it needs.
    "sandbox ready": "until the worker is ready (expected values computed meanwhile)",
    "truths ready": "until the expected values are all computed (grading meanwhile, once the worker is ready)",
    "graded": "grading: the tests, each call in a child of the worker",
    "results written": "results written",
    "sandbox closed": "sandbox closed",
}
WORKER = {
    "worker launched": "bubblewrap probed, folders made",
    "worker: python started": "bubblewrap and Python start",
    "worker: imported": "imports (torch, the lab's libraries)",
    "worker: ready": "models loaded and run once, ready to fork",
}


def breakdown(moments: dict[str, float], total: float | None = None) -> list[tuple[str, str, float, float]]:
    """The spans of a run from its moments (seconds since start): (lane, what, start, seconds), in order of start.

    ``total`` (the process's wall time, measured from outside) adds the span after the grader's
    last moment: the interpreter's exit.
    """
    rows = []
    for lane, labels, origin in (("grader", GRADER, 0.0), ("worker", WORKER, moments.get("sandbox starting"))):
        if origin is None:
            continue
        previous = origin
        for when, moment in sorted((moments[m], m) for m in labels if m in moments):
            rows.append((lane, labels[moment], previous, max(0.0, when - previous)))
            previous = when
        if lane == "grader" and total is not None:
            rows.append((lane, "process exit", previous, max(0.0, total - previous)))
    return sorted(rows, key=lambda row: (row[2], row[0]))
