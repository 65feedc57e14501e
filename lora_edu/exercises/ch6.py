"""Exercises of chapter 6 — choosing the rank."""
from __future__ import annotations

import numpy as np

from ..lora import subspace_similarity
from ..sweep import cheapest_rank as _cheapest
from ..rank import effective_rank, energy_share, spectrum_summary
from . import Exercise, Wrong, as_int, as_number, call, describe

__all__ = ["directions_for", "cheapest_rank", "chance_overlap"]

_SPECTRA = [("[1, 1, 1, 1]", [1.0, 1.0, 1.0, 1.0], 0.5),
            ("[3, 2, 1]", [3.0, 2.0, 1.0], 0.9),
            ("[10, 1, 1, 1, 1]", [10.0, 1.0, 1.0, 1.0, 1.0], 0.9),
            ("[2, 2, 1, 1, 1, 1]", [2.0, 2.0, 1.0, 1.0, 1.0, 1.0], 0.8),
            ("a decaying spectrum of 256 values", list(0.97 ** np.arange(256)), 0.9),
            ("[5, 4, 3, 2, 1]", [5.0, 4.0, 3.0, 2.0, 1.0], 1.0)]


def _directions_for(fn):
    for shown, s, share in _SPECTRA:
        want = spectrum_summary(s, 1, share)[1]
        got = as_int(call(fn, (np.array(s), share), "directions_for", f"{shown}, {share}"),
                     f"directions_for({shown}, {share})", lo=None)
        if got == want:
            continue
        plain = np.cumsum(s) / np.sum(s)                      # σ instead of σ²
        if got == int(np.searchsorted(plain, share * (1 - 1e-12)) + 1):
            return (f"for {shown} you measured the share with σ itself; energy is Σσ² (the squared Frobenius "
                    "norm), so square the singular values first.")
        if got == want - 1:
            return (f"for {shown} and share {share} you returned {got}, one less than the {want} directions "
                    "needed: count directions (1, 2, …), not positions (0, 1, …).")
        if got == want + 1:
            return (f"for {shown} and share {share} you returned {got}; {want} directions already hold at least "
                    f"{share:.0%} (\"at least\" includes equal).")
        return f"for {shown} and share {share} the answer is {want} directions; you returned {got}."
    return None


directions_for = Exercise(
    "6.1", "how many directions hold a share of the energy", _directions_for,
    hints=["The energy of a matrix is Σσ²; the top k directions hold σ₁² + … + σₖ² of it.",
           "np.cumsum(s**2) / np.sum(s**2) is the share held by the top 1, 2, 3, … directions; find the first "
           "position where it reaches `share` and count from 1."],
    solution="""
def directions_for(s, share):
    held = np.cumsum(np.square(s)) / np.sum(np.square(s))   # share held by the top 1, 2, … directions
    return int(np.argmax(held >= share - 1e-12)) + 1          # the first k that reaches it""",
    correct="the fewest directions that hold the share — the effective rank, read off a spectrum.",
    forbidden=(spectrum_summary, effective_rank, energy_share))


_SWEEPS = [
    ("a sweep that flattens", [(1, 1.50), (2, 1.42), (4, 1.37), (8, 1.335), (16, 1.33), (32, 1.328), ("full", 1.30)],
     0.01),
    ("a sweep that overfits", [(1, 1.44), (4, 1.33), (8, 1.31), (16, 1.30), (32, 1.36), (64, 1.48), ("full", 1.43)],
     0.02),
    ("tol = 0", [(1, 2.0), (2, 1.9), (4, 1.8), (8, 1.8), ("full", 1.7)], 0.0),
    ("rows in any order", [("full", 1.1), (64, 1.2), (16, 1.21), (4, 1.3), (1, 1.5)], 0.015),
]


def _cheapest_rank(fn):
    for shown, pairs, tol in _SWEEPS:
        rows = [{"r": r, "trainable": 16_384 * r if r != "full" else 3_290_624, "val_loss": v} for r, v in pairs]
        want = _cheapest(rows, tol)
        got = call(fn, ([dict(row) for row in rows], tol), "cheapest_rank", f"{shown}, tol={tol}")
        if got == "full":
            return f"for {shown} you returned 'full'; the question is which LoRA rank to pick, so leave out the full row."
        got = as_int(got, f"cheapest_rank({shown}, tol={tol})", lo=None)
        if got == want:
            continue
        lora = [row for row in rows if row["r"] != "full"]
        if got == min(lora, key=lambda row: row["val_loss"])["r"]:
            return (f"for {shown} you returned the best rank, r = {got}; a rank within tol = {tol} of the best "
                    f"loss is as good, and r = {want} is cheaper.")
        return f"for {shown} with tol = {tol} the answer is r = {want}; you returned {got}."
    return None


cheapest_rank = Exercise(
    "6.2", "the cheapest rank that is good enough", _cheapest_rank,
    hints=["Leave out the row with r = 'full'; find the best (lowest) validation loss among the LoRA rows.",
           "Of the rows whose loss is at most best + tol, return the smallest r."],
    solution="""
def cheapest_rank(rows, tol):
    lora = [row for row in rows if row["r"] != "full"]
    best = min(row["val_loss"] for row in lora)
    return min(row["r"] for row in lora if row["val_loss"] <= best + tol)""",
    correct="the smallest rank within tol of the best is where the trade-off curve has flattened.",
    forbidden=(_cheapest,))


def _chance_overlap(fn):
    for i, j, n in [(8, 64, 256), (64, 8, 256), (1, 1, 100), (4, 16, 64), (2, 3, 12), (5, 30, 30)]:
        want = max(i, j) / n
        got = as_number(call(fn, (i, j, n), "chance_overlap", f"{i}, {j}, {n}"), f"chance_overlap({i}, {j}, {n})")
        if abs(got - want) <= 0.02 + 0.05 * want:
            continue
        if abs(got - i * j / n) <= 1e-9 + 0.05 * i * j / n and min(i, j) > 1:
            return (f"chance_overlap({i}, {j}, {n}) = {got:.4g} looks like ‖UᵢᵀUⱼ‖²_F itself; φ divides it by "
                    "min(i, j).")
        if abs(got - min(i, j) / n) <= 0.02 and i != j:
            return (f"chance_overlap({i}, {j}, {n}) = {got:.4g}: check which of i and j sets the level — compare "
                    "with a simulation using subspace_similarity on random matrices.")
        return (f"chance_overlap({i}, {j}, {n}) = {got:.4g}, but random subspaces of these sizes overlap by about "
                f"{want:.3g} on average.")
    return None


chance_overlap = Exercise(
    "6.3", "how much random subspaces overlap", _chance_overlap,
    hints=["Simulate first: subspace_similarity(rng.standard_normal((n, i)), rng.standard_normal((n, j)), i, j) "
           "averaged over many draws. Try n = 256 and a few (i, j).",
           "One random unit vector in n dimensions puts, on average, a share j/n of its squared length into a "
           "fixed j-dimensional subspace. φ sums that over the smaller subspace's i directions and divides by i."],
    solution="""
def chance_overlap(i, j, n):
    return max(i, j) / n        # each direction of the smaller subspace keeps max(i, j)/n of itself, on average
# a simulation agrees:
# rng = np.random.default_rng(0)
# np.mean([subspace_similarity(rng.standard_normal((n, i)), rng.standard_normal((n, j)), i, j) for _ in range(200)])""",
    correct="that is how much random subspaces overlap: the level a real similarity must beat to mean anything.")
