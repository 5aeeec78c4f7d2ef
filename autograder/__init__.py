"""The LLM Internals autograder: grade lab submissions in a sandbox, write JSON, CSV and Gradescope results.

Split by verb, each with a ``main()`` behind ``python -m autograder <verb>`` (:mod:`autograder.cli`):

* :mod:`autograder.grade`: grade one submission or a folder of them (``grade``);
* :mod:`autograder.selftest`: the reference solutions score full marks and the lab stubs zero (``selftest``);
* :mod:`autograder.bench`: time the grading of generated submissions (``bench``);
* :mod:`autograder.audit`: grade the catalogue of correct, faulty and hostile submissions in
  ``autograder/catalogue/`` and check that each gets what it declares (``audit``).

Underneath, one concept per module: :mod:`~autograder.extract` (what of a notebook is run),
:mod:`~autograder.sandbox` and :mod:`~autograder.worker` (where it runs: a forked, confined
worker), :mod:`~autograder.isolation` (the bubblewrap sandbox around it, and which protections
are on), :mod:`~autograder.wire` (plain data across the boundary), :mod:`~autograder.spec` and
:mod:`~autograder.specs` (the graded tests, over the labs' truth in :mod:`book.labs`), :mod:`book.labs.compare` (feedback and
tolerances), :mod:`~autograder.results` (the files written).

This package is imported by the worker before it runs student code, so it imports nothing here.
"""
