"""Exercises of chapter 2 — low-rank factorization."""
from __future__ import annotations

import numpy as np

from . import Exercise, Wrong, as_int, as_matrix_answer, as_number, call, describe

__all__ = ["factor_ranks", "factor_it", "ellipse_error", "compress", "break_even"]


def _factor_ranks(answer):
    if not isinstance(answer, (tuple, list)) or len(answer) != 2:
        raise Wrong(f"answer with a pair (smallest, largest); got {describe(answer)}.")
    lo, hi = (as_int(x, what) for x, what in zip(answer, ("the smallest rank", "the largest rank")))
    if lo > hi:
        return f"the smallest possible rank ({lo}) cannot exceed the largest ({hi})."
    if lo < 20:
        return (f"rank Y = {lo} is impossible: A = YZ has rank 20. What does property 2 (chapter 1) say about "
                "rank(YZ) and rank Y?")
    if lo > 20:
        return f"rank Y can be smaller than {lo}: try to build an example with A = YZ of rank 20."
    if hi > 30:
        return f"Y has only 30 columns, so its rank cannot be {hi}."
    if hi < 30:
        return (f"rank Y can be larger than {hi}: what is the most Y's shape allows — and can Z then still keep "
                "the product at rank 20?")
    return None


factor_ranks = Exercise(
    "2.1", "the ranks a factor can have", _factor_ranks,
    hints=["Two bounds: one from the shape of Y, one from property 2 of chapter 1 applied to A = YZ.",
           "rank(YZ) ≤ rank Y, and rank Y ≤ the number of Y's columns. Are both bounds reached by some Y, Z?",
           "For the larger bound, let Y have full column rank and let Z (30 × 80) have rank 20."],
    solution="""
answer = (20, 30)
Smallest: 20 = rank(YZ) ≤ min(rank Y, rank Z) (property 2), so rank Y ≥ 20 — reached when Y = [C, 0]
holds C (100 × 20, rank 20) and ten zero columns. Largest: Y has 30 columns, so rank Y ≤ 30 — reached by a
Y of full column rank with a Z of rank 20. With an inner dimension of exactly 20 the two bounds meet: both
factors of a rank factorization have full rank.""",
    correct="both bounds, and both reached.")


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


def _ellipse_error(answer):
    e = as_number(answer, "the relative error")
    want = np.sqrt(1 / 10)                                      # σ = (3, 1): sqrt(σ₂² / (σ₁² + σ₂²))
    if abs(e - want) <= 0.005:                                  # 0.32 (rounded) is right too
        return None
    if not 0 <= e <= 1:
        return f"a relative error of the best approximation lies between 0 and 1; got {e:.4g}."
    if abs(e - 1 / 3) < 1e-3:
        return "that compares σ₂ with σ₁ only; the relative error divides by the norm of the whole matrix."
    if abs(e - 1 / 10) < 1e-4 or abs(e - 1 / 9) < 1e-4:
        return "that is a ratio of energies (squared norms); the relative error is a ratio of norms."
    return (f"{e:.4g} is not it. Which layer does the best rank-1 approximation drop, and how large is it "
            "compared with the whole matrix, both measured in the Frobenius norm?")


ellipse_error = Exercise(
    "2.3", "the error you can read off an ellipse", _ellipse_error,
    hints=["The semi-axes of the ellipse are the matrix's singular values.",
           "The best rank-1 approximation keeps the layer with σ₁ and drops the one with σ₂. Section 4 gives its "
           "relative error in terms of the singular values."],
    solution="""
answer = np.sqrt(1 / (3**2 + 1**2))      # ≈ 0.316
The semi-axes are σ₁ = 3 and σ₂ = 1. The best rank-1 approximation drops σ₂u₂v₂ᵀ, whose energy is 1 of the
total 3² + 1² = 10, so the relative error is sqrt(1/10). The flatter the ellipse, the smaller that error.""",
    correct="that is what the best rank-1 approximation misses, read off the ellipse alone.")


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
                    f"{best:.4f}. Is MN the sum of the {r} strongest layers σᵢuᵢvᵢᵀ? (An approximate SVD with a fixed "
                    "number of iterations comes close, but not to the best.)")
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
In general the break-even rank is m·n / (m + n): for a square n × n matrix, n / 2.""",
    correct="that is the last rank at which M and N store fewer numbers than the matrix itself.")
