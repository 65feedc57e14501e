"""Coursework: student editions that reveal nothing, and `lora-edu grade`, which judges them against the reference.

    python -m lora_edu.course student     # write notebooks/student/*.ipynb and the grading key from notebooks/*.ipynb
    python -m lora_edu.course check       # exit 1 if the committed student editions or the key are out of date
    lora-edu grade SUBMISSION.ipynb|FOLDER ... [--json FILE] [--csv FILE] [--timeout SECONDS] [--jobs N]

In a reference chapter each solution sits between a line `### BEGIN SOLUTION` and a line `### END SOLUTION`, in a
cell that ends with the exercise's check line, e.g. `ex.rank_two.check(answer_1)`. In the student edition the block
becomes placeholders — `name = ...` for every variable it assigns, and for every function it defines, the same
signature and docstring with `raise NotImplementedError` — and the exercise cells, and any later cell that uses
what they define, lose their outputs. Every other cell keeps its outputs, so the figures still show.

`build` also writes `lora_edu/exercises/key.json`: each chapter's exercises with their check line and the line the
reference run printed. `grade` re-executes a submission in a fresh kernel (nbval's, in this environment), finds
each exercise's cell by its check line, judges the answer right after that cell with the package's check, and
compares the verdict with the key — never with anything the submission stores.
"""
from __future__ import annotations

import argparse
import ast
import copy
import csv
import io
import json
import os
import re
import secrets
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import nbformat

from ._checks import check_int, check_real
from ._io import write_atomic
from .exercises import TIME_LIMIT

BEGIN, END = "### BEGIN SOLUTION", "### END SOLUTION"
ANSWER = "...  # YOUR ANSWER HERE"
KEY = Path(__file__).resolve().parent / "exercises" / "key.json"
TIMEOUT = 300.0        # seconds any one cell of a submission may run
GRACE = 10.0           # seconds an interrupted cell gets to stop before its kernel is shut down
VERDICTS = ("correct", "wrong", "not attempted", "error", "tampered")

__all__ = ["strip_solutions", "student_notebook", "build", "out_of_date", "answer_key", "grade_notebook", "grade"]


# ---- student editions ---------------------------------------------------------------------------------------

def _placeholders(block: list[str], where: str) -> tuple[list[str], set[str]]:
    """Placeholder lines for a solution block (common indentation kept), and the names the block defines."""
    body = textwrap.dedent("\n".join(block))
    indent = block[0][: len(block[0]) - len(block[0].lstrip())] if block else ""
    try:
        tree = ast.parse(body)
    except SyntaxError as e:
        raise ValueError(f"{where}: the solution block does not parse as Python ({e.msg}, line {e.lineno})") from None
    lines = body.splitlines()
    out, names = [], set()
    for node in tree.body:
        if isinstance(node, (ast.Assign, ast.AnnAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            for t in targets:
                for name in (t.elts if isinstance(t, ast.Tuple) else [t]):
                    if isinstance(name, ast.Name):
                        out.append(f"{indent}{name.id} = {ANSWER}")
                        names.add(name.id)
        elif isinstance(node, ast.FunctionDef):
            first = node.body[0]
            has_doc = isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant) and isinstance(
                first.value.value, str)
            head_end = (first.end_lineno if has_doc else first.lineno - 1)   # signature (+ docstring) lines
            start = (node.decorator_list[0].lineno if node.decorator_list else node.lineno) - 1
            out.extend(indent + line for line in lines[start:head_end])
            body_indent = " " * (first.col_offset)
            out.append(f"{indent}{body_indent}raise NotImplementedError  # YOUR CODE HERE")
            names.add(node.name)
    if not out:
        raise ValueError(f"{where}: the solution block assigns no variable and defines no function, so there is "
                         "nothing to leave a placeholder for")
    return out, names


def _strip(source: str, where: str) -> tuple[str, set[str]]:
    out, block, start, names = [], None, 0, set()
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
            lines, defined = _placeholders(block, f"{where}, solution block on line {start}")
            out.extend(lines)
            names |= defined
            block = None
        elif block is not None:
            block.append(line)
        else:
            out.append(line)
    if block is not None:
        raise ValueError(f"{where}: '{BEGIN}' on line {start} has no matching '{END}'")
    return "\n".join(out), names


def strip_solutions(source: str, where: str = "cell") -> str:
    """A cell's source with every solution block replaced by placeholders; unbalanced markers are errors."""
    if not isinstance(source, str):
        raise TypeError(f"source must be a cell's source (str); got {type(source).__name__}")
    return _strip(source, where)[0]


def _uses(source: str, names: set[str]) -> bool:
    """Whether a cell's code mentions any of the names (as a whole word: safe for cells that do not parse)."""
    return any(re.search(rf"\b{re.escape(n)}\b", source) for n in names)


def student_notebook(nb, name: str = "notebook"):
    """A copy of a reference notebook with every solution replaced by placeholders, and no output in the exercise
    cells or in any later cell that uses what they define; every other cell and the metadata are kept."""
    nb = copy.deepcopy(nb)
    defined: set[str] = set()
    for i, cell in enumerate(nb.cells):
        if cell.cell_type != "code":
            continue
        if BEGIN in cell.source or END in cell.source:
            cell.source, names = _strip(cell.source, f"{name}, cell {i}")
            defined |= names
        elif not (defined and _uses(cell.source, defined)):
            continue
        cell.outputs, cell.execution_count = [], None
    return nb


# ---- the grading key ----------------------------------------------------------------------------------------

def _check_call(stmt) -> tuple[str, ast.expr] | None:
    """(exercise name, answer expression) when a statement is `ex.NAME.check(ANSWER)`."""
    if not (isinstance(stmt, ast.Expr) and isinstance(stmt.value, ast.Call)):
        return None
    call, f = stmt.value, stmt.value.func
    if (isinstance(f, ast.Attribute) and f.attr == "check" and isinstance(f.value, ast.Attribute)
            and isinstance(f.value.value, ast.Name) and f.value.value.id == "ex"
            and len(call.args) == 1 and not call.keywords):
        return f.value.attr, call.args[0]
    return None


def _chapter_exercises(nb, name: str) -> dict:
    """The grading key of one reference chapter: its number, title, exercise module, and for every exercise its
    id, check line, answer expression and the line the reference run printed."""
    import importlib
    chapter = nb.metadata.get("lora_edu", {}).get("chapter")
    if not isinstance(chapter, int):
        raise ValueError(f"{name}: the notebook's metadata has no lora_edu.chapter number")
    module = None
    for cell in nb.cells:
        if cell.cell_type == "code" and (m := re.search(r"^from lora_edu\.exercises import (\w+) as ex$",
                                                        cell.source, re.M)):
            module = f"lora_edu.exercises.{m.group(1)}"
    if module is None:
        raise ValueError(f"{name}: no cell imports the exercises as `ex` (from lora_edu.exercises import chN as ex)")
    exercises = importlib.import_module(module)
    found = []
    for i, cell in enumerate(nb.cells):
        if cell.cell_type != "code" or BEGIN not in cell.source:
            continue
        calls = [(s, c) for s in ast.parse(cell.source).body if (c := _check_call(s))]
        if len(calls) != 1:
            raise ValueError(f"{name}, cell {i}: an exercise cell needs exactly one line ex.NAME.check(answer); "
                             f"found {len(calls)}")
        (stmt, (exercise, answer)), = calls
        printed = "".join(o.get("text", "") for o in cell.get("outputs", []) if o.get("output_type") == "stream")
        expected = (printed.strip().splitlines() or [""])[-1]         # the check prints the cell's last line
        if not expected.startswith("✓"):
            raise ValueError(f"{name}, cell {i}: the reference run did not print ✓ for {exercise} "
                             f"(got {expected[:80]!r}); re-execute the chapter")
        found.append({"id": getattr(exercises, exercise).number, "name": exercise,
                      "check": ast.get_source_segment(cell.source, stmt), "answer": ast.unparse(answer),
                      "expected": expected})
    if not found:
        raise ValueError(f"{name}: no exercise cells ({BEGIN} … {END})")
    heading = next((c.source.splitlines()[0] for c in nb.cells if c.cell_type == "markdown" and c.source), name)
    title = heading.lstrip("# ").split("—", 1)[-1].strip()
    return {"chapter": chapter, "notebook": name, "title": title, "module": module, "exercises": found}


def _references(src: Path):
    for path in sorted(src.glob("*.ipynb")):
        yield path.name, nbformat.read(path, as_version=4)


def _key_text(src: Path) -> str:
    chapters = {}
    for name, nb in _references(src):
        entry = _chapter_exercises(nb, name)
        chapters[str(entry.pop("chapter"))] = entry
    return json.dumps({"chapters": chapters}, indent=1, ensure_ascii=False) + "\n"


def answer_key(path=KEY) -> dict:
    """The grading key: {chapter: {"title", "module", "exercises": [{"id", "check", "answer", "expected"}, …]}}."""
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))["chapters"]
    except (OSError, ValueError, KeyError) as e:
        raise ValueError(f"cannot read the grading key {path}: {e}") from None


def build(src="notebooks", out=None, key=KEY) -> list[Path]:
    """Write the student edition of every notebook in src to out (default src/student) and the grading key;
    returns the paths written."""
    src = Path(src)
    out = Path(out) if out is not None else src / "student"
    if not src.is_dir():
        raise ValueError(f"no notebook folder at {src}")
    text = _key_text(src)                                # every check first: nothing is written if one fails
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for name, nb in _references(src):
        edition = student_notebook(nb, name)
        write_atomic(out / name, lambda tmp, nb=edition: nbformat.write(nb, tmp))
        written.append(out / name)
    write_atomic(key, lambda tmp: Path(tmp).write_text(text, encoding="utf-8"))
    return written + [Path(key)]


def out_of_date(src="notebooks", out=None, key=KEY) -> list[str]:
    """Names of the student editions in out, and of the key, that are missing or differ from what `build` writes."""
    src = Path(src)
    out = Path(out) if out is not None else src / "student"
    stale = []
    for name, nb in _references(src):
        path = out / name
        edition = student_notebook(nb, name)
        if not path.exists() or json.loads(nbformat.writes(edition)) != json.load(open(path, encoding="utf-8")):
            stale.append(name)
    if not Path(key).exists() or Path(key).read_text(encoding="utf-8") != _key_text(src):
        stale.append(Path(key).name)
    return stale


# ---- grading --------------------------------------------------------------------------------------------------

def _statements(source: str) -> set[str] | None:
    """The top-level statements of a cell (IPython syntax allowed; under a cell magic such as %%time, those of its
    body), as AST dumps; None when it does not parse."""
    from IPython.core.inputtransformer2 import TransformerManager
    if source.lstrip().startswith("%%"):
        source = source.lstrip().partition("\n")[2]
    try:
        return {ast.dump(s) for s in ast.parse(TransformerManager().transform_cell(source)).body}
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return None


def _holds(source: str, check: str) -> bool:
    """Whether a cell runs the check line as one of its own statements (not in a comment, string or branch)."""
    statements = _statements(source)
    if statements is None:                       # a syntax error elsewhere in the cell: match the line itself
        return check in source.splitlines()
    return ast.dump(ast.parse(check).body[0]) in statements


class _Kernel:
    """A fresh kernel in this Python environment (nbval's), running one cell at a time within a time limit."""

    def __init__(self, cwd: str, threads: int):
        from nbval.kernel import CURRENT_ENV_KERNEL_NAME, RunningKernel
        env = {"MPLBACKEND": "agg", **{v: str(threads) for v in ("OMP_NUM_THREADS", "MKL_NUM_THREADS",
                                                                 "OPENBLAS_NUM_THREADS")}}
        saved = {k: os.environ.get(k) for k in env}
        os.environ.update({k: v for k, v in env.items() if saved[k] is None})   # the kernel inherits them
        try:
            self.kernel = RunningKernel(CURRENT_ENV_KERNEL_NAME, cwd=cwd)
        finally:
            for k, v in saved.items():
                if v is None:
                    os.environ.pop(k, None)
        self.alive, self._closed = True, False

    def run(self, source: str, timeout: float) -> tuple[str, list, str]:
        """(outcome, rich outputs, detail): outcome is "ok", "error", "timeout" or "dead"."""
        from queue import Empty
        msg_id = self.kernel.execute_cell_input(source, allow_stdin=False)
        deadline, interrupted = time.monotonic() + timeout, False
        outputs, error = [], None
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                if interrupted:                                    # it ignored the interrupt: stop the kernel
                    self.stop()
                    return "dead", outputs, (f"it ran past the {timeout:g} s time limit and ignored the interrupt, "
                                             "so its kernel was shut down")
                self.kernel.interrupt()
                interrupted, deadline = True, time.monotonic() + GRACE
                continue
            try:
                msg = self.kernel.get_message("iopub", timeout=min(1.0, left))
            except Empty:
                if not self.kernel.is_alive():
                    self.alive = False
                    return "dead", outputs, "its kernel died (os._exit, a crash, or out of memory)"
                continue
            if msg["parent_header"].get("msg_id") != msg_id:
                continue
            kind, content = msg["msg_type"], msg["content"]
            if kind == "status" and content["execution_state"] == "idle":
                break
            if kind == "error":
                error = (content["ename"], content["evalue"])
            elif kind in ("display_data", "execute_result"):
                outputs.append(content["data"])
        if interrupted:
            return "timeout", outputs, f"it ran past the {timeout:g} s time limit and was interrupted"
        if error is not None:
            ename, evalue = error
            if ename == "SystemExit":
                return "error", outputs, f"it called sys.exit({evalue})"
            return "error", outputs, f"it raised {ename}: {evalue}" if evalue else f"it raised {ename}"
        return "ok", outputs, ""

    def stop(self) -> None:
        """Shut the kernel down (if it still runs) and close its channels; safe to call twice."""
        self.alive = False
        if not self._closed:
            self._closed = True
            try:
                self.kernel.stop()
            except Exception:                      # already gone
                pass


def _verdict(outcome: str, outputs: list, detail: str, exercise: dict, token: str) -> tuple[str, str]:
    """The verdict of one exercise from its grading cell, against the line the reference run printed."""
    from .exercises import VERDICT_MIME
    if outcome != "ok":
        return "error", f"grading the answer failed: {detail}"
    payload = next((p for o in outputs if isinstance(p := o.get(VERDICT_MIME), dict) and p.get("token") == token
                    and {"status", "message", "line"} <= p.keys()), None)
    if payload is None:
        return "error", "grading the answer printed no verdict"
    if payload["status"] == "correct" and payload["line"] != exercise["expected"]:
        return "error", (f"the check printed {payload['line']!r} but the reference chapter printed "
                         f"{exercise['expected']!r}: this lora_edu and its grading key disagree")
    return payload["status"], payload["message"]


def _row(path) -> dict:
    """A submission's result before grading: nothing scored yet."""
    return {"file": str(path), "chapter": None, "title": None, "score": 0, "out_of": 0, "exercises": {}, "notes": []}


def grade_notebook(path, timeout: float = TIMEOUT, threads: int | None = None, key: dict | None = None) -> dict:
    """Grade one submission: {"file", "chapter", "score", "out_of", "exercises": {id: {"verdict", "message"}}}, plus
    "error" when the file could not be graded at all."""
    timeout = check_real(timeout, "timeout", lo=0.0, lo_open=True)
    started = time.monotonic()
    result = _row(path)
    key = answer_key() if key is None else key
    path = Path(path)
    if path.is_symlink():
        result["error"] = f"a symbolic link (to {os.readlink(path)}), not a submission: grade the file itself"
        return result
    if not path.is_file():
        result["error"] = "not a regular file"
        return result
    try:
        nb = nbformat.read(path, as_version=4)
        cells = [c.source for c in nb.cells if c.cell_type == "code"]
        if not all(isinstance(source, str) for source in cells):
            raise ValueError("a code cell's source is not text")
    except Exception as e:
        result["error"] = f"not a readable notebook: {type(e).__name__}: {e}"
        return result
    meta = nb.metadata.get("lora_edu")
    chapter = meta.get("chapter") if isinstance(meta, dict) else None
    if str(chapter) not in key:
        result["error"] = (f"its metadata names no chapter of the course (lora_edu.chapter = {chapter!r}); was it "
                           "made from a student edition?")
        return result
    ref = key[str(chapter)]
    result.update(chapter=chapter, title=ref["title"], out_of=len(ref["exercises"]))
    verdicts = result["exercises"]
    at = {}                                                 # exercise id -> the last cell that runs its check line
    for e in ref["exercises"]:
        hits = [i for i, source in enumerate(cells) if _holds(source, e["check"])]
        if hits:
            at[e["id"]] = hits[-1]
        else:
            verdicts[e["id"]] = {"verdict": "tampered",
                                 "message": f"no cell runs the check line `{e['check']}` as the student edition has "
                                            "it: it was changed (renaming the answer counts) or removed"}
    threads = threads or os.cpu_count() or 1
    stopped = "the kernel stopped before this exercise's cell ran"
    failed = []                                               # other cells that raised or ran out of time
    with tempfile.TemporaryDirectory(prefix="lora-edu-grade-") as cwd:
        kernel = None
        try:
            kernel = _Kernel(cwd, threads)
            limit = min(TIME_LIMIT, timeout / 3)        # a check ends before its cell's time limit does
            outcome, _, detail = kernel.run(f'__import__("lora_edu.exercises", fromlist=["TIME_LIMIT"]).TIME_LIMIT '
                                            f'= {limit!r}', timeout)
            if outcome != "ok":
                raise RuntimeError(f"the grading kernel cannot import lora_edu.exercises: {detail}")
            for i, source in enumerate(cells):
                outcome, _, detail = kernel.run(source, timeout)
                waiting = [e for e in ref["exercises"] if at.get(e["id"]) == i]
                if outcome != "ok" and not waiting:
                    failed.append(f"{i + 1} ({detail})")
                for e in waiting:
                    if outcome != "ok":
                        verdicts[e["id"]] = {"verdict": "error", "message": f"the exercise's cell failed: {detail}"}
                        continue
                    token = secrets.token_hex(8)             # what a verdict printed by anyone else lacks
                    grader = (f'__import__("lora_edu.exercises", fromlist=["report"]).report('
                              f'"{ref["module"]}", "{e["name"]}", lambda: ({e["answer"]}), "{token}")')
                    status, message = _verdict(*kernel.run(grader, timeout), e, token)
                    verdicts[e["id"]] = {"verdict": status, "message": message}
                if not kernel.alive:
                    stopped = f"the kernel stopped in code cell {i + 1}, before this exercise's cell ran: {detail}"
                    break
        except Exception as e:                               # the kernel could not start, or stopped answering
            stopped = f"grading stopped: {type(e).__name__}: {e}"
        finally:
            if kernel is not None:
                kernel.stop()
    for e in ref["exercises"]:
        verdicts.setdefault(e["id"], {"verdict": "error", "message": stopped})
    result["exercises"] = {e["id"]: verdicts[e["id"]] for e in ref["exercises"]}
    result["score"] = sum(v["verdict"] == "correct" for v in result["exercises"].values())
    if any(BEGIN in source for source in cells):
        result["notes"].append(f"it holds the reference chapter's solution markers ({BEGIN}): a copy of the "
                               "reference?")
    if failed:
        result["notes"].append(f"{len(failed)} other code cell(s) failed: " + "; ".join(failed[:5])
                               + (" …" if len(failed) > 5 else ""))
    result["seconds"] = round(time.monotonic() - started, 1)
    return result


def submissions(paths) -> list[Path]:
    """The notebooks to grade, each once: files as given, folders searched for *.ipynb (checkpoints skipped).
    What a folder lists that is not a notebook file (a link, a pipe) is kept, for its row to say so."""
    if isinstance(paths, (str, os.PathLike)):
        paths = [paths]
    paths = list(paths)
    if not paths:
        raise ValueError("paths must name at least one notebook or folder of notebooks")
    found, seen = [], set()
    for p in map(Path, paths):
        if p.is_dir() and not p.is_symlink():
            listed = sorted(q for q in p.rglob("*.ipynb") if ".ipynb_checkpoints" not in q.parts and not q.is_dir())
        elif not p.name.endswith(".ipynb"):                    # named by hand: a typo, not a submission's row
            raise ValueError(f"{p} is not a notebook: submissions are .ipynb files (or folders of them)")
        elif p.exists() or p.is_symlink():
            listed = [p]
        else:
            raise ValueError(f"no such file or folder: {p}")
        for q in listed:
            if (where := os.path.abspath(q)) not in seen:
                seen.add(where)
                found.append(q)
    if not found:
        raise ValueError(f"no notebooks to grade in {', '.join(map(str, paths))}")
    return found


def _failed(f, e: BaseException) -> dict:
    return {**_row(f), "error": f"grading failed: {type(e).__name__}: {e}"}


def grade(paths, timeout: float = TIMEOUT, jobs: int | None = None, progress: bool = True) -> list[dict]:
    """Grade every submission in paths (files or folders), `jobs` at a time, in their order; a submission that
    breaks the grader itself gets a row saying so, and the others are still graded."""
    from concurrent.futures import ProcessPoolExecutor, as_completed

    from tqdm.auto import tqdm
    timeout = check_real(timeout, "timeout", lo=0.0, lo_open=True)
    jobs = None if jobs is None else check_int(jobs, "jobs", 1)
    files = submissions(paths)
    key = answer_key()
    jobs = max(1, min(jobs or os.cpu_count() or 1, len(files)))
    threads = max(1, (os.cpu_count() or 1) // jobs)
    bar = tqdm(total=len(files), desc="grading", unit="notebook", disable=not progress, file=sys.stderr)
    results = {}
    if jobs == 1:
        for f in files:
            try:
                results[f] = grade_notebook(f, timeout, threads, key)
            except Exception as e:
                results[f] = _failed(f, e)
            bar.update()
    else:
        with ProcessPoolExecutor(jobs) as pool:
            running = {pool.submit(grade_notebook, f, timeout, threads, key): f for f in files}
            for done in as_completed(running):
                f = running[done]
                try:
                    results[f] = done.result()
                except Exception as e:                       # a worker that died: that submission only
                    results[f] = _failed(f, e)
                bar.update()
    bar.close()
    return [results[f] for f in files]


def _ids(results) -> list[str]:
    ids = {i for r in results for i in r["exercises"]}
    return sorted(ids, key=lambda i: tuple(int(p) for p in i.split(".")))


def gradebook_csv(results) -> str:
    """One row per submission, one column per exercise (its verdict)."""
    ids = _ids(results)
    out = io.StringIO()
    w = csv.writer(out, lineterminator="\n")
    w.writerow(["file", "chapter", "score", "out_of", *ids, "error", "notes"])
    for r in results:
        w.writerow([r["file"], r["chapter"] if r["chapter"] is not None else "", r["score"], r["out_of"],
                    *(r["exercises"].get(i, {}).get("verdict", "") for i in ids), r.get("error", ""),
                    "; ".join(r.get("notes", []))])
    return out.getvalue()


def report_text(results) -> str:
    """A table per submission and its score."""
    lines = []
    for r in results:
        if "error" in r:
            lines += [f"{r['file']}: not graded — {r['error']}", ""]
            continue
        lines.append(f"{r['file']} — chapter {r['chapter']} ({r['title']}): {r['score']} / {r['out_of']}")
        for i, v in r["exercises"].items():
            shown = v["verdict"] in ("wrong", "error", "tampered")
            message = re.sub(r"^Exercise [\d.]+: not yet — ", "", v["message"]) if shown else ""
            lines.append(f"  {i:<5} {v['verdict']:<14} {message}".rstrip())
        lines += [f"  note: {n}" for n in r.get("notes", [])] + [""]
    return "\n".join(lines)


def grade_main(argv=None) -> int:
    """`lora-edu grade`: exit 0 when every submission was graded (whatever the scores), 1 when some could not be (each
    has a row saying why), 2 when grading cannot run."""
    from .cli import _Parser
    p = _Parser(prog="lora-edu grade", description="Re-execute submissions in fresh kernels and "
                                "judge every exercise against the reference chapters.",
                epilog="Exit status: 0 every submission graded (whatever the scores); 1 some could not be graded "
                       "(their rows say why); 2 grading could not run.")
    p.add_argument("paths", nargs="+", metavar="SUBMISSION.ipynb|FOLDER")
    p.add_argument("--json", type=Path, help="write every verdict to this JSON file")
    p.add_argument("--csv", type=Path, help="write a gradebook (one row per submission) to this CSV file")
    p.add_argument("--timeout", type=float, default=TIMEOUT, help=f"seconds per cell (default {TIMEOUT:g})")
    p.add_argument("--jobs", type=int, default=None, help="submissions graded at once (default: the CPU count)")
    args = p.parse_args(argv)
    try:
        if not 1 <= args.timeout < float("inf"):
            raise ValueError(f"--timeout must be a number of seconds, at least 1; got {args.timeout:g}")
        if args.jobs is not None and args.jobs < 1:
            raise ValueError(f"--jobs must be at least 1; got {args.jobs}")
        files = submissions(args.paths)
        _writable([p for p in (args.json, args.csv) if p is not None], files)
        answer_key()
        _preflight()
    except ValueError as e:
        print(f"lora-edu grade: error: {e}", file=sys.stderr)
        return 2
    started = time.monotonic()
    try:
        results = grade(files, args.timeout, args.jobs, progress=len(files) > 1)
    except KeyboardInterrupt:
        print("lora-edu grade: interrupted; nothing written", file=sys.stderr)
        return 130
    print(report_text(results))
    graded = [r for r in results if "error" not in r]
    print(f"graded {len(graded)} of {len(results)} submissions in {time.monotonic() - started:.0f} s")
    for path, text in ((args.json, lambda: json.dumps({"submissions": results}, indent=1, ensure_ascii=False)),
                       (args.csv, lambda: gradebook_csv(results))):
        if path is not None:
            write_atomic(path, lambda tmp, t=text(): Path(tmp).write_text(t, encoding="utf-8"))
            print(f"wrote {path}")
    return 0 if len(graded) == len(results) else 1


def _writable(outputs: list[Path], files: list[Path]) -> None:
    """Refuse, before any grading, output files that cannot be written or that would overwrite a submission."""
    inputs = {os.path.abspath(f) for f in files}
    if len({os.path.abspath(p) for p in outputs}) < len(outputs):
        raise ValueError("--json and --csv name the same file")
    for p in outputs:
        if os.path.abspath(p) in inputs:
            raise ValueError(f"{p} is one of the submissions; write the results elsewhere")
        if p.is_dir():
            raise ValueError(f"{p} is a folder; name a file to write")
        if not p.parent.is_dir():
            raise ValueError(f"cannot write {p}: there is no folder {p.parent}")
        if not os.access(p.parent, os.W_OK) or (p.exists() and not os.access(p, os.W_OK)):
            raise ValueError(f"cannot write {p}: permission denied")


def _preflight() -> None:
    """Start one kernel and import the exercises in it, or raise ValueError saying why grading cannot run."""
    with tempfile.TemporaryDirectory() as cwd:
        try:
            kernel = _Kernel(cwd, 1)
        except Exception as e:
            raise ValueError(f"cannot start a Python kernel for grading ({type(e).__name__}: {e}); is ipykernel "
                             "installed in this environment?") from None
        try:
            outcome, _, detail = kernel.run("import lora_edu.exercises", 120)
        finally:
            kernel.stop()
    if outcome != "ok":
        raise ValueError(f"the grading kernel cannot import lora_edu.exercises: {detail}")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m lora_edu.course", description=__doc__.split("\n\n")[0])
    p.add_argument("command", choices=["student", "check"])
    p.add_argument("--src", default="notebooks", help="folder of the reference chapters (default: notebooks)")
    p.add_argument("--out", default=None, help="folder of the student editions (default: SRC/student)")
    p.add_argument("--key", default=KEY, type=Path, help=f"the grading key (default: {KEY})")
    args = p.parse_args(argv)
    if args.command == "student":
        for path in build(args.src, args.out, args.key):
            print(f"wrote {path}")
        return 0
    stale = out_of_date(args.src, args.out, args.key)
    if stale:
        print("out of date (run `python -m lora_edu.course student`): " + ", ".join(stale))
        return 1
    print("student editions and grading key are up to date")
    return 0


if __name__ == "__main__":
    sys.exit(main())
