"""Exercises of chapter 5 — fine-tuning a small GPT with LoRA."""
from __future__ import annotations

import functools

import numpy as np
import torch
import torch.nn as nn

from ..gpt import GPT, encode, load_pretrained
from ..lora import LoRALinear
from . import Exercise, Wrong, as_int, as_matrix_answer, call, describe

__all__ = ["adapter_params", "next_byte", "lora_update", "greedy"]


def _adapter_params(answer):
    k = as_int(answer)
    d, r, layers = 256, 4, 4
    if k == layers * r * (d + 3 * d):
        return None
    known = {r * (d + 3 * d): "that is one layer's c_attn (or M alone in all four); count M and N in all 4 layers",
             layers * r * 3 * d: "that counts only N (4 × 768); M (256 × 4) is trained too",
             layers * d * 3 * d: "that is full fine-tuning of the c_attn matrices, not LoRA",
             layers * 8 * (d + 3 * d): "that is rank 8, the chapter's rank; this exercise asks for r = 4",
             layers * r * ((d + 3 * d) + (d + d) + 2 * (d + 4 * d)): "that is all sixteen matrices; adapt only c_attn",
             layers * 3 * r * (d + d): "c_attn is one matrix, Linear(256, 768), not three 256 × 256 ones"}
    return known.get(k, f"{k:,} is not it; .hint() shows how to count") + "."


adapter_params = Exercise(
    "5.1", "LoRA on the attention's c_attn only", _adapter_params,
    hints=["transformer.h.N.attn.c_attn is nn.Linear(256, 768): q, k and v in one matrix. There are 4 layers.",
           "Per matrix r·(in + out) = 4·(256 + 768); then times 4 layers."],
    solution="""
answer = 4 * 4 * (256 + 768)     # 4 layers × r · (in + out) = 16,384
# check: apply_lora(load_pretrained(), ["c_attn"], r=4); count_parameters(...).trainable""",
    correct="compare it with the chapter's adapter, r = 8 on all sixteen matrices.")


@functools.lru_cache(maxsize=1)
def _model() -> GPT:
    return load_pretrained()


_PROMPTS = ["def ", "Return the", "x", "   January 1900\n", "while True:\n    ",
            "class Parser:\n    def parse(self, text):\n        return self."]


@functools.lru_cache(maxsize=1)
def _adapted() -> GPT:
    """The base model with a fixed random LoRA update: a model a learner's code has not seen."""
    from ..gpt import LORA_TARGETS
    from ..lora import apply_lora, lora_layers
    model = load_pretrained()
    with torch.random.fork_rng():                      # the same adapted model whatever ran before
        torch.manual_seed(54)
        apply_lora(model, LORA_TARGETS, r=2)
    g = torch.Generator().manual_seed(55)
    with torch.no_grad():
        for layer in lora_layers(model).values():
            layer.N.copy_(torch.randn(layer.N.shape, generator=g) * 0.5)
    return model.eval()


def _as_char(got, name, prompt):
    if isinstance(got, torch.Tensor) and got.numel() == 1:
        raise Wrong(f"{name}(model, {prompt!r}) returned the token id {got.item()}; return the character, "
                    "e.g. with lora_edu.gpt.decode([id]) or chr(id) for ASCII.")
    if isinstance(got, int):
        raise Wrong(f"{name}(model, {prompt!r}) returned the token id {got}; return the character it stands for.")
    if not isinstance(got, str):
        raise Wrong(f"{name}(model, {prompt!r}) should return a str; got {describe(got)} ({type(got).__name__}).")
    return str.__str__(got)                              # a plain str: its own == is the one compared


def _next_byte(fn):
    cases = []                                         # (prompt, got, want, hypotheses of what went wrong)
    for model in (_model(), _adapted()):
        for prompt in _PROMPTS:
            with torch.no_grad():
                logits = model(encode(prompt)[None])[0]                       # (T, 256)
                last_only = chr(model(encode(prompt[-1])[None])[0, -1].argmax().item())
                base = chr(_model()(encode(prompt)[None])[0, -1].argmax().item())
            want = chr(logits[-1].argmax().item())
            got = _as_char(call(fn, (model, prompt), "next_byte", f"model, {prompt!r}"), "next_byte", prompt)
            cases.append((prompt, got, want, {"first": chr(logits[0].argmax().item()), "last": last_only,
                                              "base": base}))
    wrong = [c for c in cases if c[1] != c[2]]
    if not wrong:
        return None
    explain = {"first": "you returned the most likely byte after the *first* position; the next byte comes from "
                        "the logits at the last position.",
               "last": "your answer depends only on the last character; the model should read the whole text.",
               "base": "your function gives the base model's answers for a model with LoRA applied; use the model "
                       "it is given."}
    for key, why in explain.items():
        if all(got == h[key] for _, got, _, h in wrong):
            return why
    prompt, got, want, _ = wrong[0]
    return f"for {prompt!r} the most likely next byte is {want!r}; you returned {got!r}."


next_byte = Exercise(
    "5.2", "the most likely next byte", _next_byte,
    hints=["model(ids) takes ids of shape (1, T) and returns logits (1, T, 256): a score for every byte at every "
           "position.", "encode(text)[None] makes the (1, T) batch; logits[0, -1].argmax() is the next byte's id."],
    solution="""
def next_byte(model, text):
    with torch.no_grad():
        logits = model(encode(text)[None])          # (1, T, 256)
    return chr(logits[0, -1].argmax().item())     # one byte as a character: exact for ASCII (bytes < 128)
# A byte of 128 or more is one piece of a multi-byte UTF-8 character: model.generate keeps bytes, not characters,
# and decodes them at the end.""",
    correct="generation is this one step, repeated (exercise 5.4).")


def _lora_update(fn):
    torch.manual_seed(0)
    for d_in, d_out, r, alpha, rslora in [(6, 4, 2, 3.0, False), (5, 9, 3, 1.0, False), (8, 8, 4, 8.0, True)]:
        layer = LoRALinear(nn.Linear(d_in, d_out), r=r, alpha=alpha, rslora=rslora)
        with torch.no_grad():
            layer.N.normal_()
        want = (layer.M @ layer.N * layer.scaling).detach().numpy()
        shown = f"LoRALinear(Linear({d_in}, {d_out}), r={r}, alpha={alpha:g}{', rslora=True' if rslora else ''})"
        got = call(fn, (layer,), "lora_update", shown)
        if isinstance(got, torch.Tensor):
            got = got.detach()
        got = as_matrix_answer(got, "ΔW")
        if got.shape == want.T.shape and got.shape != want.shape:
            return (f"your ΔW has shape {got.shape}, nn.Linear's (out, in) layout; the course's W and ΔW are "
                    f"(in, out) = {want.shape}, like M @ N.")
        if got.shape != want.shape:
            return f"ΔW should have shape (in, out) = {want.shape}; got {got.shape}."
        if not np.allclose(got, want, atol=1e-5):
            plain = (layer.M @ layer.N).detach().numpy()
            if np.allclose(got, plain, atol=1e-5):
                return "that is M @ N alone; the layer multiplies the low-rank path by its scale."
            if rslora and np.allclose(got, plain * alpha / r, atol=1e-5):
                return ("the layer " + shown + " uses rsLoRA, whose scale is α/√r, not α/r; layer.scaling holds "
                        "the right factor for any layer.")
            return (f"for {shown} your ΔW differs from the change the layer makes: check that layer(x) − "
                    "layer.base(x) equals x @ (your ΔW) for some input x.")
    return None


lora_update = Exercise(
    "5.3", "the update a LoRA layer adds", _lora_update,
    hints=["A LoRALinear keeps layer.M (in, r), layer.N (r, out) and layer.scaling.",
           "ΔW = M @ N · scaling, shape (in, out). (LoRALinear.delta_weight() returns the same in nn.Linear's "
           "(out, in) layout.)"],
    solution="""
def lora_update(layer):
    return layer.M @ layer.N * layer.scaling       # (in, r) @ (r, out) -> (in, out)""",
    correct="that is the whole change LoRA makes to the layer, and what merging adds to W.")


def _greedy(fn):
    model = _model()
    for prompt, n in [("def ", 8), ("The ", 12), ("x", 1), ("abc", 0), ("Return the value.\n" * 14, 6)]:
        want = prompt
        for _ in range(n):                                     # the reference: argmax at the last position
            with torch.no_grad():
                want += chr(model(encode(want[-256:])[None])[0, -1].argmax().item())
        got = call(fn, (model, prompt, n), "greedy", f"model, {prompt!r}, {n}")
        if not isinstance(got, str):
            return f"greedy(model, {prompt!r}, {n}) should return a str; got {describe(got)} ({type(got).__name__})."
        got = str.__str__(got)
        if got == want[len(prompt):]:
            return f"greedy(model, {prompt!r}, {n}) returned only the new bytes; return the prompt followed by them."
        if got != want:
            if len(got) != len(want):
                return f"greedy(model, {prompt!r}, {n}) should return {len(prompt)} + {n} characters; got {len(got)}."
            return (f"greedy(model, {prompt!r}, {n}) returned {got!r}; expected {want!r}. Take the most likely byte "
                    "each time (no sampling), and feed it back in before choosing the next.")
    return None


greedy = Exercise(
    "5.4", "greedy generation, one byte at a time", _greedy,
    hints=["Generation is a loop: choose the next byte, append it to the text, repeat n times.",
           "Your next_byte from exercise 5.2 does the choosing: text = text + next_byte(model, text[-256:]) — the model "
           "reads at most 256 bytes."],
    solution="""
def greedy(model, prompt, n):
    text = prompt
    for _ in range(n):
        text += next_byte(model, text[-model.config.block_size:])   # the model reads at most 256 bytes
    return text
# text[-256:] counts characters, which are bytes as long as the text is ASCII, as here.""",
    correct="every sample of this chapter came from a loop like yours, with a random draw in place of the argmax.",
    forbidden=(GPT.generate,))
