"""Exercises of chapter 4 — LoRA."""
from __future__ import annotations

import numpy as np

from ..lora import lora_param_count
from . import Exercise, as_int, as_matrix_answer, call

__all__ = ["adapter_size", "lora_forward", "merge_weight", "budget_rank"]


def _adapter_size(answer):
    k = as_int(answer)
    d, r = 4096, 8
    if k == r * (d + d):
        return None
    known = {d * d: "that is the full 4096 × 4096 matrix; LoRA trains only M and N",
             r * d: "that counts only one factor; M (in × r) and N (r × out) are both trained",
             r * d * d: "that multiplies all three sizes; count the entries of M and N and add them"}
    return known.get(k, f"{k:,} is not it: M is in × r and N is r × out") + "."


adapter_size = Exercise(
    "4.1", "the size of one adapter", _adapter_size,
    hints=["M has shape (4096, 8) and N has shape (8, 4096).", "8·4096 + 8·4096."],
    solution="""
answer = 8 * (4096 + 4096)     # = 65,536 trainable numbers instead of 16,777,216 (0.4 %)""",
    correct="well under 1 % of the full matrix's numbers.")


_CASES = [(5, 6, 4, 2, 0.5, 0), (3, 8, 8, 1, 2.0, 1), (7, 4, 9, 3, 1.0, 2)]


def _shapes_and_data(B, d_in, d_out, r, scale, seed):
    rng = np.random.default_rng(seed)
    return (rng.standard_normal((B, d_in)), rng.standard_normal((d_in, d_out)), rng.standard_normal(d_out),
            rng.standard_normal((d_in, r)), rng.standard_normal((r, d_out)), scale)


def _lora_forward(fn):
    for case in _CASES:
        X, W, b, M, N, scale = _shapes_and_data(*case)
        shown = f"X {X.shape}, W {W.shape}, b {b.shape}, M {M.shape}, N {N.shape}, scale={scale}"
        got = as_matrix_answer(call(fn, (X, W, b, M, N, scale), "lora_forward", shown), "the output")
        want = X @ W + X @ M @ N * scale + b
        if got.shape != want.shape:
            return f"lora_forward({shown}) returned shape {got.shape}; expected (batch, out) = {want.shape}."
        if not np.allclose(got, want, atol=1e-6):
            if np.allclose(got, X @ W + X @ M @ N + b, atol=1e-6):
                return "the low-rank path must be multiplied by scale (α/r)."
            if np.allclose(got, X @ W + b, atol=1e-6):
                return "that is the base layer alone; the low-rank path is missing."
            return f"lora_forward({shown}) differs from the LoRA layer's output."
    return None


lora_forward = Exercise(
    "4.2", "the LoRA forward pass", _lora_forward,
    hints=["Two paths added together: the frozen X @ W + b, and the low-rank X @ M @ N · scale.",
           "Compute (X @ M) first: it is only (batch, r), so the low-rank path never forms the big M @ N."],
    solution="""
def lora_forward(X, W, b, M, N, scale):
    return X @ W + (X @ M) @ N * scale + b""",
    correct="lora_forward matches the LoRA layer on every case tried.")


def _merge_weight(fn):
    for case in _CASES:
        X, W, b, M, N, scale = _shapes_and_data(*case)
        shown = f"W {W.shape}, M {M.shape}, N {N.shape}, scale={scale}"
        got = as_matrix_answer(call(fn, (W.copy(), M, N, scale), "merge_weight", shown), "the merged weight")
        want = W + M @ N * scale
        if got.shape != W.shape:
            return f"merge_weight({shown}) returned shape {got.shape}; the merged weight has W's shape {W.shape}."
        if not np.allclose(got, want, atol=1e-6):
            if np.allclose(got, W + M @ N, atol=1e-6):
                return "the scale is missing."
            return f"merge_weight({shown}): X @ W' + b differs from the LoRA layer's output."
        if not np.allclose(X @ got + b, X @ W + X @ M @ N * scale + b, atol=1e-6):
            return "the merged layer does not reproduce the unmerged one."
    return None


merge_weight = Exercise(
    "4.3", "merge the adapter into W", _merge_weight,
    hints=["Merging adds ΔW to W once, so that inference needs a single product X @ W'.",
           "ΔW = M @ N · scale has W's shape (in, out)."],
    solution="""
def merge_weight(W, M, N, scale):
    return W + M @ N * scale     # then X @ W' + b equals X @ W + X @ M @ N · scale + b""",
    correct="X @ W' + b reproduces the unmerged layer on every case tried.")


def _budget_rank(answer):
    r = as_int(answer, "the rank", lo=1)
    if r > 4096:
        return f"the rank can be at most 4096, the width of q_proj and v_proj; got {r}."
    have = lora_param_count("llama-2-7b", r, ["q_proj", "v_proj"]).trainable
    if have < 10_000_000:
        return f"at r = {r} LoRA on q_proj and v_proj trains {have:,} parameters, fewer than 10,000,000."
    if r > 1 and lora_param_count("llama-2-7b", r - 1, ["q_proj", "v_proj"]).trainable >= 10_000_000:
        return f"r = {r} reaches 10 million ({have:,}), but a smaller rank does too: find the smallest."
    return None


budget_rank = Exercise(
    "4.4", "the smallest rank for ten million parameters", _budget_rank,
    hints=["lora_param_count('llama-2-7b', r, ['q_proj', 'v_proj']).trainable gives the count for any r.",
           "Each rank adds (4096 + 4096) · 2 matrices · 32 layers = 524,288 parameters."],
    solution="""
answer = next(r for r in range(1, 4097)
              if lora_param_count("llama-2-7b", r, ["q_proj", "v_proj"]).trainable >= 10_000_000)
# = 20: 19 · 524,288 = 9,961,472 falls just short; 20 · 524,288 = 10,485,760""",
    correct="that is the smallest rank that trains at least 10 million parameters on q_proj and v_proj.")
