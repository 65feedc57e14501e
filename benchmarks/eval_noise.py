"""How noisy is `evaluate`? Its 64 evenly spaced windows against the whole validation text, on the sweep's task.

Fine-tunes two LoRA adapters (r = 4 and r = 16, the gentle regime of the cpu budget, as the stored sweep) and
scores them and the base model on every non-overlapping window of the code task's validation text. Prints, per
model, evaluate()'s 64-window loss beside the whole text's, the spread (standard deviation) of a 64-window mean
over random sets of windows, and the same for the difference between the two adapters on the same windows — the
quantity a rank sweep compares against its tolerance. About 3 minutes on a 2-core CPU.

    python benchmarks/eval_noise.py
"""
import platform

import numpy as np
import torch
import torch.nn.functional as F

from lora_edu.data import as_tokens, window_pairs, window_starts
from lora_edu.gpt import LORA_TARGETS, load_pretrained
from lora_edu.lora import apply_lora
from lora_edu.sweep import BUDGETS, REGIMES, budget_task, load_results
from lora_edu.train import evaluate, finetune


def window_losses(model, text, block):
    """Mean loss of every non-overlapping window of `text`: (n_windows,)."""
    tokens = as_tokens(text)
    starts = window_starts(tokens, block)                                               # every window once
    model.eval()
    out = []
    with torch.no_grad():
        for chunk in starts.split(64):
            x, y = window_pairs(tokens, chunk, block)                               # (b, T) each
            out.append(F.cross_entropy(model(x).float().transpose(1, 2), y, reduction="none").mean(1))
    return torch.cat(out).numpy()


def main():
    stored, cpu = load_results(), BUDGETS["cpu"]
    task, steps, block = budget_task("code", "cpu"), REGIMES["gentle"], cpu["block_size"]
    models = {"base": load_pretrained()}
    for r in (4, 16):
        m = load_pretrained()
        apply_lora(m, LORA_TARGETS, r=r)
        finetune(m, task.train, task.val, steps=steps, lr=stored["lr"], batch_size=cpu["batch_size"],
                 block_size=block, device="cpu", eval_every=steps, progress=False)
        models[f"LoRA r={r}"] = m
    losses = {name: window_losses(m, task.val, block) for name, m in models.items()}
    rng = np.random.default_rng(0)
    subsets = [rng.choice(len(losses["base"]), 64, replace=False) for _ in range(2000)]
    spread = lambda w: float(np.std([w[i].mean() for i in subsets]))
    print(f"machine: {platform.processor() or platform.machine()}, {torch.get_num_threads()} threads, torch {torch.__version__}")
    print(f"task {task.name}: validation text of {len(losses['base']):,} windows of {block} bytes\n")
    print(f"{'model':12} {'evaluate (64)':>14} {'whole text':>11} {'64 − whole':>11} {'spread of a 64-window mean':>27}")
    for name, m in models.items():
        e64 = evaluate(m, task.val, block)
        w = losses[name]
        print(f"{name:12} {e64:14.4f} {w.mean():11.4f} {e64 - w.mean():+11.4f} {spread(w):27.4f}")
    d = losses["LoRA r=4"] - losses["LoRA r=16"]
    print(f"\nr=4 minus r=16 on the same windows: whole text {d.mean():+.4f}; spread of a 64-window mean {spread(d):.4f} "
          f"(the sweep's tolerance: 0.01)")


if __name__ == "__main__":
    main()
