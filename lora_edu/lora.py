"""LoRA: a frozen linear layer plus a trainable low-rank update, Y = X W + X M N · (α/r) + b (chapter 4).

Shapes follow the course: inputs are rows, W is (in, out), M is (in, r), N is (r, out), so the code reads like
the math: `x @ M @ N`. PyTorch's `nn.Linear.weight` stores Wᵀ (out, in); PEFT's `lora_A.weight` is Mᵀ and
`lora_B.weight` is Nᵀ. Verbs, as in minLoRA: `apply_lora`, `merge`/`unmerge`, `save_adapter`/`load_adapter`.
"""
from __future__ import annotations

import hashlib
import json
import math
import numbers
import os
import re
from pathlib import Path
from typing import NamedTuple

import numpy as np
import torch
import torch.nn as nn

from ._checks import as_matrix, check_bool, check_int, check_module, check_path, check_real, check_values
from ._io import remove_quietly, write_atomic

__all__ = ["LoRALinear", "apply_lora", "lora_layers", "merge", "unmerge", "count_parameters", "ParamCount",
           "save_adapter", "load_adapter", "ARCHITECTURES", "lora_param_count", "LoRACount",
           "subspace_similarity", "similarity_grid", "weight_deltas"]

INITS = ("default", "svd")


def _checksum(w: torch.Tensor) -> str:
    """A hash of w's exact bits: any write to w — through .data too, which torch's version counter does not see —
    changes it."""
    ints = {1: torch.uint8, 2: torch.int16, 4: torch.int32, 8: torch.int64}[w.element_size()]
    bits = w.detach().reshape(-1).view(ints).cpu().numpy()
    return hashlib.blake2b(bits.tobytes(), digest_size=16).hexdigest()


class _Merged(NamedTuple):
    """What merge() keeps to check unmerge(): the factors it merged, their requires_grad flags, the weight."""
    M: torch.Tensor
    N: torch.Tensor
    m_grad: bool
    n_grad: bool
    weight: torch.Tensor
    checksum: str
    scaling: float


class LoRALinear(nn.Module):
    """base(x) + dropout(x) @ M @ N · scaling, with base frozen; x (..., in) -> (..., out)."""

    def __init__(self, base: nn.Linear, r: int, alpha=None, dropout: float = 0.0, init: str = "default",
                 rslora: bool = False):
        super().__init__()
        if isinstance(base, LoRALinear):
            raise ValueError("this layer already has LoRA; applying it twice would stack two adapters")
        if not isinstance(base, nn.Linear):
            raise TypeError(f"LoRALinear wraps an nn.Linear; got {type(base).__name__}")
        d_in, d_out = base.in_features, base.out_features
        self.r = check_int(r, "r", 1, min(d_in, d_out), where=f" for a Linear({d_in}, {d_out})")
        self.alpha = float(self.r if alpha is None else check_real(alpha, "alpha", lo=0.0, lo_open=True))
        self.dropout_p = check_real(dropout, "dropout", lo=0.0, hi=1.0, hi_open=True)  # 1 would drop every input
        if init not in INITS:
            raise ValueError(f"init must be one of {INITS}; got {init!r}")
        self.init, self.rslora = init, check_bool(rslora, "rslora")
        self.scaling = self.alpha / (math.sqrt(self.r) if self.rslora else self.r)
        self.base = base
        for p in base.parameters():
            p.requires_grad_(False)
        kw = dict(device=base.weight.device, dtype=base.weight.dtype)
        self.M = nn.Parameter(torch.empty(d_in, self.r, **kw))    # (in, r)
        self.N = nn.Parameter(torch.zeros(self.r, d_out, **kw))   # (r, out)
        self.dropout = nn.Dropout(dropout) if dropout > 0 else nn.Identity()
        self.merged = False
        self._enabled = True
        if init == "default":
            nn.init.kaiming_uniform_(self.M.T, a=math.sqrt(5))    # as loralib/PEFT do for lora_A (= Mᵀ)
        else:
            self._init_svd()

    @torch.no_grad()
    def _init_svd(self):
        """PiSSA: M N · scaling = the top-r part of W, which is removed from the frozen base."""
        W = self.base.weight.float().T                             # (in, out): the course's W
        U, S, Vh = torch.linalg.svd(W, full_matrices=False)
        U, S, Vh = U[:, :self.r], S[:self.r], Vh[:self.r]
        root = (S / self.scaling).sqrt()
        self.M.copy_(U * root)                                     # (in, r)
        self.N.copy_(root[:, None] * Vh)                           # (r, out)
        top = (U * S) @ Vh                                         # (in, out)
        self.base.weight.copy_((W - top).T.to(self.base.weight.dtype))

    @property
    def settings(self) -> tuple:
        """(r, alpha, init, rslora, dropout): what every layer of one adapter shares (its card stores them once)."""
        return self.r, self.alpha, self.init, self.rslora, self.dropout_p

    @property
    def enabled(self) -> bool:
        """Whether the LoRA path is added; False gives the base layer alone (only while unmerged)."""
        return self._enabled

    @enabled.setter
    def enabled(self, on: bool) -> None:
        on = check_bool(on, "enabled")
        if self.merged and not on:
            raise ValueError("this layer is merged, so ΔW is inside the base weight; unmerge() before disabling")
        self._enabled = on

    def extra_repr(self) -> str:
        rule = "α/√r" if self.rslora else "α/r"
        return f"r={self.r}, alpha={self.alpha:g}, scaling={rule}={self.scaling:g}, init={self.init}, merged={self.merged}"

    def forward(self, x):
        if x.shape[-1] != self.base.in_features:
            raise ValueError(f"x must have {self.base.in_features} features in its last dimension (this layer is "
                             f"Linear({self.base.in_features}, {self.base.out_features})); got shape {tuple(x.shape)}")
        y = self.base(x)                                          # x W + b: (..., out)
        if self.merged or not self.enabled:
            return y
        if x.dtype != self.M.dtype and not torch.is_autocast_enabled(x.device.type):
            # factors kept in another dtype than the base (a bf16 base, fp32 factors, as PEFT allows): the LoRA path
            # runs in the factors' dtype and its result is added in the output's
            return y + (self.dropout(x.to(self.M.dtype)) @ self.M * self.scaling @ self.N).to(y.dtype)
        h = self.dropout(x) @ self.M * self.scaling               # (..., r): scale the thin product
        # y + h @ N as one fused multiply-add (addmm), with no separate pass over the (..., out) output
        return torch.addmm(y.reshape(-1, y.shape[-1]), h.reshape(-1, self.r), self.N).view(y.shape)

    def delta_weight(self) -> torch.Tensor:
        """ΔW = M N · scaling (in, out), the course's layout, computed in fp32 (nn.Linear.weight gets ΔWᵀ).

        With init="svd" this is the adapter's whole contribution, which at the start equals the top-r part
        removed from the base; the change made by training is delta_weight() minus its value at the start.
        """
        return (self.M.float() @ self.N.float()) * self.scaling

    @torch.no_grad()
    def _check_merge(self) -> torch.Tensor:
        """The ValueError merge() would raise, without merging; else the merged weight W + ΔW (layout (out, in))."""
        if self.merged:
            raise ValueError("this LoRA layer is already merged; merging again would add ΔW twice")
        if not self._enabled:
            raise ValueError("this LoRA layer is disabled; enable it before merging its ΔW into the base")
        check_values(self, "merging")
        w = self.base.weight
        merged = (w.float() + self.delta_weight().T).to(w.dtype)
        if not torch.isfinite(merged).all():
            raise ValueError(f"W + ΔW is not finite in {w.dtype} (ΔW too large, or M or N holds NaN/inf); merging would "
                             "write inf/NaN into the base weight, and no unmerge could take it back")
        return merged

    def _check_unmerge(self) -> None:
        """The ValueError unmerge() would raise, without unmerging."""
        if not self.merged:
            raise ValueError("this LoRA layer is not merged; unmerging would subtract ΔW from the base weight")
        kept = self._while_merged
        if not (torch.equal(self.M, kept.M) and torch.equal(self.N, kept.N)) or self.scaling != kept.scaling:
            raise ValueError("M, N or the scaling changed while the layer was merged, so the ΔW to take out of the base weight is "
                             "no longer the one merged into it; put them back (or reload the base model)")
        if self.base.weight is not kept.weight or _checksum(self.base.weight) != kept.checksum:
            raise ValueError("the base weight was replaced or written to while the layer was merged, so it may no "
                             "longer hold W + ΔW; unmerging would leave a wrong W (reload the base model instead)")

    @torch.no_grad()
    def merge(self) -> None:
        """Fold ΔW into the base weight (through fp32), so inference costs one matrix product."""
        merged = self._check_merge()
        w = self.base.weight
        w.copy_(merged)                                               # weight = Wᵀ (out, in)
        self.merged = True
        # merged means frozen: ΔW now lives in the base weight, so M and N must not move until unmerge()
        self._while_merged = _Merged(self.M.detach().clone(), self.N.detach().clone(), self.M.requires_grad,
                                     self.N.requires_grad, w, _checksum(w), self.scaling)
        self.M.requires_grad_(False)
        self.N.requires_grad_(False)

    @torch.no_grad()
    def unmerge(self) -> None:
        """Take ΔW back out of the base weight (through fp32; exact up to rounding in the weight's dtype)."""
        self._check_unmerge()
        kept = self._while_merged
        w = self.base.weight
        w.copy_((w.float() - self.delta_weight().T).to(w.dtype))
        self.merged = False
        self.M.requires_grad_(kept.m_grad)
        self.N.requires_grad_(kept.n_grad)
        del self._while_merged


def lora_layers(model: nn.Module) -> dict[str, LoRALinear]:
    """Every LoRALinear in the model, by module name."""
    check_module(model)
    return {name: m for name, m in model.named_modules() if isinstance(m, LoRALinear)}


def _targets(targets):
    """targets as apply_lora takes them -> a list of non-empty strings or a compiled str regex; else TypeError."""
    if isinstance(targets, str):
        return [targets]
    if isinstance(targets, re.Pattern):
        if not isinstance(targets.pattern, str):
            raise TypeError(f"targets must be a str regex (module names are strings); got {targets!r}")
        return targets
    if targets is None or isinstance(targets, (bytes, bytearray, numbers.Number)) or not hasattr(targets, "__iter__"):
        raise TypeError(f"targets must be module-name suffixes (strings) or a compiled regex; got {targets!r}")
    targets = list(targets)
    if not targets or not all(isinstance(t, str) and t for t in targets):
        raise TypeError(f"targets must be module-name suffixes (strings) or a compiled regex; got {targets!r}")
    return targets


def _matches(name: str, targets) -> bool:
    if isinstance(targets, re.Pattern):
        return targets.fullmatch(name) is not None
    return any(name == t or name.endswith("." + t) for t in targets)


def apply_lora(model: nn.Module, targets, r: int, alpha=None, dropout: float = 0.0, init: str = "default",
               rslora: bool = False) -> list[str]:
    """Wrap the nn.Linear modules whose names end with a target (or fully match a regex) in LoRALinear, in place.

    Every other parameter is frozen; the LoRA layers' M and N train. Returns the wrapped names. All or nothing: on
    any error the model is left exactly as it was. A second call on a model that has LoRA layers adds layers to the
    same adapter, so it must use the same r, alpha, init and rslora.
    """
    check_module(model)
    targets = _targets(targets)
    existing = lora_layers(model)
    inside = {f"{n}.base" for n in existing}
    if any(layer.merged for layer in existing.values()):
        raise ValueError("the model's LoRA layers are merged (merged means frozen); unmerge(model) before adding "
                         "layers to its adapter")
    again = [n for n in existing if _matches(n, targets)]
    if again:
        raise ValueError(f"LoRA is already applied to {again}; applying twice would stack two adapters")
    if isinstance(model, nn.Linear):
        raise ValueError("the model itself is an nn.Linear: apply_lora wraps layers inside a model; wrap a single "
                         "layer with LoRALinear(layer, r) instead")
    names = [n for n, m in model.named_modules() if isinstance(m, nn.Linear) and n not in inside
             and _matches(n, targets)]
    if not names:
        linear = [n for n, m in model.named_modules() if isinstance(m, nn.Linear) and n not in inside]
        shown = ", ".join(linear[:12]) + (f", … ({len(linear)} in all)" if len(linear) > 12 else "")
        raise ValueError(f"no nn.Linear module matches targets {targets!r}; the model's Linear modules are: "
                         f"{shown or 'none'}")
    if not isinstance(targets, re.Pattern):                                 # every name must mean something
        unused = [t for t in targets if not any(_matches(n, [t]) for n in names)]
        if unused:
            kinds = {t: type(model.get_submodule(n)).__name__ for t in unused for n, _ in model.named_modules()
                     if n and _matches(n, [t])}
            said = ", ".join(f"{t!r}" + (f" (a {kinds[t]}, not an nn.Linear)" if t in kinds else "") for t in unused)
            raise ValueError(f"targets {said} match no nn.Linear module of the model; the others match {names}")
    holders = {}                                  # tensors on one storage are tied: the same Parameter, or views
    for tname, t in [*model.named_parameters(remove_duplicate=False), *model.named_buffers(remove_duplicate=False)]:
        holders.setdefault(_storage(t), []).append(tname)
    for name in names:                                                      # every layer checked before any change
        m = model.get_submodule(name)
        parent = model.get_submodule(name.rpartition(".")[0])
        if isinstance(parent, nn.MultiheadAttention):
            raise ValueError(f"{name} belongs to an nn.MultiheadAttention, which reads its weight directly instead of "
                             f"calling it, so a LoRA layer there would never run; leave {name} out of the targets")
        tied = [h for h in holders[_storage(m.weight)] if h != f"{name}.weight"]
        if tied:
            raise ValueError(f"{name}.weight is tied to {', '.join(tied)}: LoRA there would change both (merging "
                             f"would write ΔW into the other too); leave {name} out of the targets")
        check_int(r, "r", 1, min(m.in_features, m.out_features),
                  where=f" for {name}, a Linear({m.in_features}, {m.out_features})")
    flags = {id(p): p.requires_grad for p in model.parameters()}           # to put back if anything fails
    weights = {name: model.get_submodule(name).weight.detach().clone() for name in names} if init == "svd" else {}
    try:
        layers = {name: LoRALinear(model.get_submodule(name), r, alpha, dropout, init, rslora) for name in names}
        if existing:
            mine, theirs = next(iter(existing.values())).settings, next(iter(layers.values())).settings
            if mine != theirs:
                raise ValueError(f"the model's LoRA layers have (r, alpha, init, rslora, dropout) = {mine}; a second "
                                 f"apply_lora adds to the same adapter and must match, but got {theirs}")
    except BaseException:
        with torch.no_grad():
            for name, w in weights.items():                                 # init="svd" took the top-r part out
                model.get_submodule(name).weight.copy_(w)
        for p in model.parameters():
            p.requires_grad_(flags[id(p)])
        raise
    for p in model.parameters():
        p.requires_grad_(False)
    for name, layer in layers.items():                                      # nothing below can fail
        parent_name, _, child = name.rpartition(".")
        setattr(model.get_submodule(parent_name) if parent_name else model, child, layer)
    for layer in lora_layers(model).values():                               # the whole adapter trains
        layer.M.requires_grad_(True)
        layer.N.requires_grad_(True)
    return names


def _storage(t: torch.Tensor):
    """A key shared by every tensor on the same memory (a tied Parameter, a view, .data of another)."""
    ptr = 0 if t.is_meta else t.untyped_storage().data_ptr()
    return (t.device, ptr) if ptr else id(t)


def merge(model: nn.Module) -> None:
    """Merge every LoRA layer of the model; all or nothing (every layer is checked first)."""
    _every(model, "merge")


def unmerge(model: nn.Module) -> None:
    """Unmerge every LoRA layer of the model; all or nothing (every layer is checked first)."""
    _every(model, "unmerge")


def _every(model, verb):
    layers = _require_lora(model)
    for name, layer in layers.items():
        try:
            getattr(layer, f"_check_{verb}")()
        except ValueError as e:
            raise ValueError(f"{name}: {e}; no layer was {verb}d") from None
    for layer in layers.values():
        getattr(layer, verb)()


def _require_lora(model):
    layers = lora_layers(model)
    if not layers:
        raise ValueError("the model has no LoRA layers; call apply_lora first")
    return layers


class ParamCount(NamedTuple):
    """Trainable and total parameters (adapters included, as PEFT counts), and the trainable share (0 to 1)."""
    trainable: int
    total: int
    share: float

    def __str__(self) -> str:  # the same line PEFT's print_trainable_parameters() prints
        return (f"trainable params: {self.trainable:,} || all params: {self.total:,} || "
                f"trainable%: {100 * self.share:.4f}")


def count_parameters(model: nn.Module) -> ParamCount:
    """Trainable, total and trainable % of a model's parameters (shared tensors counted once)."""
    check_module(model)
    seen = {id(p): p for p in model.parameters()}.values()
    total = sum(p.numel() for p in seen)
    trainable = sum(p.numel() for p in seen if p.requires_grad)
    return ParamCount(trainable, total, trainable / total if total else 0.0)


# ---- adapters on disk -----------------------------------------------------------------------------------------

def _fingerprint(shapes: dict) -> str:
    return hashlib.sha256(json.dumps(shapes, sort_keys=True).encode()).hexdigest()[:16]


TENSORS = re.compile(r"adapter(\.[1-9][0-9]*)?\.safetensors")   # adapter.N.safetensors; the bare name: before 0.9


def save_adapter(model: nn.Module, path) -> Path:
    """Write the LoRA tensors (adapter.N.safetensors) and the card naming them (adapter.json) into the folder `path`.

    One unit: the tensors go to a new file first, then the card is replaced in one step (the commit), then the old
    tensor file is removed. Whatever fails, adapter.json describes the tensors beside it and the old adapter loads.
    """
    from safetensors.torch import save
    folder = check_path(path)
    layers = _require_lora(model)
    check_values(model, "save_adapter")
    first = next(iter(layers.values()))
    if any(l.settings != first.settings for l in layers.values()):
        raise ValueError("save_adapter stores one (r, alpha, init, rslora, dropout) for all layers; these layers differ")
    if any(l.merged for l in layers.values()):
        raise ValueError("unmerge the model before saving: a merged base weight already contains ΔW")
    if folder.exists() and not folder.is_dir():
        raise ValueError(f"save_adapter writes a folder; {folder} is a file")
    if (folder / "adapter.json").is_symlink():                        # writing through it would change another card
        raise ValueError(f"{folder / 'adapter.json'} is a symbolic link (to {os.readlink(folder / 'adapter.json')}); "
                         f"an adapter's card must be a file beside its tensors: remove the link, or save elsewhere")
    shapes = {n: [l.base.in_features, l.base.out_features] for n, l in layers.items()}
    for n, l in layers.items():                     # write nothing load_adapter would refuse
        for key, want in (("M", (l.base.in_features, l.r)), ("N", (l.r, l.base.out_features))):
            t = getattr(l, key)
            if tuple(t.shape) != want or not torch.isfinite(t).all():
                raise ValueError(f"{n}.{key} has shape {tuple(t.shape)}" + ("" if tuple(t.shape) != want else
                                 " and holds NaN or inf") + f"; an adapter needs finite factors of shape {want}")
    tensors = {}
    for n, l in layers.items():
        tensors[f"{n}.M"] = l.M.detach().cpu().contiguous()
        tensors[f"{n}.N"] = l.N.detach().cpu().contiguous()
    data = save(tensors, metadata={"format": "pt"})
    folder.mkdir(parents=True, exist_ok=True)
    old = [f for f in folder.iterdir() if TENSORS.fullmatch(f.name)]
    generation = 1 + max((int(f.name.split(".")[1]) for f in old if f.name.count(".") == 2), default=0)
    name = f"adapter.{generation}.safetensors"                       # never the name of a file already there
    from . import __version__
    card = {"format": "lora_edu.adapter/1", "lora_edu": __version__, "r": first.r, "alpha": first.alpha,
            "scaling": "alpha/sqrt(r)" if first.rslora else "alpha/r", "init": first.init,
            "dropout": first.dropout_p, "targets": sorted(layers), "base_shapes": shapes,
            "base_fingerprint": _fingerprint(shapes), "tensors": name, "sha256": hashlib.sha256(data).hexdigest(),
            "layout": "M (in, r), N (r, out): y = base(x) + x@M@N*scaling"}
    write_atomic(folder / name, lambda tmp: Path(tmp).write_bytes(data))
    try:
        write_atomic(folder / "adapter.json", lambda tmp: Path(tmp).write_text(json.dumps(card, indent=2) + "\n"))
    except BaseException:
        remove_quietly(folder / name)                                 # the old card and its tensors stay
        raise
    for f in old:                                                     # committed: the old tensors are garbage now
        remove_quietly(f)
    return folder


def _read_card(folder: Path) -> dict:
    """adapter.json as a dict with every field load_adapter needs, or a ValueError naming the file and the field."""
    path = folder / "adapter.json"
    try:
        card = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as e:
        raise ValueError(f"{path} is not a readable adapter card ({type(e).__name__}: {e})") from None
    if not isinstance(card, dict) or card.get("format") != "lora_edu.adapter/1":
        got = card.get("format") if isinstance(card, dict) else type(card).__name__
        raise ValueError(f"{path} is not a lora_edu adapter card (format {got!r:.80})")
    missing = [k for k in ("r", "alpha", "scaling", "init", "dropout", "targets", "base_shapes") if k not in card]
    if missing:
        raise ValueError(f"{path} lacks the field(s) {missing}")
    checks = {"r": lambda v: check_int(v, "r", 1), "alpha": lambda v: check_real(v, "alpha", lo=0.0, lo_open=True),
              "dropout": lambda v: check_real(v, "dropout", 0.0, 1.0, hi_open=True)}
    for key, check in checks.items():                                  # a hand-edited card: the same rules as
        try:                                                           # LoRALinear's own arguments
            check(card[key])
        except (TypeError, ValueError) as e:
            raise ValueError(f"{path}: {e}") from None
    for key, allowed in (("scaling", ("alpha/r", "alpha/sqrt(r)")), ("init", INITS)):
        if not isinstance(card[key], str) or card[key] not in allowed:
            raise ValueError(f"{path}: {key} must be one of {allowed}; got {card[key]!r:.80}")
    targets, shapes = card["targets"], card["base_shapes"]
    if not (isinstance(targets, list) and targets and all(isinstance(t, str) and t for t in targets)
            and len(set(targets)) == len(targets)):
        raise ValueError(f"{path}: targets must be a list of distinct module names; got {targets!r:.80}")
    if not (isinstance(shapes, dict) and set(shapes) == set(targets)):
        raise ValueError(f"{path}: targets and base_shapes must name the same modules")
    for name, shape in shapes.items():
        if not (isinstance(shape, list) and len(shape) == 2 and all(
                isinstance(d, int) and not isinstance(d, bool) and d >= 1 for d in shape)):
            raise ValueError(f"{path}: base_shapes[{name!r}] must be [in, out], two positive integers; "
                             f"got {shape!r:.80}")
    card.setdefault("tensors", "adapter.safetensors")                # cards written before 0.9 name no file
    if not (isinstance(card["tensors"], str) and TENSORS.fullmatch(card["tensors"])):
        raise ValueError(f"{path}: 'tensors' must name a file adapter.N.safetensors in the same folder; "
                         f"got {card['tensors']!r}")
    return card


def _read_tensors(folder: Path, card: dict) -> dict:
    """The card's tensor file, checked against the card: its hash, exactly M and N of every target, real floats,
    finite, shaped."""
    from safetensors import SafetensorError
    from safetensors.torch import load
    path = folder / card["tensors"]
    if not path.is_file():
        raise FileNotFoundError(f"{folder / 'adapter.json'} names {card['tensors']}, which is not in {folder}")
    data = path.read_bytes()
    if "sha256" in card and hashlib.sha256(data).hexdigest() != card["sha256"]:
        raise ValueError(f"{path} is not the file its card describes (its sha256 differs from adapter.json's)")
    try:
        tensors = load(data)
    except (SafetensorError, OSError, ValueError) as e:
        raise ValueError(f"{path} is not a readable safetensors file ({e})") from None
    want = {f"{n}.{k}" for n in card["targets"] for k in "MN"}
    if set(tensors) != want:
        extra, lost = sorted(set(tensors) - want), sorted(want - set(tensors))
        raise ValueError(f"{path} does not match its card: " + "; ".join(
            ([f"missing {lost}"] if lost else []) + ([f"unexpected {extra}"] if extra else [])))
    for key, t in tensors.items():
        n, k = key.rsplit(".", 1)
        d_in, d_out = card["base_shapes"][n]
        shape = (d_in, card["r"]) if k == "M" else (card["r"], d_out)
        if not t.is_floating_point():
            raise ValueError(f"{path}: {key} has dtype {t.dtype}; expected a floating-point tensor")
        if tuple(t.shape) != shape:
            raise ValueError(f"{path}: {key} has shape {tuple(t.shape)}; the card's r and base shapes give {shape}")
        if not torch.isfinite(t).all():
            raise ValueError(f"{path}: {key} contains NaN or inf")
    return tensors


def load_adapter(model: nn.Module, path) -> list[str]:
    """Load an adapter folder into the model (applying LoRA first if needed); any mismatch names the module.

    All or nothing: the card, every tensor and the model are checked first, so on any error the model is as before.
    """
    check_module(model)
    check_values(model, "load_adapter")
    folder = check_path(path)
    if not (folder / "adapter.json").is_file():
        raise FileNotFoundError(f"{folder} is not an adapter folder: adapter.json is missing")
    card = _read_card(folder)
    names = card["targets"]
    modules = dict(model.named_modules())
    for n in names:
        m = modules.get(n)
        base = m.base if isinstance(m, LoRALinear) else m
        if not isinstance(base, nn.Linear):
            raise ValueError(f"adapter module {n!r} is not an nn.Linear in this model "
                             f"({'missing' if m is None else type(m).__name__})")
        want = card["base_shapes"][n]
        if [base.in_features, base.out_features] != want:
            raise ValueError(f"module {n!r} is Linear({base.in_features}, {base.out_features}) in this model; "
                             f"the adapter was trained on Linear({want[0]}, {want[1]})")
    tensors = _read_tensors(folder, card)
    for n in names:                                    # the factors take the dtype of the model's weights
        m = modules[n]
        dtype = m.M.dtype if isinstance(m, LoRALinear) else m.weight.dtype
        for key in ("M", "N"):
            if not torch.isfinite(tensors[f"{n}.{key}"].to(dtype)).all():
                t = tensors[f"{n}.{key}"]
                raise ValueError(f"{folder}: {n}.{key} holds values up to {t.abs().max().item():.3g}, which {dtype} "
                                 f"cannot hold (this model's {n} is {dtype}); load it into a model of a wider dtype")
    present = lora_layers(model)
    if present:
        if sorted(present) != sorted(names):
            raise ValueError(f"the model's LoRA layers {sorted(present)} differ from the adapter's {sorted(names)}")
        for n in names:
            layer = present[n]
            if layer.r != card["r"]:
                raise ValueError(f"module {n!r} has LoRA rank {layer.r}; the adapter has rank {card['r']}")
            mine = {"alpha": layer.alpha, "init": layer.init, "scaling": "alpha/sqrt(r)" if layer.rslora else "alpha/r"}
            for key, value in mine.items():
                if card[key] != value:
                    raise ValueError(f"module {n!r} has LoRA {key} {value!r}; the adapter has {key} {card[key]!r}")
            if layer.merged:
                raise ValueError(f"module {n!r} is merged; unmerge before loading another adapter")
    else:                                              # apply_lora is all or nothing itself
        exact = re.compile("|".join(map(re.escape, names)))              # the card's names, not their suffixes
        apply_lora(model, exact, card["r"], card["alpha"], card["dropout"], card["init"],
                   rslora=card["scaling"] == "alpha/sqrt(r)")
        present = lora_layers(model)
    with torch.no_grad():                              # everything is checked: nothing below can fail half-way
        for n in names:
            for key in ("M", "N"):
                getattr(present[n], key).copy_(tensors[f"{n}.{key}"])
    return names


# ---- comparing subspaces (chapter 6; the LoRA paper's §7.2) -----------------------------------------------------

def _left_singular(a, name):
    A = as_matrix(a, name).astype(np.float64)
    if not A.any():
        raise ValueError(f"{name} is the zero matrix: it spans no directions to compare")
    return np.linalg.svd(A, full_matrices=False)[0], A.shape             # U (d, min(d, k))


def weight_deltas(before: nn.Module, after: nn.Module, targets) -> dict:
    """ΔW = W_after − W_before (in, out), float64 numpy, for every nn.Linear whose name matches `targets`."""
    check_values(check_module(before, "before"), "weight_deltas")
    check_values(check_module(after, "after"), "weight_deltas")
    targets = _targets(targets)
    mods_after = dict(after.named_modules())
    out = {}
    for name, m in before.named_modules():
        if isinstance(m, nn.Linear) and _matches(name, targets):
            other = mods_after.get(name)
            if isinstance(other, LoRALinear):                          # the adapted weight W + ΔW
                w = other.base.weight.detach().double()
                if other.enabled and not other.merged:
                    w = w + other.delta_weight().detach().double().T   # weight layout (out, in)
            elif isinstance(other, nn.Linear):
                w = other.weight.detach().double()
            else:
                raise ValueError(f"module {name!r} is an nn.Linear in `before` but "
                                 f"{'missing' if other is None else type(other).__name__} in `after`; "
                                 "compare two models of the same architecture")
            if w.shape != m.weight.shape:
                raise ValueError(f"module {name!r} has weight {tuple(m.weight.shape)} in `before` but "
                                 f"{tuple(w.shape)} in `after`")
            out[name] = (w.cpu() - m.weight.detach().double().cpu()).T.numpy()
    if not out:
        raise ValueError(f"no nn.Linear module matches targets {targets!r}")
    if not isinstance(targets, re.Pattern):                             # as apply_lora: every name must mean something
        unused = [t for t in targets if not any(_matches(n, [t]) for n in out)]
        if unused:
            raise ValueError(f"targets {unused} match no nn.Linear module of `before`; the others match {sorted(out)}")
    return out


def similarity_grid(a, b, i_max: int | None = None, j_max: int | None = None, names=("i_max", "j_max")):
    """φ(i, j) for every i ≤ i_max, j ≤ j_max as an array (i_max, j_max); see `subspace_similarity`."""
    Ua, sa = _left_singular(a, "a")
    Ub, sb = _left_singular(b, "b")
    if sa[0] != sb[0]:
        raise ValueError(f"a and b must have the same number of rows (the space they live in); got a {sa} and b {sb}")
    i_max = Ua.shape[1] if i_max is None else check_int(i_max, names[0], 1, Ua.shape[1], where=f" for a of shape {sa}")
    j_max = Ub.shape[1] if j_max is None else check_int(j_max, names[1], 1, Ub.shape[1], where=f" for b of shape {sb}")
    G = (Ua[:, :i_max].T @ Ub[:, :j_max]) ** 2                            # (i_max, j_max): squared cosines
    overlap = G.cumsum(0).cumsum(1)                                      # ‖U_aᵢᵀ U_bⱼ‖²_F for every (i, j)
    i, j = np.arange(1, i_max + 1)[:, None], np.arange(1, j_max + 1)[None, :]
    return np.clip(overlap / np.minimum(i, j), 0.0, 1.0)


def subspace_similarity(a, b, i: int | None = None, j: int | None = None) -> float:
    """φ = ‖U_aᵢᵀ U_bⱼ‖²_F / min(i, j) in [0, 1]: how much the top-i column directions of a (d, ka) overlap the
    top-j of b (d, kb). 1: one subspace contains the other; 0: orthogonal. Default i, j: all columns.

    For LoRA factors pass M (in, r) — its columns span the inputs the adapter reads — or ΔW (in, out).
    """
    grid = similarity_grid(a, b, i, j, names=("i", "j"))
    return float(grid[-1, -1])


# ---- the architecture calculator --------------------------------------------------------------------------------

def _gpt2(d, layers, vocab=50257, ctx=1024):
    return {"layers": layers, "tied": True, "embed": vocab * d + ctx * d, "norms": 2 * d * (2 * layers + 1),
            "linear": {"attn.c_attn": (d, 3 * d), "attn.c_proj": (d, d), "mlp.c_fc": (d, 4 * d),
                       "mlp.c_proj": (4 * d, d)}, "bias": True}


def _gpt3(d, layers, vocab=50257, ctx=2048):
    """GPT-3's shapes with W_q, W_k, W_v as separate matrices, as the LoRA paper counts them (GPT-2 fuses them)."""
    return {"layers": layers, "tied": True, "embed": vocab * d + ctx * d, "norms": 2 * d * (2 * layers + 1),
            "linear": {"attn.q_proj": (d, d), "attn.k_proj": (d, d), "attn.v_proj": (d, d), "attn.out_proj": (d, d),
                       "mlp.c_fc": (d, 4 * d), "mlp.c_proj": (4 * d, d)}, "bias": True}


def _llama(d, layers, ff, kv=None, vocab=32000):
    kv = kv or d
    return {"layers": layers, "tied": False, "embed": 2 * vocab * d, "norms": d * (2 * layers + 1),
            "linear": {"self_attn.q_proj": (d, d), "self_attn.k_proj": (d, kv), "self_attn.v_proj": (d, kv),
                       "self_attn.o_proj": (d, d), "mlp.gate_proj": (d, ff), "mlp.up_proj": (d, ff),
                       "mlp.down_proj": (ff, d)}, "bias": False}


# Shapes from the public configs (hidden size, layers, MLP width, key/value width for grouped-query attention).
ARCHITECTURES = {
    "gpt2": _gpt2(768, 12), "gpt2-medium": _gpt2(1024, 24), "gpt2-large": _gpt2(1280, 36),
    "gpt2-xl": _gpt2(1600, 48), "gpt3-175b": _gpt3(12288, 96),
    "llama-2-7b": _llama(4096, 32, 11008), "llama-2-13b": _llama(5120, 40, 13824),
    "llama-2-70b": _llama(8192, 80, 28672, kv=1024),
}


class LoRACount(NamedTuple):
    """LoRA's trainable parameters for an architecture, the adapted model's total (base + adapter, as
    count_parameters and PEFT count), the trainable share (0 to 1) and the trainable parameters per matrix type."""
    trainable: int
    total: int
    share: float
    per_target: dict


def lora_param_count(arch: str, r: int, targets) -> LoRACount:
    """Trainable LoRA parameters r·(in + out) per targeted matrix per layer, for a published architecture."""
    if not isinstance(arch, str) or arch not in ARCHITECTURES:
        raise ValueError(f"unknown architecture {arch!r}; known: {', '.join(ARCHITECTURES)}")
    a = ARCHITECTURES[arch]
    r = check_int(r, "r", 1)
    if isinstance(targets, str):
        targets = [targets]
    if not isinstance(targets, (list, tuple, set)) or not all(isinstance(t, str) for t in targets):
        raise TypeError(f"targets must be a matrix name or a list of them (strings); got {targets!r}")
    if not targets:
        raise ValueError(f"targets must name at least one matrix of {arch}: {', '.join(a['linear'])}")
    linear = a["linear"]
    per = {}
    for t in targets:
        hits = [k for k in linear if k == t or k.endswith("." + t)]
        if not hits:
            raise ValueError(f"{arch} has no matrix {t!r}; its matrices are: {', '.join(linear)}")
        for k in hits:
            d_in, d_out = linear[k]
            if r > min(d_in, d_out):
                raise ValueError(f"r = {r} exceeds min(in, out) = {min(d_in, d_out)} of {arch}'s {k}")
            per[k] = r * (d_in + d_out) * a["layers"]
    weights = sum(i * o + (o if a["bias"] else 0) for i, o in linear.values()) * a["layers"]
    trainable = sum(per.values())
    total = a["embed"] + a["norms"] + weights + trainable
    return LoRACount(trainable, total, trainable / total, per)
