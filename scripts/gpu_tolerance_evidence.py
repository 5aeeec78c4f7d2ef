"""The evidence for the GPU slack of the float32 tolerance: run on a machine with a CUDA GPU (the course's device).

The labs' public checks run a student's functions on the course device: in Colab, a GPU. This
script runs them there on the reference solutions and the catalogue's correct variants (the
rules that need no model: attention, heads, grouped-query, small self-attention layers and
pooling), checks that every one passes, and measures how far each float32 result computed on the
GPU lies from the float64 truth: the smallest tolerance ``t`` it would pass with
(``autograder.tolerances.needed``). The slack is right when the worst of them, times the margin,
fits in the widened tolerance, while the tolerance alone would not always do.

    PYTHONPATH=. python scripts/gpu_tolerance_evidence.py [--out gpu-evidence.json]
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import sys
from pathlib import Path

import torch

from book import ROOT, labcheck, labs
from book.env import device
from book.labs import compare, lab1, lab2

MARGIN = 2.0
NEEDS_A_MODEL = {"self_attention_minilm", "self_attention_minilm_hidden"} | {
    rule.name for rule in lab2.LAB.rules if rule.function == "embed_sentences"}


def needed(actual: torch.Tensor, expected: torch.Tensor, where=None) -> float:
    got, want = actual.detach().cpu().double(), expected.double()
    ratio = (got - want).abs() / (1 + want.abs())
    if where is not None:
        ratio = torch.where(torch.broadcast_to(where, ratio.shape), ratio, 0.0)
    return float(ratio.max()) if ratio.numel() else 0.0


def implementations(lab: str, reference: str) -> dict:
    found = {}
    for path in [ROOT / reference] + sorted((ROOT / "autograder" / "catalogue" / lab).glob("correct_*.py")):
        spec = importlib.util.spec_from_file_location(f"_gpu_{path.stem}", path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        found[path.stem if path.parent.name == lab else "reference"] = module
    return found


def on_device(value):
    return value.to(device()) if isinstance(value, torch.Tensor) else value


def float32_results(lab: str, module) -> dict[str, float]:
    """The worst needed t of a module's float32 results computed on the device, per check."""
    worst: dict[str, float] = {}

    def note(check, value):
        worst[check] = max(worst.get(check, 0.0), value)

    for rule in labs.load(lab).rules:
        for case in rule.cases.values():
            if isinstance(case, lab1.Case) and case.dtype == torch.float32:
                (q, k, v), kwargs, allowed, seen, output, weights = lab1.attention_case(case)
                got_output, got_weights = module.scaled_dot_product_attention(
                    *(on_device(t) for t in (q, k, v)), **{key: on_device(value) for key, value in kwargs.items()})
                note("scaled_dot_product_attention: output", needed(got_output, output, seen))
                note("scaled_dot_product_attention: weights", needed(got_weights, weights, seen))
            elif isinstance(case, lab2.Pooling) and case.dtype == torch.float32:
                hidden, mask, truths = lab2.pooling_case(case)
                got = getattr(module, rule.function)(hidden.to(device()), mask.to(device()))
                note(rule.function, needed(got, truths[rule.function.split("_")[0]]))
    return worst


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, help="write the evidence as JSON here")
    args = parser.parse_args(argv)
    where = device()
    report = {"device": torch.cuda.get_device_name(0) if where.type == "cuda" else "cpu", "torch": torch.__version__,
              "tolerance": compare.TOLERANCES[torch.float32].atol, "slack": compare.GPU_SLACK[torch.float32],
              "margin": MARGIN, "checks": {}, "failed": []}
    for lab, reference in (("lab1", "solutions/attention.py"), ("lab2", "solutions/pooling.py")):
        only = [rule.name for rule in labs.load(lab).rules if rule.name not in NEEDS_A_MODEL]
        for name, module in implementations(lab, reference).items():
            checked = labcheck.run_checks(lab, dict(vars(module)), only=only, quiet=True)
            report["failed"] += [f"{lab} {name}: {r.line()}" for r in checked.results if not r.passed]
            try:
                worst = float32_results(lab, module)
            except Exception as error:  # one implementation's crash must not hide the others' evidence
                report["failed"].append(f"{lab} {name}: {type(error).__name__}: {str(error).splitlines()[0]}")
                continue
            for check, value in worst.items():
                if value > report["checks"].get(check, {}).get("worst", -1.0):
                    report["checks"][check] = {"worst": value, "by": name}
    limit = compare.tolerance(torch.float32, where).atol
    for check, row in report["checks"].items():
        row["fits_the_slack"] = row["worst"] * MARGIN <= limit
        row["fits_without_slack"] = row["worst"] * MARGIN <= report["tolerance"]
    text = json.dumps(report, indent=1)
    print(text)
    if args.out:
        args.out.write_text(text + "\n")
    return 0 if not report["failed"] and all(r["fits_the_slack"] for r in report["checks"].values()) else 1


if __name__ == "__main__":
    sys.exit(main())
