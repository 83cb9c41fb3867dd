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

from utils import config, data, prompts, train

# The measured modules (torch) are imported inside each benchmark, so that one benchmark's imports are not another's timing.


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


def bench_scoring_vs_generation(model_id: str | None = None, max_steps: int = 60, n_eval: int | None = None) -> dict:
    """Lesson 04's two evaluations on the same model and test sentences: examples/s, ratio, agreement.

    Trains the profile's LoRA adapter first (so generation says something parseable), then times
    label scoring (one forward pass per batch) against greedy generation (8 new tokens) and parses
    the replies. Runs unchanged with the real model on a GPU (model_id, profile "colab").
    Target: scoring at least 5x generation's examples/s, the same predictions where generation parses.
    """
    import torch
    from peft import LoraConfig, get_peft_model

    from utils import evaluation, models

    profile = config.get_profile()
    model, tok = models.load_model_and_tokenizer(model_id or profile.model_id, fallback_model_id=profile.fallback_model_id)
    splits = data.load_vsfc(profile.vsfc_source)
    train_ds, _ = prompts.encode_sentiment(tok, data.take(splits["train"], profile.max_train_samples), profile.max_length)
    test_ds, _ = prompts.encode_sentiment(tok, data.take(splits["test"], n_eval or profile.max_eval_samples), profile.max_length)
    peft_model = get_peft_model(model, LoraConfig(r=8, lora_alpha=32, lora_dropout=0.1, task_type="CAUSAL_LM"))
    with tempfile.TemporaryDirectory() as out:
        args = train.sft_config(out, max_steps=max_steps, batch_size=profile.batch_size, lr=profile.lr,
                                max_length=profile.max_length, disable_tqdm=True)
        train.train(peft_model, tok, train_ds.select_columns(["input_ids", "labels"]), args)
    test_prompts = [r["input_ids"][:r["prompt_len"]] for r in test_ds]
    candidates = evaluation.sentiment_candidates(tok)
    sync = torch.cuda.synchronize if torch.cuda.is_available() else (lambda: None)
    evaluation.score_candidates(peft_model, test_prompts[:4], candidates, tok.pad_token_id)   # warm-up
    sync()
    start = time.perf_counter()
    scored = evaluation.score_candidates(peft_model, test_prompts, candidates, tok.pad_token_id, batch_size=16)
    sync()
    t_score = time.perf_counter() - start
    start = time.perf_counter()
    replies = evaluation.generate(peft_model, tok, test_prompts, max_new_tokens=8, batch_size=16)
    sync()
    t_gen = time.perf_counter() - start
    pred_score = scored.argmax(-1).tolist()
    pred_gen = [evaluation.parse_label(r, data.SENTIMENT_LABELS) for r in replies]
    parsed = [i for i, p in enumerate(pred_gen) if p is not None]
    n = len(test_prompts)
    return {"eval_examples": n, "scoring_examples_per_s": round(n / t_score, 1),
            "generation_examples_per_s": round(n / t_gen, 1), "scoring_speedup": round(t_gen / t_score, 1),
            "generation_unparseable": n - len(parsed),
            "agreement_where_parsed": round(sum(pred_gen[i] == pred_score[i] for i in parsed) / max(1, len(parsed)), 3),
            "accuracy_scoring": round(sum(p == y for p, y in zip(pred_score, test_ds["sentiment"])) / n, 3)}


def bench_lessons(names: list[str] | None = None) -> dict:
    """Wall time of every solution notebook executed end to end in the smoke profile (a fresh copy each).

    The issue budgets: lesson 04 <= 90 s, 05 + 06 <= 3 min, 07 <= 2 min on 2 cores. Lesson 06's
    time is its whole rank sweep (nothing resumed: the copy starts without outputs/).
    """
    import shutil

    import nbformat
    from nbclient import NotebookClient

    root = Path(__file__).resolve().parents[2]
    out = {}
    for path in sorted(root.glob("solutions/*/*.ipynb")):
        if names and path.parent.name not in names:
            continue
        with tempfile.TemporaryDirectory() as work:
            shutil.copy(path, work)
            nb = nbformat.read(Path(work) / path.name, as_version=4)
            start = time.perf_counter()
            NotebookClient(nb, timeout=900, kernel_name="python3", resources={"metadata": {"path": work}}).execute()
            out[f"lesson_{path.parent.name}_smoke_s"] = round(time.perf_counter() - start, 1)
    return out


def bench_laptop(steps: int = 8, n_score: int = 60) -> dict:
    """The laptop profile on the real SmolLM2-135M-Instruct (issue 20): seconds per LoRA training step at the
    profile's batch and label-scoring prompts per second, on the bundled sample (offline) or the hub's data.

    The first step (allocations) is timed apart; the rest gives seconds per step.
    """
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import TrainerCallback

    from utils import evaluation, models

    profile = config.get_profile("laptop")
    model, tok = models.load_model_and_tokenizer(profile.model_id)
    splits = data.load_vsfc(profile.vsfc_source)
    train_ds, _ = prompts.encode_sentiment(tok, data.take(splits["train"], profile.max_train_samples), profile.max_length)
    test_ds, _ = prompts.encode_sentiment(tok, data.take(splits["test"], n_score), profile.max_length)
    peft_model = get_peft_model(model, LoraConfig(r=profile.lora_r, lora_alpha=profile.lora_alpha, lora_dropout=0.1,
                                                  target_modules=["q_proj", "v_proj"], task_type="CAUSAL_LM"))
    ends = []

    class StepTimes(TrainerCallback):
        def on_step_end(self, args, state, control, **kwargs):
            ends.append(time.perf_counter())

    with tempfile.TemporaryDirectory() as out:
        args = train.sft_config(out, max_steps=steps, batch_size=profile.batch_size, lr=profile.lr,
                                max_length=profile.max_length, disable_tqdm=True)
        train.train(peft_model, tok, train_ds.select_columns(["input_ids", "labels"]), args, callbacks=[StepTimes()])
    test_prompts = [r["input_ids"][:r["prompt_len"]] for r in test_ds]
    start = time.perf_counter()
    evaluation.score_candidates(peft_model, test_prompts, evaluation.sentiment_candidates(tok), tok.pad_token_id,
                                batch_size=16)
    t_score = time.perf_counter() - start
    return {"laptop_model": profile.model_id, "laptop_data": profile.vsfc_source, "laptop_batch": profile.batch_size,
            "laptop_torch_threads": torch.get_num_threads(),
            "laptop_s_per_step": round((ends[-1] - ends[0]) / max(1, len(ends) - 1), 2),
            "laptop_scoring_prompts_per_s": round(len(test_prompts) / t_score, 1)}


def main() -> None:
    from utils import runtime

    results = {"versions": runtime.package_versions(), "device": runtime.describe_device(runtime.get_device())}
    for fn in (bench_nf4, bench_tiny_model, bench_meta_counts, bench_scoring_vs_generation, bench_laptop, bench_lessons):
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
