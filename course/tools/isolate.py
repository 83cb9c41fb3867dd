"""Isolated, parallel grading: each submission autograded alone, results merged into one gradebook.

nbgrader's autograde runs one submission after another in the course folder, and its SQLite
gradebook is not safe for concurrent writers. Here each submission is graded in its own fresh
temporary course folder (the lesson's source, a gradebook of its own, the submitted files), by
nbgrader in a subprocess with

- a wall-time limit (the whole process tree is killed when it runs out),
- a memory limit (RLIMIT_AS, inherited by the kernel nbgrader starts),
- no network, the course folder and this repository mounted read-only, and its own process
  namespace, where the OS allows unprivileged namespaces (``unshare -rnmpf``; otherwise graded
  without them, and the result says so),
- cwd, HOME and TMPDIR in the temporary folder, one thread (OMP_NUM_THREADS=1), offline.

The result is a JSON-able dict (scores, the autograded notebooks as base64, one-line problems), so
it can come back from a worker process (``grade_all(jobs=N)``) or another machine
(``grade_all(scheduler="tcp://host:8786")``, Dask distributed). ``merge`` is the only writer of
the course gradebook and ``autograded/``; ``grade_all`` merges in the order of its items.

The kernel imports the course's ``utils`` from the repository this module lives in (PYTHONPATH),
so a worker machine needs the course installed, not the instructor's files.
"""

from __future__ import annotations

import base64
import contextlib
import functools
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from course.tools import classroom
from utils.config import cache_root

ROOT = Path(__file__).resolve().parents[2]          # the repository whose utils the kernels import
WALL_LIMIT_S = 1800                                 # lesson 06's sweep takes ~90 s per submission on 2 cores
MEM_LIMIT_GB = 8.0                                  # address space of nbgrader and its kernel (torch reserves ~2-3 GB)
MAX_FILE_BYTES = 20 * 2**20                         # outputs bigger than this (adapters, checkpoints) stay behind
RESULT = "result.json"


# --- the sandbox ------------------------------------------------------------------------------------

_SANDBOX_SCRIPT = ('ip link set lo up || exit 97\n'
                   'IFS="\n"\n'
                   'for d in $ISOLATE_READONLY; do mount --bind "$d" "$d" && mount -o remount,ro,bind "$d" "$d" || exit 98; done\n'
                   'exec "$@"')


@functools.lru_cache(maxsize=1)
def sandbox() -> tuple[tuple[str, ...], str]:
    """(command prefix, description) of the strongest isolation this machine allows without privileges.

    Tried in order: new user, network, mount and PID namespaces with the loopback up (the kernel talks
    to nbgrader over 127.0.0.1) and read-only course folders; network namespace only; nothing.
    """
    unshare, ip = shutil.which("unshare"), shutil.which("ip") or next(
        (p for p in ("/usr/sbin/ip", "/sbin/ip") if os.path.exists(p)), None)
    if unshare and ip:
        env = {**os.environ, "PATH": f"{Path(ip).parent}{os.pathsep}{os.environ.get('PATH', '')}", "ISOLATE_READONLY": ""}
        for flags, what in (("-rnmpf", "no network (own network namespace), course and repository read-only, own PID namespace"),
                            ("-rn", "no network (own network namespace); files not protected beyond cwd/HOME")):
            prefix = (unshare, flags, "--kill-child", "sh", "-c", _SANDBOX_SCRIPT, "sandbox")
            try:
                ok = subprocess.run([*prefix, sys.executable, "-c", "import socket; socket.socket().bind(('127.0.0.1', 0))"],
                                    env=env, capture_output=True, timeout=30).returncode == 0
            except (OSError, subprocess.TimeoutExpired):
                ok = False
            if ok:
                return prefix, what
    return (), "no namespaces on this machine (unshare -rn failed): network allowed, files protected only by cwd/HOME"


def _limit_memory(gb: float | None) -> None:
    """preexec_fn: cap the address space of the grading process and everything it starts."""
    import resource

    if gb:
        size = int(gb * 2**30)
        resource.setrlimit(resource.RLIMIT_AS, (size, size))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))


def _kill_tree(proc: subprocess.Popen) -> None:
    """Kill the grading process, its process group and every descendant (kernels start their own session)."""
    try:
        import psutil

        children = psutil.Process(proc.pid).children(recursive=True)
    except Exception:                                   # psutil missing or the process already gone
        children = []
    for sig_target in [proc.pid, *[c.pid for c in children]]:
        try:
            os.killpg(sig_target, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        try:
            os.kill(sig_target, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass


# --- one submission -----------------------------------------------------------------------------------

def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _max_scores(source: dict[str, bytes]) -> dict[str, dict[str, float]]:
    """{notebook name: {grade_id: points}} of the graded cells of the lesson's source notebooks."""
    out = {}
    for rel, data in source.items():
        if rel.endswith(".ipynb") and "/" not in rel:
            cells = json.loads(data).get("cells", [])
            out[rel[:-6]] = {c["metadata"]["nbgrader"]["grade_id"]: float(c["metadata"]["nbgrader"].get("points", 0))
                             for c in cells if c.get("metadata", {}).get("nbgrader", {}).get("grade")}
    return out


def read_source(root: Path | str, assignment: str) -> dict[str, bytes]:
    """The files nbgrader needs of a lesson's source folder solutions/<assignment>/, as {relative path: bytes}."""
    folder = Path(root, "solutions", assignment)
    skip = {p for pattern in classroom.IGNORE for p in folder.rglob(pattern)}
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*"))
            if p.is_file() and not any(s == p or s in p.parents for s in skip)}


def read_submission(root: Path | str, student: str, assignment: str) -> dict[str, bytes]:
    """The files of submitted/<student>/<assignment>/ as {relative path: bytes} (read here, sent as bytes)."""
    folder = Path(root, "submitted", student, assignment)
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def _graded_ids(nb: dict) -> set[str]:
    return {c["metadata"]["nbgrader"]["grade_id"] for c in nb.get("cells", [])
            if c.get("metadata", {}).get("nbgrader", {}).get("grade")}


def prepare_submission(root: Path, student: str, assignment: str) -> tuple[list[str], bool]:
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


def grade_one(root: Path | str, student: str, assignment: str, files: dict[str, bytes], *, cell_timeout: int | None = None,
              wall_limit_s: float = WALL_LIMIT_S, mem_limit_gb: float | None = MEM_LIMIT_GB) -> dict:
    """Autograde one submission (`files`: {path in submitted/<student>/<assignment>/: bytes}) in a fresh folder.

    `root` is the course folder whose solutions/<assignment>/ is the source; it is only read.
    Returns {"student", "assignment", "scores": {grade_id: [auto_score, max_score]}, "notebooks":
    {name: autograded notebook as base64}, "files": {other autograded files}, "problems": [one line
    each], "seconds", ...}. Never raises for anything the submission does.
    """
    return grade_payload({"student": student, "assignment": assignment, "source": read_source(root, assignment),
                          "files": files, "readonly": [str(Path(root).resolve())]},
                         cell_timeout=cell_timeout, wall_limit_s=wall_limit_s, mem_limit_gb=mem_limit_gb)


def grade_payload(payload: dict, *, cell_timeout: int | None = None, wall_limit_s: float = WALL_LIMIT_S,
                  mem_limit_gb: float | None = MEM_LIMIT_GB) -> dict:
    """grade_one's work on a self-contained payload (the lesson source and the submission as bytes):
    what a worker on another machine runs."""

    start = time.monotonic()
    student, assignment = payload["student"], payload["assignment"]
    maxima = _max_scores(payload["source"])
    result = {"student": student, "assignment": assignment,
              "scores": {g: [0.0, m] for nb in maxima.values() for g, m in nb.items()},
              "notebook_scores": {nb: {g: [0.0, m] for g, m in cells.items()} for nb, cells in maxima.items()},
              "comments": {}, "notebooks": {}, "files": {}, "problems": [], "seconds": 0.0, "sandbox": sandbox()[1]}
    work = Path(tempfile.mkdtemp(prefix=f"grade-{_safe(student)}-{_safe(assignment)}-"))
    try:
        for base, items in (("solutions", payload["source"]), (f"submitted/{student}", payload["files"])):
            for rel, data in items.items():
                target = work / base / assignment / rel
                if not target.resolve().is_relative_to((work / base / assignment).resolve()):
                    result["problems"].append(f"file {rel!r} points outside the submission folder: ignored")
                    continue
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(data)
        (work / "home").mkdir()
        (work / "tmp").mkdir()
        problems, gradable = prepare_submission(work, student, assignment)
        result["problems"] += problems
        if gradable:
            _run_child(work, student, assignment, cell_timeout, wall_limit_s, mem_limit_gb, payload.get("readonly", []), result)
    except Exception as exc:                          # the grader's own failure: reported, the batch goes on
        result["problems"].append(f"grading failed ({exc.__class__.__name__}: {str(exc).splitlines()[0] if str(exc) else ''}): it scores 0")
    finally:
        shutil.rmtree(work, ignore_errors=True)
        result["seconds"] = round(time.monotonic() - start, 2)
    return result


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]", "_", name)[:40]


def _run_child(work: Path, student: str, assignment: str, cell_timeout, wall_limit_s, mem_limit_gb, readonly, result) -> None:

    prefix, _ = sandbox()
    env = {**os.environ, **classroom.GRADING_ENV, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1",
           "HOME": str(work / "home"), "TMPDIR": str(work / "tmp"), "MPLCONFIGDIR": str(work / "tmp"),
           "COURSE_CACHE": str(cache_root()), "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep),
           "ISOLATE_READONLY": "\n".join(sorted(d for d in {str(ROOT), *readonly} if not work.resolve().is_relative_to(d)))}
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), "/usr/sbin", "/sbin", env.get("PATH", "")])
    env.setdefault("HF_HOME", str(Path.home() / ".cache" / "huggingface"))
    cmd = [*prefix, sys.executable, "-m", "course.tools.isolate", str(work), student, assignment, str(cell_timeout or 0)]
    log = open(work / "grading.log", "wb")
    proc = subprocess.Popen(cmd, cwd=work, env=env, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                            start_new_session=True, preexec_fn=functools.partial(_limit_memory, mem_limit_gb))
    try:
        proc.wait(timeout=wall_limit_s)
    except subprocess.TimeoutExpired:
        result["problems"].append(f"grading stopped at the wall-time limit ({wall_limit_s:g} s): a cell that never ends; it scores 0")
    finally:
        _kill_tree(proc)
        proc.wait()
        log.close()
    child = work / RESULT
    if not (work / "solutions").exists():
        result["problems"].append("the notebook deleted its own grading folder (files outside the submission): it scores 0")
    elif child.exists():
        data = json.loads(child.read_text())
        for nb, cells in data["notebook_scores"].items():
            result["notebook_scores"].setdefault(nb, {}).update(cells)
            result["scores"].update(cells)
        result["comments"] = data["comments"]
        result["problems"] += data["problems"]
    elif proc.returncode not in (0, None) and not any("wall-time" in p for p in result["problems"]):
        tail = (work / "grading.log").read_text(errors="replace").strip().splitlines()[-1:] or ["no output"]
        result["problems"].append(f"grading process ended with status {proc.returncode} ({tail[0][:160]}): it scores 0")
    folder = work / "autograded" / student / assignment
    if folder.exists():
        for path in sorted(p for p in folder.rglob("*") if p.is_file()):
            rel = path.relative_to(folder).as_posix()
            if path.stat().st_size > MAX_FILE_BYTES:
                continue
            (result["notebooks"] if path.suffix == ".ipynb" and "/" not in rel else result["files"])[rel] = _b64(path.read_bytes())
        result["problems"] += _cell_problems(result, cell_timeout)


def _cell_problems(result: dict, cell_timeout) -> list[str]:
    """One line per graded notebook whose cells were interrupted (cell timeout) or ran out of memory."""
    out = []
    for name, data in result["notebooks"].items():
        try:
            cells = json.loads(base64.b64decode(data)).get("cells", [])
        except ValueError:
            continue
        for i, cell in enumerate(cells):
            for o in cell.get("outputs", []) if cell.get("cell_type") == "code" else []:
                if o.get("output_type") != "error":
                    continue
                gid = cell.get("metadata", {}).get("nbgrader", {}).get("grade_id") or f"cell {i}"
                if o.get("ename") in ("KeyboardInterrupt", "CellTimeoutError") or "CellTimeoutError" in "".join(o.get("traceback", [])):
                    out.append(f"{name}: {gid} was stopped at the cell timeout ({cell_timeout or 'default'} s)")
                elif o.get("ename") == "MemoryError" or "Cannot allocate memory" in str(o.get("evalue")):
                    out.append(f"{name}: {gid} ran out of memory (the grading memory limit)")
                elif "Read-only file system" in str(o.get("evalue")):
                    out.append(f"{name}: {gid} tried to change files outside its folder (read-only while grading)")
    return list(dict.fromkeys(out))                     # one line per cell and reason (a timeout can leave two errors)


# --- the subprocess: nbgrader autograde in the temporary course -------------------------------------------

def _child(work: Path, student: str, assignment: str, cell_timeout: int) -> None:
    """Runs in the sandbox: register the lesson in the fresh gradebook, autograde, write result.json."""
    import warnings

    from nbgrader.api import Gradebook, MissingEntry
    from sqlalchemy.exc import SAWarning


    warnings.filterwarnings("ignore", category=SAWarning)
    nb_api = classroom.api(work, cell_timeout or None)
    registered = nb_api.generate_assignment(assignment, force=True, create=True)
    if not registered["success"]:
        raise SystemExit(f"could not register {assignment}: {registered['error']}")
    out = {"notebook_scores": {}, "comments": {}, "problems": []}
    graded = nb_api.autograde(assignment, student, force=True, create=True)
    if not graded["success"]:
        out["problems"].append(_autograde_reason(graded))
    with Gradebook(nb_api.coursedir.db_url) as gb:
        try:
            sub = gb.find_submission(assignment, student)
            for nb in sub.notebooks:
                out["notebook_scores"][nb.name] = {g.name: [float(g.auto_score or 0.0), float(g.max_score)] for g in nb.grades
                                                   if graded["success"]}
                out["comments"].update({c.name: c.auto_comment for c in nb.comments if c.auto_comment})
        except MissingEntry:
            pass
    (work / RESULT).write_text(json.dumps(out))


def _autograde_reason(graded: dict) -> str:
    text = f"{graded.get('error') or ''}\n{graded.get('log') or ''}"
    if "DeadKernelError" in text or "Kernel died" in text or "kernel died" in text:
        return ("the kernel died while running the notebook (os._exit, a kill signal, or the grading memory limit): "
                "its code cells score 0 (make grade still grades the quiz from the answers cell in the file)")
    if "CellTimeoutError" in text or "TimeoutError" in text:
        return "a cell ran past the cell timeout and could not be interrupted (it ignores interrupts): it scores 0"
    last = [ln for ln in (graded.get("error") or "").strip().splitlines() if ln.strip()][-1:] or ["see nbgrader's log"]
    return f"autograde failed ({last[0][:160]}): it scores 0"


# --- the course gradebook: the only writer -------------------------------------------------------------------

def register(root: Path | str, assignment: str):
    """Register the lesson's cells in root's gradebook when it does not know them yet (a release, as
    grading.grade does for a fresh gradebook); return the NbGraderAPI of root."""
    from nbgrader.api import Gradebook


    nb_api = classroom.api(root)
    with Gradebook(nb_api.coursedir.db_url) as gb:
        known = {a.name for a in gb.assignments if a.notebooks}
    if assignment not in known:
        registered = nb_api.generate_assignment(assignment, force=True, create=True)
        if not registered["success"]:
            raise SystemExit(f"could not register {assignment} in the gradebook of {root}:\n{registered['error']}")
    return nb_api


def merge(root: Path | str, result: dict) -> None:
    """Write one grade_one result into root: autograded/<student>/<assignment>/ and the course gradebook."""
    import warnings

    from nbgrader.api import Gradebook, MissingEntry
    from sqlalchemy.exc import SAWarning

    warnings.filterwarnings("ignore", category=SAWarning)
    root = Path(root)
    student, assignment = result["student"], result["assignment"]
    nb_api = register(root, assignment)
    folder = root / "autograded" / student / assignment
    if folder.exists():
        shutil.rmtree(folder)
    if result["notebooks"]:                           # nothing to show for a file that was not a notebook
        folder.mkdir(parents=True)
    for rel, data in {**result.get("files", {}), **result["notebooks"]}.items():
        target = folder / rel
        if not target.resolve().is_relative_to(folder.resolve()):
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(base64.b64decode(data))
    by_notebook = result.get("notebook_scores") or {}
    with Gradebook(nb_api.coursedir.db_url) as gb:
        gb.update_or_create_student(student)
        try:
            gb.find_submission(assignment, student)
        except MissingEntry:
            gb.add_submission(assignment, student)
        sub = gb.find_submission(assignment, student)
        for nb in sub.notebooks:
            cells = by_notebook.get(nb.name, result["scores"])
            for g in nb.grades:
                g.auto_score = float(cells.get(g.name, [0.0])[0])   # a cell the result lacks: 0
                g.needs_manual_grade = g.manual_score is not None
            for c in nb.comments:
                c.auto_comment = result.get("comments", {}).get(c.name)
        gb.db.commit()


# --- a batch -----------------------------------------------------------------------------------------------------

def grade_all(root: Path | str, items: list[tuple[str, str]], jobs: int = 1, scheduler: str | None = None,
              **limits) -> list[dict]:
    """Grade submitted/<student>/<assignment>/ for each item, in `jobs` processes or on a Dask cluster, then
    merge each result into root (in the order of `items`, one at a time); return the results.

    The submissions and the lesson sources are read here and sent as bytes; workers need only the course
    installed. `limits`: cell_timeout, wall_limit_s, mem_limit_gb (see grade_one).
    """
    root = Path(root).resolve()
    sources: dict[str, dict[str, bytes]] = {}
    payloads = []
    for student, assignment in items:
        if assignment not in sources:
            register(root, assignment)                 # fails here, before hours of grading, if the source is broken
            sources[assignment] = read_source(root, assignment)
        payloads.append({"student": student, "assignment": assignment, "source": sources[assignment],
                         "files": read_submission(root, student, assignment), "readonly": [str(root)]})
    results = []
    with contextlib.ExitStack() as stack:
        if scheduler:
            from distributed import Client

            client = stack.enter_context(Client(scheduler))
            futures = [client.submit(grade_payload, p, pure=False, **limits) for p in payloads]
            outcomes = (_outcome(f.result) for f in futures)
        elif jobs > 1:
            import multiprocessing
            from concurrent.futures import ProcessPoolExecutor

            pool = stack.enter_context(ProcessPoolExecutor(jobs, mp_context=multiprocessing.get_context("spawn")))
            futures = [pool.submit(grade_payload, p, **limits) for p in payloads]
            outcomes = (_outcome(f.result) for f in futures)
        else:
            outcomes = (_outcome(functools.partial(grade_payload, p, **limits)) for p in payloads)
        for payload, outcome in zip(payloads, outcomes):   # in the order of items, each as soon as it is there
            if isinstance(outcome, BaseException):        # a worker died or was lost: this submission only
                outcome = _lost(payload, outcome)
            merge(root, outcome)
            results.append(outcome)
    return results


def _outcome(get):
    try:
        return get()
    except Exception as exc:                              # BrokenProcessPool, KilledWorker, ...
        return exc


def _lost(payload: dict, exc: BaseException) -> dict:
    maxima = _max_scores(payload["source"])
    return {"student": payload["student"], "assignment": payload["assignment"],
            "scores": {g: [0.0, m] for nb in maxima.values() for g, m in nb.items()},
            "notebook_scores": {nb: {g: [0.0, m] for g, m in cells.items()} for nb, cells in maxima.items()},
            "comments": {}, "notebooks": {}, "files": {}, "seconds": 0.0, "sandbox": "",
            "problems": [f"the grading worker failed ({exc.__class__.__name__}: {str(exc).splitlines()[0][:120] if str(exc) else ''}); "
                         "grade this submission again"]}


if __name__ == "__main__":
    if len(sys.argv) != 5:
        sys.exit("usage (grade_one's subprocess): python -m course.tools.isolate WORK_DIR STUDENT ASSIGNMENT CELL_TIMEOUT")
    os.chdir(sys.argv[1])
    _child(Path(sys.argv[1]), sys.argv[2], sys.argv[3], int(sys.argv[4]))
