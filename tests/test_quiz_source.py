"""Quiz grading from the submitted file (course/tools/quiz_source.py, issue 17 item 1): nothing the kernel does counts."""

import contextlib
import copy
import io
import json
from pathlib import Path

import nbformat
import pytest

from course.tools import quiz_source
from course.tools.quiz_authoring import load_source
from utils import quiz

ROOT = Path(__file__).resolve().parents[1]
LESSONS = sorted(p.parent.name for p in (ROOT / "solutions").glob("*/*.ipynb") if p.stem == p.parent.name)


def _solution(lesson):
    return ROOT / "solutions" / lesson / f"{lesson}.ipynb"


def _release(lesson):
    return ROOT / "exercises" / lesson / f"{lesson}.ipynb"


def _graded_ids(lesson):
    return [q["id"] for q in load_source(lesson)["questions"] if q.get("graded")]


def _keys(lesson):
    return {q["id"]: str(q["answer"]).lower() for q in load_source(lesson)["questions"]}


def _with_answers_cell(lesson, source):
    """The released notebook of `lesson` with its quiz answers cell's source replaced (as a student would)."""
    nb = nbformat.read(_release(lesson), as_version=4)
    cells = [c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade_id") == "quiz_answers"]
    assert len(cells) == 1
    cells[0].source = source
    return nb


def _scores(grades):
    return {g.grade_id: g.points for g in grades}


def test_lessons_found():
    assert len(LESSONS) == 8


@pytest.mark.parametrize("lesson", LESSONS)
def test_reference_solution_scores_full_quiz_marks(lesson):
    answers, problems = quiz_source.answers_from_notebook(_solution(lesson))
    assert problems == []
    assert answers == _keys(lesson)
    grades = quiz_source.grade(lesson, _solution(lesson))
    assert [g.grade_id for g in grades] == ["test_quiz_practice"] + [f"test_quiz_{q}" for q in _graded_ids(lesson)]
    assert all(g.points == g.max_points > 0 for g in grades), [(g.grade_id, g.points, g.text) for g in grades]


@pytest.mark.parametrize("lesson", LESSONS)
def test_release_scores_nothing_on_any_quiz_cell(lesson):
    answers, problems = quiz_source.answers_from_notebook(_release(lesson))
    assert problems == [] and answers and set(answers.values()) == {None}
    grades = quiz_source.grade(lesson, _release(lesson))
    assert len(grades) == 1 + len(_graded_ids(lesson))
    assert all(g.points == 0 for g in grades)
    practice = grades[0].text
    assert practice.startswith("Answer every practice question") and "q1: no answer." in practice


@pytest.mark.parametrize("lesson", LESSONS)
def test_max_points_are_the_source_notebooks_nbgrader_points(lesson):
    nb = nbformat.read(_solution(lesson), as_version=4)
    meta = {c.metadata["nbgrader"]["grade_id"]: c.metadata["nbgrader"]["points"] for c in nb.cells
            if c.metadata.get("nbgrader", {}).get("grade")
            and c.metadata["nbgrader"]["grade_id"].startswith("test_quiz_")}
    grades = quiz_source.grade(lesson[:2], _release(lesson))            # '04' as well as '04_lora_sentiment'
    assert {g.grade_id: g.max_points for g in grades} == meta


def test_lesson_number_and_name_agree():
    assert quiz_source.grade("04", _solution("04_lora_sentiment")) == \
        quiz_source.grade("04_lora_sentiment", _solution("04_lora_sentiment"))


def test_forgiving_letters_and_every_accepted_form():
    lesson = "04_lora_sentiment"
    keys = _keys(lesson)
    source = "\n".join([
        'QUIZ_ANSWERS = {   # replace each None by a letter, e.g. "b"',
        '    "q1": None, "q2": None, "q3": None, "q4": None, "q5": None,   # practice',
        '    "q6": None, "q7": None, "q8": None,   # graded',
        "}",
        "# my answers",
        f'QUIZ_ANSWERS.update({{"q1": "{keys["q1"].upper()})", "q2": "({keys["q2"]})"}})',
        f'QUIZ_ANSWERS.update(q3=" {keys["q3"].upper()} ", q4="{keys["q4"]}.")',
        'QUIZ_ANSWERS["q5"] = "a"',
        f'QUIZ_ANSWERS["q5"] = "{keys["q5"]}:"     # later wins',
        f'QUIZ_ANSWERS["q6"] = " {keys["q6"].upper()}) "',
        f"QUIZ_ANSWERS['q7'] = '{keys['q7'].upper()})'",
        f'QUIZ_ANSWERS["q8"] = ("{keys["q8"]}")',
    ])
    answers, problems = quiz_source.answers_from_notebook(_with_answers_cell(lesson, source))
    assert problems == [] and answers == keys
    grades = quiz_source.grade(lesson, _with_answers_cell(lesson, source))
    assert all(g.points == g.max_points for g in grades)


def test_a_wrong_letter_scores_zero_and_explains():
    lesson = "04_lora_sentiment"
    keys = _keys(lesson)
    wrong = next(o for o in "abcd" if o != keys["q7"])
    source = "QUIZ_ANSWERS = {" + ", ".join(f'"{q}": "{k}"' for q, k in keys.items()) + "}\n" \
             + f'QUIZ_ANSWERS["q7"] = "{wrong}"\n'
    grades = {g.grade_id: g for g in quiz_source.grade(lesson, _with_answers_cell(lesson, source))}
    assert grades["test_quiz_q7"].points == 0 and grades["test_quiz_q6"].points == 1
    assert grades["test_quiz_practice"].points == 1
    text = grades["test_quiz_q7"].text
    assert text.startswith(f"q7: you answered {wrong}); the answer is {keys['q7']}).")
    assert "  [your choice]" in text and "  [the answer]" in text


@pytest.mark.parametrize("lesson", LESSONS)
def test_graded_text_is_what_grade_answer_prints(lesson):
    """The feedback reads as it did when the hidden test printed it (right, wrong and blank answers)."""
    src = load_source(lesson)
    graded = [q for q in src["questions"] if q.get("graded")]
    wrong = {q["id"]: next(o for o in q["options"] if o != str(q["answer"]).lower()) for q in graded}
    wrong[graded[0]["id"]] = str(graded[0]["answer"]).lower()        # one right
    wrong[graded[-1]["id"]] = None                                   # one blank
    source = "QUIZ_ANSWERS = " + json.dumps(wrong).replace("null", "None")
    grades = {g.grade_id: g for g in quiz_source.grade(lesson, _with_answers_cell(lesson, source))}
    for q in graded:
        out = io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.suppress(AssertionError):
            quiz.grade_answer(wrong, q["id"], key=str(q["answer"]), explain=q["explain"])
        assert grades[f"test_quiz_{q['id']}"].text == out.getvalue().rstrip("\n")


def test_practice_needs_a_valid_option_of_each_practice_question():
    lesson = "04_lora_sentiment"
    practice = [q["id"] for q in load_source(lesson)["questions"] if not q.get("graded")]
    answers = {q: "a" for q in practice}                              # all wrong or right: still complete
    grades = quiz_source.grade(lesson, _with_answers_cell(lesson, f"QUIZ_ANSWERS = {answers!r}"))
    assert grades[0].points == 1 and "completion point is yours" in grades[0].text
    answers[practice[1]] = "h"                                       # a letter, but not an option
    grades = quiz_source.grade(lesson, _with_answers_cell(lesson, f"QUIZ_ANSWERS = {answers!r}"))
    assert grades[0].points == 0 and f"{practice[1]}: 'h' is not one of its options" in grades[0].text
    answers[practice[1]] = "bee"                                     # not a letter at all
    answers_, problems = quiz_source.answers_from_notebook(_with_answers_cell(lesson, f"QUIZ_ANSWERS = {answers!r}"))
    assert answers_[practice[1]] is None and any("'bee'" in p and "line 1" in p.lower() for p in problems)


TAMPER = '''QUIZ_ANSWERS = {"q1": None, "q2": None, "q3": None, "q4": None, "q5": None, "q6": None, "q7": None, "q8": None}
QUIZ_ANSWERS.update(q1="a", q2="a", q3="a", q4="a", q5="a", q6="KEY6")
for q in ["q7", "q8"]:
    QUIZ_ANSWERS[q] = "a"
exec("QUIZ_ANSWERS['q8'] = 'a'")
QUIZ_ANSWERS["q7"] = pick("q7")
QUIZ_ANSWERS["q8"] = f"{'KEY8'}"
import utils.quiz as _q; _q.grade_answer = lambda *a, **k: None
'''


def test_tamper_ish_statements_do_not_count_and_are_named():
    lesson = "04_lora_sentiment"
    keys = _keys(lesson)
    nb = _with_answers_cell(lesson, TAMPER.replace("KEY6", keys["q6"]).replace("KEY8", keys["q8"]))
    answers, problems = quiz_source.answers_from_notebook(nb)
    assert answers["q6"] == keys["q6"] and answers["q7"] is None and answers["q8"] is None
    for line in (3, 5, 6, 7, 8):
        assert any(f"Line {line} of the quiz answers cell" in p for p in problems), (line, problems)
    assert not any("Line 1 " in p or "Line 2 " in p for p in problems)
    scores = _scores(quiz_source.grade(lesson, nb))
    assert scores == {"test_quiz_practice": 1, "test_quiz_q6": 1, "test_quiz_q7": 0, "test_quiz_q8": 0}
    grades = {g.grade_id: g for g in quiz_source.grade(lesson, nb)}
    assert "Line 6 of the quiz answers cell" in grades["test_quiz_q7"].text     # its own problem
    assert "Line 7 of the quiz answers cell" not in grades["test_quiz_q7"].text  # q8's problem goes to q8
    assert "Line 3 of the quiz answers cell" in grades["test_quiz_practice"].text


def test_a_computed_dict_drops_every_answer():
    lesson = "04_lora_sentiment"
    keys = _keys(lesson)
    source = "QUIZ_ANSWERS = {" + ", ".join(f'"{q}": "{k}"' for q, k in keys.items()) + "}\n" \
             + "QUIZ_ANSWERS = make_answers()\n"
    answers, problems = quiz_source.answers_from_notebook(_with_answers_cell(lesson, source))
    assert answers == {} and len(problems) == 1 and "Line 2 " in problems[0]
    assert all(g.points == 0 for g in quiz_source.grade(lesson, _with_answers_cell(lesson, source)))
    source += 'QUIZ_ANSWERS = {"q6": "%s"}\n' % keys["q6"]           # a literal dict after it counts again
    assert _scores(quiz_source.grade(lesson, _with_answers_cell(lesson, source)))["test_quiz_q6"] == 1


def test_other_variables_and_other_cells_do_not_count():
    lesson = "04_lora_sentiment"
    keys = _keys(lesson)
    nb = _with_answers_cell(lesson, "ANSWERS = " + repr(keys) + "\nQUIZ_ANSWERS = ANSWERS\n")
    answers, problems = quiz_source.answers_from_notebook(nb)
    assert answers == {} and len(problems) == 2
    nb.cells.append(nbformat.v4.new_code_cell("QUIZ_ANSWERS = " + repr(keys)))   # answered in another cell
    assert all(g.points == 0 for g in quiz_source.grade(lesson, nb))


def test_no_answers_cell_broken_cell_and_not_a_notebook(tmp_path):
    lesson = "04_lora_sentiment"
    nb = nbformat.read(_solution(lesson), as_version=4)
    nb.cells = [c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade_id") != "quiz_answers"]
    answers, problems = quiz_source.answers_from_notebook(nb)
    assert answers == {} and len(problems) == 1 and "no quiz answers cell" in problems[0]
    grades = quiz_source.grade(lesson, nb)
    assert all(g.points == 0 for g in grades) and all(problems[0] in g.text for g in grades)

    broken = _with_answers_cell(lesson, 'QUIZ_ANSWERS = {"q6": "b"\n')
    answers, problems = quiz_source.answers_from_notebook(broken)
    assert answers == {} and len(problems) == 1 and "not valid Python" in problems[0]

    magic = _with_answers_cell(lesson, "%load answers.py\n")
    assert quiz_source.answers_from_notebook(magic)[0] == {}

    markdown = _with_answers_cell(lesson, 'QUIZ_ANSWERS = {"q6": "b"}')
    next(c for c in markdown.cells if c.metadata.get("nbgrader", {}).get("grade_id") == "quiz_answers").cell_type = "markdown"
    assert quiz_source.answers_from_notebook(markdown)[0] == {}

    junk = tmp_path / "junk.ipynb"
    junk.write_text("this is not JSON")
    answers, problems = quiz_source.answers_from_notebook(junk)
    assert answers == {} and len(problems) == 1 and "not valid JSON" in problems[0]
    assert all(g.points == 0 for g in quiz_source.grade(lesson, junk))
    assert quiz_source.answers_from_notebook(tmp_path / "missing.ipynb")[0] == {}


def test_path_bytes_dict_and_node_read_alike(tmp_path):
    lesson = "04_lora_sentiment"
    path = _solution(lesson)
    as_dict = json.loads(path.read_text(encoding="utf-8"))
    expected = quiz_source.answers_from_notebook(path)
    for nb in (str(path), path.read_bytes(), as_dict, nbformat.read(path, as_version=4)):
        assert quiz_source.answers_from_notebook(nb) == expected
    raw = copy.deepcopy(as_dict)                                     # source as a list of lines (nbformat on disk)
    cell = next(c for c in raw["cells"] if c["metadata"].get("nbgrader", {}).get("grade_id") == "quiz_answers")
    cell["source"] = cell["source"].splitlines(keepends=True) if isinstance(cell["source"], str) else cell["source"]
    assert quiz_source.answers_from_notebook(raw) == expected


def test_nothing_in_the_cell_is_executed(tmp_path):
    marker = tmp_path / "ran"
    source = f'QUIZ_ANSWERS = {{"q6": "b"}}\nopen({str(marker)!r}, "w").write("x")\n'
    answers, problems = quiz_source.answers_from_notebook(_with_answers_cell("04_lora_sentiment", source))
    assert answers == {"q6": "b"} and len(problems) == 1 and not marker.exists()
