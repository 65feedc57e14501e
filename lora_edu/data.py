"""Data that ships with Python and its libraries, so nothing is downloaded at run time."""
from __future__ import annotations

import calendar
import functools
import importlib.util
import json
import re
import subprocess
import sys
import zlib
from pathlib import Path
from typing import NamedTuple

import numpy as np
import torch

from ._checks import check_ids, check_int, check_path, check_real

__all__ = ["photo", "CORPORA", "Corpus", "corpus", "load_text", "as_tokens", "get_batch"]


def photo() -> np.ndarray:
    """Grace Hopper's portrait from matplotlib's sample data, grayscale in [0, 1]: shape (512, 512), float64."""
    from matplotlib import cbook
    from matplotlib import image as mpimg

    try:
        path = cbook.get_sample_data("grace_hopper.jpg", asfileobj=False)
    except (OSError, ValueError) as e:  # a trimmed matplotlib install
        raise FileNotFoundError("matplotlib's sample image grace_hopper.jpg is missing from this install; "
                                "pass any 2-D grayscale array of your own instead") from e
    rgb = mpimg.imread(path)[20:532].astype(np.float64) / 255.0   # (512, 512, 3): the square around the face
    return rgb @ np.array([0.299, 0.587, 0.114])                    # luminance (ITU-R BT.601)


# ---------------------------------------------------------------- text corpora (chapter 5)
# Every corpus is built from what CPython itself ships, deterministically, and split by *document*: a document
# goes to the validation split when crc32(its name) % 10 == 0, so the split does not move between Python versions.

CORPORA = {
    "docs": "Python's documentation: the reference topics of pydoc_data plus the help pydoc renders for the stdlib",
    "code": "the source code of a fixed list of standard-library modules",
    "calendar": "month calendars for the years 1800-2299, laid out by Python's calendar module (Monday first)",
}

CODE_MODULES = ("argparse ast bisect calendar configparser contextlib copy csv dataclasses difflib enum fnmatch "
                "fractions functools gettext glob heapq inspect ipaddress keyword linecache locale numbers "
                "operator optparse pprint queue random shlex shutil statistics string tarfile textwrap threading "
                "tokenize traceback typing uuid warnings weakref zipfile").split()

# Modules left out of the rendered docs: they open windows or browsers, print on import, or are not for users.
_DOCS_SKIP = {"antigravity", "this", "idlelib", "turtledemo", "tkinter", "turtle", "pydoc_data", "__main__",
              "lib2to3", "ensurepip", "sys", "os"}
_DOCS_KEEP = ("NAME", "DESCRIPTION", "CLASSES", "FUNCTIONS")   # DATA, FILE, VERSION... hold paths and reprs

_MONTHS = ("January February March April May June July August September October November December").split()


class Corpus(NamedTuple):
    """A text split into train and validation parts (both str)."""
    name: str
    train: str
    val: str

    def __repr__(self):
        return f"Corpus({self.name!r}, train={len(self.train):,} chars, val={len(self.val):,} chars)"


def _split(name: str, docs: dict) -> Corpus:
    """Documents {name: text} -> Corpus, each document wholly in train or val by crc32(name) % 10."""
    train = [t for k, t in docs.items() if zlib.crc32(k.encode()) % 10 != 0]
    val = [t for k, t in docs.items() if zlib.crc32(k.encode()) % 10 == 0]
    return Corpus(name, "\n\n".join(train), "\n\n".join(val))


_RENDER = r"""
import contextlib, importlib, io, json, os, pydoc, sys, warnings
os.environ.clear()                                             # defaults like env=os.environ must not leak it
out = {}
for name in sys.argv[1:]:
    try:
        with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()), \
                contextlib.redirect_stderr(io.StringIO()):
            warnings.simplefilter("ignore")
            out[name] = pydoc.render_doc(importlib.import_module(name), renderer=pydoc.plaintext)
    except Exception:
        pass                                                   # not on this platform (winreg, msvcrt, ...)
here = {sys.executable: "/usr/bin/python3", sys.prefix: "/usr", sys.base_prefix: "/usr", sys.exec_prefix: "/usr",
        os.getcwd(): "/home/user", os.path.expanduser("~"): "/home/user"}   # defaults like executable=sys.executable
for name, text in out.items():
    for path in sorted(here, key=len, reverse=True):
        if len(path) > 1:
            text = text.replace(path, here[path])
    out[name] = text
sys.stdout.write(json.dumps(out))
"""


def _module_docs() -> dict:
    """{module: the plain-text help pydoc renders for it}, rendered in a fresh interpreter so imports stay there."""
    names = sorted(n for n in getattr(sys, "stdlib_module_names", ()) if not n.startswith("_") and n not in _DOCS_SKIP)
    run = subprocess.run([sys.executable, "-I", "-c", _RENDER, *names], capture_output=True, text=True,
                         encoding="utf-8", timeout=600)
    if run.returncode != 0 or not names:
        raise RuntimeError("could not render the standard library's documentation with pydoc on this Python "
                           f"({sys.version.split()[0]}); pass your own text with load_text(path)\n{run.stderr[-500:]}")
    docs = {}
    for name, text in json.loads(run.stdout).items():
        sections = re.split(r"\n(?=[A-Z][A-Z ]+\n)", text)        # headings stand alone at column 0
        keep = [s for s in sections if s.split("\n", 1)[0].strip() in _DOCS_KEEP]
        text = re.sub(r" at 0x[0-9a-fA-F]+", "", "\n".join(keep))  # memory addresses differ run to run
        docs[f"module:{name}"] = text.strip()
    return docs


@functools.lru_cache(maxsize=None)
def corpus(name: str) -> Corpus:
    """One of CORPORA ('docs', 'code', 'calendar') -> Corpus(name, train, val); built once per process."""
    if name not in CORPORA:
        raise ValueError(f"unknown corpus {name!r}; expected one of {sorted(CORPORA)} or load_text(path)")
    if name == "docs":
        try:
            from pydoc_data import topics
        except ImportError:
            raise RuntimeError("this Python ships without pydoc_data (its documentation topics); "
                               "pass your own text with load_text(path)") from None
        docs = {f"topic:{k}": v.strip() for k, v in sorted(topics.topics.items())}
        docs.update(_module_docs())
        return _split(name, docs)
    if name == "code":
        docs = {}
        for mod in CODE_MODULES:
            spec = importlib.util.find_spec(mod)
            origin = getattr(spec, "origin", None)
            if not origin or not origin.endswith(".py") or not Path(origin).is_file():
                raise RuntimeError(f"the source of the standard-library module {mod!r} is not on this Python "
                                   "(some installs ship only .pyc files); pass your own text with load_text(path)")
            docs[mod] = Path(origin).read_text(encoding="utf-8")
        return _split(name, docs)
    docs = {str(year): "\n\n".join(calendar_month(year, m) for m in range(1, 13)) for year in range(1800, 2300)}
    return _split(name, docs)


def calendar_month(year: int, month: int) -> str:
    """One month as the calendar task lays it out: the title centred over 20 columns, the weekday header, the weeks."""
    title = f"{_MONTHS[month - 1]} {year}".center(20).rstrip()
    weeks = [" ".join(f"{d:2d}" if d else "  " for d in week).rstrip()
             for week in calendar.Calendar().monthdayscalendar(year, month)]
    return "\n".join([title, "Mo Tu We Th Fr Sa Su", *weeks])


def load_text(path, val_fraction: float = 0.1, name: str | None = None) -> Corpus:
    """A UTF-8 text file of your own -> Corpus: the last `val_fraction` of its lines is the validation part."""
    path = check_path(path)
    if name is not None and not (isinstance(name, str) and name):
        raise TypeError(f"name must be a non-empty str or None; got {name!r}")
    if not path.is_file():
        raise FileNotFoundError(f"no text file at {path}")
    val_fraction = check_real(val_fraction, "val_fraction", 0.0, 0.5, lo_open=True)
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as e:
        raise ValueError(f"{path} is not UTF-8 text ({e.reason} at byte {e.start})") from None
    lines = text.splitlines(keepends=True)
    if len(lines) < 2 or len(text) < 1000:
        raise ValueError(f"{path} holds {len(text)} characters in {len(lines)} lines; "
                         "a corpus needs at least 1000 characters over 2 or more lines")
    cut = min(len(lines) - 1, max(1, round(len(lines) * (1 - val_fraction))))
    return Corpus(name or path.stem, "".join(lines[:cut]), "".join(lines[cut:]))


def as_tokens(text) -> torch.Tensor:
    """Text (str) or byte ids -> a flat uint8 tensor of token ids (N,): one token per UTF-8 byte."""
    if isinstance(text, str):
        return torch.frombuffer(bytearray(text.encode("utf-8")), dtype=torch.uint8)
    if isinstance(text, torch.Tensor) and text.dim() == 1 and text.dtype in (torch.uint8, torch.long):
        check_ids(text, "text")                       # a long id of 300 would wrap to 44 as a byte
        return text.to(torch.uint8)
    raise TypeError(f"expected text (str) or a 1-D tensor of byte ids; got {type(text).__name__}"
                    + (f" of shape {tuple(text.shape)}" if isinstance(text, torch.Tensor) else ""))


def check_length(tokens: torch.Tensor, block_size: int, what: str = "the text") -> None:
    """A ValueError unless the token stream (N,) holds at least one window of block_size + 1 bytes."""
    if tokens.numel() < block_size + 1:
        raise ValueError(f"{what} has {tokens.numel()} bytes; block_size = {block_size} needs at least "
                         f"{block_size + 1}")


def window_pairs(tokens: torch.Tensor, starts: torch.Tensor, block_size: int):
    """Windows of a token stream (N,) starting at `starts` (B,) -> inputs x (B, T) and next-byte targets y (B, T)."""
    window = tokens[starts[:, None] + torch.arange(block_size + 1)].long()                     # (B, T + 1)
    return window[:, :-1], window[:, 1:]


def window_starts(tokens: torch.Tensor, block_size: int, windows: int | None = None) -> torch.Tensor:
    """Starts (W,) of `windows` evenly spaced windows of a token stream (N,), or with None of every non-overlapping
    window (the whole text, each byte predicted once)."""
    if windows is None:
        return torch.arange((tokens.numel() - 1) // block_size) * block_size
    return torch.linspace(0, tokens.numel() - block_size - 1, check_int(windows, "windows", 1)).long()


def get_batch(tokens: torch.Tensor, batch_size: int, block_size: int, generator: torch.Generator | None = None):
    """Random windows of a token stream (N,) -> inputs x (B, T) and next-byte targets y (B, T), dtype long."""
    if not isinstance(tokens, torch.Tensor) or tokens.dim() != 1:
        raise TypeError(f"tokens must be a 1-D tensor of byte ids (as_tokens(text)); got {type(tokens).__name__}")
    if generator is not None and not isinstance(generator, torch.Generator):
        raise TypeError(f"generator must be a torch.Generator or None; got {type(generator).__name__}")
    batch_size = check_int(batch_size, "batch_size", 1)
    block_size = check_int(block_size, "block_size", 1)
    check_length(tokens, block_size)
    start = torch.randint(tokens.numel() - block_size, (batch_size,), generator=generator)     # (B,)
    return window_pairs(tokens, start, block_size)
