"""LoRA layer speed: lora_edu's LoRALinear against the floor and its peers, side by side in one run.

    python benchmarks/lora_speed.py            # needs peft and loralib: pip install -e .[bench]

For each shape (in, out) and rank r: the time of one forward + backward pass (only the adapter trainable, the input
requiring grad as inside a network) of
  floor      a frozen nn.Linear — no adapter at all, the least any LoRA layer can cost;
  lora_edu   LoRALinear;
  naive      a module computing base(x) + x @ M @ N * s, nothing else;
  peft       PEFT's LoRA on the same nn.Linear (get_peft_model);
  loralib    loralib.Linear;
and merged inference (LoRALinear after merge()) against the plain layer, no grad. On CUDA everything runs under
bf16 autocast, as the course trains. Times are medians over interleaved rounds; ratios are to the floor and to PEFT.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time

import torch
import torch.nn as nn

from lora_edu.lora import LoRALinear

SHAPES = [(768, 768), (768, 3072), (4096, 4096)]
RANKS = [8, 64]


class Naive(nn.Module):
    def __init__(self, base, r):
        super().__init__()
        self.base = base.requires_grad_(False)
        self.M = nn.Parameter(torch.randn(base.in_features, r, device=base.weight.device) * 0.01)
        self.N = nn.Parameter(torch.zeros(r, base.out_features, device=base.weight.device))

    def forward(self, x):
        return self.base(x) + x @ self.M @ self.N


def peers(d_in, d_out, r, device):
    """name -> module, every one with a frozen copy of the same base weights."""
    torch.manual_seed(0)
    base = nn.Linear(d_in, d_out, device=device)

    def copy():
        b = nn.Linear(d_in, d_out, device=device)
        b.load_state_dict(base.state_dict())
        return b

    mods = {"floor": copy().requires_grad_(False), "lora_edu": LoRALinear(copy(), r), "naive": Naive(copy(), r)}
    try:
        from peft import LoraConfig, get_peft_model
        mods["peft"] = get_peft_model(nn.Sequential(copy()), LoraConfig(r=r, lora_alpha=r, target_modules=["0"]))
    except ImportError:
        pass
    try:
        import loralib
        m = loralib.Linear(d_in, d_out, r=r, lora_alpha=r).to(device)
        m.weight.data.copy_(base.weight.data)
        m.bias.data.copy_(base.bias.data)
        loralib.mark_only_lora_as_trainable(m)
        mods["loralib"] = m
    except ImportError:
        pass
    return mods


def sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize()


def timed(fn, device, iters):
    sync(device)
    t = time.perf_counter()
    for _ in range(iters):
        fn()
    sync(device)
    return (time.perf_counter() - t) / iters


def bench(d_in, d_out, r, device, tokens, rounds, iters):
    mods = peers(d_in, d_out, r, device)
    x = torch.randn(tokens, d_in, device=device, requires_grad=True)
    auto = torch.autocast("cuda", dtype=torch.bfloat16) if device.type == "cuda" else torch.autocast("cpu", enabled=False)

    def step(m):
        def run():
            with auto:
                y = m(x)
            y.float().sum().backward()
        return run

    fns = {k: step(m) for k, m in mods.items()}
    for f in fns.values():  # warm-up
        timed(f, device, 2)
    times = {k: [] for k in fns}
    for _ in range(rounds):
        for k, f in fns.items():
            times[k].append(timed(f, device, iters))
    med = {k: statistics.median(v) for k, v in times.items()}

    # merged inference against the plain layer
    lora, plain = mods["lora_edu"], mods["floor"]
    lora.merge()
    inf = {}
    with torch.no_grad():
        xi = x.detach()
        for k, m in (("plain", plain), ("merged", lora)):
            def run(m=m):
                with auto:
                    m(xi)
            timed(run, device, 2)
            inf[k] = statistics.median(timed(run, device, iters) for _ in range(rounds))
    return med, inf


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--tokens", type=int, default=None, help="rows of x (default: 8192 on CUDA, 512 on CPU)")
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--json", default=None, help="also write the results here")
    args = ap.parse_args()
    device = torch.device(args.device)
    tokens = args.tokens or (8192 if device.type == "cuda" else 512)
    iters = 20 if device.type == "cuda" else 3
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else f"{platform.machine()} CPU, {os.cpu_count()} cores"
    versions = {"torch": torch.__version__}
    for mod in ("peft", "loralib"):
        try:
            versions[mod] = __import__(mod).__dict__.get("__version__", "installed")
        except ImportError:
            versions[mod] = "missing"
    print(f"device: {name}; {versions}; x: ({tokens}, in), fp32" + (" under bf16 autocast" if device.type == "cuda" else ""))
    print(f"median of {args.rounds} rounds × {iters} iterations; forward + backward, only the adapter trainable\n")
    head = f"{'shape':>12} {'r':>3} " + " ".join(f"{k:>9}" for k in ["floor", "lora_edu", "naive", "peft", "loralib"])
    print(head + "   ours/floor ours/peft   merged/plain (inference)")
    results = []
    for d_in, d_out in SHAPES:
        for r in RANKS:
            med, inf = bench(d_in, d_out, r, device, tokens, args.rounds, iters)
            cells = " ".join(f"{med[k] * 1e3:9.3f}" if k in med else f"{'—':>9}" for k in
                             ["floor", "lora_edu", "naive", "peft", "loralib"])
            vs_peft = med["lora_edu"] / med["peft"] if "peft" in med else float("nan")
            print(f"{f'{d_in}×{d_out}':>12} {r:3} {cells}   {med['lora_edu'] / med['floor']:9.2f} {vs_peft:9.2f}"
                  f"   {inf['merged'] / inf['plain']:9.2f}")
            results.append({"shape": [d_in, d_out], "r": r, "ms": {k: v * 1e3 for k, v in med.items()},
                            "inference_ms": {k: v * 1e3 for k, v in inf.items()}})
    ratios = [x["ms"]["lora_edu"] / x["ms"]["peft"] for x in results if "peft" in x["ms"]]
    if ratios:
        print(f"\nours/peft: max {max(ratios):.2f}, no slower than PEFT (≤ 1.00) in {sum(q <= 1.0 for q in ratios)}"
              f"/{len(ratios)}, within 5 % in {sum(q <= 1.05 for q in ratios)}/{len(ratios)}")
    print("times in ms")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"device": name, "versions": versions, "tokens": tokens, "results": results}, f, indent=1)


if __name__ == "__main__":
    main()
