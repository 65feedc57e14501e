"""The small GPT, its tokenizer, the shipped checkpoint and the text corpora."""
import json
import os
import re
import sys

import pytest
import torch
import torch.nn as nn
from hypothesis import given, settings
from hypothesis import strategies as st

from lora_edu import data
from lora_edu.gpt import (GPT, GPTConfig, LORA_TARGETS, decode, encode, load_model, load_pretrained, pick_device,
                          save_model)
from lora_edu.lora import apply_lora
from lora_edu.train import evaluate

TINY = GPTConfig(block_size=32, n_layer=2, n_head=2, n_embd=32)


def tiny(seed=0):
    torch.manual_seed(seed)
    return GPT(TINY).eval()


@given(st.text(max_size=200))
@settings(max_examples=60, deadline=None)
def test_tokenizer_round_trips_any_text(text):
    ids = encode(text)
    assert ids.dtype == torch.long and ids.shape == (len(text.encode("utf-8")),)
    assert decode(ids) == text


@given(st.binary(max_size=100))
@settings(max_examples=60, deadline=None)
def test_decode_accepts_any_bytes(raw):
    out = decode(list(raw))
    assert out == raw.decode("utf-8", errors="replace")


def test_tokenizer_rejects_bad_input():
    with pytest.raises(TypeError, match="str"):
        encode(b"bytes")
    with pytest.raises(ValueError, match=r"ids holds token ids from 72 to 300; expected ids in \[0, vocab_size = 256\)"):
        decode([72, 300])


def test_gpt2_layout_and_names():
    m = tiny()
    names = dict(m.named_modules())
    for n in ["transformer.wte", "transformer.wpe", "transformer.h.0.ln_1", "transformer.h.0.attn.c_attn",
              "transformer.h.0.attn.c_proj", "transformer.h.0.ln_2", "transformer.h.0.mlp.c_fc",
              "transformer.h.1.mlp.c_proj", "transformer.ln_f", "lm_head"]:
        assert n in names, n
    assert isinstance(names["transformer.h.0.attn.c_attn"], nn.Linear)
    assert names["transformer.h.0.attn.c_attn"].weight.shape == (3 * 32, 32)
    assert m.lm_head.weight is m.transformer.wte.weight                   # tied
    wrapped = apply_lora(m, LORA_TARGETS, r=2)
    assert len(wrapped) == 4 * TINY.n_layer and "lm_head" not in wrapped


def test_shapes_and_loss():
    m = tiny()
    x = torch.randint(0, 256, (3, 20))
    assert m(x).shape == (3, 20, 256)
    logits, loss = m(x, torch.randint(0, 256, (3, 20)))                 # at init: about a uniform guess
    assert loss.shape == () and loss.item() == pytest.approx(torch.log(torch.tensor(256.0)).item(), abs=0.1)


@given(st.integers(1, 31), st.integers(0, 10_000))
@settings(max_examples=25, deadline=None)
def test_causality(t, seed):
    """Changing tokens at positions ≥ t never changes the logits at positions < t."""
    m = tiny()
    g = torch.Generator().manual_seed(seed)
    x = torch.randint(0, 256, (2, 32), generator=g)
    y = x.clone()
    y[:, t:] = torch.randint(0, 256, (2, 32 - t), generator=g)
    assert torch.equal(m(x)[:, :t], m(y)[:, :t])


def test_forward_rejects_bad_input():
    m = tiny()
    with pytest.raises(ValueError, match="long"):
        m(torch.zeros(2, 5))
    with pytest.raises(ValueError, match="batch, time"):
        m(torch.zeros(5, dtype=torch.long))
    with pytest.raises(ValueError, match="exceeds the context of 32"):
        m(torch.zeros(1, 33, dtype=torch.long))
    with pytest.raises(ValueError, match="multiple of n_head"):
        GPTConfig(n_embd=30, n_head=4)
    with pytest.raises(TypeError, match="GPTConfig"):
        GPT({"n_layer": 2})


def test_generate_is_seeded_and_keeps_the_prompt():
    m = tiny()
    a, b = m.generate("def f(x):", 20, seed=3), m.generate("def f(x):", 20, seed=3)
    assert a == b and a.startswith("def f(x):") and len(a.encode("utf-8", "replace")) >= len("def f(x):")
    assert m.generate("ab", 40, seed=1) != m.generate("ab", 40, seed=2)
    greedy = m.generate("ab", 10, temperature=0, seed=None)
    assert greedy == m.generate("ab", 10, temperature=0, seed=5)
    assert len(encode(m.generate("", 50, top_k=1))) <= 50 * 3
    assert m.generate("x", 0) == "x"
    assert m.generate("a" * 100, 5, seed=0).startswith("a" * 100)          # longer than the context: cropped
    for bad, err in [(dict(max_new_tokens=-1), ValueError), (dict(temperature=-1.0), ValueError),
                     (dict(top_k=0), ValueError), (dict(top_k=257), ValueError)]:
        with pytest.raises(err):
            m.generate("x", **({"max_new_tokens": 5} | bad))
    with pytest.raises(TypeError, match="prompt"):
        m.generate(123)


def test_save_and_load_round_trip(tmp_path):
    m = tiny()
    path = save_model(m, tmp_path / "model", {"note": "test"})
    assert path.name == "model.safetensors" and (tmp_path / "model.json").is_file()
    back, card = load_model(tmp_path / "model")
    assert card["note"] == "test" and card["config"]["n_layer"] == 2
    assert back.lm_head.weight is back.transformer.wte.weight
    for k, v in m.state_dict().items():                                 # stored in bf16: equal after rounding
        assert torch.equal(back.state_dict()[k], v.to(torch.bfloat16).float()), k
    (tmp_path / "bad.json").write_text(json.dumps({"format": "other"}))
    (tmp_path / "bad.safetensors").write_bytes(path.read_bytes())
    with pytest.raises(ValueError, match="not a lora_edu GPT card"):
        load_model(tmp_path / "bad")
    with pytest.raises(FileNotFoundError, match="save_model writes"):
        load_model(tmp_path / "missing")
    with pytest.raises(TypeError):
        save_model(nn.Linear(2, 2), tmp_path / "x")


def test_model_files_keep_their_whole_name_and_their_card_describes_them(tmp_path):
    a, b = tiny(), tiny()
    with torch.no_grad():
        b.transformer.wte.weight.add_(1.0)
    assert save_model(a, tmp_path / "run.v1").name == "run.v1.safetensors"
    assert save_model(b, tmp_path / "run.v2.safetensors").name == "run.v2.safetensors"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run.v1.json", "run.v1.safetensors", "run.v2.json",
                                                          "run.v2.safetensors"]
    one, _ = load_model(tmp_path / "run.v1.json")
    assert torch.equal(one.transformer.wte.weight, a.transformer.wte.weight.to(torch.bfloat16).float())
    (tmp_path / "run.v1.safetensors").write_bytes((tmp_path / "run.v2.safetensors").read_bytes())
    with pytest.raises(ValueError, match="run.v1.safetensors is not the file its card run.v1.json describes"):
        load_model(tmp_path / "run.v1")
    card = json.loads((tmp_path / "run.v1.json").read_text())
    del card["sha256"]
    card["config"]["n_embd"] *= 2
    (tmp_path / "run.v1.json").write_text(json.dumps(card))
    with pytest.raises(ValueError, match="does not hold the model its card run.v1.json describes"):
        load_model(tmp_path / "run.v1")
    for text in ("", "[1]", '{"format": "lora_edu.gpt/1"}'):
        (tmp_path / "run.v1.json").write_text(text)
        with pytest.raises(ValueError, match=r"run.v1.json is not a (readable model|lora_edu GPT) card"):
            load_model(tmp_path / "run.v1")
    with pytest.raises(TypeError, match="card must be a dict"):
        save_model(a, tmp_path / "c", card=[1])


def test_pick_device():
    assert pick_device("auto").type in ("cuda", "mps", "cpu")
    assert pick_device("cpu") == torch.device("cpu")
    with pytest.raises(ValueError, match="unknown device"):
        pick_device("tpu9")
    with pytest.raises(TypeError):
        pick_device(3)
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="no CUDA"):
            pick_device("cuda")


# ---- the shipped checkpoint -----------------------------------------------------------------------------------

def test_shipped_checkpoint_is_small_and_reproduces_its_card():
    model = load_pretrained()
    card = model.card
    weights = os.path.join(os.path.dirname(data.__file__), "checkpoints", "gpt_docs.safetensors")
    assert os.path.getsize(weights) <= 8_000_000
    assert 3_000_000 <= model.num_params() <= 3_500_000
    for key in ("config", "corpus", "steps", "tokens_seen", "train_loss", "val_loss", "hardware", "lora_edu",
                "command", "seconds"):
        assert key in card, key
    val = evaluate(model, data.corpus("docs").val)
    assert val == pytest.approx(card["val_loss"], abs=0.03)          # the text pydoc renders varies a little
    assert val < 1.6                                                  # far below 5.5 nats/byte of a uniform guess


def test_shipped_model_writes_python_documentation():
    text = load_pretrained().generate("Return the ", 300, seed=0)
    words = re.findall(r"[a-z]+", text.lower())
    common = {"the", "of", "a", "is", "to", "and", "return", "if", "in", "object", "for", "be", "an", "or"}
    assert len(words) > 30 and sum(w in common for w in words) / len(words) > 0.2


# ---- corpora --------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["code", "calendar"])
def test_corpora_are_deterministic_and_split_by_document(name):
    data.corpus.cache_clear()
    a = data.corpus(name)
    data.corpus.cache_clear()
    b = data.corpus(name)
    assert a == b and len(a.train) > 500_000 and 0.05 < len(a.val) / len(a.train) < 0.3
    assert a.train[:2000] not in a.val


def test_calendar_months_are_right():
    text = data.corpus("calendar").train
    assert "    January 1800\nMo Tu We Th Fr Sa Su\n       1  2  3  4  5" in text      # 1 Jan 1800: a Wednesday
    assert "   February 2000\nMo Tu We Th Fr Sa Su\n    1  2  3  4  5  6" in text     # 2000 is a leap year ...
    assert "28 29\n" in text.split("February 2000")[1][:200]


def test_docs_corpus_holds_no_machine_details():
    docs = data.corpus("docs")
    assert len(docs.train) > 2_000_000 and "Built-in Functions" not in docs.val[:0]
    text = docs.train + docs.val
    for leak in (os.path.expanduser("~"), os.getcwd(), sys.executable):
        assert leak not in text, leak
    assert not re.search(r" at 0x[0-9a-fA-F]{6,}", text)                 # no memory addresses
    for k, v in list(os.environ.items())[:50]:
        if len(v) > 12:
            assert v not in text, k


def test_unknown_corpus_and_own_text(tmp_path):
    with pytest.raises(ValueError, match="load_text"):
        data.corpus("poems")
    f = tmp_path / "mine.txt"
    f.write_text("".join(f"line {i} of my own text\n" for i in range(200)))
    c = data.load_text(f)
    assert c.name == "mine" and c.train + c.val == f.read_text() and c.val.startswith("line 180")
    f.write_text("too short\n")
    with pytest.raises(ValueError, match="at least 1000 characters"):
        data.load_text(f)
    f.write_bytes(b"\xff\xfe" * 1000)
    with pytest.raises(ValueError, match="not UTF-8"):
        data.load_text(f)
    with pytest.raises(FileNotFoundError):
        data.load_text(tmp_path / "nope.txt")
    with pytest.raises(ValueError, match="val_fraction"):
        data.load_text(tmp_path / "mine.txt", val_fraction=0.9)


def test_get_batch_targets_are_the_next_bytes():
    tokens = data.as_tokens("abcdefghijklmnopqrstuvwxyz" * 4)
    x, y = data.get_batch(tokens, 5, 8, torch.Generator().manual_seed(0))
    assert x.shape == y.shape == (5, 8) and x.dtype == torch.long
    assert torch.equal(x[:, 1:], y[:, :-1]) and torch.equal((x - ord("a") + 1) % 26, (y - ord("a")) % 26)
    with pytest.raises(ValueError, match="needs at least 9"):
        data.get_batch(data.as_tokens("short"), 2, 8)
    with pytest.raises(TypeError, match="text"):
        data.as_tokens([1, 2, 3])


def test_a_merged_lora_model_saves_as_a_plain_gpt(tmp_path):
    """save_model of a merged model stores W + ΔW under the plain names: load_model gives the same logits."""
    from lora_edu.lora import apply_lora, lora_layers, merge
    torch.manual_seed(0)
    model = GPT(GPTConfig(block_size=8, n_layer=1, n_head=2, n_embd=8))
    apply_lora(model, LORA_TARGETS, r=1)
    for layer in lora_layers(model).values():
        nn.init.normal_(layer.N)
    model.eval()
    x = torch.randint(0, 256, (2, 8))
    want = model(x)[0]
    merge(model)
    save_model(model, tmp_path / "merged", dtype=torch.float32)
    loaded, _ = load_model(tmp_path / "merged")
    assert not lora_layers(loaded)
    assert torch.allclose(loaded.eval()(x)[0], want, atol=1e-5)


def test_save_model_is_one_unit(tmp_path, monkeypatch):
    """If the card cannot be written, the previous model still loads (its weights used to be replaced already)."""
    from lora_edu import _io
    torch.manual_seed(0)
    first = GPT(GPTConfig(block_size=8, n_layer=1, n_head=2, n_embd=8))
    save_model(first, tmp_path / "run")
    real = _io.write_atomic

    def failing(path, write):
        if str(path).endswith(".json"):
            raise OSError(28, "No space left on device")
        real(path, write)
    monkeypatch.setattr(_io, "write_atomic", failing)
    with pytest.raises(OSError, match="No space left"):
        save_model(GPT(GPTConfig(block_size=8, n_layer=1, n_head=2, n_embd=8)), tmp_path / "run")
    with pytest.raises(OSError):
        save_model(first, tmp_path / "new")
    monkeypatch.undo()
    loaded, _ = load_model(tmp_path / "run")
    assert torch.equal(loaded.transformer.wte.weight, first.transformer.wte.weight.to(torch.bfloat16).float())
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run.json", "run.safetensors"]   # no backup, no "new"


def test_save_model_refuses_values_its_dtype_cannot_hold(tmp_path):
    model = GPT(GPTConfig(block_size=8, n_layer=1, n_head=2, n_embd=8))
    with torch.no_grad():
        model.transformer.h[0].mlp.c_fc.weight[0, 0] = 1e6
    with pytest.raises(ValueError, match=r"transformer.h.0.mlp.c_fc.weight holds values that torch.float16 cannot store"):
        save_model(model, tmp_path / "m", dtype=torch.float16)
    assert not list(tmp_path.iterdir())
    save_model(model, tmp_path / "m")                                            # bf16 holds 1e6
