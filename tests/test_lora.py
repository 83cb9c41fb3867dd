import copy

import pytest
import torch
from peft import LoraConfig, get_peft_model
from torch import nn

from utils import lora, models


class OneLayer(nn.Module):
    def __init__(self, d_in, d_out, bias=True):
        super().__init__()
        self.proj = nn.Linear(d_in, d_out, bias=bias)

    def forward(self, x):
        return self.proj(x)


@pytest.mark.parametrize("d_in,d_out,r,alpha,rslora", [(64, 32, 4, 8, False), (128, 64, 16, 16, True), (32, 96, 1, 3, False)])
def test_reference_layer_matches_peft(d_in, d_out, r, alpha, rslora):
    torch.manual_seed(0)
    net = OneLayer(d_in, d_out)
    mine = lora.LoRALinear(copy.deepcopy(net.proj), r=r, alpha=alpha, use_rslora=rslora)
    ref = get_peft_model(net, LoraConfig(r=r, lora_alpha=alpha, target_modules=["proj"], use_rslora=rslora))
    layer = ref.base_model.model.proj
    assert layer.scaling["default"] == pytest.approx(mine.scaling)
    nn.init.normal_(layer.lora_B["default"].weight)
    with torch.no_grad():
        mine.lora_A.copy_(layer.lora_A["default"].weight)
        mine.lora_B.copy_(layer.lora_B["default"].weight)
    x = torch.randn(2, 5, d_in)
    torch.testing.assert_close(mine(x), ref(x))


def test_reference_layer_starts_unchanged_trains_only_a_b_and_merges():
    base = nn.Linear(64, 48)
    layer = lora.LoRALinear(base, r=8, alpha=16)
    x = torch.randn(4, 64)
    torch.testing.assert_close(layer(x), base(x))
    assert {n for n, p in layer.named_parameters() if p.requires_grad} == {"lora_A", "lora_B"}
    with torch.no_grad():
        layer.lora_B.normal_()
    torch.testing.assert_close(layer.merge()(x), layer(x), atol=1e-4, rtol=1e-4)
    assert torch.linalg.matrix_rank(layer.delta_weight()) <= 8


def test_bad_inputs_are_explained():
    with pytest.raises(ValueError, match="positive integer"):
        lora.LoRALinear(nn.Linear(8, 8), r=0, alpha=1)
    with pytest.raises(TypeError, match="wraps an nn.Linear"):
        lora.LoRALinear(nn.Conv1d(8, 8, 1), r=2, alpha=1)
    with pytest.raises(ValueError, match="Unknown target module"):
        lora.llama_lora_params(models.llama32_1b_config(), 8, ("qproj",))
    with pytest.raises(ValueError):
        lora.lora_scaling(16, 0)


def test_brief_examples():
    assert lora.lora_param_count(4096, 4096, 8) == 65_536
    assert lora.lora_param_count(512, 64, 8) == 4_608
    assert round(1 - 4_608 / (512 * 64), 2) == 0.86
    assert lora.lora_scaling(32, 8) == 4.0 and lora.lora_scaling(16, 16, use_rslora=True) == 4.0


@pytest.mark.parametrize("r,targets,trainable,total", [
    (8, None, 851_968, 1_236_666_368),
    (8, "all-linear", 5_636_096, 1_241_450_496),
    (16, "all-linear", 11_272_192, 1_247_086_592),
])
def test_counts_on_llama32_1b_match_peft_and_formula(r, targets, trainable, total):
    pm = get_peft_model(models.meta_model(), LoraConfig(r=r, lora_alpha=32, target_modules=targets, task_type="CAUSAL_LM"))
    assert lora.count_parameters(pm) == (trainable, total)
    names = ("q_proj", "v_proj") if targets is None else lora.LLAMA_LINEARS
    assert lora.llama_lora_params(models.llama32_1b_config(), r, names) == trainable
    assert round(100 * trainable / total, 4) == {851_968: 0.0689, 5_636_096: 0.454, 11_272_192: 0.9039}[trainable]


def test_training_memory_of_full_fine_tuning_is_16_bytes_per_parameter():
    mem = lora.training_memory(1_000, trainable=1_000)
    assert sum(mem.values()) == 16_000
    lora_mem = lora.training_memory(1_000, trainable=10, frozen_bytes=2)
    assert lora_mem == {"weights": 990 * 2 + 10 * 4, "gradients": 40, "optimizer": 80}


def test_adapter_count_formula():
    assert lora.adapter_params(models.llama32_1b_config(), 64) == 16 * 2 * (2048 * 64 * 2 + 64 + 2048)
