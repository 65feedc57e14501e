"""Exercises that check themselves: `.check(answer)`, `.hint()` (again for a stronger one) and `.solution()`.

Each chapter has a module (`lora_edu.exercises.ch1`, `ch2`, …) of `Exercise` objects. A check prints one line:
correct, not attempted yet (the placeholder `...` is still there, or the function still raises
`NotImplementedError`), or not yet with the specific reason. Nothing a learner's answer does can break a check: an
exception, `sys.exit`, or a function that runs longer than `TIME_LIMIT` seconds becomes a ✗ with the reason. The
line printed for a correct answer never depends on the answer, so a grader can compare it with the reference run.
"""
from __future__ import annotations

import contextlib
import copy
import functools
import importlib
import numbers
import signal
import sys
import threading
from typing import Callable, NamedTuple

import numpy as np

__all__ = ["Verdict", "Exercise", "NotAttempted", "Wrong", "TIME_LIMIT", "as_number", "as_int", "as_matrix_answer",
           "describe", "call", "report"]

TIME_LIMIT = 30.0   # seconds a check may spend on one answer (learner code and the check's own work together)
VERDICT_MIME = "application/vnd.lora-edu.verdict+json"   # how `report` hands a verdict to `lora-edu grade`


class NotAttempted(Exception):
    """Raised inside a judge when the learner's answer is still the placeholder."""


class Wrong(Exception):
    """Raised inside a judge with the reason the answer is wrong."""


class Stopped(BaseException):
    """The learner's code could not be checked (sys.exit, or over the time limit). A BaseException, so that a
    learner's `except Exception` cannot swallow it."""


class _OutOfTime(BaseException):
    """Raised by the alarm when the time limit has passed."""


class _Delegated(BaseException):
    """Raised when a learner's function calls the package function the exercise asks them to write."""


class Verdict(NamedTuple):
    """The outcome of a check: status is "correct", "not attempted", "wrong" or "error"; message says why."""
    status: str
    message: str

    def __str__(self) -> str:
        mark = {"correct": "✓", "not attempted": "…", "wrong": "✗", "error": "✗"}[self.status]
        return f"{mark} {self.message}"

    @property
    def ok(self) -> bool:
        return self.status == "correct"


class Exercise:
    """One exercise: `judge(answer)` returns None when right, or the reason it is wrong.

    `forbidden` lists the package's own functions that solve the exercise: a learner's function that calls one of
    them is told to write it instead.
    """

    def __init__(self, number: str, title: str, judge: Callable, hints: list[str], solution: str,
                 correct: str = "well done.", data: dict | None = None, forbidden: tuple = ()):
        self.number, self.title, self._judge = number, title, judge
        self.hints, self._solution, self._correct = list(hints), solution.strip("\n"), correct
        self.data = dict(data or {})
        self.forbidden = tuple(forbidden)
        self._hints_shown = 0

    def __repr__(self) -> str:
        return f"Exercise {self.number}: {self.title}"

    def verdict(self, answer, time_limit: float | None = None) -> Verdict:
        """Judge the answer without printing, within time_limit seconds (default TIME_LIMIT)."""
        if answer is Ellipsis or (isinstance(answer, tuple) and any(a is Ellipsis for a in answer)):
            return Verdict("not attempted", f"Exercise {self.number} not attempted yet: replace the ... with "
                                            "your answer, then run the cell again.")
        limit = TIME_LIMIT if time_limit is None else time_limit
        try:
            with _time_limit(limit), _forbidding(self.forbidden):
                reason = self._judge(answer)
        except NotAttempted:
            return Verdict("not attempted", f"Exercise {self.number} not attempted yet: replace "
                                            "`raise NotImplementedError` with your code, then run the cell again.")
        except Wrong as e:
            reason = str(e)
        except Stopped as e:
            return Verdict("error", f"Exercise {self.number}: not yet — {_said(e)}")
        except _OutOfTime:
            return Verdict("error", f"Exercise {self.number}: not yet — the check did not finish within {limit:g} s.")
        except KeyboardInterrupt:
            raise
        except Exception as e:  # a learner's answer must never crash the check
            reason = f"checking your answer raised {type(e).__name__}: {_said(e)}"
        except BaseException as e:
            return Verdict("error", f"Exercise {self.number}: not yet — checking your answer raised "
                                    f"{type(e).__name__}: {_said(e)}")
        if reason is None:
            return Verdict("correct", f"Exercise {self.number}: correct — {self._correct}")
        return Verdict("wrong", f"Exercise {self.number}: not yet — {reason}")

    def check(self, answer) -> None:
        """Print the verdict on the answer."""
        print(self.verdict(answer))

    def hint(self) -> None:
        """Print the next hint; calling again gives a stronger one."""
        i = min(self._hints_shown, len(self.hints) - 1)
        last = i == len(self.hints) - 1
        self._hints_shown += 1
        more = " (that was the last hint; .solution() shows a worked solution)" if last else ""
        print(f"Hint {i + 1} of {len(self.hints)} for exercise {self.number}: {self.hints[i]}{more}")

    def solution(self) -> None:
        """Print a worked solution."""
        print(f"A solution to exercise {self.number} ({self.title}):\n{self._solution}")


def report(module: str, name: str, answer: Callable, token: str = "") -> None:
    """Judge `answer()` with exercise `module.name` and display the verdict, with the grader's token, for
    `lora-edu grade` (not printed)."""
    from IPython.display import display
    try:
        value = answer()
    except KeyboardInterrupt:
        raise
    except BaseException as e:
        verdict = Verdict("error", f"the answer could not be read: {type(e).__name__}: {_said(e)}")
    else:
        verdict = getattr(importlib.import_module(module), name).verdict(value)
    display({VERDICT_MIME: {"status": verdict.status, "message": verdict.message, "line": str(verdict),
                            "token": token}}, raw=True)


# ---- what keeps a check safe from the code it checks -------------------------------------------------------

_state = threading.local()   # the clock of the check that is running, and what its learner code may not call


def _ring(signum, frame):
    if getattr(_state, "armed", False):
        _state.expired = True
        raise _OutOfTime


@contextlib.contextmanager
def _time_limit(seconds: float):
    """Raise _OutOfTime in the main thread once `seconds` have passed, and again every half second until it gets
    through. It is a BaseException, so `except Exception` does not stop it; code that catches BaseException in a
    loop can only be stopped from outside (`lora-edu grade` interrupts, then shuts the kernel down). Where there is
    no alarm clock (Windows, another thread, a check inside a check) nothing is timed."""
    if not (hasattr(signal, "setitimer") and threading.current_thread() is threading.main_thread()) \
            or getattr(_state, "armed", False):
        yield
        return
    _state.armed, _state.expired, _state.limit = True, False, seconds
    previous = signal.signal(signal.SIGALRM, _ring)
    signal.setitimer(signal.ITIMER_REAL, seconds, 0.5)
    try:
        yield
    finally:
        _state.armed = False                    # first, so that a late alarm cannot interrupt the clean-up
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


@contextlib.contextmanager
def _forbidding(functions):
    """Inside the block, `call` makes the package functions in `functions` unusable by the learner's code."""
    before = getattr(_state, "forbidden", ())
    _state.forbidden = tuple(functions)
    try:
        yield
    finally:
        _state.forbidden = before


def _contents(cell):
    try:
        return cell.cell_contents
    except ValueError:                                      # an empty cell
        return None


def _put(where, key, value) -> None:
    if isinstance(where, dict):
        where[key] = value
    else:
        setattr(where, key, value)


def _stand_in(f):
    def forbidden(*args, **kwargs):
        raise _Delegated(f"{f.__module__}.{f.__qualname__}")
    return forbidden


@contextlib.contextmanager
def _without(fn, functions):
    """Replace each package function in `functions` — where it is defined (a module, or a class for a method), in
    every lora_edu module that imports it, and wherever fn's namespace, closure or defaults name it — by a
    stand-in that raises _Delegated, while the block runs. (It stops the easy way round an exercise, not a
    determined one: the package is on the learner's disk.)"""
    space = getattr(fn, "__globals__", None)
    saved = []                                              # (namespace, name, original)
    for f in functions:
        owner = sys.modules[f.__module__]
        for part in f.__qualname__.split(".")[:-1]:
            owner = getattr(owner, part)
        saved.append((owner, f.__name__, f))
        for name, module in list(sys.modules.items()):
            if (name == "lora_edu" or name.startswith("lora_edu.")) and module is not None:
                saved.extend((vars(module), k, v) for k, v in list(vars(module).items()) if v is f)
        if isinstance(space, dict):
            saved.extend((space, k, v) for k, v in list(space.items()) if v is f)
        saved.extend((cell, "cell_contents", f) for cell in getattr(fn, "__closure__", None) or ()
                     if _contents(cell) is f)
    defaults = getattr(fn, "__defaults__", None)
    if defaults and any(d is f for d in defaults for f in functions):
        saved.append((fn, "__defaults__", defaults))
    try:
        for where, key, f in saved:
            if key == "__defaults__":
                _put(where, key, tuple(_stand_in(d) if any(d is g for g in functions) else d for d in f))
            else:
                _put(where, key, _stand_in(f))
        yield
    finally:
        armed, _state.armed = getattr(_state, "armed", False), False   # no alarm halfway through the restore
        for where, key, f in saved:
            _put(where, key, f)
        _state.armed = armed


# ---- helpers for judges -------------------------------------------------------------------------------------

def _said(x, text=str) -> str:
    """str(x) (or repr), or a stand-in when that itself fails: a learner's object may break even its own printing."""
    try:
        return text(x)
    except Exception:
        return f"<a {type(x).__name__} that cannot be printed>"


def describe(x, limit: int = 60) -> str:
    """A short, readable form of a value for messages."""
    if isinstance(x, np.ndarray) and x.size <= 10_000:
        x = x.tolist()
    s = _said(x, repr)
    return s if len(s) <= limit else s[: limit - 1] + "…"


def as_number(answer, what: str = "your answer") -> float:
    """A finite real number (int, float, Fraction, numpy scalar or 0-d array), or `Wrong` saying what was given."""
    if isinstance(answer, np.ndarray) and answer.ndim == 0:
        answer = answer.item()
    try:
        ok = not isinstance(answer, bool) and isinstance(answer, numbers.Real) and bool(np.isfinite(float(answer)))
    except (OverflowError, TypeError, ValueError):          # e.g. an int too large for a float
        ok = False
    if not ok:
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
    """A finite real 2-D float array from an array, nested list or tensor, or `Wrong` saying what is wrong."""
    from .._checks import as_matrix
    if answer is None:
        raise Wrong(f"{name} is None: does the function `return` it?")
    arr = answer
    if not (hasattr(answer, "detach") and hasattr(answer, "cpu")):       # tensors: as_matrix reads them itself
        try:
            arr = np.asarray(answer)
        except (TypeError, ValueError):
            arr = answer
        if isinstance(arr, np.ndarray) and arr.dtype == object:            # Fractions and other real numbers
            try:
                arr = arr.astype(float)
            except (TypeError, ValueError):
                arr = answer
    try:
        return as_matrix(arr, name)
    except ValueError as e:
        raise Wrong(f"{e}.") from None


def call(fn, args: tuple, name: str, shown: str | None = None):
    """Call the learner's function on copies of args: NotImplementedError means not attempted; another exception,
    a call of a function the exercise forbids, sys.exit or running out of time is reported, never propagated.

    `shown` describes the arguments in messages (default: their short reprs).
    """
    if not callable(fn):
        raise Wrong(f"{name} should be a function; got {describe(fn)} ({type(fn).__name__})")
    shown = ", ".join(describe(a) for a in args) if shown is None else shown
    args = copy.deepcopy(args)               # what the function does to its arguments cannot reach the check's
    try:
        if isinstance(fn, functools.partial) and any(fn.func is f for f in getattr(_state, "forbidden", ())):
            raise _Delegated(f"{fn.func.__module__}.{fn.func.__qualname__}")
        with _without(fn, getattr(_state, "forbidden", ())):
            out = fn(*args)
    except NotImplementedError:
        raise NotAttempted from None
    except _Delegated as e:
        raise Wrong(f"{name} calls {e}, which does this exercise for you; write that part "
                    "yourself.") from None
    except _OutOfTime:
        raise Stopped(f"{name}({shown}) did not finish within {_state.limit:g} s and was stopped: is there a "
                      "loop that never ends?") from None
    except SystemExit as e:
        code = "" if e.code is None else describe(e.code)
        raise Stopped(f"{name}({shown}) called sys.exit({code}), which would end the whole notebook; return a value "
                      "instead.") from None
    except Exception as e:
        raise Wrong(f"{name}({shown}) raised {type(e).__name__}: {_said(e)}") from None
    if getattr(_state, "expired", False) and getattr(_state, "armed", False):
        raise Stopped(f"{name}({shown}) ran past the {_state.limit:g} s time limit (it caught the interruption "
                      "and went on).")
    return out
