"""Exercises of chapter 2 — low-rank factorization."""
from __future__ import annotations

from functools import lru_cache

import numpy as np

from ..svd import SVDFactorizer
from . import Exercise, Wrong, as_int, as_matrix_answer, call, describe

__all__ = ["storage_count", "factor_it", "smallest_rank", "compress", "break_even"]


def _storage(answer):
    k = as_int(answer)
    m, n, r = 768, 3072, 16
    if k == r * (m + n):
        return None
    known = {m * n: "that is the full matrix (m·n numbers), not its factors",
             r * m * n: "that multiplies all three sizes; count the entries of M and of N separately, then add",
             r * m: "that counts only M (m × r); N (r × n) must be stored too",
             r * n: "that counts only N (r × n); M (m × r) must be stored too"}
    return known.get(k, f"{k:,} is not it: M is m × r and N is r × n; add up their entries") + "."


storage_count = Exercise(
    "2.1", "the storage of a rank-16 factorization", _storage,
    hints=["M has shape (768, 16) and N has shape (16, 3072).",
           "Count the entries of each factor and add them: 768·16 + 16·3072."],
    solution="""
answer = 16 * (768 + 3072)   # = 61,440 numbers instead of 768 · 3072 = 2,359,296 (2.6 %)
This 768 × 3072 shape is a real one: GPT-2 small's MLP weight. Chapter 4 stores LoRA updates exactly like this.""",
    correct="a small share of the full matrix's numbers.")


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
    if gap > 1e-5 * np.abs(_C).max():   # float32 factors are fine
        return f"M @ N differs from C: the largest entry difference is {gap:.3g}."
    return None


factor_it = Exercise(
    "2.2", "factor C into M (3×2) and N (2×3)", _factor_it,
    hints=["Row 2 of C is twice row 1, so C has rank at most 2 (exactly 2: rows 1 and 3 are independent). "
           "Its columns: which two are independent?",
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
        return (f"rank {r} gets below 5 % (error {f.error(r):.2%}), but so does a smaller rank: look for the "
                "smallest one — f.errors() has them all.")
    return None


smallest_rank = Exercise(
    "2.3", "the smallest rank with error below 5 %", _smallest,
    hints=["f.errors() gives the relative error at every rank 1, 2, …, 512 (index 0 is rank 1).",
           "np.argmax(f.errors() < 0.05) is the index of the first rank below 5 %; add 1 to get the rank."],
    solution="""
errors = f.errors()                       # errors[i] is the error at rank i + 1
answer = int(np.argmax(errors < 0.05)) + 1""",
    correct="that is the smallest rank whose reconstruction error is below 5 %.")


_COMPRESS_CASES = [((40, 30), 0.2, 1), ((25, 60), 0.5, 2), ((50, 50), 0.04, 3), ((12, 80), 0.9, 4),
                   ((30, 20), 1.0, 5), ((50, 50), 0.01, 6)]    # the last: a budget below rank 1, so rank 1


def _budget_rank(m, n, share):
    """The largest r with r·(m + n) ≤ share·m·n (at least 1, at most min(m, n))."""
    return max(1, min(min(m, n), int(share * m * n // (m + n))))


def _compress(fn):
    for (m, n), share, seed in _COMPRESS_CASES:
        A = np.random.default_rng(seed).standard_normal((m, n))
        shown = f"A of shape {(m, n)}, share={share}"
        out = call(fn, (A.copy(), share), "compress", shown)
        if not isinstance(out, (tuple, list)) or len(out) != 2:
            return f"compress({shown}) should return a pair (M, N); got {describe(out)}."
        M, N = as_matrix_answer(out[0], "M"), as_matrix_answer(out[1], "N")
        if M.shape[0] != m or N.shape[1] != n or M.shape[1] != N.shape[0]:
            return f"compress({shown}) returned M {M.shape} and N {N.shape}; M @ N must have A's shape {(m, n)}."
        r, best_r = M.shape[1], _budget_rank(m, n, share)
        if r > best_r:
            return (f"compress({shown}): rank {r} stores {r * (m + n):,} numbers, more than {share:.0%} of "
                    f"{m * n:,}.")
        if r < best_r:
            return f"compress({shown}): rank {r} fits the budget, but a larger rank would too — use it."
        s = np.linalg.svd(A, compute_uv=False)
        best = np.sqrt((s[r:] ** 2).sum())
        err = np.linalg.norm(A - M @ N)
        if err > best + 1e-5 * np.linalg.norm(A):
            return (f"compress({shown}): ‖A − MN‖ = {err:.4f}, but the best rank-{r} approximation has error "
                    f"{best:.4f}. Is MN the sum of the {r} strongest layers σᵢuᵢvᵢᵀ?")
    return None


compress = Exercise(
    "2.4", "compress to a storage budget", _compress,
    hints=["Two steps: find the largest rank r whose factors fit in the budget, then take the best rank-r "
           "approximation.",
           "The factors store r·(m + n) numbers and the budget is share·m·n, so r = ⌊share·m·n / (m + n)⌋ "
           "(but at least 1 and at most min(m, n)).",
           "Then M, N = low_rank_approx(A, r) — or the truncated SVD of section 4."],
    solution="""
def compress(A, share):
    m, n = A.shape
    r = max(1, min(min(m, n), int(share * m * n // (m + n))))
    return low_rank_approx(A, r)     # or: U, s, Vt = svd(A); U[:, :r] * s[:r], Vt[:r]""",
    correct="compress finds the largest rank within every budget and the best approximation at that rank.")


def _break_even(answer):
    k = as_int(answer)
    m, n = 300, 500
    if k * (m + n) >= m * n:
        return f"at r = {k} the factors store {k * (m + n):,} numbers — not fewer than the {m * n:,} of A."
    if (k + 1) * (m + n) < m * n:
        return f"a larger rank than {k} still stores fewer numbers than A: look for the largest."
    return None


break_even = Exercise(
    "2.5", "the largest rank that still saves storage", _break_even,
    hints=["The factors store r·(m + n) numbers; the matrix stores m·n.",
           "Solve r·(300 + 500) < 300·500 for the largest whole number r."],
    solution="""
answer = 187   # 187 · 800 = 149,600 < 150,000, but 188 · 800 = 150,400 > 150,000
In general the break-even rank is m·n / (m + n): half the smaller side when the matrix is square.""",
    correct="that is the last rank at which M and N store fewer numbers than the matrix itself.")
