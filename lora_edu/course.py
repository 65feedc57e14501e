"""Student editions of the chapters: solutions out, placeholders in, the reference outputs kept.

    python -m lora_edu.course student           # write notebooks/student/*.ipynb from notebooks/*.ipynb
    python -m lora_edu.course check             # exit 1 if the committed student editions are out of date

In a source notebook each solution sits between a line `### BEGIN SOLUTION` and a line `### END SOLUTION`.
In the student edition the block becomes placeholders: `name = ...` for every variable it assigns, and for every
function it defines, the same signature and docstring with `raise NotImplementedError`. The stored outputs stay
those of the solved run, so `pytest --nbval` on a finished student notebook passes exactly when the learner's
work reproduces the reference results.
"""
from __future__ import annotations

import argparse
import ast
import copy
import json
import sys
import textwrap
from pathlib import Path

import nbformat

from ._io import write_atomic

BEGIN, END = "### BEGIN SOLUTION", "### END SOLUTION"
ANSWER = "...  # YOUR ANSWER HERE"

__all__ = ["strip_solutions", "student_notebook", "build", "out_of_date"]


def _placeholders(block: list[str], where: str) -> list[str]:
    """Placeholder lines for a solution block (its lines, common indentation kept)."""
    body = textwrap.dedent("\n".join(block))
    indent = block[0][: len(block[0]) - len(block[0].lstrip())] if block else ""
    try:
        tree = ast.parse(body)
    except SyntaxError as e:
        raise ValueError(f"{where}: the solution block does not parse as Python ({e.msg}, line {e.lineno})") from None
    lines = body.splitlines()
    out = []
    for node in tree.body:
        if isinstance(node, (ast.Assign, ast.AnnAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            for t in targets:
                for name in (t.elts if isinstance(t, ast.Tuple) else [t]):
                    if isinstance(name, ast.Name):
                        out.append(f"{indent}{name.id} = {ANSWER}")
        elif isinstance(node, ast.FunctionDef):
            first = node.body[0]
            has_doc = isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant) and isinstance(
                first.value.value, str)
            head_end = (first.end_lineno if has_doc else first.lineno - 1)   # signature (+ docstring) lines
            start = (node.decorator_list[0].lineno if node.decorator_list else node.lineno) - 1
            out.extend(indent + line for line in lines[start:head_end])
            body_indent = " " * (first.col_offset)
            out.append(f"{indent}{body_indent}raise NotImplementedError  # YOUR CODE HERE")
    if not out:
        raise ValueError(f"{where}: the solution block assigns no variable and defines no function, so there is "
                         "nothing to leave a placeholder for")
    return out


def strip_solutions(source: str, where: str = "cell") -> str:
    """A cell's source with every solution block replaced by placeholders; unbalanced markers are errors."""
    out, block, start = [], None, 0
    for i, line in enumerate(source.splitlines(), 1):
        mark = line.strip()
        if mark == BEGIN:
            if block is not None:
                raise ValueError(f"{where}: '{BEGIN}' on line {i} opens a block inside the one opened on line {start}")
            block, start = [], i
        elif mark == END:
            if block is None:
                raise ValueError(f"{where}: '{END}' on line {i} has no '{BEGIN}' before it")
            if not block:
                raise ValueError(f"{where}: the solution block on lines {start}–{i} is empty")
            out.extend(_placeholders(block, f"{where}, solution block on line {start}"))
            block = None
        elif block is not None:
            block.append(line)
        else:
            out.append(line)
    if block is not None:
        raise ValueError(f"{where}: '{BEGIN}' on line {start} has no matching '{END}'")
    return "\n".join(out)


def student_notebook(nb, name: str = "notebook"):
    """A copy of a notebook with every code cell's solutions replaced; outputs and everything else kept."""
    nb = copy.deepcopy(nb)
    for i, cell in enumerate(nb.cells):
        if cell.cell_type == "code" and (BEGIN in cell.source or END in cell.source):
            cell.source = strip_solutions(cell.source, f"{name}, cell {i}")
    return nb


def _editions(src: Path):
    for path in sorted(src.glob("*.ipynb")):
        yield path.name, student_notebook(nbformat.read(path, as_version=4), path.name)


def build(src="notebooks", out=None) -> list[Path]:
    """Write the student edition of every notebook in src to out (default src/student); returns the paths."""
    src = Path(src)
    out = Path(out) if out is not None else src / "student"
    if not src.is_dir():
        raise ValueError(f"no notebook folder at {src}")
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for name, nb in _editions(src):
        write_atomic(out / name, lambda tmp, nb=nb: nbformat.write(nb, tmp))
        written.append(out / name)
    return written


def out_of_date(src="notebooks", out=None) -> list[str]:
    """Names of student editions in out that are missing or differ from what `build` would write."""
    src = Path(src)
    out = Path(out) if out is not None else src / "student"
    stale = []
    for name, nb in _editions(src):
        path = out / name
        if not path.exists() or json.loads(nbformat.writes(nb)) != json.load(open(path, encoding="utf-8")):
            stale.append(name)
    return stale


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m lora_edu.course", description=__doc__.split("\n\n")[0])
    p.add_argument("command", choices=["student", "check"])
    p.add_argument("--src", default="notebooks", help="folder of the source notebooks (default: notebooks)")
    p.add_argument("--out", default=None, help="folder of the student editions (default: SRC/student)")
    args = p.parse_args(argv)
    if args.command == "student":
        for path in build(args.src, args.out):
            print(f"wrote {path}")
        return 0
    stale = out_of_date(args.src, args.out)
    if stale:
        print("student editions out of date (run `python -m lora_edu.course student`): " + ", ".join(stale))
        return 1
    print("student editions are up to date")
    return 0


if __name__ == "__main__":
    sys.exit(main())
