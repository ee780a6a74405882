#!/usr/bin/env bash
# NCCL step times on a GPU machine, in one short command (a few minutes):
#   bash benchmarks/distributed_gpu.sh
# 1 GPU vs 2 GPUs data parallel (the 2-GPU row needs two GPUs), ReLU then TopK, a
# 65,536-latent dictionary at d 576, global batch 4,096. Nothing else needs it: the
# project runs and is tested without a GPU. Extra arguments go to both runs.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-python}
export PYTHONPATH="$PWD/src${PYTHONPATH:+:$PYTHONPATH}"
for arch in relu topk; do
    timeout 150 "$PY" benchmarks/distributed.py --backend nccl --arch "$arch" --latents 65536 --batch 4096 --steps 20 --rounds 2 "$@"
done
