"""utils.hardware: the detections are cheap, cached, consistent, and right on simulated machines."""

import pytest
import torch

from utils import hardware


def test_detections_are_cached_and_describe_says_which_path_ran():
    first = hardware.describe()
    assert set(first) >= {"cpu_flags", "bnb_cpu_dequant_defect", "bnb_cpu_repack", "torch_threads"}
    assert hardware.bnb_cpu_dequant_error.cache_info().currsize == 1 and hardware.bnb_cpu_repack.cache_info().currsize == 1
    assert hardware.describe() == first


def test_dequant_defect_is_a_threshold_on_the_measured_error():
    error = hardware.bnb_cpu_dequant_error()
    assert error == 0 or error > 0.1, f"an error of {error} is neither exact nor the known defect: a new behaviour"
    assert hardware.bnb_cpu_dequant_defect() == (error > 1e-3)


def test_repack_detection_matches_a_real_model_layer(tiny):
    """A Linear4bit inside a 4-bit tiny Llama behaves like the probe layer of utils.hardware."""
    import bitsandbytes as bnb
    from transformers import AutoModelForCausalLM, BitsAndBytesConfig

    from utils import models

    m = AutoModelForCausalLM.from_pretrained(models.tiny_model_dir(), dtype=torch.float32, quantization_config=BitsAndBytesConfig(
        load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_compute_dtype=torch.float32))
    m.eval()
    with torch.no_grad():
        m(input_ids=torch.tensor([[1, 2, 3]]))
    layer = next(mod for mod in m.modules() if isinstance(mod, bnb.nn.Linear4bit))
    assert bool(getattr(layer.weight.quant_state, "packing_format_for_cpu", False)) == hardware.bnb_cpu_repack()


@pytest.mark.parametrize("capability,native", [((7, 5), False), ((7, 0), False), ((8, 0), True), ((8, 9), True), ((9, 0), True)])
def test_native_bf16_reads_the_compute_capability(monkeypatch, capability, native):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda *a, **k: capability)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: True)   # what a T4 says too
    assert hardware.native_bf16("cuda") is native
    assert hardware.native_bf16() is native


def test_cpu_has_no_native_bf16_for_the_course():
    assert hardware.native_bf16("cpu") is False


def test_cpu_flags_are_read_not_assumed(monkeypatch, tmp_path):
    import builtins

    fake = tmp_path / "cpuinfo"
    fake.write_text("processor\t: 0\nflags\t\t: fpu sse avx avx2 fma\n")
    real_open = builtins.open
    monkeypatch.setattr(builtins, "open", lambda f, *a, **k: real_open(fake if f == "/proc/cpuinfo" else f, *a, **k))
    assert hardware.cpu_flags() == {"avx", "avx2"}
    monkeypatch.setattr(builtins, "open", lambda f, *a, **k: (_ for _ in ()).throw(OSError("no such file")))
    assert hardware.cpu_flags() == set()
