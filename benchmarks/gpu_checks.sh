#!/usr/bin/env bash
# Everything this repository records from a GPU, in one go: chapter 6's full rank sweep (the default gpu budget)
# and chapter 5's LoRA-versus-full benchmark. Usage: bash benchmarks/gpu_checks.sh OUTDIR [PYTHON]
# Writes OUTDIR/rank_sweep.json (copy it to lora_edu/results/ and re-run chapter 6), OUTDIR/finetune_gpu.json
# (for benchmarks/RESULTS.md) and a log of each. PYTHON defaults to .venv/bin/python, else python3; it needs
# torch, numpy and safetensors, not an install of lora_edu: the repository root goes on PYTHONPATH.
set -euo pipefail
cd "$(dirname "$0")/.."
out="${1:?usage: bash benchmarks/gpu_checks.sh OUTDIR [PYTHON]}"
py="${2:-$( [ -x .venv/bin/python ] && echo .venv/bin/python || echo python3 )}"
mkdir -p "$out"
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
"$py" -c "import torch; assert torch.cuda.is_available(), 'no CUDA GPU: these numbers are GPU work'"
"$py" -m lora_edu.sweep --out "$out/rank_sweep.json" 2>&1 | tee "$out/sweep.log"
"$py" benchmarks/finetune_gpu.py --json "$out/finetune_gpu.json" 2>&1 | tee "$out/finetune_gpu.log"
