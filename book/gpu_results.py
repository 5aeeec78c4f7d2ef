"""Figures measured on a CUDA GPU, kept as data, for the pages that show them beside their CPU figures.

The book is built on a CPU. Its GPU branches ran once on a lent machine (``scripts/gpu_run.py``,
which runs the same checks and measurements there and writes JSON): the files in
``book/data/gpu/`` are that run's output, each with the environment it ran in. The pages read
them through this module and label every figure with the GPU, driver, library versions and date,
so that a reader never takes them for figures of the build that shows them.

* :func:`label`: "NVIDIA H200, driver ..., torch ..., on 2026-12-04".
* :func:`labs_table`: every lab's public checks on the GPU (references pass, stubs fail).
* :func:`quantization_table`: memory, speed and quality per format through bitsandbytes' CUDA kernels.
* :func:`attention_memory_table` and :func:`attention_kernel`: the fused kernel PyTorch chose, and
  the memory of the hand-written path against it.
"""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path

DATA = Path(__file__).resolve().parent / "data" / "gpu"
FORMAT_NAMES = {"bfloat16": "bfloat16", "int8": "int8", "nf4": "NF4", "nf4 + double quant": "NF4 + double quant"}


@lru_cache(maxsize=None)
def load(part: str) -> dict:
    """One part of the GPU run (``attention``, ``quantization``, ``labs``, ``labs_rerun``, ``tolerance_evidence``)."""
    path = DATA / f"{part}.json"
    if not path.is_file():
        raise FileNotFoundError(f"No GPU results for {part!r} in {DATA}: run scripts/gpu_run.py on a GPU machine "
                                "and copy its output there.")
    return json.loads(path.read_text())


def environment(part: str = "quantization") -> dict:
    return load(part)["environment"]


def label(part: str = "quantization") -> str:
    """Where and when a part was measured, for a caption."""
    env = environment(part)
    return (f"{env['gpu']} (driver {env['driver']}, CUDA {env['cuda']}, torch {env['torch']}, "
            f"transformers {env['transformers']}, bitsandbytes {env['bitsandbytes']}), measured on {env['date']}")


def short_label(part: str = "quantization") -> str:
    env = environment(part)
    return f"{env['gpu']}, {env['date']}"


def quantization_table():
    """One row per format: weights and peak GPU memory, tokens/s (median and range), quality against bfloat16."""
    import pandas as pd

    rows = {}
    for name, row in load("quantization")["formats"].items():
        rows[FORMAT_NAMES.get(name, name)] = {
            "weights (MB)": row["weights_mib"] * 2**20 / 1e6,
            "peak (MB)": row["peak_mib"] * 2**20 / 1e6,
            "tokens/s": row["tokens_per_s_median"],
            "tokens/s, slowest run": row["tokens_per_s_min"],
            "tokens/s, fastest run": row["tokens_per_s_max"],
            "max |Δp| vs bfloat16": row["max_abs_dp_vs_bfloat16"],
            "same top-1 as bfloat16 (%)": row["same_top1_vs_bfloat16_pct"],
        }
    table = pd.DataFrame(rows).T
    table.index.name = "format"
    return table


def quantization_shown(short_names: dict | None = None):
    """:func:`quantization_table` compact enough for a phone, with the machine as the column group."""
    import pandas as pd

    table = quantization_table()
    speeds = zip(table["tokens/s"], table["tokens/s, slowest run"], table["tokens/s, fastest run"])
    shown = pd.DataFrame({
        "peak MB": table["peak (MB)"].map("{:.0f}".format),
        "tokens/s (range)": [f"{mid:.0f} ({lo:.0f}–{hi:.0f})" for mid, lo, hi in speeds],
        "max |Δp|": table["max |Δp| vs bfloat16"].map("{:.3f}".format),
        "top-1 (%)": table["same top-1 as bfloat16 (%)"].map("{:.0f}".format),
    })
    shown.index = [(short_names or {}).get(name, name) for name in shown.index]
    shown.columns = pd.MultiIndex.from_product([[short_label()], shown.columns])
    return shown


def labs_table():
    """One row per lab: the public checks on the GPU for the reference, the stubs and the catalogue's correct entries."""
    import pandas as pd

    first, rerun = load("labs")["labs"], load("labs_rerun")["labs"] if (DATA / "labs_rerun.json").is_file() else {}
    rows = {}
    for lab, row in first.items():
        latest = rerun.get(lab, row)
        correct = latest["catalogue_correct"]
        rows[lab] = {
            "reference passes": f"{latest['reference']['passed']} of {latest['reference']['total']}",
            "stubs pass": f"{latest['stubs']['passed']} of {latest['stubs']['total']}",
            "correct variants passing": f"{sum(v == 'all passed' for v in correct.values())} of {len(correct)}",
            "first run": f"{sum(v == 'all passed' for v in row['catalogue_correct'].values())} of "
                         f"{len(row['catalogue_correct'])}",
        }
    return pd.DataFrame(rows).T


def labs_all_as_expected() -> bool:
    """Every reference passes every public check on the GPU and every stub fails every one."""
    rerun = load("labs_rerun")["labs"] if (DATA / "labs_rerun.json").is_file() else {}
    for lab, row in load("labs")["labs"].items():
        latest = rerun.get(lab, row)
        if not (latest["reference_all_pass"] and latest["stubs_all_fail"]):
            return False
        if any(v != "all passed" for v in latest["catalogue_correct"].values()):
            return False
    return True


def float32_tolerance_on_gpu() -> float:
    return load("labs")["tolerances"]["float32"]["atol"]


def worst_float32_error_on_gpu() -> float:
    """The largest float32 error of a correct implementation on the GPU, in the checks' measure."""
    return max(row["worst"] for row in load("tolerance_evidence")["checks"].values())


def attention_kernel() -> str:
    """The GPU kernel behind F.scaled_dot_product_attention for causal bfloat16 attention."""
    names = load("attention")["kernels"]["sdpa_causal_bf16"]
    kernels = [n for n in names if not n.startswith("aten::")]
    return kernels[0] if kernels else names[0]


def attention_memory_table():
    """Peak GPU memory of the hand-written attention against PyTorch's fused kernel, per sequence length."""
    import pandas as pd

    rows = {row["T"]: {"fused (MB)": row["sdpa_peak_mib"] * 2**20 / 1e6,
                       "hand-written (MB)": row["eager_peak_mib"] * 2**20 / 1e6,
                       "one float32 score matrix (MB)": row["scores_matrix_mib_float32"] * 2**20 / 1e6}
            for row in load("attention")["memory"]}
    table = pd.DataFrame(rows).T
    table.index.name = "T"
    return table
