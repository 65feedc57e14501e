"""Exercises of chapter 2 — low-rank factorization."""
from __future__ import annotations

from functools import lru_cache

import numpy as np

from ..svd import SVDFactorizer
from . import Exercise, Wrong, as_int, as_matrix_answer, call, describe

__all__ = ["storage_count", "factor_it", "smallest_rank", "best_rank_r", "break_even"]


def _storage(answer):
    k = as_int(answer)
    m, n, r = 768, 3072, 16
    if k == r * (m + n):
        return None
    known = {m * n: "that is the full matrix (m·n numbers), not its factors",
             r * m * n: "that multiplies all three sizes; count the entries of M and of N separately, then add",
             r * m: "that counts only M (m × r); N (r × n) must be stored too",
             r * n: "that counts only N (r × n); M (m × r) must be stored too"}
    return known.get(k, f"{k:,} is not it. M is m × r and N is r × n: how many entries do they hold together?") + "."


storage_count = Exercise(
    "2.1", "the storage of a rank-16 factorization", _storage,
    hints=["M has shape (768, 16) and N has shape (16, 3072).",
           "Count the entries of each factor and add them: 768·16 + 16·3072."],
    solution="""
answer = 16 * (768 + 3072)   # = 61,440 numbers instead of 768 · 3072 = 2,359,296 (2.6 %)
This 768 × 3072 shape is a real one: GPT-2 small's MLP weight. Chapter 4 stores LoRA updates exactly like this.""",
    correct="r·(m + n) = 16·(768 + 3072) = 61,440 numbers, 2.6 % of the full matrix.")


_C = np.array([[2, 1, 3], [4, 2, 6], [1, 1, 1]])


def _factor_it(answer):
    if not isinstance(answer, (tuple, list)) or len(answer) != 2:
        raise Wrong(f"answer with a pair (M, N); got {describe(answer)}.")
    M, N = as_matrix_answer(answer[0], "M"), as_matrix_answer(answer[1], "N")
    if M.shape != (3, 2):
        return f"M has shape {M.shape}; expected (m, r) = (3, 2)."
    if N.shape != (2, 3):
        return f"N has shape {N.shape}; expected (r, n) = (2, 3)."
    gap = float(np.abs(M @ N - _C).max())
    if gap > 1e-9:
        return f"M @ N differs from C: the largest entry difference is {gap:.3g}."
    return None


factor_it = Exercise(
    "2.2", "factor C into M (3×2) and N (2×3)", _factor_it,
    hints=["Row 2 of C is twice row 1, so C has rank 2. Its columns: which two are independent?",
           "Take M = the first two columns of C. Then write column 3 as a combination of them.",
           "Column 3 = 2·column 1 − column 2 (check: 2·(2, 4, 1) − (1, 2, 1) = (3, 6, 1))."],
    solution="""
M = C[:, :2]                      # two independent columns of C, shape (3, 2)
N = np.array([[1, 0,  2],         # column j of C = N[0, j]·col₁ + N[1, j]·col₂
              [0, 1, -1]])
answer = (M, N)
Or, numerically: M, N = rank_factorize(C).""",
    correct="M (3×2) @ N (2×3) reproduces C.",
    data={"C": _C})


@lru_cache(maxsize=1)
def _photo_factorizer():
    from ..data import photo
    return SVDFactorizer(photo())


def _smallest(answer):
    f = _photo_factorizer()
    r = as_int(answer, "the rank")
    if not 1 <= r <= f.max_rank:
        return f"the rank must be between 1 and {f.max_rank}; got {r}."
    if f.error(r) >= 0.05:
        return f"at rank {r} the relative error is {f.error(r):.2%}, still not below 5 %."
    if r > 1 and f.error(r - 1) < 0.05:
        return f"rank {r - 1} already has error {f.error(r - 1):.2%}, below 5 %: look for the smallest such rank."
    return None


smallest_rank = Exercise(
    "2.3", "the smallest rank with error below 5 %", _smallest,
    hints=["f.errors() gives the relative error at every rank 1, 2, …, 512 (index 0 is rank 1).",
           "np.argmax(f.errors() < 0.05) is the index of the first rank below 5 %; add 1 to get the rank."],
    solution="""
errors = f.errors()                       # errors[i] is the error at rank i + 1
answer = int(np.argmax(errors < 0.05)) + 1""",
    correct="that is the smallest rank whose reconstruction error is below 5 %.")


_SVD_CASES = [((6, 4), 2, 1), ((4, 7), 3, 2), ((10, 10), 1, 3), ((8, 5), 5, 4), ((3, 9), 2, 5)]


def _best_rank_r(fn):
    for (m, n), r, seed in _SVD_CASES:
        A = np.random.default_rng(seed).standard_normal((m, n))
        out = call(fn, (A.copy(), r), f"best_rank_r(A of shape {(m, n)}, r={r})")
        if not isinstance(out, (tuple, list)) or len(out) != 2:
            return f"best_rank_r(A of shape {(m, n)}, {r}) should return a pair (M, N); got {describe(out)}."
        M, N = as_matrix_answer(out[0], "M"), as_matrix_answer(out[1], "N")
        if M.shape != (m, r) or N.shape != (r, n):
            return (f"for A of shape {(m, n)} and r = {r}, M and N have shapes {M.shape} and {N.shape}; "
                    f"expected (m, r) = {(m, r)} and (r, n) = {(r, n)}.")
        s = np.linalg.svd(A, compute_uv=False)
        best = np.sqrt((s[r:] ** 2).sum())
        err = np.linalg.norm(A - M @ N)
        if err > best * (1 + 1e-6) + 1e-9:
            return (f"for a random A of shape {(m, n)} and r = {r}, ‖A − MN‖ = {err:.4f}, but the best possible "
                    f"is {best:.4f}. Keep the r largest singular values.")
    return None


best_rank_r = Exercise(
    "2.4", "the truncated SVD", _best_rank_r,
    hints=["np.linalg.svd(A, full_matrices=False) returns U, s, Vt with the singular values s in descending order.",
           "Keep the first r columns of U, the first r values of s and the first r rows of Vt.",
           "M = U[:, :r] * s[:r] scales each column of U_r by its singular value; N = Vt[:r]."],
    solution="""
def best_rank_r(A, r):
    U, s, Vt = np.linalg.svd(A, full_matrices=False)
    return U[:, :r] * s[:r], Vt[:r]""",
    correct="best_rank_r returns the right shapes and the optimal error on every test matrix.")


def _break_even(answer):
    k = as_int(answer)
    m, n = 100, 1000
    if k * (m + n) >= m * n:
        return f"at r = {k} the factors store {k * (m + n):,} numbers — not fewer than the {m * n:,} of A."
    if (k + 1) * (m + n) < m * n:
        return f"at r = {k + 1} the factors still store fewer numbers ({(k + 1) * (m + n):,} < {m * n:,})."
    return None


break_even = Exercise(
    "2.5", "the largest rank that still saves storage", _break_even,
    hints=["The factors store r·(m + n) numbers; the matrix stores m·n.",
           "Solve r·(100 + 1000) < 100·1000 for the largest whole number r."],
    solution="""
answer = 90   # 90 · 1100 = 99,000 < 100,000, but 91 · 1100 = 100,100 > 100,000
In general the break-even rank is m·n / (m + n): half the smaller side when the matrix is square.""",
    correct="r = 90 is the last rank at which M and N store fewer numbers than the 100 × 1000 matrix.")
