"""The labs' public checks agree with the grader on the whole catalogue (issue: one truth per lab).

Every correct submission passes every public check and scores full marks; every faulty one fails
exactly the public checks of the rules whose graded tests it fails (the public checks cover every
rule: hidden ones on their template cases), with the same likely causes the grader gives, and
the phrase its header says names the cause. ``llm-grade audit --public`` prints the same table.
"""

from __future__ import annotations

import pytest

from autograder import audit

ENTRIES = [e for e in audit.load() if e.kind in ("correct", "faulty")]


@pytest.mark.parametrize("entry", ENTRIES, ids=lambda e: e.name)
def test_the_public_checks_agree_with_the_grader(audited, entry):
    row = audited[0][entry.name]
    assert row.public is not None and row.record is not None
    if entry.kind == "correct":
        assert row.public.all_passed, [r.line() for r in row.public.results if not r.passed]
        assert row.record.score == row.record.max_score
    else:
        assert row.public.failed, "a faulty submission passes every public check"
    assert audit.agreement(row) == []


def test_the_agreement_table_has_a_row_per_correct_and_faulty_entry(audited):
    rows = list(audited[0].values())
    table = audit.agreement_table(rows, markdown=True).splitlines()
    assert table[0] == "| submission | public checks | grader | likely cause | agree |"
    assert len(table) == 2 + len(ENTRIES) and all(line.endswith("| yes |") for line in table[2:])
    # the causes as the student reads them, numbers kept (the comparison alone leaves them out)
    over_queries = next(line for line in table if line.startswith("| lab1/faulty_softmax_over_queries.py |"))
    assert "use softmax(dim=-1)" in over_queries, over_queries
