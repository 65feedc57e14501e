"""Coursework: student editions that reveal nothing, the grading key, and `lora-edu grade` on whole classes.

The grading runs start real kernels. To stay fast on two cores, each scenario is graded once, in one of three
`lora-edu grade` commands (a class of ten, a folder of crafted submissions, and one with a short time limit),
and the tests read their JSON, CSV and output. Chapters 5 and 6 take minutes: their submissions are graded on the
chapter's first code cell and its exercise section — every other cell of a student edition is the reference's
(test_student_edition_reveals_nothing), which the nbval run of notebooks/ executes in full.
"""
import copy
import csv
import io
import json
import re
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from lora_edu import course
from lora_edu.course import (BEGIN, END, answer_key, build, grade_notebook, gradebook_csv, main, out_of_date,
                             report_text, strip_solutions, student_notebook)

ROOT = Path(__file__).resolve().parent.parent
SOURCES = sorted((ROOT / "notebooks").glob("*.ipynb"))
STUDENT = ROOT / "notebooks" / "student"
KEY = answer_key()


def read(path):
    return nbformat.read(path, as_version=4)


def exercise_cells(nb):
    """Indices (in nb.cells) of the cells that hold a solution block."""
    return [i for i, c in enumerate(nb.cells) if c.cell_type == "code" and BEGIN in c.source]


# ---- student editions -----------------------------------------------------------------------------------------

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


def test_outputs_that_depend_on_an_answer_are_dropped_and_the_rest_kept():
    def cell(source, printed):
        c = nbformat.v4.new_code_cell(source)
        c.outputs, c.execution_count = [nbformat.v4.new_output("stream", text=printed)], 1
        return c
    cells = [cell("x = 2\nprint(x)", "2\n"),
             cell("### BEGIN SOLUTION\nanswer = x + 1\n### END SOLUTION\nex.check(answer)", "✓ correct\n"),
             cell("print(answer * 10)", "30\n"),                     # depends on the answer
             cell("print('unrelated', x)", "unrelated 2\n"),
             cell("answers = 5\nprint(answers)", "5\n")]              # a longer name is another name
    nb = nbformat.v4.new_notebook(cells=cells, metadata={"lora_edu": {"chapter": 9}})
    out = student_notebook(nb)
    assert [c.outputs for c in out.cells] == [cells[0].outputs, [], [], cells[3].outputs, cells[4].outputs]
    assert out.cells[1].execution_count is None and out.cells[0].execution_count == 1
    assert out.metadata == nb.metadata
    assert nb.cells[1].outputs and nb.cells[1].source.startswith(BEGIN)      # the reference is untouched


def test_committed_student_editions_and_key_are_in_sync(tmp_path, capsys):
    assert len(SOURCES) == 6
    assert out_of_date(ROOT / "notebooks") == []
    assert main(["check", "--src", str(ROOT / "notebooks")]) == 0
    # a stale edition, and a stale key, are caught by name
    copy_ = tmp_path / "nbs"
    copy_.mkdir()
    for p in SOURCES:
        (copy_ / p.name).write_bytes(p.read_bytes())
    key = tmp_path / "key.json"
    build(copy_, key=key)
    assert out_of_date(copy_, key=key) == [] and json.loads(key.read_text())["chapters"] == KEY
    edition = copy_ / "student" / SOURCES[0].name
    nb = json.loads(edition.read_text())
    nb["cells"][-1]["source"] = "tampered"
    edition.write_text(json.dumps(nb))
    key.write_text(key.read_text().replace("Exercise 1.1: correct", "Exercise 1.1: wrong"))
    assert main(["check", "--src", str(copy_), "--key", str(key)]) == 1
    said = capsys.readouterr().out
    assert SOURCES[0].name in said and "key.json" in said


@pytest.mark.parametrize("source", SOURCES, ids=lambda p: p.name)
def test_student_edition_reveals_nothing(source):
    """No ✓, no solution, no output in an exercise cell; every other cell as in the reference, outputs and all."""
    text = (STUDENT / source.name).read_text(encoding="utf-8")
    assert "✓" not in text and BEGIN not in text and END not in text
    student, solved = read(STUDENT / source.name), read(source)
    assert len(student.cells) == len(solved.cells) and student.metadata == solved.metadata
    exercises = exercise_cells(solved)
    assert exercises, "every chapter has exercises"
    for i, (mine, ref) in enumerate(zip(student.cells, solved.cells)):
        if i not in exercises:
            assert mine == ref
            continue
        assert mine.outputs == [] and mine.execution_count is None
        block = ref.source.split(BEGIN)[1].split(END)[0].splitlines()
        kept = set(mine.source.splitlines())                          # a function's signature and docstring stay
        body = [ln for ln in block if ln.strip() and ln not in kept]
        assert body and not any(ln in mine.source for ln in body), (i, body)
        assert "YOUR ANSWER HERE" in mine.source or "YOUR CODE HERE" in mine.source


def test_the_key_lists_every_exercise_with_its_reference_line():
    from importlib import import_module
    assert sorted(KEY, key=int) == ["1", "2", "3", "4", "5", "6"]
    for chapter, entry in KEY.items():
        module = import_module(entry["module"])
        ids = [e["id"] for e in entry["exercises"]]
        assert ids == sorted(ids, key=lambda i: int(i.split(".")[1])) and all(i.startswith(chapter + ".") for i in ids)
        for e in entry["exercises"]:
            exercise = getattr(module, e["name"])
            assert e["expected"] == f"✓ Exercise {e['id']}: correct — {exercise._correct}"
            assert e["check"] == f"ex.{e['name']}.check({e['answer']})"
    assert KEY["1"]["title"] == "Matrix rank" and KEY["1"]["notebook"] == "01_matrix_rank.ipynb"


def test_the_key_refuses_a_chapter_it_cannot_grade(tmp_path):
    nb = read(SOURCES[0])
    broken = {"no lora_edu.chapter number": lambda nb: nb.metadata.pop("lora_edu"),
              "exactly one line ex.NAME.check": lambda nb: setattr(nb.cells[exercise_cells(nb)[0]], "source",
                                                                   "### BEGIN SOLUTION\nx = 1\n### END SOLUTION"),
              "did not print ✓": lambda nb: setattr(nb.cells[exercise_cells(nb)[0]], "outputs", [])}
    for problem, spoil in broken.items():
        bad = copy.deepcopy(nb)
        spoil(bad)
        folder = tmp_path / problem.replace(" ", "_").replace(".", "")
        folder.mkdir()
        nbformat.write(bad, folder / SOURCES[0].name)
        with pytest.raises(ValueError, match=problem):
            build(folder, key=tmp_path / "key.json")
        assert not (folder / "student").exists() and not (tmp_path / "key.json").exists()   # nothing half-written


# ---- finding an exercise in a submission ------------------------------------------------------------------------

@pytest.mark.parametrize("source, holds", [
    ("answer_1 = 3\nex.rank_two.check(answer_1)", True),
    ("ex.rank_two.check( answer_1 )  # spaces and a comment do not matter", True),
    ("%matplotlib inline\nanswer_1 = 3\nex.rank_two.check(answer_1)", True),
    ("answer_1 = [[1, 2]\nex.rank_two.check(answer_1)", True),          # a syntax error: found by its line
    ("# ex.rank_two.check(answer_1)\nprint('✓ Exercise 1.1: correct')", False),
    ("'''\nex.rank_two.check(answer_1)\n'''", False),
    ("if False:\n    ex.rank_two.check(answer_1)", False),
    ("ex.rank_two.check(other_answer)", False),
    ("ex.rank_two.check(answer_1) if False else None", False),
    ("%%time\nanswer_1 = 3\nex.rank_two.check(answer_1)", True),       # a cell magic runs its body
    ("x = " + "1+" * 50_000 + "1\nex.rank_two.check(answer_1)", True),   # too deep for the parser: by its line
])
def test_the_check_line_must_run_as_it_is(source, holds):
    assert course._holds(source, "ex.rank_two.check(answer_1)") is holds


# ---- grading without a kernel ----------------------------------------------------------------------------------

def test_submissions_that_cannot_be_graded_are_reported_not_fatal(tmp_path):
    (tmp_path / "garbage.ipynb").write_text("{ not json")
    nb = read(STUDENT / SOURCES[0].name)
    nb.metadata.pop("lora_edu")
    nbformat.write(nb, tmp_path / "no_chapter.ipynb")
    nb.metadata["lora_edu"] = {"chapter": 99}
    nbformat.write(nb, tmp_path / "chapter_99.ipynb")
    for name, said in [("garbage.ipynb", "not a readable notebook"), ("no_chapter.ipynb", "names no chapter"),
                       ("chapter_99.ipynb", "lora_edu.chapter = 99")]:
        result = grade_notebook(tmp_path / name)
        assert said in result["error"] and result["score"] == 0 and result["exercises"] == {}
    assert "not graded — not a readable notebook" in report_text([grade_notebook(tmp_path / "garbage.ipynb")])


def test_what_a_folder_holds_besides_notebooks_gets_a_row_each(tmp_path):
    import os
    folder = tmp_path / "class"
    (folder / "deep.ipynb").mkdir(parents=True)                        # a folder named like a notebook
    (folder / "deep.ipynb" / "inner.ipynb").write_bytes((STUDENT / SOURCES[0].name).read_bytes())
    (folder / "dangling.ipynb").symlink_to(tmp_path / "nowhere.ipynb")
    (folder / "reference.ipynb").symlink_to(SOURCES[0])
    os.mkfifo(folder / "pipe.ipynb")
    nb = read(STUDENT / SOURCES[0].name)
    nb.cells[1].source = 5                                             # not text
    (folder / "numeric.ipynb").write_text(json.dumps(nb))
    found = course.submissions([folder, folder / "deep.ipynb" / "inner.ipynb", folder / "pipe.ipynb"])
    assert [f.name for f in found] == ["dangling.ipynb", "inner.ipynb", "numeric.ipynb", "pipe.ipynb",
                                       "reference.ipynb"]                  # each once, in order
    said = {f.name: grade_notebook(f).get("error", "") for f in found if f.name != "inner.ipynb"}
    assert "symbolic link" in said["dangling.ipynb"] and "symbolic link" in said["reference.ipynb"]
    assert said["pipe.ipynb"] == "not a regular file" and "source is not text" in said["numeric.ipynb"]


def test_the_command_refuses_what_it_cannot_grade(tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    submission = tmp_path / "mine.ipynb"
    submission.write_bytes((STUDENT / SOURCES[0].name).read_bytes())
    for args, said in [([str(tmp_path / "missing.ipynb")], "no such file or folder"),
                       ([str(tmp_path / "empty")], "no notebooks to grade"),
                       ([str(tmp_path / "essay.txt")], "is not a notebook: submissions are .ipynb files"),
                       ([str(STUDENT), "--timeout", "0"], "--timeout must be a number of seconds, at least 1"),
                       ([str(STUDENT), "--timeout", "inf"], "--timeout must be a number of seconds, at least 1"),
                       ([str(STUDENT), "--jobs", "0"], "--jobs must be at least 1"),
                       ([str(submission), "--json", str(tmp_path / "no" / "v.json")], "there is no folder"),
                       ([str(submission), "--csv", str(submission)], "is one of the submissions"),
                       ([str(submission), "--csv", str(tmp_path / "g"), "--json", str(tmp_path / "g")], "same file"),
                       ([str(submission), "--csv", str(tmp_path)], "is a folder")]:
        assert course.grade_main(args) == 2
        err = capsys.readouterr().err
        assert err.startswith("lora-edu grade: error:") and said in err and err.count("\n") == 1


def test_report_and_gradebook():
    results = [{"file": "a.ipynb", "chapter": 1, "title": "Matrix rank", "score": 1, "out_of": 2,
                "exercises": {"1.1": {"verdict": "correct", "message": "Exercise 1.1: correct — fine."},
                              "1.10": {"verdict": "wrong", "message": "Exercise 1.10: not yet — no, 3."}},
                "notes": ["a", "b"]},
               {"file": "b.ipynb", "chapter": None, "score": 0, "out_of": 0, "exercises": {}, "error": "unreadable"}]
    text = report_text(results)
    assert "a.ipynb — chapter 1 (Matrix rank): 1 / 2" in text and "  1.10  wrong          no, 3." in text
    assert "  1.1   correct\n" in text and "b.ipynb: not graded — unreadable" in text
    rows = list(csv.reader(io.StringIO(gradebook_csv(results))))
    assert rows == [["file", "chapter", "score", "out_of", "1.1", "1.10", "error", "notes"],
                    ["a.ipynb", "1", "1", "2", "correct", "wrong", "", "a; b"],
                    ["b.ipynb", "", "0", "0", "", "", "unreadable", ""]]
    assert "  note: a\n  note: b\n" in text


# ---- grading whole submissions -----------------------------------------------------------------------------------

def grade_cli(tmp_path, *paths, timeout=None, jobs=2, status=0):
    """`lora-edu grade` as an instructor runs it (its exit status must be `status`); returns (output, JSON results,
    CSV rows)."""
    args = [sys.executable, "-m", "lora_edu.cli", "grade", *map(str, paths), "--json", str(tmp_path / "out.json"),
            "--csv", str(tmp_path / "out.csv"), "--jobs", str(jobs)] + (["--timeout", str(timeout)] if timeout else [])
    run = subprocess.run(args, cwd=tmp_path, capture_output=True, text=True, timeout=1500)
    assert run.returncode == status, run.stdout[-3000:] + run.stderr[-3000:]
    results = {Path(r["file"]).name: r for r in json.loads((tmp_path / "out.json").read_text())["submissions"]}
    return run.stdout, results, list(csv.DictReader(open(tmp_path / "out.csv", encoding="utf-8")))


def verdicts(result):
    return {i: v["verdict"] for i, v in result["exercises"].items()}


def message(result, exercise):
    return result["exercises"][exercise]["message"]


def edit(nb, exercise, source=None, before=None):
    """Change the cell of `exercise` (its id) in a student edition: replace its source, or put lines before it."""
    entry = next(e for e in KEY[exercise.split(".")[0]]["exercises"] if e["id"] == exercise)
    cell = next(c for c in nb.cells if c.cell_type == "code" and entry["check"] in c.source)
    cell.source = source if source is not None else before + "\n" + cell.source
    return nb


def trimmed(nb):
    """The chapter's first code cell and its exercise section: enough to grade its solutions quickly."""
    start = next(i for i, c in enumerate(nb.cells) if "from lora_edu.exercises import" in c.source)
    first = next(c for c in nb.cells if c.cell_type == "code")
    nb.cells = [first] + nb.cells[start:]
    return nb


def with_reference_outputs(nb, solved):
    """A student edition whose stored outputs were copied from the reference run (✓ lines and all)."""
    for mine, ref in zip(nb.cells, solved.cells):
        if mine.cell_type == "code":
            mine.outputs = copy.deepcopy(ref.outputs)
    return nb


@pytest.fixture(scope="module")
def a_class(tmp_path_factory):
    """Ten submissions in one folder: the solved chapters 1–4 and the untouched student editions of 1–6, renamed."""
    folder = tmp_path_factory.mktemp("class")
    for k, source in enumerate(SOURCES[:4]):
        (folder / f"solved_{k + 1}.ipynb").write_bytes(source.read_bytes())
    for k, source in enumerate(SOURCES[:4]):
        (folder / f"untouched_{k + 1}.ipynb").write_bytes((STUDENT / source.name).read_bytes())
    for k in (5, 6):                                   # their other cells are the reference's, which nbval runs
        nbformat.write(trimmed(read(STUDENT / SOURCES[k - 1].name)), folder / f"untouched_{k}.ipynb")
    return grade_cli(folder.parent, folder)


def test_reference_solutions_grade_all_correct(a_class):
    out, results, _ = a_class
    for k in range(1, 5):
        r = results[f"solved_{k}.ipynb"]
        assert r["chapter"] == k and r["score"] == r["out_of"] == len(KEY[str(k)]["exercises"]), r
        assert set(verdicts(r).values()) == {"correct"}
        assert r["notes"] == [f"it holds the reference chapter's solution markers ({BEGIN}): a copy of the reference?"]
    assert "solved_1.ipynb — chapter 1 (Matrix rank): 5 / 5" in out


def test_untouched_student_editions_grade_all_not_attempted(a_class):
    _, results, _ = a_class
    for k in range(1, 7):
        r = results[f"untouched_{k}.ipynb"]
        assert r["chapter"] == k and r["score"] == 0 and "error" not in r and r["notes"] == [], r
        assert list(verdicts(r)) == [e["id"] for e in KEY[str(k)]["exercises"]]
        assert set(verdicts(r).values()) == {"not attempted"}, r
        assert all("not attempted yet" in v["message"] for v in r["exercises"].values())


def test_a_class_in_one_command_with_its_gradebook(a_class):
    out, results, rows = a_class
    assert len(rows) == len(results) == 10
    assert "graded 10 of 10 submissions" in out
    for row in rows:
        r = results[Path(row["file"]).name]
        assert int(row["score"]) == r["score"] and int(row["out_of"]) == r["out_of"]
        assert {i: row[i] for i in verdicts(r)} == verdicts(r)
        assert all(row[i] == "" for i in row if re.fullmatch(r"\d+\.\d+", i) and i not in r["exercises"])


@pytest.fixture(scope="module")
def crafted(tmp_path_factory):
    """Submissions that try everything: other correct answers, wrong ones, a changed check line, a fake `ex`,
    sys.exit, a dead kernel, a broken file; the solutions of chapters 5 and 6 on their exercise sections."""
    folder = tmp_path_factory.mktemp("crafted")
    student = {k: read(STUDENT / s.name) for k, s in enumerate(SOURCES, 1)}
    solved = {k: read(s) for k, s in enumerate(SOURCES, 1)}

    nb = with_reference_outputs(student[2], solved[2])      # 2.4 stays blank under its copied ✓
    edit(nb, "2.1", before="import sys\nsys.exit(1)")
    edit(nb, "2.2", source="from lora_edu.svd import rank_factorize\nC = ex.factor_it.data['C']\n"
                           "M_C, N_C = rank_factorize(C)\nex.factor_it.check((M_C, N_C))")
    reference = next(c.source for c in solved[2].cells if "ex.ellipse_error.check" in c.source)
    edit(nb, "2.3", source="\n".join(ln for ln in reference.splitlines() if "SOLUTION" not in ln))
    edit(nb, "2.5", source="answer_5 = 188\nex.break_even.check(answer_5)")
    nb.cells.insert(5, nbformat.v4.new_code_cell("print(my_typo)"))          # a cell of the learner's that fails
    nbformat.write(nb, folder / "Ada Lovelace - chapter two (final).ipynb")

    nb = student[3]
    edit(nb, "3.1", source="answer_1 = [[768, 3072], (3072, 768)]\nex.layer_shapes.check(answer_1)")
    edit(nb, "3.2", source="answer_2 = 768\nex.bottleneck_rank.check(answer_2)")
    edit(nb, "3.3", before="import os\nos._exit(1)")
    nbformat.write(nb, folder / "dies.ipynb")

    nb = student[4]
    edit(nb, "4.1", source="answer_1 = 2 * 8 * 4096\nex.adapter_size.check(answer_1)")
    edit(nb, "4.2", source="def lora_forward(X, W, b, M, N, scale):\n    return X @ (W + scale * (M @ N)) + b\n"
                           "ex.lora_forward.check(lora_forward)")
    edit(nb, "4.3", source="ex.merge_weight.check(lambda W, M, N, s: W + M @ N * s)")   # right, but not the line
    nb.cells.insert(len(nb.cells) - 1, nbformat.v4.new_code_cell(
        "class Always:\n    def __getattr__(self, name):\n        return self\n    def check(self, answer):\n"
        "        print('✓ Exercise 4.4: correct — that is the smallest rank that trains at least 10 million "
        "parameters on q_proj and v_proj.')\nex = Always()"))
    nbformat.write(nb, folder / "sly.ipynb")

    for k in (5, 6):
        nbformat.write(trimmed(solved[k]), folder / f"solved_{k}_exercises.ipynb")
    (folder / "broken.ipynb").write_text('{"cells": [')
    return grade_cli(folder.parent, folder, status=1)                      # one submission could not be graded


def test_other_correct_answers_are_correct_and_wrong_ones_wrong(crafted):
    _, results, _ = crafted
    ada = results["Ada Lovelace - chapter two (final).ipynb"]
    assert verdicts(ada) == {"2.1": "error", "2.2": "correct", "2.3": "correct", "2.4": "not attempted",
                             "2.5": "wrong"}
    assert "150,400 numbers — not fewer than the 150,000" in message(ada, "2.5")
    assert "not attempted yet" in message(ada, "2.4")                    # whatever its stored output says
    assert ada["notes"] == ["1 other code cell(s) failed: 3 (it raised NameError: name 'my_typo' is not defined)"]
    dies = results["dies.ipynb"]
    assert verdicts(dies)["3.1"] == "correct" and verdicts(dies)["3.2"] == "wrong"
    assert "cannot reach 768" in message(dies, "3.2")
    sly = results["sly.ipynb"]
    assert verdicts(sly)["4.1"] == "correct" and verdicts(sly)["4.2"] == "correct"


def test_sys_exit_and_a_dead_kernel_are_errors_that_say_which(crafted):
    _, results, _ = crafted
    ada = results["Ada Lovelace - chapter two (final).ipynb"]
    assert "sys.exit(1)" in message(ada, "2.1")
    dies = results["dies.ipynb"]
    assert verdicts(dies)["3.3"] == verdicts(dies)["3.4"] == "error"
    assert "kernel died" in message(dies, "3.3") and "stopped" in message(dies, "3.4")


def test_a_changed_check_line_is_tampering_and_a_fake_checker_changes_nothing(crafted):
    out, results, _ = crafted
    sly = results["sly.ipynb"]
    assert verdicts(sly)["4.3"] == "tampered" and "ex.merge_weight.check(merge_weight)" in message(sly, "4.3")
    assert "renaming the answer counts" in message(sly, "4.3")
    assert verdicts(sly)["4.4"] == "not attempted"                       # its own ✓ printer fooled no one
    assert "4.3   tampered" in out


def test_solutions_of_chapters_5_and_6_grade_correct_and_a_broken_file_stops_nothing(crafted):
    out, results, rows = crafted
    for k in (5, 6):
        r = results[f"solved_{k}_exercises.ipynb"]
        assert r["score"] == r["out_of"] == len(KEY[str(k)]["exercises"]) and set(verdicts(r).values()) == {"correct"}
    assert "not a readable notebook" in results["broken.ipynb"]["error"]
    assert "graded 5 of 6 submissions" in out and len(rows) == 6


@pytest.fixture(scope="module")
def endless(tmp_path_factory):
    """Chapter 1 (fast cells only) with a short time limit: loops in a cell and in a function, a print of ✓ in
    place of the check, copied reference outputs, and the learner's own cells and answers."""
    folder = tmp_path_factory.mktemp("endless")
    nb = with_reference_outputs(read(STUDENT / SOURCES[0].name), read(SOURCES[0]))
    nb.cells.insert(3, nbformat.v4.new_code_cell("my_note = 'rank counts independent rows'"))
    edit(nb, "1.1", source="answer_1 = [[1, 2, 0, 0], [2, 4, 0, 0], [0, 0, 0, 1], [0, 0, 0, 5]]  # mine\n"
                           "ex.rank_two.check(answer_1)")
    edit(nb, "1.2", source="answer_2 = 3\nex.predict_product_rank.check(answer_2)")
    edit(nb, "1.3", before="while True:\n    pass")
    edit(nb, "1.4", source="X = ex.window.data['X']\ndef window(M, r):\n    while True:\n        pass\n"
                           "ex.window.check(window)")
    edit(nb, "1.5", source="answer_5 = ...\nprint('✓ Exercise 1.5: correct — now ask the same question of a matrix "
                           "whose rows and columns all sum to zero.')")
    nbformat.write(nb, folder / "loops.ipynb")
    nb = read(STUDENT / SOURCES[0].name)
    edit(nb, "1.3", before="while True:                  # catches the interrupt, too\n    try:\n        while True:\n"
                           "            pass\n    except BaseException:\n        pass")
    nbformat.write(nb, folder / "stubborn.ipynb")
    return grade_cli(folder.parent, folder, timeout=10, jobs=2)


def test_loops_end_at_the_time_limit_and_the_rest_is_still_graded(endless):
    out, results, _ = endless
    r = results["loops.ipynb"]
    assert verdicts(r) == {"1.1": "correct", "1.2": "wrong", "1.3": "error", "1.4": "error", "1.5": "tampered"}
    assert "did not finish within" in message(r, "1.4")                   # the check's own clock
    assert "ran past the 10 s time limit and was interrupted" in message(r, "1.3")   # the cell's
    assert "property 2" in message(r, "1.2") and r["score"] == 1
    assert "1.5   tampered" in out


def test_a_cell_that_ignores_the_interrupt_costs_its_kernel_not_the_class(endless):
    _, results, _ = endless
    r = results["stubborn.ipynb"]
    assert verdicts(r) == {"1.1": "not attempted", "1.2": "not attempted", "1.3": "error", "1.4": "error",
                           "1.5": "error"}
    assert "ignored the interrupt, so its kernel was shut down" in message(r, "1.3")
    assert "before this exercise's cell ran" in message(r, "1.5")


def test_a_gradebook_written_again_keeps_its_permissions_and_its_link(tmp_path):
    import os
    from lora_edu._io import write_atomic
    book = tmp_path / "grades.csv"
    book.write_text("old")
    book.chmod(0o600)
    link = tmp_path / "latest.csv"
    link.symlink_to(book)
    write_atomic(link, lambda tmp: Path(tmp).write_text("new"))
    assert link.is_symlink() and book.read_text() == "new" and (book.stat().st_mode & 0o777) == 0o600
    assert sorted(p.name for p in tmp_path.iterdir()) == ["grades.csv", "latest.csv"]   # no temp file left
