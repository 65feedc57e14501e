"""Exercises of chapter 5 — fine-tuning a small GPT with LoRA."""
from __future__ import annotations

import functools

import numpy as np
import torch
import torch.nn as nn

from ..gpt import GPT, encode, load_pretrained
from ..lora import LoRALinear
from . import Exercise, Wrong, as_int, as_matrix_answer, call, describe

__all__ = ["adapter_params", "next_byte", "delta_weight", "greedy"]


def _adapter_params(answer):
    k = as_int(answer)
    d, r, layers = 256, 4, 4
    if k == layers * r * (d + 3 * d):
        return None
    known = {r * (d + 3 * d): "that is one layer's c_attn (or M alone in all four); count M and N in all 4 layers",
             layers * r * 3 * d: "that counts only N (4 × 768); M (256 × 4) is trained too",
             layers * d * 3 * d: "that is full fine-tuning of the c_attn matrices, not LoRA"}
    return known.get(k, f"{k:,} is not it: each c_attn is Linear(256, 768), and r(in + out) per matrix") + "."


adapter_params = Exercise(
    "5.1", "LoRA on the attention's c_attn only", _adapter_params,
    hints=["transformer.h.N.attn.c_attn is nn.Linear(256, 768): q, k and v in one matrix. There are 4 layers.",
           "Per matrix r·(in + out) = 4·(256 + 768); then times 4 layers."],
    solution="""
answer = 4 * 4 * (256 + 768)     # 4 layers × r · (in + out) = 16,384
# check: apply_lora(load_pretrained(), ["c_attn"], r=4); count_parameters(...).trainable""",
    correct="4 layers × 4 · (256 + 768) = 16,384 trainable numbers.")


@functools.lru_cache(maxsize=1)
def _model() -> GPT:
    return load_pretrained()


_PROMPTS = ["def ", "Return the", "x", "   January 1900\n", "while True:\n    "]


def _as_char(got, name, prompt):
    if isinstance(got, torch.Tensor) and got.numel() == 1:
        raise Wrong(f"{name}(model, {prompt!r}) returned the token id {got.item()}; return the character, "
                    "e.g. with lora_edu.gpt.decode([id]) or chr(id) for ASCII.")
    if isinstance(got, int):
        raise Wrong(f"{name}(model, {prompt!r}) returned the token id {got}; return the character it stands for.")
    if not isinstance(got, str):
        raise Wrong(f"{name}(model, {prompt!r}) should return a str; got {describe(got)} ({type(got).__name__}).")
    return got


def _next_byte(fn):
    model = _model()
    for prompt in _PROMPTS:
        with torch.no_grad():
            logits = model(encode(prompt)[None])[0]                           # (T, 256)
        want = chr(logits[-1].argmax().item())
        got = _as_char(call(fn, (model, prompt), "next_byte", f"model, {prompt!r}"), "next_byte", prompt)
        if got != want:
            if got == chr(logits[0].argmax().item()):
                return (f"for {prompt!r} you returned the most likely byte after the *first* position; the next "
                        "byte comes from the logits at the last position, logits[0, -1].")
            return f"for {prompt!r} the most likely next byte is {want!r}; you returned {got!r}."
    return None


next_byte = Exercise(
    "5.2", "the most likely next byte", _next_byte,
    hints=["model(ids) takes ids of shape (1, T) and returns logits (1, T, 256): a score for every byte at every "
           "position.", "encode(text)[None] makes the (1, T) batch; logits[0, -1].argmax() is the next byte's id."],
    solution="""
def next_byte(model, text):
    with torch.no_grad():
        logits = model(encode(text)[None])          # (1, T, 256)
    return chr(logits[0, -1].argmax().item())""",
    correct="the next byte is the argmax of the logits at the last position.")


def _delta_weight(fn):
    torch.manual_seed(0)
    for d_in, d_out, r, alpha, rslora in [(6, 4, 2, 4.0, False), (5, 9, 3, 1.0, False), (8, 8, 4, 8.0, True)]:
        layer = LoRALinear(nn.Linear(d_in, d_out), r=r, alpha=alpha, rslora=rslora)
        with torch.no_grad():
            layer.N.normal_()
        want = (layer.M @ layer.N * layer.scaling).detach().numpy()
        got = call(fn, (layer,), "delta_weight", f"LoRALinear(Linear({d_in}, {d_out}), r={r}, alpha={alpha:g})")
        if isinstance(got, torch.Tensor):
            got = got.detach()
        got = as_matrix_answer(got, "ΔW")
        if got.shape == want.T.shape and got.shape != want.shape:
            return (f"your ΔW has shape {got.shape}, nn.Linear's (out, in) layout; the course's W and ΔW are "
                    f"(in, out) = {want.shape}, like M @ N.")
        if got.shape != want.shape:
            return f"ΔW should have shape (in, out) = {want.shape}; got {got.shape}."
        if not np.allclose(got, want, atol=1e-5):
            if np.allclose(got, (layer.M @ layer.N).detach().numpy(), atol=1e-5):
                return "that is M @ N without the scale; multiply by layer.scaling (α/r, or α/√r with rsLoRA)."
            return f"for r={r}, alpha={alpha:g} your ΔW differs from M @ N · scaling."
    return None


delta_weight = Exercise(
    "5.3", "the update a LoRA layer adds", _delta_weight,
    hints=["A LoRALinear keeps layer.M (in, r), layer.N (r, out) and layer.scaling.",
           "ΔW = M @ N · scaling, shape (in, out)."],
    solution="""
def delta_weight(layer):
    return layer.M @ layer.N * layer.scaling       # (in, r) @ (r, out) -> (in, out)""",
    correct="ΔW = M N · scaling: the whole change LoRA makes to the layer.")


def _greedy(fn):
    model = _model()
    for prompt, n in [("def ", 8), ("The ", 12), ("x", 1), ("abc", 0)]:
        want = prompt
        for _ in range(n):                                     # the reference: argmax at the last position
            with torch.no_grad():
                want += chr(model(encode(want)[None])[0, -1].argmax().item())
        got = call(fn, (model, prompt, n), "greedy", f"model, {prompt!r}, {n}")
        if not isinstance(got, str):
            return f"greedy(model, {prompt!r}, {n}) should return a str; got {describe(got)} ({type(got).__name__})."
        if got == want[len(prompt):]:
            return f"greedy(model, {prompt!r}, {n}) returned only the new bytes; return the prompt followed by them."
        if got != want:
            if len(got) != len(want):
                return f"greedy(model, {prompt!r}, {n}) should return {len(prompt)} + {n} characters; got {len(got)}."
            return (f"greedy(model, {prompt!r}, {n}) returned {got!r}; expected {want!r}. Feed each new byte back in "
                    "before choosing the next.")
    return None


greedy = Exercise(
    "5.4", "greedy generation, one byte at a time", _greedy,
    hints=["Generation is a loop: choose the next byte, append it to the text, repeat n times.",
           "Your next_byte from exercise 5.2 does the choosing: text = text + next_byte(model, text)."],
    solution="""
def greedy(model, prompt, n):
    text = prompt
    for _ in range(n):
        text += next_byte(model, text)
    return text""",
    correct="generation appends the most likely byte and feeds the text back in — model.generate(..., "
            "temperature=0) does the same.")
