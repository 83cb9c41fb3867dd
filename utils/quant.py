"""Quantisation helpers shared by the quantisation lessons (02, 03) and QLoRA (07).

Includes the guard against a bitsandbytes 0.50 CPU defect: on CPUs with AVX512-BF16, the first
no-grad forward through a ``bnb.nn.Linear4bit`` repacks its weight for a bf16 GEMV kernel that
has no autograd, after which LoRA gradients are silently None or wrong.
"""

from __future__ import annotations




def disable_bnb_cpu_repack(model) -> int:
    """Stop (and undo) bitsandbytes' CPU weight repack on every Linear4bit; return how many were fixed.

    Call it right after a 4-bit load on CPU (utils.models does). Without it, evaluating or
    generating before training makes QLoRA gradients wrong with no error on AVX512-BF16 CPUs.
    """
    import bitsandbytes as bnb
    from bitsandbytes.functional import _convert_weight_packed_for_cpu_inverse

    fixed = 0
    for module in model.modules():
        if isinstance(module, bnb.nn.Linear4bit):
            module.support_avx512bf16_for_cpu = False
            weight = module.weight
            state = getattr(weight, "quant_state", None)
            if state is not None and getattr(state, "packing_format_for_cpu", False):
                weight.data, weight.quant_state = _convert_weight_packed_for_cpu_inverse(weight.data, state)
            fixed += 1
    return fixed
