"""Chapter 6's measurements, stored: `python -m lora_edu.sweep` writes lora_edu/results/rank_sweep.json.

For each regime — a gentle fine-tune (about 1.3 epochs of the code task) and a long one (about 9) — it fine-tunes
the shipped GPT with LoRA at every rank of RANKS and fully, all from the same base with the same batches, steps
and learning-rate rule; it stores the validation losses, trainable counts, times and a sample per run, the
singular values of the full fine-tune's ΔW for all sixteen matrices beside a random matrix of the same shape and
norm, and the LoRA paper's subspace similarity between the r=8 and r=64 adapters. A short α/r versus α/√r
(rsLoRA) sweep follows. It is GPU work (minutes on one GPU); `--smoke` runs the same code on a tiny budget anywhere.
"""
from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import numpy as np
import torch

from . import __version__
from ._io import write_atomic
from .data import corpus
from .gpt import pick_device
from .lora import similarity_grid
from .rank import singular_values
from .train import rank_sweep

RANKS = (1, 2, 4, 8, 16, 32, 64)
REGIMES = {"gentle": {"steps": 120, "batch_size": 64}, "long": {"steps": 800, "batch_size": 64}}
DEFAULT_OUT = Path(__file__).parent / "results" / "rank_sweep.json"


def _spectra(deltas: dict, seed: int = 0) -> dict:
    """Singular values of each ΔW and of a Gaussian matrix of the same shape and Frobenius norm."""
    rng = np.random.default_rng(seed)
    out = {}
    for name, d in deltas.items():
        noise = rng.standard_normal(d.shape)
        noise *= np.linalg.norm(d) / np.linalg.norm(noise)
        out[name] = {"shape": list(d.shape), "delta": singular_values(d).round(8).tolist(),
                     "random": singular_values(noise).round(8).tolist()}
    return out


def main(argv=None) -> Path:
    ap = argparse.ArgumentParser(prog="python -m lora_edu.sweep", description=__doc__.split("\n")[0])
    ap.add_argument("--task", default="code")
    ap.add_argument("--block-size", type=int, default=256)
    ap.add_argument("--lr", type=float, default=3e-3, help="LoRA learning rate (every rank)")
    ap.add_argument("--full-lr", type=float, default=3e-4)
    ap.add_argument("--device", default="auto")
    ap.add_argument("--smoke", action="store_true", help="a tiny budget, to check the script anywhere")
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = ap.parse_args(argv)
    device = pick_device(args.device)
    regimes = {k: dict(v) for k, v in REGIMES.items()}
    block, ranks = args.block_size, RANKS
    if args.smoke:
        regimes = {k: {"steps": 2 * (i + 1), "batch_size": 2} for i, k in enumerate(regimes)}
        block, ranks = 32, (8, 64)
    task = corpus(args.task)
    t0 = time.time()
    result = {"format": "lora_edu.rank_sweep/1", "task": args.task, "ranks": list(ranks), "block_size": block,
              "lr": args.lr, "full_lr": args.full_lr, "alpha_rule": "alpha = r (scaling 1)", "regimes": {}}
    for name, regime in regimes.items():
        print(f"regime {name!r}: {regime['steps']} steps of {regime['batch_size']} × {block} bytes on {device}")
        out = rank_sweep(task, ranks, regime["steps"], lr=args.lr, full_lr=args.full_lr,
                         batch_size=regime["batch_size"], block_size=block, device=device, keep=(8, 64),
                         prompt=None if args.smoke else "def ", deltas=True)
        for row in out["rows"]:
            print(f"  r={row['r']!s:>4}: {row['trainable']:>9,} trainable, val {row['val_loss']:.4f} nats/byte, "
                  f"{row['seconds']:.1f} s")
        grids = {n: similarity_grid(out["factors"][8][n], out["factors"][64][n]).round(6).tolist()
                 for n in out["factors"][8]}
        epochs = regime["steps"] * regime["batch_size"] * block / len(task.train.encode("utf-8"))
        result["regimes"][name] = {**regime, "epochs": round(epochs, 3), "rows": out["rows"],
                                   "spectra": _spectra(out["deltas"]), "similarity_r8_r64": grids}
    gentle = regimes["gentle"]
    print("alpha/r versus alpha/sqrt(r) (rsLoRA), gentle regime, alpha = 8")
    scaling = []
    for rs in (False, True):
        out = rank_sweep(task, ranks, gentle["steps"], lr=args.lr, full_lr=None, batch_size=gentle["batch_size"],
                         block_size=block, device=device, alpha=8, rslora=rs, prompt=None)
        for row in out["rows"]:
            scaling.append({"rule": "alpha/sqrt(r)" if rs else "alpha/r", "r": row["r"], "val_loss": row["val_loss"]})
    result["scaling"] = scaling
    hardware = torch.cuda.get_device_name(device) if device.type == "cuda" else \
        f"{platform.processor() or platform.machine()}, {torch.get_num_threads()} CPU threads"
    result.update({"hardware": hardware, "torch": torch.__version__, "lora_edu": __version__,
                   "seconds": round(time.time() - t0), "smoke": args.smoke,
                   "command": "python -m lora_edu.sweep" + (" --smoke" if args.smoke else "")})
    args.out.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(args.out, lambda tmp: Path(tmp).write_text(json.dumps(result) + "\n"))
    print(f"wrote {args.out} ({args.out.stat().st_size / 1e3:.0f} kB) in {result['seconds']} s")
    return args.out


if __name__ == "__main__":
    main()
