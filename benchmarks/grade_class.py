"""How long `lora-edu grade` takes for a class of ten submissions of chapters 1–4, against the floor.

    python benchmarks/grade_class.py [--jobs N]

The class: for each of chapters 1–4 the solved chapter and the untouched student edition, and two half-done
submissions (chapters 1 and 2 with every other exercise left blank). Measured side by side in one run:
  floor   — each of the ten notebooks simply re-executed once, one after another, with nbclient in this
            environment's kernel and matplotlib's agg backend, as the grader runs them (what any grader has to do
            at least);
  grade 1 — `lora-edu grade --jobs 1` on the folder (the same, plus judging every exercise);
  grade N — `lora-edu grade` with N jobs (default: the CPU count).
"""
from __future__ import annotations

import argparse
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parent.parent
CHAPTERS = sorted((ROOT / "notebooks").glob("0[1-4]_*.ipynb"))


def half_done(source: Path) -> nbformat.NotebookNode:
    """The reference chapter with every other exercise's solution put back to the student placeholder."""
    solved, student = (nbformat.read(p, as_version=4) for p in (source, source.parent / "student" / source.name))
    exercise = [i for i, c in enumerate(solved.cells) if c.cell_type == "code" and "### BEGIN SOLUTION" in c.source]
    for i in exercise[1::2]:
        solved.cells[i] = student.cells[i]
    return solved


def make_class(folder: Path) -> list[Path]:
    for k, source in enumerate(CHAPTERS, 1):
        shutil.copy(source, folder / f"solved_{k}.ipynb")
        shutil.copy(source.parent / "student" / source.name, folder / f"untouched_{k}.ipynb")
    for k, source in enumerate(CHAPTERS[:2], 1):
        nbformat.write(half_done(source), folder / f"half_done_{k}.ipynb")
    return sorted(folder.glob("*.ipynb"))


def floor(files: list[Path]) -> float:
    from jupyter_client.manager import KernelManager
    from nbclient import NotebookClient
    from nbval.kernel import CURRENT_ENV_KERNEL_NAME, NbvalKernelspecManager
    os.environ.setdefault("MPLBACKEND", "agg")          # the kernels inherit it; figures are not rendered
    started = time.perf_counter()
    for f in files:
        nb = nbformat.read(f, as_version=4)
        km = KernelManager(kernel_name=CURRENT_ENV_KERNEL_NAME, kernel_spec_manager=NbvalKernelspecManager())
        with tempfile.TemporaryDirectory() as cwd:
            NotebookClient(nb, km=km, timeout=600, allow_errors=True,
                           resources={"metadata": {"path": cwd}}).execute(stderr=subprocess.DEVNULL)
    return time.perf_counter() - started


def grade(folder: Path, jobs: int) -> float:
    started = time.perf_counter()
    run = subprocess.run([sys.executable, "-m", "lora_edu.cli", "grade", str(folder), "--jobs", str(jobs),
                          "--csv", str(folder.parent / f"gradebook_{jobs}.csv")], capture_output=True, text=True)
    took = time.perf_counter() - started
    if run.returncode != 0 or "graded 10 of 10 submissions" not in run.stdout:
        sys.exit(f"grading failed:\n{run.stdout[-2000:]}\n{run.stderr[-2000:]}")
    return took


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    args = p.parse_args()
    print(f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}")
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "class"
        folder.mkdir()
        files = make_class(folder)
        print(f"a class of {len(files)} submissions of chapters 1–4")
        t_floor = floor(files)
        t_one = grade(folder, 1)
        t_all = grade(folder, args.jobs)
        print((Path(tmp) / f"gradebook_{args.jobs}.csv").read_text())
    print(f"floor (re-execute each notebook once, in turn): {t_floor:6.1f} s")
    print(f"lora-edu grade --jobs 1:                        {t_one:6.1f} s   {t_one / t_floor:.2f}× the floor")
    print(f"lora-edu grade --jobs {args.jobs}:                        {t_all:6.1f} s   {t_all / t_floor:.2f}× the floor, "
          f"{t_one / t_all:.2f}× faster than one job")


if __name__ == "__main__":
    main()
