"""Quantisation, written out: absmax int8 (lesson 02), NF4 and double quantisation (lesson 03).

The reference code that the QLoRA lesson (07) reuses, checked against bitsandbytes in the tests:
NF4 codes and absmax are bit-identical to ``bitsandbytes.functional.quantize_4bit``.
Everything is vectorised torch (no Python loop over elements or blocks).

Example (the seed's worked example):
    >>> import torch
    >>> q, c = absmax_quantize(torch.tensor([0.3, -0.2, 1.5, -0.8]))
    >>> q.tolist(), round(c, 2)
    ([25, -17, 127, -68], 84.67)

Also here: the guard against a bitsandbytes 0.50 CPU defect. On CPUs with AVX512-BF16, the
first no-grad forward through a ``bnb.nn.Linear4bit`` repacks its weight for a bf16 GEMV kernel
that has no autograd, after which LoRA gradients are silently None or wrong.
"""

from __future__ import annotations

import math

import torch

NF4_OFFSET = 0.9677083   # the outermost quantile used by QLoRA / bitsandbytes (see nf4_levels)
# bitsandbytes' NF4 table (F.get_4bit_type("nf4")), as listed in the course brief (7 digits).
NF4_REFERENCE = [-1.0, -0.6961928, -0.5250731, -0.3949175, -0.2844414, -0.1847734, -0.0910500, 0.0,
                 0.0795803, 0.1609302, 0.2461123, 0.3379152, 0.4407098, 0.5626170, 0.7229568, 1.0]
# The same table as stored in float32 by bitsandbytes 0.50 (17 significant digits). The
# quantiser uses these exact values: nf4_levels() rebuilds them from normal quantiles only to
# within 1.2e-7, and a 1-ulp difference moves the decision thresholds for a few values in 10 M.
NF4_CODE = [-1.0, -0.69619280099868774, -0.52507305145263672, -0.39491748809814453, -0.28444138169288635,
            -0.18477343022823334, -0.091050036251544952, 0.0, 0.079580299556255341, 0.16093020141124725,
            0.24611230194568634, 0.33791524171829224, 0.44070982933044434, 0.56261700391769409,
            0.72295683622360229, 1.0]


def _check_float(x, name: str = "x") -> torch.Tensor:
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(x).__name__}; wrap it with torch.tensor(...).")
    if not x.is_floating_point():
        raise TypeError(f"{name} must be a floating-point tensor (got {x.dtype}); convert it with .float() first.")
    if x.numel() == 0:
        raise ValueError(f"{name} is empty: there is nothing to quantise.")
    return x


def _check_blocks(x: torch.Tensor, blocksize: int) -> int:
    if not isinstance(blocksize, int) or blocksize <= 0:
        raise ValueError(f"blocksize must be a positive integer, got {blocksize!r}.")
    if x.numel() % blocksize:
        raise ValueError(f"blocksize {blocksize} does not divide the tensor's {x.numel()} elements; "
                         f"choose a divisor of {x.numel()} or pad the tensor to a multiple of {blocksize}.")
    return x.numel() // blocksize


# --- absmax int8 (lesson 02) ----------------------------------------------------------------------

def absmax_quantize(x: torch.Tensor) -> tuple[torch.Tensor, float]:
    """Per-tensor absmax int8: c = 127 / max|x|, q = round(c x). Returns (q int8 like x, c).

    An all-zero tensor gives q = 0 and c = 1.0 (any c reproduces it).
    """
    x = _check_float(x)
    absmax = x.abs().max().item()
    c = 127.0 / absmax if absmax > 0 else 1.0
    return torch.round(x.double() * c).to(torch.int8), c


def absmax_dequantize(q: torch.Tensor, c: float) -> torch.Tensor:
    """Undo absmax_quantize: q / c, as float32."""
    return q.to(torch.float32) / c


def blockwise_absmax_quantize(x: torch.Tensor, blocksize: int = 64) -> tuple[torch.Tensor, torch.Tensor]:
    """Absmax int8 with one constant per block of `blocksize` consecutive elements (row-major).

    Returns (q int8 with x's shape, c float32 of shape (numel / blocksize,)). The blocksize must
    divide the number of elements: a clear ValueError says so otherwise.
    """
    x = _check_float(x)
    n_blocks = _check_blocks(x, blocksize)
    blocks = x.reshape(n_blocks, blocksize).double()               # (n_blocks, blocksize)
    absmax = blocks.abs().amax(dim=1, keepdim=True)                 # (n_blocks, 1)
    c = torch.where(absmax > 0, 127.0 / absmax, torch.ones_like(absmax))
    q = torch.round(blocks * c).to(torch.int8).reshape(x.shape)    # same shape as x
    return q, c.squeeze(1).float()


def blockwise_absmax_dequantize(q: torch.Tensor, c: torch.Tensor, blocksize: int = 64) -> torch.Tensor:
    """Undo blockwise_absmax_quantize: each block divided by its own constant; shape of q."""
    n_blocks = _check_blocks(q, blocksize)
    if c.numel() != n_blocks:
        raise ValueError(f"{c.numel()} constants for {n_blocks} blocks of {blocksize}: use the c that came with q.")
    return (q.reshape(n_blocks, blocksize).float() / c.reshape(-1, 1)).reshape(q.shape)


# --- NF4 (lesson 03) --------------------------------------------------------------------------------

def nf4_levels(offset: float = NF4_OFFSET) -> torch.Tensor:
    """The 16 NormalFloat-4 levels: 8 positive and 7 negative normal quantiles plus an exact 0, in [-1, 1].

    The positive half takes the quantiles at 8 evenly spaced probabilities from `offset` down to
    0.5 (dropping 0.5 itself, which is 0), the negative half 7 from `offset` down to 0.5; then
    everything is divided by the largest value so the extremes are exactly -1 and 1.
    """
    from scipy.stats import norm

    positive = norm.ppf(torch.linspace(offset, 0.5, 9, dtype=torch.float64)[:-1].numpy())   # 8 values
    negative = -norm.ppf(torch.linspace(offset, 0.5, 8, dtype=torch.float64)[:-1].numpy())  # 7 values
    levels = torch.tensor(sorted([*positive, 0.0, *negative]), dtype=torch.float64)
    return (levels / levels.max()).float()                                                    # (16,)



def nf4_code() -> torch.Tensor:
    """bitsandbytes' float32 NF4 table (16,), the one quantize_4bit uses."""
    return torch.tensor(NF4_CODE, dtype=torch.float32)


def nearest_level(x: torch.Tensor, levels: torch.Tensor) -> torch.Tensor:
    """Index (uint8) of the nearest level for every element of x (levels sorted ascending).

    Uses the midpoints between neighbouring levels, so it is one bucketize, not a (n, 16) distance
    matrix. Like bitsandbytes' thresholds, midpoints are computed in float64 and stored in float32;
    a value exactly on a midpoint goes to the lower level (bitsandbytes tests x > threshold).
    """
    levels = levels.double()
    mids = ((levels[1:] + levels[:-1]) / 2).float()                # (15,) float32
    return torch.bucketize(x.contiguous().float(), mids).to(torch.uint8)


def pack_4bit(idx: torch.Tensor) -> torch.Tensor:
    """Two 4-bit codes per byte, the first in the high nibble (bitsandbytes' layout). (n,) -> (n/2,)."""
    idx = idx.reshape(-1).to(torch.uint8)
    if idx.numel() % 2:
        raise ValueError("4-bit packing needs an even number of codes.")
    return (idx[0::2] << 4) | idx[1::2]


def unpack_4bit(packed: torch.Tensor) -> torch.Tensor:
    """Inverse of pack_4bit: (n/2,) uint8 -> (n,) codes."""
    packed = packed.reshape(-1)
    return torch.stack([packed >> 4, packed & 0x0F], dim=1).reshape(-1)


def _blocks(x: torch.Tensor, blocksize: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(blocks (n_blocks, blocksize) float32, absmax (n_blocks,), absmax with zeros replaced by 1)."""
    x = _check_float(x)
    n_blocks = _check_blocks(x, blocksize)
    blocks = x.reshape(n_blocks, blocksize).float()
    absmax = blocks.abs().amax(dim=1)
    return blocks, absmax, torch.where(absmax > 0, absmax, torch.ones_like(absmax))


def nf4_quantize(x: torch.Tensor, blocksize: int = 64) -> tuple[torch.Tensor, torch.Tensor]:
    """Blockwise NF4: absmax per block, nearest NF4 level of x / absmax, packed two per byte.

    Returns (packed uint8 of shape (numel/2,), absmax float32 of shape (numel/blocksize,)),
    bit-identical to bitsandbytes.functional.quantize_4bit(x, quant_type="nf4", blocksize=...).
    """
    blocks, absmax, safe = _blocks(x, blocksize)                   # (n_blocks, blocksize), (n_blocks,) x 2
    scaled = blocks * (1.0 / safe)[:, None]                        # float32 x * (1/absmax), as bitsandbytes does
    idx = nearest_level(scaled, nf4_code())                        # (n_blocks, blocksize) uint8 in 0..15
    return pack_4bit(idx), absmax


def nf4_dequantize(packed: torch.Tensor, absmax: torch.Tensor, shape, blocksize: int = 64) -> torch.Tensor:
    """Undo nf4_quantize: level value times its block's absmax, reshaped to `shape` (float32)."""
    idx = unpack_4bit(packed).long()                               # (numel,)
    n = math.prod(shape)
    if idx.numel() != n or n // blocksize != absmax.numel():
        raise ValueError(f"packed codes ({idx.numel()}) and absmax ({absmax.numel()}) do not fit shape {tuple(shape)} "
                         f"with blocksize {blocksize}.")
    values = nf4_code()[idx].reshape(-1, blocksize) * absmax[:, None].float()
    return values.reshape(shape)


def uniform_int4_levels() -> torch.Tensor:
    """Symmetric uniform 4-bit levels k/7 for k = -7..7 (15 levels; the 16th code unused), for comparison."""
    return torch.arange(-7, 8, dtype=torch.float32) / 7


def blockwise_quantize_levels(x: torch.Tensor, levels: torch.Tensor, blocksize: int = 64) -> torch.Tensor:
    """Quantise-dequantise x blockwise to any sorted level table in [-1, 1] (NF4, int4, FP4...)."""
    blocks, _, safe = _blocks(x, blocksize)
    levels = torch.sort(levels.float()).values
    return (levels[nearest_level(blocks / safe[:, None], levels).long()] * safe[:, None]).reshape(x.shape)


def bits_per_param(blocksize: int = 64, double_quant: bool = False, code_bits: int = 4,
                   dq_blocksize: int = 256) -> float:
    """Storage bits per weight: the code plus its share of the constants.

    Without double quantisation each block stores a 32-bit absmax: 4 + 32/64 = 4.5 bits.
    With it the absmax are stored in 8 bits, plus one 32-bit constant per `dq_blocksize` of them:
    4 + 8/64 + 32/(64 x 256) = 4.127 bits.
    """
    if blocksize <= 0 or dq_blocksize <= 0:
        raise ValueError("block sizes must be positive.")
    if double_quant:
        return code_bits + 8 / blocksize + 32 / (blocksize * dq_blocksize)
    return code_bits + 32 / blocksize


def quantized_linear_params(model) -> int:
    """Weights in the decoder blocks' linear layers: what bitsandbytes stores in 4 or 8 bit.

    The embedding (tied with lm_head on Llama-3.2) and the norms stay in 16 or 32 bit.
    """
    import torch.nn as nn

    return sum(m.weight.numel() for m in model.model.layers.modules() if isinstance(m, nn.Linear))


# --- bitsandbytes on CPU ------------------------------------------------------------------------

def disable_bnb_cpu_repack(model) -> int:
    """Stop (and undo) bitsandbytes' CPU weight repack on every Linear4bit; return how many were seen.

    Call it right after a 4-bit load on CPU (utils.models does). Without it, evaluating or
    generating before training makes QLoRA gradients wrong with no error on AVX512-BF16 CPUs.
    """
    import bitsandbytes as bnb
    from bitsandbytes.functional import _convert_weight_packed_for_cpu_inverse

    seen = 0
    for module in model.modules():
        if isinstance(module, bnb.nn.Linear4bit):
            module.support_avx512bf16_for_cpu = False
            weight = module.weight
            state = getattr(weight, "quant_state", None)
            if state is not None and getattr(state, "packing_format_for_cpu", False):
                weight.data, weight.quant_state = _convert_weight_packed_for_cpu_inverse(weight.data, state)
            seen += 1
    return seen
