"""What grading takes from the submitted file, outside the student's kernel, and how it enters the gradebook.

nbgrader runs a submission's hidden tests in the student's own kernel, after the student's code:
anything those tests call (``checks.own_work``, ``quiz.grade_answer``) can be replaced by a cell
of the submission. So ``make grade`` reads each submitted notebook as text, never running it, and
after nbgrader's autograde it overwrites what the kernel could have faked:

- **quiz points** (course/tools/quiz_source.py): the ``quiz_answers`` cell parsed as literals and
  graded against the instructor's keys; the score of every ``test_quiz_*`` cell is this one,
  whatever the kernel reported, and the cell's output in the autograded notebook (what feedback
  shows) is the grader's explanation;
- **tampering** (course/tools/tamper.py): every graded cell that runs after a cell reaching into
  the grader (module attribute writes, ``sys.modules``, ``builtins``, frames, ...) scores 0, the
  findings are listed in ``grades.csv`` (column ``flags``) and printed in that cell's feedback;
- **similarity** (course/tools/similarity.py): after the batch, each exercise's solution is compared
  with the course's reference in ``utils`` and with every other student's (the released stub left
  out); pairs above the threshold go to ``similarity.csv`` and the ``flags`` column. A flag is a
  place for the instructor to look, not a score: similar code is not proof of copying.

Example:
    >>> checks = inspect_submission(root, "alice", "04_lora_sentiment")
    >>> apply(root, "alice", "04_lora_sentiment", checks)        # after nbgrader's autograde
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass, field
from pathlib import Path

from course.tools import quiz_source, similarity, tamper

QUIZ_CELL_PREFIX = "test_quiz_"


@dataclass
class Checks:
    """What one submission's file says, read before grading."""

    notebook: str                                           # the notebook's file name
    zeroed: list[str] = field(default_factory=list)         # graded cells that run after tampering
    tamper_lines: list[str] = field(default_factory=list)   # 'cell: line N: kind: text'
    tamper_cells: dict[str, list[str]] = field(default_factory=dict)   # cell key -> its finding lines
    quiz: dict[str, tuple[float, str]] = field(default_factory=dict)    # grade_id -> (points, feedback text)
    problems: list[str] = field(default_factory=list)

    @property
    def flags(self) -> list[str]:
        return [f"tampering: {line}" for line in self.tamper_lines]


def _graded_ids_in_order(nb: dict) -> list[str]:
    return [c["metadata"]["nbgrader"]["grade_id"] for c in nb.get("cells", [])
            if c.get("metadata", {}).get("nbgrader", {}).get("grade")]


def submitted_notebook(root: Path | str, student: str, assignment: str) -> Path | None:
    """The notebook grading reads from submitted/<student>/<assignment>/: the lesson's name, or the only other
    notebook there (a renamed "Copy of ..."), as isolate.prepare_submission grades it; None otherwise."""
    folder = Path(root, "submitted", student, assignment)
    target = folder / f"{assignment}.ipynb"
    if target.exists():
        return target
    others = sorted(folder.glob("*.ipynb"))
    return others[0] if len(others) == 1 else None


def inspect_submission(root: Path | str, student: str, assignment: str) -> Checks | None:
    """Read submitted/<student>/<assignment>/<assignment>.ipynb as text; None when there is no readable notebook
    (grading reports that itself)."""
    root = Path(root)
    source = Path(root, "solutions", assignment, f"{assignment}.ipynb")
    path = submitted_notebook(root, student, assignment)
    if path is None:
        return None
    try:
        nb = tamper.load_notebook(path)
    except tamper.NotebookError:
        return None
    checks = Checks(notebook=source.stem)
    graded_source = _graded_ids_in_order(json.loads(source.read_text(encoding="utf-8")))
    tampered = tamper.tampered_cells(nb, release=source)     # trust only the cells the source locks
    if tampered:
        first = tampered[0][0]
        present = set()
        after = set()
        for index, cell in enumerate(nb["cells"]):
            gid = cell.get("metadata", {}).get("nbgrader", {}).get("grade_id")
            if gid in graded_source:
                present.add(gid)
                if index > first:
                    after.add(gid)
        missing = set(graded_source) - present                 # restored by nbgrader: they run too
        checks.zeroed = [g for g in graded_source if (g in after or g in missing) and not g.startswith(QUIZ_CELL_PREFIX)]
        for _, key, findings in tampered:
            lines = tamper.report_lines({key: findings})
            checks.tamper_cells[key] = lines
            checks.tamper_lines += lines
    for grade in quiz_source.grade(assignment, nb):
        checks.quiz[grade.grade_id] = (float(grade.points), grade.text)
    missing_quiz = [g for g in graded_source if g.startswith(QUIZ_CELL_PREFIX) and g not in checks.quiz]
    if missing_quiz:
        raise RuntimeError(f"{assignment}: quiz_source graded no score for {missing_quiz}; every quiz cell must be "
                           "graded from the file (course/tools/quiz_source.py).")
    return checks


def _stream(text: str) -> dict:
    return {"output_type": "stream", "name": "stdout", "text": text if text.endswith("\n") else text + "\n"}


def apply(root: Path | str, student: str, assignment: str, checks: Checks) -> None:
    """After autograde: write the file's quiz points and the tamper zeros into the gradebook, and the grader's
    explanations into the autograded notebook (what feedback shows)."""
    from nbgrader.api import Gradebook, MissingEntry

    root = Path(root)
    scores = {gid: points for gid, (points, _) in checks.quiz.items()} | {gid: 0.0 for gid in checks.zeroed}
    with Gradebook(f"sqlite:///{root / 'gradebook.db'}") as gb:
        for gid, points in scores.items():
            try:
                grade = gb.find_grade(gid, checks.notebook, assignment, student)
            except MissingEntry:
                continue                                       # nbgrader did not grade it (a failed autograde)
            grade.auto_score = min(points, grade.max_score)
        gb.db.commit()
    path = Path(root, "autograded", student, assignment, f"{checks.notebook}.ipynb")
    if not path.exists():
        return
    nb = json.loads(path.read_text(encoding="utf-8"))
    for cell in nb["cells"]:
        gid = cell.get("metadata", {}).get("nbgrader", {}).get("grade_id")
        key = gid or cell.get("id")
        if cell.get("cell_type") != "code":
            continue
        if gid in checks.quiz:
            cell["outputs"] = [_stream("Graded from your submitted answers cell, outside your kernel:\n" + checks.quiz[gid][1])]
        elif gid in checks.zeroed:
            cell["outputs"] = list(cell.get("outputs", [])) + [_stream(
                "0 points: this cell ran after code that reaches into the grader (see the flagged cell above).")]
        if key in checks.tamper_cells:
            cell["outputs"] = list(cell.get("outputs", [])) + [_stream(
                "Flagged: this cell reaches into the grader, so the graded cells after it score 0:\n  "
                + "\n  ".join(checks.tamper_cells[key]))]
    path.write_text(json.dumps(nb, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")


def similarity_report(root: Path | str, rows: list[dict]) -> Path:
    """Compare every exercise across the batch's submissions and with the utils references; write similarity.csv
    and add each pair to both students' ``flags``. Returns the CSV's path."""
    root = Path(root)
    pairs = []
    for assignment in sorted({r["assignment"] for r in rows}):
        released = Path(root, "exercises", assignment, f"{assignment}.ipynb")
        if not released.exists():
            continue
        stubs = similarity.exercise_sources(json.loads(released.read_text(encoding="utf-8")))
        submissions = {}
        for r in rows:
            if r["assignment"] != assignment:
                continue
            path = submitted_notebook(root, r["student"], assignment)
            if path is None:
                continue
            try:
                submissions[r["student"]] = tamper.load_notebook(path)
            except tamper.NotebookError:
                continue
        for pair in similarity.report(submissions, stubs):
            pairs.append((assignment, pair))
    by_student: dict[tuple[str, str], list[str]] = {}
    students = {r["student"] for r in rows}
    for assignment, p in pairs:
        by_student.setdefault((p.student, assignment), []).append(f"similar: {p.exercise} to {p.other} ({p.score:.2f})")
        if p.other in students:
            by_student.setdefault((p.other, assignment), []).append(f"similar: {p.exercise} to {p.student} ({p.score:.2f})")
    for r in rows:
        r.setdefault("flags", [])
        r["flags"] += by_student.get((r["student"], r["assignment"]), [])
    out = root / "similarity.csv"
    with open(out, "w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(["assignment", "student", "exercise", "score", "other"])
        for assignment, p in sorted(pairs, key=lambda ap: -ap[1].score):
            writer.writerow([assignment, p.student, p.exercise, f"{p.score:.3f}", p.other])
    return out
