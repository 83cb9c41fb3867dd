"""What grading takes from the submitted file (course/tools/integrity.py, issue 17), on every lesson, without running it.

The round trip (tests/test_nbgrader_roundtrip.py) grades lesson 01's tamperer, copiers and honest
student end to end; here each lesson's own tamperer is read as grading reads it: every graded cell
after the first tampering cell scores 0 and quiz points come from the file, so the most it can
earn is the practice question's completion point (0 with the released answers).
"""

import json
import shutil
from pathlib import Path

import pytest

from course.tools import integrity

ROOT = Path(__file__).resolve().parents[1]
LESSONS = sorted(p.parent.name for p in (ROOT / "solutions").glob("*/*.ipynb") if p.stem == p.parent.name)
# Issue 17's four lines, as the tamperer put them in the first answer cell.
TAMPER = """import contextlib as _cl, utils.checks as _c, utils.quiz as _q
_c.own_work = lambda *a, **k: _cl.nullcontext()
for _n in ('grade_answer', 'check_format', 'check_answered'):
    setattr(_q, _n, lambda *a, **k: None)
"""


def _meta(cell):
    return cell.get("metadata", {}).get("nbgrader", {})


def _course(tmp_path, lesson, nb, student="mallory", name=None):
    """A course folder with the lesson's source and one submission (nothing is executed)."""
    shutil.copy(ROOT / "solutions" / lesson / f"{lesson}.ipynb", _folder(tmp_path / "solutions" / lesson) / f"{lesson}.ipynb")
    (_folder(tmp_path / "submitted" / student / lesson) / (name or f"{lesson}.ipynb")).write_text(json.dumps(nb))
    return tmp_path


def _folder(path):
    path.mkdir(parents=True, exist_ok=True)
    return path


def _solution(lesson):
    return json.loads((ROOT / "solutions" / lesson / f"{lesson}.ipynb").read_text())


def _points(lesson):
    return {_meta(c)["grade_id"]: float(_meta(c)["points"]) for c in _solution(lesson)["cells"] if _meta(c).get("grade")}


def _most_it_can_earn(lesson, checks):
    """Every graded cell full marks, except the zeroed ones and the quiz cells (graded from the file)."""
    return sum(checks.quiz[g][0] if g in checks.quiz else 0.0 if g in checks.zeroed else p
               for g, p in _points(lesson).items())


def _tamperer(lesson, where=0):
    """The solved notebook with the four lines in its `where`-th solution cell and the released quiz answers."""
    nb = _solution(lesson)
    released = {_meta(c).get("grade_id"): c for c in json.loads((ROOT / "exercises" / lesson / f"{lesson}.ipynb").read_text())["cells"]}
    answers = [c for c in nb["cells"] if c["cell_type"] == "code" and _meta(c).get("solution") and _meta(c)["grade_id"] != "quiz_answers"]
    target = answers[where]
    target["source"] = TAMPER + "".join(target["source"])
    quiz_cell = next(c for c in nb["cells"] if _meta(c).get("grade_id") == "quiz_answers")
    quiz_cell["source"] = released["quiz_answers"]["source"]
    return nb, _meta(target)["grade_id"]


def test_lessons_found():
    assert len(LESSONS) == 8


@pytest.mark.parametrize("lesson", LESSONS)
def test_the_tamperer_can_earn_at_most_the_practice_point(lesson, tmp_path):
    nb, cell = _tamperer(lesson)
    checks = integrity.inspect_submission(_course(tmp_path, lesson, nb), "mallory", lesson)
    assert checks.tamper_cells and cell in checks.tamper_cells, checks.tamper_lines
    assert any("own_work" in f for f in checks.flags) and all(f.startswith("tampering: ") for f in checks.flags)
    practice = checks.quiz["test_quiz_practice"][0]
    assert _most_it_can_earn(lesson, checks) <= practice == 0.0, (checks.zeroed, checks.quiz)
    assert set(checks.zeroed) == {g for g in _points(lesson) if not g.startswith("test_quiz_")}


@pytest.mark.parametrize("lesson", LESSONS)
def test_the_model_answer_is_not_flagged_and_keeps_every_point(lesson, tmp_path):
    checks = integrity.inspect_submission(_course(tmp_path, lesson, _solution(lesson), "alice"), "alice", lesson)
    assert checks.flags == [] and checks.zeroed == [] and checks.problems == []
    assert _most_it_can_earn(lesson, checks) == sum(_points(lesson).values())


@pytest.mark.parametrize("lesson", ["01_peft_theory", "04_lora_sentiment"])
def test_only_the_graded_cells_after_the_tampering_cell_score_zero(lesson, tmp_path):
    nb, cell = _tamperer(lesson, where=-1)
    checks = integrity.inspect_submission(_course(tmp_path, lesson, nb), "mallory", lesson)
    order = [_meta(c).get("grade_id") for c in nb["cells"]]
    after = {g for g in order[order.index(cell) + 1:] if g in _points(lesson) and not g.startswith("test_quiz_")}
    assert after and set(checks.zeroed) == after
    assert set(_points(lesson)) - after - set(checks.quiz), "every graded cell before it keeps its points"


def test_a_renamed_notebook_is_read_and_a_missing_one_is_none(tmp_path):
    lesson = "01_peft_theory"
    nb, _ = _tamperer(lesson)
    checks = integrity.inspect_submission(_course(tmp_path, lesson, nb, name=f"Copy of {lesson}.ipynb"), "mallory", lesson)
    assert checks.tamper_lines
    _folder(tmp_path / "submitted" / "nobody" / lesson)
    assert integrity.inspect_submission(tmp_path, "nobody", lesson) is None
    (tmp_path / "submitted" / "heidi" / lesson).mkdir(parents=True)
    (tmp_path / "submitted" / "heidi" / lesson / f"{lesson}.ipynb").write_text('{"cells": [ not json')
    assert integrity.inspect_submission(tmp_path, "heidi", lesson) is None


def test_a_cell_that_only_claims_to_be_locked_is_still_read(tmp_path):
    """A student who marks the tampering cell locked with a grade_id the source does not lock: nbgrader runs it."""
    lesson = "01_peft_theory"
    nb, cell = _tamperer(lesson)
    target = next(c for c in nb["cells"] if _meta(c).get("grade_id") == cell)
    target["metadata"]["nbgrader"].update({"solution": False, "locked": True, "grade_id": "looks_locked"})
    checks = integrity.inspect_submission(_course(tmp_path, lesson, nb), "mallory", lesson)
    assert "looks_locked" in checks.tamper_cells, checks.tamper_lines
