"""Reference solutions of the graded labs, one module per lab.

* :mod:`solutions.attention`: lab 1, scaled dot-product attention, heads and grouped-query attention.
* :mod:`solutions.pooling`: lab 2, pooling token states into sentence embeddings.
* :mod:`solutions.tokens`: lab 3, adding tokens to a tokenizer and its embedding matrix.

The labs' public self-checks (:mod:`book.labcheck`) never import this package: they compare a
student's functions with torch, transformers and sentence-transformers directly. The tests in
``tests/test_solutions.py`` hold these references to the same truths, and ``tests/test_labs.py``
runs each lab with them substituted for the stubs.
"""
