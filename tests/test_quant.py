import copy
import math

import pytest
import torch

from utils import quant


def test_seed_int8_example():
    q, c = quant.absmax_quantize(torch.tensor([0.3, -0.2, 1.5, -0.8]))
    assert q.dtype == torch.int8 and q.tolist() == [25, -17, 127, -68]
    assert round(c, 2) == 84.67
    assert [round(v, 3) for v in quant.absmax_dequantize(q, c).tolist()] == [0.295, -0.201, 1.5, -0.803]


def test_zero_tensor_round_trips():
    q, c = quant.absmax_quantize(torch.zeros(5))
    assert q.tolist() == [0] * 5 and torch.equal(quant.absmax_dequantize(q, c), torch.zeros(5))
    qb, cb = quant.blockwise_absmax_quantize(torch.zeros(4, 16), blocksize=16)
    assert torch.equal(quant.blockwise_absmax_dequantize(qb, cb, 16), torch.zeros(4, 16))


@pytest.mark.parametrize("bad,error,match", [
    ([0.3, 1.5], TypeError, "must be a torch.Tensor"),
    (torch.tensor([1, 2, 3]), TypeError, "floating-point"),
    (torch.tensor([]), ValueError, "empty"),
])
def test_bad_inputs(bad, error, match):
    for fn in (quant.absmax_quantize, lambda x: quant.blockwise_absmax_quantize(x, 2), lambda x: quant.nf4_quantize(x, 2)):
        with pytest.raises(error, match=match):
            fn(bad)


def test_blocksize_that_does_not_divide_says_what_to_do():
    with pytest.raises(ValueError, match="blocksize 64 does not divide the tensor's 100 elements.*pad"):
        quant.blockwise_absmax_quantize(torch.randn(10, 10), blocksize=64)
    with pytest.raises(ValueError, match="positive integer"):
        quant.nf4_quantize(torch.randn(64), blocksize=0)
    q, c = quant.blockwise_absmax_quantize(torch.randn(64), blocksize=16)
    with pytest.raises(ValueError, match="constants for"):
        quant.blockwise_absmax_dequantize(q, c[:2], 16)


def test_blockwise_keeps_shape_and_confines_an_outlier():
    torch.manual_seed(0)
    x = torch.randn(8, 8) * 0.02
    x[0, 0] = 5.0                                            # one outlier in the first block of 16
    q, c = quant.blockwise_absmax_quantize(x, blocksize=16)  # the seed's 8x8 in 4 blocks of 16
    assert q.shape == x.shape and c.shape == (4,)
    err = (quant.blockwise_absmax_dequantize(q, c, 16) - x).abs().reshape(4, 16).mean(dim=1)
    qt, ct = quant.absmax_quantize(x)
    err_tensor = (quant.absmax_dequantize(qt, ct) - x).abs().reshape(4, 16).mean(dim=1)
    assert err[1:].max() < err_tensor[1:].min() / 10         # blocks without the outlier keep their precision
    assert (qt.reshape(4, 16)[1:] == 0).float().mean() > 0.5  # per-tensor: most small values round to 0


def test_rowwise_int8_matches_bitsandbytes_codes():
    import bitsandbytes.functional as F

    torch.manual_seed(1)
    x = torch.randn(32, 128)
    codes, row_absmax, _ = F.int8_vectorwise_quant(x)
    q, c = quant.blockwise_absmax_quantize(x, blocksize=128)   # one block per row = row-wise absmax
    torch.testing.assert_close(127.0 / c, row_absmax)
    assert (q.int() - codes.int()).abs().max() <= 1            # rounding of exact halves may differ
    assert (q != codes).float().mean() < 1e-3


def test_nf4_levels_match_bitsandbytes_and_the_brief():
    import bitsandbytes.functional as F

    levels = quant.nf4_levels()
    assert levels.shape == (16,) and levels[7] == 0 and levels[0] == -1 and levels[-1] == 1
    assert (levels > 0).sum() == 8 and (levels < 0).sum() == 7
    torch.testing.assert_close(levels, F.get_4bit_type("nf4", device="cpu").float(), atol=1e-6, rtol=0)
    torch.testing.assert_close(levels, torch.tensor(quant.NF4_REFERENCE), atol=1e-6, rtol=0)
    assert torch.equal(quant.nf4_code(), F.get_4bit_type("nf4", device="cpu").float())


@pytest.mark.parametrize("shape", [(256, 128), (64, 64), (4096,), (128, 1024)])
def test_nf4_is_bit_identical_to_bitsandbytes(shape):
    import bitsandbytes.functional as F

    torch.manual_seed(sum(shape))
    x = torch.randn(shape) * 3
    packed, absmax = quant.nf4_quantize(x, blocksize=64)
    ref_packed, state = F.quantize_4bit(x, quant_type="nf4", blocksize=64)
    assert packed.dtype == torch.uint8 and packed.shape == (x.numel() // 2,)
    assert torch.equal(packed, ref_packed.reshape(-1)) and torch.equal(absmax, state.absmax)
    assert torch.equal(quant.nf4_dequantize(packed, absmax, shape), F.dequantize_4bit(ref_packed, state).reshape(shape))


def test_first_element_goes_in_the_high_nibble():
    idx = torch.tensor([1, 2, 15, 0], dtype=torch.uint8)
    assert quant.pack_4bit(idx).tolist() == [0x12, 0xF0]
    assert torch.equal(quant.unpack_4bit(quant.pack_4bit(idx)), idx)


def test_nf4_beats_uniform_int4_on_normal_weights():
    torch.manual_seed(2)
    w = torch.randn(64 * 512)
    err_nf4 = (quant.blockwise_quantize_levels(w, quant.nf4_code()) - w).abs().mean()
    err_int4 = (quant.blockwise_quantize_levels(w, quant.uniform_int4_levels()) - w).abs().mean()
    assert err_nf4 < err_int4
    torch.testing.assert_close(quant.blockwise_quantize_levels(w, quant.nf4_code()),
                               quant.nf4_dequantize(*quant.nf4_quantize(w), w.shape))


def test_bits_per_param_and_double_quant_saving():
    assert quant.bits_per_param(64) == 4.5
    dq = quant.bits_per_param(64, double_quant=True)
    assert math.isclose(dq - 4, 8 / 64 + 32 / (64 * 256)) and round(dq - 4, 3) == 0.127
    saving = quant.bits_per_param(64) - dq
    assert round(saving, 3) == 0.373 and round(saving * 65e9 / 8 / 1e9, 1) == 3.0   # ~3 GB on 65B


def test_cpu_dequant_matches_what_was_detected_and_flattening_is_always_exact():
    """bitsandbytes 0.50 CPU dequantize_4bit is wrong on some CPUs (utils.hardware) when the last
    dim is not a multiple of the blocksize. Whatever this CPU does, the course's workaround
    (flatten, then reshape) is exact; where the defect is detected, it is really there."""
    import bitsandbytes.functional as F

    from utils import hardware

    torch.manual_seed(3)
    x = torch.randn(32, 96)
    packed, state = F.quantize_4bit(x, quant_type="nf4", blocksize=64)
    ours = quant.nf4_dequantize(*quant.nf4_quantize(x.flatten()), x.shape)
    error = (F.dequantize_4bit(packed, state) - ours).abs().max().item()
    if hardware.bnb_cpu_dequant_defect():
        assert error > 0.1, f"the defect was detected but this tensor dequantises with error {error}"
    else:
        assert error == 0, f"no defect was detected, yet the 32 x 96 tensor dequantises with error {error}"
    flat_packed, flat_state = F.quantize_4bit(x.flatten(), quant_type="nf4", blocksize=64)
    assert torch.equal(F.dequantize_4bit(flat_packed, flat_state).reshape(x.shape), ours)


def _qlora_pair():
    """The tiny model in 4 bit with LoRA, and an fp32 twin whose linear weights are the dequantised 4-bit ones."""
    import bitsandbytes as bnb
    from peft import LoraConfig, get_peft_model
    from transformers import BitsAndBytesConfig

    from utils import models

    bnb_config = BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_use_double_quant=True,
                                    bnb_4bit_compute_dtype=torch.float32)
    m4, tok = models.load_model_and_tokenizer(models.TINY_MODEL_ID, dtype=torch.float32, quantization_config=bnb_config,
                                              device="cpu")
    ref, _ = models.load_model_and_tokenizer(models.TINY_MODEL_ID, dtype=torch.float32, device="cpu")
    ref_modules = dict(ref.named_modules())
    for name, module in m4.named_modules():
        if isinstance(module, bnb.nn.Linear4bit):
            w = bnb.functional.dequantize_4bit(module.weight.data, module.weight.quant_state)
            ref_modules[name].weight.data.copy_(w)
    cfg = LoraConfig(r=4, lora_alpha=8, target_modules="all-linear", task_type="CAUSAL_LM")
    p4, pref = get_peft_model(m4, cfg), get_peft_model(ref, copy.deepcopy(cfg))
    torch.manual_seed(0)
    ref_state = dict(pref.named_parameters())
    for name, param in p4.named_parameters():
        if "lora_" in name:
            with torch.no_grad():
                param.normal_(0, 0.05)
                ref_state[name].copy_(param)
    return p4, pref, tok


def test_qlora_gradients_survive_an_eval_pass_on_cpu():
    """After a no-grad forward (which repacks Linear4bit on AVX512-BF16 CPUs unless guarded),
    LoRA gradients exist and match an fp32 model holding the same dequantised weights."""
    p4, pref, tok = _qlora_pair()
    enc = tok(["thầy dạy rất nhiệt tình .", "phòng học quá nóng ."], return_tensors="pt", padding=True)
    p4.eval()
    with torch.no_grad():
        p4(**enc)                                            # the "try the base model first" cell
    import bitsandbytes as bnb

    assert not any(getattr(m.weight.quant_state, "packing_format_for_cpu", False)
                   for m in p4.modules() if isinstance(m, bnb.nn.Linear4bit))
    p4.train()
    pref.train()
    labels = enc["input_ids"].masked_fill(enc["attention_mask"] == 0, -100)
    p4(**enc, labels=labels).loss.backward()
    pref(**enc, labels=labels).loss.backward()
    ref_grads = {n: p.grad for n, p in pref.named_parameters() if p.requires_grad}
    checked = 0
    for name, param in p4.named_parameters():
        if param.requires_grad:
            assert param.grad is not None, f"{name}: no gradient (the bitsandbytes CPU repack is back)"
            torch.testing.assert_close(param.grad, ref_grads[name], rtol=1e-3, atol=1e-5)
            checked += 1
    assert checked == 2 * 7 * 2                              # A and B on 7 linears in 2 blocks


def test_guard_undoes_a_repack_that_already_happened():
    import bitsandbytes as bnb
    from transformers import AutoModelForCausalLM, BitsAndBytesConfig

    from utils import hardware, models

    m = AutoModelForCausalLM.from_pretrained(models.tiny_model_dir(), dtype=torch.float32,
                                             quantization_config=BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4",
                                                                                    bnb_4bit_compute_dtype=torch.float32))
    linears = [mod for mod in m.modules() if isinstance(mod, bnb.nn.Linear4bit)]
    before = [mod.weight.data.clone() for mod in linears]
    m.eval()
    with torch.no_grad():
        m(input_ids=torch.tensor([[1, 2, 3, 4]]))             # repacks where utils.hardware detects it
    repacked = [getattr(mod.weight.quant_state, "packing_format_for_cpu", False) for mod in linears]
    assert all(repacked) == hardware.bnb_cpu_repack() and any(repacked) == hardware.bnb_cpu_repack()
    assert quant.disable_bnb_cpu_repack(m) == len(linears) == 14
    for mod, w in zip(linears, before):
        assert not getattr(mod.weight.quant_state, "packing_format_for_cpu", False)
        assert torch.equal(mod.weight.data, w)                 # original packing restored


def test_quantized_linear_params_of_llama32_1b():
    from utils import models

    meta = models.meta_model()
    n = quant.quantized_linear_params(meta)
    assert n == 16 * (2048 * 2048 * 2 + 2048 * 512 * 2 + 3 * 2048 * 8192) == 973_078_528
    assert sum(p.numel() for p in meta.parameters()) - n == 128256 * 2048 + (2 * 16 + 1) * 2048   # embedding + norms


# The largest magnitude is negative: absmax is max |x|, not max x (issue 21). With max x every
# constant below would be wrong and the negative extreme would clip or overflow int8.
def test_per_tensor_absmax_uses_the_magnitude_of_a_negative_extreme():
    q, c = quant.absmax_quantize(torch.tensor([0.5, -2.0, 1.0, 0.25]))
    assert c == 127.0 / 2.0                                   # max |x| = 2.0, though max x = 1.0
    assert q.tolist() == [32, -127, 64, 16]                   # 31.75, -127, 63.5 (half to even), 15.875
    assert quant.absmax_dequantize(q, c)[1].item() == -2.0


def test_blockwise_absmax_uses_each_blocks_magnitude():
    x = torch.tensor([[0.5, -2.0], [-4.0, 1.0], [3.0, -1.0]])   # blocks of 2: negative, negative, positive extreme
    q, c = quant.blockwise_absmax_quantize(x, blocksize=2)
    torch.testing.assert_close(c, torch.tensor([63.5, 31.75, 127.0 / 3.0]))   # float32 constants
    assert q.tolist() == [[32, -127], [-127, 32], [127, -42]]
    restored = quant.blockwise_absmax_dequantize(q, c, 2)
    assert restored[0, 1].item() == -2.0 and restored[1, 0].item() == -4.0   # the negative extremes come back exactly


def test_nf4_absmax_uses_the_magnitude_of_a_negative_extreme():
    import bitsandbytes.functional as F

    x = torch.linspace(-0.5, 0.5, 128).reshape(2, 64)
    x[0, 10], x[1, 3] = -2.0, -3.0                            # each block's extreme is negative
    packed, absmax = quant.nf4_quantize(x, blocksize=64)
    assert absmax.tolist() == [2.0, 3.0]
    restored = quant.nf4_dequantize(packed, absmax, x.shape)
    assert restored[0, 10].item() == -2.0 and restored[1, 3].item() == -3.0   # level -1 times absmax
    ref_packed, state = F.quantize_4bit(x, quant_type="nf4", blocksize=64)
    assert torch.equal(packed, ref_packed.reshape(-1)) and torch.equal(absmax, state.absmax)
