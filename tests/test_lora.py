import json
import math
import re
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn as nn
from hypothesis import given, settings
from hypothesis import strategies as st

from lora_edu.lora import (LoRALinear, apply_lora, count_parameters, load_adapter, lora_layers, lora_param_count,
                           merge, save_adapter, similarity_grid, subspace_similarity, unmerge,
                           weight_deltas)
from lora_edu.rank import energy_share


class Tiny(nn.Module):
    """Two blocks with GPT-2-like names, plus a non-Linear module."""

    def __init__(self, d=8):
        super().__init__()
        self.h = nn.ModuleList(nn.ModuleDict({"c_attn": nn.Linear(d, 3 * d), "c_proj": nn.Linear(d, d)})
                               for _ in range(2))
        self.ln = nn.LayerNorm(d)
        self.head = nn.Linear(d, 5, bias=False)

    def forward(self, x):
        for blk in self.h:
            x = x + blk["c_proj"](blk["c_attn"](x)[..., : x.shape[-1]])
        return self.head(self.ln(x))


def make(seed=0, **kw):
    torch.manual_seed(seed)
    return LoRALinear(nn.Linear(6, 4), **{"r": 3, **kw})


@settings(max_examples=30, deadline=None)
@given(st.integers(1, 4), st.floats(0.5, 32), st.booleans(), st.integers(0, 1000))
def test_layer_equals_the_formula(r, alpha, rslora, seed):
    torch.manual_seed(seed)
    layer = LoRALinear(nn.Linear(6, 5), r, alpha=alpha, rslora=rslora)
    nn.init.normal_(layer.N)
    x = torch.randn(3, 6)
    W, b = layer.base.weight.T, layer.base.bias           # the course's W (in, out)
    scaling = alpha / (r ** 0.5 if rslora else r)
    torch.testing.assert_close(layer(x), x @ W + x @ layer.M @ layer.N * scaling + b)
    torch.testing.assert_close(layer.delta_weight(), layer.M @ layer.N * scaling)             # (in, out)


@pytest.mark.parametrize("init", ["default", "svd"])
def test_output_unchanged_at_init(init):
    torch.manual_seed(0)
    base = nn.Linear(16, 12)
    x = torch.randn(5, 16)
    expected, s0 = base(x), torch.linalg.svdvals(base.weight.detach())
    layer = LoRALinear(base, 4, alpha=8, init=init)
    torch.testing.assert_close(layer(x), expected, atol=1e-5, rtol=1e-5)
    if init == "default":
        assert torch.all(layer.N == 0) and layer.M.abs().max() <= 1 / 16 ** 0.5
    else:  # PiSSA: the adapter holds the top-4 singular directions, removed from the base
        torch.testing.assert_close(torch.linalg.svdvals(layer.delta_weight().detach())[:4], s0[:4])
        torch.testing.assert_close(torch.linalg.svdvals(layer.base.weight)[:8], s0[4:])


def test_disabled_or_zero_adapter_is_the_base():
    layer = make()
    nn.init.normal_(layer.N)
    x = torch.randn(2, 6)
    layer.enabled = False
    torch.testing.assert_close(layer(x), layer.base(x))
    layer.enabled = True
    with torch.no_grad():
        layer.N.zero_()
    torch.testing.assert_close(layer(x), layer.base(x))


def test_merge_equals_unmerged_and_round_trips():
    layer = make()
    nn.init.normal_(layer.N)
    x = torch.randn(4, 6)
    before, w0 = layer(x), layer.base.weight.clone()
    layer.eval()
    assert not layer.merged                               # eval() never merges
    layer.merge()
    torch.testing.assert_close(layer(x), before, atol=1e-6, rtol=1e-6)
    with pytest.raises(ValueError, match="already merged"):
        layer.merge()
    layer.unmerge()
    with pytest.raises(ValueError, match="not merged"):
        layer.unmerge()
    for _ in range(99):
        layer.merge()
        layer.unmerge()
    assert (layer.base.weight - w0).abs().max() <= 1e-6


def test_bf16_merges_through_fp32():
    torch.manual_seed(0)
    layer = LoRALinear(nn.Linear(32, 32).to(torch.bfloat16), 4)
    nn.init.normal_(layer.N, std=0.01)
    expected = (layer.base.weight.float() + layer.delta_weight().T).to(torch.bfloat16)
    layer.merge()
    assert layer.base.weight.dtype == torch.bfloat16 and torch.equal(layer.base.weight, expected)


def test_training_moves_only_M_and_N_and_recovers_a_planted_low_rank_update():
    torch.manual_seed(0)
    d, r = 16, 2
    teacher = nn.Linear(d, d)
    student = nn.Linear(d, d)
    student.load_state_dict(teacher.state_dict())
    planted = torch.randn(d, r) @ torch.randn(r, d) * 0.3       # the true ΔW (in, out), rank 2
    with torch.no_grad():
        teacher.weight += planted.T
    layer = LoRALinear(student, r)
    w0, b0 = layer.base.weight.clone(), layer.base.bias.clone()
    opt = torch.optim.Adam([p for p in layer.parameters() if p.requires_grad], lr=0.05)
    for _ in range(400):
        x = torch.randn(64, d)
        loss = ((layer(x) - teacher(x)) ** 2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert layer.base.weight.grad is None and layer.base.bias.grad is None
    assert torch.equal(layer.base.weight, w0) and torch.equal(layer.base.bias, b0)   # bit-identical
    assert (layer.delta_weight() - planted).norm() / planted.norm() < 1e-2


def test_apply_lora_by_suffix_and_regex_freezes_the_rest():
    model = Tiny()
    names = apply_lora(model, ["c_attn"], r=2)
    assert names == ["h.0.c_attn", "h.1.c_attn"]
    assert all(isinstance(model.h[i]["c_attn"], LoRALinear) for i in range(2))
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert trainable == {f"h.{i}.c_attn.{k}" for i in range(2) for k in "MN"}
    c = count_parameters(model)
    assert c.trainable == 2 * 2 * (8 + 24) and str(c).startswith(f"trainable params: {c.trainable:,} || all params: ")
    assert c.share == c.trainable / c.total and str(c).endswith(f"trainable%: {100 * c.trainable / c.total:.4f}")
    model2, reference = Tiny(), Tiny()
    reference.load_state_dict(model2.state_dict())
    assert apply_lora(model2, re.compile(r"h\.1\..*"), r=1) == ["h.1.c_attn", "h.1.c_proj"]
    x = torch.randn(3, 8)
    torch.testing.assert_close(model2(x), reference(x))      # unchanged at init


def test_hostile_cases_are_clear_errors():
    model = Tiny()
    with pytest.raises(ValueError, match=r"no nn.Linear module matches targets \['q_proj'\].*h.0.c_attn"):
        apply_lora(model, ["q_proj"], r=2)
    apply_lora(model, "c_proj", r=2)
    with pytest.raises(ValueError, match="already applied"):
        apply_lora(model, "c_proj", r=2)
    with pytest.raises(TypeError, match="targets"):
        apply_lora(model, [3], r=2)
    with pytest.raises(ValueError, match=r"r = 9 is out of range for a Linear\(6, 4\)"):
        LoRALinear(nn.Linear(6, 4), 9)
    with pytest.raises(ValueError, match="integer"):
        LoRALinear(nn.Linear(6, 4), 2.5)
    with pytest.raises(ValueError, match="init"):
        LoRALinear(nn.Linear(6, 4), 2, init="gaussian")
    with pytest.raises(ValueError, match="alpha"):
        LoRALinear(nn.Linear(6, 4), 2, alpha=0)
    with pytest.raises(ValueError, match="dropout"):
        LoRALinear(nn.Linear(6, 4), 2, dropout=1.0)
    with pytest.raises(TypeError, match="nn.Linear"):
        LoRALinear(nn.Conv1d(2, 2, 1), 1)
    with pytest.raises(ValueError, match="already has LoRA"):
        LoRALinear(make(), 1)
    with pytest.raises(ValueError, match="no LoRA layers"):
        merge(Tiny())


@pytest.mark.parametrize("init", ["default", "svd"])
def test_save_load_round_trip_is_bit_exact(tmp_path, init):
    torch.manual_seed(0)
    model = Tiny()
    fresh = Tiny()
    fresh.load_state_dict(model.state_dict())
    apply_lora(model, ["c_attn", "c_proj"], r=2, alpha=4, init=init)
    for layer in lora_layers(model).values():
        nn.init.normal_(layer.N)
    save_adapter(model, tmp_path / "ad")
    card = json.loads((tmp_path / "ad" / "adapter.json").read_text())
    assert card["r"] == 2 and card["alpha"] == 4 and card["init"] == init and len(card["targets"]) == 4
    assert sorted(p.name for p in (tmp_path / "ad").iterdir()) == ["adapter.1.safetensors", "adapter.json"]
    assert card["tensors"] == "adapter.1.safetensors" and len(card["sha256"]) == 64
    assert load_adapter(fresh, tmp_path / "ad") == card["targets"]
    x = torch.randn(3, 8)
    assert torch.equal(fresh(x), model(x))
    for n, layer in lora_layers(fresh).items():
        assert torch.equal(layer.M, lora_layers(model)[n].M) and torch.equal(layer.N, lora_layers(model)[n].N)
    merge(fresh)
    torch.testing.assert_close(fresh(x), model(x), atol=1e-5, rtol=1e-5)
    with pytest.raises(ValueError, match="merged"):
        save_adapter(fresh, tmp_path / "merged")
    unmerge(fresh)


def test_adapter_mismatches_name_the_module(tmp_path):
    model = Tiny()
    apply_lora(model, "c_attn", r=2)
    save_adapter(model, tmp_path / "ad")
    wider = Tiny(d=12)
    with pytest.raises(ValueError, match=r"'h.0.c_attn' is Linear\(12, 36\) in this model; the adapter was "
                                         r"trained on Linear\(8, 24\)"):
        load_adapter(wider, tmp_path / "ad")
    other_rank = Tiny()
    apply_lora(other_rank, "c_attn", r=3)
    with pytest.raises(ValueError, match="'h.0.c_attn' has LoRA rank 3; the adapter has rank 2"):
        load_adapter(other_rank, tmp_path / "ad")
    other_targets = Tiny()
    apply_lora(other_targets, "c_proj", r=2)
    with pytest.raises(ValueError, match="differ from the adapter's"):
        load_adapter(other_targets, tmp_path / "ad")
    no_module = nn.Sequential(nn.Linear(8, 8))
    with pytest.raises(ValueError, match="'h.0.c_attn' is not an nn.Linear in this model"):
        load_adapter(no_module, tmp_path / "ad")
    with pytest.raises(FileNotFoundError, match="adapter.json is missing"):
        load_adapter(Tiny(), tmp_path / "nowhere")


def test_architecture_calculator_matches_published_counts():
    c = lora_param_count("llama-2-7b", 8, ["q_proj", "v_proj"])
    # PEFT's well-known line: trainable params: 4,194,304 || all params: 6,742,609,920 || trainable%: 0.0622
    assert c.trainable == 4_194_304 and c.total == 6_742_609_920 and f"{100 * c.share:.4f}" == "0.0622"
    base = lambda arch, t: (lambda c: c.total - c.trainable)(lora_param_count(arch, 1, t))
    assert base("gpt2", "c_fc") == 124_439_808 and base("gpt2-xl", "c_fc") == 1_557_611_200
    assert base("llama-2-70b", "q_proj") == 68_976_648_192 and base("llama-2-7b", "q_proj") == 6_738_415_616
    # the LoRA paper's Table 4: GPT-3 175B with W_q and W_v adapted, 4.7M trainable at r = 1 and 37.7M at r = 8
    assert lora_param_count("gpt3-175b", 1, ["q_proj", "v_proj"]).trainable == 4_718_592
    assert lora_param_count("gpt3-175b", 8, ["q_proj", "v_proj"]).trainable == 37_748_736
    assert 174e9 < base("gpt3-175b", "q_proj") < 176e9
    assert lora_param_count("llama-2-70b", 8, "k_proj").trainable == 8 * (8192 + 1024) * 80
    with pytest.raises(ValueError, match="unknown architecture 'gpt5'; known: gpt2"):
        lora_param_count("gpt5", 8, "q_proj")
    with pytest.raises(ValueError, match="gpt2 has no matrix 'q_proj'; its matrices are: attn.c_attn"):
        lora_param_count("gpt2", 8, "q_proj")


def _files(folder):
    return {p.name: p.read_bytes() for p in folder.iterdir()}


def _two_adapters():
    """Two models with the same LoRA layout and different factors: the adapter on disk, and the one replacing it."""
    models = []
    for seed in (0, 1):
        torch.manual_seed(seed)
        model = Tiny()
        apply_lora(model, "c_attn", r=2)
        for layer in lora_layers(model).values():
            nn.init.normal_(layer.N)
        models.append(model)
    return models


def _outputs(folder):
    fresh = Tiny()
    load_adapter(fresh, folder)
    return [l.N.detach().clone() for l in lora_layers(fresh).values()]


@pytest.mark.parametrize("step", ["serialize", "tensor write", "tensor rename", "card write", "card rename"])
def test_a_failed_save_leaves_the_previous_adapter_loadable(tmp_path, monkeypatch, step):
    import lora_edu._io
    import safetensors.torch
    old, new = _two_adapters()
    folder = save_adapter(old, tmp_path / "ad")
    before, loaded = _files(folder), _outputs(folder)
    renames = []

    def replace(src, dst, real=lora_edu._io.os.replace):
        renames.append(dst)
        if len(renames) == {"tensor rename": 1, "card rename": 2}[step]:
            raise OSError("disk full")
        real(src, dst)

    def half(suffix):
        real = getattr(Path, "write_" + suffix)

        def write(self, data, *a, **k):
            real(self, data[: len(data) // 2], *a, **k)
            raise OSError("disk full")
        return write

    if step == "serialize":
        monkeypatch.setattr(safetensors.torch, "save", lambda *a, **k: (_ for _ in ()).throw(OSError("disk full")))
    elif step.endswith("rename"):
        monkeypatch.setattr(lora_edu._io.os, "replace", replace)
    else:
        monkeypatch.setattr(Path, "write_bytes" if step == "tensor write" else "write_text",
                            half("bytes" if step == "tensor write" else "text"))
    with pytest.raises(OSError, match="disk full"):
        save_adapter(new, folder)
    monkeypatch.undo()
    assert _files(folder) == before                      # no temp file, no new tensors, the card untouched
    assert all(torch.equal(a, b) for a, b in zip(_outputs(folder), loaded))


def test_a_failed_cleanup_does_not_hide_the_real_error(tmp_path, monkeypatch):
    import lora_edu._io
    old, new = _two_adapters()
    folder = save_adapter(old, tmp_path / "ad")
    before = _files(folder)
    monkeypatch.setattr(lora_edu._io.os, "replace", lambda *a: (_ for _ in ()).throw(OSError("disk full")))
    monkeypatch.setattr(Path, "unlink", lambda *a, **k: (_ for _ in ()).throw(PermissionError("read-only")))
    with pytest.raises(OSError, match="disk full"):
        save_adapter(new, folder)
    monkeypatch.undo()
    assert {k: v for k, v in _files(folder).items() if k in before} == before
    assert all(k.endswith(".tmp") for k in set(_files(folder)) - set(before))   # only the temp file it could not delete


def test_saving_again_commits_with_the_card_and_then_drops_the_old_tensors(tmp_path, monkeypatch):
    old, new = _two_adapters()
    folder = save_adapter(old, tmp_path / "ad")
    monkeypatch.setattr(Path, "unlink", lambda *a, **k: (_ for _ in ()).throw(PermissionError("read-only")))
    save_adapter(new, folder)                            # removing the old file fails after the commit: no error
    monkeypatch.undo()
    assert sorted(_files(folder)) == ["adapter.1.safetensors", "adapter.2.safetensors", "adapter.json"]
    want = [l.N for l in lora_layers(new).values()]
    assert all(torch.equal(a, b) for a, b in zip(_outputs(folder), want))
    save_adapter(old, folder)                            # the next save removes every file the card does not name
    assert sorted(_files(folder)) == ["adapter.3.safetensors", "adapter.json"]
    with pytest.raises(ValueError, match="is a file"):
        save_adapter(old, folder / "adapter.json")


def test_a_card_only_loads_the_tensors_it_describes(tmp_path):
    import json
    old, new = _two_adapters()
    a, b = save_adapter(old, tmp_path / "a"), save_adapter(new, tmp_path / "b")
    (a / "adapter.1.safetensors").write_bytes((b / "adapter.1.safetensors").read_bytes())   # same shapes, other values
    with pytest.raises(ValueError, match=r"adapter.1.safetensors is not the file its card describes"):
        load_adapter(Tiny(), a)
    card = json.loads((b / "adapter.json").read_text())
    for hostile in ("../a/adapter.1.safetensors", "/etc/passwd", 3, "adapter.json"):
        (b / "adapter.json").write_text(json.dumps({**card, "tensors": hostile}))
        with pytest.raises(ValueError, match="'tensors' must name a file adapter.N.safetensors"):
            load_adapter(Tiny(), b)
    (b / "adapter.json").write_text(json.dumps({**card, "tensors": "adapter.7.safetensors"}))
    with pytest.raises(FileNotFoundError, match="names adapter.7.safetensors, which is not in"):
        load_adapter(Tiny(), b)
    legacy = {k: v for k, v in card.items() if k not in ("tensors", "sha256")}    # a card from before 0.9
    (b / "adapter.json").write_text(json.dumps(legacy))
    (b / "adapter.1.safetensors").rename(b / "adapter.safetensors")
    assert all(torch.equal(x, l.N) for x, l in zip(_outputs(b), lora_layers(new).values()))


def test_disable_and_merge_do_not_mix_and_mismatched_settings_are_refused(tmp_path):
    layer = make()
    layer.merge()
    with pytest.raises(ValueError, match="unmerge\\(\\) before disabling"):
        layer.enabled = False
    layer.unmerge()
    layer.enabled = False
    with pytest.raises(ValueError, match="disabled; enable it before merging"):
        layer.merge()
    model = Tiny()
    apply_lora(model, "c_attn", r=2, alpha=2)
    save_adapter(model, tmp_path / "ad")
    other = Tiny()
    apply_lora(other, "c_attn", r=2, alpha=16)
    with pytest.raises(ValueError, match="'h.0.c_attn' has LoRA alpha 16.0; the adapter has alpha 2.0"):
        load_adapter(other, tmp_path / "ad")
    svd = Tiny()
    apply_lora(svd, "c_attn", r=2, alpha=2, init="svd")
    with pytest.raises(ValueError, match="has LoRA init 'svd'; the adapter has init 'default'"):
        load_adapter(svd, tmp_path / "ad")
    card = tmp_path / "ad" / "adapter.json"
    card.write_text(card.read_text().replace("lora_edu.adapter/1", "something-else"))
    with pytest.raises(ValueError, match="not a lora_edu adapter card"):
        load_adapter(Tiny(), tmp_path / "ad")


# ---- subspace similarity (chapter 6) ----------------------------------------------------------------------------


def _orthonormal(d, k, seed):
    return np.linalg.qr(np.random.default_rng(seed).standard_normal((d, k)))[0]


@given(st.integers(4, 20), st.integers(1, 4), st.integers(0, 10_000))
@settings(max_examples=40, deadline=None)
def test_subspace_similarity_laws(d, k, seed):
    rng = np.random.default_rng(seed)
    a = rng.standard_normal((d, k))
    b = rng.standard_normal((d, k + 1))
    assert subspace_similarity(a, a) == pytest.approx(1.0)
    assert subspace_similarity(a, b) == pytest.approx(subspace_similarity(b, a))                   # symmetric
    Q = _orthonormal(k, k, seed + 1)
    R = rng.standard_normal((k, k)) + 3 * np.eye(k)
    for i in range(1, k + 1):                                                # a rotated basis: same top-i directions
        assert subspace_similarity(a @ Q, b, i, 1) == pytest.approx(subspace_similarity(a, b, i, 1), abs=1e-9)
    assert subspace_similarity(a @ R, b) == pytest.approx(subspace_similarity(a, b), abs=1e-9)     # same span
    assert 0.0 <= subspace_similarity(a, b, 1, 1) <= 1.0
    inside = np.hstack([a, rng.standard_normal((d, 1))])                     # a's span inside a bigger one
    assert subspace_similarity(a, inside) == pytest.approx(1.0)
    assert subspace_similarity(a, _orthonormal(d, d, seed)) == pytest.approx(1.0)             # the whole space


def test_subspace_similarity_of_orthogonal_subspaces_is_zero():
    Q = _orthonormal(10, 10, 0)
    assert subspace_similarity(Q[:, :3], Q[:, 3:7]) == pytest.approx(0.0, abs=1e-12)
    assert subspace_similarity(Q[:, :3], Q[:, 2:7]) == pytest.approx(1 / 3)      # one shared direction of three
    grid = similarity_grid(torch.tensor(Q[:, :3]), Q[:, 2:7])
    assert grid.shape == (3, 5) and grid[0, 0] == pytest.approx(0.0, abs=1e-12)
    with pytest.raises(ValueError, match="same number of rows"):
        subspace_similarity(np.ones((4, 2)), np.ones((5, 2)))
    with pytest.raises(ValueError, match="i_max"):
        similarity_grid(Q[:, :3], Q, i_max=4)
    with pytest.raises(ValueError, match="NaN"):
        subspace_similarity(np.full((3, 2), np.nan), Q[:3, :2])


def test_energy_share_agrees_with_numpy():
    A = np.random.default_rng(0).standard_normal((30, 12))
    s = np.linalg.svd(A, compute_uv=False)
    for k in (1, 5, 12):
        assert energy_share(A, k) == pytest.approx((s[:k] ** 2).sum() / (s ** 2).sum())
    assert energy_share(np.zeros((3, 3)), 2) == 0.0
    with pytest.raises(ValueError, match="k = 13"):
        energy_share(A, 13)


def test_weight_deltas_of_full_and_lora_fine_tunes():
    torch.manual_seed(0)
    before = Tiny()
    after = Tiny()
    after.load_state_dict(before.state_dict())
    with torch.no_grad():
        after.h[0]["c_attn"].weight.add_(1.0)
    d = weight_deltas(before, after, ["c_attn"])
    assert set(d) == {"h.0.c_attn", "h.1.c_attn"}
    W = before.h[0]["c_attn"].weight
    assert d["h.0.c_attn"].shape == (W.shape[1], W.shape[0]) and np.allclose(d["h.0.c_attn"], 1.0)
    assert np.allclose(d["h.1.c_attn"], 0.0)
    lora = Tiny()
    lora.load_state_dict(before.state_dict())
    apply_lora(lora, ["c_attn"], r=2)
    layer = lora_layers(lora)["h.1.c_attn"]
    with torch.no_grad():
        layer.N.normal_()
    d = weight_deltas(before, lora, ["c_attn"])                       # = M N · scaling, merged or not
    assert np.allclose(d["h.1.c_attn"], (layer.M @ layer.N * layer.scaling).detach().double().numpy())
    merge(lora)
    assert np.allclose(weight_deltas(before, lora, ["c_attn"])["h.1.c_attn"], d["h.1.c_attn"], atol=1e-6)
    with pytest.raises(ValueError, match="no nn.Linear module matches"):
        weight_deltas(before, after, ["nothing"])
    with pytest.raises(ValueError, match="missing in `after`"):
        weight_deltas(before, nn.Sequential(), ["c_attn"])


def _snapshot(model):
    """Everything an edit could change: the module tree, every tensor and every requires_grad flag."""
    return ([(n, type(m).__name__) for n, m in model.named_modules()],
            {k: v.clone() for k, v in model.state_dict().items()},
            {n: p.requires_grad for n, p in model.named_parameters()})


def _unchanged(model, snap):
    tree, state, flags = _snapshot(model)
    assert tree == snap[0] and flags == snap[2] and state.keys() == snap[1].keys()
    assert all(torch.equal(state[k], snap[1][k]) for k in state)


@pytest.mark.parametrize("init", ["default", "svd"])
def test_apply_lora_is_all_or_nothing(init):
    class TwoWidths(nn.Module):
        def __init__(self):
            super().__init__()
            self.wide, self.narrow = nn.Linear(8, 16), nn.Linear(16, 2)
    model = TwoWidths()
    model.narrow.weight.requires_grad_(False)                      # a flag of the user's own, to be kept
    snap = _snapshot(model)
    with pytest.raises(ValueError, match=r"r = 4 is out of range for narrow, a Linear\(16, 2\)"):
        apply_lora(model, ["wide", "narrow"], r=4, init=init)      # the second layer cannot take r = 4
    _unchanged(model, snap)
    with pytest.raises(ValueError, match="dropout = 1.0"):
        apply_lora(model, ["wide", "narrow"], r=2, dropout=1.0, init=init)
    _unchanged(model, snap)
    for bad in (None, 3, b"wide"):
        with pytest.raises(TypeError, match="targets must be module-name suffixes"):
            apply_lora(model, bad, r=2)
    _unchanged(model, snap)


def test_a_second_apply_lora_extends_the_same_adapter():
    model = Tiny()
    apply_lora(model, "c_attn", r=2)
    snap = _snapshot(model)
    with pytest.raises(ValueError, match=r"must match, but got \(3, 3.0, 'default', False, 0.0\)"):
        apply_lora(model, "c_proj", r=3)
    _unchanged(model, snap)
    with pytest.raises(ValueError, match="must match"):            # init="svd" had already moved the base weights
        apply_lora(model, "c_proj", r=2, init="svd")
    _unchanged(model, snap)
    assert apply_lora(model, "c_proj", r=2) == ["h.0.c_proj", "h.1.c_proj"]
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert trainable == {f"h.{i}.{t}.{k}" for i in range(2) for t in ("c_attn", "c_proj") for k in "MN"}


def _rewrite(folder, change):
    """Rewrite an adapter's tensors through change(dict) -> dict, as a hostile or broken file would hold them, with
    a card that vouches for them (its sha256 updated)."""
    import hashlib
    import json
    from safetensors.torch import load_file, save_file
    card = json.loads((folder / "adapter.json").read_text())
    path = folder / card["tensors"]
    save_file(change(load_file(str(path))), str(path))
    card["sha256"] = hashlib.sha256(path.read_bytes()).hexdigest()
    (folder / "adapter.json").write_text(json.dumps(card))


def test_load_adapter_is_all_or_nothing(tmp_path):
    import json
    trained = Tiny()
    apply_lora(trained, "c_attn", r=2)
    for layer in lora_layers(trained).values():
        nn.init.normal_(layer.N)
    good = save_adapter(trained, tmp_path / "good")
    last = "h.1.c_attn.N"
    cases = {
        "nan": (lambda t: {**t, last: torch.full_like(t[last], float("nan"))}, f"{last} contains NaN or inf"),
        "int": (lambda t: {**t, last: t[last].long()}, f"{last} has dtype torch.int64"),
        "extra": (lambda t: {**t, "h.0.c_proj.M": t["h.0.c_attn.M"].clone()}, r"unexpected \[.h.0.c_proj.M.\]"),
        "lost": (lambda t: {k: v for k, v in t.items() if k != last}, rf"missing \['{last}'\]"),
        "shape": (lambda t: {**t, last: t[last][:1]}, rf"{last} has shape \(1, 24\)"),
    }
    for name, (change, message) in cases.items():
        bad = tmp_path / name
        save_adapter(trained, bad)
        _rewrite(bad, change)
        for start in ("plain", "adapted"):                    # a fresh model, and one that holds another adapter
            model = Tiny()
            if start == "adapted":
                load_adapter(model, good)
            snap = _snapshot(model)
            with pytest.raises(ValueError, match=message):
                load_adapter(model, bad)
            _unchanged(model, snap)
            assert str(bad / "adapter.1.safetensors") in str(pytest.raises(ValueError, load_adapter, model, bad).value)
    for text, message in (("", "not a readable adapter card"), ('{"format": "lora_edu.adapter/1"', "not a readable"),
                          ('{"format": "lora_edu.adapter/1"}', r"lacks the field\(s\)"), ("[1]", "format 'list'")):
        broken = tmp_path / f"card{len(text)}"
        save_adapter(trained, broken)
        (broken / "adapter.json").write_text(text)
        model = Tiny()
        snap = _snapshot(model)
        with pytest.raises(ValueError, match=message) as err:
            load_adapter(model, broken)
        assert str(broken / "adapter.json") in str(err.value)
        _unchanged(model, snap)
    truncated = tmp_path / "truncated"
    save_adapter(trained, truncated)
    data = (truncated / "adapter.1.safetensors").read_bytes()
    (truncated / "adapter.1.safetensors").write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match="adapter.1.safetensors is not the file its card describes"):
        load_adapter(Tiny(), truncated)
    card = json.loads((truncated / "adapter.json").read_text())
    del card["sha256"]                                    # a card that does not vouch: the file's own check
    (truncated / "adapter.json").write_text(json.dumps(card))
    with pytest.raises(ValueError, match="adapter.1.safetensors is not a readable safetensors file"):
        load_adapter(Tiny(), truncated)
    card = json.loads((good / "adapter.json").read_text())
    assert card["targets"] == ["h.0.c_attn", "h.1.c_attn"]


def test_merged_means_frozen():
    layer = make()
    nn.init.normal_(layer.N)
    x = torch.randn(4, 6)
    with torch.no_grad():
        before, w0 = layer(x), layer.base.weight.clone()
    layer.merge()
    assert not layer.M.requires_grad and not layer.N.requires_grad       # no optimizer step can move them
    saved = layer.N.detach().clone()
    with torch.no_grad():
        layer.N.add_(1.0)                                                 # but a hand edit is caught
    with pytest.raises(ValueError, match="M, N or the scaling changed while the layer was merged"):
        layer.unmerge()
    with torch.no_grad():
        layer.N.copy_(saved)
    layer.unmerge()
    assert layer.M.requires_grad and layer.N.requires_grad
    torch.testing.assert_close(layer.base.weight, w0, atol=1e-6, rtol=0)
    with torch.no_grad():
        torch.testing.assert_close(layer(x), before)
    for _ in range(100):                                                  # 100 cycles stay within 1e-6
        layer.merge()
        layer.unmerge()
    torch.testing.assert_close(layer.base.weight, w0, atol=1e-6, rtol=0)


def test_merging_keeps_the_base_weight_out_of_autograd():
    layer = make()
    nn.init.normal_(layer.N)
    layer.merge()
    w = layer.base.weight
    assert w.is_leaf and not w.requires_grad and w.grad_fn is None
    layer.unmerge()
    assert layer.base.weight.is_leaf and not layer.base.weight.requires_grad


def test_a_base_weight_replaced_while_merged_is_noticed():
    for change in ("write", "replace", "load_state_dict", ".data", "one entry"):
        layer = make()
        nn.init.normal_(layer.N)
        layer.merge()
        with torch.no_grad():
            if change == "write":
                layer.base.weight.add_(1.0)
            elif change == ".data":                                      # torch's version counter misses this
                layer.base.weight.data.add_(1.0)
            elif change == "one entry":
                layer.base.weight.data[0, 0] = torch.nextafter(layer.base.weight[0, 0], torch.tensor(9.0))
            elif change == "replace":
                layer.base.weight = nn.Parameter(torch.randn_like(layer.base.weight), requires_grad=False)
            else:
                layer.load_state_dict({k: torch.zeros_like(v) if k == "base.weight" else v
                                       for k, v in layer.state_dict().items()})
        w = layer.base.weight.detach().clone()
        with pytest.raises(ValueError, match="base weight was replaced or written to while the layer was merged"):
            layer.unmerge()
        assert layer.merged and torch.equal(layer.base.weight, w)            # refused: nothing changed


def test_apply_lora_refuses_a_tied_weight():
    from lora_edu.gpt import GPT, GPTConfig, LORA_TARGETS
    gpt = GPT(GPTConfig(block_size=16, n_layer=1, n_head=2, n_embd=16))
    snap = _snapshot(gpt)
    with pytest.raises(ValueError, match=r"lm_head.weight is tied to transformer.wte.weight"):
        apply_lora(gpt, ["lm_head"], r=2)
    with pytest.raises(ValueError, match="tied"):
        apply_lora(gpt, re.compile(r".*"), r=2)                           # a catch-all regex is caught too
    _unchanged(gpt, snap)
    assert len(apply_lora(gpt, LORA_TARGETS, r=2)) == 4


def test_apply_lora_refuses_weights_that_share_memory_with_another_tensor():
    """Not the same Parameter, but the same storage: merging into one would write into the other."""
    model = Tiny()
    model.h[1].c_attn.weight = nn.Parameter(model.h[0].c_attn.weight.data)       # another Parameter, one storage
    snap = _snapshot(model)
    with pytest.raises(ValueError, match=r"h.0.c_attn.weight is tied to h.1.c_attn.weight"):
        apply_lora(model, "c_attn", r=2)
    _unchanged(model, snap)
    view = nn.Linear(4, 4)
    holder = nn.Module()
    holder.big, holder.lin = nn.Parameter(torch.zeros(8, 4)), view
    view.weight = nn.Parameter(holder.big.data[:4])                               # a view of a larger parameter
    with pytest.raises(ValueError, match=r"lin.weight is tied to big"):
        apply_lora(holder, "lin", r=1)


def test_apply_lora_refuses_multihead_attentions_out_proj():
    """nn.MultiheadAttention reads out_proj.weight itself instead of calling out_proj: LoRA there never runs."""
    model = nn.Sequential(nn.MultiheadAttention(8, 2))
    snap = _snapshot(model)
    with pytest.raises(ValueError, match=r"0.out_proj belongs to an nn.MultiheadAttention"):
        apply_lora(model, "out_proj", r=2)
    _unchanged(model, snap)


def test_the_merge_check_sees_writes_that_cancel_in_a_sum_and_a_changed_scaling():
    """Found by the third probe: (+d, −2d, +d) on the bits, or a swap of two entries, fooled two linear sums;
    a scaling changed while merged made unmerge take out a different ΔW."""
    for change in ("cancel", "swap", "scaling"):
        layer = make()
        nn.init.normal_(layer.N)
        layer.merge()
        with torch.no_grad():
            bits = layer.base.weight.data.view(-1).view(torch.int32)
            if change == "cancel":
                bits[0] += 1 << 23
                bits[1] -= 2 << 23
                bits[2] += 1 << 23
            elif change == "swap":
                w = layer.base.weight.data.view(-1)
                w[0], w[1] = w[1].clone(), w[0].clone()
            else:
                layer.scaling = 5.0
        with pytest.raises(ValueError, match="while the layer was merged"):
            layer.unmerge()
        assert layer.merged


def test_a_second_apply_lora_refuses_a_merged_adapter_and_another_dropout(tmp_path):
    model = Tiny()
    apply_lora(model, "h.0.c_attn", r=2)
    merge(model)
    snap = _snapshot(model)
    with pytest.raises(ValueError, match=r"merged \(merged means frozen\); unmerge\(model\) before adding"):
        apply_lora(model, "h.1.c_attn", r=2)
    _unchanged(model, snap)
    unmerge(model)
    with pytest.raises(ValueError, match=r"must match, but got \(2, 2.0, 'default', False, 0.5\)"):
        apply_lora(model, "h.1.c_attn", r=2, dropout=0.5)     # the card stores one dropout: it would be lost


def test_load_adapter_wraps_exactly_the_cards_modules(tmp_path):
    """A card naming 'proj' must not also wrap 'block.proj' (apply_lora's targets are suffixes)."""
    class M(nn.Module):
        def __init__(self):
            super().__init__()
            self.proj, self.block = nn.Linear(4, 4), nn.Sequential()
            self.block.proj = nn.Linear(4, 4)
    model = M()
    apply_lora(model, re.compile("proj"), r=1)
    save_adapter(model, tmp_path / "ad")
    fresh = M()
    assert load_adapter(fresh, tmp_path / "ad") == ["proj"]
    assert list(lora_layers(fresh)) == ["proj"]


def test_a_bf16_base_with_fp32_factors_runs_the_lora_path_in_fp32():
    """PEFT's mixed precision: a frozen 16-bit base, trainable fp32 factors (finetune trains only fp32 weights)."""
    from lora_edu.gpt import GPT, GPTConfig
    from lora_edu.train import finetune
    torch.manual_seed(0)
    layer = LoRALinear(nn.Linear(8, 6).to(torch.bfloat16), r=2)
    layer.M, layer.N = nn.Parameter(layer.M.detach().float()), nn.Parameter(torch.randn(2, 6))
    x = torch.randn(5, 8, dtype=torch.bfloat16)
    y = layer(x)
    assert y.dtype == torch.bfloat16
    assert torch.equal(y, layer.base(x) + (x.float() @ layer.M @ layer.N * layer.scaling).to(torch.bfloat16))
    y.float().sum().backward()
    assert layer.M.grad.dtype == layer.N.grad.dtype == torch.float32 and torch.isfinite(layer.M.grad).all()

    model = GPT(GPTConfig(block_size=16, n_layer=1, n_head=2, n_embd=8)).to(torch.bfloat16)
    apply_lora(model, "c_attn", r=2)
    for l in lora_layers(model).values():
        l.M, l.N = nn.Parameter(l.M.detach().float()), nn.Parameter(l.N.detach().float())
    before = {n: l.N.detach().clone() for n, l in lora_layers(model).items()}
    hist = finetune(model, "abcd" * 200, "dcba" * 100, steps=3, block_size=8, batch_size=4, device="cpu",
                    progress=False)
    assert math.isfinite(hist.final["val_loss"])
    assert all(not torch.equal(l.N, before[n]) for n, l in lora_layers(model).items())
