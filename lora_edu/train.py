"""The training loop of chapter 5: AdamW on the trainable parameters, warmup + cosine, clipping, bf16 on CUDA.

The same loop pretrains the shipped GPT (every parameter trainable) and fine-tunes it (only LoRA's M and N
trainable after `apply_lora`). Text goes in as str; tokens are bytes (see `lora_edu.gpt.encode`).
"""
from __future__ import annotations

import contextlib
import math
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch
import torch.nn as nn

from ._checks import check_bool, check_int, check_module, check_path, check_real, check_values
from .data import as_tokens, check_length, get_batch, window_pairs, window_starts
from .gpt import pick_device
from .lora import lora_layers, save_adapter

__all__ = ["finetune", "evaluate", "History", "TrainingDiverged", "rank_sweep"]


class TrainingDiverged(FloatingPointError):
    """The loss or the gradient became NaN/inf; the model keeps the weights of the last good step."""


@dataclass
class History:
    """What a run measured: one row per evaluation, plus the loss of every step."""
    rows: list = field(default_factory=list)          # dicts: step, train_loss, val_loss, tokens (so far),
    step_loss: list = field(default_factory=list)     # tokens_per_s (since the last row), peak_memory, wall_time
                                                      # (seconds of training so far, evaluations excluded)
    device: str = "cpu"
    trainable: int = 0
    state_bytes: int = 0     # parameters + their gradients + AdamW's two moments, in bytes
    best_val_loss: float | None = None   # set when keep_best restored the best evaluation
    start_val_loss: float | None = None  # the validation loss before the first step

    def column(self, name: str) -> list:
        """One column of the rows, e.g. history.column("val_loss")."""
        if self.rows and name not in self.rows[0]:
            raise KeyError(f"no column {name!r}; columns are {list(self.rows[0])}")
        return [r[name] for r in self.rows]

    @property
    def final(self) -> dict:
        """The last row: the numbers at the end of training."""
        return self.rows[-1]

    @property
    def tokens_per_s(self) -> float:
        """Training speed over the whole run: tokens trained / wall_time (evaluations excluded)."""
        return self.final["tokens"] / self.final["wall_time"]

    def __repr__(self):
        if not self.rows:
            return "History(empty)"
        f = self.final
        return (f"History({f['step']} steps on {self.device}: train {f['train_loss']:.3f}, val {f['val_loss']:.3f} "
                f"nats/byte, {self.tokens_per_s:,.0f} tokens/s, {f['wall_time']:.1f} s)")


def _autocast(device: torch.device):
    if device.type == "cuda":
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()


@torch.no_grad()
def evaluate(model: nn.Module, text, block_size: int = 256, windows: int | None = 64, batch_size: int = 32) -> float:
    """Mean next-byte loss (nats/byte) over `windows` evenly spaced windows of `text` (the same every call), or with
    windows=None over every non-overlapping window: the whole text, which a comparison of close runs needs (64
    windows spread a difference between two runs by about 0.006 nats/byte: benchmarks/eval_noise.py)."""
    check_values(check_module(model), "evaluate")
    tokens = as_tokens(text)
    block_size = check_int(block_size, "block_size", 1)
    batch_size = check_int(batch_size, "batch_size", 1)
    check_length(tokens, block_size)
    device = next(model.parameters()).device
    starts = window_starts(tokens, block_size, windows)                                  # (windows,)
    windows = len(starts)
    was_training = model.training
    model.eval()
    total = 0.0
    try:
        for chunk in starts.split(batch_size):
            x, y = window_pairs(tokens, chunk, block_size)                                # (b, T) each
            with _autocast(device):
                _, loss = model(x.to(device), y.to(device))
            total += loss.item() * len(chunk)
    finally:
        model.train(was_training)
    return total / windows


def _lr_at(step: int, steps: int, lr: float, warmup: int, min_ratio: float) -> float:
    """Linear warmup to lr over `warmup` steps, then a cosine down to lr · min_ratio at the last step."""
    if step < warmup:
        return lr * (step + 1) / warmup
    progress = (step - warmup) / max(1, steps - warmup)
    return lr * (min_ratio + (1 - min_ratio) * 0.5 * (1 + math.cos(math.pi * progress)))


def _param_groups(model: nn.Module, weight_decay: float, lora_weight_decay: float):
    lora = {id(p) for layer in lora_layers(model).values() for p in (layer.M, layer.N)}
    groups = {"decay": [], "lora": [], "none": []}
    for p in (p for p in model.parameters() if p.requires_grad):    # shared tensors come once
        groups["lora" if id(p) in lora else "decay" if p.dim() >= 2 else "none"].append(p)
    return [{"params": groups["decay"], "weight_decay": weight_decay},
            {"params": groups["lora"], "weight_decay": lora_weight_decay},
            {"params": groups["none"], "weight_decay": 0.0}]


def finetune(model: nn.Module, train, val, steps: int, lr: float = 1e-3, batch_size: int = 16,
             block_size: int = 256, device="auto", *, warmup: int | None = None, min_lr_ratio: float = 0.1,
             weight_decay: float = 0.0, lora_weight_decay: float = 0.0, grad_clip: float = 1.0,
             eval_every: int | None = None, eval_windows: int = 64, seed: int = 0, progress: bool = True,
             keep_best: bool = False, checkpoint=None) -> History:
    """Train the model's trainable parameters on `train` (text) and measure on `val`; returns a History.

    The model is moved to `device` ('auto': CUDA, else MPS, else CPU) and trained in place. AdamW with linear
    warmup and a cosine decay, gradients clipped to `grad_clip`, bf16 autocast on CUDA. Every `eval_every` steps
    (and at the end) the validation loss is measured; `keep_best` restores the trainable weights of the best
    evaluation at the end; `checkpoint` (a folder) saves the adapter there at each evaluation. A NaN/inf loss or
    gradient raises TrainingDiverged before the optimizer steps, so the model keeps its last good weights.
    """
    check_values(check_module(model), "finetune")
    steps = check_int(steps, "steps", 1)
    lr = check_real(lr, "lr", lo=0.0, lo_open=True)
    batch_size = check_int(batch_size, "batch_size", 1)
    block_size = check_int(block_size, "block_size", 1, getattr(getattr(model, "config", None), "block_size", None))
    warmup = min(100, steps // 10) if warmup is None else check_int(warmup, "warmup", 0, steps)
    min_lr_ratio = check_real(min_lr_ratio, "min_lr_ratio", 0.0, 1.0)
    weight_decay = check_real(weight_decay, "weight_decay", lo=0.0)
    lora_weight_decay = check_real(lora_weight_decay, "lora_weight_decay", lo=0.0)
    grad_clip = check_real(grad_clip, "grad_clip", lo=0.0, lo_open=True)
    eval_every = steps if eval_every is None else check_int(eval_every, "eval_every", 1)
    seed = check_int(seed, "seed", 0, 2 ** 63 - 1)                      # torch's seeds are 64-bit
    progress, keep_best = check_bool(progress, "progress"), check_bool(keep_best, "keep_best")
    if checkpoint is not None:
        if not lora_layers(model):
            raise ValueError("checkpoint saves the LoRA adapter, but the model has no LoRA layers; apply_lora first")
        if check_path(checkpoint, "checkpoint").exists() and not Path(checkpoint).is_dir():
            raise ValueError(f"checkpoint must be a folder for the adapter; {checkpoint} is a file")
    if any(l.merged for l in lora_layers(model).values()):
        raise ValueError("the model's LoRA layers are merged; unmerge() before training them")
    params = [p for p in model.parameters() if p.requires_grad]
    if not params:
        raise ValueError("the model has no trainable parameters; apply_lora or set requires_grad first")
    half = next(((n, p.dtype) for n, p in model.named_parameters() if p.requires_grad
                 and p.dtype in (torch.float16, torch.bfloat16)), None)
    if half is not None:
        raise ValueError(f"trainable parameter {half[0]} is {half[1]}; finetune trains float32 weights (AdamW's "
                         f"moments and its eps underflow in half precision: the first step would write NaN). Call "
                         f"model.float() first; on CUDA the matrix products already run in bf16 under autocast")
    train_tokens, val_tokens = as_tokens(train), as_tokens(val)
    check_length(train_tokens, block_size, "the train text")
    check_length(val_tokens, block_size, "the val text")

    device = pick_device(device)
    model.to(device)
    torch.manual_seed(seed)                                              # dropout
    gen = torch.Generator().manual_seed(seed)                            # which windows are read
    opt = torch.optim.AdamW(_param_groups(model, weight_decay, lora_weight_decay), lr=lr, betas=(0.9, 0.95),
                            foreach=device.type != "cpu")
    trainable = sum(p.numel() for p in params)
    hist = History(device=str(device), trainable=trainable,
                   state_bytes=sum(4 * p.numel() * p.element_size() for p in params))
    hist.start_val_loss = evaluate(model, val_tokens, block_size, eval_windows, batch_size)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    best, best_state = math.inf, None
    bar = None
    was_training = model.training
    if progress:
        from tqdm.auto import tqdm
        bar = tqdm(total=steps, desc=f"training on {device}", unit="step")
    model.train()
    start = window_start = time.perf_counter()
    window_tokens, window_loss, window_steps, eval_time = 0, 0.0, 0, 0.0
    try:
        for step in range(steps):
            for g in opt.param_groups:
                g["lr"] = _lr_at(step, steps, lr, warmup, min_lr_ratio)
            x, y = get_batch(train_tokens, batch_size, block_size, gen)
            x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
            with _autocast(device):
                _, loss = model(x, y)
            value = loss.item()
            if not math.isfinite(value):
                raise TrainingDiverged(f"the training loss became {value} at step {step + 1}; the model keeps the "
                                       f"weights of step {step}. Lower lr (now {lr:g}) or check the data.")
            opt.zero_grad(set_to_none=True)
            loss.backward()
            norm = torch.nn.utils.clip_grad_norm_(params, grad_clip)
            if not torch.isfinite(norm):
                opt.zero_grad(set_to_none=True)
                raise TrainingDiverged(f"the gradient became {norm.item()} at step {step + 1}; the model keeps the "
                                       f"weights of step {step}. Lower lr (now {lr:g}) or check the data.")
            opt.step()
            hist.step_loss.append(value)
            window_tokens += x.numel()
            window_loss += value
            window_steps += 1
            if bar is not None:
                bar.update(1)
                if step % 10 == 0 or step == steps - 1:
                    bar.set_postfix(loss=f"{value:.3f}")
            if (step + 1) % eval_every == 0 or step == steps - 1:
                if device.type == "cuda":
                    torch.cuda.synchronize(device)
                now = time.perf_counter()
                speed = window_tokens / (now - window_start)
                val_loss = evaluate(model, val_tokens, block_size, eval_windows, batch_size)
                hist.rows.append(dict(step=step + 1, train_loss=window_loss / window_steps, val_loss=val_loss,
                                      tokens=(step + 1) * batch_size * block_size, tokens_per_s=speed,
                                      wall_time=now - start - eval_time,
                                      peak_memory=torch.cuda.max_memory_allocated(device)
                                      if device.type == "cuda" else None))
                if bar is not None:
                    bar.set_postfix(loss=f"{value:.3f}", val=f"{val_loss:.3f}")
                if keep_best and val_loss < best:
                    best = val_loss
                    best_state = {k: v.detach().clone() for k, v in _trainable_state(model).items()}
                if checkpoint is not None:
                    save_adapter(model, checkpoint)
                eval_time += time.perf_counter() - now
                window_start = time.perf_counter()
                window_tokens, window_loss, window_steps = 0, 0.0, 0
    except TrainingDiverged as e:
        e.history = hist
        raise
    finally:
        if bar is not None:
            bar.close()
        opt.zero_grad(set_to_none=True)
        model.train(was_training)                                        # back to the mode it came in
    if keep_best and best_state is not None:
        with torch.no_grad():
            for k, v in _trainable_state(model).items():
                v.copy_(best_state[k])
        hist.best_val_loss = best
    return hist


def _trainable_state(model: nn.Module) -> dict:
    return {name: p for name, p in model.named_parameters() if p.requires_grad}


def rank_sweep(task, ranks=(1, 2, 4, 8, 16, 32, 64), steps: int = 150, lr: float = 3e-3, full_lr: float | None = 3e-4,
               batch_size: int = 16, block_size: int = 128, device="auto", alpha=None, rslora: bool = False,
               keep=(), seed: int = 0, prompt: str = "", progress: bool = False, deltas: bool = False,
               eval_windows: int | None = 64) -> dict:
    """Fine-tune the shipped GPT once per LoRA rank (and fully, unless full_lr is None) on `task` (a Corpus).

    Every run starts from the same base, reads the same batches and uses the same steps and learning-rate rule;
    each is seeded by itself, so a run of rank r gives the same result whichever other ranks are swept with it.
    val_loss is scored on `eval_windows` windows of the validation text (None: all of it, as evaluate()).
    Returns {"rows": [{r, trainable, val_loss, train_loss, seconds, sample}, ...] (r = "full" for full
    fine-tuning), "factors": {r: {layer: M (in, r) as numpy}} for the ranks in `keep`}; with `deltas`, also
    "deltas": {layer: ΔW (in, out)} of the full fine-tune (W after − W before).
    """
    from .gpt import LORA_TARGETS, load_pretrained
    from .lora import apply_lora
    from .data import Corpus
    if not isinstance(task, Corpus):
        raise TypeError(f"task must be a Corpus (lora_edu.data.corpus(name) or load_text(path)); got {task!r:.60}")
    ranks = [check_int(r, "r", 1, 256) for r in ranks]
    progress, deltas = check_bool(progress, "progress"), check_bool(deltas, "deltas")
    if not ranks and full_lr is None:
        raise ValueError("nothing to run: ranks is empty and full_lr is None (no full fine-tuning)")
    if not all(hasattr(task, k) for k in ("train", "val")):
        raise TypeError(f"task must be a Corpus (lora_edu.data.corpus or load_text); got {type(task).__name__}")
    out = {"rows": [], "factors": {}}
    runs = [(r, lr) for r in ranks] + ([("full", full_lr)] if full_lr is not None else [])
    for r, rate in runs:
        model = load_pretrained()
        if r != "full":
            torch.manual_seed(seed)                     # M's initialisation: each run alike, whatever ran before
            apply_lora(model, LORA_TARGETS, r=r, alpha=alpha, rslora=rslora)
        hist = finetune(model, task.train, task.val, steps=steps, lr=rate, batch_size=batch_size,
                        block_size=block_size, device=device, eval_every=steps, seed=seed, progress=progress)
        val = evaluate(model, task.val, block_size, eval_windows)       # 64: the same windows as the last eval
        model.cpu()
        row = {"r": r, "trainable": hist.trainable, "val_loss": val,
               "train_loss": hist.final["train_loss"], "seconds": hist.final["wall_time"]}
        if prompt is not None:
            row["sample"] = model.generate(prompt, 200, seed=seed)
        out["rows"].append(row)
        if r in keep:
            from .lora import lora_layers
            out["factors"][r] = {n: l.M.detach().double().numpy() for n, l in lora_layers(model).items()}
        if r == "full" and deltas:
            from .lora import weight_deltas
            out["deltas"] = weight_deltas(load_pretrained(), model, LORA_TARGETS)
    return out
