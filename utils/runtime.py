"""Device, dtype, seeding, timing and Hugging Face token handling, the same on CPU and GPU.

Example:
    >>> from utils import runtime
    >>> runtime.compute_dtype("cpu")
    torch.float32
"""

from __future__ import annotations

import contextlib
import os
import random
import resource
import sys
import time
from dataclasses import dataclass

import torch

from utils import hardware


def get_device() -> str:
    """'cuda' when a CUDA GPU is visible, else 'cpu' (the course never hard-codes a device)."""
    return "cuda" if torch.cuda.is_available() else "cpu"


def describe_device(device: str) -> str:
    """A human-readable name for the device, e.g. 'cuda (Tesla T4, 15.0 GB)'."""
    if device == "cuda":
        props = torch.cuda.get_device_properties(0)
        return f"cuda ({props.name}, {props.total_memory / 1e9:.1f} GB)"
    return f"cpu ({os.cpu_count()} cores, torch threads {torch.get_num_threads()})"


def compute_dtype(device: str | None = None) -> torch.dtype:
    """bf16 where the GPU runs it natively (compute capability >= 8.0), fp16 on older GPUs (T4), fp32 on the CPU.

    Not ``torch.cuda.is_bf16_supported()``: it says True on a T4, where bf16 is only emulated
    (see utils.hardware.native_bf16).
    """
    device = device or get_device()
    if device == "cuda" and forced_dtype() is not None:
        return forced_dtype()
    if device == "cuda":
        return torch.bfloat16 if hardware.native_bf16("cuda") else torch.float16
    return torch.float32


DTYPE_ENV = "COURSE_DTYPE"   # float16 | bfloat16 | float32: forces the CUDA compute dtype (make gpu-check)
_DTYPE_NAMES = {"float16": torch.float16, "fp16": torch.float16, "bfloat16": torch.bfloat16,
                "bf16": torch.bfloat16, "float32": torch.float32, "fp32": torch.float32}


def forced_dtype() -> torch.dtype | None:
    """The CUDA compute dtype that $COURSE_DTYPE forces, or None when it is unset.

    `make gpu-check` sets it to run the lessons in fp16 (what a T4 uses) on a GPU that would
    pick bf16. Explicit ``dtype=`` arguments in a lesson still win; the CPU always computes in fp32.
    """
    name = os.environ.get(DTYPE_ENV, "").strip().lower()
    if not name:
        return None
    if name not in _DTYPE_NAMES:
        raise ValueError(f"{DTYPE_ENV}={name!r} is not a dtype the course knows: use float16, bfloat16 or float32.")
    dtype = _DTYPE_NAMES[name]
    if dtype == torch.bfloat16 and torch.cuda.is_available() and torch.cuda.get_device_capability(0) < (8, 0):
        raise ValueError(f"{DTYPE_ENV}=bfloat16 needs a GPU of compute capability 8.0 or newer; "
                         f"{torch.cuda.get_device_name(0)} only emulates bf16: use float16.")
    return dtype


def precision_args(device: str | None = None) -> dict:
    """Keyword arguments for SFTConfig / TrainingArguments that match the hardware.

    SFTConfig defaults to bf16=True, which fails on a CPU and crawls through emulation on a T4;
    this picks explicitly: bf16 only where it is native, fp16 on other GPUs, neither on the CPU.
    """
    dtype = compute_dtype(device)
    return {"bf16": dtype == torch.bfloat16, "fp16": dtype == torch.float16,
            "use_cpu": (device or get_device()) == "cpu"}


def seed_everything(seed: int = 42) -> None:
    """Seed Python, NumPy and torch so a notebook gives the same numbers on every run."""
    import numpy as np

    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    if torch.cuda.is_available():
        torch.cuda.manual_seed_all(seed)


def package_versions() -> dict[str, str]:
    """Versions of the packages whose behaviour the course depends on."""
    import importlib.metadata as md

    names = ["torch", "transformers", "peft", "trl", "bitsandbytes", "datasets"]
    out = {"python": sys.version.split()[0]}
    for n in names:
        try:
            out[n] = md.version(n)
        except md.PackageNotFoundError:
            out[n] = "not installed"
    return out


@dataclass
class Measurement:
    """Wall time and peak memory of a block (filled in when the block ends)."""

    label: str
    seconds: float = 0.0
    peak_bytes: int = 0
    memory_kind: str = ""

    def summary(self) -> str:
        return f"{self.label}: {self.seconds:.1f} s, peak {self.memory_kind} {self.peak_bytes / 2**20:,.0f} MiB"


def _peak_rss_bytes() -> int:
    # ru_maxrss is in KiB on Linux and bytes on macOS; it is the process's peak so far.
    scale = 1 if sys.platform == "darwin" else 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * scale


@contextlib.contextmanager
def measure(label: str, verbose: bool = True):
    """Time a block and record its peak memory (GPU allocations on CUDA, process RSS on CPU).

    Example:
        >>> with measure("training") as m:
        ...     pass
        training: 0.0 s, peak ...
    """
    m = Measurement(label)
    cuda = torch.cuda.is_available()
    if cuda:
        torch.cuda.reset_peak_memory_stats()
    start = time.perf_counter()
    try:
        yield m
    finally:
        m.seconds = time.perf_counter() - start
        if cuda:
            m.peak_bytes, m.memory_kind = torch.cuda.max_memory_allocated(), "GPU"
        else:
            m.peak_bytes, m.memory_kind = _peak_rss_bytes(), "process RSS"
        if verbose:
            print(m.summary())


def hf_token() -> str | None:
    """The Hugging Face token from $HF_TOKEN, else Colab's secret 'HF_TOKEN', else None.

    Never put a token in a notebook: in Colab add it under the key icon (Secrets) as HF_TOKEN.
    """
    token = os.environ.get("HF_TOKEN") or os.environ.get("HUGGING_FACE_HUB_TOKEN")
    if token:
        return token.strip()
    if "google.colab" in sys.modules:
        try:
            from google.colab import userdata  # type: ignore[import-not-found]

            return userdata.get("HF_TOKEN")
        except Exception:  # secret missing or notebook access not granted
            return None
    return None


class HubAccessError(RuntimeError):
    """A model or dataset could not be fetched from the Hub; the message says what to do.

    `kind` is "gated", "offline", "missing" or "other", so callers decide without parsing text.
    """

    def __init__(self, message: str, kind: str = "other"):
        super().__init__(message)
        self.kind = kind


def explain_hub_error(exc: BaseException, repo_id: str, mirror_id: str | None = None) -> HubAccessError:
    """Turn a hub failure into one sentence that tells a student what to do.

    `mirror_id`: an ungated copy to suggest when `repo_id` is gated (the caller knows it; runtime
    does not import the course's configuration, which imports runtime).
    """
    name = type(exc).__name__
    text = str(exc)
    if name == "GatedRepoError" or "gated" in text.lower() or "403" in text:
        how = ("set HF_TOKEN (Colab: key icon > Secrets > HF_TOKEN, and allow notebook access)"
               if hf_token() is None else "your HF_TOKEN does not grant access yet")
        mirror = f"; or use the ungated mirror {mirror_id} (same weights, no licence gate)" if mirror_id else ""
        return HubAccessError(f"{repo_id} is a gated model: accept its licence on its Hugging Face page and {how}{mirror}.",
                              kind="gated")
    if "offline" in text.lower() or name in {"OfflineModeIsEnabled", "LocalEntryNotFoundError"}:
        return HubAccessError(
            f"{repo_id} is not in the local cache and the Hub is unreachable (offline mode). "
            "Connect to the internet, or use the smoke profile (PROFILE = 'smoke'), which needs no download.",
            kind="offline")
    if name == "RepositoryNotFoundError" or "404" in text:
        return HubAccessError(f"{repo_id} was not found on the Hub: check the spelling of the id.", kind="missing")
    return HubAccessError(f"Could not load {repo_id} from the Hub ({name}: {text.splitlines()[0] if text else ''}).")



def save_figure(fig, name: str, folder: str = "outputs") -> str:
    """Save a matplotlib figure as outputs/NAME.png next to the running notebook; return the path."""
    from pathlib import Path

    path = Path(folder) / f"{name}.png"
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120, bbox_inches="tight")
    print(f"figure saved: {path}")
    return str(path)
