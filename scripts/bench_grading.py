"""Benchmark the autograder: generate a class (correct and faulty submissions) over the three labs, grade it, print time and memory.

Usage: ``python scripts/bench_grading.py [--students 200 | --submissions 100] [--jobs 2] [--keep DIR] [--json]``
(the same as ``python -m autograder bench``; see :mod:`autograder.bench`).
"""

import sys

from autograder.bench import main

if __name__ == "__main__":
    sys.exit(main())
