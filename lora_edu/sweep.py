"""Chapter 6's measurements, stored: `python -m lora_edu.sweep` writes lora_edu/results/rank_sweep.json.

For each regime — a gentle fine-tune (about 1.3 epochs of the code task) and a long one (about 9) — it fine-tunes
the shipped GPT with LoRA at every rank of RANKS and fully, all from the same base with the same batches, steps
and learning-rate rule; it stores the validation losses, trainable counts, times and a sample per run, the
singular values of the full fine-tune's ΔW for all sixteen matrices beside a random matrix of the same shape and
norm, the LoRA paper's subspace similarity between the r=8 and r=64 adapters, and the same for the r=8 adapter
against the top 64 principal directions of each matrix's inputs (a baseline: how much agreement the data explains). A short α/r versus α/√r
(rsLoRA) sweep follows (α = 8 for both, and α = 1 for α/√r), then the gentle regime again with two more seeds
(the noise between runs) and with learning rates a tenth, a third and ten thirds of the sweep's (is one rate
fair to every rank?). The default budget is GPU work (minutes on one GPU). `--budget cpu` keeps the epochs of
both regimes but shrinks the rest to fit a laptop: the first 190,000 bytes of the task's training text, batches
of 16 × 128 bytes. `--smoke` runs the same code on a tiny budget anywhere. `load_results()` reads the stored file.
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
from ._checks import check_real
from ._io import write_atomic
from .data import Corpus, as_tokens, check_length, corpus, window_pairs, window_starts
from .gpt import LORA_TARGETS, load_pretrained, pick_device
from .lora import _matches, similarity_grid
from .pretrain import hardware
from .rank import singular_values
from .train import TrainingDiverged, evaluate, rank_sweep

RANKS = (1, 2, 4, 8, 16, 32, 64)
REGIMES = {"gentle": 120, "long": 800}  # steps; the batches fix the epochs
BUDGETS = {"gpu": {"batch_size": 64, "block_size": 256, "train_bytes": None, "eval_windows": None},
           "cpu": {"batch_size": 16, "block_size": 128, "train_bytes": 190_000, "eval_windows": None},
           "smoke": {"batch_size": 2, "block_size": 32, "train_bytes": 20_000, "eval_windows": 64}}
# eval_windows: runs are scored on every window of the validation text (None), since 64 windows spread the
# difference between two runs by ~0.006 nats/byte (benchmarks/eval_noise.py); the smoke budget keeps 64.
SCALINGS = ((8, False), (8, True), (1, True))   # (α, rsLoRA): α/r and α/√r at α = 8, α/√r at α = 1
SEEDS = (1, 2)             # the gentle regime again with these seeds (the sweep itself is seed 0)
LR_FACTORS = (1 / 10, 1 / 3, 10 / 3)  # and with the LoRA and full rates times these (3e-4, 1e-3, 1e-2 for 3e-3)
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


def input_directions(model: torch.nn.Module, text, targets=LORA_TARGETS, k: int = 64, block_size: int = 128,
                     windows: int = 64) -> dict:
    """{layer: P (in, k)}: the top-k principal directions of what each targeted nn.Linear reads (eigenvectors of
    its inputs' XᵀX, uncentred, largest first), over `windows` evenly spaced windows of `text` — the baseline an
    adapter's input side M (in, r) is compared with: do two adapters agree beyond the directions the data occupies?"""
    tokens = as_tokens(text)
    check_length(tokens, block_size)
    grams, hooks = {}, []

    def keep(name):
        def hook(module, inputs, output):
            x = inputs[0].detach().double().reshape(-1, inputs[0].shape[-1])          # (tokens, in)
            grams[name] = grams.get(name, 0) + x.T @ x                                 # (in, in)
        return hook

    for name, m in model.named_modules():
        if isinstance(m, torch.nn.Linear) and _matches(name, targets):
            hooks.append(m.register_forward_hook(keep(name)))
    if not hooks:
        raise ValueError(f"no nn.Linear in the model matches targets {targets!r}")
    starts = window_starts(tokens, block_size, windows)
    device = next(model.parameters()).device
    try:
        with torch.no_grad():
            for chunk in starts.split(32):
                model(window_pairs(tokens, chunk, block_size)[0].to(device))
    finally:
        for h in hooks:
            h.remove()
    out = {}
    for name, G in grams.items():
        vectors = torch.linalg.eigh(G.cpu())[1]                                         # ascending eigenvalues
        out[name] = vectors.flip(-1)[:, :min(k, G.shape[0])].numpy()
    return out


def _losses(task, ranks, lr, full_lr, seed=0, **kw) -> list:
    """[{r, lr, val_loss}], one rank_sweep run at a time (full too unless full_lr is None); diverged: val_loss None."""
    rows = []
    for r, rate in [(r, lr) for r in ranks] + ([("full", full_lr)] if full_lr is not None else []):
        try:
            out = rank_sweep(task, [] if r == "full" else [r], full_lr=rate if r == "full" else None, lr=lr,
                             seed=seed, prompt=None, **kw)
            loss = out["rows"][0]["val_loss"]
        except TrainingDiverged as err:
            print(f"  r={r}, lr={rate:g}: {err}")
            loss = None
        rows.append({"r": r, "lr": round(rate, 8), "val_loss": loss})
        print(f"  r={r!s:>4}, lr {rate:.2g}, seed {seed}: val {loss if loss is None else round(loss, 4)}")
    return rows


def load_results(path=None) -> dict:
    """The stored sweep (lora_edu/results/rank_sweep.json unless `path`) as a dict; see main() for its fields."""
    path = Path(DEFAULT_OUT if path is None else path)
    if not path.is_file():
        raise FileNotFoundError(f"no stored sweep at {path}; make one with `python -m lora_edu.sweep` "
                                "(a GPU: minutes) or `python -m lora_edu.sweep --budget cpu`")
    result = json.loads(path.read_text())
    if not isinstance(result, dict) or result.get("format") != "lora_edu.rank_sweep/1":
        raise ValueError(f"{path} is not a lora_edu rank sweep (format {result.get('format')!r} "
                         "if a dict); expected 'lora_edu.rank_sweep/1'")
    return result


def cheapest_rank(rows, tol: float = 0.01) -> int:
    """The smallest LoRA rank whose validation loss is within `tol` of the best rank's (rows as rank_sweep's)."""
    tol = check_real(tol, "tol", lo=0.0)
    lora = [row for row in rows if row["r"] != "full"] if isinstance(rows, (list, tuple)) else None
    if not lora:
        raise ValueError(f"rows must be a list of {{'r': rank, 'val_loss': loss}} with at least one LoRA rank; "
                         f"got {rows!r:.80}")
    best = min(row["val_loss"] for row in lora)
    return min(row["r"] for row in lora if row["val_loss"] <= best + tol)


def budget_task(task: str = "code", budget: str = "gpu") -> Corpus:
    """The task's corpus as a budget uses it: the first `train_bytes` of its training text, all of validation."""
    if budget not in BUDGETS:
        raise ValueError(f"budget must be one of {sorted(BUDGETS)}; got {budget!r}")
    full, cut = corpus(task), BUDGETS[budget]["train_bytes"]
    if cut is None:
        return full
    return Corpus(f"{task}[:{cut}]", full.train.encode("utf-8")[:cut].decode("utf-8", "ignore"), full.val)


def main(argv=None) -> Path:
    ap = argparse.ArgumentParser(prog="python -m lora_edu.sweep", description=__doc__.split("\n")[0])
    ap.add_argument("--task", default="code")
    ap.add_argument("--lr", type=float, default=3e-3, help="LoRA learning rate (every rank)")
    ap.add_argument("--full-lr", type=float, default=3e-4)
    ap.add_argument("--device", default="auto")
    ap.add_argument("--budget", choices=("gpu", "cpu"), default="gpu",
                    help="gpu: the whole task, 64 × 256-byte batches; cpu: the same epochs on a small part of it")
    ap.add_argument("--smoke", action="store_true", help="a tiny budget, to check the script anywhere")
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT)
    ap.add_argument("--resume", action="store_true",
                    help="keep the sections an interrupted run with the same arguments finished (OUT.partial.json)")
    args = ap.parse_args(argv)
    device = pick_device(args.device)
    budget = "smoke" if args.smoke else args.budget
    batch, block, windows = (BUDGETS[budget][k] for k in ("batch_size", "block_size", "eval_windows"))
    regimes, ranks = dict(REGIMES), RANKS
    if args.smoke:
        regimes, ranks = {"gentle": 2, "long": 4}, (8, 64)
    task = budget_task(args.task, budget)
    t0 = time.time()
    result = {"format": "lora_edu.rank_sweep/1", "task": task.name, "budget": budget, "ranks": list(ranks),
              "batch_size": batch, "block_size": block, "train_bytes": len(task.train.encode("utf-8")),
              "lr": args.lr, "full_lr": args.full_lr, "alpha_rule": "alpha = r (scaling 1)",
              "python": platform.python_version(),     # the code task is this Python's standard library
              "eval_windows": windows,                 # None: every non-overlapping window of the validation text
              "base_loss": evaluate(load_pretrained(), task.val, block, windows), "regimes": {}}
    # Each section is saved when it is done; --resume takes the finished ones of an interrupted run whose settings
    # (everything above) are the same, and the time they took.
    partial = args.out.with_name(args.out.stem + ".partial.json")
    done = json.loads(partial.read_text()) if args.resume and partial.is_file() else {}
    settings = {k: v for k, v in result.items() if k != "regimes"}
    if done and done.get("settings") != settings:
        raise SystemExit(f"{partial} comes from a run with other settings; delete it or run without --resume")
    done.setdefault("settings", settings)
    done.setdefault("sections", {})
    earlier = sum(s["seconds"] for s in done["sections"].values())

    def section(key, compute):
        """The section's value: from the interrupted run if it finished it, else computed now and saved."""
        if key not in done["sections"]:
            start = time.time()
            value = compute()
            done["sections"][key] = {"value": value, "seconds": round(time.time() - start)}
            write_atomic(partial, lambda tmp: Path(tmp).write_text(json.dumps(done) + "\n"))
        else:
            print(f"{key}: kept from the interrupted run ({partial.name})")
        return done["sections"][key]["value"]

    def regime(name, steps):
        print(f"regime {name!r}: {steps} steps of {batch} × {block} bytes of {task.name} on {device}")
        out = rank_sweep(task, ranks, steps, lr=args.lr, full_lr=args.full_lr, batch_size=batch,
                         block_size=block, device=device, keep=(8, 64), prompt=None if args.smoke else "def ",
                         deltas=True, eval_windows=windows)
        for row in out["rows"]:
            print(f"  r={row['r']!s:>4}: {row['trainable']:>9,} trainable, val {row['val_loss']:.4f} nats/byte, "
                  f"{row['seconds']:.1f} s")
        grids = {n: similarity_grid(out["factors"][8][n], out["factors"][64][n]).round(6).tolist()
                 for n in out["factors"][8]}
        to_inputs = {n: similarity_grid(out["factors"][8][n], data_dirs[n]).round(6).tolist() for n in out["factors"][8]}
        epochs = steps * batch * block / result["train_bytes"]
        return {"steps": steps, "epochs": round(epochs, 3), "rows": out["rows"], "spectra": _spectra(out["deltas"]),
                "similarity_r8_r64": grids, "similarity_r8_inputs": to_inputs}   # φ(M₈, the inputs' top 64 dirs)

    data_dirs = input_directions(load_pretrained().to(device), task.train, block_size=block)   # the same base for both
    for name, steps in regimes.items():
        result["regimes"][name] = section(f"regime {name}", lambda: regime(name, steps))
    gentle = dict(task=task, ranks=ranks, steps=regimes["gentle"], batch_size=batch, block_size=block, device=device,
                  eval_windows=windows)
    print("alpha/r versus alpha/sqrt(r) (rsLoRA), gentle regime")
    result["scaling"] = section("scaling", lambda: [
        {"rule": "alpha/sqrt(r)" if rs else "alpha/r", "alpha": alpha, "r": row["r"], "val_loss": row["val_loss"]}
        for alpha, rs in SCALINGS for row in _losses(lr=args.lr, full_lr=None, alpha=alpha, rslora=rs, **gentle)])
    print("the gentle regime with seeds", SEEDS)
    result["seeds"] = section("seeds", lambda: [dict(seed=seed, **row) for seed in SEEDS
                                                for row in _losses(lr=args.lr, full_lr=args.full_lr, seed=seed, **gentle)])
    print("the gentle regime with learning rates times", [round(f, 3) for f in LR_FACTORS])
    result["learning_rates"] = section("learning rates", lambda: [
        row for f in LR_FACTORS for row in _losses(lr=f * args.lr, full_lr=f * args.full_lr, **gentle)])
    result.update({"hardware": hardware(device), "torch": torch.__version__, "lora_edu": __version__,
                   "seconds": round(time.time() - t0 + earlier), "smoke": args.smoke,
                   "command": "python -m lora_edu.sweep" + (" --smoke" if args.smoke else f" --budget {budget}")})
    args.out.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(args.out, lambda tmp: Path(tmp).write_text(json.dumps(result) + "\n"))
    partial.unlink(missing_ok=True)
    print(f"wrote {args.out} ({args.out.stat().st_size / 1e3:.0f} kB) in {result['seconds']} s")
    return args.out


if __name__ == "__main__":
    main()
