"""Convert a GGUF file once into a plain safetensors checkpoint, and reuse it afterwards.

transformers can load a GGUF file directly (``from_pretrained(folder, gguf_file=...)``), but
it then rebuilds the tokenizer from the file's vocabulary and dequantizes every tensor, which
takes tens of seconds on a CPU. The course does that once: the dequantized float32 weights,
the config and the tokenizer (chat template included) are saved with ``save_pretrained`` into
a cache folder, and every later load is an ordinary, fast ``from_pretrained(folder)``.

A ``source.json`` marker records which GGUF file (size and SHA-256) the folder was made from
and which converter version made it; a different file or converter means a new conversion.
The folder is written under a temporary name and renamed at the end, so an interrupted
conversion never leaves a half-written checkpoint behind.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import sys
import time
from pathlib import Path

CONVERTER_VERSION = 1  # bump when the conversion itself changes
MARKER = "source.json"


def file_digest(path: Path, chunk: int = 1 << 22) -> str:
    """SHA-256 of a file, read in 4 MiB chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def source_record(gguf_file: Path) -> dict:
    """What identifies a conversion: the source file's name, size and hash, and the converter version."""
    gguf_file = Path(gguf_file)
    return {
        "gguf_file": gguf_file.name,
        "size": gguf_file.stat().st_size,
        "sha256": file_digest(gguf_file),
        "converter_version": CONVERTER_VERSION,
    }


def is_current(out_dir: Path, record: dict) -> bool:
    """Whether ``out_dir`` holds a complete conversion of exactly this source."""
    marker = Path(out_dir) / MARKER
    if not marker.is_file():
        return False
    try:
        saved = json.loads(marker.read_text())
    except (OSError, json.JSONDecodeError):
        return False
    return saved == record and (Path(out_dir) / "config.json").is_file()


def convert(gguf_file: Path, out_dir: Path) -> Path:
    """Dequantize ``gguf_file`` and save model, config and tokenizer into ``out_dir``.

    Shows transformers' per-tensor progress bar, and says before and after what it did.
    """
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer, GgufConfig

    gguf_file, out_dir = Path(gguf_file), Path(out_dir)
    record = source_record(gguf_file)
    print(f"Converting {gguf_file.name} into a safetensors checkpoint (once; later loads reuse it)...", file=sys.stderr)
    start = time.perf_counter()
    tmp = out_dir.with_name(out_dir.name + ".partial")
    shutil.rmtree(tmp, ignore_errors=True)
    tokenizer = AutoTokenizer.from_pretrained(gguf_file.parent, gguf_file=gguf_file.name)
    model = AutoModelForCausalLM.from_pretrained(
        gguf_file.parent,
        gguf_file=gguf_file.name,
        quantization_config=GgufConfig(dequantize=True),
        dtype=torch.float32,  # the exact dequantized values; bfloat16 would round them again
    )
    model.config.__dict__.pop("quantization_config", None)  # a plain checkpoint now, not a GGUF one
    # The GGUF tokenizer carries no length limit; the model's context window is the true one.
    tokenizer.model_max_length = model.config.max_position_embeddings
    model.save_pretrained(tmp)
    tokenizer.save_pretrained(tmp)
    (tmp / MARKER).write_text(json.dumps(record, indent=2))
    shutil.rmtree(out_dir, ignore_errors=True)
    tmp.rename(out_dir)
    print(f"Saved to {out_dir} in {time.perf_counter() - start:.1f} s.", file=sys.stderr)
    return out_dir


def is_current_folder(out_dir: Path, gguf_file: Path) -> bool:
    """Whether ``out_dir`` holds a complete conversion of ``gguf_file`` (reads the marker and hashes the file)."""
    return is_current(out_dir, source_record(gguf_file))


def converted_checkpoint(gguf_file: Path, out_dir: Path) -> Path:
    """The converted checkpoint for ``gguf_file`` in ``out_dir``, converting only if it is missing or stale."""
    if not is_current(out_dir, source_record(gguf_file)):
        convert(gguf_file, out_dir)
    return Path(out_dir)
