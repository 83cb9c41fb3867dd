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


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16], ids=["fp16", "bf16"])
def test_lesson07_qlora_on_gpu(dtype, tmp_path):
    """Lesson 07's path on CUDA: 4-bit NF4 + double quant in fp16 (a T4) or bf16 (native GPUs), letter
    scoring before training, rsLoRA on all seven projections with gradients through Linear4bit,
    trl with paged 8-bit AdamW, and an adapter that reloads onto a fresh 4-bit base with the same answers."""
    import bitsandbytes as bnb
    from peft import PeftModel, get_peft_model, prepare_model_for_kbit_training

    from utils import data, hardware, mcq, qlora, train

    if dtype == torch.bfloat16 and not hardware.native_bf16("cuda"):
        pytest.skip(f"{torch.cuda.get_device_name(0)} has no native bf16 (the course uses fp16 there)")
    model, tok = models.load_model_and_tokenizer(models.TINY_MODEL_ID, dtype=dtype,
                                                 quantization_config=qlora.bnb_config(dtype))
    assert isinstance(model.model.layers[0].self_attn.q_proj, bnb.nn.Linear4bit) and model.device.type == "cuda"
    train_ds, _ = mcq.encode_mcq_split(tok, data.load_medmcqa("sample", "train"), 320)
    eval_ds, _ = mcq.encode_mcq_split(tok, data.load_medmcqa("sample", "validation"), 320)
    before = mcq.score_letters(model, tok, mcq.prompts_of(eval_ds))            # an eval pass first, as the lesson
    assert torch.isfinite(before).all()
    model = prepare_model_for_kbit_training(model, use_gradient_checkpointing=True,
                                            gradient_checkpointing_kwargs={"use_reentrant": False})
    peft_model = get_peft_model(model, qlora.lora_config())
    batch = {k: v.cuda() for k, v in prompts_batch(train_ds, tok).items()}
    with torch.autocast("cuda", dtype=dtype):
        peft_model(**batch).loss.backward()
    lora_params = [(n, p) for n, p in peft_model.named_parameters() if p.requires_grad]
    assert len(lora_params) == 2 * 7 * model.config.num_hidden_layers
    for name, p in lora_params:
        assert p.grad is not None and torch.isfinite(p.grad).all(), f"{name}: no gradient through Linear4bit"
    assert all(p.grad.abs().sum() > 0 for n, p in lora_params if "lora_B" in n)   # (A's are 0 while B = 0)
    peft_model.zero_grad(set_to_none=True)
    args = train.sft_config(str(tmp_path / "run"), max_steps=20, batch_size=8, lr=1e-2, max_length=320,
                            gradient_checkpointing=True, optim="paged_adamw_8bit",
                            activation_checkpointing_kwargs={"use_reentrant": False},
                            bf16=dtype == torch.bfloat16, fp16=dtype == torch.float16)
    result = train.train(peft_model, tok, train_ds.select_columns(["input_ids", "labels"]), args)
    losses = [loss for _, loss in result.train_loss]
    assert losses[-1] < 0.7 * losses[0], losses
    assert result.memory_kind == "GPU" and result.peak_bytes > qlora.weight_bytes(peft_model)
    for p in peft_model.parameters():
        if p.requires_grad:
            p.data = p.data.float()                         # trl keeps a quantised model's adapter in bf16
    after = mcq.score_letters(peft_model, tok, mcq.prompts_of(eval_ds))
    peft_model.save_pretrained(tmp_path / "adapter")
    fresh, _ = models.load_model_and_tokenizer(models.TINY_MODEL_ID, dtype=dtype, quantization_config=qlora.bnb_config(dtype))
    fresh = prepare_model_for_kbit_training(fresh, use_gradient_checkpointing=False)
    reloaded = mcq.score_letters(PeftModel.from_pretrained(fresh, tmp_path / "adapter"), tok, mcq.prompts_of(eval_ds))
    assert reloaded.argmax(-1).tolist() == after.argmax(-1).tolist()
    # two code paths (trained model; fresh base + loaded adapter) round differently: ~1e-2 in bf16 (8 mantissa
    # bits), ~1e-3 in fp16 (10 bits; measured 0.0011 on an H200)
    torch.testing.assert_close(reloaded, after, atol=2e-2 if dtype == torch.bfloat16 else 5e-3, rtol=0)


def prompts_batch(ds, tok, n=4):
    """A right-padded training batch of the first n encoded questions (labels -100 on the prompts)."""
    from utils import prompts

    return prompts.collate([{"input_ids": ds[i]["input_ids"], "labels": ds[i]["labels"]} for i in range(n)],
                           tok.pad_token_id)
