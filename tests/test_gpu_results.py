"""The GPU run's data (book/data/gpu) as the pages show it: labelled, complete and consistent."""

from __future__ import annotations

import pytest

from book import gpu_results


def test_every_figure_is_labelled_with_the_gpu_its_driver_versions_and_date():
    for part in ("attention", "quantization", "labs"):
        env = gpu_results.environment(part)
        assert env["device"] == "cuda" and env["gpu"] and env["driver"] and env["date"]
        label = gpu_results.label(part)
        assert env["gpu"] in label and env["date"] in label and env["torch"] in label


def test_the_labs_ran_as_they_must_on_the_gpu():
    assert gpu_results.labs_all_as_expected()
    table = gpu_results.labs_table()
    assert list(table.index) == ["lab1", "lab2", "lab3"]
    assert all(row.startswith("0 of") for row in table["stubs pass"])
    assert gpu_results.worst_float32_error_on_gpu() < gpu_results.float32_tolerance_on_gpu()


def test_quantization_on_the_gpu_has_every_format_and_ranks_quality():
    table = gpu_results.quantization_table()
    assert list(table.index) == ["bfloat16", "int8", "NF4", "NF4 + double quant"]
    assert (table["peak (MB)"] > table["weights (MB)"]).all()
    assert table.loc["bfloat16", "max |Δp| vs bfloat16"] == 0
    assert table.loc["int8", "max |Δp| vs bfloat16"] < table.loc["NF4", "max |Δp| vs bfloat16"]
    assert (table["tokens/s, slowest run"] <= table["tokens/s"]).all()
    shown = gpu_results.quantization_shown({"NF4 + double quant": "NF4 + DQ"})
    assert "NF4 + DQ" in shown.index and shown.columns.nlevels == 2


def test_the_fused_attention_kernel_needs_less_memory_than_the_hand_written_path():
    table = gpu_results.attention_memory_table()
    assert (table["fused (MB)"] < table["hand-written (MB)"]).all()
    assert (table["hand-written (MB)"] >= table["one float32 score matrix (MB)"]).all()
    assert not gpu_results.attention_kernel().startswith("aten::")


def test_a_missing_part_says_how_to_produce_it():
    with pytest.raises(FileNotFoundError, match="scripts/gpu_run.py"):
        gpu_results.load("no-such-part")
