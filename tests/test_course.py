"""Student editions: the builder, their sync with the sources, and grading with nbval both ways."""
import json
import re
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from lora_edu.course import build, main, out_of_date, strip_solutions, student_notebook

ROOT = Path(__file__).resolve().parent.parent
SOURCES = sorted((ROOT / "notebooks").glob("*.ipynb"))
PLACEHOLDER = re.compile(r"YOUR (ANSWER|CODE) HERE")


def test_placeholders_for_values_and_functions():
    src = '''x = 1
### BEGIN SOLUTION
helper = [1, 2]
answer, other = helper
def f(a, b=2):
    """Add."""
    c = a + b
    return c
@staticmethod
def g(a):
    return a
### END SOLUTION
ex.check(answer)'''
    out = strip_solutions(src)
    assert out == '''x = 1
helper = ...  # YOUR ANSWER HERE
answer = ...  # YOUR ANSWER HERE
other = ...  # YOUR ANSWER HERE
def f(a, b=2):
    """Add."""
    raise NotImplementedError  # YOUR CODE HERE
@staticmethod
def g(a):
    raise NotImplementedError  # YOUR CODE HERE
ex.check(answer)'''
    indented = "if True:\n    ### BEGIN SOLUTION\n    y = 2\n    ### END SOLUTION\n    print(y)"
    assert strip_solutions(indented) == "if True:\n    y = ...  # YOUR ANSWER HERE\n    print(y)"
    assert strip_solutions("no markers here") == "no markers here"


@pytest.mark.parametrize("src, match", [
    ("### BEGIN SOLUTION\nx = 1", r"'### BEGIN SOLUTION' on line 1 has no matching '### END SOLUTION'"),
    ("x = 1\n### END SOLUTION", r"'### END SOLUTION' on line 2 has no '### BEGIN SOLUTION' before it"),
    ("### BEGIN SOLUTION\n### BEGIN SOLUTION\nx = 1\n### END SOLUTION\n### END SOLUTION", "inside the one opened on line 1"),
    ("### BEGIN SOLUTION\n### END SOLUTION", "is empty"),
    ("### BEGIN SOLUTION\nprint(1)\n### END SOLUTION", "nothing to leave a placeholder for"),
    ("### BEGIN SOLUTION\nx = (\n### END SOLUTION", "does not parse"),
])
def test_bad_markers_name_the_notebook_and_cell(src, match):
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell("hi"), nbformat.v4.new_code_cell(src)])
    with pytest.raises(ValueError, match=match) as e:
        student_notebook(nb, "07_demo.ipynb")
    assert str(e.value).startswith("07_demo.ipynb, cell 1")


def test_student_notebook_keeps_outputs_and_everything_else():
    cell = nbformat.v4.new_code_cell("### BEGIN SOLUTION\na = 2\n### END SOLUTION\nex.check(a)")
    cell.outputs = [nbformat.v4.new_output("stream", text="✓ correct\n")]
    nb = nbformat.v4.new_notebook(cells=[cell, nbformat.v4.new_markdown_cell("### BEGIN SOLUTION in prose")])
    out = student_notebook(nb)
    assert out.cells[0].source == "a = ...  # YOUR ANSWER HERE\nex.check(a)"
    assert out.cells[0].outputs == cell.outputs and out.cells[1] == nb.cells[1]
    assert nb.cells[0].source.startswith("### BEGIN")  # the source notebook is untouched


def test_committed_student_editions_are_in_sync(tmp_path, capsys):
    assert SOURCES, "no chapter notebooks found"
    assert out_of_date(ROOT / "notebooks") == []
    assert main(["check", "--src", str(ROOT / "notebooks")]) == 0
    # and a stale edition is caught, by name
    copy = tmp_path / "nbs"
    copy.mkdir()
    for p in SOURCES:
        (copy / p.name).write_bytes(p.read_bytes())
    build(copy)
    assert out_of_date(copy) == []
    edition = copy / "student" / SOURCES[0].name
    nb = json.loads(edition.read_text())
    nb["cells"][-1]["source"] = "tampered"
    edition.write_text(json.dumps(nb))
    assert main(["check", "--src", str(copy)]) == 1
    assert SOURCES[0].name in capsys.readouterr().out


def nbval(path):
    """Grade one notebook as an instructor would, in a separate pytest run."""
    return subprocess.run([sys.executable, "-m", "pytest", "--nbval", "--nbval-current-env", "-p", "no:cacheprovider",
                           "-q", "-rf", "--no-header", str(path)], cwd=path.parent, capture_output=True, text=True,
                          timeout=600)


def exercise_cells(nb):
    """nbval's numbering: 'Cell N' counts code cells only."""
    code = [c for c in nb.cells if c.cell_type == "code"]
    return {i for i, c in enumerate(code) if PLACEHOLDER.search(c.source)}


@pytest.mark.parametrize("source", SOURCES, ids=lambda p: p.name)
def test_student_edition_with_solutions_put_back_is_the_tested_source(source):
    """Putting the solutions back gives the source notebook exactly, which the main nbval run passes."""
    student = nbformat.read(ROOT / "notebooks" / "student" / source.name, as_version=4)
    solved = nbformat.read(source, as_version=4)
    assert len(student.cells) == len(solved.cells)
    assert exercise_cells(student), "every chapter has exercises"
    differ = {i for i, (a, b) in enumerate(zip(student.cells, solved.cells)) if a != b}
    code_index = {i: k for k, i in enumerate(i for i, c in enumerate(student.cells) if c.cell_type == "code")}
    assert {code_index[i] for i in differ} == exercise_cells(student)  # only the exercise cells differ ...
    for i in differ:
        assert student.cells[i].outputs == solved.cells[i].outputs    # ... and only in their source
        student.cells[i].source = solved.cells[i].source
    assert student == solved


@pytest.mark.parametrize("source", SOURCES, ids=lambda p: p.name)
def test_untouched_student_edition_fails_exactly_at_the_exercises(source):
    path = ROOT / "notebooks" / "student" / source.name
    run = nbval(path)
    failed = {int(n) for n in re.findall(rf"FAILED \S*{re.escape(source.name)}::Cell (\d+)", run.stdout)}
    assert run.returncode == 1, run.stdout[-2000:]
    assert failed == exercise_cells(nbformat.read(path, as_version=4)), run.stdout[-3000:]
    assert "not attempted yet" in run.stdout


def test_a_learners_own_correct_answers_pass_grading(tmp_path):
    """Grading compares outputs, so a different but correct answer must print the same verdict."""
    source = ROOT / "notebooks" / "01_matrix_rank.ipynb"
    nb = nbformat.read(ROOT / "notebooks" / "student" / source.name, as_version=4)
    solved = nbformat.read(source, as_version=4)
    mine = {"answer_1 = ": "answer_1 = [[1, 2, 0, 0], [2, 4, 0, 0], [0, 0, 0, 1], [0, 0, 0, 5]]  # rank 2",
            "tol = ": "tol = 0.5", "answer_2 = ": "answer_2 = 4 - 2", "answer_5 = ": "answer_5 = 3.0"}
    for cell, ref in zip(nb.cells, solved.cells):
        if cell.cell_type == "code" and "YOUR CODE HERE" in cell.source:
            cell.source = ref.source  # the reference solution for the function (my_rank) ...
        elif cell.cell_type == "code" and PLACEHOLDER.search(cell.source):  # ... and the learner's own answers
            cell.source = "\n".join(next((v for k, v in mine.items() if ln.startswith(k)), ln)
                                    for ln in cell.source.splitlines())
            assert not PLACEHOLDER.search(cell.source)
    path = tmp_path / source.name
    nbformat.write(nb, path)
    run = nbval(path)
    assert run.returncode == 0, run.stdout[-3000:]
