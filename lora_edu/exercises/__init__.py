"""Exercises that check themselves: `.check(answer)`, `.hint()` (again for a stronger one) and `.solution()`.

Each chapter has a module (`lora_edu.exercises.ch1`, `ch2`, …) of `Exercise` objects. A check prints one line:
correct, not attempted yet (the placeholder `...` is still there, or the function still raises
`NotImplementedError`), or wrong with the specific reason. The line printed for a correct answer never depends on
the answer, so that nbval can grade a finished notebook against the reference run.
"""
from __future__ import annotations

import numbers
from typing import Callable, NamedTuple

import numpy as np

__all__ = ["Verdict", "Exercise", "NotAttempted", "Wrong", "as_number", "as_int", "as_matrix_answer", "describe", "call"]


class NotAttempted(Exception):
    """Raised inside a judge when the learner's answer is still the placeholder."""


class Wrong(Exception):
    """Raised inside a judge with the reason the answer is wrong."""


class Verdict(NamedTuple):
    """The outcome of a check: status is "correct", "not attempted" or "wrong"; message says why."""
    status: str
    message: str

    def __str__(self) -> str:
        mark = {"correct": "✓", "not attempted": "…", "wrong": "✗"}[self.status]
        return f"{mark} {self.message}"

    @property
    def ok(self) -> bool:
        return self.status == "correct"


class Exercise:
    """One exercise: `judge(answer)` returns None when right, or the reason it is wrong."""

    def __init__(self, number: str, title: str, judge: Callable, hints: list[str], solution: str,
                 correct: str = "well done.", data: dict | None = None):
        self.number, self.title, self._judge = number, title, judge
        self.hints, self._solution, self._correct = list(hints), solution.strip("\n"), correct
        self.data = dict(data or {})
        self._hints_shown = 0

    def __repr__(self) -> str:
        return f"Exercise {self.number}: {self.title}"

    def verdict(self, answer) -> Verdict:
        """Judge the answer without printing."""
        if answer is Ellipsis or (isinstance(answer, tuple) and any(a is Ellipsis for a in answer)):
            return Verdict("not attempted", f"Exercise {self.number} not attempted yet: replace the ... with "
                                            "your answer, then run the cell again.")
        try:
            reason = self._judge(answer)
        except NotAttempted:
            return Verdict("not attempted", f"Exercise {self.number} not attempted yet: replace "
                                            "`raise NotImplementedError` with your code, then run the cell again.")
        except Wrong as e:
            reason = str(e)
        except Exception as e:  # a learner's answer must never crash the check
            reason = f"checking your answer raised {type(e).__name__}: {e}"
        if reason is None:
            return Verdict("correct", f"Exercise {self.number}: correct — {self._correct}")
        return Verdict("wrong", f"Exercise {self.number}: not yet — {reason}")

    def check(self, answer) -> None:
        """Print the verdict on the answer."""
        print(self.verdict(answer))

    def hint(self) -> None:
        """Print the next hint; calling again gives a stronger one."""
        i = min(self._hints_shown, len(self.hints) - 1)
        last = self._hints_shown >= len(self.hints)
        self._hints_shown += 1
        more = " (that was the last hint; .solution() shows a worked solution)" if last else ""
        print(f"Hint {i + 1} of {len(self.hints)} for exercise {self.number}: {self.hints[i]}{more}")

    def solution(self) -> None:
        """Print a worked solution."""
        print(f"A solution to exercise {self.number} ({self.title}):\n{self._solution}")


# ---- helpers for judges -------------------------------------------------------------------------------------

def describe(x, limit: int = 60) -> str:
    """A short, readable form of a value for messages."""
    if isinstance(x, np.ndarray):
        x = x.tolist()
    s = repr(x)
    return s if len(s) <= limit else s[: limit - 1] + "…"


def as_number(answer, what: str = "your answer") -> float:
    """A finite real number (int, float, Fraction, numpy scalar or 0-d array), or `Wrong` saying what was given."""
    if isinstance(answer, np.ndarray) and answer.ndim == 0:
        answer = answer.item()
    if isinstance(answer, bool) or not isinstance(answer, numbers.Real) or not np.isfinite(float(answer)):
        raise Wrong(f"{what} should be a number; got {describe(answer)} ({type(answer).__name__}).")
    return float(answer)


def as_int(answer, what: str = "your answer", lo: int | None = 0) -> int:
    """A whole number ≥ lo, or `Wrong` saying what was given."""
    x = as_number(answer, what)
    if not x.is_integer():
        raise Wrong(f"{what} should be a whole number; got {describe(answer)}.")
    if lo is not None and x < lo:
        raise Wrong(f"{what} cannot be negative; got {int(x)}." if lo == 0 else f"{what} must be at least {lo}.")
    return int(x)


def as_matrix_answer(answer, name: str = "your matrix") -> np.ndarray:
    """A finite 2-D float array from an array, nested list or tensor, or `Wrong` saying what is wrong."""
    from .._checks import as_matrix
    try:
        arr = np.asarray(answer, dtype=float)   # lets Fractions and other real numbers in
    except (TypeError, ValueError):
        arr = answer
    try:
        return as_matrix(arr, name)
    except ValueError as e:
        raise Wrong(f"{e}.") from None


def call(fn, args: tuple, name: str, shown: str | None = None):
    """Call the learner's function; NotImplementedError means not attempted, any other error is reported.

    `shown` describes the arguments in messages (default: their short reprs).
    """
    if not callable(fn):
        raise Wrong(f"{name} should be a function; got {describe(fn)} ({type(fn).__name__})")
    try:
        return fn(*args)
    except NotImplementedError:
        raise NotAttempted from None
    except Exception as e:
        shown = ", ".join(describe(a) for a in args) if shown is None else shown
        raise Wrong(f"{name}({shown}) raised {type(e).__name__}: {e}") from None
