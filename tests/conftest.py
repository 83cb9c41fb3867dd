"""Shared test setup: offline, smoke profile, the venv's bin/ on PATH (nbgrader runs alembic)."""

import os
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
