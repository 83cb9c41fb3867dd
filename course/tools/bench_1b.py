"""`make bench-1b`: what the colab profile costs on a GPU, measured on the Llama-3.2-1B architecture.

The real weights cannot be downloaded on the GPU test machine, but speed and memory depend on
the architecture and the sizes, not on the weights. So the model is built from
``utils.models.llama32_1b_config()`` with random weights and run at the colab profile's settings:

- ``lora_train``   lesson 04: fp16 base, LoRA r=8 (alpha 32, dropout 0.1) on q_proj and v_proj,
  fp32 adapters, fp16 autocast with a gradient scaler (what ``SFTConfig(fp16=True)`` does),
  torch AdamW, the profile's batch size, sequence length = the lesson's prompt length in tokens;
- ``eval_score`` / ``eval_generate``  label scoring (one forward per batch) against greedy
  generation of a few tokens, on the LoRA model;
- ``qlora_train``  lesson 07: NF4 with double quantisation (fp16 compute),
  ``prepare_model_for_kbit_training`` with gradient checkpointing, LoRA r=16, alpha 16, dropout 0
  on all seven projections with rsLoRA, bitsandbytes' paged 8-bit AdamW;
- ``matmul``       this GPU's fp16 matmul throughput, for the T4 estimate;
- ``t4_estimate``  minutes per colab-profile lesson on a Colab T4, an ESTIMATE: each measured time
  is scaled by (this GPU's measured fp16 matmul TFLOP/s) / (the T4's 65 TFLOP/s datasheet peak).
  A T4 rarely sustains its datasheet peak and memory-bound work does not scale with FLOP/s, so
  real T4 times are likely longer. Memory carries over directly, plus a CUDA-context margin.

Each phase is appended to a JSON-lines file as soon as it is measured, and the whole result is
written to OUT/bench-1b.json. ``--tiny`` runs the same code on the CPU with a scaled-down
config (``make test`` does, in seconds); its numbers are not meaningful, its keys are the same.

Example:
    $ python -m course.tools.bench_1b --out bench-results            # CUDA GPU: the 1B architecture
    $ python -m course.tools.bench_1b --tiny --out /tmp/b             # CPU: tiny config, same JSON keys
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import shutil
import tempfile
import time
import weakref
from dataclasses import dataclass
from pathlib import Path

from course.tools import llama_tokenizer
from utils import data, prompts
from utils.config import PROFILES

# torch and the model modules are imported where used: --help and the CPU-only arithmetic stay light.


T4_FP16_TFLOPS = 65.0            # NVIDIA T4 datasheet: 65 TFLOP/s mixed-precision (fp16) tensor-core peak
T4_MEMORY_MIB = 15_360           # 16 GB GDDR6 as nvidia-smi reports it on Colab (about 15 GB usable)
CUDA_CONTEXT_MARGIN_MIB = 512    # CUDA context + cuBLAS workspace, not counted by torch's allocator
# Padded length of a batch of 4 training examples (prompt + answer, Llama-3.2 chat template), measured on
# 2026-11-26 with the real Llama-3 tokenizer on the bundled samples (utils.prompts / utils.mcq):
# UIT-VSFC 86 tokens on average, 88 padded; MedMCQA 97 on average, 104 padded. Recomputed by
# lesson_seq_lens() where llama-models is installed; these are used where it is not (the GPU machine).
DEFAULT_PROMPT_TOKENS = 88
DEFAULT_MCQ_TOKENS = 104
LLAMA_LINEARS = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
PHASE_KEYS = ["tokens_per_s", "step_s", "steps", "batch_size", "seq_len", "peak_allocated_mib",
              "peak_reserved_mib", "peak_rss_mib", "trainable_params"]


@dataclass
class BenchSettings:
    """Sizes of one bench run (the defaults are the colab profile's lesson 04 / 07 settings)."""

    tiny: bool = False
    dtype: str = "float16"
    batch_size: int = 4                  # utils.config.PROFILES["colab"].batch_size
    seq_len: int = DEFAULT_PROMPT_TOKENS      # lesson 04: padded UIT-VSFC training batch
    qlora_seq_len: int = DEFAULT_MCQ_TOKENS   # lesson 07: padded MedMCQA training batch
    seq_len_source: str = "constants measured 2026-11-26 (course.tools.bench_1b)"
    eval_batch_size: int = 8
    gen_tokens: int = 6
    steps: int = 10
    warmup: int = 2
    matmul_n: int = 8192

    @classmethod
    def for_run(cls, tiny: bool, **overrides) -> "BenchSettings":
        colab = PROFILES["colab"]
        base = dict(batch_size=colab.batch_size)
        if not tiny:
            base.update(lesson_seq_lens(colab.batch_size))
        if tiny:
            base.update(tiny=True, dtype="float32", batch_size=2, seq_len=32, qlora_seq_len=48, eval_batch_size=2,
                        gen_tokens=3, steps=2, warmup=1, matmul_n=256)
        base.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**base)


def lesson_seq_lens(batch_size: int) -> dict:
    """Padded training lengths of lessons 04 and 07 with the real Llama-3 tokenizer, when llama-models is installed."""
    import statistics

    try:
        from utils import mcq

        tok = llama_tokenizer.load()
    except ModuleNotFoundError:
        return {}

    def padded(lengths):
        return round(statistics.mean(max(lengths[i:i + batch_size]) for i in range(0, len(lengths) - batch_size + 1, batch_size)))

    vsfc = data.load_vsfc("sample", split="train")
    lens = [len(prompts.encode_chat_example(tok, prompts.sentiment_messages(s, y))["input_ids"])
            for s, y in zip(vsfc["sentence"], vsfc["sentiment"])]
    mcq_lens = [len(mcq.encode_mcq(tok, row, 256)["input_ids"]) for row in data.load_medmcqa("sample", split="train")]
    return {"seq_len": padded(lens), "qlora_seq_len": padded(mcq_lens),
            "seq_len_source": "the real Llama-3 tokenizer on the bundled samples, padded batches"}


def model_config(tiny: bool):
    """Llama-3.2-1B's architecture, or a 2-layer slice of it whose every dimension is a multiple of 64."""
    from utils import models

    config = models.llama32_1b_config()
    if tiny:
        config.update(dict(hidden_size=128, intermediate_size=256, num_hidden_layers=2, num_attention_heads=4,
                           num_key_value_heads=2, head_dim=32, vocab_size=1024, bos_token_id=1, eos_token_id=2))
    return config


# --- measuring ---------------------------------------------------------------------------------------

class Meter:
    """Peak memory of one phase: torch's allocator on CUDA, process RSS on the CPU."""

    def __init__(self, device: str):
        import torch

        self.device = device
        if device == "cuda":
            torch.cuda.synchronize()
            torch.cuda.empty_cache()
            torch.cuda.reset_peak_memory_stats()

    def read(self) -> dict:
        import torch

        from utils import runtime

        rss = round(runtime._peak_rss_bytes() / 2**20, 1)
        if self.device != "cuda":
            return {"peak_allocated_mib": None, "peak_reserved_mib": None, "peak_rss_mib": rss}
        torch.cuda.synchronize()
        return {"peak_allocated_mib": round(torch.cuda.max_memory_allocated() / 2**20, 1),
                "peak_reserved_mib": round(torch.cuda.max_memory_reserved() / 2**20, 1), "peak_rss_mib": rss}


def _sync(device: str) -> None:
    import torch

    if device == "cuda":
        torch.cuda.synchronize()


def _timed(fn, n: int, warmup: int, device: str) -> float:
    """Seconds per call of `fn`, after `warmup` untimed calls."""
    for _ in range(warmup):
        fn()
    _sync(device)
    start = time.perf_counter()
    for _ in range(n):
        fn()
    _sync(device)
    return (time.perf_counter() - start) / n


def matmul_tflops(device: str, n: int, dtype) -> float:
    """Measured dense matmul throughput (TFLOP/s) of an n x n x n product in `dtype`."""
    import torch

    a = torch.randn(n, n, device=device, dtype=dtype)
    b = torch.randn(n, n, device=device, dtype=dtype)
    reps = 20 if device == "cuda" else 3
    seconds = _timed(lambda: a @ b, reps, 3, device)
    return 2 * n**3 / seconds / 1e12


def _batch(config, batch_size: int, seq_len: int, device: str, prompt_share: float = 0.9):
    """Random token ids; the first 90 % of each row is 'prompt' with label -100, as lesson 04 masks it."""
    import torch

    gen = torch.Generator().manual_seed(0)
    ids = torch.randint(3, config.vocab_size, (batch_size, seq_len), generator=gen)
    labels = ids.clone()
    labels[:, : int(seq_len * prompt_share)] = -100
    return {"input_ids": ids.to(device), "attention_mask": torch.ones_like(ids).to(device), "labels": labels.to(device)}


def _train_step_fn(model, batch, optimizer, device: str, dtype):
    """One optimizer step the way the Trainer does it: autocast + GradScaler in fp16, plain fp32 otherwise."""
    import torch

    amp = device == "cuda" and dtype != torch.float32
    scaler = torch.amp.GradScaler(device, enabled=amp and dtype == torch.float16)

    def step():
        with torch.autocast(device_type=device, dtype=dtype, enabled=amp):
            loss = model(**batch).loss
        scaler.scale(loss).backward()
        scaler.step(optimizer)
        scaler.update()
        optimizer.zero_grad(set_to_none=True)
        return loss

    return step


def _phase(name: str, settings: BenchSettings, seconds_per_step: float, batch_size: int, seq_len: int,
           meter: Meter, trainable: int | None, steps: int, **extra) -> dict:
    out = {"phase": name, "tokens_per_s": round(batch_size * seq_len / seconds_per_step, 1),
           "step_s": round(seconds_per_step, 4), "steps": steps, "batch_size": batch_size, "seq_len": seq_len,
           **meter.read(), "trainable_params": trainable, **extra}
    return out


def bench(settings: BenchSettings, emit=print) -> dict:
    """Run every phase; call `emit(record)` after each; return the whole result."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import LlamaForCausalLM

    from utils import lora, runtime

    device = "cpu" if settings.tiny else "cuda"
    if device == "cuda" and not torch.cuda.is_available():
        raise SystemExit("bench-1b needs a CUDA GPU and none is visible; add --tiny for the CPU version "
                         "(a scaled-down config, numbers not meaningful).")
    dtype = getattr(torch, settings.dtype)
    config = model_config(settings.tiny)
    result = {"settings": dataclasses.asdict(settings), "versions": runtime.package_versions(),
              "device": runtime.describe_device(device), "date": time.strftime("%Y-%m-%d"),
              "model": "tiny 2-layer slice (CPU dry run)" if settings.tiny else "Llama-3.2-1B architecture, random weights"}
    phases = {}

    def record(rec: dict) -> None:
        phases[rec["phase"]] = rec
        emit({"step": f"bench {rec['phase']}", "status": "passed", **rec})

    torch.manual_seed(0)
    # matmul throughput first: the T4 estimate needs it, and it is the cheapest number
    tflops = matmul_tflops(device, settings.matmul_n, dtype)
    record({"phase": "matmul", "dtype": settings.dtype, "n": settings.matmul_n, "tflops": round(tflops, 4)})

    workdir = Path(tempfile.mkdtemp(prefix="bench-1b-"))
    try:
        # --- lesson 04: LoRA on the fp16 base ---------------------------------------------------
        start = time.perf_counter()
        with torch.device(device):
            model = LlamaForCausalLM(config).to(dtype)
        build_s = time.perf_counter() - start
        model.save_pretrained(workdir / "base")          # for the 4-bit load of lesson 07
        meter = Meter(device)                            # from here: the fp16 weights, as a T4 holds them
        model.config.use_cache = False
        peft_model = get_peft_model(model, LoraConfig(r=8, lora_alpha=32, lora_dropout=0.1,
                                                      target_modules=["q_proj", "v_proj"], task_type="CAUSAL_LM"))
        trainable, _ = lora.count_parameters(peft_model)
        params = [p for p in peft_model.parameters() if p.requires_grad]
        optimizer = torch.optim.AdamW(params, lr=2e-4, **({"fused": True} if device == "cuda" else {}))
        batch = _batch(config, settings.batch_size, settings.seq_len, device)
        peft_model.train()
        step = _train_step_fn(peft_model, batch, optimizer, device, dtype)
        per_step = _timed(step, settings.steps, settings.warmup, device)
        record(_phase("lora_train", settings, per_step, settings.batch_size, settings.seq_len, meter, trainable,
                      settings.steps, lesson="04", model_build_s=round(build_s, 1),
                      what="fp16 base, LoRA r=8 q,v (fp32 adapters), autocast + GradScaler, AdamW"))
        del optimizer, step
        peft_model.eval()
        peft_model.config.use_cache = True
        prompt_batch = _batch(config, settings.eval_batch_size, settings.seq_len, device)
        prompt_batch.pop("labels")

        @torch.no_grad()
        def score():
            with torch.autocast(device_type=device, dtype=dtype, enabled=device == "cuda"):
                return peft_model(**prompt_batch).logits[:, -1, :].float().log_softmax(-1)

        @torch.no_grad()
        def generate():
            with torch.autocast(device_type=device, dtype=dtype, enabled=device == "cuda"):
                return peft_model.generate(**prompt_batch, max_new_tokens=settings.gen_tokens, min_new_tokens=settings.gen_tokens,
                                           do_sample=False, pad_token_id=config.eos_token_id)

        meter = Meter(device)
        per_batch = _timed(score, settings.steps, settings.warmup, device)
        record(_phase("eval_score", settings, per_batch, settings.eval_batch_size, settings.seq_len, meter, None,
                      settings.steps, prompts_per_s=round(settings.eval_batch_size / per_batch, 1),
                      what="label scoring: one forward per batch, log-probs of the next token"))
        meter = Meter(device)
        per_batch = _timed(generate, max(1, settings.steps // 2), 1, device)
        record(_phase("eval_generate", settings, per_batch, settings.eval_batch_size, settings.seq_len, meter, None,
                      max(1, settings.steps // 2), prompts_per_s=round(settings.eval_batch_size / per_batch, 1),
                      gen_tokens=settings.gen_tokens, what=f"greedy generation of {settings.gen_tokens} tokens"))
        lora_model = weakref.ref(model.get_input_embeddings().weight)   # the largest tensor (525 MB in fp16)
        del peft_model, model, prompt_batch, batch, score, generate
        _free(device)

        # --- lesson 07: QLoRA ----------------------------------------------------------------------
        qlora = _qlora(settings, config, workdir / "base", device, dtype)
        qlora["lora_model_freed_before"] = lora_model() is None   # else its memory would count here
        record(qlora)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)

    estimate = t4_estimate(phases, settings)
    record(estimate)
    result["phases"] = phases
    return result


def _free(device: str) -> None:
    import gc

    import torch

    gc.collect()
    if device == "cuda":
        torch.cuda.empty_cache()


def _qlora(settings: BenchSettings, config, folder: Path, device: str, dtype) -> dict:
    """Lesson 07's training step on the 4-bit (NF4, double-quantised) base."""
    import bitsandbytes as bnb
    import torch
    from peft import LoraConfig, get_peft_model, prepare_model_for_kbit_training
    from transformers import AutoModelForCausalLM, BitsAndBytesConfig

    from utils import lora, quant

    meter = Meter(device)
    start = time.perf_counter()
    qconfig = BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_use_double_quant=True,
                                 bnb_4bit_compute_dtype=dtype)
    model = AutoModelForCausalLM.from_pretrained(folder, quantization_config=qconfig, dtype=dtype,
                                                 device_map={"": 0 if device == "cuda" else "cpu"})
    if device == "cpu":
        quant.disable_bnb_cpu_repack(model)
    load_s = time.perf_counter() - start
    footprint = model.get_memory_footprint()
    model = prepare_model_for_kbit_training(model, use_gradient_checkpointing=True)
    model = get_peft_model(model, LoraConfig(r=16, lora_alpha=16, lora_dropout=0.0, target_modules=LLAMA_LINEARS,
                                             use_rslora=True, task_type="CAUSAL_LM"))
    model.config.use_cache = False
    trainable, _ = lora.count_parameters(model)
    optimizer = bnb.optim.PagedAdamW8bit([p for p in model.parameters() if p.requires_grad], lr=2e-4)
    batch = _batch(config, settings.batch_size, settings.qlora_seq_len, device)
    model.train()
    per_step = _timed(_train_step_fn(model, batch, optimizer, device, dtype), settings.steps, settings.warmup, device)
    rec = _phase("qlora_train", settings, per_step, settings.batch_size, settings.qlora_seq_len, meter, trainable,
                 settings.steps, lesson="07", load_4bit_s=round(load_s, 1),
                 footprint_4bit_mib=round(footprint / 2**20, 1),
                 what="NF4 + double quant, LoRA r=16 all 7 projections (rsLoRA), grad checkpointing, paged 8-bit AdamW")
    model.eval()
    prompt_batch = _batch(config, settings.eval_batch_size, settings.qlora_seq_len, device)
    prompt_batch.pop("labels")

    @torch.no_grad()
    def score():
        with torch.autocast(device_type=device, dtype=dtype, enabled=device == "cuda"):
            return model(**prompt_batch).logits[:, -1, :].float()

    rec["eval_score_batch_s"] = round(_timed(score, settings.steps, 1, device), 4)
    del model, optimizer
    _free(device)
    return rec


def t4_estimate(phases: dict, s: BenchSettings) -> dict:
    """Minutes per colab-profile lesson on a T4, scaled by measured matmul throughput (an ESTIMATE)."""
    p = PROFILES["colab"]
    ratio = phases["matmul"]["tflops"] / T4_FP16_TFLOPS        # > 1: the T4 is slower than this GPU
    eval_batches = math.ceil(p.max_eval_samples / s.eval_batch_size)
    lora_step = phases["lora_train"]["step_s"]
    score = phases["eval_score"]["step_s"]
    generate = phases["eval_generate"]["step_s"]
    evals = p.max_steps // p.eval_steps + 1                     # during training, then the final evaluation
    lesson04 = p.max_steps * lora_step + evals * eval_batches * score + eval_batches * generate
    # few-shot prompts hold k examples: about (k + 1) times the tokens (attention's quadratic part ignored)
    lesson05 = sum(eval_batches * score * (k + 1) for k in p.few_shot_ks)
    lesson06 = len(p.sweep_ranks) * (p.max_steps * lora_step + eval_batches * score)
    qlora = phases["qlora_train"]
    lesson07 = p.max_steps * qlora["step_s"] + eval_batches * qlora["eval_score_batch_s"]
    minutes = {k: round(v * ratio / 60, 1) for k, v in
               {"04": lesson04, "05": lesson05, "06": lesson06, "07": lesson07}.items()}
    memory = {name: round((phases[name]["peak_reserved_mib"] or 0) + CUDA_CONTEXT_MARGIN_MIB)
              for name in ("lora_train", "eval_generate", "qlora_train")}
    return {
        "phase": "t4_estimate", "estimate": True, "ratio_measured_tflops_to_t4_peak": round(ratio, 4),
        "t4_fp16_peak_tflops": T4_FP16_TFLOPS, "minutes_per_lesson": minutes,
        "t4_peak_memory_mib": memory, "cuda_context_margin_mib": CUDA_CONTEXT_MARGIN_MIB,
        "fits_t4": {k: v <= T4_MEMORY_MIB for k, v in memory.items()},
        "assumptions": (f"colab profile: {p.max_steps} steps, batch {p.batch_size}, {p.max_eval_samples} eval samples "
                        f"in batches of {s.eval_batch_size}, an eval every {p.eval_steps} steps plus a final one; "
                        f"few-shot k in {list(p.few_shot_ks)}; rank sweep over {list(p.sweep_ranks)}. Times scale by "
                        "measured fp16 matmul TFLOP/s over the T4's 65 TFLOP/s datasheet peak, which a T4 rarely "
                        "sustains: real T4 times are likely longer. Memory = peak reserved + the CUDA-context margin."),
        **({"note": "CPU dry run: not meaningful"} if s.tiny else {}),
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m course.tools.bench_1b", description=__doc__.split("\n")[0])
    parser.add_argument("--tiny", action="store_true", help="CPU, scaled-down config (what make test runs)")
    parser.add_argument("--out", type=Path, default=Path("bench-results"))
    parser.add_argument("--jsonl", type=Path, default=None, help="also append each phase to this JSON-lines file")
    parser.add_argument("--seq-len", type=int, default=None, help=f"lesson 04 prompt tokens (default {DEFAULT_PROMPT_TOKENS})")
    parser.add_argument("--qlora-seq-len", type=int, default=None)
    parser.add_argument("--batch-size", type=int, default=None, help="default: the colab profile's")
    parser.add_argument("--steps", type=int, default=None)
    args = parser.parse_args(argv)
    settings = BenchSettings.for_run(args.tiny, seq_len=args.seq_len, qlora_seq_len=args.qlora_seq_len,
                                     batch_size=args.batch_size, steps=args.steps)

    def emit(rec: dict) -> None:
        line = {"time": time.strftime("%Y-%m-%dT%H:%M:%S"), **rec}
        if args.jsonl:
            with open(args.jsonl, "a", encoding="utf-8") as fh:
                fh.write(json.dumps(line, default=str) + "\n")
        shown = {k: v for k, v in rec.items() if k not in ("what", "assumptions", "step", "status")}
        print(f"[bench-1b] {json.dumps(shown, default=str)}", flush=True)

    result = bench(settings, emit)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "bench-1b.json").write_text(json.dumps(result, indent=1, default=str))
    print(f"[bench-1b] wrote {args.out / 'bench-1b.json'}")


if __name__ == "__main__":
    main()
