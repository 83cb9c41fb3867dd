"""The nbgrader round trip in a temporary course: release, then autograde real-looking submissions.

Uses nbgrader's Python API and gradebook (the exit code of `nbgrader validate` is 0 even on failure).
"""

import json
import re
import shutil
from pathlib import Path

import pytest

from utils import course

ROOT = Path(__file__).resolve().parents[1]
LESSONS = course.assignments(ROOT)
pytestmark = pytest.mark.slow


def _hidden_and_solution_lines(nb_path: Path) -> list[str]:
    """Lines that must never reach students: solution bodies and hidden tests (long enough to be specific)."""
    lines = []
    for cell in json.loads(nb_path.read_text())["cells"]:
        src = "".join(cell["source"])
        for block in re.findall(r"### BEGIN (?:SOLUTION|HIDDEN TESTS)\n(.*?)### END", src, flags=re.S):
            lines += [ln.strip() for ln in block.splitlines() if len(ln.strip()) > 25]
    return lines


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    """A temporary course with the solutions released, two students submitted and graded."""
    root = tmp_path_factory.mktemp("course")
    shutil.copytree(ROOT / "solutions", root / "solutions", ignore=shutil.ignore_patterns("outputs", ".ipynb_checkpoints"))
    api = course.api(root, cell_timeout=60)
    for name in LESSONS:
        result = api.generate_assignment(name, force=True, create=True)
        assert result["success"], result["error"]
    for name in LESSONS:
        nb = f"{name}.ipynb"
        for student, src in {"alice": root / "solutions" / name / nb, "bob": root / "exercises" / name / nb}.items():
            (root / "submitted" / student / name).mkdir(parents=True)
            shutil.copy(src, root / "submitted" / student / name / nb)
    rows = course.grade(root, cell_timeout=60)
    return root, {(r["student"], r["assignment"]): r for r in rows}


@pytest.mark.parametrize("name", LESSONS)
def test_committed_exercises_are_what_release_produces_now(graded, name):
    root, _ = graded
    fresh = (root / "exercises" / name / f"{name}.ipynb").read_text()
    committed = (ROOT / "exercises" / name / f"{name}.ipynb").read_text()
    assert fresh == committed, f"exercises/{name} is stale: run `make release` and commit the result"
    assert sorted(p.name for p in (ROOT / "exercises" / name).iterdir()) == [f"{name}.ipynb"]


@pytest.mark.parametrize("name", LESSONS)
def test_no_solution_or_hidden_test_leaks_into_exercises(name):
    text = (ROOT / "exercises" / name / f"{name}.ipynb").read_text()
    for marker in ("BEGIN SOLUTION", "END SOLUTION", "BEGIN HIDDEN TESTS", "END HIDDEN TESTS"):
        assert marker not in text
    leaked = [ln for ln in _hidden_and_solution_lines(ROOT / "solutions" / name / f"{name}.ipynb")
              if json.dumps(ln)[1:-1] in text]
    assert not leaked, f"lines from solutions or hidden tests appear in the exercise: {leaked[:3]}"


@pytest.mark.parametrize("name", LESSONS)
def test_solution_gets_full_marks_and_figures(graded, name):
    root, rows = graded
    row = rows[("alice", name)]
    assert row["max_score"] > 0 and row["score"] == row["max_score"], row
    assert not row["problems"], row["problems"]
    figures = list((root / "autograded" / "alice" / name / "outputs").glob("*.png"))
    assert figures and all(f.stat().st_size > 5_000 for f in figures), "the lesson's figures were not written"


@pytest.mark.parametrize("name", LESSONS)
def test_untouched_release_scores_zero_without_crashing(graded, name):
    _, rows = graded
    row = rows[("bob", name)]
    assert row["score"] == 0 and row["max_score"] == rows[("alice", name)]["max_score"], row


def test_grades_csv_and_feedback(graded):
    root, rows = graded
    lines = (root / "grades.csv").read_text().splitlines()
    assert lines[0] == "student,assignment,score,max_score,problems" and len(lines) == 1 + len(rows)
    course.feedback(root)
    for student in ("alice", "bob"):
        for name in LESSONS:
            html = root / "feedback" / student / name / f"{name}.html"
            assert html.exists() and "Score" in html.read_text()
