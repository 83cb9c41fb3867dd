"""Shared test setup: offline, smoke profile, the venv's bin/ on PATH (nbgrader runs alembic)."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

for key, value in {"HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1",
                   "COURSE_PROFILE": "smoke", "TOKENIZERS_PARALLELISM": "false"}.items():
    os.environ.setdefault(key, value)
_bin = str(Path(sys.executable).parent)
if _bin not in os.environ.get("PATH", "").split(os.pathsep):
    os.environ["PATH"] = _bin + os.pathsep + os.environ.get("PATH", "")

ROOT = Path(__file__).resolve().parents[1]


# make test's slowest scopes (one worker's seconds, clean clone, AMD EPYC 2 cores, 2026-12-07), longest first. With
# --no-loadscope-reorder (Makefile) pytest-xdist hands scopes out in this order; its default orders them by their
# number of tests, which put the one-test notebook runs (lesson 06's sweep: 99 s) last, one worker idle meanwhile.
SLOW_FIRST = ("::TestRoundTrip_06_", "::TestScenarios", "tests/test_isolate.py", "::TestRoundTrip_04_",
              "solutions/06_", "::TestRoundTrip_08_", "::TestRoundTrip_07_", "solutions/04_", "::TestRoundTrip_01_",
              "::TestRoundTrip_05_", "::TestRoundTrip_03_", "solutions/08_", "::TestRoundTrip_02_", "tests/test_smollm2.py",
              "solutions/07_", "tests/test_gpu_check.py", "tests/test_distribution.py")


def pytest_collection_modifyitems(config, items):
    """The slow scopes first (SLOW_FIRST), the rest in collection order: short tests fill the gaps at the end."""
    def rank(item):
        return next((i for i, key in enumerate(SLOW_FIRST) if key in item.nodeid), len(SLOW_FIRST))

    items.sort(key=rank)


# The cached models every worker needs, built by build_once (utils.config): under pytest-xdist each worker would
# otherwise build the same one at the same time (the first to finish wins).
PREBUILD = {"tiny Llama": "from utils import models; models.tiny_model_dir()",
            "tiny T5": "from utils import seq2seq; seq2seq.tiny_t5_dir()",
            "Llama-3.2 tokenizer": "from course.tools import llama_tokenizer; llama_tokenizer.load()"}


def pytest_sessionstart(session):
    """Under pytest-xdist, build the cached models once, in parallel, before the workers start (seconds when cached)."""
    if hasattr(session.config, "workerinput") or not getattr(session.config.option, "numprocesses", None):
        return
    procs = {name: subprocess.Popen([sys.executable, "-c", code], cwd=ROOT, stdout=subprocess.DEVNULL,
                                    stderr=subprocess.PIPE, text=True) for name, code in PREBUILD.items()}
    for name, proc in procs.items():
        _, err = proc.communicate()
        if proc.returncode:      # the tests that need it fail with the full error; say which build failed here
            print(f"building the {name} before the tests failed: {err.strip().splitlines()[-1:]}", file=sys.stderr)


def pytest_report_header(config):
    """Say which hardware paths this run takes (CPU flags, bitsandbytes behaviours, threads)."""
    from utils import hardware

    return "hardware: " + ", ".join(f"{k}={v}" for k, v in hardware.describe().items())


@pytest.fixture(scope="session")
def root() -> Path:
    return ROOT


@pytest.fixture(scope="session")
def tiny():
    """The tiny smoke model and its tokenizer (built once per recipe, then cached)."""
    import torch

    from utils import models

    return models.load_model_and_tokenizer(models.TINY_MODEL_ID, dtype=torch.float32, device="cpu")
