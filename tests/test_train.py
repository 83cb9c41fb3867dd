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
