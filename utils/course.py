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
    """Write the repository URL into every lesson's setup cell and Colab badge; return changed files."""
    url = repository_url(root)
    slug = url.split("github.com/", 1)[-1]
    changed = []
    for name in assignments(root):
        path = Path(root, "solutions", name, f"{name}.ipynb")
        text = path.read_text(encoding="utf-8")
        new = re.sub(r'COURSE_REPO = \\"[^"\\]*\\"', f'COURSE_REPO = \\\\"{url}\\\\"', text)
        new = re.sub(r"colab\.research\.google\.com/github/[^)\"\s]+?/blob/main/exercises/",
                     f"colab.research.google.com/github/{slug}/blob/main/exercises/", new)
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


def _check_submission(root: Path, student: str, assignment: str) -> list[str]:
    """Problems nbgrader would not explain well: missing or renamed notebooks, broken JSON."""
    folder = Path(root, "submitted", student, assignment)
    expected = {p.name for p in Path(root, "solutions", assignment).glob("*.ipynb")}
    present = {p.name for p in folder.glob("*.ipynb")}
    problems = [f"missing notebook {n} (renamed or not submitted): it scores 0" for n in sorted(expected - present)]
    problems += [f"extra notebook {n} is not part of the assignment and is not graded" for n in sorted(present - expected)]
    for name in sorted(expected & present):
        try:
            json.loads(Path(folder, name).read_text(encoding="utf-8"))
        except (ValueError, UnicodeDecodeError) as exc:
            problems.append(f"{name} is not a valid notebook ({exc.__class__.__name__}): it scores 0")
    return problems


def grade(root: Path | str = ROOT, cell_timeout: int | None = None) -> list[dict]:
    """Autograde every submitted/<student>/<assignment>/, write grades.csv, print a summary.

    A failing or broken submission is reported and the batch goes on.
    """
    from nbgrader.api import Gradebook, MissingEntry

    root = Path(root)
    os.environ.update(GRADING_ENV)
    nb_api = api(root, cell_timeout)
    for name in assignments(root):         # the gradebook must know every assignment and its cells
        result = nb_api.generate_assignment(name, force=True, create=True)
        if not result["success"]:
            raise SystemExit(f"could not register {name} in the gradebook:\n{result['error']}")
    rows = []
    for student, assignment in _submissions(root):
        problems = _check_submission(root, student, assignment)
        if assignment not in assignments(root):
            problems = [f"unknown assignment {assignment!r}; known: {assignments(root)}"]
            rows.append({"student": student, "assignment": assignment, "score": 0.0, "max_score": 0.0,
                         "problems": problems})
            continue
        result = nb_api.autograde(assignment, student, force=True, create=True)
        if not result["success"]:
            problems.append("autograde failed: " + (result["error"] or "").strip().splitlines()[-1:][0]
                            if result["error"] else "autograde failed")
        score, max_score = 0.0, 0.0
        with Gradebook(nb_api.coursedir.db_url) as gb:
            try:
                sub = gb.find_submission(assignment, student)
                score, max_score = sub.score, sub.max_score
            except MissingEntry:
                max_score = gb.find_assignment(assignment).max_score
        rows.append({"student": student, "assignment": assignment, "score": score, "max_score": max_score,
                     "problems": problems})
    with open(root / "grades.csv", "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["student", "assignment", "score", "max_score", "problems"])
        for r in rows:
            writer.writerow([r["student"], r["assignment"], r["score"], r["max_score"], " | ".join(r["problems"])])
    for r in rows:
        print(f"{r['student']:<16} {r['assignment']:<24} {r['score']:>5.1f} / {r['max_score']:<5.1f}"
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
