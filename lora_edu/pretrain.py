"""Reproduce the shipped GPT: pretrain it on Python's documentation (`python -m lora_edu.pretrain`).

The command and its defaults are the ones that made lora_edu/checkpoints/gpt_docs.*; the card written beside the
weights records the corpus, steps, tokens seen, losses, hardware and time of the run.
"""
from __future__ import annotations

import platform
import sys
import time
from pathlib import Path

import torch

from . import __version__
from ._checks import check_int
from .data import corpus
from .gpt import CHECKPOINT, GPT, GPTConfig, pick_device, save_model
from .train import evaluate, finetune

DEFAULT_OUT = Path(__file__).parent / "checkpoints" / CHECKPOINT


def hardware(device: torch.device) -> str:
    """A short description of the machine a run used."""
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    name = platform.processor() or platform.machine()
    try:  # Linux names the processor here; platform.processor() is often empty there
        name = next(line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return f"{name}, {torch.get_num_threads()} CPU threads"


def main(argv=None) -> Path:
    from .cli import _Parser
    ap = _Parser(prog="lora-edu pretrain", description=__doc__.split("\n")[0])
    ap.add_argument("--steps", type=int, default=2400)
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--block-size", type=int, default=256)
    ap.add_argument("--n-layer", type=int, default=4)
    ap.add_argument("--n-embd", type=int, default=256)
    ap.add_argument("--n-head", type=int, default=4)
    ap.add_argument("--dropout", type=float, default=0.0)
    ap.add_argument("--weight-decay", type=float, default=0.1)
    ap.add_argument("--eval-every", type=int, default=200)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--device", default="auto")
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT, help="writes OUT.safetensors and OUT.json")
    args = ap.parse_args(argv)
    check_int(args.steps, "--steps", 1)                  # before announcing a run that cannot start
    if args.out.name in ("", ".", ".."):
        raise ValueError(f"--out must name the model's files (OUT.safetensors and OUT.json); got {str(args.out)!r}")
    try:                                                 # the folder must be writable before any training starts
        args.out.parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise ValueError(f"--out: cannot make the folder {args.out.parent} ({e.strerror or e})") from None

    device = pick_device(args.device)
    torch.manual_seed(args.seed)
    cfg = GPTConfig(block_size=args.block_size, n_layer=args.n_layer, n_head=args.n_head, n_embd=args.n_embd,
                    dropout=args.dropout)
    model = GPT(cfg)
    docs = corpus("docs")
    print(f"pretraining a {model.num_params():,}-parameter GPT on {docs!r} for {args.steps} steps on {device}")
    t0 = time.time()
    hist = finetune(model, docs.train, docs.val, steps=args.steps, lr=args.lr, batch_size=args.batch_size,
                    block_size=args.block_size, device=device, weight_decay=args.weight_decay,
                    eval_every=args.eval_every, seed=args.seed, keep_best=True)
    seconds = time.time() - t0
    model.eval()
    best = min(hist.rows, key=lambda r: r["val_loss"])
    card = {"corpus": "docs", "corpus_chars": {"train": len(docs.train), "val": len(docs.val)},
            "python": platform.python_version(), "steps": best["step"], "steps_run": args.steps,
            "tokens_seen": best["step"] * args.batch_size * args.block_size,
            "train_loss": round(best["train_loss"], 4), "val_loss": round(evaluate(model, docs.val, args.block_size), 4),
            "loss_unit": "nats/byte", "eval": f"lora_edu.train.evaluate(model, corpus('docs').val, {args.block_size})",
            "hardware": hardware(device), "torch": torch.__version__, "seconds": round(seconds),
            "lora_edu": __version__, "command": "python -m lora_edu.pretrain " + " ".join(argv or sys.argv[1:]),
            "history": [{k: (round(v, 4) if isinstance(v, float) else v) for k, v in r.items()} for r in hist.rows]}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    path = save_model(model, args.out, card)
    print(f"best val loss {card['val_loss']:.4f} nats/byte at step {best['step']}; {seconds:.0f} s; wrote {path}")
    print(model.generate("The ", 300, seed=0))
    return path


if __name__ == "__main__":                      # through the CLI: a user error is one line, never a traceback
    from .cli import main as cli
    sys.exit(cli(["pretrain", *sys.argv[1:]]))
