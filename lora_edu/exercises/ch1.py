"""Exercises of chapter 1 — matrix rank."""
from __future__ import annotations

import numpy as np

from ..rank import matrix_rank, random_low_rank, rank_by_elimination
import numbers

from . import Exercise, as_int, as_matrix_answer, as_number, call, describe

__all__ = ["rank_two", "predict_product_rank", "my_rank", "tolerance", "zero_row_sums"]


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


FLOAT_TRAP = " Floating-point arithmetic cannot see this one: use Fractions."
_RANK_CASES = [                              # (matrix, what a wrong answer is told besides the numbers)
    ([[0, 1], [1, 0]], ""),                 # needs a row swap
    ([[0, 0, 0], [0, 0, 0]], ""),           # the zero matrix
    ([[1, 2, 3], [2, 4, 6]], ""),           # wide, rank 1
    ([[2, 4], [1, 2], [3, 6]], ""),         # tall, rank 1
    ([[0, 0, 1], [0, 0, 2], [1, 1, 1]], ""),  # pivots not on the diagonal
    ([[1, 0, 0], [0, 1, 0], [0, 0, 1]], ""),  # identity
    ([[5]], ""),                            # 1×1
    ([[1, 2, 0, 3], [2, 4, 1, 1], [3, 6, 1, 4], [0, 0, 2, -10]], ""),  # rank 2, fractions on the way
    ([[3, 1, 4, 1, 5], [9, 2, 6, 5, 3], [5, 8, 9, 7, 9], [3, 2, 3, 8, 4]], ""),  # full rank 4
    ([[1, 2, 0], [2, 4, 1]], ""),           # the second pivot lies beyond column min(m, n)
    ([[1, 2, 3], [2, 4, 7]], ""),           # a column without a pivot must not advance the row
    ([[-38, -54, -18], [-24, -12, -32], [-22, 9, -48]], FLOAT_TRAP),  # rank 2: float elimination finds 3
    ([[10**17, 10**17 + 1], [1, 1]], FLOAT_TRAP),  # rank 2: in float64 the two columns look equal
]


def _my_rank(fn):
    for case, note in _RANK_CASES:
        got = call(fn, ([row[:] for row in case],), "my_rank")
        want = rank_by_elimination(case)
        if isinstance(got, bool) or not isinstance(got, numbers.Integral):
            return (f"my_rank({describe(case)}) returned {describe(got)} ({type(got).__name__}); "
                    "a rank is a whole number: return an int.")
        got = int(got)                                   # a plain int: its own == is the one compared
        if got != want:
            return f"my_rank({describe(case)}) returned {got}; expected {want}.{note}"
    return None


my_rank = Exercise(
    "1.3", "rank by row reduction", _my_rank,
    hints=["Work row by row: for each column find a pivot (a nonzero entry) at or below the current row, swap it "
           "up, and subtract multiples of it from the rows below. Count the pivots.",
           "Use Fraction(x) for every entry so that the subtractions are exact. A column with no pivot is "
           "skipped; the current row only advances when a pivot is found.",
           "Compare with rank_by_hand in section 4 — or print each step of rank_by_elimination(M, steps=True)."],
    solution="""
def my_rank(M):
    R = [[Fraction(x) for x in row] for row in M]
    m, n = len(R), len(R[0])
    rank = 0
    for col in range(n):
        p = next((i for i in range(rank, m) if R[i][col] != 0), None)
        if p is None:
            continue
        R[rank], R[p] = R[p], R[rank]
        for i in range(rank + 1, m):
            f = R[i][col] / R[rank][col]
            R[i] = [a - f * b for a, b in zip(R[i], R[rank])]
        rank += 1
    return rank""",
    correct="my_rank agrees with exact elimination on every test matrix (swaps, zeros, wide, tall, fractions).",
    forbidden=(rank_by_elimination,))


_X = random_low_rank(6, 6, 2, seed=11) + 1e-9 * np.random.default_rng(12).standard_normal((6, 6))


def _tolerance(answer):
    tol = as_number(answer, "the tolerance")
    if tol < 0:
        return f"a tolerance must be a finite number ≥ 0; got {tol}."
    k = matrix_rank(_X, tol=tol)
    if k > 2:
        return (f"at tolerance {tol:.1e} the numerical rank of X is {k}: noise still counts. "
                "Raise the tolerance above the noise-level singular values.")
    if k < 2:
        return (f"at tolerance {tol:.1e} the numerical rank of X is {k}: the tolerance hides part of the signal. "
                "Lower it below the second singular value.")
    return None


tolerance = Exercise(
    "1.4", "a tolerance that sees through the noise", _tolerance,
    hints=["Print singular_values(X): two of them are large, four are tiny.",
           "Any tolerance between the second singular value (about 4) and the third (about 3e-9) gives rank 2.",
           "tol = 1e-6 sits safely in the gap."],
    solution="""
s = singular_values(X)      # about [4.5, 3.8, 3e-9, 2e-9, ...]: two signal directions, four of noise
answer = 1e-6               # any value between s[2] and s[1] works; 1e-6 is far from both""",
    correct="at your tolerance the noise is ignored and the signal kept.",
    data={"X": _X})


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
