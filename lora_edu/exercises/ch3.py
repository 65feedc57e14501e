"""Exercises of chapter 3 — linear layers as matrices."""
from __future__ import annotations

import numpy as np

from . import Exercise, Wrong, as_int, as_matrix_answer, call, describe

__all__ = ["layer_shapes", "param_count", "mlp_forward", "to_torch"]


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


def _params(answer):
    k = as_int(answer)
    weights = 784 * 256 + 256 * 10
    if k == weights + 256 + 10:
        return None
    if k == weights:
        return f"{k:,} counts only the weights; every neuron also has a bias."
    if k == 784 * 256 + 256:
        return "that is the first layer only; the second layer (256 → 10) has parameters too."
    return f"{k:,} is not it: count in·out weights plus out biases, for each of the two layers."


param_count = Exercise(
    "3.2", "count the parameters of an MLP", _params,
    hints=["A layer with n_in inputs and n_out neurons has n_in·n_out weights and n_out biases.",
           "Two layers: 784 → 256 and 256 → 10. Add them up."],
    solution="""
answer = 784 * 256 + 256 + 256 * 10 + 10     # = 203,530""",
    correct="the weights and the biases of both layers, counted.")


_FORWARD_CASES = [(4, 3, 6, 1, 0), (1, 5, 2, 3, 1), (7, 2, 8, 4, 2)]


def _forward(fn):
    for B, d_in, hidden, d_out, seed in _FORWARD_CASES:
        rng = np.random.default_rng(seed)
        X, W1, b1 = rng.standard_normal((B, d_in)), rng.standard_normal((d_in, hidden)), rng.standard_normal(hidden)
        W2, b2 = rng.standard_normal((hidden, d_out)), rng.standard_normal(d_out)
        shown = f"X {X.shape}, W1 {W1.shape}, b1 {b1.shape}, W2 {W2.shape}, b2 {b2.shape}"
        got = as_matrix_answer(call(fn, (X, W1, b1, W2, b2), "mlp_forward", shown), "the output")
        want = np.tanh(X @ W1 + b1) @ W2 + b2
        if got.shape != want.shape:
            return f"mlp_forward({shown}) returned shape {got.shape}; expected (batch, out) = {want.shape}."
        if not np.allclose(got, want, atol=1e-6):
            if np.allclose(got, (X @ W1 + b1) @ W2 + b2, atol=1e-6):
                return "the output is right without the tanh: apply it to the hidden layer."
            return f"mlp_forward({shown}) differs from tanh(X @ W1 + b1) @ W2 + b2."
    return None


mlp_forward = Exercise(
    "3.3", "the forward pass of a two-layer network", _forward,
    hints=["One line per layer: H = tanh(X @ W1 + b1), then Y = H @ W2 + b2.",
           "The bias vector broadcasts over the rows of the batch: X @ W1 has shape (batch, hidden) and b1 (hidden,)."],
    solution="""
def mlp_forward(X, W1, b1, W2, b2):
    H = np.tanh(X @ W1 + b1)     # (batch, hidden)
    return H @ W2 + b2           # (batch, out)""",
    correct="mlp_forward matches the network on every batch, shape and layer size tried.")


_W = np.arange(18, dtype=float).reshape(3, 6) / 10 - 0.8
_b = np.linspace(-1, 1, 6)


def _to_torch(layer):
    import torch
    import torch.nn as nn
    if not isinstance(layer, nn.Linear):
        raise Wrong(f"answer with an nn.Linear; got {describe(layer)} ({type(layer).__name__}).")
    if (layer.in_features, layer.out_features) != (3, 6):
        return f"your layer is nn.Linear({layer.in_features}, {layer.out_features}); W maps 3 inputs to 6 neurons."
    if layer.bias is None:
        return "your layer has no bias; create it with bias=True (the default)."
    if tuple(layer.weight.shape) != (6, 3) or tuple(layer.bias.shape) != (6,):
        return (f"your layer's weight has shape {tuple(layer.weight.shape)} and its bias {tuple(layer.bias.shape)}; "
                "nn.Linear(3, 6) has weight (6, 3) and bias (6,).")
    weight = layer.weight.detach().double().numpy()
    X = np.random.default_rng(0).standard_normal((5, 3))
    with torch.no_grad():
        got = layer(torch.tensor(X, dtype=layer.weight.dtype)).double().numpy()
    if not np.allclose(got, X @ _W + _b, atol=1e-5):
        if not np.allclose(weight, _W.T, atol=1e-6):
            return ("layer.weight does not hold what it should: nn.Linear computes x @ weight.T + bias. What must "
                    "weight be for that to equal x @ W?")
        return "the weight is right, but the bias differs from b."
    return None


to_torch = Exercise(
    "3.4", "the same layer in PyTorch", _to_torch,
    hints=["nn.Linear(3, 6) has weight of shape (6, 3) and bias of shape (6,).",
           "Copy inside torch.no_grad(): layer.weight.copy_(torch.tensor(W.T)); layer.bias.copy_(torch.tensor(b))."],
    solution="""
layer = nn.Linear(3, 6)
with torch.no_grad():
    layer.weight.copy_(torch.tensor(W.T))   # PyTorch stores Wᵀ
    layer.bias.copy_(torch.tensor(b))""",
    correct="your layer computes x @ W + b for every input tried.",
    data={"W": _W, "b": _b})
