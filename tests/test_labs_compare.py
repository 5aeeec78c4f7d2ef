"""book.labs.compare: each kind of wrong result gets a message that says what and where."""

from __future__ import annotations

import pytest
import torch

from book.labs import compare
from book.labs.compare import Mismatch
from autograder.wire import Opaque


def test_tolerances_accept_a_naive_bfloat16_attention_and_reject_a_wrong_scale():
    generator = torch.Generator().manual_seed(7)
    q, k, v = (torch.randn(3, 5, 13, 11, generator=generator, dtype=torch.float64).to(torch.bfloat16) for _ in range(3))
    truth = torch.softmax(q.double() @ k.double().transpose(-2, -1) / 11**0.5, dim=-1) @ v.double()
    naive = torch.softmax(q @ k.transpose(-2, -1) / 11**0.5, dim=-1) @ v  # every step in bfloat16
    compare.check_close(naive, truth, "naive bfloat16 attention", dtype=torch.bfloat16)
    unscaled = torch.softmax(q @ k.transpose(-2, -1), dim=-1) @ v
    with pytest.raises(Mismatch):
        compare.check_close(unscaled, truth, "unscaled attention", dtype=torch.bfloat16)


def test_value_mismatch_names_the_largest_difference_and_its_index():
    expected = torch.zeros(3, 7)
    actual = expected.clone()
    actual[2, 5] = 0.25
    with pytest.raises(Mismatch, match=r"largest difference is 0.25, at index \[2, 5\] \(yours 0.25, expected 0\); 1 of 21"):
        compare.check_close(actual, expected, "the output")


@pytest.mark.parametrize("shape", [(), (5,), (2, 3, 4), (1, 7, 1, 3)])
def test_the_index_named_is_torchs_unravel_index(shape):
    for flat in range(int(torch.Size(shape).numel())):
        expected = [int(i) for i in torch.unravel_index(torch.tensor(flat), shape)] if shape else []
        assert compare._index(flat, shape) == str(expected)


def test_a_failed_check_imports_nothing_heavy_into_the_grader():
    """Naming where a result differs must not import sympy (torch.unravel_index does: 30 MB in every grader
    that grades a faulty submission, on Gradescope's memory budget)."""
    import subprocess
    import sys

    code = ("import sys, torch\nfrom book.labs.compare import Mismatch, check_close\n"
            "try:\n    check_close(torch.ones(3, 4), torch.zeros(3, 4), 'x')\nexcept Mismatch as m:\n    assert '[0, 0]' in str(m), m\n"
            "print('sympy' in sys.modules)")
    found = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert found.returncode == 0, found.stderr
    assert found.stdout.strip() == "False"


@pytest.mark.parametrize("actual, message", [
    (torch.zeros(7, 3), r"the output: shape \(7, 3\), expected \(3, 7\) \(B, D\)"),
    (torch.zeros(3, 7, dtype=torch.float64), "the output: dtype float64, expected float32"),
    (torch.full((3, 7), float("nan")), r"the output: NaN found \(21 non-finite values, the first at index \[0, 0\]\)"),
    ([[0.0] * 7] * 3, "the output: expected a torch.Tensor, got a list of 3"),
    (Opaque("numpy.matrix", "matrix(...)"), "got a numpy.matrix object"),
])
def test_shape_dtype_nan_and_type_are_reported_first(actual, message):
    with pytest.raises(Mismatch, match=message):
        compare.check_close(actual, torch.zeros(3, 7), "the output", dims="(B, D)")


def test_positions_where_any_answer_is_accepted_are_not_compared():
    expected = torch.zeros(2, 3)
    actual = torch.tensor([[0.0, 0.0, 0.0], [5.0, 5.0, 5.0]])
    compare.check_close(actual, expected, "rows", where=torch.tensor([[True], [False]]))


def test_weights_over_the_wrong_axis_say_so():
    scores = torch.randn(2, 3, 7, 7)
    with pytest.raises(Mismatch, match="along the keys, not 1 .*They sum to 1 along the queries"):
        compare.check_rows_sum_to_one(scores.softmax(dim=-2))
    compare.check_rows_sum_to_one(scores.softmax(dim=-1))


def test_pairs_and_zeros():
    with pytest.raises(Mismatch, match=r"expected a pair \(output, weights\), got a tensor of shape \(2,\)"):
        compare.as_pair(torch.zeros(2), "attention(...)", "output", "weights")
    weights = torch.tensor([[0.5, 0.5, 0.0], [0.2, 0.3, 0.5]])
    padding = torch.tensor([False, False, True])
    with pytest.raises(Mismatch, match=r"expected 0 where the key is padding, got 0.5 at index \[1, 2\]"):
        compare.check_zero_where(weights, padding, "the weights", "the key is padding")


def test_a_float32_result_computed_on_a_gpu_gets_the_explicit_slack():
    cpu = compare.tolerance(torch.float32, "cpu")
    assert compare.tolerance(torch.float32, "cuda") == cpu.widened(compare.GPU_SLACK[torch.float32])
    assert compare.tolerance(torch.bfloat16, "cuda") == compare.TOLERANCES[torch.bfloat16]  # no slack but float32's


def test_a_low_precision_result_off_by_more_than_rounding_is_blamed_on_low_precision_arithmetic():
    truth = torch.linspace(-1, 1, 11, dtype=torch.float64)
    off = (truth + 0.15).to(torch.bfloat16)  # beyond bfloat16's tolerance, well inside the band
    with pytest.raises(compare.Mismatch, match="arithmetic computed in bfloat16"):
        compare.check_close(off, truth, "the output", dtype=torch.bfloat16)
    far = (truth + 5).to(torch.bfloat16)
    with pytest.raises(compare.Mismatch) as caught:
        compare.check_close(far, truth, "the output", dtype=torch.bfloat16)
    assert "Likely cause" not in str(caught.value)
