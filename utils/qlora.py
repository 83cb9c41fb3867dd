"""QLoRA's recipe and its memory, measured: a 4-bit NF4 base, LoRA on top, and what each costs.

Taught in lesson 07, which writes the two configs out in full; these functions build the same
ones for tests and scripts, and measure what a run actually holds.

- ``bnb_config``: NF4 with double quantisation, computing in the hardware's dtype
  (``runtime.compute_dtype``: bf16 where native, fp16 on a T4, fp32 on a CPU).
- ``lora_config``: r = 16, alpha = 16, no dropout, all seven Llama projections, rank-stabilised
  scaling alpha / sqrt(r) (``use_rslora=True``; not ReLoRA, a different method).
- ``weight_bytes``: what the weights really occupy, including the 4-bit layers' quantisation
  constants, which ``model.get_memory_footprint()`` leaves out.
- ``logical_params``: parameters counted as the model defines them (a 4-bit weight of shape
  (out, in) counts out x in, though it is stored as out x in / 2 bytes).
- ``estimate``: lesson 01's arithmetic for a LoRA / QLoRA run, knowing the optimizer (fp32 or
  8-bit AdamW).
- ``optimizer_state_bytes``: the optimizer's moments as stored (8-bit AdamW keeps small tensors,
  below 4,096 elements, in 32 bit: detected by measuring, not assumed).

Example:
    >>> from utils import qlora
    >>> qlora.lora_config().target_modules == set(qlora.TARGETS)
    True
"""

from __future__ import annotations

import torch

from utils import lora, quant, runtime

TARGETS = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")   # all seven projections


def bnb_config(compute_dtype: torch.dtype | None = None):
    """BitsAndBytesConfig: 4-bit NF4, double quantisation, compute in `compute_dtype` (default: the hardware's)."""
    from transformers import BitsAndBytesConfig

    return BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_use_double_quant=True,
                              bnb_4bit_compute_dtype=compute_dtype or runtime.compute_dtype())


def lora_config(r: int = 16, alpha: int = 16):
    """LoraConfig of lesson 07: rank-stabilised LoRA (scaling alpha / sqrt(r)) on all seven projections, no dropout."""
    from peft import LoraConfig

    return LoraConfig(r=r, lora_alpha=alpha, lora_dropout=0.0, target_modules=list(TARGETS), use_rslora=True,
                      task_type="CAUSAL_LM")


def _is_4bit(param) -> bool:
    return getattr(param, "quant_state", None) is not None


def logical_params(model) -> tuple[int, int]:
    """(all parameters, those stored in 4 bit), counting a 4-bit weight by its original shape (tied ones once)."""
    total = in_4bit = 0
    for param in model.parameters():
        if _is_4bit(param):
            n = int(torch.Size(param.quant_state.shape).numel())
            total, in_4bit = total + n, in_4bit + n
        else:
            total += param.numel()
    return total, in_4bit


def _quant_state_bytes(state) -> int:
    """The constants a bitsandbytes QuantState keeps beside the codes (absmax, and with double quantisation its own)."""
    n = 0
    for name in ("absmax", "code"):
        value = getattr(state, name, None)
        if isinstance(value, torch.Tensor):
            n += value.nelement() * value.element_size()
    nested = getattr(state, "state2", None)
    if nested is not None:
        n += _quant_state_bytes(nested)
        offset = getattr(state, "offset", None)
        if isinstance(offset, torch.Tensor):
            n += offset.nelement() * offset.element_size()
    return n


def weight_bytes(model) -> int:
    """Bytes of all parameters and buffers, plus the 4-bit layers' quantisation constants."""
    n = model.get_memory_footprint()
    return n + sum(_quant_state_bytes(p.quant_state) for p in model.parameters() if _is_4bit(p))


def trainable_bytes(model) -> tuple[int, int]:
    """(trainable parameters, their bytes): a gradient of the same size exists for each during a step."""
    params = [p for p in model.parameters() if p.requires_grad]
    return sum(p.numel() for p in params), sum(p.numel() * p.element_size() for p in params)


def optimizer_state_bytes(optimizer) -> int:
    """Bytes of every tensor the optimizer keeps per parameter (AdamW's two moments, 8-bit constants...).

    A tensor shared by several parameters (bitsandbytes' 8-bit quantisation maps) counts once.
    """
    n, seen = 0, set()
    for state in optimizer.state.values():
        for value in state.values():
            if isinstance(value, torch.Tensor) and value.data_ptr() not in seen:
                seen.add(value.data_ptr())
                n += value.nelement() * value.element_size()
    return n


def measured(model, result) -> dict:
    """What a finished run held, in bytes: weights, gradients (= trainable bytes), optimizer state, and the peak.

    `result` is a ``utils.train.TrainResult``; its peak (``peak_kind``) is the GPU's peak allocation
    during training, or on a CPU the whole process's peak RSS (Python and libraries included).
    """
    return {"weights": weight_bytes(model), "gradients": trainable_bytes(model)[1],
            "optimizer": optimizer_state_bytes(result.trainer.optimizer), "peak": result.peak_bytes,
            "peak_kind": result.memory_kind}


# trl / transformers optimizer names -> the bytes each trainable parameter costs (lora.BYTES_PER_PARAM)
OPTIMIZER_RECIPES = {"adamw_torch": "full fp32 + AdamW", "adamw_torch_fused": "full fp32 + AdamW",
                     "adamw_8bit": "fp32 + 8-bit AdamW", "paged_adamw_8bit": "fp32 + 8-bit AdamW"}


def estimate(total: int, in_4bit: int, trainable: int, quantized: bool, frozen_16bit_bytes: float = 2.0,
             optimizer: str = "adamw_torch") -> dict:
    """Lesson 01's estimate (``lora.training_memory``, no activations) for a LoRA run, in bytes.

    Frozen weights cost 2 bytes each in 16 bit; with QLoRA the `in_4bit` ones cost NF4 with double
    quantisation (4.127 bits) and the rest (embedding, norms) stay in 16 bit. The fp32 adapter
    costs 4 bytes of weight and 4 of gradient per parameter, and its optimizer state what
    `optimizer` (the name given to ``SFTConfig(optim=...)``) keeps: 8 bytes for fp32 AdamW, about
    2 for bitsandbytes' 8-bit AdamW (which keeps tensors under 4,096 elements in fp32: on a tiny
    model the measurement lies above this estimate).

    Example:
        >>> estimate(1000, 0, 100, quantized=False, optimizer="paged_adamw_8bit")["optimizer"]
        203.125
    """
    if optimizer not in OPTIMIZER_RECIPES:
        raise ValueError(f"No memory recipe for the optimizer {optimizer!r}: use one of {sorted(OPTIMIZER_RECIPES)}.")
    frozen = total - trainable
    if quantized:
        per_frozen = (in_4bit * quant.bits_per_param(64, double_quant=True) / 8
                      + (frozen - in_4bit) * frozen_16bit_bytes) / frozen
    else:
        per_frozen = frozen_16bit_bytes
    return lora.training_memory(total, trainable, frozen_bytes=per_frozen, trainable_recipe=OPTIMIZER_RECIPES[optimizer])


def free_memory() -> None:
    """Collect garbage and return cached GPU memory (after `del` of the models), so the next measurement starts clean."""
    import gc

    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()
