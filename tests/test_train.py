"""The training loop: it learns, keeps the base frozen, is reproducible, and stops cleanly on NaN."""
import math
import platform

import numpy as np
import pytest
import torch

from lora_edu import data
from lora_edu.gpt import GPT, GPTConfig, LORA_TARGETS, load_pretrained
from lora_edu.lora import apply_lora, load_adapter, lora_layers, merge
from lora_edu.train import History, TrainingDiverged, _lr_at, evaluate, finetune, rank_sweep

TINY = GPTConfig(block_size=32, n_layer=2, n_head=2, n_embd=32)
TEXT = "".join(f"{i} squared is {i * i}.\n" for i in range(400))
KW = dict(batch_size=4, block_size=32, progress=False)


def tiny(seed=0):
    torch.manual_seed(seed)
    return GPT(TINY)


def test_full_training_learns_a_pattern():
    m = tiny()
    before = evaluate(m, TEXT, block_size=32)
    hist = finetune(m, TEXT, TEXT, steps=60, lr=3e-3, eval_every=20, **KW)
    assert [r["step"] for r in hist.rows] == [20, 40, 60] and len(hist.step_loss) == 60
    assert hist.final["val_loss"] < before - 1.0 and hist.start_val_loss == pytest.approx(before)
    assert hist.trainable == m.num_params() and hist.state_bytes == 16 * m.num_params()
    assert all(r["tokens_per_s"] > 0 and r["peak_memory"] is None for r in hist.rows)
    per_step = KW["batch_size"] * KW["block_size"]
    assert hist.column("tokens") == [20 * per_step, 40 * per_step, 60 * per_step]
    assert hist.tokens_per_s == pytest.approx(60 * per_step / hist.final["wall_time"])    # the whole run's speed
    assert f"{hist.tokens_per_s:,.0f} tokens/s" in repr(hist)
    assert hist.column("val_loss")[-1] == hist.final["val_loss"] and "steps on cpu" in repr(hist)
    with pytest.raises(KeyError, match="columns are"):
        hist.column("accuracy")


def test_short_lora_finetune_of_the_shipped_model_lowers_task_val_loss():
    model = load_pretrained()
    base = {k: v.clone() for k, v in model.state_dict().items()}
    task = data.corpus("calendar")
    apply_lora(model, LORA_TARGETS, r=4)
    before = evaluate(model, task.val, block_size=64, windows=16)
    hist = finetune(model, task.train, task.val, steps=25, lr=3e-3, batch_size=8, block_size=64, progress=False,
                    eval_windows=16)
    assert hist.final["val_loss"] < before - 0.3
    assert not model.training                                         # back in eval mode, as it came in
    assert hist.trainable == sum(l.M.numel() + l.N.numel() for l in lora_layers(model).values())
    state = model.state_dict()
    for k, v in base.items():                                         # every base weight bit-identical
        key = k if k in state else k.replace(".weight", ".base.weight").replace(".bias", ".base.bias")
        assert torch.equal(state[key], v), k


def test_seeded_runs_are_bit_identical_on_cpu():
    runs = []
    for _ in range(2):
        m = tiny(1)
        apply_lora(m, LORA_TARGETS, r=2, dropout=0.1)
        h = finetune(m, TEXT, TEXT, steps=8, lr=1e-2, seed=7, **KW)
        runs.append((h.step_loss, [p.detach().clone() for p in m.parameters()]))
    assert runs[0][0] == runs[1][0]
    assert all(torch.equal(a, b) for a, b in zip(runs[0][1], runs[1][1]))
    m = tiny(1)
    apply_lora(m, LORA_TARGETS, r=2, dropout=0.1)
    assert finetune(m, TEXT, TEXT, steps=8, lr=1e-2, seed=8, **KW).step_loss != runs[0][0]


def test_nan_guard_stops_and_keeps_the_last_good_weights():
    m = tiny()
    apply_lora(m, LORA_TARGETS, r=2)
    seen = []                                       # the weights at each forward pass

    def poison(module, args, out):                  # the 4th training forward pass produces NaN logits
        if not module.training:                     # (evaluation passes do not count)
            return out
        seen.append({k: v.detach().clone() for k, v in m.named_parameters()})
        return out * float("nan") if len(seen) == 4 else out

    m.lm_head.register_forward_hook(poison)
    with pytest.raises(TrainingDiverged, match="at step 4; the model keeps the weights of step 3") as err:
        finetune(m, TEXT, TEXT, steps=10, lr=1e-2, **KW)
    assert len(err.value.history.step_loss) == 3
    now = dict(m.named_parameters())
    assert all(torch.equal(now[k], v) for k, v in seen[3].items())           # as after step 3, not touched since
    assert any(not torch.equal(seen[3][k], v) for k, v in seen[2].items())   # (and step 3 did change them)
    assert issubclass(TrainingDiverged, FloatingPointError)


def test_gradient_nan_is_caught_before_the_update():
    m = tiny()
    apply_lora(m, LORA_TARGETS, r=2)
    layer = next(iter(lora_layers(m).values()))
    layer.M.register_hook(lambda g: g * float("inf"))
    before = {k: v.detach().clone() for k, v in m.named_parameters()}
    with pytest.raises(TrainingDiverged, match="gradient became"):
        finetune(m, TEXT, TEXT, steps=5, **KW)
    assert all(torch.equal(v, before[k]) for k, v in m.named_parameters())


def test_keep_best_and_checkpoint(tmp_path):
    m = tiny()
    apply_lora(m, LORA_TARGETS, r=2)
    hist = finetune(m, TEXT, TEXT, steps=30, lr=1e-2, eval_every=10, keep_best=True, checkpoint=tmp_path / "ad",
                    **KW)
    assert hist.best_val_loss == min(hist.column("val_loss"))
    assert evaluate(m, TEXT, block_size=32) == pytest.approx(hist.best_val_loss, abs=1e-6)
    fresh = tiny()
    load_adapter(fresh, tmp_path / "ad")                               # the last checkpoint: step 30
    assert set(lora_layers(fresh)) == set(lora_layers(m))


def test_learning_rate_schedule():
    lrs = [_lr_at(s, 100, 1.0, 10, 0.1) for s in range(100)]
    assert lrs[0] == pytest.approx(0.1) and lrs[9] == pytest.approx(1.0)
    assert all(a >= b for a, b in zip(lrs[9:], lrs[10:])) and lrs[-1] == pytest.approx(0.1, abs=1e-3)


def test_weight_decay_skips_lora_factors_unless_asked():
    m = tiny()
    apply_lora(m, LORA_TARGETS, r=2)
    layer = next(iter(lora_layers(m).values()))
    with torch.no_grad():
        layer.N.normal_()
    for p in m.parameters():
        p.requires_grad_(False)
    layer.N.requires_grad_(True)
    m.lm_head.register_forward_hook(lambda mod, a, out: out * 0.0)      # zero gradient: only decay moves N
    n0 = layer.N.detach().clone()
    finetune(m, TEXT, TEXT, steps=3, lr=0.1, weight_decay=0.5, **KW)
    assert torch.equal(layer.N, n0)
    finetune(m, TEXT, TEXT, steps=3, lr=0.1, lora_weight_decay=0.5, **KW)
    assert layer.N.norm() < n0.norm()


def test_bad_arguments():
    m = tiny()
    with pytest.raises(TypeError, match="nn.Module"):
        finetune("model", TEXT, TEXT, steps=1)
    with pytest.raises(ValueError, match="steps"):
        finetune(m, TEXT, TEXT, steps=0, **KW)
    with pytest.raises(ValueError, match="block_size"):
        finetune(m, TEXT, TEXT, steps=1, batch_size=2, block_size=64, progress=False)
    with pytest.raises(ValueError, match="val text has 10 bytes"):
        finetune(m, TEXT, "0123456789", steps=1, **KW)
    with pytest.raises(TypeError, match="text"):
        finetune(m, TEXT, 123, steps=1, **KW)
    with pytest.raises(ValueError, match="lr"):
        finetune(m, TEXT, TEXT, steps=1, lr=-1.0, **KW)
    with pytest.raises(ValueError, match="no LoRA layers"):
        finetune(m, TEXT, TEXT, steps=1, checkpoint="somewhere", **KW)
    for p in m.parameters():
        p.requires_grad_(False)
    with pytest.raises(ValueError, match="no trainable parameters"):
        finetune(m, TEXT, TEXT, steps=1, **KW)
    m = tiny()
    apply_lora(m, LORA_TARGETS, r=2)
    merge(m)
    with pytest.raises(ValueError, match="merged"):
        finetune(m, TEXT, TEXT, steps=1, **KW)
    with pytest.raises(ValueError, match="needs at least"):
        evaluate(m, "short", block_size=32)


def test_evaluate_over_the_whole_text_reads_every_window_once():
    m = tiny()
    tokens = data.as_tokens(TEXT)
    n = (tokens.numel() - 1) // 32
    by_hand = []
    with torch.no_grad():
        for i in range(n):
            x, y = data.window_pairs(tokens, torch.tensor([i * 32]), 32)
            by_hand.append(m(x, y)[1].item())
    assert evaluate(m, TEXT, block_size=32, windows=None, batch_size=7) == pytest.approx(np.mean(by_hand), rel=1e-5)
    assert evaluate(m, TEXT, block_size=32, windows=None) != pytest.approx(evaluate(m, TEXT, block_size=32, windows=4))
    with pytest.raises(ValueError, match="windows must be an integer"):
        evaluate(m, TEXT, block_size=32, windows=2.5)
    with pytest.raises(ValueError, match="windows = 0 is out of range"):
        evaluate(m, TEXT, block_size=32, windows=0)


def test_rank_sweep_on_cpu():
    task = data.Corpus("squares", TEXT * 3, TEXT)
    out = rank_sweep(task, ranks=(1, 4), steps=3, batch_size=2, block_size=32, keep=(1, 4), prompt="1", deltas=True)
    rows = out["rows"]
    assert [r["r"] for r in rows] == [1, 4, "full"]
    assert rows[0]["trainable"] < rows[1]["trainable"] < rows[2]["trainable"]
    assert all(math.isfinite(r["val_loss"]) and r["sample"].startswith("1") for r in rows)
    assert out["factors"][4]["transformer.h.0.mlp.c_fc"].shape == (256, 4)
    assert len(out["deltas"]) == 16 and out["deltas"]["transformer.h.3.mlp.c_proj"].shape == (1024, 256)
    assert all(np.abs(d).max() > 0 for d in out["deltas"].values())            # full fine-tuning moved every W
    alone = rank_sweep(task, ranks=(4,), steps=3, batch_size=2, block_size=32, full_lr=None, keep=(4,), prompt=None)
    whole = rank_sweep(task, ranks=(4,), steps=3, batch_size=2, block_size=32, full_lr=None, prompt=None,
                       eval_windows=None)["rows"][0]["val_loss"]
    m = load_pretrained()
    torch.manual_seed(0)
    apply_lora(m, LORA_TARGETS, r=4)
    finetune(m, task.train, task.val, steps=3, lr=3e-3, batch_size=2, block_size=32, eval_every=3, progress=False)
    assert whole == pytest.approx(evaluate(m, task.val, block_size=32, windows=None))     # scored on all of it
    assert alone["rows"][0]["val_loss"] == rows[1]["val_loss"]                  # a run does not depend on the others
    assert np.array_equal(alone["factors"][4]["transformer.h.0.mlp.c_fc"], out["factors"][4]["transformer.h.0.mlp.c_fc"])
    with pytest.raises(ValueError, match="r = 0"):
        rank_sweep(task, ranks=(0,), steps=1)
    with pytest.raises(TypeError, match="Corpus"):
        rank_sweep("text", ranks=(1,), steps=1)


def test_sweep_script_smoke_run_interrupted_and_resumed(tmp_path, monkeypatch):
    import json

    import lora_edu.sweep as sweep_module
    from lora_edu.sweep import main as sweep
    out = tmp_path / "sweep.json"
    real_losses = sweep_module._losses

    def interrupted(*args, seed=0, **kw):                    # the run stops in its seeds section
        if seed != 0:
            raise KeyboardInterrupt
        return real_losses(*args, seed=seed, **kw)
    monkeypatch.setattr(sweep_module, "_losses", interrupted)
    with pytest.raises(KeyboardInterrupt):
        sweep(["--smoke", "--out", str(out)])
    partial = json.loads((tmp_path / "sweep.partial.json").read_text())
    assert list(partial["sections"]) == ["regime gentle", "regime long", "scaling"] and not out.exists()
    with pytest.raises(SystemExit, match="other settings"):
        sweep(["--smoke", "--out", str(out), "--resume", "--lr", "1e-2"])
    monkeypatch.setattr(sweep_module, "_losses", real_losses)
    calls = []
    real_sweep = sweep_module.rank_sweep
    monkeypatch.setattr(sweep_module, "rank_sweep", lambda *a, **kw: calls.append(kw) or real_sweep(*a, **kw))
    path = sweep(["--smoke", "--out", str(out), "--resume"])
    assert calls and not any(kw.get("deltas") for kw in calls)          # the two regimes were not run again
    assert not (tmp_path / "sweep.partial.json").exists()
    result = json.loads(path.read_text())
    assert result["regimes"]["long"] == partial["sections"]["regime long"]["value"]
    assert result["scaling"] == partial["sections"]["scaling"]["value"]
    assert result["format"] == "lora_edu.rank_sweep/1" and result["smoke"] is True
    assert result["python"] == platform.python_version() and 0 < result["base_loss"] < 8
    for regime in result["regimes"].values():
        assert [r["r"] for r in regime["rows"]] == [8, 64, "full"]
        spectrum = regime["spectra"]["transformer.h.0.attn.c_attn"]
        assert spectrum["shape"] == [256, 768] and len(spectrum["delta"]) == len(spectrum["random"]) == 256
        assert np.isclose(np.sum(np.square(spectrum["delta"])), np.sum(np.square(spectrum["random"])), rtol=1e-4)
        to_inputs = np.array(regime["similarity_r8_inputs"]["transformer.h.1.mlp.c_fc"])
        assert to_inputs.shape == (8, 64) and ((0 <= to_inputs) & (to_inputs <= 1 + 1e-9)).all()
        grid = np.array(regime["similarity_r8_r64"]["transformer.h.1.mlp.c_fc"])
        assert grid.shape == (8, 64) and ((0 <= grid) & (grid <= 1)).all()
    assert {(s["rule"], s["alpha"]) for s in result["scaling"]} == {("alpha/r", 8), ("alpha/sqrt(r)", 8), ("alpha/sqrt(r)", 1)}
    from lora_edu.sweep import LR_FACTORS, SEEDS
    assert [(row["seed"], row["r"]) for row in result["seeds"]] == [(s, r) for s in SEEDS for r in (8, 64, "full")]
    assert [row["lr"] for row in result["learning_rates"]] == pytest.approx(
        [f * lr for f in LR_FACTORS for lr in (3e-3, 3e-3, 3e-4)])
    assert all(np.isfinite(row["val_loss"]) for row in result["seeds"] + result["learning_rates"])


def test_input_directions_are_the_principal_directions_of_what_each_layer_reads():
    from lora_edu.sweep import input_directions
    m = tiny()
    dirs = input_directions(m, TEXT, k=8, block_size=32, windows=6)
    assert set(dirs) == {f"transformer.h.{i}.{t}" for i in range(2) for t in ("attn.c_attn", "attn.c_proj",
                                                                              "mlp.c_fc", "mlp.c_proj")}
    P = dirs["transformer.h.1.mlp.c_fc"]
    assert P.shape == (32, 8) and np.allclose(P.T @ P, np.eye(8), atol=1e-10)            # orthonormal columns
    seen = []                                                                            # the inputs, by hand
    hook = m.transformer.h[1].mlp.c_fc.register_forward_hook(lambda mod, i, o: seen.append(i[0].reshape(-1, 32)))
    tokens = data.as_tokens(TEXT)
    starts = torch.linspace(0, tokens.numel() - 33, 6).long()
    with torch.no_grad():
        m(data.window_pairs(tokens, starts, 32)[0])
    hook.remove()
    X = torch.cat(seen).double().numpy()
    s = np.linalg.svd(X, compute_uv=False)
    assert np.allclose(np.linalg.norm(X @ P, axis=0), s[:8], rtol=1e-6)                 # ‖X pᵢ‖ = σᵢ(X)
    assert input_directions(m, TEXT, k=100, block_size=32, windows=2)["transformer.h.0.mlp.c_proj"].shape == (128, 100)
    with pytest.raises(ValueError, match="no nn.Linear in the model matches"):
        input_directions(m, TEXT, targets=["q_proj"], block_size=32)
