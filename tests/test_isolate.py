"""Isolated, parallel grading (course/tools/isolate.py, issue 17 items 4 and 5).

Lesson 02 (the cheapest autograde, about 11 s per submission on one core) as a class submits it:
partial work and seven hostile notebooks, graded in one batch on two worker processes (the model
answer and the untouched release take the same path in the round trip); then a subset again with one process, four processes and a Dask
cluster of two worker processes, which must give the same gradebook.
"""

import base64
import json
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from course.tools import classroom, isolate

ROOT = Path(__file__).resolve().parents[1]
LESSON = "02_int8_absmax"
NB = f"{LESSON}.ipynb"
CELL_TIMEOUT = 8
LIMITS = {"cell_timeout": CELL_TIMEOUT, "wall_limit_s": 240, "mem_limit_gb": 6}
pytestmark = pytest.mark.slow
FULL_SANDBOX = "read-only" in isolate.sandbox()[1]


def _notebook(kind="solutions", prefix=None, blank=()):
    """The lesson's model answer (or release), with code put before the `blockwise` exercise or exercises blanked."""
    nb = json.loads((ROOT / kind / LESSON / NB).read_text())
    released = {c["metadata"]["nbgrader"]["grade_id"]: c["source"] for c in json.loads((ROOT / "exercises" / LESSON / NB).read_text())["cells"]
                if "nbgrader" in c["metadata"]}
    for cell in nb["cells"]:
        gid = cell["metadata"].get("nbgrader", {}).get("grade_id")
        if gid in blank:
            cell["source"] = released[gid]
        if prefix and gid == "blockwise":
            cell["source"] = prefix + "".join(cell["source"])
    return json.dumps(nb)


def _hostile(course: Path) -> dict[str, str]:
    return {
        "loop": _notebook(prefix="while True:\n    pass\n"),                     # stopped at the cell timeout
        # 100 GB of address space (MAP_NORESERVE: granted without a limit even on a small machine, so this
        # sees whether the limit is in force), one page touched per GB
        "hog": _notebook(prefix="import mmap\n_hog = mmap.mmap(-1, 100 * 2**30, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS | 0x4000)\n"
                                "for _i in range(0, len(_hog), 2**30):\n    _hog[_i] = 1\n"),
        "exiter": _notebook(prefix="import os\nos._exit(0)\n"),
        "killer": _notebook(prefix="import os\nos.kill(os.getpid(), 9)\n"),
        # deletes the course's solutions and gradebook by absolute path: read-only while grading
        "vandal": _notebook(prefix=f"import pathlib, shutil\n"
                                   f"pathlib.Path({str(course / 'gradebook.db')!r}).unlink(missing_ok=True)\n"
                                   f"shutil.rmtree({str(course / 'solutions')!r})\n"),
        # deletes '../../..' (under plain nbgrader: the course folder; here: its own grading folder) and HOME
        "wrecker": _notebook(prefix="import pathlib, shutil\nshutil.rmtree('../../..', ignore_errors=True)\n"
                                    "shutil.rmtree(pathlib.Path.home(), ignore_errors=True)\n"),
        "garbage": '{"cells": [ this is not json',
    }


def _course(tmp: Path, students: dict[str, str]) -> Path:
    shutil.copytree(ROOT / "solutions" / LESSON, tmp / "solutions" / LESSON, ignore=shutil.ignore_patterns("outputs", ".ipynb_checkpoints"))
    for student, text in students.items():
        folder = tmp / "submitted" / student / LESSON
        folder.mkdir(parents=True)
        (folder / NB).write_text(text)
    return tmp


def _gradebook(root: Path) -> dict:
    """Everything the gradebook holds per cell, and the autograded notebooks' sources, per student."""
    from nbgrader.api import Gradebook

    out = {}
    with Gradebook(f"sqlite:///{root / 'gradebook.db'}") as gb:
        for sub in gb.assignment_submissions(LESSON):
            cells = {(nb.name, g.name): (g.auto_score, g.manual_score, g.max_score, g.needs_manual_grade)
                     for nb in sub.notebooks for g in nb.grades}
            comments = {(nb.name, c.name): c.auto_comment for nb in sub.notebooks for c in nb.comments}
            out[sub.student_id] = (sub.score, cells, comments)
    for folder in sorted((root / "autograded").glob(f"*/{LESSON}")):
        nb = json.loads((folder / NB).read_text()) if (folder / NB).exists() else {"cells": []}
        out[folder.parent.name] += ([c["source"] for c in nb["cells"]], sorted(p.name for p in folder.rglob("*")))
    return out


# The model answer and the untouched release go through the same isolate.grade_all in the round trip
# (tests/test_nbgrader_roundtrip.py, lesson 02: full marks, 0); here partial work: points and zeros per cell.
STUDENTS = {"partial": _notebook(blank={"blockwise"})}
SUBSET = ["partial", "exiter", "garbage"]   # partial: points and zeros per cell; the others end fast


@pytest.fixture(scope="module")
def batch(tmp_path_factory):
    """Everyone graded on two worker processes."""
    root = tmp_path_factory.mktemp("isolate-jobs2")
    solutions_before = {p: p.read_bytes() for p in (ROOT / "solutions" / LESSON).rglob("*") if p.is_file()}
    _course(root, {**STUDENTS, **_hostile(root)})
    items = [(s.parent.name, LESSON) for s in sorted((root / "submitted").glob(f"*/{LESSON}"))]
    results = isolate.grade_all(root, items, jobs=2, **LIMITS)
    return root, {r["student"]: r for r in results}, solutions_before


def _total(result):
    return sum(a for a, _ in result["scores"].values())


def test_partial_work_gets_its_points_and_no_more(batch):
    root, res, _ = batch
    assert sum(m for _, m in res["partial"]["scores"].values()) == 10 and not res["partial"]["problems"]
    assert _total(res["partial"]) == 7 and res["partial"]["scores"]["test_blockwise"] == [0.0, 2.0]


def test_each_hostile_notebook_scores_zero_or_partial_with_a_one_line_reason(batch):
    _, res, _ = batch
    expected = {"loop": (7, "stopped at the cell timeout"), "hog": (7, "ran out of memory"),
                "exiter": (0, "the kernel died"), "killer": (0, "the kernel died"),
                "vandal": (7, "tried to change files outside its folder"), "wrecker": (0, "deleted its own grading folder"),
                "garbage": (0, "not a valid notebook")}
    if not FULL_SANDBOX:
        expected.pop("vandal")
    for student, (score, reason) in expected.items():
        r = res[student]
        assert _total(r) == score, (student, r["scores"], r["problems"])
        assert any(reason in p for p in r["problems"]), (student, r["problems"])
        assert all("\n" not in p for p in r["problems"])
    assert len(res) == 8 and all(r["seconds"] < LIMITS["wall_limit_s"] for r in res.values())


@pytest.mark.skipif(not FULL_SANDBOX, reason=f"no unprivileged mount namespace here: {isolate.sandbox()[1]}")
def test_the_vandal_deleted_nothing_outside_its_folder(batch):
    root, _, solutions_before = batch
    assert (root / "solutions" / LESSON / NB).exists() and (root / "gradebook.db").exists()
    assert {p: p.read_bytes() for p in (ROOT / "solutions" / LESSON).rglob("*") if p.is_file()} == solutions_before


def test_merge_writes_gradebook_autograded_and_feedback_works(batch):
    from nbgrader.api import Gradebook

    root, res, _ = batch
    with Gradebook(f"sqlite:///{root / 'gradebook.db'}") as gb:
        assert {s.student_id: s.score for s in gb.assignment_submissions(LESSON)} == {s: _total(r) for s, r in res.items()}
    graded = json.loads((root / "autograded" / "partial" / LESSON / NB).read_text())
    assert any(o.get("output_type") for c in graded["cells"] for o in c.get("outputs", []))    # executed
    api = classroom.api(root)
    for student in ("partial", "loop"):
        assert api.generate_feedback(LESSON, student, force=True)["success"]
        html = (root / "feedback" / student / LESSON / f"{LESSON}.html").read_text()
        assert f"Score: {_total(res[student]):.1f} / 10.0" in html, student


def test_one_four_processes_and_dask_give_the_same_gradebook(batch, tmp_path):
    """JOBS=1, JOBS=4 and a Dask LocalCluster of two worker processes grade the subset as JOBS=2 did."""
    from distributed import Client, LocalCluster

    root2, _, _ = batch
    everyone = {**STUDENTS, **_hostile(root2)}
    want = {s: v for s, v in _gradebook(root2).items() if s in SUBSET}
    runs = {}
    for name in ("jobs1", "jobs4", "dask"):
        root = _course(tmp_path / name, {s: everyone[s] for s in SUBSET})
        items = [(s, LESSON) for s in SUBSET]
        if name == "dask":
            with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster:
                isolate.grade_all(root, items, scheduler=cluster.scheduler_address, **LIMITS)
        else:
            isolate.grade_all(root, items, jobs=int(name[-1]), **LIMITS)
        runs[name] = _gradebook(root)
    for name, got in runs.items():
        assert got == want, name


def test_the_wall_time_limit_kills_the_whole_grading_tree():
    """A loop that ignores interrupts, with a cell timeout longer than the wall limit: killed, scores 0, no process left.
    It sleeps rather than spins: the limit is wall time, and a spinning loop took a core from the rest of make test."""
    import psutil

    text = _notebook(prefix="import signal\nsignal.signal(signal.SIGINT, signal.SIG_IGN)\nimport time\nwhile True:\n    time.sleep(1)\n")
    r = isolate.grade_one(ROOT, "stubborn", LESSON, {NB: text.encode()}, cell_timeout=120, wall_limit_s=15)
    assert _total(r) == 0 and any("wall-time limit (15 s)" in p for p in r["problems"]), r["problems"]
    assert r["seconds"] < 60
    left = [p for p in psutil.process_iter(["cmdline"]) if any("grade-stubborn-" in a for a in p.info["cmdline"] or [])]
    assert not left, left


@pytest.mark.skipif(not isolate.sandbox()[0], reason=isolate.sandbox()[1])
def test_the_sandbox_has_no_network_but_loopback():
    probe = ("import socket\ns = socket.socket(); s.settimeout(3)\n"
             "try:\n    s.connect(('192.0.2.1', 80))\nexcept OSError as e:\n    print('blocked', e.errno)\n"
             "socket.socket().bind(('127.0.0.1', 0)); print('loopback ok')")
    out = subprocess.run([*isolate.sandbox()[0], sys.executable, "-c", probe], capture_output=True, text=True,
                         env={"PATH": "/usr/sbin:/sbin:/usr/bin:/bin", "ISOLATE_READONLY": ""}, timeout=30)
    assert "blocked" in out.stdout and "loopback ok" in out.stdout, (out.stdout, out.stderr)
