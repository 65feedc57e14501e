"""`lora-edu`: fine-tune the shipped GPT with LoRA, sample from it, and describe it — from a terminal.

    lora-edu finetune --task code --rank 8 --steps 300 --out adapters/code
    lora-edu generate --adapter adapters/code --prompt "def "
    lora-edu info
    lora-edu pretrain --steps 2000          (same as python -m lora_edu.pretrain)
    lora-edu grade submissions/ --csv gradebook.csv   (see lora_edu.course)
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch


def _load(args):
    from .gpt import load_pretrained, pick_device
    from .lora import load_adapter
    model = load_pretrained(device=pick_device(args.device))
    if getattr(args, "adapter", None):
        load_adapter(model, args.adapter)
    return model


def _corpus(args):
    from .data import corpus, load_text
    return load_text(args.text) if args.text else corpus(args.task)


def _check_finetune(args) -> None:
    """Every number and path of `finetune`, checked before the model is even loaded."""
    from ._checks import check_int, check_real
    from .gpt import GPTConfig
    check_int(args.rank, "--rank", 1, GPTConfig().n_embd,                # the narrowest adapted matrix: 256 wide
              where=" (the shipped GPT's adapted matrices are at least 256 wide)")
    check_int(args.steps, "--steps", 1)
    check_real(args.lr, "--lr", lo=0.0, lo_open=True)
    check_int(args.batch_size, "--batch-size", 1)
    check_int(args.block_size, "--block-size", 1, GPTConfig().block_size)
    check_int(args.eval_every, "--eval-every", 1)
    check_int(args.tokens, "--tokens", 0)
    check_real(args.temperature, "--temperature", lo=0.0)
    if args.alpha is not None:
        check_real(args.alpha, "--alpha", lo=0.0, lo_open=True)
    if args.out.exists() and not args.out.is_dir():
        raise ValueError(f"--out must be a folder for the adapter; {args.out} is a file")
    if args.text is not None and not args.text.is_file():
        raise FileNotFoundError(f"--text: no text file at {args.text}")
    from .gpt import pick_device
    pick_device(args.device)
    try:                                            # the folder must be writable before any training starts
        args.out.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise ValueError(f"--out: cannot make the folder {args.out} ({e.strerror or e})") from None


def cmd_finetune(args) -> int:
    from .gpt import LORA_TARGETS
    from .lora import apply_lora, count_parameters
    from .train import evaluate, finetune
    _check_finetune(args)
    model = _load(args)
    data = _corpus(args)
    print(f"task: {data!r}")
    print(f"model: the shipped GPT ({model.num_params():,} parameters, pretrained on {model.card['corpus']!r}) "
          f"on {next(model.parameters()).device}")
    names = apply_lora(model, LORA_TARGETS, r=args.rank, alpha=args.alpha)
    print(f"LoRA r={args.rank} on {len(names)} matrices ({', '.join(LORA_TARGETS)}): {count_parameters(model)}")
    before = evaluate(model, data.val, args.block_size)
    print(f"validation loss before: {before:.4f} nats/byte")
    hist = finetune(model, data.train, data.val, steps=args.steps, lr=args.lr, batch_size=args.batch_size,
                    block_size=args.block_size, device=args.device, eval_every=args.eval_every, seed=args.seed,
                    progress=not args.quiet, checkpoint=args.out)
    after = evaluate(model, data.val, args.block_size)          # the adapter was saved at the last evaluation
    size = sum(f.stat().st_size for f in Path(args.out).iterdir())
    f = hist.final
    print(f"validation loss after:  {after:.4f} nats/byte ({after - before:+.4f}); {hist.tokens_per_s:,.0f} tokens/s, "
          f"{f['wall_time']:.1f} s")
    print(f"wrote the adapter to {args.out} ({size / 1e3:.0f} kB)")
    print("sample:\n" + model.generate(args.prompt, args.tokens, temperature=args.temperature, seed=args.seed))
    return 0


def cmd_generate(args) -> int:
    model = _load(args)
    print(model.generate(args.prompt, args.tokens, temperature=args.temperature, top_k=args.top_k, seed=args.seed))
    return 0


def cmd_info(args) -> int:
    from . import __version__
    from .gpt import pick_device
    model = _load(args)
    card = {k: v for k, v in model.card.items() if k != "history"}
    print(f"lora_edu {__version__}, torch {torch.__version__}, device 'auto' -> {pick_device('auto')}")
    print(f"shipped GPT: {model.num_params():,} parameters")
    print(json.dumps(card, indent=1))
    return 0


def _folder(text: str) -> Path:
    """An --out argument: a non-empty path (argparse turns the error into `argument --out: …`)."""
    if not text.strip():
        raise argparse.ArgumentTypeError(f"must name a folder; got {text!r}")
    return Path(text)


class _UsageError(Exception):
    pass


class _Parser(argparse.ArgumentParser):
    """argparse that reports a bad command line as one line `lora-edu CMD: error: …` (main returns 2)."""

    def error(self, message):
        raise _UsageError(f"{self.prog}: error: {message}")


USER_ERRORS = (ValueError, TypeError, OSError, RuntimeError, _UsageError)


def _run(name, fn, argv) -> int:
    """fn(argv) for a command with its own parser: its errors as one line, exit status 2; --help returns 0."""
    try:
        out = fn(argv)
    except SystemExit as e:                      # argparse inside fn: --help
        return e.code if isinstance(e.code, int) else 2
    except _UsageError as e:                     # a bad option, from fn's _Parser: already says `prog: error:`
        print(e, file=sys.stderr)
        return 2
    except USER_ERRORS as e:
        print(f"lora-edu {name}: error: {e}", file=sys.stderr)
        return 2
    return out if isinstance(out, int) else 0


def main(argv=None) -> int:
    """Run one command; a user error is one line on stderr and exit status 2 (never a traceback)."""
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv[:1] == ["pretrain"]:
        from .pretrain import main as pretrain
        return _run("pretrain", pretrain, argv[1:])
    if argv[:1] == ["grade"]:
        from .course import grade_main
        return _run("grade", grade_main, argv[1:])
    from .data import CORPORA
    ap = _Parser(prog="lora-edu", description=__doc__.split("\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    ft = sub.add_parser("finetune", help="fine-tune the shipped GPT with LoRA and save the adapter")
    src = ft.add_mutually_exclusive_group()
    src.add_argument("--task", choices=sorted(c for c in CORPORA if c != "docs"), default="code")
    src.add_argument("--text", type=Path, help="a UTF-8 text file of your own instead of a task")
    ft.add_argument("--rank", type=int, default=8)
    ft.add_argument("--alpha", type=float, default=None, help="LoRA α (default: α = r, so the scale α/r is 1)")
    ft.add_argument("--steps", type=int, default=300)
    ft.add_argument("--lr", type=float, default=2e-3)
    ft.add_argument("--batch-size", type=int, default=16)
    ft.add_argument("--block-size", type=int, default=256)
    ft.add_argument("--eval-every", type=int, default=100)
    ft.add_argument("--out", type=_folder, required=True, help="folder for adapter.safetensors + adapter.json")
    ft.add_argument("--quiet", action="store_true", help="no progress bar")
    gen = sub.add_parser("generate", help="sample text from the shipped GPT, with an adapter if given")
    gen.add_argument("--adapter", type=Path)
    gen.add_argument("--top-k", type=int, default=None)
    for p in (ft, gen):
        p.add_argument("--prompt", default="")
        p.add_argument("--tokens", type=int, default=300, help="how many bytes to generate")
        p.add_argument("--temperature", type=float, default=0.8)
        p.add_argument("--seed", type=int, default=0)
    info = sub.add_parser("info", help="describe the shipped GPT and the device that would be used")
    sub.add_parser("pretrain", help="reproduce the shipped GPT (lora-edu pretrain --help)", add_help=False)
    sub.add_parser("grade", help="grade submitted notebooks against the reference chapters (lora-edu grade --help)",
                   add_help=False)
    for p in (ft, gen, info):
        p.add_argument("--device", default="auto", help="auto (CUDA, else MPS, else CPU), cpu, cuda or mps")
    try:
        args = ap.parse_args(argv)
    except _UsageError as e:
        print(e, file=sys.stderr)
        return 2
    except SystemExit as e:                      # --help
        return e.code if isinstance(e.code, int) else 0
    commands = {"finetune": cmd_finetune, "generate": cmd_generate, "info": cmd_info}
    return _run(args.cmd, lambda _: commands[args.cmd](args), None)


if __name__ == "__main__":
    sys.exit(main())
