"""The course's checks and measurements on a CUDA GPU, written as data the book shows.

Runs the same code the pages and labs run, on whatever device ``book.device()`` picks, and
writes one JSON file per part (``--out``), each with the environment it ran in (date, GPU,
driver, library versions):

* ``attention``: the course's hand-written attention (the lab 1 reference, ``solutions.attention``)
  against ``F.scaled_dot_product_attention``: agreement, which kernel PyTorch ran (read from the
  profiler's kernel names), and the peak memory of each path as the sequence grows.
* ``quantization``: SmolLM2 in bfloat16, int8 and NF4 (with and without double quantization)
  through bitsandbytes: peak memory, tokens per second (median and range over repeats) and the
  largest next-token probability change against bfloat16, as the quantization chapter measures them.
* ``labs``: every lab's public checks with the reference solutions (all must pass) and with the
  stubs (all must fail, none may crash).

On a CPU it runs too (small sizes, few repeats) so that it can be tried before a GPU is lent:
``python scripts/gpu_run.py all --out /tmp/gpu --quick``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import gc
import json
import math
import platform
import statistics
import subprocess
import sys
import time
import traceback
from importlib import metadata
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

import book  # noqa: E402


def _version(name: str) -> str | None:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


def environment() -> dict:
    """Where the figures were measured: date, device, driver and library versions."""
    info = {
        "date": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d"),
        "device": "cpu",
        "python": platform.python_version(),
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
        "transformers": _version("transformers"),
        "bitsandbytes": _version("bitsandbytes"),
        "sentence-transformers": _version("sentence-transformers"),
    }
    if torch.cuda.is_available():
        props = torch.cuda.get_device_properties(0)
        info.update(device="cuda", gpu=props.name, gpu_memory_gib=round(props.total_memory / 2**30, 1),
                    capability=f"{props.major}.{props.minor}")
        try:
            info["driver"] = subprocess.run(
                ["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"],
                capture_output=True, text=True, check=True).stdout.strip()
        except (OSError, subprocess.CalledProcessError) as error:
            info["driver"] = f"unknown ({error})"
    else:
        info["cpu"] = platform.processor() or platform.machine()
    return info


def _sync() -> None:
    if torch.cuda.is_available():
        torch.cuda.synchronize()


# -- attention -----------------------------------------------------------------------------------
def _kernels_run(fn) -> list[str]:
    """The names of the GPU kernels (or CPU ops) one call of ``fn`` ran, as the profiler saw them."""
    from torch.profiler import ProfilerActivity, profile

    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if torch.cuda.is_available() else [])
    with profile(activities=activities) as prof:
        fn()
        _sync()
    names = {e.key for e in prof.key_averages()}
    interesting = ("flash", "fmha", "efficient", "cudnn", "attention", "sdpa", "softmax", "gemm", "bmm")
    return sorted(n for n in names if any(word in n.lower() for word in interesting))[:20]


def _peak_mib(fn) -> float:
    """Peak memory allocated during ``fn`` above what was allocated before it, in MiB (GPU only)."""
    gc.collect()
    torch.cuda.empty_cache()
    torch.cuda.reset_peak_memory_stats()
    before = torch.cuda.memory_allocated()
    out = fn()
    _sync()
    peak = torch.cuda.max_memory_allocated() - before
    del out
    return peak / 2**20


def attention(quick: bool) -> dict:
    from solutions.attention import scaled_dot_product_attention as eager

    device = book.device()
    torch.manual_seed(0)
    B, H, Dh = 1, 9, 64  # SmolLM2-135M's attention: 9 query heads of width 64
    results = {"shape": {"B": B, "H": H, "Dh": Dh}, "agreement": [], "kernels": {}, "memory": []}
    # Agreement: the hand-written path against PyTorch's, causal and with padding, per dtype.
    for dtype, tol in ((torch.float32, 2e-5), (torch.bfloat16, 2e-2)):
        T = 37
        q, k, v = (torch.randn(2, H, T, Dh, device=device, dtype=dtype) for _ in range(3))
        mask = torch.ones(2, T, dtype=torch.long, device=device)
        mask[1, :5] = 0  # left padding in the second sequence
        mine, _ = eager(q, k, v, attention_mask=mask, is_causal=True)
        allowed = torch.ones(T, T, dtype=torch.bool, device=device).tril()[None, None] & mask.bool()[:, None, None, :]
        theirs = F.scaled_dot_product_attention(q, k, v, attn_mask=allowed)
        real = mask.bool()[:, None, :, None].expand_as(mine)  # rows of padded queries are not compared
        diff = (mine.float() - theirs.float()).abs()[real].max().item()
        results["agreement"].append({"dtype": str(dtype).removeprefix("torch."), "T": T,
                                     "max_abs_diff": diff, "tolerance": tol, "ok": diff <= tol})
    # Which kernel runs: causal self-attention without an explicit mask (what a decoder's prefill uses).
    T = 1024
    q, k, v = (torch.randn(B, H, T, Dh, device=device, dtype=torch.bfloat16) for _ in range(3))
    results["kernels"]["sdpa_causal_bf16"] = _kernels_run(lambda: F.scaled_dot_product_attention(q, k, v, is_causal=True))
    results["kernels"]["sdpa_bool_mask_bf16"] = _kernels_run(lambda: F.scaled_dot_product_attention(
        q, k, v, attn_mask=torch.ones(T, T, dtype=torch.bool, device=device).tril()))
    results["kernels"]["eager_bf16"] = _kernels_run(lambda: eager(q, k, v, is_causal=True))
    if device.type == "cuda":
        from torch.nn.attention import SDPBackend, sdpa_kernel

        available = {}
        for backend in (SDPBackend.FLASH_ATTENTION, SDPBackend.EFFICIENT_ATTENTION, SDPBackend.CUDNN_ATTENTION,
                        SDPBackend.MATH):
            try:
                with sdpa_kernel(backend):
                    F.scaled_dot_product_attention(q, k, v, is_causal=True)
                _sync()
                available[backend.name] = True
            except RuntimeError as error:
                available[backend.name] = f"not available: {str(error).splitlines()[0][:120]}"
        results["backends_causal_bf16"] = available
        for T in ((512, 2048) if quick else (1024, 4096, 16384)):
            q, k, v = (torch.randn(B, H, T, Dh, device=device, dtype=torch.bfloat16) for _ in range(3))
            row = {"T": T,
                   "sdpa_peak_mib": _peak_mib(lambda: F.scaled_dot_product_attention(q, k, v, is_causal=True)),
                   "eager_peak_mib": _peak_mib(lambda: eager(q, k, v, is_causal=True)[0]),
                   "scores_matrix_mib_float32": B * H * T * T * 4 / 2**20}
            results["memory"].append(row)
            del q, k, v
    return results


PAD_TOKEN = "<|im_end|>"  # what transformers 5.25 gives SmolLM2's tokenizer rebuilt from the GGUF file


# -- quantization ----------------------------------------------------------------------------------
def quantization(quick: bool) -> dict:
    from transformers import BitsAndBytesConfig

    device = book.device()
    on_gpu = device.type == "cuda"
    formats = {
        "bfloat16": None,
        "int8": BitsAndBytesConfig(load_in_8bit=True),
        "nf4": BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_use_double_quant=False,
                                  bnb_4bit_compute_dtype=torch.bfloat16),
        "nf4 + double quant": BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4",
                                                 bnb_4bit_use_double_quant=True,
                                                 bnb_4bit_compute_dtype=torch.bfloat16),
    }
    tokenizer = book.load_tokenizer("decoder")
    if tokenizer.pad_token is None:  # older transformers rebuild the GGUF tokenizer without one
        tokenizer.pad_token = PAD_TOKEN
    corpus = book.load_corpus()
    # The quantization chapter's quality sample: two documents per genre, their first 96 tokens.
    subset = corpus.groupby("genre", sort=True).head(2)
    batch = tokenizer(list(subset.text), return_tensors="pt", padding=True, truncation=True,
                      max_length=96).to(device)
    labels = batch["input_ids"].masked_fill(batch["attention_mask"] == 0, -100)
    messages = [{"role": "user", "content": "Give three tips for baking bread at home."}]
    prompt = tokenizer.apply_chat_template(messages, add_generation_prompt=True, return_tensors="pt",
                                           return_dict=True).to(device)
    n_new, repeats = (16, 2) if quick else (64, 7)
    rows, reference = {}, None
    for name, config in formats.items():
        if not on_gpu and config is not None and quick:
            continue  # bitsandbytes on a CPU is measured by the chapter itself
        gc.collect()
        if on_gpu:
            torch.cuda.empty_cache()
            torch.cuda.reset_peak_memory_stats()
        model = book.load_model("decoder", dtype=torch.bfloat16, device_map=device, quantization_config=config)
        weights_mib = model.get_memory_footprint() / 2**20
        with torch.no_grad():
            out = model(**batch, labels=labels)
        logp = torch.log_softmax(out.logits[:, :-1].float(), dim=-1)
        target = labels[:, 1:]
        real = target != -100
        nll = -logp.gather(-1, target.clamp(min=0).unsqueeze(-1)).squeeze(-1)[real]
        probs = logp[real].exp()
        peak = torch.cuda.max_memory_allocated() / 2**20 if on_gpu else None
        if reference is None:
            reference = probs
        seconds = []
        with torch.no_grad():
            model.generate(**prompt, max_new_tokens=4, do_sample=False)  # warm-up: kernels loaded, caches built
            for _ in range(repeats):
                _sync()
                start = time.perf_counter()
                generated = model.generate(**prompt, max_new_tokens=n_new, min_new_tokens=n_new, do_sample=False)
                _sync()
                seconds.append(time.perf_counter() - start)
        new = generated.shape[1] - prompt["input_ids"].shape[1]
        tps = sorted(new / s for s in seconds)
        rows[name] = {
            "weights_mib": weights_mib,
            "peak_mib": peak,
            "tokens_per_s_median": statistics.median(tps),
            "tokens_per_s_min": tps[0],
            "tokens_per_s_max": tps[-1],
            "repeats": repeats,
            "new_tokens": new,
            "perplexity": math.exp(nll.mean().item()),
            "max_abs_dp_vs_bfloat16": float((probs - reference).abs().max()),
            "same_top1_vs_bfloat16_pct": 100 * float((probs.argmax(-1) == reference.argmax(-1)).float().mean()),
            "linear_type": type(model.model.layers[0].mlp.down_proj).__name__,
        }
        del model, out, logp, probs
    return {"predictions": int(reference.shape[0]), "prompt_tokens": int(prompt["input_ids"].shape[1]),
            "formats": rows}


# -- labs ----------------------------------------------------------------------------------------------
LABS_ONLY: list[str] = []  # --labs lab1,lab2: only these (a rerun that carries only MiniLM)
REFERENCES = {"lab1": "solutions/attention.py", "lab2": "solutions/pooling.py", "lab3": "solutions/tokens.py"}


def _namespace(path: Path) -> dict:
    """What a notebook or .py file defines, as the grader extracts it (imports, definitions, constants)."""
    from autograder.extract import load_submission

    namespace: dict = {"__name__": f"_gpu_{path.stem}"}
    for chunk in load_submission(path).chunks:
        exec(compile(chunk.source, f"{path.name}:{chunk.filename}", "exec"), namespace)  # noqa: S102 (course files)
    return namespace


def _checks(lab: str, namespace: dict) -> dict:
    from book import labcheck

    try:
        report = labcheck.run_checks(lab, namespace, quiet=True)
    except Exception:  # a crash of the checks themselves, not a FAIL line: what this run is for
        return {"crashed": traceback.format_exc()}
    return {"passed": report.passed, "total": report.total,
            "failed": [result.line()[:300] for result in report.results if not result.passed]}


def labs(quick: bool) -> dict:
    from book.labs import compare

    device = book.device()
    results = {"tolerances": {str(dtype).removeprefix("torch."): {"atol": t.atol, "rtol": t.rtol}
                              for dtype in compare.TOLERANCES for t in [compare.tolerance(dtype, device)]},
               "labs": {}}
    for lab, reference in REFERENCES.items():
        if LABS_ONLY and lab not in LABS_ONLY:
            continue
        notebook = next(ROOT.glob(f"labs/{lab}_*.ipynb"))
        row = {"reference": _checks(lab, _namespace(ROOT / reference)),
               "stubs": _checks(lab, _namespace(notebook)),
               "catalogue_correct": {}}
        # The catalogue's other correct implementations: they must pass on a GPU too.
        for path in sorted((ROOT / "autograder" / "catalogue" / lab).glob("correct_*.py")):
            checked = _checks(lab, _namespace(path))
            if checked.get("failed") or "crashed" in checked:
                row["catalogue_correct"][path.stem] = checked
            else:
                row["catalogue_correct"][path.stem] = "all passed"
        ref, stubs = row["reference"], row["stubs"]
        row["reference_all_pass"] = "crashed" not in ref and ref["passed"] == ref["total"]
        row["stubs_all_fail"] = "crashed" not in stubs and stubs["passed"] == 0
        results["labs"][lab] = row
    return results


PARTS = {"attention": attention, "quantization": quantization, "labs": labs}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("part", choices=[*PARTS, "all"])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--quick", action="store_true", help="small sizes and few repeats (a trial run)")
    parser.add_argument("--labs", default="", help="comma-separated labs for the labs part (default: all)")
    args = parser.parse_args()
    LABS_ONLY[:] = [lab for lab in args.labs.split(",") if lab]
    args.out.mkdir(parents=True, exist_ok=True)
    env = environment()
    print(json.dumps(env), flush=True)
    failed = False
    for name in (PARTS if args.part == "all" else [args.part]):
        start = time.perf_counter()
        try:
            result = {"environment": env, "part": name, **PARTS[name](args.quick)}
        except Exception:  # keep going: one part's failure must not lose the others' figures
            failed = True
            result = {"environment": env, "part": name, "error": traceback.format_exc()}
        result["seconds"] = round(time.perf_counter() - start, 1)
        (args.out / f"{name}.json").write_text(json.dumps(result, indent=2))
        print(json.dumps(result, indent=1)[:4000], flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
