"""Rank: how much independent information a matrix holds (chapter 1).

Numerical rank counts singular values above a tolerance; exact rank comes from row reduction with fractions.
Every function accepts a numpy array, a nested list or a torch tensor of shape (m, n).
"""
from __future__ import annotations

import numbers
from dataclasses import dataclass
from fractions import Fraction

import numpy as np

from ._checks import as_matrix, as_vector, check_bool, check_int, check_real, check_seed, unit_scale

__all__ = ["singular_values", "default_tol", "matrix_rank", "is_full_rank", "effective_rank", "energy_share",
           "spectrum_summary", "rank_by_elimination", "Step", "random_low_rank"]


def _unit_spectrum(A: np.ndarray) -> tuple[np.ndarray, float]:
    """(σ(A) / c, c) for a checked A (m, n): the singular values of A / c (`unit_scale`), safe at any scale."""
    B, c = unit_scale(A)
    return np.linalg.svd(B, compute_uv=False), c


def singular_values(A) -> np.ndarray:
    """Singular values of A (m, n), descending: shape (min(m, n),); computed at unit scale, so only a σ beyond the
    float range itself is inf."""
    s, c = _unit_spectrum(as_matrix(A))
    with np.errstate(over="ignore"):
        return s * s.dtype.type(c)


def resolve_tol(s, A: np.ndarray, tol=None) -> float:
    """The tolerance for A (m, n) with singular values s: tol if given (checked), else σ_max · max(m, n) · eps."""
    if tol is None:
        return float(s[0] * (max(A.shape) * np.finfo(A.dtype).eps))
    return check_real(tol, "tol", lo=0.0)


def default_tol(A) -> float:
    """numpy's tolerance rule for A (m, n): σ_max · max(m, n) · eps(dtype of A)."""
    A = as_matrix(A)
    return resolve_tol(singular_values(A), A)


def matrix_rank(A, tol=None) -> int:
    """Numerical rank of A (m, n): how many singular values exceed tol (default: `default_tol(A)`)."""
    A = as_matrix(A)
    s, c = _unit_spectrum(A)                   # σ / c, and the tolerance in the same units
    t = resolve_tol(s, A) if tol is None else resolve_tol(s, A, tol) / c
    return int(np.count_nonzero(s > t))


def is_full_rank(A, tol=None) -> bool:
    """True when rank(A) = min(m, n) for A (m, n)."""
    A = as_matrix(A)
    return matrix_rank(A, tol) == min(A.shape)


def _held(s2: np.ndarray) -> np.ndarray:
    """Share of Σσ² held by the top 1, 2, … singular values, from σ² (n,) sorted largest first, not all zero."""
    return np.cumsum(s2) / s2.sum()


def _directions(held: np.ndarray, energy: float) -> int:
    """Fewest top directions whose held share reaches `energy` (the last share is 1 up to rounding)."""
    return int(min(np.searchsorted(held, energy * (1 - 1e-12)) + 1, len(held)))


def effective_rank(A, energy: float = 0.9) -> int:
    """Smallest r whose top r singular values hold `energy` of ‖A‖²_F = Σσ²; 0 for the zero matrix."""
    energy = check_real(energy, "energy", lo=0.0, hi=1.0, lo_open=True)
    s2 = _unit_spectrum(as_matrix(A))[0].astype(np.float64) ** 2
    return _directions(_held(s2), energy) if s2.sum() > 0 else 0


def energy_share(A, k: int) -> float:
    """Share of ‖A‖²_F = Σσ² held by the top k singular values of A (m, n): 1.0 at k = min(m, n)."""
    s2 = _unit_spectrum(as_matrix(A))[0].astype(np.float64) ** 2
    k = check_int(k, "k", 1, len(s2), where=f" for a matrix with {len(s2)} singular values")
    return float(_held(s2)[k - 1]) if s2.sum() > 0 else 0.0


def spectrum_summary(s, k: int = 8, energy: float = 0.9) -> tuple[float, int]:
    """(energy_share, effective_rank) read off singular values s (n,) instead of a matrix: (top-k share, count)."""
    s = np.abs(as_vector(s, "s"))
    if s.max() == 0:
        raise ValueError(f"s must be singular values that are not all zero; got {s!r:.80}")
    s2 = np.sort(np.square(s / s.max()))[::-1]                         # shares do not depend on the scale
    k = check_int(k, "k", 1, s2.size, where=f" for {s2.size} singular values")
    energy = check_real(energy, "energy", lo=0.0, hi=1.0, lo_open=True)
    held = _held(s2)
    return float(held[k - 1]), _directions(held, energy)


@dataclass(frozen=True)
class Step:
    """One row operation of Gaussian elimination and the matrix after it (entries are Fractions)."""
    action: str
    matrix: tuple

    def __str__(self) -> str:
        cells = [[str(x) for x in row] for row in self.matrix]
        width = max(len(c) for row in cells for c in row)
        rows = "\n".join("  [" + "  ".join(c.rjust(width) for c in row) + "]" for row in cells)
        return f"{self.action}\n{rows}"


def _as_fractions(A) -> list[list[Fraction]]:
    """Exact entries of a 2-D integer / rational matrix as Fractions (floats converted exactly)."""
    if hasattr(A, "detach"):
        if getattr(A, "is_meta", False):
            as_matrix(A)                                   # raises: a meta tensor has no values
        A = A.detach().cpu()
        if str(A.layout) != "torch.strided":               # sparse: read its values like any other matrix
            A = A.to_dense()
        A = A.tolist()
    elif isinstance(A, np.ndarray):
        as_matrix(A)  # shape, emptiness and finiteness checks
        A = A.tolist()
    if not isinstance(A, (list, tuple)) or not all(isinstance(row, (list, tuple)) for row in A):
        raise ValueError(f"A must be a 2-D matrix (nested list, numpy array or tensor); got {type(A).__name__}")
    if len(A) == 0 or len(A[0]) == 0:
        raise ValueError("A must not be empty")
    if any(len(row) != len(A[0]) for row in A):
        raise ValueError(f"A must have rows of equal length; got lengths {[len(row) for row in A]}")
    out = []
    for i, row in enumerate(A):
        new = []
        for j, x in enumerate(row):
            if isinstance(x, bool) or not isinstance(x, (numbers.Rational, float, np.floating)):
                raise ValueError(f"A[{i}][{j}] = {x!r} is not a number; exact rank needs integers or fractions")
            if isinstance(x, (float, np.floating)) and not np.isfinite(x):
                raise ValueError(f"A[{i}][{j}] is {x}; every entry must be finite")
            if isinstance(x, np.integer):
                x = int(x)                               # Fraction(np.int64) would keep numpy's wrapping int64
            new.append(Fraction(*x.as_integer_ratio()) if isinstance(x, np.floating) else Fraction(x))  # exact
        out.append(new)
    return out


def rank_by_elimination(A, steps: bool = False):
    """Exact rank of A (m, n) by row reduction in fractions; with steps=True, also the list of `Step`s."""
    steps = check_bool(steps, "steps")
    R = _as_fractions(A)
    m, n = len(R), len(R[0])
    log = [Step("start", tuple(map(tuple, R)))]
    rank = 0  # pivot row = number of pivots found so far
    for col in range(n):
        pivot = next((i for i in range(rank, m) if R[i][col] != 0), None)
        if pivot is None:
            continue  # no pivot in this column: it depends on the columns before it
        if pivot != rank:
            R[rank], R[pivot] = R[pivot], R[rank]
            log.append(Step(f"swap R{rank + 1} and R{pivot + 1}", tuple(map(tuple, R))))
        for i in range(rank + 1, m):
            f = R[i][col] / R[rank][col]
            if f != 0:
                R[i] = [a - f * b for a, b in zip(R[i], R[rank])]
                log.append(Step(f"R{i + 1} ← R{i + 1} − ({f})·R{rank + 1}", tuple(map(tuple, R))))
        rank += 1
        if rank == m:
            break
    return (rank, log) if steps else rank


def random_low_rank(m: int, n: int, r: int, seed=None) -> np.ndarray:
    """A random (m, n) float64 matrix of rank exactly r (U·diag(s)·Vᵀ, random U, V), entries of size ~1."""
    m = check_int(m, "m", 1)
    n = check_int(n, "n", 1)
    r = check_int(r, "r", 0, min(m, n), where=f" for a {m}×{n} matrix")
    rng = np.random.default_rng(check_seed(seed, generator=True))
    if m * n > 2 ** 31:
        raise ValueError(f"a {m}×{n} matrix has {m * n:,} entries ({8 * m * n / 2 ** 30:,.0f} GiB of float64); "
                         f"random_low_rank makes at most 2³¹ (16 GiB)")
    # Orthonormal factors and singular values within a factor 2 of each other keep the rank exactly r in
    # floating point too; the scale makes the mean squared entry about 1.
    U, _ = np.linalg.qr(rng.standard_normal((m, r)))
    V, _ = np.linalg.qr(rng.standard_normal((n, r)))
    s = np.sort(rng.uniform(1.0, 2.0, r))[::-1] * np.sqrt(m * n / max(r, 1)) / 1.5
    return (U * s) @ V.T
