"""Print how long loading SmolLM2-135M-Instruct takes once its GGUF file has been converted.

Runs the load in fresh Python processes, three times. Each run prints the import of torch and
transformers, the first load of tokenizer and model (which also pays transformers' lazy
imports of its model and tokenizer code), and a second load in the same process.

Usage: python scripts/bench_load.py   (or: make bench-load)
"""

from __future__ import annotations

import json
import subprocess
import sys

PROBE = """
import json, time
start = time.perf_counter()
import transformers, torch
from book import models
imported = time.perf_counter()
tokenizer = models.load_tokenizer("smollm2-135m-instruct")
tokenized = time.perf_counter()
model = models.load_model("smollm2-135m-instruct")
loaded = time.perf_counter()
models.load_tokenizer("smollm2-135m-instruct"), models.load_model("smollm2-135m-instruct")
again = time.perf_counter()
print(json.dumps({"import": imported - start, "tokenizer": tokenized - imported, "model": loaded - tokenized,
                  "again": again - loaded}))
"""


def main() -> int:
    from book import models

    models.resolve("smollm2-135m-instruct")  # convert first if this machine never has
    print("SmolLM2-135M-Instruct, converted checkpoint, fresh process each run")
    for run in range(1, 4):
        out = subprocess.run([sys.executable, "-c", PROBE], check=True, capture_output=True, text=True).stdout
        times = json.loads(out.strip().splitlines()[-1])
        print(f"run {run}: import torch+transformers {times['import']:.2f} s | first load: tokenizer "
              f"{times['tokenizer']:.2f} s + model {times['model']:.2f} s = {times['tokenizer'] + times['model']:.2f} s"
              f" | second load in the same process: {times['again']:.2f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
