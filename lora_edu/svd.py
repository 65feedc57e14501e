"""Low-rank factorization with the SVD (chapter 2): A (m, n) ≈ M (m, r) @ N (r, n).

`rank_factorize` is exact; `low_rank_approx` is the best rank-r approximation (Eckart–Young), randomized when r
is small; `SVDFactorizer` decomposes once so that a slider can ask for any rank instantly.
"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np

from ._checks import as_matrix, check_int, check_rank, check_seed, unit_scale
from .rank import resolve_tol

__all__ = ["Storage", "storage", "relative_error", "rank_factorize", "low_rank_approx", "SVDFactorizer"]


class Storage(NamedTuple):
    """Numbers kept by a rank-r factorization of an (m, n) matrix, and their share of m·n."""
    numbers: int
    share: float


def storage(m: int, n: int, r: int) -> Storage:
    """Storage of M (m, r) and N (r, n): r·(m + n) numbers instead of m·n."""
    m, n = check_int(m, "m", 1), check_int(n, "n", 1)
    r = check_int(r, "r", 0, min(m, n), where=f" for a {m}×{n} matrix")
    return Storage(r * (m + n), r * (m + n) / (m * n))


def relative_error(A, M, N) -> float:
    """‖A − M @ N‖_F / ‖A‖_F for A (m, n), M (m, r), N (r, n) (0 when both are zero, inf when only A is)."""
    A, M, N = as_matrix(A, "A"), as_matrix(M, "M"), as_matrix(N, "N")
    if M.shape[0] != A.shape[0] or N.shape[1] != A.shape[1] or M.shape[1] != N.shape[0]:
        raise ValueError(f"M @ N must have A's shape {A.shape}; got M {M.shape} @ N {N.shape}")
    A, M, N = (x.astype(np.float64) for x in (A, M, N))  # one dtype: a float32 M cannot hold c = 2^±1000
    A, c = unit_scale(A)                                 # ‖·‖ at unit scale: no overflow at 1e200
    norm = np.linalg.norm(A)
    diff = np.linalg.norm(A - (M / c) @ N)
    if norm == 0:
        return 0.0 if diff == 0 else float("inf")
    return float(diff / norm)


def rank_factorize(A, tol=None):
    """Exact rank factorization A (m, n) = M (m, r) @ N (r, n) with r = rank(A) at tolerance tol."""
    A = as_matrix(A)
    U, s, Vt = np.linalg.svd(A, full_matrices=False)
    r = int(np.count_nonzero(s > resolve_tol(s, A, tol)))
    return U[:, :r] * s[:r], Vt[:r]


def _full(A, r):
    U, s, Vt = np.linalg.svd(A, full_matrices=False)
    return U[:, :r] * s[:r], Vt[:r]


def _orth(Y):
    """Y (m, k) = Q (m, k) R (k, k), Q orthonormal: Cholesky QR twice (fast), Householder when ill-conditioned."""
    Q, R = Y, np.eye(Y.shape[1], dtype=Y.dtype)
    for _ in range(2):
        try:
            L = np.linalg.cholesky(Q.T @ Q)
        except np.linalg.LinAlgError:
            return np.linalg.qr(Y)
        d = np.abs(np.diag(L))
        if d.min() <= 1e-5 * d.max():  # cond(Q) > ~1e5: Cholesky QR would lose orthogonality
            return np.linalg.qr(Y)
        Linv = np.linalg.inv(L)          # (k, k) lower triangular
        Q, R = Q @ Linv.T, L.T @ R
    return Q, R


def _energy(A) -> float:
    """‖A‖²_F, accumulated in float64."""
    return float(np.einsum("ij,ij->", A, A, dtype=np.float64))


def _power(A, r, Qt, slack, max_iter, min_iter=0):
    """Power iterations from Qt (n, k) until the captured energy stops growing -> (Qt, converged), converged None
    when the error is too small for A's dtype to judge (checked from iteration `min_iter` on).

    For an orthonormal Qt, the best rank-r approximation of A inside span(Qt) has
    error² = ‖A‖² − Σ top-r σ(A Qt)², and σ(A Qt) = σ(R) for A Qt = Q R: every iteration knows its error.
    The gains shrink about geometrically; we stop when the extrapolated remaining gain, gain·ρ/(1 − ρ), is below
    `slack` × error². ρ is the larger of the gains' own ratio and the rate theory gives, (σ_k / σ_r)⁴ from the
    current estimates (each iteration shrinks the angles to the top-r directions by (σ_k / σ_r)², and the energy
    missed goes with their squared sines): a fast-converging part can make the first gains fall steeply while a
    flat part of the spectrum is still converging slowly. A flat spectrum (ρ near 1) may not get there within
    max_iter: then converged is False.
    """
    total = _energy(A)
    floor = (50 if A.dtype == np.float32 else 10) * np.finfo(A.dtype).eps * total   # the rounding of `captured`
    captured, gains = None, []
    for it in range(max_iter):
        Q, R = _orth(A @ Qt)                                  # (m, k), (k, k)
        sv = np.linalg.svd(R, compute_uv=False).astype(np.float64)   # (k,) estimates of σ_1 .. σ_k, largest first
        new = float(np.sum(sv[:r] ** 2))
        err2 = max(total - new, 0.0)
        if slack * err2 < floor and it >= min_iter:           # the gains that matter are below the rounding: this
            return Qt, None                                   # dtype cannot tell converged from not
        if captured is not None:
            gains.append(max(new - captured, 0.0))
            if len(gains) >= 3:                               # two ratios: a flat spectrum's gains can fall, then rise
                g0, g1, g2 = gains[-3:]
                rate = (sv[-1] / sv[r - 1]) ** 4 if sv[r - 1] > 0 else 1.0
                rho = max(g1 / g0 if g0 > 0 else 0.0, g2 / g1 if g1 > 0 else 0.0, rate)
                if rho < 0.95 and max(g2 * rho / (1 - rho), g2) <= slack * err2:
                    return Qt, True
        captured = new
        Qt, _ = _orth(A.T @ Q)                                # (n, k): the next guess of the row space
    return Qt, False


def _randomized(A, r, seed, target=1.001, max_iter=40):
    """Randomized range finder + power iterations, stopped once the error is within `target` × optimal.

    The iterations run in float32 (twice as fast; the factors come from a float64 pass at the end). float32 sees the
    captured energy only to ~1e-7 of ‖A‖²: where the gains the stopping rule must judge are below that (a small
    tail), float64 power iterations take over from the float32 subspace, with the same rule.
    A spectrum too flat to converge within max_iter iterations gets the full SVD: the promise holds either way.
    """
    m, n = A.shape
    k = min(r + max(10, r), min(m, n))  # oversampling speeds convergence
    slack = 0.5 * (target ** 2 - 1)
    Qt, _ = _orth(np.random.default_rng(seed).standard_normal((n, k)).astype(np.float32))  # (n, k)
    Qt, converged = _power(A.astype(np.float32, copy=False), r, Qt, slack, max_iter)
    A64 = A.astype(np.float64, copy=False)
    Qt = _orth(Qt.astype(np.float64))[0]
    if converged is None:                                      # float64 from here: it can see the small tail
        Qt, converged = _power(A64, r, Qt, slack, max_iter, min_iter=2)   # at least two: float32's subspace is
        converged = converged is not False                     # only float32-accurate; None again: within rounding
    Q, R = _orth(A64 @ Qt)                                     # (m, k), (k, k)
    if not converged:
        return tuple(F.astype(A.dtype) for F in _full(A64, r))
    Ur, S, Vrt = np.linalg.svd(R)
    # A ≈ A Qt Qtᵀ = Q R Qtᵀ = (Q Ur) S (Qt Vr)ᵀ, truncated to r
    return ((Q @ Ur[:, :r]) * S[:r]).astype(A.dtype), (Qt @ Vrt[:r].T).T.astype(A.dtype)


def low_rank_approx(A, r: int, method: str = "auto", seed=0):
    """Best rank-r approximation A (m, n) ≈ M (m, r) @ N (r, n); method "auto", "full" or "randomized"."""
    A = as_matrix(A)
    r = check_rank(r, A.shape)
    if method not in ("auto", "full", "randomized"):
        raise ValueError(f"method must be 'auto', 'full' or 'randomized'; got {method!r}")
    seed = check_seed(seed, generator=True)
    if method == "auto":
        method = "randomized" if min(A.shape) >= 64 and 4 * (r + max(10, r // 2)) <= min(A.shape) else "full"
    B, c = unit_scale(A)                     # exact power-of-two scaling: float32 passes work at 1e-50 and 1e300
    M, N = _randomized(B, r, seed) if method == "randomized" else _full(B, r)
    return _rescaled(M, N, c)


def _rescaled(M, N, c: float):
    """(M·c, N) for factors of A / c; where M·c would overflow although M N·c does not (σ₁ above the largest float,
    entries near it), the power of two c is shared exactly between M and N instead."""
    with np.errstate(over="ignore"):
        big = M * M.dtype.type(c)
    if np.isfinite(big).all():
        return big, N
    e = int(np.frexp(c)[1]) - 1                                            # c = 2**e
    return M * M.dtype.type(np.ldexp(1.0, e - e // 2)), N * N.dtype.type(np.ldexp(1.0, e // 2))


class SVDFactorizer:
    """Decompose A (m, n) once; then any rank-r approximation, its error and its storage are cheap."""

    def __init__(self, A):
        self.A = as_matrix(A)
        self.shape = self.A.shape
        B, c = unit_scale(self.A)
        self.U, s, self.Vt = np.linalg.svd(B, full_matrices=False)          # (m, k), (k,), (k, n)
        self._unit, self._c = s, c
        with np.errstate(over="ignore"):                                    # σ above the largest float: inf, honestly
            self.s = s * s.dtype.type(c)
        s2 = s.astype(np.float64) ** 2                                      # at unit scale: no overflow
        total = s2.sum()
        # tail[r] = Σ_{i ≥ r} σ_i², so error(r) = sqrt(tail[r] / total) (Eckart–Young)
        tail = np.concatenate([np.cumsum(s2[::-1])[::-1], [0.0]])
        self._rel_errors = np.sqrt(np.clip(tail / total, 0, None)) if total > 0 else np.zeros_like(tail)

    @property
    def max_rank(self) -> int:
        """min(m, n): the largest rank a slider may ask for."""
        return min(self.shape)

    def factors(self, r: int):
        """M (m, r) = U_r Σ_r and N (r, n) = V_rᵀ (where U_r Σ_r would overflow, the scale is shared with N)."""
        r = check_rank(r, self.shape)
        return _rescaled(self.U[:, :r] * self._unit[:r], self.Vt[:r], self._c)

    def approx(self, r: int) -> np.ndarray:
        """The best rank-r approximation (m, n)."""
        M, N = self.factors(r)
        return M @ N

    def error(self, r: int) -> float:
        """Relative Frobenius error ‖A − A_r‖ / ‖A‖ = sqrt(Σ_{i>r} σ_i² / Σ σ_i²)."""
        return float(self._rel_errors[check_rank(r, self.shape)])

    def errors(self) -> np.ndarray:
        """Relative error for every rank r = 1 … min(m, n): shape (min(m, n),)."""
        return self._rel_errors[1:].copy()

    def stored(self, r: int) -> Storage:
        """Numbers kept by M and N, r·(m + n), and their share of m·n."""
        return storage(*self.shape, check_rank(r, self.shape))
