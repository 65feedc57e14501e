"""A small GPT in GPT-2's layout and module names, a byte-level tokenizer, and the checkpoint that ships (chapter 5).

Modelled on nanoGPT's model.py. Every projection is an `nn.Linear`, so `lora_edu.lora.apply_lora` finds them by
name: `transformer.h.N.attn.c_attn` (q, k, v), `attn.c_proj`, `mlp.c_fc`, `mlp.c_proj`. `lm_head` shares its
weight with `transformer.wte` (tied), so do not put LoRA on it. Tokens are bytes: 256 ids, any text works.
"""
from __future__ import annotations

import hashlib
import json
import math
import os
import shutil
from dataclasses import asdict, dataclass, fields
from importlib import resources
from pathlib import Path

import torch
import torch.nn as nn
import torch.nn.functional as F

from ._checks import check_bool, check_ids, check_int, check_path, check_real, check_seed, check_values

__all__ = ["GPTConfig", "GPT", "encode", "decode", "load_pretrained", "save_model", "load_model",
           "pick_device", "CHECKPOINT", "LORA_TARGETS"]

CHECKPOINT = "gpt_docs"   # lora_edu/checkpoints/gpt_docs.safetensors + gpt_docs.json
LORA_TARGETS = ("c_attn", "c_proj", "c_fc")   # attention and MLP: every Linear but the tied lm_head


def encode(text: str) -> torch.Tensor:
    """Text -> its UTF-8 bytes as token ids: shape (T,), dtype long, values in [0, 256)."""
    if not isinstance(text, str):
        raise TypeError(f"encode takes a str; got {type(text).__name__}")
    return torch.tensor(list(text.encode("utf-8")), dtype=torch.long)


def decode(ids) -> str:
    """Token ids (T,) -> text; bytes that are not valid UTF-8 (a cut multi-byte character) show as '�'."""
    if isinstance(ids, (str, bytes)) or not isinstance(ids, (torch.Tensor, list, tuple, range)):
        raise TypeError(f"ids must be token ids (a tensor or a list of ints); got {type(ids).__name__}")
    ids = torch.as_tensor(ids).flatten()
    check_ids(ids, "ids")
    return bytes(ids.tolist()).decode("utf-8", errors="replace")


def _mps_available() -> bool:
    mps = getattr(torch.backends, "mps", None)
    return mps is not None and mps.is_available()


def pick_device(device="auto") -> torch.device:
    """'auto' -> CUDA if present, else Apple's MPS, else the CPU; any other name or torch.device is checked."""
    if isinstance(device, torch.device):
        device = str(device)
    if not isinstance(device, str):
        raise TypeError(f"device must be 'auto', 'cpu', 'cuda', 'mps' or a torch.device; got {type(device).__name__}")
    if device == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        return torch.device("mps" if _mps_available() else "cpu")
    try:
        dev = torch.device(device)
    except RuntimeError:
        raise ValueError(f"unknown device {device!r}; expected 'auto', 'cpu', 'cuda' or 'mps'") from None
    if dev.type not in ("cpu", "cuda", "mps"):
        raise ValueError(f"device {device!r} cannot train or run the course's models; expected 'auto', 'cpu', 'cuda' "
                         "or 'mps'")
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError("device 'cuda' was asked for, but this PyTorch sees no CUDA GPU; use device='auto'")
    if dev.type == "mps" and not _mps_available():
        raise ValueError("device 'mps' was asked for, but this PyTorch has no Apple MPS device; use device='auto'")
    return dev


@dataclass
class GPTConfig:
    """Sizes of the model: the shipped one is 4 layers × 256 wide, context 256 (about 3.3M parameters)."""
    block_size: int = 256     # the longest context, in bytes
    vocab_size: int = 256     # one id per byte
    n_layer: int = 4
    n_head: int = 4
    n_embd: int = 256
    dropout: float = 0.0
    bias: bool = True

    def __post_init__(self):
        for f in ("block_size", "vocab_size", "n_layer", "n_head", "n_embd"):
            check_int(getattr(self, f), f, 1)
        check_real(self.dropout, "dropout", 0.0, 1.0, hi_open=True)      # 1 would zero every activation
        check_bool(self.bias, "bias")
        if self.n_embd % self.n_head:
            raise ValueError(f"n_embd = {self.n_embd} must be a multiple of n_head = {self.n_head}")


class CausalSelfAttention(nn.Module):
    def __init__(self, cfg: GPTConfig):
        super().__init__()
        self.c_attn = nn.Linear(cfg.n_embd, 3 * cfg.n_embd, bias=cfg.bias)   # q, k, v in one matrix
        self.c_proj = nn.Linear(cfg.n_embd, cfg.n_embd, bias=cfg.bias)
        self.resid_dropout = nn.Dropout(cfg.dropout)
        self.n_head, self.dropout = cfg.n_head, cfg.dropout

    def forward(self, x):
        B, T, C = x.shape
        q, k, v = self.c_attn(x).split(C, dim=2)                                # 3 × (B, T, C)
        q, k, v = (t.view(B, T, self.n_head, C // self.n_head).transpose(1, 2) for t in (q, k, v))  # (B, h, T, d)
        y = F.scaled_dot_product_attention(q, k, v, is_causal=True,
                                           dropout_p=self.dropout if self.training else 0.0)
        y = y.transpose(1, 2).contiguous().view(B, T, C)                        # (B, T, C)
        return self.resid_dropout(self.c_proj(y))


class MLP(nn.Module):
    def __init__(self, cfg: GPTConfig):
        super().__init__()
        self.c_fc = nn.Linear(cfg.n_embd, 4 * cfg.n_embd, bias=cfg.bias)
        self.gelu = nn.GELU()
        self.c_proj = nn.Linear(4 * cfg.n_embd, cfg.n_embd, bias=cfg.bias)
        self.dropout = nn.Dropout(cfg.dropout)

    def forward(self, x):
        return self.dropout(self.c_proj(self.gelu(self.c_fc(x))))


class Block(nn.Module):
    def __init__(self, cfg: GPTConfig):
        super().__init__()
        self.ln_1 = nn.LayerNorm(cfg.n_embd, bias=cfg.bias)
        self.attn = CausalSelfAttention(cfg)
        self.ln_2 = nn.LayerNorm(cfg.n_embd, bias=cfg.bias)
        self.mlp = MLP(cfg)

    def forward(self, x):
        x = x + self.attn(self.ln_1(x))
        return x + self.mlp(self.ln_2(x))


class GPT(nn.Module):
    """Decoder-only transformer: token ids (B, T) -> next-byte logits (B, T, vocab)."""

    def __init__(self, cfg: GPTConfig | None = None):
        super().__init__()
        cfg = GPTConfig() if cfg is None else cfg
        if not isinstance(cfg, GPTConfig):
            raise TypeError(f"GPT takes a GPTConfig; got {type(cfg).__name__}")
        self.config = cfg
        self.transformer = nn.ModuleDict(dict(
            wte=nn.Embedding(cfg.vocab_size, cfg.n_embd),
            wpe=nn.Embedding(cfg.block_size, cfg.n_embd),
            drop=nn.Dropout(cfg.dropout),
            h=nn.ModuleList([Block(cfg) for _ in range(cfg.n_layer)]),
            ln_f=nn.LayerNorm(cfg.n_embd, bias=cfg.bias),
        ))
        self.lm_head = nn.Linear(cfg.n_embd, cfg.vocab_size, bias=False)
        self.lm_head.weight = self.transformer.wte.weight                      # tied, as in GPT-2
        self.apply(self._init_weights)
        for name, p in self.named_parameters():                                # GPT-2's scaled residual init
            if name.endswith("c_proj.weight"):
                nn.init.normal_(p, mean=0.0, std=0.02 / math.sqrt(2 * cfg.n_layer))

    @staticmethod
    def _init_weights(module):
        if isinstance(module, nn.Linear):
            nn.init.normal_(module.weight, mean=0.0, std=0.02)
            if module.bias is not None:
                nn.init.zeros_(module.bias)
        elif isinstance(module, nn.Embedding):
            nn.init.normal_(module.weight, mean=0.0, std=0.02)

    def forward(self, idx, targets=None):
        """idx (B, T) long -> logits (B, T, vocab); with targets (B, T) also the mean cross-entropy (nats/byte)."""
        if not isinstance(idx, torch.Tensor) or idx.dim() != 2 or idx.dtype != torch.long:
            got = f"{idx.dtype} tensor of shape {tuple(idx.shape)}" if isinstance(idx, torch.Tensor) else type(idx).__name__
            raise ValueError(f"idx must be a (batch, time) tensor of dtype long; got a {got}")
        B, T = idx.shape
        if T > self.config.block_size:
            raise ValueError(f"sequence length {T} exceeds the context of {self.config.block_size} bytes "
                             f"(block_size = {self.config.block_size})")
        check_ids(idx, "idx", self.config.vocab_size)
        if targets is not None:
            if not isinstance(targets, torch.Tensor) or targets.shape != idx.shape or targets.dtype != torch.long:
                got = (f"{targets.dtype} tensor of shape {tuple(targets.shape)}" if isinstance(targets, torch.Tensor)
                       else type(targets).__name__)
                raise ValueError(f"targets must be a long tensor of idx's shape {tuple(idx.shape)}; got a {got}")
            check_ids(targets, "targets", self.config.vocab_size)
        pos = torch.arange(T, device=idx.device)
        x = self.transformer.drop(self.transformer.wte(idx) + self.transformer.wpe(pos))   # (B, T, C)
        for block in self.transformer.h:
            x = block(x)
        logits = self.lm_head(self.transformer.ln_f(x))                                   # (B, T, vocab)
        if targets is None:
            return logits
        loss = F.cross_entropy(logits.float().view(-1, logits.size(-1)), targets.reshape(-1))
        return logits, loss

    @torch.no_grad()
    def generate(self, prompt: str = "", max_new_tokens: int = 200, temperature: float = 0.8, top_k=None,
                 seed: int | None = 0) -> str:
        """Continue `prompt` by sampling bytes; temperature 0 means greedy. Returns prompt + continuation."""
        if not isinstance(prompt, str):
            raise TypeError(f"prompt must be a str; got {type(prompt).__name__}")
        check_int(max_new_tokens, "max_new_tokens", 0)
        check_values(self, "generate")
        temperature = check_real(temperature, "temperature", lo=0.0)
        if top_k is not None:
            top_k = check_int(top_k, "top_k", 1, self.config.vocab_size)
        device = next(self.parameters()).device
        gen = torch.Generator(device=device)
        if seed is not None:
            gen.manual_seed(check_seed(seed))
        else:
            gen.seed()
        idx = encode(prompt or "\n").to(device)[None]                                      # (1, T)
        was_training = self.training
        self.eval()
        try:
            for _ in range(max_new_tokens):
                logits = self(idx[:, -self.config.block_size:])[:, -1, :].float()          # (1, vocab)
                if temperature == 0:
                    nxt = logits.argmax(-1, keepdim=True)
                else:
                    logits = logits / temperature
                    if top_k is not None:
                        kth = torch.topk(logits, top_k).values[:, -1:]
                        logits = logits.masked_fill(logits < kth, -float("inf"))
                    nxt = torch.multinomial(F.softmax(logits, dim=-1), 1, generator=gen)
                idx = torch.cat([idx, nxt], dim=1)
        finally:
            self.train(was_training)
        out = idx[0] if prompt else idx[0, 1:]
        return decode(out)

    def num_params(self) -> int:
        """Number of parameters, counting the tied wte/lm_head matrix once."""
        return sum(p.numel() for p in self.parameters())


def _model_files(path) -> tuple[Path, Path]:
    """NAME -> (NAME.safetensors, NAME.json); the whole name is kept ("run.v1" stays "run.v1"), a suffix
    .safetensors or .json given by the caller is dropped."""
    given = path
    path = check_path(path)
    if path.suffix in (".safetensors", ".json"):
        path = path.with_suffix("")
    if path.name in ("", ".", "..") or str(given).endswith(("/", os.sep)) or path.is_dir():
        raise ValueError(f"a model is two files NAME.safetensors and NAME.json; {str(given)!r} names a folder: "
                         f"give the files' name, e.g. {str(path / 'model')!r}")
    return path.with_name(path.name + ".safetensors"), path.with_name(path.name + ".json")


def save_model(model: GPT, path, card: dict | None = None, dtype=torch.bfloat16) -> Path:
    """Write model weights as `path`.safetensors (16-bit by default) and its card (config + `card`, the weights'
    sha256) as `path`.json."""
    from safetensors.torch import save

    from ._io import remove_quietly, write_atomic

    if not isinstance(model, GPT):
        raise TypeError(f"save_model saves a lora_edu GPT; got {type(model).__name__}")
    if card is not None and not isinstance(card, dict):
        raise TypeError(f"card must be a dict of JSON values or None; got {type(card).__name__}")
    reserved = sorted({"format", "config", "sha256"} & set(card or {}))
    if reserved:
        raise ValueError(f"card must not set {reserved}: save_model writes those fields itself")
    if dtype not in (torch.float32, torch.float16, torch.bfloat16):
        raise ValueError(f"dtype must be torch.float32, torch.float16 or torch.bfloat16; got {dtype!r}")
    weights, card_file = _model_files(path)
    check_values(model, "save_model")
    from .lora import lora_layers
    layers = lora_layers(model)
    if any(not layer.merged for layer in layers.values()):
        raise ValueError("the model has unmerged LoRA layers; save_adapter saves the adapter, or merge(model) first to "
                         "save the fine-tuned weights as one plain GPT")
    state = model.state_dict()
    for name in layers:                              # merged: W + ΔW is the base weight; store it under its own name
        for key in ("weight", "bias"):
            if f"{name}.base.{key}" in state:
                state[f"{name}.{key}"] = state.pop(f"{name}.base.{key}")
        del state[f"{name}.M"], state[f"{name}.N"]
    state = {k: v for k, v in state.items() if k != "lm_head.weight"}            # tied: stored once, as wte
    with torch.device("meta"):                          # the card's config must rebuild exactly these tensors
        want = {k: tuple(v.shape) for k, v in GPT(model.config).state_dict().items() if k != "lm_head.weight"}
    have = {k: tuple(v.shape) for k, v in state.items()}
    if want != have:
        wrong = sorted(k for k in want.keys() | have.keys() if want.get(k) != have.get(k))
        raise ValueError(f"the model's weights do not match its config {model.config} (first difference: {wrong[0]}); "
                         f"load_model could not rebuild it from the card")
    stored = {k: v.detach().to("cpu", dtype).contiguous() for k, v in state.items()}
    for k, v in stored.items():
        if not torch.isfinite(v).all() and torch.isfinite(state[k]).all():
            raise ValueError(f"{k} holds values that {dtype} cannot store (largest |value| "
                             f"{state[k].abs().max().item():.3g}); save with dtype=torch.float32 or torch.bfloat16")
    data = save(stored, metadata={"format": "pt"})
    meta = {"format": "lora_edu.gpt/1", "config": asdict(model.config), **(card or {}),
            "sha256": hashlib.sha256(data).hexdigest()}
    text = json.dumps(meta, indent=1) + "\n"                                  # fails before any file is touched
    backup = weights.with_name(f".{weights.name}.previous")      # the old weights, until the new card is in place
    remove_quietly(backup)
    if weights.is_file():
        try:
            os.link(weights, backup)
        except OSError:
            shutil.copy2(weights, backup)
    try:
        write_atomic(weights, lambda tmp: Path(tmp).write_bytes(data))
        write_atomic(card_file, lambda tmp: Path(tmp).write_text(text))
    except BaseException:                                         # one unit: the previous pair stays loadable
        if backup.exists():
            os.replace(backup, weights)
        else:                                                     # there was none: leave none
            remove_quietly(weights)
        raise
    finally:
        remove_quietly(backup)
    return weights


def load_model(path, device="cpu") -> tuple[GPT, dict]:
    """Read a model written by `save_model` -> (GPT in float32 on `device`, its card)."""
    from safetensors import SafetensorError
    from safetensors.torch import load

    weights, card_file = _model_files(path)
    for f in (weights, card_file):
        if not f.is_file():
            raise FileNotFoundError(f"no model at {f}; save_model writes NAME.safetensors and NAME.json")
    try:
        card = json.loads(card_file.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as e:
        raise ValueError(f"{card_file} is not a readable model card ({type(e).__name__}: {e})") from None
    if not isinstance(card, dict) or card.get("format") != "lora_edu.gpt/1" or not isinstance(card.get("config"), dict):
        got = card.get("format") if isinstance(card, dict) else type(card).__name__
        raise ValueError(f"{card_file} is not a lora_edu GPT card (format {got!r:.80})")
    data = weights.read_bytes()
    if "sha256" in card and hashlib.sha256(data).hexdigest() != card["sha256"]:
        raise ValueError(f"{weights} is not the file its card {card_file.name} describes (its sha256 differs)")
    known = {f.name for f in fields(GPTConfig)}
    try:
        config = GPTConfig(**{k: v for k, v in card["config"].items() if k in known})
    except (TypeError, ValueError) as e:                       # GPTConfig's own checks, on a hand-edited card
        raise ValueError(f"{card_file}: its config is not a valid GPTConfig ({e})") from None
    try:
        model = GPT(config)
        state = {k: v.float() for k, v in load(data).items()}
        state["lm_head.weight"] = state["transformer.wte.weight"]
        model.load_state_dict(state)
    except (SafetensorError, KeyError, RuntimeError, TypeError) as e:
        raise ValueError(f"{weights} does not hold the model its card {card_file.name} describes ({e})") from None
    return model.to(pick_device(device)), card


def load_pretrained(device="cpu") -> GPT:
    """The small GPT pretrained on Python's documentation that ships with the package (card: `model.card`)."""
    folder = resources.files("lora_edu") / "checkpoints"
    with resources.as_file(folder) as f:
        model, card = load_model(Path(f) / CHECKPOINT, device=device)
    model.card = card
    return model.eval()
