"""Benchmark the autograder: generate 100 submissions (correct and faulty) over the three labs, grade them, print time and memory.

Usage: ``python scripts/bench_grading.py [--submissions 100] [--jobs 2] [--keep DIR] [--json]``
(the same as ``python -m autograder bench``; see :mod:`autograder.bench`).
"""

import sys

from autograder.bench import main

if __name__ == "__main__":
    sys.exit(main())
