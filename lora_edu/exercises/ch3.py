"""Exercises of chapter 3 — linear layers as matrices."""
from __future__ import annotations

import numpy as np

from . import Exercise, Wrong, as_int, as_matrix_answer, describe

__all__ = ["layer_shapes", "bottleneck_rank", "blind_spot", "fused_layer"]


def _shapes(answer):
    if not isinstance(answer, (tuple, list)) or len(answer) != 2:
        raise Wrong(f"answer with a pair (shape of W, shape of nn.Linear.weight); got {describe(answer)}.")
    if not all(isinstance(a, (tuple, list, np.ndarray)) and len(a) == 2 for a in answer):
        raise Wrong(f"answer with two shapes, ((a, b), (c, d)); got {describe(answer)}.")
    try:
        w, t = (tuple(as_int(d, "a dimension", lo=1) for d in a) for a in answer)
    except (TypeError, Wrong):
        raise Wrong(f"each shape should be a pair of whole numbers like (2, 5); got {describe(answer)}.") from None
    if w != (768, 3072):
        return f"W is not {w}: in Y = XW + b, which dimension do the rows of W match, and which its columns?"
    if t != (3072, 768):
        return (f"nn.Linear.weight is not {t}: print nn.Linear(2, 5).weight.shape and see which way round PyTorch "
                "stores it.")
    return None


layer_shapes = Exercise(
    "3.1", "the two layouts of one layer", _shapes,
    hints=["Rows of W = inputs, columns = neurons. PyTorch stores the transpose.",
           "768 inputs, 3072 neurons: W is (768, 3072)."],
    solution="""
answer = ((768, 3072), (3072, 768))
In Y = XW + b each row of X is one input vector (768 numbers), so W needs 768 rows and one column per neuron.
nn.Linear(768, 3072).weight is Wᵀ: (out_features, in_features) = (3072, 768).""",
    correct="keep both layouts in mind: the next chapters move between them.")


def _bottleneck(answer):
    k = as_int(answer)
    if k == 16:
        return None
    if k > 16:
        return (f"W₁W₂ is 768 × 768, but its rank cannot reach {k}: everything it produces passes through the "
                "middle. What does property 2 of chapter 1 say?")
    return (f"rank {k} is possible, but not the largest: what is the largest rank each of W₁ and W₂ can have, and "
            "what does that allow for their product?")


bottleneck_rank = Exercise(
    "3.2", "the rank of a linear bottleneck", _bottleneck,
    hints=["Write the two layers as one: x ↦ (x W₁) W₂ = x (W₁W₂). What are the shapes of W₁ and W₂?",
           "W₁ is 768 × 16 and W₂ is 16 × 768. Chapter 1's property 2 bounds rank(W₁W₂) by their ranks — and "
           "what bounds those?"],
    solution="""
answer = 16
W₁ is (768, 16) and W₂ is (16, 768), so rank W₁, rank W₂ ≤ 16 and rank(W₁W₂) ≤ min(rank W₁, rank W₂) ≤ 16.
Random (or trained) factors reach it: W₁W₂ has rank 16. However large the layer looks — 768 × 768 — a
16-wide middle caps it at rank 16. LoRA's M N is exactly such a bottleneck.""",
    correct="that is the most the narrow middle lets through.")


_W_BLIND = np.array([[1.0, 0.0, 2.0], [0.0, 1.0, 1.0], [1.0, 1.0, 3.0], [2.0, -1.0, 3.0], [0.5, 0.5, 1.5]])


def _blind_spot(answer):
    plain = answer is None or isinstance(answer, (str, bytes))
    x = as_matrix_answer(answer if plain else np.atleast_2d(answer), "your input")
    if x.shape not in ((1, 5), (5, 1)):
        got = f"{x.shape[1]} numbers" if x.shape[0] == 1 else f"shape {x.shape}"
        return f"your x has {got}; the layer takes 5 inputs."
    x = x.reshape(5)
    size = np.linalg.norm(x)
    if size < 1e-8:
        return "x = 0 is sent to zero by every layer; find a nonzero x."
    y = x @ _W_BLIND
    if np.linalg.norm(y) > 1e-8 * size * np.linalg.norm(_W_BLIND):
        return (f"x @ W = {np.round(y, 4).tolist()}, not zero: the layer sees this input. In y = xW, which "
                "combination of W's rows would cancel?")
    return None


blind_spot = Exercise(
    "3.3", "an input change the layer cannot see", _blind_spot,
    hints=["y = xW is a combination of the rows of W, with the entries of x as coefficients.",
           "So you need a combination of W's five rows that gives zero. W has rank 2 (check!), so there are "
           "several; look for rows that are sums of others.",
           "Row 3 of W is row 1 + row 2."],
    solution="""
x = np.array([1.0, 1.0, -1.0, 0.0, 0.0])    # row 1 + row 2 − row 3 = 0
answer = x
x @ W = 0, and so (x₀ + t·x) @ W = x₀ @ W for every t: the layer cannot tell these inputs apart.
Numerically: U, s, Vt = np.linalg.svd(W.T); x = Vt[-1] (W's rank is 2, so Vt[2:] are all blind spots).""",
    correct="a direction of inputs that this layer ignores completely.",
    data={"W": _W_BLIND})


def _fused_pair():
    import torch
    import torch.nn as nn
    g = torch.Generator().manual_seed(0)
    first, second = nn.Linear(3, 6), nn.Linear(6, 2)
    with torch.no_grad():
        for p in (*first.parameters(), *second.parameters()):
            p.copy_(torch.randn(p.shape, generator=g))
    return first, second


def _fused(layer):
    import torch
    import torch.nn as nn
    if not isinstance(layer, nn.Linear):
        raise Wrong(f"answer with an nn.Linear; got {describe(layer)} ({type(layer).__name__}).")
    if (layer.in_features, layer.out_features) != (3, 2):
        return f"your layer is nn.Linear({layer.in_features}, {layer.out_features}); the pair maps 3 inputs to 2."
    if layer.bias is None:
        return "your layer has no bias; the pair's output at x = 0 is not zero."
    first, second = _fused_pair()
    X = torch.tensor(np.random.default_rng(0).standard_normal((5, 3)), dtype=torch.float32)
    with torch.no_grad():
        want, got = second(first(X)), layer(X.to(layer.weight.dtype)).float()
        zero = torch.zeros(1, 3)
        want0, got0 = second(first(zero)), layer(zero.to(layer.weight.dtype)).float()
    if torch.allclose(got, want, atol=1e-4):
        return None
    if not torch.allclose(got0, want0, atol=1e-4):
        return "at x = 0 your layer gives something else than the pair: what does the pair output when x = 0?"
    return ("your layer agrees with the pair at x = 0 but not elsewhere: its weight is off. Which matrix does the "
            "pair multiply x by, in the course's layout, and how does nn.Linear store it?")


fused_layer = Exercise(
    "3.4", "two PyTorch layers as one", _fused,
    hints=["In the course's layout, first is x ↦ x W₁ + b₁ with W₁ = first.weight.T, and second likewise.",
           "Write (x W₁ + b₁) W₂ + b₂ as x W + b. Then nn.Linear stores weight = Wᵀ.",
           "W = W₁W₂, so weight = (W₁W₂)ᵀ = W₂ᵀW₁ᵀ = second.weight @ first.weight."],
    solution="""
one = nn.Linear(3, 2)
with torch.no_grad():
    one.weight.copy_(second.weight @ first.weight)                # (W₁W₂)ᵀ = W₂ᵀW₁ᵀ, (2, 3)
    one.bias.copy_(second.weight @ first.bias + second.bias)      # b₁W₂ + b₂
answer = one
Without a nonlinearity between them, two layers are one layer: this is why networks put tanh (or GELU) there.""",
    correct="one layer that computes exactly what the pair computes.",
    data={"layers": _fused_pair})
