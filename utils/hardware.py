"""What this machine actually does: detected behaviour, never assumed from a brand or a flag.

CPUs and GPUs that run the course differ in ways that change results:

- ``bnb_cpu_dequant_defect()``: bitsandbytes 0.50.2's CPU ``dequantize_4bit`` returns wrong
  values, with no error, when a tensor's last dimension is not a multiple of the blocksize.
  Seen on an Intel CPU with AVX512-BF16 (max error 1.3-1.5 on 32 x 96); absent on a 2-core AMD
  EPYC Zen 3 (AVX2 only), where bitsandbytes takes another code path and is exact.
- ``bnb_cpu_repack()``: on the same AVX512-BF16 CPUs, the first no-grad forward through a
  ``bnb.nn.Linear4bit`` repacks its weight for a bf16 GEMV kernel without autograd, so LoRA
  gradients become None or wrong (``utils.quant.disable_bnb_cpu_repack`` prevents it).
  Absent on AVX2-only CPUs.
- ``native_bf16()``: bf16 in hardware needs CUDA compute capability >= 8.0 (A100, L4, H100).
  ``torch.cuda.is_bf16_supported()`` says True on a T4 (7.5) because its default counts
  emulation, which is slow, and trl / transformers then pick bf16. The course uses fp16 there.

Each check runs a tiny experiment (or reads a documented capability) once and caches it.

Example:
    >>> from utils import hardware
    >>> hardware.native_bf16("cpu")
    False
"""

from __future__ import annotations

import functools
import os
import platform

import torch

from utils import quant

BF16_MIN_CAPABILITY = (8, 0)   # Ampere and newer: native bf16 tensor cores


def cpu_flags() -> set[str]:
    """The CPU feature flags that matter here (avx2, avx512f, avx512_bf16, amx_bf16...), from /proc/cpuinfo.

    Empty on systems without /proc/cpuinfo (macOS, Windows): nothing is assumed from that either.
    """
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            for line in fh:
                if line.startswith("flags"):
                    return {f for f in line.split(":", 1)[1].split() if f.startswith(("avx", "amx"))}
    except OSError:
        pass
    return set()


def native_bf16(device: str | None = None) -> bool:
    """True only where bf16 runs natively: a CUDA GPU of compute capability >= 8.0.

    Not ``torch.cuda.is_bf16_supported()``, which reports True on a T4 (7.5) through emulation.
    On the CPU the course computes in fp32, so this is False there.
    """
    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    if device != "cuda":
        return False
    return tuple(torch.cuda.get_device_capability(0)) >= BF16_MIN_CAPABILITY


@functools.lru_cache(maxsize=None)
def bnb_cpu_dequant_error() -> float:
    """Largest error of bitsandbytes' CPU dequantize_4bit on a 32 x 96 tensor (blocksize 64).

    The reference is the course's own NF4 code (bit-identical to bitsandbytes' quantiser).
    0.0 where the CPU path is right; about 1.4 where the defect is present.
    """
    import bitsandbytes.functional as F

    x = torch.randn(32, 96, generator=torch.Generator().manual_seed(0))
    packed, state = F.quantize_4bit(x, quant_type="nf4", blocksize=64)
    reference = quant.nf4_dequantize(*quant.nf4_quantize(x.flatten()), x.shape)
    return (F.dequantize_4bit(packed, state) - reference).abs().max().item()


def bnb_cpu_dequant_defect() -> bool:
    """Does this CPU take bitsandbytes 0.50's wrong dequantize_4bit path (see the module doc)?"""
    return bnb_cpu_dequant_error() > 1e-3


@functools.lru_cache(maxsize=None)
def bnb_cpu_repack() -> bool:
    """Does a no-grad forward through a bnb Linear4bit repack its weight on this CPU (see the module doc)?"""
    import bitsandbytes as bnb

    layer = bnb.nn.Linear4bit(64, 64, bias=False, compute_dtype=torch.float32, quant_type="nf4")
    layer.load_state_dict({"weight": torch.randn(64, 64, generator=torch.Generator().manual_seed(0))})
    layer = layer.to("cpu")           # quantises the weight
    layer.eval()
    with torch.no_grad():
        layer(torch.randn(1, 64))
    return bool(getattr(layer.weight.quant_state, "packing_format_for_cpu", False))


def describe() -> dict:
    """The detected behaviours and the facts they depend on, for logs and the CI header."""
    import bitsandbytes.functional as F

    flags = cpu_flags()
    info = {
        "cpu": platform.processor() or platform.machine(),
        "cpu_flags": " ".join(sorted(f for f in flags if f in {"avx2", "avx512f", "avx512_bf16", "amx_bf16"})) or "none seen",
        "bnb_has_avx512bf16": bool(F.has_avx512bf16()) if hasattr(F, "has_avx512bf16") else "unknown",
        "bnb_cpu_dequant_defect": bnb_cpu_dequant_defect(),
        "bnb_cpu_dequant_max_error": round(bnb_cpu_dequant_error(), 3),
        "bnb_cpu_repack": bnb_cpu_repack(),
        "torch_threads": torch.get_num_threads(),
        "cores": os.cpu_count(),
    }
    if torch.cuda.is_available():
        cap = torch.cuda.get_device_capability(0)
        info.update(gpu=torch.cuda.get_device_name(0), gpu_capability=f"{cap[0]}.{cap[1]}", native_bf16=native_bf16("cuda"))
    return info
