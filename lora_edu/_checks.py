"""Argument checks shared by the package: every public function fails early, saying what it got."""
from __future__ import annotations

import numbers
import os
from pathlib import Path

import numpy as np


def as_matrix(A, name: str = "A") -> np.ndarray:
    """A numpy array, list of lists or torch tensor -> finite float ndarray (m, n); float32 stays float32."""
    if hasattr(A, "detach") and hasattr(A, "cpu"):  # a torch tensor, without importing torch
        if getattr(A, "is_meta", False):
            raise ValueError(f"{name} is a tensor on the 'meta' device: it has a shape {tuple(A.shape)} but no values")
        A = A.detach().cpu()
        if str(getattr(A, "layout", "torch.strided")) != "torch.strided":   # sparse (COO, CSR, …): a matrix all the same
            A = A.to_dense()
        if A.is_complex():
            raise ValueError(f"{name} must be a real matrix; got a complex tensor of dtype {A.dtype}")
        if not A.is_floating_point():
            A = A.double()
        elif A.element_size() < 4:  # bf16 / fp16 have no numpy twin
            A = A.float()
        A = A.numpy()
    if isinstance(A, (str, bytes, dict, set)) or A is None:
        raise ValueError(f"{name} must be a 2-D numeric matrix (numpy array, nested list or torch tensor); "
                         f"got {type(A).__name__}")
    try:
        arr = np.asarray(A)
    except ValueError:  # ragged nested lists
        raise ValueError(f"{name} must be a 2-D numeric matrix with rows of equal length") from None
    if arr.dtype == object or arr.dtype.kind not in "biuf":
        what = "complex" if arr.dtype.kind == "c" else "non-numeric"
        raise ValueError(f"{name} must be a real numeric matrix; got {what} entries (dtype {arr.dtype})")
    if arr.ndim != 2:
        raise ValueError(f"{name} must be 2-D (m, n); got {arr.ndim}-D with shape {arr.shape}")
    if arr.size == 0:
        raise ValueError(f"{name} must not be empty; got shape {arr.shape}")
    if arr.dtype not in (np.float32, np.float64):
        arr = arr.astype(np.float64)
    if not np.isfinite(arr).all():
        bad = "NaN" if np.isnan(arr).any() else "inf"
        raise ValueError(f"{name} contains {bad}; every entry must be finite")
    return arr


def as_vector(x, name: str) -> np.ndarray:
    """x as a non-empty 1-D float ndarray of finite numbers, or a ValueError naming it (complex is refused, not cast)."""
    try:
        v = None if np.iscomplexobj(x) else np.asarray(x, dtype=float)
    except (TypeError, ValueError):
        v = None
    if v is None or v.ndim != 1 or v.size == 0 or not np.isfinite(v).all():
        raise ValueError(f"{name} must be a non-empty 1-D sequence of finite numbers; got {x!r:.80}")
    return v


def check_ids(ids, name: str, vocab: int = 256) -> None:
    """A ValueError unless every token id in the tensor `ids` lies in [0, vocab) (an embedding, or bytes(), would
    fail on it without saying why, or wrap it silently)."""
    if ids.numel() == 0:
        return
    lo, hi = int(ids.min()), int(ids.max())
    if lo < 0 or hi >= vocab:
        raise ValueError(f"{name} holds token ids from {lo} to {hi}; expected ids in [0, vocab_size = {vocab})")


def unit_scale(A: np.ndarray) -> tuple[np.ndarray, float]:
    """(A / c, c) for A (m, n), c the power of two with max|A / c| in [1, 2): exact, and σ², AᵀA or ‖A‖² of A / c
    can neither overflow nor underflow, whether A's entries are 1e-300 or 1e300. The zero matrix gives (A, 1)."""
    top = float(np.abs(A).max())
    if top == 0:
        return A, 1.0
    c = float(np.ldexp(1.0, int(np.frexp(top)[1]) - 1))
    return A / A.dtype.type(c), c


def check_int(value, name: str, lo: int, hi: int | None = None, where: str = "") -> int:
    """An integer in [lo, hi] (hi inclusive; None: no upper bound), or a ValueError naming the range."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise ValueError(f"{name} must be an integer; got {value!r} ({type(value).__name__})")
    value = int(value)
    if value < lo or (hi is not None and value > hi):
        rng = f"{lo} ≤ {name}" + (f" ≤ {hi}" if hi is not None else "")
        raise ValueError(f"{name} = {value} is out of range{where}; expected {rng}")
    return value


def check_rank(r, A_shape, name: str = "r") -> int:
    """A rank 1 ≤ r ≤ min(m, n) for a matrix of shape (m, n)."""
    m, n = A_shape
    return check_int(r, name, 1, min(m, n), where=f" for a {m}×{n} matrix")


def check_seed(seed, name: str = "seed", generator: bool = False):
    """None, or an integer seed 0 ≤ seed < 2**63 (what both numpy and torch accept); a numpy Generator too when
    `generator`."""
    if seed is None or (generator and isinstance(seed, np.random.Generator)):
        return seed
    return check_int(seed, name, 0, 2 ** 63 - 1)


def check_bool(value, name: str) -> bool:
    """True or False (numpy's bool too), or a TypeError naming the argument."""
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name} must be True or False; got {value!r} ({type(value).__name__})")
    return bool(value)


def check_path(path, name: str = "path") -> Path:
    """A str or os.PathLike as a Path, or a TypeError naming the argument."""
    if not isinstance(path, (str, os.PathLike)) or path == "":
        raise TypeError(f"{name} must be a file or folder path (str or pathlib.Path); got {path!r}")
    return Path(path)


def check_module(model, name: str = "model"):
    """A torch nn.Module, or a TypeError naming the argument."""
    import torch.nn as nn
    if not isinstance(model, nn.Module):
        raise TypeError(f"{name} must be a torch nn.Module; got {type(model).__name__}")
    return model


def check_values(model, what: str) -> None:
    """A ValueError when a tensor of `model` is on the 'meta' device (a shape without values), which `what` needs."""
    import itertools
    for name, t in itertools.chain(model.named_parameters(), model.named_buffers()):
        if t.is_meta:
            raise ValueError(f"{what} needs the model's values, but {name or 'its weight'} is on the 'meta' device (a "
                             f"shape without values); give it weights first, e.g. model.to_empty(device='cpu') and "
                             f"load_state_dict")


def check_real(value, name: str, lo: float | None = None, hi: float | None = None,
               lo_open: bool = False, hi_open: bool = False) -> float:
    """A finite real number within [lo, hi] (open at an end with lo_open / hi_open), or a clear TypeError/ValueError."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a real number; got {value!r} ({type(value).__name__})")
    value = float(value)
    if not np.isfinite(value):
        raise ValueError(f"{name} must be finite; got {value}")
    if (lo is not None and (value < lo or (lo_open and value == lo))) or \
            (hi is not None and (value > hi or (hi_open and value == hi))):
        if hi is None:
            expected = f"{name} {'>' if lo_open else '≥'} {lo:g}"
        elif lo is None:
            expected = f"{name} {'<' if hi_open else '≤'} {hi:g}"
        else:
            expected = f"{name} in {'(' if lo_open else '['}{lo:g}, {hi:g}{')' if hi_open else ']'}"
        raise ValueError(f"{name} = {value} is out of range; expected {expected}")
    return value
