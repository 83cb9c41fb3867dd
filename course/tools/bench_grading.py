"""Grading throughput: lesson 04 submissions graded as ``make grade`` does, with JOBS=1 and JOBS=2 (issue 17 item 7).

``python -m course.tools.bench_grading`` (``make bench-grading``, also run by ``make bench``)
generates COUNT submissions of lesson 04, cycling through six kinds of student (the model answer,
the untouched release, partial work, the issue-17 tamperer, a copier of the course's reference
source, a notebook whose kernel crashes), grades them with ``course.tools.grading.grade`` (isolated
autograde, then the file's quiz points, the tamper zeros and the similarity report) in a temporary
course once per JOBS value, and prints submissions per minute, the speed-up, whether the per-cell
scores agree, each kind's score and flags, and the seconds for one lesson-06 submission (the model
answer: the whole rank sweep in the smoke profile).
The numbers are measurements of this machine at this moment (other load included), not constants.
"""

from __future__ import annotations

import argparse
import contextlib
import inspect
import io
import json
import os
import shutil
import tempfile
import time
from pathlib import Path

from course.tools import grading, isolate
from utils import evaluation, prompts

ROOT = Path(__file__).resolve().parents[2]
LESSON = "04_lora_sentiment"
KINDS = ("full", "blank", "partial", "tamperer", "copier", "crasher")
# Issue 17's tamperer: switch off the own-work check and the quiz helpers, then wrap the course's functions.
TAMPER = """import contextlib as _cl, utils.checks as _c, utils.quiz as _q
_c.own_work = lambda *a, **k: _cl.nullcontext()
for _n in ('grade_answer', 'check_format', 'check_answered'):
    setattr(_q, _n, lambda *a, **k: None)
from utils import evaluation as _e, prompts as _p
"""
WRAPPED = {"mask_prompt": "_p.mask_prompt", "collate": "_p.collate", "next_token_accuracy": "_e.next_token_accuracy"}


def _cells(nb: dict) -> dict:
    return {c["metadata"]["nbgrader"]["grade_id"]: c for c in nb["cells"] if "nbgrader" in c["metadata"]}


def submission(kind: str, root: Path = ROOT, lesson: str = LESSON) -> str:
    """One generated lesson-04 notebook of the given kind, as JSON text."""
    nb = json.loads(Path(root, "solutions", lesson, f"{lesson}.ipynb").read_text())
    released = _cells(json.loads(Path(root, "exercises", lesson, f"{lesson}.ipynb").read_text()))
    cells = _cells(nb)
    if kind == "blank":
        nb = json.loads(Path(root, "exercises", lesson, f"{lesson}.ipynb").read_text())
    elif kind == "partial":
        cells["collate"]["source"] = released["collate"]["source"]
    elif kind == "tamperer":
        for i, (gid, target) in enumerate(WRAPPED.items()):
            cells[gid]["source"] = (TAMPER if i == 0 else "") + f"def {gid}(*a, **k):\n    return {target}(*a, **k)\n"
        cells["quiz_answers"]["source"] = released["quiz_answers"]["source"]
    elif kind == "copier":
        for gid, module in (("mask_prompt", prompts), ("collate", prompts), ("next_token_accuracy", evaluation)):
            cells[gid]["source"] = inspect.getsource(getattr(module, gid))
    elif kind == "crasher":
        cells["collate"]["source"] = "import os\nos._exit(1)\n"
    elif kind != "full":
        raise ValueError(f"unknown kind {kind!r}; known: {KINDS}")
    return json.dumps(nb)


def _course(folder: Path, lesson: str, students: dict[str, str]) -> Path:
    shutil.copytree(ROOT / "solutions" / lesson, folder / "solutions" / lesson,
                    ignore=shutil.ignore_patterns("outputs", ".ipynb_checkpoints"))
    shutil.copytree(ROOT / "exercises" / lesson, folder / "exercises" / lesson)     # the stubs the similarity report leaves out
    for student, text in students.items():
        target = folder / "submitted" / student / lesson
        target.mkdir(parents=True)
        (target / f"{lesson}.ipynb").write_text(text)
    return folder


def _cell_scores(root: Path) -> dict[str, dict[str, float]]:
    """{student: {grade_id: score}} from root's gradebook."""
    from nbgrader.api import Gradebook

    with Gradebook(f"sqlite:///{root / 'gradebook.db'}") as gb:
        return {s.student.id: {g.name: g.score for nb in s.notebooks for g in nb.grades}
                for a in gb.assignments for s in a.submissions}


def _grade(root: Path, jobs: int) -> tuple[list[dict], float]:
    start = time.monotonic()
    with contextlib.redirect_stdout(io.StringIO()):          # grading prints one line per submission
        rows = grading.grade(root, jobs=jobs)
    return rows, time.monotonic() - start


def run(count: int = 40, jobs: tuple[int, ...] = (1, 2), lesson06: bool = True) -> dict:
    texts = {kind: submission(kind) for kind in KINDS}
    students = {f"s{i:03d}-{KINDS[i % len(KINDS)]}": texts[KINDS[i % len(KINDS)]] for i in range(count)}
    out = {"count": count, "cores": os.cpu_count(), "sandbox": isolate.sandbox()[1], "runs": {}}
    print(f"grading {count} generated {LESSON} submissions ({', '.join(KINDS)}) as make grade does; "
          f"isolation: {out['sandbox']}")
    scores = {}
    with tempfile.TemporaryDirectory(prefix="bench-grading-") as tmp:
        for n in jobs:
            root = _course(Path(tmp, f"jobs{n}"), LESSON, students)
            rows, seconds = _grade(root, n)
            scores[n] = _cell_scores(root)
            out["runs"][n] = {"seconds": round(seconds, 1), "per_minute": round(60 * count / seconds, 2)}
            print(f"JOBS={n}: {seconds:.1f} s, {60 * count / seconds:.2f} submissions per minute")
            if n == jobs[0]:
                for kind in KINDS:
                    r = next(r for r in rows if r["student"].endswith(kind))
                    print(f"    {kind:<9} {r['score']:g} / {r['max_score']:g}"
                          + "".join(f"\n        ! {p}" for p in r["problems"])
                          + "".join(f"\n        ? {f}" for f in r["flags"][:3])
                          + (f"\n        ? ... {len(r['flags']) - 3} more flags" if len(r["flags"]) > 3 else ""))
        if len(jobs) > 1:
            base = jobs[0]
            out["ratio"] = {n: round(out["runs"][n]["per_minute"] / out["runs"][base]["per_minute"], 2) for n in jobs[1:]}
            out["same_scores"] = all(scores[n] == scores[base] for n in jobs)
            for n, ratio in out["ratio"].items():
                print(f"JOBS={n} vs JOBS={base}: {ratio:.2f}x (target >= 1.7x on 2 cores); per-cell scores identical: {out['same_scores']}")
        if lesson06:
            name = "06_rank_sweep"
            root = _course(Path(tmp, "lesson06"), name, {"full": Path(ROOT, "solutions", name, f"{name}.ipynb").read_text()})
            rows, seconds = _grade(root, 1)
            out["lesson06_s"] = round(seconds, 1)
            print(f"one {name} submission (the model answer): {out['lesson06_s']} s, {rows[0]['score']:g} / {rows[0]['max_score']:g}"
                  + "".join(f"  ! {p}" for p in rows[0]["problems"]))
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=40, help="generated lesson-04 submissions (default 40)")
    parser.add_argument("--jobs", type=int, nargs="+", default=[1, 2], help="JOBS values to compare (default 1 2)")
    parser.add_argument("--no-lesson06", action="store_true", help="skip timing one lesson-06 submission")
    parser.add_argument("--json", type=Path, help="also write the figures to this JSON file")
    args = parser.parse_args(argv)
    out = run(args.count, tuple(args.jobs), lesson06=not args.no_lesson06)
    if args.json:
        args.json.write_text(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
