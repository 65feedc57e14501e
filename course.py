#!/usr/bin/env python3
"""Set up the course in a local virtual environment (.venv), then open it in JupyterLab or run every test.

    python3 course.py lab     # set up, then open the course in JupyterLab
    python3 course.py test    # set up, then run the unit tests and every notebook under nbval (strict)

Needs only Python ≥ 3.10 and access to PyPI (once). Extra arguments after `test` go to pytest.
"""
from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
BIN = VENV / ("Scripts" if os.name == "nt" else "bin")
PY = BIN / ("python.exe" if os.name == "nt" else "python")
STAMP = VENV / ".lora_edu-installed"
KERNEL = "lora-edu"  # the notebooks ask for this kernel: it runs .venv's Python, where lora_edu is installed
TEST_ARGS = ["-m", "pytest", "--nbval", "--nbval-current-env"]  # what to test: pyproject.toml testpaths


def run(*args: str) -> None:
    print("+", " ".join(args), flush=True)
    subprocess.run(args, cwd=ROOT, check=True)


def setup() -> None:
    """Create or reuse .venv; (re)install the package with its dev extra whenever pyproject.toml changed."""
    if sys.version_info < (3, 10):
        sys.exit(f"lora_edu needs Python ≥ 3.10; this is {sys.version.split()[0]}")
    if not PY.exists():
        print(f"Creating the virtual environment {VENV} …", flush=True)
        venv.create(VENV, with_pip=True)
    want = hashlib.sha256((ROOT / "pyproject.toml").read_bytes()).hexdigest()
    if not STAMP.exists() or STAMP.read_text().strip() != want:
        run(str(PY), "-m", "pip", "install", "--disable-pip-version-check", "-e", ".[dev]")
        run(str(PY), "-m", "ipykernel", "install", "--sys-prefix", "--name", KERNEL,
            "--display-name", "Python (lora_edu)")
        STAMP.write_text(want + "\n")


def main(argv: list[str]) -> int:
    if not argv or argv[0] not in ("lab", "test"):
        print(__doc__)
        return 2
    setup()
    if argv[0] == "lab":
        args = [str(BIN / "jupyter"), "lab", "notebooks/01_matrix_rank.ipynb", *argv[1:]]
        if hasattr(os, "geteuid") and os.geteuid() == 0:  # e.g. inside a container: Jupyter refuses root otherwise
            args.append("--allow-root")
    else:
        args = [str(PY), *TEST_ARGS, *argv[1:]]
    print("+", " ".join(args), flush=True)
    return subprocess.run(args, cwd=ROOT).returncode


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
