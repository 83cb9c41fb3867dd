"""course.tools.bench_1b: the scaled-down CPU run measures every phase, and the T4 estimate is the stated arithmetic."""

import pytest

from course.tools import bench_1b
from utils import lora
from utils.config import PROFILES


@pytest.fixture(scope="module")
def tiny_bench():
    emitted = []
    settings = bench_1b.BenchSettings.for_run(tiny=True)
    return bench_1b.bench(settings, emitted.append), emitted, settings


def test_tiny_bench_measures_every_phase_with_the_lessons_settings(tiny_bench):
    result, emitted, settings = tiny_bench
    assert [r["phase"] for r in emitted] == ["matmul", "lora_train", "eval_score", "eval_generate", "qlora_train",
                                             "t4_estimate"]
    phases = result["phases"]
    config = bench_1b.model_config(tiny=True)
    assert phases["lora_train"]["trainable_params"] == lora.llama_lora_params(config, 8, ("q_proj", "v_proj"))
    assert phases["qlora_train"]["trainable_params"] == lora.llama_lora_params(config, 16, lora.LLAMA_LINEARS)
    for name in ("lora_train", "eval_score", "eval_generate", "qlora_train"):
        rec = phases[name]
        assert set(bench_1b.PHASE_KEYS) <= set(rec)
        assert rec["tokens_per_s"] > 0 and rec["step_s"] > 0 and rec["peak_rss_mib"] > 0
        assert rec["peak_allocated_mib"] is None, "no CUDA allocator on the CPU"
    assert phases["qlora_train"]["seq_len"] == settings.qlora_seq_len
    assert phases["qlora_train"]["lora_model_freed_before"], "the fp16 model must be gone before QLoRA's memory is read"
    assert result["model"].startswith("tiny") and result["versions"]["torch"]


def test_colab_settings_come_from_the_profile():
    s = bench_1b.BenchSettings.for_run(tiny=False)
    assert s.batch_size == PROFILES["colab"].batch_size and s.dtype == "float16"
    # the constants the GPU machine uses (it has no llama-models) must match the real tokenizer's count here
    assert (s.seq_len, s.qlora_seq_len) == (bench_1b.DEFAULT_PROMPT_TOKENS, bench_1b.DEFAULT_MCQ_TOKENS), \
        f"the lessons' prompts changed length ({s.seq_len_source}): update the constants in course/tools/bench_1b.py"
    assert s.seq_len_source.startswith("the real Llama-3 tokenizer")
    assert bench_1b.BenchSettings.for_run(tiny=False, seq_len=97).seq_len == 97
    full = bench_1b.model_config(tiny=False)
    assert (full.hidden_size, full.num_hidden_layers, full.vocab_size) == (2048, 16, 128256)


def test_t4_estimate_is_the_stated_arithmetic():
    """Hand-checked: a GPU measuring 130 TFLOP/s is 2x a T4's 65; colab: 500 steps, 500 eval samples in 63 batches of 8."""
    phases = {"matmul": {"tflops": 130.0},
              "lora_train": {"step_s": 1.0, "peak_reserved_mib": 4000.0},
              "eval_score": {"step_s": 0.5},
              "eval_generate": {"step_s": 2.0, "peak_reserved_mib": 3000.0},
              "qlora_train": {"step_s": 2.0, "eval_score_batch_s": 1.0, "peak_reserved_mib": 20000.0}}
    est = bench_1b.t4_estimate(phases, bench_1b.BenchSettings())          # eval batches of 8
    assert est["ratio_measured_tflops_to_t4_peak"] == 2.0
    # lesson 04: 500 x 1.0 s + 3 evals x 63 batches x 0.5 s + 63 generation batches x 2.0 s = 720.5 s, x2, in minutes
    assert est["minutes_per_lesson"]["04"] == 24.0
    # lesson 07: 500 x 2.0 s + 63 x 1.0 s = 1063 s, x2
    assert est["minutes_per_lesson"]["07"] == 35.4
    assert est["t4_peak_memory_mib"]["lora_train"] == 4000 + bench_1b.CUDA_CONTEXT_MARGIN_MIB
    assert est["fits_t4"] == {"lora_train": True, "eval_generate": True, "qlora_train": False}
    assert "datasheet" in est["assumptions"] and est["estimate"] is True
