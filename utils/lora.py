"""LoRA, small enough to read: a teaching layer and the arithmetic of parameters and memory.

Taught in lesson 01 (students write their own ``LoRALinear``; this is the reference the later
lessons import). Names and formulas follow peft's ``tuners/lora/layer.py``:
``scaling = alpha / r`` (``alpha / sqrt(r)`` with rank-stabilised LoRA), ``lora_A`` random
(Kaiming-uniform), ``lora_B`` zeros, ``delta_W = lora_B @ lora_A * scaling``.

Example:
    >>> import torch
    >>> layer = LoRALinear(torch.nn.Linear(64, 512), r=8, alpha=16)
    >>> lora_param_count(512, 64, 8)        # A 8x64 + B 512x8
    4608
"""

from __future__ import annotations

import math

import torch
from torch import nn

# Linear layers of one Llama decoder block, as (name, in_features, out_features) from a config.
LLAMA_LINEARS = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")


class LoRALinear(nn.Module):
    """y = base(x) + dropout(x) @ A^T @ B^T * (alpha / r), with the base layer frozen."""

    def __init__(self, base: nn.Linear, r: int, alpha: float, dropout: float = 0.0, use_rslora: bool = False):
        super().__init__()
        if not isinstance(base, nn.Linear):
            raise TypeError(f"LoRALinear wraps an nn.Linear, got {type(base).__name__}.")
        if not isinstance(r, int) or r <= 0:
            raise ValueError(f"The rank r must be a positive integer, got {r!r}.")
        self.base = base
        self.base.requires_grad_(False)
        self.r, self.alpha = r, alpha
        self.scaling = lora_scaling(alpha, r, use_rslora)
        self.lora_A = nn.Parameter(torch.empty(r, base.in_features))   # (r, k)
        self.lora_B = nn.Parameter(torch.zeros(base.out_features, r))  # (d, r): zero, so delta_W = 0 at start
        nn.init.kaiming_uniform_(self.lora_A, a=math.sqrt(5))
        self.dropout = nn.Dropout(dropout) if dropout > 0 else nn.Identity()

    def delta_weight(self) -> torch.Tensor:
        """The low-rank update B @ A * scaling, shape (out_features, in_features)."""
        return self.lora_B @ self.lora_A * self.scaling

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.base(x) + (self.dropout(x) @ self.lora_A.T @ self.lora_B.T) * self.scaling

    @torch.no_grad()
    def merge(self) -> nn.Linear:
        """A plain nn.Linear with W + B @ A * scaling: same outputs (without dropout), no extra cost."""
        merged = nn.Linear(self.base.in_features, self.base.out_features, bias=self.base.bias is not None)
        merged.weight.copy_(self.base.weight + self.delta_weight())
        if self.base.bias is not None:
            merged.bias.copy_(self.base.bias)
        return merged


def lora_scaling(alpha: float, r: int, use_rslora: bool = False) -> float:
    """alpha / r (LoRA) or alpha / sqrt(r) (rank-stabilised LoRA, peft's use_rslora=True)."""
    if r <= 0:
        raise ValueError(f"The rank r must be positive, got {r}.")
    return alpha / math.sqrt(r) if use_rslora else alpha / r


def lora_param_count(d_out: int, d_in: int, r: int) -> int:
    """Parameters LoRA adds to one d_out x d_in weight: A (r x d_in) + B (d_out x r) = r (d_in + d_out)."""
    return r * (d_in + d_out)


def count_parameters(model: nn.Module) -> tuple[int, int]:
    """(trainable, total) parameters; shared (tied) tensors are counted once, as peft does."""
    params = list(model.parameters())          # .parameters() already skips duplicates
    return sum(p.numel() for p in params if p.requires_grad), sum(p.numel() for p in params)


def llama_linear_shapes(config) -> dict[str, tuple[int, int]]:
    """(in_features, out_features) of the seven linear layers of one Llama decoder block."""
    h, inter = config.hidden_size, config.intermediate_size
    head_dim = getattr(config, "head_dim", None) or h // config.num_attention_heads
    q_out, kv_out = config.num_attention_heads * head_dim, config.num_key_value_heads * head_dim
    return {"q_proj": (h, q_out), "k_proj": (h, kv_out), "v_proj": (h, kv_out), "o_proj": (q_out, h),
            "gate_proj": (h, inter), "up_proj": (h, inter), "down_proj": (inter, h)}


def llama_lora_params(config, r: int, targets=("q_proj", "v_proj")) -> int:
    """Trainable LoRA parameters on a Llama config: layers x sum over targets of r (d_in + d_out)."""
    shapes = llama_linear_shapes(config)
    unknown = sorted(set(targets) - set(shapes))
    if unknown:
        raise ValueError(f"Unknown target module(s) {unknown}; Llama's linear layers are {list(shapes)}.")
    return config.num_hidden_layers * sum(lora_param_count(shapes[t][1], shapes[t][0], r) for t in targets)


def adapter_params(config, bottleneck: int = 64) -> int:
    """Houlsby-style adapters: two per block (after attention, after MLP), each d->m->d with biases."""
    d = config.hidden_size
    return config.num_hidden_layers * 2 * (d * bottleneck + bottleneck + bottleneck * d + d)


# Bytes each parameter costs during training, by what is stored for it (activations excluded).
BYTES_PER_PARAM = {
    "full fp32 + AdamW": {"weights": 4, "gradients": 4, "optimizer": 8},                 # m and v in fp32
    "full bf16 mixed + AdamW": {"weights": 2 + 4, "gradients": 2, "optimizer": 8},       # bf16 copy + fp32 master
    # bitsandbytes' 8-bit AdamW (adamw_8bit, paged_adamw_8bit): m and v in 8 bit, plus one fp32 absmax
    # each per block of 256 values. It keeps tensors under 4,096 elements (min_8bit_size) in fp32.
    "fp32 + 8-bit AdamW": {"weights": 4, "gradients": 4, "optimizer": 2 + 2 * 4 / 256},
}


def training_memory(total: int, trainable: int, frozen_bytes: float = 2.0,
                    trainable_recipe: str = "full fp32 + AdamW") -> dict:
    """Bytes for weights, gradients and optimizer states when `trainable` of `total` params train.

    Frozen parameters cost only `frozen_bytes` each (2 for bf16, ~0.52 for NF4 + double quant);
    trainable ones cost the recipe's bytes (16 for fp32 AdamW, about 10 with 8-bit AdamW).
    Activations are not included.
    """
    if trainable_recipe not in BYTES_PER_PARAM:
        raise ValueError(f"Unknown training recipe {trainable_recipe!r}: use one of {sorted(BYTES_PER_PARAM)}.")
    recipe = BYTES_PER_PARAM[trainable_recipe]
    frozen = total - trainable
    return {"weights": frozen * frozen_bytes + trainable * recipe["weights"],
            "gradients": trainable * recipe["gradients"],
            "optimizer": trainable * recipe["optimizer"]}
