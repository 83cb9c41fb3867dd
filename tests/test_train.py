"""utils.train: precision by hardware, refusals. That the smoke run learns (with margins a broken
prompt mask or collator fails) is lesson 04's graded test `test_lora_learned`, executed by make test."""

import pytest
import torch

from utils import train


def test_sft_config_never_enables_bf16_on_cpu(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    args = train.sft_config("/tmp/x", max_steps=5, batch_size=2, lr=1e-3)
    assert (args.bf16, args.fp16, args.use_cpu) == (False, False, True)
    assert not args.activation_checkpointing and args.save_strategy == "no" and args.eval_strategy == "no"


def test_train_refuses_untokenized_data(tiny):
    import datasets

    model, tok = tiny
    with pytest.raises(ValueError, match=r"lacks \['input_ids', 'labels'\]"):
        train.train(model, tok, datasets.Dataset.from_dict({"text": ["x"]}), train.sft_config("/tmp/x", max_steps=1, batch_size=1, lr=1e-3))


def test_a_quantised_models_adapter_trains_in_fp32_unless_bf16(tiny, tmp_path):
    """trl casts a 4-bit model's LoRA weights to bf16; fp16 AMP (a T4) then crashes, fp32 silently
    trains in bf16. utils.train puts them back in fp32 (checked here on the CPU's fp32 path)."""
    import datasets
    from peft import LoraConfig, get_peft_model
    from transformers import BitsAndBytesConfig

    from utils import models, prompts

    model, tok = models.load_model_and_tokenizer(models.TINY_MODEL_ID, dtype=torch.float32, device="cpu",
                                                 quantization_config=BitsAndBytesConfig(
                                                     load_in_4bit=True, bnb_4bit_quant_type="nf4",
                                                     bnb_4bit_compute_dtype=torch.float32))
    peft_model = get_peft_model(model, LoraConfig(r=4, lora_alpha=8, task_type="CAUSAL_LM"))
    rows = [prompts.encode_chat_example(tok, prompts.sentiment_messages("cô dạy hay .", 2))] * 4
    args = train.sft_config(str(tmp_path), max_steps=2, batch_size=2, lr=1e-3, disable_tqdm=True)
    result = train.train(peft_model, tok, datasets.Dataset.from_list(rows), args)
    dtypes = {p.dtype for p in result.trainer.model.parameters() if p.requires_grad}
    assert dtypes == {torch.float32}, dtypes
    assert result.trainer.state.global_step == 2
