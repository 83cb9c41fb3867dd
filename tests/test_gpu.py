"""GPU-only checks (`make test-gpu`): the CUDA paths that the CPU suite cannot reach.

Deselected by `make test` (-m "not gpu"). On a machine without CUDA they fail with a clear
message instead of skipping, so a green `make test-gpu` always means they ran.
"""

import pytest
import torch

from utils import lora, models, quant, runtime

pytestmark = pytest.mark.gpu


@pytest.fixture(autouse=True)
def _cuda():
    if not torch.cuda.is_available():
        pytest.fail("make test-gpu needs a CUDA GPU and none is visible; on a CPU machine run make test.")


def test_dtype_follows_the_hardware():
    dtype = runtime.compute_dtype("cuda")
    native = torch.cuda.get_device_capability(0) >= (8, 0)
    assert dtype == (torch.bfloat16 if native else torch.float16), torch.cuda.get_device_name(0)
    args = runtime.precision_args("cuda")
    assert args["bf16"] != args["fp16"] and not args["use_cpu"]
    x = torch.randn(64, 64, device="cuda", dtype=dtype)
    assert torch.isfinite(x @ x).all()


def test_cuda_nf4_matches_the_reference_and_has_no_cpu_defect():
    import bitsandbytes.functional as F

    torch.manual_seed(0)
    w = torch.randn(1024, 1024)
    packed, state = F.quantize_4bit(w.cuda(), quant_type="nf4", blocksize=64)
    ours, absmax = quant.nf4_quantize(w)
    torch.testing.assert_close(state.absmax.cpu(), absmax)
    same = (quant.unpack_4bit(packed.flatten().cpu()) == quant.unpack_4bit(ours)).float().mean().item()
    assert same > 0.9999, f"only {same:.5%} of CUDA codes match the reference"
    odd = torch.randn(32, 96)                                   # wrong on CPU (bitsandbytes 0.50), right on CUDA
    p_odd, s_odd = F.quantize_4bit(odd.cuda(), quant_type="nf4", blocksize=64)
    expected = quant.nf4_dequantize(*quant.nf4_quantize(odd.flatten()), odd.shape)
    assert (F.dequantize_4bit(p_odd, s_odd).float().cpu() - expected).abs().max() < 1e-2


def test_int8_double_quant_runs_on_cuda():
    import bitsandbytes.functional as F

    out = F.int8_double_quant(torch.randn(64, 128, device="cuda", dtype=torch.float16))
    assert out[0].dtype == torch.int8


def test_tiny_qlora_trains_on_gpu():
    from peft import LoraConfig, get_peft_model, prepare_model_for_kbit_training
    from transformers import BitsAndBytesConfig

    dtype = runtime.compute_dtype("cuda")
    cfg = BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_use_double_quant=True,
                             bnb_4bit_compute_dtype=dtype)
    model, tok = models.load_model_and_tokenizer(models.TINY_MODEL_ID, dtype=dtype, quantization_config=cfg)
    assert model.is_loaded_in_4bit and next(model.parameters()).device.type == "cuda"
    model = prepare_model_for_kbit_training(model, use_gradient_checkpointing=True)
    model = get_peft_model(model, LoraConfig(r=8, lora_alpha=16, target_modules="all-linear", task_type="CAUSAL_LM"))
    enc = tok(["thầy dạy rất nhiệt tình . => tích cực"] * 8, return_tensors="pt").to("cuda")
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=5e-3)
    losses = []
    for _ in range(20):
        loss = model(**enc, labels=enc["input_ids"]).loss
        loss.backward()
        assert all(p.grad is not None for p in model.parameters() if p.requires_grad)
        opt.step()
        opt.zero_grad()
        losses.append(loss.item())
    assert losses[-1] < 0.7 * losses[0], losses
    assert lora.count_parameters(model)[0] == lora.llama_lora_params(model.config, 8, lora.LLAMA_LINEARS)
