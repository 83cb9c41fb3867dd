"""`make bench`: timings and memory of the course's building blocks on this machine (never in tests).

Writes bench-results/bench.json and prints a table. Numbers depend on the machine; compare runs
on the same machine only.
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from pathlib import Path


def _time(fn, repeat: int = 3) -> float:
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def bench_tiny_model() -> dict:
    """Build the tiny model from scratch in a fresh cache, then time LoRA training steps on it."""
    import torch

    from utils import lora, models, runtime

    with tempfile.TemporaryDirectory() as cache:
        old = os.environ.get("COURSE_CACHE")
        os.environ["COURSE_CACHE"] = cache
        try:
            start = time.perf_counter()
            models.tiny_model_dir()
            build = time.perf_counter() - start
            model, tok = models.load_model_and_tokenizer(models.TINY_MODEL_ID, dtype=torch.float32, device="cpu")
        finally:
            if old is None:
                os.environ.pop("COURSE_CACHE")
            else:
                os.environ["COURSE_CACHE"] = old
    model.requires_grad_(False)
    for block in model.model.layers:
        block.self_attn.q_proj = lora.LoRALinear(block.self_attn.q_proj, 8, 32)
        block.self_attn.v_proj = lora.LoRALinear(block.self_attn.v_proj, 8, 32)
    enc = tok(["thầy dạy rất nhiệt tình . => tích cực"] * 8, return_tensors="pt")
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=5e-3)

    def step():
        model(**enc, labels=enc["input_ids"]).loss.backward()
        opt.step()
        opt.zero_grad()

    with runtime.measure("lora steps", verbose=False) as m:
        per_step = _time(step, repeat=20)
    return {"tiny_model_build_s": round(build, 2), "tiny_lora_step_ms": round(1000 * per_step, 2),
            "peak_rss_mib": round(m.peak_bytes / 2**20)}


def bench_meta_counts() -> dict:
    """Build Llama-3.2-1B on the meta device and wrap it with LoRA (lesson 01's counting path)."""
    from peft import LoraConfig, get_peft_model

    from utils import models

    t = _time(lambda: get_peft_model(models.meta_model(), LoraConfig(r=8, task_type="CAUSAL_LM")))
    return {"meta_llama_peft_s": round(t, 3)}


def bench_nf4() -> dict:
    """utils.quant NF4 quantise + dequantise of a 4096 x 4096 fp32 matrix vs bitsandbytes' CPU kernels (lesson 03).

    Target: within 3x of bitsandbytes with vectorised torch (no Python loop over elements or blocks).
    """
    import torch
    import bitsandbytes.functional as F

    from utils import quant

    torch.manual_seed(0)
    w = torch.randn(4096, 4096)

    def ours():
        packed, absmax = quant.nf4_quantize(w, blocksize=64)
        return quant.nf4_dequantize(packed, absmax, w.shape)

    def theirs():
        packed, state = F.quantize_4bit(w, quant_type="nf4", blocksize=64)
        return F.dequantize_4bit(packed, state)

    identical = torch.equal(ours(), theirs())
    t_ours, t_bnb = _time(ours), _time(theirs)
    return {"nf4_4096x4096_utils_s": round(t_ours, 3), "nf4_4096x4096_bnb_s": round(t_bnb, 3),
            "nf4_ratio_utils_over_bnb": round(t_ours / t_bnb, 2), "nf4_outputs_identical": identical}


def main() -> None:
    from utils import runtime

    results = {"versions": runtime.package_versions(), "device": runtime.describe_device(runtime.get_device())}
    for fn in (bench_nf4, bench_tiny_model, bench_meta_counts):
        results.update(fn())
    out = Path("bench-results")
    out.mkdir(exist_ok=True)
    (out / "bench.json").write_text(json.dumps(results, indent=2))
    for k, v in results.items():
        if k != "versions":
            print(f"{k:<24} {v}")
    print(f"wrote {out / 'bench.json'}")


if __name__ == "__main__":
    main()
