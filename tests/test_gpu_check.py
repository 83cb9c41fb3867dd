"""course.tools.gpu_check in its CPU dry-run mode: the GPU session's one command must not rot between sessions."""

import json
import subprocess
import sys
import zipfile

import pytest
import torch

from course.tools import gpu_check
from utils import runtime


def _notebook(path, cells):
    nb = {"cells": [{"cell_type": kind, "metadata": meta, "source": src.splitlines(keepends=True), "outputs": [],
                     "execution_count": None} if kind == "code" else {"cell_type": kind, "metadata": meta, "source": src}
                    for kind, meta, src in cells], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(nb, indent=1))
    return path


SETUP = {"nbgrader": {"grade_id": "setup", "locked": True}}


def test_cells_run_like_a_kernel_and_a_failure_names_its_cell(tmp_path):
    nb = _notebook(tmp_path / "99_demo" / "99_demo.ipynb", [
        ("code", SETUP, "raise RuntimeError('the setup cell must be skipped')"),
        ("markdown", {}, "# text"),
        ("code", {}, "%matplotlib inline\n!pip install nothing\ndef f():\n    return 41\nfrom utils import checks\nchecks.check_own_function(f, 'f')"),
        ("code", {"nbgrader": {"grade_id": "test_f"}}, "assert f() == 42, f'expected 42, got {f()}'"),
        ("code", {}, "never = True"),
    ])
    cells = gpu_check.code_cells(nb)
    assert [c["index"] for c in cells] == [0, 2, 3, 4] and cells[2]["grade_id"] == "test_f"
    assert "%matplotlib" not in cells[1]["source"] and "!pip" not in cells[1]["source"]
    report = tmp_path / "report.json"
    proc = subprocess.run([sys.executable, "-m", "course.tools.gpu_check", "exec-notebook", str(nb), "--report", str(report)],
                          capture_output=True, text=True, timeout=120)
    state = json.loads(report.read_text())
    assert proc.returncode == 1 and state["status"] == "failed", state
    assert state["failed_cell"] == 3 and state["failed_grade_id"] == "test_f"
    assert state["error"] == "AssertionError: expected 42, got 41"
    assert state["cells_run"] == 1 and state["skipped_cells"][0].startswith("cell 0 (setup")
    assert "# %% cell 3 test_f" in gpu_check.notebook_to_script(nb)


def test_a_hung_step_times_out_and_the_run_goes_on(tmp_path):
    status, seconds, _ = gpu_check._run([sys.executable, "-c", "import time; time.sleep(30)"], 1, tmp_path / "log")
    assert status == "timeout" and seconds < 10
    budget = gpu_check.Budget(5)
    assert budget.timeout(150) <= 5 and budget.timeout(2) == 2


def test_forced_dtype_is_read_from_the_environment(monkeypatch):
    monkeypatch.delenv("COURSE_DTYPE", raising=False)
    assert runtime.forced_dtype() is None
    monkeypatch.setenv("COURSE_DTYPE", "float16")
    assert runtime.forced_dtype() == torch.float16
    assert runtime.compute_dtype("cpu") == torch.float32            # the CPU always computes in fp32
    if not torch.cuda.is_available():
        assert runtime.compute_dtype("cuda") == torch.float16
    monkeypatch.setenv("COURSE_DTYPE", "half-ish")
    with pytest.raises(ValueError, match="use float16, bfloat16 or float32"):
        runtime.forced_dtype()


def test_bnb_wheel_keeps_only_the_kernels_the_gpu_machine_loads(tmp_path):
    wheel = tmp_path / "bitsandbytes-0.50.2-py3-none-manylinux_2_24_x86_64.whl"
    libs = ["cpu", "cuda118", "cuda128", "cuda130", "cuda132", "rocm72", "xpu2026"]
    with zipfile.ZipFile(wheel, "w") as z:
        z.writestr("bitsandbytes/__init__.py", "x = 1\n")
        for lib in libs:
            z.writestr(f"bitsandbytes/libbitsandbytes_{lib}.so", b"\0" * 1000)
        z.writestr("bitsandbytes-0.50.2.dist-info/RECORD", "".join(f"bitsandbytes/libbitsandbytes_{lib}.so,sha256=x,1000\n" for lib in libs)
                   + "bitsandbytes/__init__.py,sha256=y,6\n")
    assert gpu_check.trim_bnb_wheel(wheel) > 0
    with zipfile.ZipFile(wheel) as z:
        kept = sorted(n for n in z.namelist() if n.endswith(".so"))
        record = z.read("bitsandbytes-0.50.2.dist-info/RECORD").decode()
    assert kept == [f"bitsandbytes/libbitsandbytes_{lib}.so" for lib in ("cpu", "cuda130", "cuda132")]
    assert "cuda128" not in record and "cuda130" in record and "__init__.py" in record


@pytest.fixture(scope="module")
def dry_run(tmp_path_factory):
    """The whole check on this CPU: lesson 02 executed, every lesson converted, the tiny bench."""
    out = tmp_path_factory.mktemp("gpu-results")
    proc = subprocess.run([sys.executable, "-m", "course.tools.gpu_check", "run", "--dry-run", "--out", str(out),
                           "--lessons", "02", "--budget", "200"], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    return out, [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines()]


def test_dry_run_records_every_step_and_says_why_it_skipped(dry_run, root):
    out, records = dry_run
    steps = {r["step"]: r for r in records}
    assert records[0]["step"] == "environment" and records[0]["mode"] == "dry-run (CPU)"
    lessons = sorted(p.parent.name for p in root.glob("solutions/*/*.ipynb") if p.stem == p.parent.name)
    assert steps["lessons found"]["lessons"] == lessons and steps["lessons found"]["executed"] == ["02_int8_absmax"]
    assert steps["tiny-model"]["status"] == "passed"
    assert steps["pytest"]["status"] == "skipped" and "CUDA" in steps["pytest"]["reason"]
    lesson = steps["lesson 02_int8_absmax cpu-fp32"]
    assert lesson["status"] in {"passed", "failed"} and lesson["cells_run"] > 3, lesson
    assert lesson["used_cuda"] is False
    assert steps["lessons bf16"]["status"] == "skipped" and steps["lessons bf16"]["reason"]
    assert steps["smollm2 weights"]["status"] == "skipped" and "--real-lessons" in steps["smollm2 weights"]["reason"]
    summary = (out / "summary.txt").read_text()
    assert "pytest" in summary and "skipped" in summary and "total:" in summary
    assert json.loads((out / "results.json").read_text()) == records
    assert (out / "lessons" / "02_int8_absmax.py").read_text().startswith("# 02_int8_absmax.ipynb")


def test_dry_run_bench_writes_the_same_keys_as_a_gpu_run(dry_run):
    from course.tools import bench_1b

    out, records = dry_run
    steps = {r["step"]: r for r in records}
    assert steps["bench"]["status"] == "passed", steps["bench"]
    for phase in ("lora_train", "eval_score", "eval_generate", "qlora_train"):
        assert set(bench_1b.PHASE_KEYS) <= set(steps[f"bench {phase}"]), phase
    estimate = steps["bench t4_estimate"]
    assert estimate["estimate"] is True and set(estimate["minutes_per_lesson"]) == {"04", "05", "06", "07"}
    assert "not meaningful" in estimate["note"]
    saved = json.loads((out / "bench-1b.json").read_text())
    assert set(saved["phases"]) == {"matmul", "lora_train", "eval_score", "eval_generate", "qlora_train", "t4_estimate"}


def test_the_smollm2_wheel_travels_in_parts_and_is_joined_only_whole(tmp_path, monkeypatch):
    import hashlib

    from utils import models

    fake = tmp_path / models.SMOLLM2_RECIPE["wheel"]
    fake.write_bytes(bytes(range(256)) * 20000)                      # 5.1 MB: 3 parts at 2 MiB
    monkeypatch.setattr(models, "smollm2_wheel", lambda: fake)
    monkeypatch.setitem(models.SMOLLM2_RECIPE, "wheel_sha256", hashlib.sha256(fake.read_bytes()).hexdigest())
    monkeypatch.setenv("COURSE_CACHE", str(tmp_path / "cache"))
    parts = gpu_check.split_smollm2(tmp_path / "carry", part_mib=2)
    assert [p.name[-8:] for p in parts] == ["part1of3", "part2of3", "part3of3"]
    assert all(p.stat().st_size <= 2 * 2**20 for p in parts)
    assert gpu_check.join_smollm2([tmp_path / "nothing-here"]) is None
    # one part per device call: they may come back from two folders (the tree's .carry/ and the copy in /tmp)
    other = tmp_path / "copied"
    other.mkdir()
    parts[2].rename(other / parts[2].name)
    joined = gpu_check.join_smollm2([tmp_path / "carry", other])
    assert joined == tmp_path / "cache" / "wheels" / fake.name and joined.read_bytes() == fake.read_bytes()
    joined.unlink()
    (other / parts[2].name).unlink()
    with pytest.raises(ValueError, match=r"Only parts \[1, 2\] of 3"):
        gpu_check.join_smollm2([tmp_path / "carry"])
    (tmp_path / "carry" / parts[2].name).write_bytes(b"not the last part")
    with pytest.raises(ValueError, match="sha256"):
        gpu_check.join_smollm2([tmp_path / "carry"])
    assert not joined.exists()
