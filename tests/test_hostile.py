"""Hostile input across the public API (issue 16): every bad argument gets a ValueError, TypeError or
FileNotFoundError whose message names the argument (or the file), and a call that would change a model leaves
its module tree, tensors and requires_grad flags exactly as they were."""
import json
import math
import warnings

import numpy as np
import pytest
import torch
import torch.nn as nn
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from lora_edu import course, data, plots, rank, svd, train, widgets
from lora_edu import gpt as G
from lora_edu import lora as L
from test_lora import Tiny, _snapshot, _unchanged

I2 = np.eye(2)
NAN = [[1.0, float("nan")], [0.0, 1.0]]
TOKENS = torch.arange(200, dtype=torch.uint8)


def tiny_gpt():
    torch.manual_seed(0)
    return G.GPT(G.GPTConfig(block_size=16, n_layer=1, n_head=2, n_embd=8))


def adapted():
    model = Tiny()
    L.apply_lora(model, "c_attn", r=2)
    return model


def merged():
    model = adapted()
    L.merge(model)
    return model


def saved(tmp):
    return L.save_adapter(adapted(), tmp / "ad")


def card_edited(tmp, key, value):
    """An adapter folder whose card has `key` set to `value` by hand."""
    folder = saved(tmp)
    card = json.loads((folder / "adapter.json").read_text())
    card[key] = value
    (folder / "adapter.json").write_text(json.dumps(card))
    return folder


def linked_card(tmp):
    """A folder whose adapter.json is a link to another adapter's card."""
    import os
    other = saved(tmp)
    (tmp / "linked").mkdir()
    os.symlink(other / "adapter.json", tmp / "linked" / "adapter.json")
    return tmp / "linked"


def text_file(tmp, content, name="t.txt"):
    path = tmp / name
    (path.write_bytes if isinstance(content, bytes) else path.write_text)(content)
    return path


# (id, call(tmp_path) -> None, exception, regex the message must match)
CASES = [
    # ---- rank ------------------------------------------------------------------------------------------------
    ("sv None", lambda t: rank.singular_values(None), ValueError, r"\bA\b.*NoneType"),
    ("sv str", lambda t: rank.singular_values("abc"), ValueError, r"\bA\b.*str"),
    ("sv ragged", lambda t: rank.singular_values([[1, 2], [3]]), ValueError, r"\bA\b.*equal length"),
    ("sv 1-D", lambda t: rank.singular_values(np.ones(3)), ValueError, r"\bA\b must be 2-D.*1-D"),
    ("sv 3-D", lambda t: rank.singular_values(np.ones((2, 2, 2))), ValueError, r"\bA\b must be 2-D.*3-D"),
    ("sv empty", lambda t: rank.singular_values(np.ones((0, 3))), ValueError, r"\bA\b must not be empty"),
    ("sv nan", lambda t: rank.singular_values(NAN), ValueError, r"\bA\b contains NaN"),
    ("sv inf", lambda t: rank.singular_values([[np.inf]]), ValueError, r"\bA\b contains inf"),
    ("sv complex", lambda t: rank.singular_values(np.eye(2) * 1j), ValueError, r"\bA\b.*complex"),
    ("sv complex tensor", lambda t: rank.singular_values(torch.eye(2, dtype=torch.complex64)), ValueError,
     r"\bA\b.*complex"),
    ("sv strings", lambda t: rank.singular_values(np.array([["a"]])), ValueError, r"\bA\b.*non-numeric"),
    ("sv objects", lambda t: rank.singular_values([[1, None]]), ValueError, r"\bA\b"),
    ("rank tol<0", lambda t: rank.matrix_rank(I2, tol=-1), ValueError, r"\btol\b"),
    ("rank tol str", lambda t: rank.matrix_rank(I2, tol="1e-3"), TypeError, r"\btol\b.*str"),
    ("rank tol nan", lambda t: rank.matrix_rank(I2, tol=float("nan")), ValueError, r"\btol\b.*finite"),
    ("rank tol inf", lambda t: rank.matrix_rank(I2, tol=float("inf")), ValueError, r"\btol\b.*finite"),
    ("full None", lambda t: rank.is_full_rank(None), ValueError, r"\bA\b"),
    ("full tol", lambda t: rank.is_full_rank(I2, tol=[1]), TypeError, r"\btol\b"),
    ("deftol 1-D", lambda t: rank.default_tol([1, 2]), ValueError, r"\bA\b"),
    ("eff energy 0", lambda t: rank.effective_rank(I2, energy=0), ValueError, r"\benergy\b"),
    ("eff energy 1.5", lambda t: rank.effective_rank(I2, energy=1.5), ValueError, r"\benergy\b"),
    ("eff energy str", lambda t: rank.effective_rank(I2, energy="90%"), TypeError, r"\benergy\b"),
    ("eff nan", lambda t: rank.effective_rank(NAN), ValueError, r"\bA\b"),
    ("share k 0", lambda t: rank.energy_share(I2, 0), ValueError, r"\bk = 0\b"),
    ("share k big", lambda t: rank.energy_share(I2, 3), ValueError, r"\bk = 3\b.*2 singular values"),
    ("share k float", lambda t: rank.energy_share(I2, 1.5), ValueError, r"\bk\b must be an integer"),
    ("share k bool", lambda t: rank.energy_share(I2, True), ValueError, r"\bk\b must be an integer"),
    ("summary empty", lambda t: rank.spectrum_summary([]), ValueError, r"\bs\b must be"),
    ("summary 2-D", lambda t: rank.spectrum_summary([[1, 2]]), ValueError, r"\bs\b must be"),
    ("summary zeros", lambda t: rank.spectrum_summary([0, 0]), ValueError, r"\bs\b must be.*not all zero"),
    ("summary nan", lambda t: rank.spectrum_summary([1, float("nan")]), ValueError, r"\bs\b must be"),
    ("summary str", lambda t: rank.spectrum_summary("abc"), ValueError, r"\bs\b must be"),
    ("summary None", lambda t: rank.spectrum_summary(None), ValueError, r"\bs\b must be"),
    ("summary k", lambda t: rank.spectrum_summary([2, 1], k=3), ValueError, r"\bk = 3\b"),
    ("summary energy", lambda t: rank.spectrum_summary([2, 1], k=1, energy=-1), ValueError, r"\benergy\b"),
    ("elim empty", lambda t: rank.rank_by_elimination([]), ValueError, r"\bA\b must not be empty"),
    ("elim str entry", lambda t: rank.rank_by_elimination([[1, "x"]]), ValueError, r"A\[0\]\[1\]"),
    ("elim ragged", lambda t: rank.rank_by_elimination([[1, 2], [3]]), ValueError, r"\bA\b.*equal length"),
    ("elim nan", lambda t: rank.rank_by_elimination([[float("nan")]]), ValueError, r"A\[0\]\[0\]"),
    ("elim None", lambda t: rank.rank_by_elimination(None), ValueError, r"\bA\b"),
    ("elim bool", lambda t: rank.rank_by_elimination([[True]]), ValueError, r"A\[0\]\[0\]"),
    ("lowrank m 0", lambda t: rank.random_low_rank(0, 3, 1), ValueError, r"\bm = 0\b"),
    ("lowrank m float", lambda t: rank.random_low_rank(3.5, 3, 1), ValueError, r"\bm\b must be an integer"),
    ("lowrank r big", lambda t: rank.random_low_rank(3, 3, 4), ValueError, r"\br = 4\b"),
    ("lowrank r neg", lambda t: rank.random_low_rank(3, 3, -1), ValueError, r"\br = -1\b"),
    ("lowrank seed str", lambda t: rank.random_low_rank(3, 3, 1, seed="abc"), ValueError, r"\bseed\b"),
    ("lowrank seed neg", lambda t: rank.random_low_rank(3, 3, 1, seed=-1), ValueError, r"\bseed\b"),
    ("lowrank seed float", lambda t: rank.random_low_rank(3, 3, 1, seed=1.5), ValueError, r"\bseed\b"),
    # ---- svd -------------------------------------------------------------------------------------------------
    ("storage m", lambda t: svd.storage(0, 3, 1), ValueError, r"\bm = 0\b"),
    ("storage r", lambda t: svd.storage(3, 3, 4), ValueError, r"\br = 4\b"),
    ("storage str", lambda t: svd.storage("3", 3, 1), ValueError, r"\bm\b must be an integer"),
    ("relerr shapes", lambda t: svd.relative_error(I2, np.ones((3, 1)), np.ones((1, 2))), ValueError,
     r"M @ N must have A's shape"),
    ("relerr M None", lambda t: svd.relative_error(I2, None, I2), ValueError, r"\bM\b"),
    ("device meta", lambda t: G.pick_device("meta"), ValueError, r"device 'meta' cannot train"),
    ("device obj meta", lambda t: G.pick_device(torch.device("meta")), ValueError, r"device 'meta' cannot train"),
    ("save nan factors", lambda t: (lambda m: (torch.nn.init.constant_(L.lora_layers(m)["h.0.c_attn"].N, float("nan")),
                                               L.save_adapter(m, t / "a")))(adapted()), ValueError,
     r"h.0.c_attn.N has shape \(2, 24\) and holds NaN or inf"),
    ("relerr N nan", lambda t: svd.relative_error(I2, I2, NAN), ValueError, r"\bN\b contains NaN"),
    ("factorize None", lambda t: svd.rank_factorize(None), ValueError, r"\bA\b"),
    ("factorize tol", lambda t: svd.rank_factorize(I2, tol=-1), ValueError, r"\btol\b"),
    ("approx r 0", lambda t: svd.low_rank_approx(I2, 0), ValueError, r"\br = 0\b"),
    ("approx r big", lambda t: svd.low_rank_approx(I2, 3), ValueError, r"\br = 3\b.*2×2"),
    ("approx r float", lambda t: svd.low_rank_approx(I2, 1.0), ValueError, r"\br\b must be an integer"),
    ("approx method", lambda t: svd.low_rank_approx(I2, 1, method="fast"), ValueError, r"\bmethod\b.*'fast'"),
    ("approx method None", lambda t: svd.low_rank_approx(I2, 1, method=None), ValueError, r"\bmethod\b"),
    ("approx seed", lambda t: svd.low_rank_approx(I2, 1, seed="abc"), ValueError, r"\bseed\b"),
    ("approx inf", lambda t: svd.low_rank_approx([[np.inf, 0], [0, 1]], 1), ValueError, r"\bA\b contains inf"),
    ("factorizer None", lambda t: svd.SVDFactorizer(None), ValueError, r"\bA\b"),
    ("factors 0", lambda t: svd.SVDFactorizer(I2).factors(0), ValueError, r"\br = 0\b"),
    ("approx 3", lambda t: svd.SVDFactorizer(I2).approx(3), ValueError, r"\br = 3\b"),
    ("error str", lambda t: svd.SVDFactorizer(I2).error("1"), ValueError, r"\br\b must be an integer"),
    ("stored -1", lambda t: svd.SVDFactorizer(I2).stored(-1), ValueError, r"\br = -1\b"),
    # ---- the LoRA layer --------------------------------------------------------------------------------------
    ("layer conv", lambda t: L.LoRALinear(nn.Conv1d(2, 2, 1), 1), TypeError, r"wraps an nn.Linear; got Conv1d"),
    ("layer None", lambda t: L.LoRALinear(None, 1), TypeError, r"wraps an nn.Linear; got NoneType"),
    ("layer r 0", lambda t: L.LoRALinear(nn.Linear(4, 3), 0), ValueError, r"\br = 0\b"),
    ("layer r big", lambda t: L.LoRALinear(nn.Linear(4, 3), 4), ValueError, r"\br = 4\b"),
    ("layer r str", lambda t: L.LoRALinear(nn.Linear(4, 3), "2"), ValueError, r"\br\b must be an integer"),
    ("layer alpha 0", lambda t: L.LoRALinear(nn.Linear(4, 3), 2, alpha=0), ValueError, r"\balpha\b"),
    ("layer alpha nan", lambda t: L.LoRALinear(nn.Linear(4, 3), 2, alpha=float("nan")), ValueError, r"\balpha\b"),
    ("layer alpha str", lambda t: L.LoRALinear(nn.Linear(4, 3), 2, alpha="8"), TypeError, r"\balpha\b"),
    ("layer dropout 1", lambda t: L.LoRALinear(nn.Linear(4, 3), 2, dropout=1.0), ValueError, r"\bdropout\b"),
    ("layer dropout -", lambda t: L.LoRALinear(nn.Linear(4, 3), 2, dropout=-0.1), ValueError, r"\bdropout\b"),
    ("layer init", lambda t: L.LoRALinear(nn.Linear(4, 3), 2, init="gaussian"), ValueError, r"\binit\b.*gaussian"),
    ("layer rslora", lambda t: L.LoRALinear(nn.Linear(4, 3), 2, rslora="yes"), TypeError, r"\brslora\b"),
    ("layer double merge", lambda t: (lambda l: (l.merge(), l.merge()))(L.LoRALinear(nn.Linear(4, 3), 2)),
     ValueError, r"already merged"),
    ("layer unmerge first", lambda t: L.LoRALinear(nn.Linear(4, 3), 2).unmerge(), ValueError, r"not merged"),
    ("layer x shape", lambda t: L.LoRALinear(nn.Linear(4, 3), 2)(torch.ones(2, 5)), ValueError, r"\bx\b must have 4 features"),
    # ---- small helpers around models -------------------------------------------------------------------------
    ("layers None", lambda t: L.lora_layers(None), TypeError, r"\bmodel\b.*NoneType"),
    ("count None", lambda t: L.count_parameters(None), TypeError, r"\bmodel\b.*NoneType"),
    ("calc arch", lambda t: L.lora_param_count("gpt5", 8, "q_proj"), ValueError, r"unknown architecture 'gpt5'"),
    ("calc arch type", lambda t: L.lora_param_count(None, 8, "q_proj"), ValueError, r"architecture"),
    ("calc r", lambda t: L.lora_param_count("gpt2", 0, "c_attn"), ValueError, r"\br = 0\b"),
    ("calc targets", lambda t: L.lora_param_count("gpt2", 8, "q_proj"), ValueError, r"no matrix 'q_proj'"),
    ("calc targets None", lambda t: L.lora_param_count("gpt2", 8, None), TypeError, r"\btargets\b"),
    ("calc targets []", lambda t: L.lora_param_count("gpt2", 8, []), ValueError, r"\btargets\b"),
    ("sim zero a", lambda t: L.subspace_similarity(np.zeros((4, 2)), np.eye(4)[:, :2]), ValueError, r"\ba\b.*zero"),
    ("sim zero b", lambda t: L.subspace_similarity(np.eye(4)[:, :2], np.zeros((4, 2))), ValueError, r"\bb\b.*zero"),
    ("sim 1-D", lambda t: L.subspace_similarity(np.ones(4), np.eye(4)), ValueError, r"\ba\b must be 2-D"),
    ("sim rows", lambda t: L.subspace_similarity(np.eye(4), np.eye(3)), ValueError, r"\brows\b|\bdimension\b"),
    ("sim i 0", lambda t: L.subspace_similarity(np.eye(4), np.eye(4), i=0), ValueError, r"\bi = 0\b"),
    ("sim i big", lambda t: L.subspace_similarity(np.eye(4), np.eye(4), i=5), ValueError, r"\bi = 5\b"),
    ("sim j str", lambda t: L.subspace_similarity(np.eye(4), np.eye(4), j="2"), ValueError, r"\bj\b must be"),
    ("sim nan", lambda t: L.subspace_similarity(NAN, I2), ValueError, r"\ba\b contains NaN"),
    ("grid i_max", lambda t: L.similarity_grid(np.eye(4), np.eye(4), i_max=0), ValueError, r"\bi_max = 0\b"),
    ("grid zero", lambda t: L.similarity_grid(np.zeros((4, 2)), np.eye(4)), ValueError, r"\ba\b.*zero"),
    ("deltas targets", lambda t: L.weight_deltas(Tiny(), Tiny(), "nothing"), ValueError, r"\btargets\b|nothing"),
    ("deltas shapes", lambda t: L.weight_deltas(Tiny(), Tiny(d=12), "c_attn"), ValueError, r"'h.0.c_attn' has weight \(24, 8\) in `before`"),
    ("deltas None", lambda t: L.weight_deltas(None, Tiny(), "c_attn"), TypeError, r"\bbefore\b"),
    # ---- gpt -------------------------------------------------------------------------------------------------
    ("cfg block 0", lambda t: G.GPTConfig(block_size=0), ValueError, r"\bblock_size = 0\b"),
    ("cfg vocab 0", lambda t: G.GPTConfig(vocab_size=0), ValueError, r"\bvocab_size = 0\b"),
    ("cfg layers", lambda t: G.GPTConfig(n_layer=-1), ValueError, r"\bn_layer = -1\b"),
    ("cfg heads", lambda t: G.GPTConfig(n_head=3), ValueError, r"n_embd = 256 must be a multiple of n_head = 3"),
    ("cfg dropout 1", lambda t: G.GPTConfig(dropout=1.0), ValueError, r"\bdropout\b"),
    ("cfg dropout str", lambda t: G.GPTConfig(dropout="0.1"), TypeError, r"\bdropout\b"),
    ("cfg bias", lambda t: G.GPTConfig(bias="no"), TypeError, r"\bbias\b"),
    ("gpt cfg", lambda t: G.GPT("small"), TypeError, r"GPTConfig; got str"),
    ("ids 300", lambda t: tiny_gpt()(torch.tensor([[1, 300]])), ValueError, r"idx holds token ids from 1 to 300; expected ids in \[0, vocab_size = 256\)"),
    ("ids -1", lambda t: tiny_gpt()(torch.tensor([[-1, 2]])), ValueError, r"idx holds token ids from -1"),
    ("ids float", lambda t: tiny_gpt()(torch.ones(1, 3)), ValueError, r"\bidx\b.*dtype long; got a torch.float32"),
    ("ids 1-D", lambda t: tiny_gpt()(torch.ones(3, dtype=torch.long)), ValueError, r"\bidx\b must be a \(batch, time\) tensor"),
    ("ids long", lambda t: tiny_gpt()(torch.zeros(1, 17, dtype=torch.long)), ValueError, r"block_size = 16"),
    ("targets shape", lambda t: tiny_gpt()(torch.zeros(1, 4, dtype=torch.long), torch.zeros(1, 3, dtype=torch.long)),
     ValueError, r"\btargets\b"),
    ("targets 300", lambda t: tiny_gpt()(torch.zeros(1, 2, dtype=torch.long), torch.tensor([[1, 300]])),
     ValueError, r"\btargets\b.*300"),
    ("encode int", lambda t: G.encode(3), TypeError, r"encode takes a str; got int"),
    ("decode str", lambda t: G.decode("abc"), TypeError, r"\bids\b"),
    ("decode 300", lambda t: G.decode([65, 300]), ValueError, r"\bids\b.*300"),
    ("decode -1", lambda t: G.decode(torch.tensor([-1])), ValueError, r"\bids\b.*-1"),
    ("generate n", lambda t: tiny_gpt().generate("x", -1), ValueError, r"\bmax_new_tokens\b"),
    ("generate temp", lambda t: tiny_gpt().generate("x", 2, temperature=float("nan")), ValueError, r"\btemperature\b"),
    ("generate top_k", lambda t: tiny_gpt().generate("x", 2, top_k=0), ValueError, r"\btop_k\b"),
    ("generate prompt", lambda t: tiny_gpt().generate(123), TypeError, r"\bprompt\b"),
    ("generate seed", lambda t: tiny_gpt().generate("x", 2, seed="abc"), ValueError, r"\bseed\b"),
    ("device tpu", lambda t: G.pick_device("tpu"), ValueError, r"unknown device 'tpu'"),
    ("device int", lambda t: G.pick_device(3), TypeError, r"\bdevice\b.*int"),
    ("save_model linear", lambda t: G.save_model(nn.Linear(2, 2), t / "m"), TypeError, r"lora_edu GPT.*Linear"),
    ("load_model missing", lambda t: G.load_model(t / "nothing"), FileNotFoundError, r"nothing.safetensors"),
    ("load_model binary", lambda t: (text_file(t, b"\xff\xfe", "m.json"), text_file(t, b"x", "m.safetensors"),
                                     G.load_model(t / "m")), ValueError, r"m.json"),
    ("pretrained device", lambda t: G.load_pretrained(device="tpu"), ValueError, r"unknown device 'tpu'"),
    # ---- data ------------------------------------------------------------------------------------------------
    ("corpus name", lambda t: data.corpus("poems"), ValueError, r"unknown corpus 'poems'"),
    ("corpus int", lambda t: data.corpus(3), ValueError, r"unknown corpus 3"),
    ("text missing", lambda t: data.load_text(t / "none.txt"), FileNotFoundError, r"none.txt"),
    ("text folder", lambda t: data.load_text(t), FileNotFoundError, r"no text file"),
    ("text frac 0", lambda t: data.load_text(text_file(t, "a\n" * 100), val_fraction=0), ValueError,
     r"\bval_fraction\b"),
    ("text frac 1.5", lambda t: data.load_text(text_file(t, "a\n" * 100), val_fraction=1.5), ValueError,
     r"\bval_fraction\b"),
    ("text binary", lambda t: data.load_text(text_file(t, b"\xff\xfe\x00" * 50)), ValueError, r"t.txt is not UTF-8"),
    ("text empty", lambda t: data.load_text(text_file(t, "")), ValueError, r"t.txt holds 0 characters"),
    ("text name", lambda t: data.load_text(text_file(t, "line of text\n" * 100), name=3), TypeError, r"\bname\b"),
    ("tokens int", lambda t: data.as_tokens(3), TypeError, r"text \(str\).*int"),
    ("tokens 300", lambda t: data.as_tokens(torch.tensor([1, 300])), ValueError, r"text holds token ids from 1 to 300; expected ids in \[0, vocab_size = 256\)"),
    ("tokens -1", lambda t: data.as_tokens(torch.tensor([-1, 2])), ValueError, r"text holds token ids from -1"),
    ("tokens 2-D", lambda t: data.as_tokens(torch.zeros(2, 2, dtype=torch.long)), TypeError, r"shape \(2, 2\)"),
    ("batch size", lambda t: data.get_batch(TOKENS, 0, 8), ValueError, r"\bbatch_size = 0\b"),
    ("batch block", lambda t: data.get_batch(TOKENS, 2, 0), ValueError, r"\bblock_size = 0\b"),
    ("batch short", lambda t: data.get_batch(TOKENS, 2, 300), ValueError, r"\bblock_size = 300\b"),
    ("batch generator", lambda t: data.get_batch(TOKENS, 2, 8, generator="x"), TypeError, r"\bgenerator\b"),
    ("batch tokens", lambda t: data.get_batch("some text" * 30, 2, 8), TypeError, r"\btokens\b"),
    # ---- train -----------------------------------------------------------------------------------------------
    ("ft steps", lambda t: train.finetune(adapted_gpt(), "a" * 400, "b" * 400, 0, block_size=8), ValueError,
     r"\bsteps = 0\b"),
    ("ft lr 0", lambda t: train.finetune(adapted_gpt(), "a" * 400, "b" * 400, 1, lr=0, block_size=8), ValueError,
     r"\blr\b"),
    ("ft lr nan", lambda t: train.finetune(adapted_gpt(), "a" * 400, "b" * 400, 1, lr=float("nan"), block_size=8),
     ValueError, r"\blr\b"),
    ("ft batch", lambda t: train.finetune(adapted_gpt(), "a" * 400, "b" * 400, 1, batch_size=0, block_size=8),
     ValueError, r"\bbatch_size = 0\b"),
    ("ft block", lambda t: train.finetune(adapted_gpt(), "a" * 400, "b" * 400, 1, block_size=32), ValueError,
     r"\bblock_size = 32\b"),
    ("ft short", lambda t: train.finetune(adapted_gpt(), "a" * 4, "b" * 400, 1, block_size=8), ValueError,
     r"has 4 bytes"),
    ("ft device", lambda t: train.finetune(adapted_gpt(), "a" * 400, "b" * 400, 1, block_size=8, device="tpu"),
     ValueError, r"unknown device 'tpu'"),
    ("ft model", lambda t: train.finetune(None, "a" * 400, "b" * 400, 1, block_size=8), TypeError, r"\bmodel\b must be"),
    ("ft seed", lambda t: train.finetune(adapted_gpt(), "a" * 400, "b" * 400, 1, block_size=8, seed="abc"),
     ValueError, r"\bseed\b must be an integer"),
    ("ft seed big", lambda t: train.finetune(adapted_gpt(), "a" * 400, "b" * 400, 1, block_size=8, seed=2 ** 70),
     ValueError, r"\bseed\b"),
    ("ft checkpoint file", lambda t: train.finetune(adapted_gpt(), "a" * 400, "b" * 400, 1, block_size=8,
                                                    checkpoint=text_file(t, "x")), ValueError, r"t.txt.*file"),
    ("ft frozen", lambda t: train.finetune(frozen_gpt(), "a" * 400, "b" * 400, 1, block_size=8), ValueError,
     r"no trainable"),
    ("eval block", lambda t: train.evaluate(tiny_gpt(), "a" * 400, block_size=0), ValueError, r"\bblock_size = 0\b"),
    ("eval windows", lambda t: train.evaluate(tiny_gpt(), "a" * 400, 8, windows=0), ValueError, r"\bwindows = 0\b"),
    ("eval short", lambda t: train.evaluate(tiny_gpt(), "abc", 8), ValueError, r"has 3 bytes"),
    ("eval batch", lambda t: train.evaluate(tiny_gpt(), "a" * 400, 8, batch_size=0), ValueError,
     r"\bbatch_size = 0\b"),
    ("eval model", lambda t: train.evaluate("model", "a" * 400, 8), TypeError, r"\bmodel\b"),
    ("sweep nothing", lambda t: train.rank_sweep(data.corpus("calendar"), ranks=[], full_lr=None), ValueError,
     r"\branks\b is empty and full_lr is None"),
    ("sweep ranks 0", lambda t: train.rank_sweep(data.corpus("calendar"), ranks=[0]), ValueError, r"\br = 0\b"),
    ("sweep task", lambda t: train.rank_sweep("calendar"), TypeError, r"\btask\b"),
    # ---- widgets and plots -----------------------------------------------------------------------------------
    ("circle 3x3", lambda t: widgets.circle_rank_slider(A=np.eye(3)), ValueError, r"2×2"),
    ("circle t", lambda t: widgets.circle_rank_slider(t=3.0), ValueError, r"\bt = 3.0\b"),
    ("noise <0", lambda t: widgets.noise_rank_slider(noise=-1.0), ValueError, r"\bnoise\b"),
    ("noise tol", lambda t: widgets.noise_rank_slider(tol=-1.0), ValueError, r"\btol\b"),
    ("noise seed", lambda t: widgets.noise_rank_slider(seed="x"), ValueError, r"\bseed\b"),
    ("photo 255", lambda t: widgets.photo_rank_slider(np.full((8, 8), 255.0)), ValueError, r"\bimage\b.*255"),
    ("photo r", lambda t: widgets.photo_rank_slider(np.ones((8, 8)) / 2, r=0), ValueError, r"\br = 0\b"),
    ("photo 1-D", lambda t: widgets.photo_rank_slider(np.ones(8)), ValueError, r"must be 2-D"),
    ("matrix r", lambda t: widgets.matrix_rank_slider(I2, r=3), ValueError, r"\br = 3\b"),
    ("matrix true", lambda t: widgets.matrix_rank_slider(I2, r=1, true_rank=-1), ValueError, r"\btrue_rank\b"),
    ("calc widget arch", lambda t: widgets.lora_calculator(arch="gpt5"), ValueError, r"unknown architecture"),
    ("calc widget r", lambda t: widgets.lora_calculator(r=0), ValueError, r"\br = 0\b"),
    ("calc widget r big", lambda t: widgets.lora_calculator(r=1000), ValueError, r"\br = 1000\b"),
    ("sweep slider {}", lambda t: widgets.sweep_slider({}), TypeError, r"\bresult\b must be a rank sweep"),
    ("sweep slider regime", lambda t: widgets.sweep_slider(stored_sweep(), regime="x"), ValueError, r"\bregime\b"),
    ("image None", lambda t: widgets.image_png(None), ValueError, r"\bimg\b"),
    ("figure None", lambda t: widgets.figure_png(None), TypeError, r"\bfig\b"),
    ("plot circle", lambda t: plots.unit_circle_map(np.eye(3)), ValueError, r"2×2"),
    ("plot sv []", lambda t: plots.singular_values([]), ValueError, r"\bs\b"),
    ("plot sv tol", lambda t: plots.singular_values([2, 1], tol=-1), ValueError, r"\btol\b"),
    ("plot errors", lambda t: plots.error_curve([]), ValueError, r"\berrors\b"),
    ("plot losses", lambda t: plots.loss_curves({}), ValueError, r"\bhistories\b"),
    ("plot losses type", lambda t: plots.loss_curves([1, 2]), ValueError, r"\bhistories\b must be"),
    ("plot tradeoff", lambda t: plots.rank_tradeoff([]), ValueError, r"\brows\b"),
    ("plot recon", lambda t: plots.reconstruction(np.eye(2), np.eye(3), 1, 0.5, 0.5), ValueError, r"shape"),
    # ---- course ----------------------------------------------------------------------------------------------
    ("strip int", lambda t: course.strip_solutions(3), TypeError, r"\bsource\b"),
    ("grade missing", lambda t: course.grade([t / "none.ipynb"]), ValueError, r"no such file or folder: .*none.ipynb"),
    ("grade timeout", lambda t: course.grade_notebook(t / "none.ipynb", timeout=0), ValueError, r"\btimeout\b"),
    ("grade none", lambda t: course.grade([]), ValueError, r"\bpaths\b"),
    ("grade jobs", lambda t: course.grade([t / "a.ipynb"], jobs=0), ValueError, r"\bjobs = 0\b"),
    ("build src", lambda t: course.build(src=t / "nowhere", out=t / "out"), ValueError, r"no notebook folder at .*nowhere"),
    # ---- found by the second probe ---------------------------------------------------------------------------
    ("meta rank", lambda t: rank.matrix_rank(torch.ones(2, 2, device="meta")), ValueError, r"\bA\b.*'meta' device"),
    ("meta elim", lambda t: rank.rank_by_elimination(torch.ones(2, 2, device="meta")), ValueError, r"'meta' device"),
    ("meta approx", lambda t: svd.low_rank_approx(torch.ones(2, 2, device="meta"), 1), ValueError, r"'meta' device"),
    ("meta similarity", lambda t: L.subspace_similarity(torch.ones(4, 2, device="meta"), np.ones((4, 2))), ValueError,
     r"'meta' device"),
    ("lowrank huge", lambda t: rank.random_low_rank(10 ** 12, 3, 1), ValueError, r"10+×3 matrix.*at most"),
    ("deltas targets unused", lambda t: L.weight_deltas(Tiny(), Tiny(), ["c_attn", "nope"]), ValueError,
     r"targets \['nope'\] match no nn.Linear module of `before`"),
    ("deltas targets None", lambda t: L.weight_deltas(Tiny(), Tiny(), None), TypeError, r"\btargets\b.*None"),
    ("deltas targets int", lambda t: L.weight_deltas(Tiny(), Tiny(), 5), TypeError, r"\btargets\b.*5"),
    ("deltas targets bytes", lambda t: L.weight_deltas(Tiny(), Tiny(), b"c_attn"), TypeError, r"\btargets\b"),
    ("apply bytes regex", lambda t: L.apply_lora(Tiny(), __import__("re").compile(b"c_attn"), r=2), TypeError,
     r"\btargets\b must be a str regex"),
    ("enabled str", lambda t: setattr(L.lora_layers(adapted())["h.0.c_attn"], "enabled", "no"), TypeError,
     r"\benabled\b must be True or False; got 'no'"),
    ("card shape short", lambda t: L.load_adapter(Tiny(), card_edited(t, "base_shapes", {"h.0.c_attn": [8],
     "h.1.c_attn": [8, 24]})), ValueError, r"adapter.json: base_shapes\['h.0.c_attn'\] must be \[in, out\]"),
    ("card shape int", lambda t: L.load_adapter(Tiny(), card_edited(t, "base_shapes", {"h.0.c_attn": 4,
     "h.1.c_attn": None})), ValueError, r"adapter.json: base_shapes\['h.0.c_attn'\] must be \[in, out\]"),
    ("card targets nested", lambda t: L.load_adapter(Tiny(), card_edited(t, "targets", [["h.0.c_attn"]])), ValueError,
     r"adapter.json: targets must be a list of distinct module names"),
    ("card targets twice", lambda t: L.load_adapter(Tiny(), card_edited(t, "targets", ["h.0.c_attn"] * 2)), ValueError,
     r"adapter.json: targets must be a list of distinct"),
    ("card r str", lambda t: L.load_adapter(Tiny(), card_edited(t, "r", "2")), ValueError, r"adapter.json: r must be an integer"),
    ("card alpha neg", lambda t: L.load_adapter(Tiny(), card_edited(t, "alpha", -1)), ValueError,
     r"adapter.json: alpha = -1.0 is out of range; expected alpha > 0"),
    ("card dropout", lambda t: L.load_adapter(Tiny(), card_edited(t, "dropout", 2)), ValueError,
     r"adapter.json: dropout = 2.0 is out of range; expected dropout in \[0, 1\)"),
    ("card scaling", lambda t: L.load_adapter(Tiny(), card_edited(t, "scaling", ["alpha/r"])), ValueError,
     r"adapter.json: scaling must be one of"),
    ("card init", lambda t: L.load_adapter(Tiny(), card_edited(t, "init", "pissa")), ValueError,
     r"adapter.json: init must be one of"),
    ("card deep", lambda t: (text_file(t, "[" * 100000 + "]" * 100000, "adapter.json"), L.load_adapter(Tiny(), t)),
     ValueError, r"adapter.json is not a readable adapter card \(RecursionError"),
    ("card linked", lambda t: L.save_adapter(adapted(), linked_card(t)), ValueError,
     r"linked/adapter.json is a symbolic link"),
    ("save_model int8", lambda t: G.save_model(tiny_gpt(), t / "m", dtype=torch.int8), ValueError, r"\bdtype\b.*int8"),
    ("save_model reserved", lambda t: G.save_model(tiny_gpt(), t / "m", card={"config": {}}), ValueError,
     r"card must not set \['config'\]"),
    ("save_model None", lambda t: G.save_model(tiny_gpt(), None), TypeError, r"\bpath\b.*None"),
    ("save_model unmerged", lambda t: G.save_model(adapted_gpt(), t / "m"), ValueError, r"unmerged LoRA layers.*save_adapter"),
    ("load_model deep", lambda t: (text_file(t, "{}", "m.safetensors"), text_file(t, "[" * 100000 + "]" * 100000, "m.json"),
                                   G.load_model(t / "m")), ValueError, r"m.json is not a readable model card"),
    ("ft fp16", lambda t: train.finetune((lambda m: (L.apply_lora(m, G.LORA_TARGETS, r=1), m)[1])(tiny_gpt().half()),
                                         "a" * 400, "b" * 400, 1, block_size=8), ValueError,
     r"trainable parameter .*\.M is torch.float16.*model.float\(\)"),
    # ---- found by the third probe ----------------------------------------------------------------------------
    ("meta merge", lambda t: L.merge(meta_gpt(lora=True)), ValueError, r"merging needs the model's values.*'meta' device"),
    ("meta save_adapter", lambda t: L.save_adapter(meta_gpt(lora=True), t / "a"), ValueError,
     r"save_adapter needs the model's values"),
    ("meta deltas", lambda t: L.weight_deltas(tiny_gpt(), meta_gpt(), "c_attn"), ValueError,
     r"weight_deltas needs the model's values"),
    ("meta finetune", lambda t: train.finetune(meta_gpt(lora=True), "a" * 400, "b" * 400, 1, block_size=8), ValueError,
     r"finetune needs the model's values"),
    ("meta evaluate", lambda t: train.evaluate(meta_gpt(), "a" * 400, 8), ValueError, r"evaluate needs the model's values"),
    ("meta generate", lambda t: meta_gpt().generate("a", 3), ValueError, r"generate needs the model's values"),
    ("meta save_model", lambda t: G.save_model(meta_gpt(), t / "m"), ValueError, r"save_model needs the model's values"),
    ("meta load_adapter", lambda t: L.load_adapter(meta_gpt(), t), ValueError, r"load_adapter needs the model's values"),
    ("save_model .", lambda t: G.save_model(tiny_gpt(), "."), ValueError, r"'\.' names a folder: give the files' name"),
    ("save_model /", lambda t: G.save_model(tiny_gpt(), "/"), ValueError, r"'/' names a folder"),
    ("save_model ..", lambda t: G.save_model(tiny_gpt(), t / "x" / ".."), ValueError, r"names a folder"),
    ("save_model dir/", lambda t: G.save_model(tiny_gpt(), f"{t}/new/"), ValueError, r"new/' names a folder"),
    ("save_model a folder", lambda t: G.save_model(tiny_gpt(), t), ValueError, r"names a folder.*model'"),
    ("save_model config off", lambda t: G.save_model((lambda m: (setattr(m, "config", G.GPTConfig(
        block_size=16, n_layer=2, n_head=2, n_embd=8)), m)[1])(tiny_gpt()), t / "m"), ValueError,
     r"weights do not match its config .*first difference: transformer.h.1"),
    ("load_model config", lambda t: G.load_model(model_card_edited(t, lambda c: c["config"].update(n_head=3))),
     ValueError, r"m.json: its config is not a valid GPTConfig \(n_embd = 8 must be a multiple of n_head = 3\)"),
    ("load_model config type", lambda t: G.load_model(model_card_edited(t, lambda c: c["config"].update(bias="no"))),
     ValueError, r"m.json: its config is not a valid GPTConfig \(bias must be True or False"),
    ("load_model format long", lambda t: G.load_model(model_card_edited(t, lambda c: c.update(format="x" * 5000))),
     ValueError, r"not a lora_edu GPT card \(format 'x{79}\)$"),
    ("card format long", lambda t: L.load_adapter(Tiny(), card_edited(t, "format", "y" * 5000)), ValueError,
     r"not a lora_edu adapter card \(format 'y{79}\)$"),
    ("ft keep_best 1", lambda t: train.finetune(adapted_gpt(), "a" * 400, "b" * 400, 1, block_size=8, keep_best=1),
     TypeError, r"keep_best must be True or False; got 1"),
    ("ft progress str", lambda t: train.finetune(adapted_gpt(), "a" * 400, "b" * 400, 1, block_size=8, progress="no"),
     TypeError, r"progress must be True or False; got 'no'"),
    ("grade a text file", lambda t: course.grade([text_file(t, "my essay")]), ValueError,
     r"t.txt is not a notebook: submissions are .ipynb files"),
]


def test_sparse_tensors_are_matrices_too():
    A = torch.tensor([[1.0, 2.0, 0.0], [2.0, 4.0, 0.0], [0.0, 0.0, 3.0]])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")                                    # torch: "CSR support is in beta"
        csr = A.to_sparse_csr()
    for sparse in (A.to_sparse(), csr):
        assert rank.matrix_rank(sparse) == rank.rank_by_elimination(sparse) == 2
        assert np.allclose(rank.singular_values(sparse), rank.singular_values(A))
        M, N = svd.low_rank_approx(sparse, 2)
        assert np.allclose(M @ N, A.numpy())


def meta_gpt(lora=False):
    """A GPT with shapes and no values (built on the 'meta' device), with LoRA on its attention if `lora`."""
    with torch.device("meta"):
        model = G.GPT(G.GPTConfig(block_size=16, n_layer=1, n_head=2, n_embd=8))
    if lora:
        L.apply_lora(model, "c_attn", r=1)
    return model


def model_card_edited(tmp, edit):
    """A saved tiny GPT (tmp/m) whose card was changed by edit(card) by hand."""
    G.save_model(tiny_gpt(), tmp / "m")
    card = json.loads((tmp / "m.json").read_text())
    edit(card)
    (tmp / "m.json").write_text(json.dumps(card))
    return tmp / "m"


def adapted_gpt():
    model = tiny_gpt()
    L.apply_lora(model, G.LORA_TARGETS, r=1)
    return model


def frozen_gpt():
    model = tiny_gpt()
    model.requires_grad_(False)
    return model


def stored_sweep():
    from importlib import resources
    return json.loads((resources.files("lora_edu") / "results" / "rank_sweep.json").read_text())


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_bad_input_gets_a_clear_error(case, tmp_path):
    _, call, exc, message = case
    with pytest.raises(exc, match=message):
        call(tmp_path)


# (id, make the model, the call on (model, tmp_path), exception, regex): the model must come out unchanged
MODEL_CASES = [
    ("targets None", Tiny, lambda m, t: L.apply_lora(m, None, 2), TypeError, r"\btargets\b.*None"),
    ("targets []", Tiny, lambda m, t: L.apply_lora(m, [], 2), TypeError, r"\btargets\b must be.*got \[\]"),
    ("targets int", Tiny, lambda m, t: L.apply_lora(m, 3, 2), TypeError, r"\btargets\b must be.*got 3"),
    ("targets unknown", Tiny, lambda m, t: L.apply_lora(m, "q_proj", 2), ValueError, r"q_proj"),
    ("targets one unknown", Tiny, lambda m, t: L.apply_lora(m, ["c_attn", "q_proj"], 2), ValueError,
     r"targets 'q_proj' match no nn.Linear"),
    ("targets not Linear", Tiny, lambda m, t: L.apply_lora(m, ["c_attn", "ln"], 2), ValueError,
     r"'ln' \(a LayerNorm, not an nn.Linear\)"),
    ("targets only non-Linear", Tiny, lambda m, t: L.apply_lora(m, "ln", 2), ValueError, r"no nn.Linear module matches"),
    ("r 0", Tiny, lambda m, t: L.apply_lora(m, "c_attn", 0), ValueError, r"\br = 0\b"),
    ("r too big", Tiny, lambda m, t: L.apply_lora(m, "c_proj", 9), ValueError, r"\br = 9\b"),
    ("r str", Tiny, lambda m, t: L.apply_lora(m, "c_attn", "2"), ValueError, r"\br\b must be an integer"),
    ("alpha", Tiny, lambda m, t: L.apply_lora(m, "c_attn", 2, alpha=-1), ValueError, r"\balpha\b"),
    ("dropout", Tiny, lambda m, t: L.apply_lora(m, "c_attn", 2, dropout=1.0), ValueError, r"\bdropout\b"),
    ("init", Tiny, lambda m, t: L.apply_lora(m, "c_attn", 2, init="pissa"), ValueError, r"\binit\b.*pissa"),
    ("rslora", Tiny, lambda m, t: L.apply_lora(m, "c_attn", 2, rslora=1), TypeError, r"\brslora\b"),
    ("model None", lambda: None, lambda m, t: L.apply_lora(m, "c_attn", 2), TypeError, r"\bmodel\b"),
    ("tied lm_head", tiny_gpt, lambda m, t: L.apply_lora(m, ["c_attn", "lm_head"], 1), ValueError, r"lm_head.weight is tied"),
    ("tied catch-all", tiny_gpt, lambda m, t: L.apply_lora(m, ".*", 1), ValueError, r"lm_head"),
    ("again other r", adapted, lambda m, t: L.apply_lora(m, "c_proj", 3), ValueError, r"must match"),
    ("again same", adapted, lambda m, t: L.apply_lora(m, "c_attn", 2), ValueError, r"already"),
    ("merge plain", Tiny, lambda m, t: L.merge(m), ValueError, r"no LoRA"),
    ("merge twice", merged, lambda m, t: L.merge(m), ValueError, r"already merged"),
    ("merge half merged", lambda: (lambda m: (L.lora_layers(m)["h.1.c_attn"].merge(), m)[1])(adapted()),
     lambda m, t: L.merge(m), ValueError, r"h.1.c_attn: this LoRA layer is already merged.*no layer was merged"),
    ("merge one disabled", lambda: (lambda m: (setattr(L.lora_layers(m)["h.1.c_attn"], "enabled", False), m)[1])(adapted()),
     lambda m, t: L.merge(m), ValueError, r"h.1.c_attn: this LoRA layer is disabled"),
    ("unmerge half merged", lambda: (lambda m: (L.lora_layers(m)["h.1.c_attn"].merge(), m)[1])(adapted()),
     lambda m, t: L.unmerge(m), ValueError, r"h.0.c_attn: this LoRA layer is not merged.*no layer was unmerged"),
    ("unmerge one changed", lambda: (lambda m: (torch.nn.init.normal_(L.lora_layers(m)["h.1.c_attn"].N), m)[1])(merged()),
     lambda m, t: L.unmerge(m), ValueError, r"h.1.c_attn: M, N or the scaling changed"),
    ("merge overflow", lambda: (lambda m: (torch.nn.init.constant_(L.lora_layers(m)["h.0.c_attn"].M, 300.0),
                                         torch.nn.init.constant_(L.lora_layers(m)["h.0.c_attn"].N, 300.0), m)[-1])(
        (lambda m: (L.apply_lora(m, "c_attn", r=2), m)[1])(Tiny().half())),
     lambda m, t: L.merge(m), ValueError, r"h.0.c_attn: W \+ ΔW is not finite in torch.float16"),
    ("merge overflow fp32", lambda: (lambda m: (torch.nn.init.constant_(L.lora_layers(m)["h.1.c_attn"].N, 1e30),
                                              torch.nn.init.constant_(L.lora_layers(m)["h.1.c_attn"].M, 1e30), m)[-1])(
        adapted()), lambda m, t: L.merge(m), ValueError, r"h.1.c_attn: W \+ ΔW is not finite in torch.float32"),
    ("unmerge plain", Tiny, lambda m, t: L.unmerge(m), ValueError, r"no LoRA"),
    ("unmerge unmerged", adapted, lambda m, t: L.unmerge(m), ValueError, r"not merged"),
    ("save plain", Tiny, lambda m, t: L.save_adapter(m, t / "a"), ValueError, r"no LoRA"),
    ("save merged", merged, lambda m, t: L.save_adapter(m, t / "a"), ValueError, r"unmerge"),
    ("save to file", adapted, lambda m, t: L.save_adapter(m, text_file(t, "x")), ValueError, r"t.txt is a file"),
    ("save path None", adapted, lambda m, t: L.save_adapter(m, None), TypeError, r"\bpath\b"),
    ("load missing", Tiny, lambda m, t: L.load_adapter(m, t / "none"), FileNotFoundError, r"adapter.json is missing"),
    ("load path None", Tiny, lambda m, t: L.load_adapter(m, None), TypeError, r"\bpath\b"),
    ("load wider", lambda: Tiny(d=12), lambda m, t: L.load_adapter(m, saved(t)), ValueError, r"Linear\(12, 36\)"),
    ("load other rank", lambda: (lambda m: (L.apply_lora(m, "c_attn", 3), m)[1])(Tiny()),
     lambda m, t: L.load_adapter(m, saved(t)), ValueError, r"rank 3; the adapter has rank 2"),
    ("load merged", merged, lambda m, t: L.load_adapter(m, saved(t)), ValueError, r"merged"),
    ("load into other model", lambda: nn.Sequential(nn.Linear(8, 8)), lambda m, t: L.load_adapter(m, saved(t)),
     ValueError, r"'h.0.c_attn' is not an nn.Linear"),
    ("load bad card", Tiny, lambda m, t: (text_file(t, "{", "adapter.json"), L.load_adapter(m, t)), ValueError,
     r"adapter.json is not a readable adapter card"),
    ("finetune frozen", frozen_gpt, lambda m, t: train.finetune(m, "a" * 400, "b" * 400, 1, block_size=8),
     ValueError, r"no trainable"),
    ("finetune lr", adapted_gpt, lambda m, t: train.finetune(m, "a" * 400, "b" * 400, 1, lr=-1, block_size=8),
     ValueError, r"\blr\b"),
    ("apply to a bare Linear", lambda: nn.Linear(4, 4), lambda m, t: L.apply_lora(m, "weight", 1), ValueError,
     r"the model itself is an nn.Linear.*LoRALinear\(layer, r\)"),
    ("load into fp16", lambda: tiny_gpt().half(), lambda m, t: L.load_adapter(m, large_adapter(t)), ValueError,
     r"c_attn.M holds values up to 1e\+05, which torch.float16 cannot hold"),
    ("load into fp16 LoRA", lambda: (lambda m: (L.apply_lora(m, "c_attn", r=1), m)[1])(tiny_gpt().half()),
     lambda m, t: L.load_adapter(m, large_adapter(t)), ValueError, r"which torch.float16 cannot hold"),
    ("finetune checkpoint", adapted_gpt, lambda m, t: train.finetune(m, "a" * 400, "b" * 400, 1, block_size=8,
                                                                     checkpoint=text_file(t, "x")), ValueError, r"file"),
]


def large_adapter(tmp):
    """A float32 adapter for tiny_gpt's c_attn whose M holds 1e5: fine in fp32, inf in fp16."""
    model = tiny_gpt()
    L.apply_lora(model, "c_attn", r=1)
    with torch.no_grad():
        L.lora_layers(model)["transformer.h.0.attn.c_attn"].M.fill_(1e5)
    return L.save_adapter(model, tmp / "large")


@pytest.mark.parametrize("case", MODEL_CASES, ids=[c[0] for c in MODEL_CASES])
def test_a_refused_edit_leaves_the_model_as_it_was(case, tmp_path):
    _, make, call, exc, message = case
    model = make()
    snap = _snapshot(model) if model is not None else None
    with pytest.raises(exc, match=message):
        call(model, tmp_path)
    if model is not None:
        _unchanged(model, snap)


def test_a_broken_submission_is_a_gradebook_row_not_an_exception(tmp_path):
    for name, content in (("none.ipynb", None), ("a.ipynb", "{")):
        if content is not None:
            text_file(tmp_path, content, name)
        row = course.grade_notebook(tmp_path / name)
        assert row["score"] == 0 and row["error"]


def test_relative_error_mixes_dtypes_at_any_scale():
    for scale in (1e-300, 1e-50, 1.0, 1e50, 1e300):
        A = np.eye(3) * scale
        assert svd.relative_error(A, np.eye(3, dtype=np.float32), A) == 0.0


def test_a_folder_that_cannot_be_written_is_named_not_the_hidden_temporary_file(tmp_path, monkeypatch):
    import errno
    import tempfile

    def refused(*a, **k):
        raise PermissionError(errno.EACCES, "Permission denied", str(tmp_path / ".adapter.json.abc.tmp"))
    monkeypatch.setattr(tempfile, "mkstemp", refused)
    with pytest.raises(PermissionError) as e:
        L.save_adapter(adapted(), tmp_path / "ad")
    assert "cannot write" in str(e.value) and ".tmp" not in str(e.value) and "adapter." in str(e.value)
    assert "Permission denied" in str(e.value)


def test_factors_stay_finite_where_the_product_does(tmp_path):
    """σ₁ of a 3×3 matrix of 1.7e308 is above the largest float; M = U Σ would overflow, M N does not."""
    for A in (np.full((3, 3), 1.7e308), np.full((3, 3), 3e38, dtype=np.float32)):
        for M, N in (svd.low_rank_approx(A, 1), svd.SVDFactorizer(A).factors(1)):
            assert np.isfinite(M).all() and np.isfinite(N).all()
            assert np.abs(M @ N - A).max() <= 4 * np.finfo(A.dtype).eps * np.abs(A).max()
    M, N = svd.low_rank_approx(np.full((3, 3), 1e300), 1)                  # elsewhere the course's M = U Σ, N = Vᵀ
    assert np.allclose(np.linalg.norm(N, axis=1), 1.0)


def test_the_suite_is_as_large_as_the_issue_asks():
    assert len(CASES) + len(MODEL_CASES) >= 150


# ---- fuzzing: whatever array comes in, only the documented exceptions come out ----------------------------------

ARRAYS = st.one_of(
    hnp.arrays(st.sampled_from([np.float64, np.float32, np.int64, np.int8, np.bool_, np.complex128, np.uint8]),
               hnp.array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=6)),
    hnp.arrays(np.float64, hnp.array_shapes(min_dims=2, max_dims=2, min_side=1, max_side=6),
               elements=st.floats(allow_nan=True, allow_infinity=True, width=64)),
    st.lists(st.lists(st.one_of(st.integers(-10, 10), st.floats(), st.text(max_size=2), st.none()), max_size=4),
             max_size=4),
    st.none(), st.text(max_size=3), st.integers(), st.floats())

FUNCTIONS = {
    "singular_values": rank.singular_values, "matrix_rank": rank.matrix_rank, "is_full_rank": rank.is_full_rank,
    "default_tol": rank.default_tol, "effective_rank": rank.effective_rank,
    "energy_share": lambda A: rank.energy_share(A, 1), "rank_by_elimination": rank.rank_by_elimination,
    "spectrum_summary": lambda A: rank.spectrum_summary(A, k=1), "rank_factorize": svd.rank_factorize,
    "low_rank_approx": lambda A: svd.low_rank_approx(A, 1), "SVDFactorizer": lambda A: svd.SVDFactorizer(A).error(1),
    "relative_error": lambda A: svd.relative_error(A, A, np.eye(np.shape(A)[1]) if np.ndim(A) == 2 else A),
    "subspace_similarity": lambda A: L.subspace_similarity(A, A), "similarity_grid": lambda A: L.similarity_grid(A, A),
    "plots.singular_values": lambda A: plots.singular_values(A),
}


@pytest.mark.parametrize("name", sorted(FUNCTIONS))
def test_array_functions_raise_only_documented_errors(name):
    import matplotlib.pyplot as plt
    fn = FUNCTIONS[name]

    @given(ARRAYS)
    @settings(max_examples=60, deadline=None)
    def run(A):
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("error", np.exceptions.ComplexWarning)   # a dropped imaginary part fails
                out = fn(A)
        except (ValueError, TypeError) as e:
            assert str(e), "an error must say what is wrong"
        else:
            for x in np.ravel(np.asarray(out if not isinstance(out, tuple) else out[0], dtype=object)):
                if isinstance(x, (float, np.floating)):
                    assert not math.isnan(x), f"{name} returned NaN for {A!r}"
        finally:
            plt.close("all")
    run()
