"""Grade a class: ``make grade`` (``python -m course.tools.grading grade``) and ``make feedback``.

Every submitted/<student>/<assignment>/ is autograded alone in a temporary course by
course/tools/isolate.py (wall-time and memory limits, no network where the OS allows), on JOBS local
processes or on a Dask cluster (SCHEDULER); this process is the only writer of the course gradebook.
course/tools/integrity.py then takes from the submitted file what the student's kernel could fake:
quiz points, zeros after code that reaches into the grader, and the similarity report. Writes
grades.csv (columns: student, assignment, score, max_score, failed_cells, problems, flags) and
similarity.csv. INSTRUCTORS.md section 3 says how to read them.

Example:
    $ make grade JOBS=2                              # two local worker processes
    $ make grade SCHEDULER=tcp://10.0.0.5:8786       # a Dask cluster with the course installed
"""

from __future__ import annotations

import argparse
import csv
import os
import warnings
from pathlib import Path

from course.tools import integrity, isolate
from course.tools.classroom import GRADING_ENV, ROOT, api, assignments


def _submissions(root: Path) -> list[tuple[str, str]]:
    out = []
    for student_dir in sorted(Path(root, "submitted").glob("*")):
        if student_dir.is_dir():
            out += [(student_dir.name, a.name) for a in sorted(student_dir.glob("*")) if a.is_dir()]
    return out


def _failed_cells(gb, assignment: str, student: str) -> list[str]:
    """Autograded cells that did not earn full points, as 'grade_id (score/max)'."""
    out = []
    sub = gb.find_submission(assignment, student)
    for nb in sub.notebooks:
        for g in nb.grades:
            if g.auto_score is not None and g.max_score and g.score < g.max_score:
                out.append(f"{g.name} ({g.score:g}/{g.max_score:g})")
    return out


def grade(root: Path | str = ROOT, cell_timeout: int | None = None, jobs: int = 1, scheduler: str | None = None) -> list[dict]:
    """Autograde every submitted/<student>/<assignment>/, write grades.csv and similarity.csv, print a summary.

    Each submission is graded alone in a temporary course (course/tools/isolate.py: wall-time and
    memory limits, no network where the OS allows), on `jobs` local processes or on the Dask cluster
    at `scheduler`; this process is the only writer of the gradebook. What the student's kernel could
    fake is then taken from the submitted file instead (course/tools/integrity.py): quiz points,
    zeros after code that reaches into the grader, and the similarity report. A failing or broken
    submission is reported and the batch goes on.
    """
    from nbgrader.api import Gradebook, MissingEntry
    from sqlalchemy.exc import SAWarning

    warnings.filterwarnings("ignore", category=SAWarning)   # nbgrader 0.9.6 autoflush noise, harmless
    root = Path(root)
    os.environ.update(GRADING_ENV)
    known = assignments(root)
    for name in known:                                       # a fresh gradebook: register the cells (= a release)
        isolate.register(root, name)
    rows, items, checks = [], [], {}
    for student, assignment in _submissions(root):
        row = {"student": student, "assignment": assignment, "score": 0.0, "max_score": 0.0, "problems": [],
               "failed_cells": [], "flags": []}
        rows.append(row)
        if assignment not in known:
            row["problems"] = [f"unknown assignment {assignment!r}; known: {known}"]
            continue
        items.append((student, assignment))
        checks[student, assignment] = integrity.inspect_submission(root, student, assignment)
    by_item = {(r["student"], r["assignment"]): r for r in rows}
    for result in isolate.grade_all(root, items, jobs=jobs, scheduler=scheduler, cell_timeout=cell_timeout):
        key = (result["student"], result["assignment"])
        row, check = by_item[key], checks[key]
        row["problems"] += result["problems"]
        if check is not None:
            integrity.apply(root, *key, check)
            row["flags"] += check.flags
            row["problems"] += check.problems
        with Gradebook(f"sqlite:///{root / 'gradebook.db'}") as gb:
            row["max_score"] = gb.find_assignment(key[1]).max_score
            try:
                row["score"] = gb.find_submission(key[1], key[0]).score
                row["failed_cells"] = _failed_cells(gb, key[1], key[0])
            except MissingEntry:
                pass
    similar = integrity.similarity_report(root, rows)
    with open(root / "grades.csv", "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["student", "assignment", "score", "max_score", "failed_cells", "problems", "flags"])
        for r in rows:
            writer.writerow([r["student"], r["assignment"], r["score"], r["max_score"], " ".join(r["failed_cells"]),
                             " | ".join(r["problems"]), " | ".join(r["flags"])])
    for r in rows:
        print(f"{r['student']:<16} {r['assignment']:<24} {r['score']:>5.1f} / {r['max_score']:<5.1f}"
              + (f"  lost points: {' '.join(r['failed_cells'])}" if r["failed_cells"] else "")
              + "".join(f"\n    ! {p}" for p in r["problems"]) + "".join(f"\n    ? {f}" for f in r["flags"]))
    print(f"wrote {root / 'grades.csv'} ({len(rows)} submissions) and {similar} (similar solutions: a place to look, "
          "not proof)")
    return rows


def feedback(root: Path | str = ROOT) -> None:
    """Write HTML feedback for every autograded submission into feedback/<student>/<assignment>/."""
    root = Path(root)
    nb_api = api(root)
    for student_dir in sorted(Path(root, "autograded").glob("*")):
        for assignment_dir in sorted(student_dir.glob("*")):
            result = nb_api.generate_feedback(assignment_dir.name, student_dir.name, force=True)
            status = "ok" if result["success"] else f"failed: {result['error']}"
            print(f"feedback {student_dir.name}/{assignment_dir.name}: {status}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(prog="python -m course.tools.grading", description=__doc__.split("\n\n")[0])
    parser.add_argument("command", choices=["grade", "feedback"])
    parser.add_argument("--jobs", type=int, default=1, help="local worker processes (default 1)")
    parser.add_argument("--scheduler", default=None, help="a Dask scheduler address, e.g. tcp://host:8786")
    parser.add_argument("--cell-timeout", type=int, default=None, help="seconds per cell (default: nbgrader_config.py)")
    args = parser.parse_args()
    if args.jobs < 1:
        parser.error(f"--jobs must be 1 or more (got {args.jobs}); use JOBS=1 for one process")
    if args.command == "grade":
        grade(cell_timeout=args.cell_timeout, jobs=args.jobs, scheduler=args.scheduler)
    else:
        feedback()
