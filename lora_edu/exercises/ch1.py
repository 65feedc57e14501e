"""Exercises of chapter 1 — matrix rank."""
from __future__ import annotations

import numpy as np

from ..rank import matrix_rank, random_low_rank

from . import Exercise, as_int, as_matrix_answer, as_number, call, describe

__all__ = ["rank_two", "predict_product_rank", "lose_rank", "window", "zero_row_sums"]


def _rank_two(answer):
    A = as_matrix_answer(answer)
    if A.shape != (4, 4):
        return f"your matrix has shape {A.shape}; expected (4, 4)."
    r = matrix_rank(A)
    if r != 2:
        return f"your matrix has rank {r}; the exercise asks for rank 2."
    return None


rank_two = Exercise(
    "1.1", "a 4×4 matrix of rank 2", _rank_two,
    hints=["Rank 2 means exactly two independent rows; the other two rows must be built from those two.",
           "Pick two rows that are not multiples of each other, e.g. (1, 0, 1, 0) and (0, 1, 0, 1). Make the "
           "third and fourth rows sums or multiples of them.",
           "np.array([[1, 0, 1, 0], [0, 1, 0, 1], [1, 1, 1, 1], [2, 3, 2, 3]]) — check: row 3 = row 1 + row 2, "
           "row 4 = 2·row 1 + 3·row 2."],
    solution="""
answer = np.array([[1, 0, 1, 0],
                   [0, 1, 0, 1],
                   [1, 1, 1, 1],     # row 1 + row 2
                   [2, 3, 2, 3]])    # 2·row 1 + 3·row 2
Two independent rows, and every other row is a combination of them: rank 2.
A product `M @ N` of a 4×2 and a 2×4 matrix, each of rank 2, works too (chapter 2's thin factors).""",
    correct="your 4×4 matrix has rank 2.")


def _predict(answer):
    k = as_int(answer)
    if k > 2:
        return f"rank(AB) cannot be {k}: property 2 gives an upper bound for it. What is that bound here?"
    if k < 2:
        return (f"rank(AB) does not drop to {k} here. Think about what multiplying by B — 3×5, of rank 3 — can lose "
                "of what A holds.")
    return None


predict_product_rank = Exercise(
    "1.2", "predict rank(AB)", _predict,
    hints=["Property 2 gives an upper bound. Is it reached?",
           "rank(AB) ≤ min(rank A, rank B) = 2. Can it be smaller? Think about what B does: it is 3×5 of rank 3.",
           "B's three rows are independent, so xB = 0 only for x = 0: no row of A is sent to zero, and "
           "independent rows of A stay independent."],
    solution="""
answer = 2
rank(AB) ≤ min(2, 3) = 2 by property 2. It cannot be smaller: B (3×5, rank 3) has independent rows, so
x @ B = 0 only when x = 0. A combination of AB's rows that vanishes, c @ (A @ B) = (c @ A) @ B = 0, forces
c @ A = 0 — the same dependences A already had. So AB has exactly as many independent rows as A: 2.""",
    correct="random matrices of these shapes and ranks will agree with you every time.")


def _lose_rank(answer):
    if not isinstance(answer, (tuple, list)) or len(answer) != 2:
        return f"answer with a pair (A, B); got {describe(answer)}."
    A, B = (as_matrix_answer(x, name) for x, name in zip(answer, ("A", "B")))
    for X, name in ((A, "A"), (B, "B")):
        if X.shape != (3, 3):
            return f"{name} has shape {X.shape}; expected (3, 3)."
        if (k := matrix_rank(X)) != 2:
            return f"{name} has rank {k}; the exercise asks for rank 2."
    k = matrix_rank(A @ B)
    if k >= 2:
        return (f"rank(AB) = {k}: nothing was lost. AB applies A to each column of B — "
                "which inputs does A send to zero, and do B's columns reach any of them?")
    return None


lose_rank = Exercise(
    "1.3", "a product that loses rank", _lose_rank,
    hints=["Column j of AB is A times column j of B: AB can only produce what A produces from B's columns.",
           "A of rank 2 sends one direction of inputs to zero — its null space. What if the plane that B's "
           "columns span contains that direction?",
           "Start from A = diag(1, 1, 0), whose null space is the line through (0, 0, 1). Now choose B of rank 2 "
           "with (0, 0, 1) among the directions its columns span."],
    solution="""
A = np.diag([1, 1, 0])                  # rank 2; its null space is the line through (0, 0, 1)
B = np.array([[1, 0, 0],
              [0, 0, 0],
              [0, 0, 1]])               # rank 2; its columns span the plane of (1, 0, 0) and (0, 0, 1)
answer = (A, B)
AB = A @ B = diag(1, 0, 0): the column (0, 0, 1) of B lies in A's null space and is lost, so rank(AB) = 1.
Multiplying loses rank exactly when the directions B produces meet the directions A sends to zero.""",
    correct="your product lost rank, as property 2 allows.")


_WINDOW_CASES = [(np.diag([5.0, 3.0, 1e-3]), 2), (np.diag([5.0, 3.0, 1e-3]), 3), (np.diag([5.0, 3.0, 1e-3]), 1),
                 (random_low_rank(6, 4, 2, seed=3) + 1e-8 * np.random.default_rng(4).standard_normal((6, 4)), 2),
                 (np.random.default_rng(5).standard_normal((3, 7)), 3),
                 (np.array([[2.0, 1.0], [1.0, 1.5]]), 1)]


def _window(fn):
    for M, r in _WINDOW_CASES:
        shown = f"a {M.shape[0]}×{M.shape[1]} matrix M, r={r}"
        got = call(fn, (M, r), "window", shown=shown)                 # call() hands it a copy
        if not isinstance(got, (tuple, list)) or len(got) != 2:
            return f"window({shown}) returned {describe(got)}; expected a pair (lo, hi)."
        lo, hi = (as_number(x, f"window({shown})'s {end}") for x, end in zip(got, ("lo", "hi")))
        if not 0 <= lo <= hi:
            return f"window({shown}) returned ({lo:.3g}, {hi:.3g}); expected 0 ≤ lo ≤ hi."
        s = np.linalg.svd(M, compute_uv=False)
        true_lo, true_hi = (s[r] if r < len(s) else 0.0), s[r - 1]
        for mine, true, end in ((lo, true_lo, "lo"), (hi, true_hi, "hi")):
            if abs(mine - true) <= 1e-7 * max(true, s[0] * 1e-9):            # rounding is not a wrong idea
                continue
            t = (mine + true) / 2                                   # a tolerance between the two ends
            k, inside = matrix_rank(M, tol=t), lo <= t < hi
            if inside and k != r:
                return f"for {shown}: at tol = {t:.3g}, inside your window, matrix_rank(M, tol) is {k}, not {r}."
            if not inside and k == r:
                return (f"for {shown}: at tol = {t:.3g}, outside your window, matrix_rank(M, tol) is still {r}: "
                        f"your window is too narrow at {end}.")
            return f"for {shown}: your window's {end} end is off; at tol = {t:.3g}, matrix_rank(M, tol) is {k}."
    return None


window = Exercise(
    "1.4", "the window of tolerances", _window,
    hints=["matrix_rank(M, tol=tol) counts the singular values strictly above tol.",
           "The rank is r when the r-th singular value is above tol and the (r + 1)-th is not. Which tolerances "
           "does that leave?",
           "lo and hi are two of M's singular values (numbered from 1, largest first); when r = min(m, n) there is "
           "no (r + 1)-th, and every tol from 0 up works."],
    solution="""
def window(M, r):
    s = singular_values(M)                  # σ₁ ≥ σ₂ ≥ … (numpy: s[0] is σ₁)
    lo = s[r] if r < len(s) else 0.0        # σ_(r+1): at or above it, that singular value no longer counts
    hi = s[r - 1]                           # σ_r: from it up, the r-th stops counting too
    return lo, hi
The rank counts σᵢ > tol, so it is r exactly when σ_(r+1) ≤ tol < σ_r. A wide window — like X's, between
about 3e-9 and 4 — means the rank is clear; a narrow one means it depends on the tolerance you pick.""",
    correct="window finds every tolerance that gives rank r, and no other, on every test matrix.",
    data={"X": random_low_rank(6, 6, 2, seed=11) + 1e-9 * np.random.default_rng(12).standard_normal((6, 6))})


def _zero_row_sums(answer):
    k = as_int(answer)
    if k == 4:
        return "if every row sums to zero, what do the four columns add up to? And what does that do to the rank?"
    if k > 4:
        return f"a 10×4 matrix has rank ≤ min(10, 4) = 4 (property 1), so it cannot be {k}."
    if k < 3:
        return (f"rank {k} is possible, but not the largest: look for more rows that each sum to zero and are "
                "independent of one another.")
    return None


zero_row_sums = Exercise(
    "1.5", "the largest rank when every row sums to zero", _zero_row_sums,
    hints=["Write 'every row sums to zero' as a statement about the columns.",
           "Row i sums to zero for every i means col₁ + col₂ + col₃ + col₄ = 0 — a dependence among the columns.",
           "So rank ≤ 3. Now find rows that sum to zero and give rank 3."],
    solution="""
answer = 3
'Every row sums to zero' says col₁ + col₂ + col₃ + col₄ = 0, a dependence, so the rank is at most 3.
The rows (1, −1, 0, 0), (0, 1, −1, 0), (0, 0, 1, −1) sum to zero and are independent, so 3 is reached
(fill the other 7 rows with zeros or any combination of these).""",
    correct="now ask the same question of a matrix whose rows and columns all sum to zero.")
