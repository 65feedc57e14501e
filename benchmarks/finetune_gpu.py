"""Chapter 5's fine-tune, measured: LoRA r=8 versus full fine-tuning of the shipped GPT on the code task.

    .venv/bin/python benchmarks/finetune_gpu.py                   # on a GPU: bf16 autocast, the defaults below
    .venv/bin/python benchmarks/finetune_gpu.py --steps 20 --batch-size 8 --block-size 64    # a CPU smoke run

Both runs start from the same base model and read the same batches (same seed). Printed side by side: tokens/s,
time per step, peak memory (CUDA), training state, validation loss, and the time each run needed to first reach
the target validation loss (default: the worse of the two final losses, so that both reach it). Ratios are
LoRA / full, measured in this one run. Results go to RESULTS.md by hand, with the machine they came from.
"""
from __future__ import annotations

import argparse
import json
import platform

import torch

from lora_edu.data import corpus
from lora_edu.gpt import LORA_TARGETS, load_pretrained, pick_device
from lora_edu.lora import apply_lora
from lora_edu.train import evaluate, finetune


def run(label, model, task, args, lr):
    hist = finetune(model, task.train, task.val, steps=args.steps, lr=lr, batch_size=args.batch_size,
                    block_size=args.block_size, device=args.device, eval_every=max(1, args.steps // 20),
                    seed=args.seed, progress=not args.quiet)
    f = hist.final
    return {"label": label, "trainable": hist.trainable, "state_MB": hist.state_bytes / 1e6,
            "tokens_per_s": hist.tokens_per_s, "ms_per_step": 1e3 * f["wall_time"] / args.steps,
            "peak_MB": None if f["peak_memory"] is None else f["peak_memory"] / 1e6,
            "val_loss": f["val_loss"], "curve": [(r["step"], r["wall_time"], r["val_loss"]) for r in hist.rows]}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--steps", type=int, default=1000)
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--block-size", type=int, default=256)
    ap.add_argument("--rank", type=int, default=8)
    ap.add_argument("--target", type=float, default=None, help="validation loss to reach (nats/byte)")
    ap.add_argument("--device", default="auto")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", default=None, help="also write the results to this file")
    ap.add_argument("--quiet", action="store_true")
    args = ap.parse_args()
    device = pick_device(args.device)
    args.device = device
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor() or platform.machine()
    print(f"device: {device} ({name}), torch {torch.__version__}, bf16 autocast: {device.type == 'cuda'}")
    task = corpus("code")
    before = evaluate(load_pretrained(), task.val, args.block_size)
    print(f"code validation loss of the base model: {before:.4f} nats/byte; {args.steps} steps of "
          f"{args.batch_size} × {args.block_size} bytes")

    lora = load_pretrained()
    apply_lora(lora, LORA_TARGETS, r=args.rank)
    results = [run(f"LoRA r={args.rank}", lora, task, args, lr=3e-3), run("full", load_pretrained(), task, args, lr=3e-4)]
    target = args.target or max(r["val_loss"] for r in results)
    for r in results:
        r["seconds_to_target"] = next((t for _, t, v in r["curve"] if v <= target), None)

    print(f"\n{'':10}{'trainable':>11}{'tokens/s':>11}{'ms/step':>9}{'peak MB':>9}{'state MB':>10}{'val loss':>10}"
          f"{'s to ' + format(target, '.3f'):>11}")
    for r in results:
        peak = "—" if r["peak_MB"] is None else f"{r['peak_MB']:.0f}"
        reach = "—" if r["seconds_to_target"] is None else f"{r['seconds_to_target']:.1f}"
        print(f"{r['label']:10}{r['trainable']:>11,}{r['tokens_per_s']:>11,.0f}{r['ms_per_step']:>9.1f}{peak:>9}"
              f"{r['state_MB']:>10.2f}{r['val_loss']:>10.4f}{reach:>11}")
    lo, full = results
    print(f"\nLoRA / full: step time {lo['ms_per_step'] / full['ms_per_step']:.2f}×, training state "
          f"{lo['state_MB'] / full['state_MB']:.3f}×"
          + (f", peak memory {lo['peak_MB'] / full['peak_MB']:.2f}×" if lo["peak_MB"] else ""))
    if args.json:
        with open(args.json, "w") as fh:
            json.dump({"device": name, "args": {k: str(v) for k, v in vars(args).items()}, "base_val_loss": before,
                       "target": target, "results": results}, fh, indent=1)


if __name__ == "__main__":
    main()
