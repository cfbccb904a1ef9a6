#!/usr/bin/env bash
# Real-size InternVL3-8B (random weights, bf16, SDPA) stage latency on one GPU, next to the cost model's prediction.
# Usage: scripts/gpu_check.sh [OUT_DIR] [GPU_NAME]      (defaults: $OUT or results/gpu-check, h200)
# Budget: under 8 minutes on one H200 (model build ~1 min; 2 methods x 2 frame counts x (1 warm-up + 3 repeats)).
set -euo pipefail
cd "$(dirname "$0")/.."
out="${1:-${OUT:-results/gpu-check}}"
gpu="${2:-h200}"
mkdir -p "$out"
py=python
[ -x .venv/bin/python ] && py=.venv/bin/python
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader | tee "$out/nvidia-smi.txt" || true
"$py" -m liteframe_bench.cli profile --model random:internvl3-8b --device cuda --dtype bfloat16 \
  --method baseline,wap:ratio=16 --frames 8,64 --warmup 1 --repeats 3 --new-tokens 16 --overhead \
  --out "$out/profile.json" --json > /dev/null
"$py" -m liteframe_bench.cli cost --model internvl3-8b --method baseline,wap:ratio=16 --frames 8,64 \
  --gpu "$gpu" --json > "$out/cost.json"
"$py" scripts/compare_profile_cost.py "$out/profile.json" "$out/cost.json" | tee "$out/compare.txt"
