"""What the notebooks' metadata promises: cell ids (nbformat 4.5) and the points a text states (issue 16).

Cheap: reads the JSON of 16 notebooks, executes nothing (well under a second).
"""
import json
import re
import warnings
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[1]
LESSONS = sorted(p.name for p in (ROOT / "solutions").glob("[0-9][0-9]_*") if (p / f"{p.name}.ipynb").exists())
VALID_ID = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")   # nbformat 4.5 schema: cell id pattern


def _path(folder, lesson):
    return ROOT / folder / lesson / f"{lesson}.ipynb"


def _cells(path):
    return json.loads(path.read_text())["cells"]


def _src(cell):
    return "".join(cell["source"])


@pytest.mark.parametrize("folder", ["solutions", "exercises"])
@pytest.mark.parametrize("lesson", LESSONS)
def test_nbformat_45_unique_valid_ids_and_no_missing_id_warning(folder, lesson):
    path = _path(folder, lesson)
    raw = json.loads(path.read_text())
    assert (raw["nbformat"], raw["nbformat_minor"]) >= (4, 5), f"{path.name}: nbformat {raw['nbformat']}.{raw['nbformat_minor']}, want >= 4.5"
    ids = [c.get("id") for c in raw["cells"]]
    bad = [i for i in ids if not (isinstance(i, str) and VALID_ID.match(i))]
    assert not bad, f"{folder}/{path.name}: cell ids missing or invalid (want 1-64 chars of a-zA-Z0-9-_): {bad[:5]}"
    assert len(set(ids)) == len(ids), f"{folder}/{path.name}: the same cell id twice"
    with warnings.catch_warnings():
        warnings.simplefilter("error")   # MissingIDFieldWarning (and any other nbformat warning) fails the test
        nb = nbformat.read(path, as_version=4)
        nbformat.validate(nb)


@pytest.mark.parametrize("lesson", LESSONS)
def test_release_keeps_the_solution_cell_ids(lesson):
    """nbgrader 0.9.6's generate_assignment (make release) copies the ids: exercise = solution, cell by cell,
    so an id is stable from the instructor's source to the student's copy to the graded submission."""
    sol, ex = _cells(_path("solutions", lesson)), _cells(_path("exercises", lesson))
    assert [c["id"] for c in ex] == [c["id"] for c in sol], f"{lesson}: exercise ids differ from the solution's (run make release)"


# ---- points: what the text says against what nbgrader will award ----------------------------------------------
#
# Mapping rule (read off the eight lessons):
#  * An exercise heading is a markdown line `### Exercise N · title (P points)` (or `(1 point)`). It owns every
#    graded cell (nbgrader `grade: true`) from that heading up to the next markdown heading of level 1-3
#    (`#`, `##` or `###`); P must equal the sum of their `points`, and it must own at least one.
#  * The quiz section says "Together they earn P point(s)" for the practice questions: the cell
#    `test_quiz_practice` carries P points; and "Graded questions (qA–qB, P point(s) each)": each of
#    `test_quiz_qA` .. `test_quiz_qB` exists and carries P points.
#  * Every graded cell is owned by an exercise heading or named by the quiz text: no points the text never states.

EXERCISE = re.compile(r"^###\s+Exercise\s+\d+\b.*\((\d+)\s+points?\)\s*$", re.M)
HEADING = re.compile(r"^#{1,3}\s", re.M)
PRACTICE = re.compile(r"Together they earn (\d+) points?")
GRADED_QUIZ = re.compile(r"Graded questions\*{0,2} \(q(\d+)[–-]q(\d+), (\d+) points? each\)")


def stated_and_awarded(cells):
    """[(what the text states, points stated, {grade_id: points awarded})], plus the graded cells nobody states."""
    graded = {c["metadata"]["nbgrader"]["grade_id"]: (i, c["metadata"]["nbgrader"].get("points", 0))
              for i, c in enumerate(cells) if c["metadata"].get("nbgrader", {}).get("grade")}
    claims, owned = [], set()
    md = [(i, _src(c)) for i, c in enumerate(cells) if c["cell_type"] == "markdown"]
    headings = [i for i, s in md if HEADING.search(s)]
    for i, s in md:
        m = EXERCISE.search(s)
        if m:
            end = next((h for h in headings if h > i), len(cells))
            mine = {g: p for g, (j, p) in graded.items() if i < j < end}
            claims.append((m.group(0).strip(), int(m.group(1)), mine))
            owned |= set(mine)
        m = PRACTICE.search(s)
        if m:
            mine = {g: graded[g][1] for g in ["test_quiz_practice"] if g in graded}
            claims.append((m.group(0), int(m.group(1)), mine or {"test_quiz_practice (missing)": 0}))
            owned |= set(mine)
        m = GRADED_QUIZ.search(s)
        if m:
            lo, hi, each = map(int, m.groups())
            for q in range(lo, hi + 1):
                g = f"test_quiz_q{q}"
                claims.append((f"{m.group(0)} [q{q}]", each, {g: graded[g][1]} if g in graded else {f"{g} (missing)": 0}))
                owned.add(g)
    return claims, sorted(set(graded) - owned)


@pytest.mark.parametrize("folder", ["solutions", "exercises"])
@pytest.mark.parametrize("lesson", LESSONS)
def test_stated_points_equal_nbgrader_points(folder, lesson):
    claims, unstated = stated_and_awarded(_cells(_path(folder, lesson)))
    assert claims, f"{lesson}: no '(N points)' exercise heading found: the mapping rule above no longer matches the lesson"
    for text, stated, awarded in claims:
        assert awarded and stated == sum(awarded.values()), (
            f"{folder}/{lesson}: '{text}' states {stated} but its graded cells award {sum(awarded.values())} ({awarded}): "
            "make the heading and the cells' nbgrader points agree")
    assert not unstated, f"{folder}/{lesson}: graded cells whose points no text states: {unstated}"
