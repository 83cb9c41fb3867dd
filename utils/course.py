"""Instructor commands: stamp the repository URL, release, grade and write feedback with nbgrader.

Run from the repository root (the Makefile does): ``python -m utils.course release|grade|feedback``.
Uses nbgrader's Python API and gradebook, never the exit code of ``nbgrader validate`` (which is
0 even when tests fail). Grading forces the smoke profile and offline mode so that it never
trains a real model or waits on the network.
"""

from __future__ import annotations

import csv
import json
import os
import re
import shutil
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
IGNORE = [".ipynb_checkpoints", "*.pyc", "__pycache__", "feedback", "outputs"]
STUB = "# YOUR CODE HERE\nraise NotImplementedError()"
GRADING_ENV = {"COURSE_PROFILE": "smoke", "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1",
               "TRANSFORMERS_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}


def nbgrader_settings(c, root: Path | str = ROOT, cell_timeout: int | None = None) -> None:
    """Fill a traitlets Config with the course's nbgrader settings (nbgrader_config.py calls this)."""
    root = Path(root)
    c.CourseDirectory.course_id = "peft-course"
    c.CourseDirectory.root = str(root)
    c.CourseDirectory.source_directory = "solutions"
    c.CourseDirectory.release_directory = "exercises"
    c.CourseDirectory.db_url = f"sqlite:///{root / 'gradebook.db'}"
    c.CourseDirectory.ignore = IGNORE
    c.ClearSolutions.code_stub = {"python": STUB}
    c.ClearSolutions.text_stub = "YOUR ANSWER HERE"
    # Per cell: a student's infinite loop is stopped after this many seconds; the rest still runs.
    c.Execute.timeout = cell_timeout or int(os.environ.get("COURSE_CELL_TIMEOUT", "120"))
    c.Execute.interrupt_on_timeout = True
    c.Execute.execute_retries = 0
    c.Execute.kernel_name = "python3"
    # A student who deleted a graded cell: nbgrader puts the instructor's cell back and grades it.
    c.OverwriteCells.add_missing_cells = True


def api(root: Path | str = ROOT, cell_timeout: int | None = None):
    """An NbGraderAPI for the course in `root` (the venv's bin/ goes on PATH: nbgrader runs alembic)."""
    from nbgrader.apps import NbGraderAPI
    from traitlets.config import Config

    bin_dir = str(Path(sys.executable).parent)
    if bin_dir not in os.environ.get("PATH", "").split(os.pathsep):
        os.environ["PATH"] = bin_dir + os.pathsep + os.environ.get("PATH", "")
    c = Config()
    nbgrader_settings(c, root, cell_timeout)
    return NbGraderAPI(config=c)


def assignments(root: Path | str = ROOT) -> list[str]:
    """Lesson folders in solutions/ that hold a notebook of the same name."""
    return sorted(p.parent.name for p in Path(root, "solutions").glob("*/*.ipynb") if p.stem == p.parent.name)


# --- stamping the repository URL -----------------------------------------------------------------

def repository_url(root: Path | str = ROOT) -> str:
    """The course repository URL: pyproject.toml [project.urls] Repository (the one place it lives)."""
    meta = tomllib.loads(Path(root, "pyproject.toml").read_text())
    return meta["project"]["urls"]["Repository"].rstrip("/")


def stamp(root: Path | str = ROOT) -> list[Path]:
    """Write the repository URL into the setup cells, Colab badges and README; return changed files."""
    url = repository_url(root)
    slug = url.split("github.com/", 1)[-1]
    changed = []
    paths = [Path(root, "solutions", name, f"{name}.ipynb") for name in assignments(root)]
    paths += [p for p in [Path(root, "README.md")] if p.exists()]
    for path in paths:
        text = path.read_text(encoding="utf-8")
        new = re.sub(r'COURSE_REPO = \\"[^"\\]*\\"', f'COURSE_REPO = \\\\"{url}\\\\"', text)
        new = re.sub(r"colab\.research\.google\.com/github/[^)\"\s]+?/blob/main/exercises/",
                     f"colab.research.google.com/github/{slug}/blob/main/exercises/", new)
        new = re.sub(r"git clone https://github\.com/\S+", f"git clone {url}", new)
        if new != text:
            path.write_text(new, encoding="utf-8")
            changed.append(path)
    return changed


# --- release, grade, feedback ------------------------------------------------------------------------

def release(root: Path | str = ROOT) -> None:
    """Stamp, rebuild the hashed quiz banks, and regenerate exercises/ from solutions/."""
    from utils import quiz

    for path in stamp(root):
        print(f"stamped repository URL into {path}")
    if Path(root, "course", "quizzes").exists():
        quiz.build_all(Path(root, "course", "quizzes"), Path(root, "utils", "quizzes"))
    nb_api = api(root)
    for name in assignments(root):
        result = nb_api.generate_assignment(name, force=True, create=True)
        if not result["success"]:
            raise SystemExit(f"release of {name} failed:\n{result['error']}\n{result['log']}")
        print(f"released exercises/{name}/")


def _submissions(root: Path) -> list[tuple[str, str]]:
    out = []
    for student_dir in sorted(Path(root, "submitted").glob("*")):
        if student_dir.is_dir():
            out += [(student_dir.name, a.name) for a in sorted(student_dir.glob("*")) if a.is_dir()]
    return out


def _graded_ids(nb: dict) -> set[str]:
    return {c["metadata"]["nbgrader"]["grade_id"] for c in nb.get("cells", [])
            if c.get("metadata", {}).get("nbgrader", {}).get("grade")}


def _prepare_submission(root: Path, student: str, assignment: str) -> tuple[list[str], bool]:
    """Check one submission before nbgrader sees it; return (problems to report, gradable?).

    - a notebook saved under another name ("Copy of ...", "... (1)") is graded under the right
      name when it is the only candidate (a copy is put beside it; the original is kept);
    - a file that is not valid notebook JSON is reported and scores 0;
    - graded cells the student deleted are reported (nbgrader restores and grades them).
    """
    folder = Path(root, "submitted", student, assignment)
    problems = []
    for source in sorted(Path(root, "solutions", assignment).glob("*.ipynb")):
        target = folder / source.name
        others = sorted(p for p in folder.glob("*.ipynb") if not Path(root, "solutions", assignment, p.name).exists())
        if target.exists() and len(others) == 1 and others[0].read_bytes() == target.read_bytes():
            problems.append(f"{others[0].name!r} graded as {source.name!r} (renamed; the copy was made by an earlier run)")
        elif not target.exists():
            if len(others) == 1:
                shutil.copy(others[0], target)
                problems.append(f"{others[0].name!r} graded as {source.name!r} (the notebook was renamed)")
            else:
                found = ", ".join(repr(p.name) for p in others) or "no notebook"
                problems.append(f"missing notebook {source.name!r} (found {found}): it scores 0")
                continue
        try:
            submitted = json.loads(target.read_text(encoding="utf-8"))
            if not isinstance(submitted, dict) or "cells" not in submitted:
                raise ValueError("no cells")
        except (ValueError, UnicodeDecodeError) as exc:
            problems.append(f"{target.name} is not a valid notebook ({exc.__class__.__name__}): it scores 0")
            return problems, False
        deleted = sorted(_graded_ids(json.loads(source.read_text())) - _graded_ids(submitted))
        if deleted:
            problems.append(f"graded cell(s) {deleted} were deleted from {target.name}; restored from the source and graded")
    return problems, True


def _failed_cells(gb, assignment: str, student: str) -> list[str]:
    """Autograded cells that did not earn full points, as 'grade_id (score/max)'."""
    out = []
    sub = gb.find_submission(assignment, student)
    for nb in sub.notebooks:
        for g in nb.grades:
            if g.auto_score is not None and g.max_score and g.score < g.max_score:
                out.append(f"{g.name} ({g.score:g}/{g.max_score:g})")
    return out


def grade(root: Path | str = ROOT, cell_timeout: int | None = None) -> list[dict]:
    """Autograde every submitted/<student>/<assignment>/, write grades.csv, print a summary.

    A failing or broken submission is reported and the batch goes on.
    """
    from nbgrader.api import Gradebook, MissingEntry

    import warnings

    from sqlalchemy.exc import SAWarning

    warnings.filterwarnings("ignore", category=SAWarning)   # nbgrader 0.9.6 autoflush noise, harmless
    root = Path(root)
    os.environ.update(GRADING_ENV)
    nb_api = api(root, cell_timeout)
    with Gradebook(nb_api.coursedir.db_url) as gb:
        known = {a.name for a in gb.assignments if a.notebooks}
    for name in sorted(set(assignments(root)) - known):   # a fresh gradebook: register the cells (= a release)
        result = nb_api.generate_assignment(name, force=True, create=True)
        if not result["success"]:
            raise SystemExit(f"could not register {name} in the gradebook:\n{result['error']}")
    rows = []
    for student, assignment in _submissions(root):
        row = {"student": student, "assignment": assignment, "score": 0.0, "max_score": 0.0, "problems": [],
               "failed_cells": []}
        rows.append(row)
        if assignment not in assignments(root):
            row["problems"] = [f"unknown assignment {assignment!r}; known: {assignments(root)}"]
            continue
        row["problems"], gradable = _prepare_submission(root, student, assignment)
        if gradable:
            result = nb_api.autograde(assignment, student, force=True, create=True)
            if not result["success"]:
                last = (result["error"] or "").strip().splitlines()[-1:] or ["see nbgrader's log"]
                row["problems"].append(f"autograde failed: {last[0]}")
        with Gradebook(nb_api.coursedir.db_url) as gb:
            row["max_score"] = gb.find_assignment(assignment).max_score
            try:
                row["score"] = gb.find_submission(assignment, student).score
                row["failed_cells"] = _failed_cells(gb, assignment, student)
            except MissingEntry:
                pass
    with open(root / "grades.csv", "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["student", "assignment", "score", "max_score", "failed_cells", "problems"])
        for r in rows:
            writer.writerow([r["student"], r["assignment"], r["score"], r["max_score"], " ".join(r["failed_cells"]),
                             " | ".join(r["problems"])])
    for r in rows:
        print(f"{r['student']:<16} {r['assignment']:<24} {r['score']:>5.1f} / {r['max_score']:<5.1f}"
              + (f"  lost points: {' '.join(r['failed_cells'])}" if r["failed_cells"] else "")
              + "".join(f"\n    ! {p}" for p in r["problems"]))
    print(f"wrote {root / 'grades.csv'} ({len(rows)} submissions)")
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
    commands = {"stamp": lambda: [print(f"stamped {p}") for p in stamp()], "release": release,
                "grade": grade, "feedback": feedback}
    if len(sys.argv) != 2 or sys.argv[1] not in commands:
        sys.exit(f"usage: python -m utils.course {{{','.join(commands)}}}")
    commands[sys.argv[1]]()
