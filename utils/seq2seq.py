"""LoRA on an encoder-decoder model (T5) for German -> English translation: lesson 08's pipeline.

- **Settings** per profile (``settings``): the smoke profile uses the course's tiny T5 (built
  here, cached by its recipe hash like the tiny Llama) and the bundled sample; colab uses
  ``google/flan-t5-small`` and the hub's WMT16 de-en (the full profile ``flan-t5-base``; no GPU
  run of either is recorded yet).
- **Data**: pairs come from ``utils.data.load_wmt16``; the T5 task prefix, encoder inputs and
  decoder labels (``encode_pairs``); labels are padded with -100 and ``decoder_input_ids`` are
  the labels shifted right (``prepare_labels``, the reference of the lesson's first exercise;
  ``DataCollatorForSeq2Seq`` does the same).
- **Models**: ``load_seq2seq`` resolves the tiny T5 and loads through
  ``utils.models.load_seq2seq_model``; FLAN-T5's architectures for counting are in ``utils.models``;
  ``t5_lora_params`` (the third exercise's reference) counts LoRA on them.
- **Precision**: T5 in fp16 is a known overflow trap (its feed-forward activations exceed
  fp16's 65,504); ``fp16_overflow_probe`` measures the largest activation on a real batch and
  ``choose_precision`` picks bf16 where native, fp32 where fp16 would overflow, and says why.
- **Training** with ``Seq2SeqTrainer`` (``train``), **generation** greedy or beam search
  (``translate``), scored by ``utils.evaluation.translation_scores`` (corpus BLEU with sacreBLEU's
  signature and a bootstrap interval, chrF, ROUGE-L).
- **LoRA against full fine-tuning**: ``run`` trains either on the same data and steps and returns
  trainable parameters, peak memory, time per step, size on disk and the scores.
- ``smoke_learning_run(seed)``: the notebook's smoke pipeline end to end, for `make robustness`.

Example:
    >>> from utils import seq2seq
    >>> seq2seq.prepare_labels([[5, 6, 1], [7, 1]], pad_token_id=0, decoder_start_token_id=0)[0].tolist()
    [[5, 6, 1], [7, 1, -100]]
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import random
import tempfile
from dataclasses import dataclass
from pathlib import Path

import torch

from utils import data, evaluation, hardware, lora, models, runtime
from utils.config import build_once, cache_root, get_profile
from utils.prompts import IGNORE_INDEX
from utils.train import TrainResult

TASK_PREFIX = "translate German to English: "     # T5's own prefix for this task (Raffel et al., 2020)
FP16_MAX = 65504.0                                # largest finite float16
T5_SENTINELS = 10                                 # <extra_id_0> ... <extra_id_9> for span corruption

# --- settings per profile ----------------------------------------------------------------------


@dataclass(frozen=True)
class Seq2SeqSettings:
    """Sizes and sources of lesson 08 for one profile (chosen by the course profile's name)."""

    model_id: str
    data_source: str                  # "sample", a hub id, or a local file / folder
    max_train_samples: int | None
    max_eval_samples: int | None
    max_steps: int
    batch_size: int
    lr: float                         # LoRA
    full_lr: float                    # full fine-tuning (all weights move: a smaller step)
    lora_r: int = 8
    lora_alpha: int = 32
    lora_dropout: float = 0.05
    max_source_length: int = 128
    max_target_length: int = 128
    num_beams: int = 4
    max_new_tokens: int = 64
    bootstrap_samples: int = 1000
    eval_batch_size: int = 32


SETTINGS = {
    "smoke": Seq2SeqSettings(model_id="course/tiny-t5", data_source="sample", max_train_samples=None,
                             max_eval_samples=None, max_steps=200, batch_size=16, lr=3e-3, full_lr=2e-3,
                             max_source_length=48, max_target_length=48, max_new_tokens=32, bootstrap_samples=500),
    "colab": Seq2SeqSettings(model_id="google/flan-t5-small", data_source="wmt/wmt16", max_train_samples=4000,
                             max_eval_samples=500, max_steps=500, batch_size=16, lr=1e-3, full_lr=3e-4),
    # laptop (no GPU, hub reachable): FLAN-T5-small, 77M parameters, on a WMT16 subset. Sizes by our estimate for a
    # 4-core laptop, NOT measured (no hub here); offline, settings() gives the smoke settings (tiny T5, bundled sample)
    "laptop": Seq2SeqSettings(model_id="google/flan-t5-small", data_source="wmt/wmt16", max_train_samples=2000,
                              max_eval_samples=200, max_steps=300, batch_size=16, lr=1e-3, full_lr=3e-4),
    "full": Seq2SeqSettings(model_id="google/flan-t5-base", data_source="wmt/wmt16", max_train_samples=20000,
                            max_eval_samples=None, max_steps=3750, batch_size=16, lr=1e-3, full_lr=1e-4),
}


def settings(profile, **overrides) -> Seq2SeqSettings:
    """Lesson 08's settings for a course profile (utils.config), with the notebook's overrides (None: keep).

    The laptop profile offline (``meaningful`` False: no hub, so no FLAN-T5 and no WMT16) takes smoke's settings.
    """
    if profile.name not in SETTINGS:
        raise ValueError(f"Lesson 08 has no settings for profile {profile.name!r}: use one of {sorted(SETTINGS)}.")
    name = "smoke" if profile.name == "laptop" and not profile.meaningful else profile.name
    known = {f.name for f in dataclasses.fields(Seq2SeqSettings)}
    unknown = sorted(set(overrides) - known)
    if unknown:
        raise ValueError(f"Unknown lesson 08 setting(s) {unknown}: valid names are {sorted(known)}.")
    return dataclasses.replace(SETTINGS[name], **{k: v for k, v in overrides.items() if v is not None})


# --- data ------------------------------------------------------------------------------------------

def encode_pairs(tokenizer, pairs: list[dict], max_source_length: int = 128, max_target_length: int = 128,
                 prefix: str = TASK_PREFIX) -> dict:
    """Encoder inputs (prefix + German) and decoder labels (English), unpadded lists, truncated to the limits.

    Returns {"input_ids", "labels", "truncated"}: padding is the collator's job (labels padded with -100).
    """
    sources = tokenizer([prefix + p["de"] for p in pairs], max_length=max_source_length, truncation=True)
    targets = tokenizer(text_target=[p["en"] for p in pairs], max_length=max_target_length, truncation=True)
    full = tokenizer(text_target=[p["en"] for p in pairs])["input_ids"]
    truncated = sum(len(a) < len(b) for a, b in zip(targets["input_ids"], full))
    return {"input_ids": sources["input_ids"], "labels": targets["input_ids"], "truncated": truncated}


def prepare_labels(label_ids: list[list[int]], pad_token_id: int, decoder_start_token_id: int):
    """Right-pad a batch of target ids: (labels with -100 on padding, decoder_input_ids shifted right).

    The decoder reads ``decoder_input_ids`` = [start] + labels[:-1] (teacher forcing) and the loss
    compares its output at position i with ``labels[i]``; -100 positions are skipped by the loss.
    Padding with the pad id instead (as a seed tutorial does) makes the model learn to write padding.

    Example:
        >>> labels, dec = prepare_labels([[5, 6, 1], [7, 1]], pad_token_id=0, decoder_start_token_id=0)
        >>> labels.tolist(), dec.tolist()
        ([[5, 6, 1], [7, 1, -100]], [[0, 5, 6], [0, 7, 1]])
    """
    if not label_ids or any(len(seq) == 0 for seq in label_ids):
        raise ValueError("Every target needs at least one token (its end-of-sequence): encode the English side first.")
    width = max(len(seq) for seq in label_ids)
    labels = torch.full((len(label_ids), width), IGNORE_INDEX, dtype=torch.long)
    for i, seq in enumerate(label_ids):
        labels[i, :len(seq)] = torch.tensor(seq, dtype=torch.long)
    decoder_input_ids = torch.full_like(labels, pad_token_id)
    decoder_input_ids[:, 0] = decoder_start_token_id
    decoder_input_ids[:, 1:] = labels[:, :-1]
    decoder_input_ids[decoder_input_ids == IGNORE_INDEX] = pad_token_id
    return labels, decoder_input_ids


def collate(tokenizer, examples: list[dict], decoder_start_token_id: int) -> dict:
    """A training batch: encoder ids right-padded with their attention mask, labels and decoder inputs."""
    width = max(len(e["input_ids"]) for e in examples)
    input_ids = torch.full((len(examples), width), tokenizer.pad_token_id, dtype=torch.long)
    for i, e in enumerate(examples):
        input_ids[i, :len(e["input_ids"])] = torch.tensor(e["input_ids"])
    attention_mask = torch.zeros_like(input_ids)
    for i, e in enumerate(examples):
        attention_mask[i, :len(e["input_ids"])] = 1
    labels, decoder_input_ids = prepare_labels([e["labels"] for e in examples], tokenizer.pad_token_id,
                                               decoder_start_token_id)
    return {"input_ids": input_ids, "attention_mask": attention_mask, "labels": labels,
            "decoder_input_ids": decoder_input_ids}


def to_dataset(encoded: dict):
    """A datasets.Dataset of encoder ids and labels (what Seq2SeqTrainer and the collators read)."""
    import datasets

    return datasets.Dataset.from_dict({"input_ids": encoded["input_ids"], "labels": encoded["labels"]})


# --- the tiny T5 (smoke profile) and FLAN-T5's architectures -----------------------------------------

TINY_T5_ID = "course/tiny-t5"
SPECIAL_TOKENS = ["<pad>", "</s>", "<unk>"]              # ids 0, 1, 2 as in T5
# Everything that decides the tiny T5's weights. Change it and the cache key changes.
TINY_T5_RECIPE = {
    "version": 1,
    "vocab_size": 640,
    "d_model": 128, "d_ff": 256, "d_kv": 32, "num_heads": 4, "num_layers": 2, "num_decoder_layers": 2,
    "feed_forward_proj": "gated-gelu",                  # FLAN-T5's (T5 v1.1) feed-forward
    "pretrain_steps": 500, "pretrain_batch": 32, "pretrain_lr": 3e-3, "seed": 0,
    # pre-training mixes T5's span corruption on each language's sentences with translation of a
    # small share of pairs, so the untouched model "translates a little", as FLAN-T5 does
    "translation_share": 0.25, "translation_pairs": 150, "noise_density": 0.15, "mean_span": 3,
}


def _pretraining_pairs() -> list[dict]:
    """The tiny T5 learns from the bundled sample's *training* split only (validation and test stay unseen)."""
    return data.load_wmt16("sample", "train")


def tiny_t5_dir() -> Path:
    """Path of the cached tiny T5, built first (about 20 s on 2 CPU cores) if this recipe has not been built yet."""
    import transformers

    pairs = _pretraining_pairs()
    key = json.dumps({"recipe": TINY_T5_RECIPE, "pairs": pairs, "prefix": TASK_PREFIX,
                      "transformers": transformers.__version__}, sort_keys=True, ensure_ascii=False)
    target = cache_root() / f"tiny-t5-{hashlib.sha256(key.encode()).hexdigest()[:12]}"
    return build_once(target, lambda folder: build_tiny_t5(folder, pairs))


def build_tiny_t5_tokenizer(lines: list[str]):
    """A SentencePiece-style tokenizer ("▁" marks a word start, as T5's) with T5's pad / eos / unk ids and sentinels.

    BPE rather than T5's Unigram: on this small corpus tokenizers' Unigram trainer stops far below
    the asked vocabulary and splits most words into letters; BPE keeps the words whole.
    """
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    sentinels = [f"<extra_id_{i}>" for i in range(T5_SENTINELS)]
    tok = Tokenizer(models.BPE(unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Metaspace()
    tok.decoder = decoders.Metaspace()
    trainer = trainers.BpeTrainer(vocab_size=TINY_T5_RECIPE["vocab_size"], special_tokens=SPECIAL_TOKENS + sentinels,
                                  min_frequency=1, show_progress=False)
    tok.train_from_iterator(lines, trainer)
    tok.post_processor = processors.TemplateProcessing(single="$A </s>", pair="$A </s> $B </s>",
                                                       special_tokens=[("</s>", tok.token_to_id("</s>"))])
    return PreTrainedTokenizerFast(tokenizer_object=tok, pad_token="<pad>", eos_token="</s>", unk_token="<unk>",
                                   additional_special_tokens=sentinels, model_max_length=512)


def span_corrupt(ids: list[int], sentinel_ids: list[int], eos_id: int, rng: random.Random,
                 density: float, mean_span: float) -> tuple[list[int], list[int]]:
    """T5's pre-training objective on one sequence (no eos): spans replaced by sentinels; target = the spans."""
    n = len(ids)
    n_noise = max(1, round(n * density))
    masked = [False] * n
    while sum(masked) < n_noise:
        length = max(1, min(n_noise - sum(masked), round(rng.expovariate(1 / mean_span)) or 1))
        start = rng.randrange(0, max(1, n - length + 1))
        for i in range(start, min(n, start + length)):
            masked[i] = True
    source, target, k, i = [], [], 0, 0
    while i < n:
        if masked[i] and k < len(sentinel_ids):
            source.append(sentinel_ids[k])
            target.append(sentinel_ids[k])
            while i < n and masked[i]:
                target.append(ids[i])
                i += 1
            k += 1
        else:
            source.append(ids[i])
            i += 1
    return source + [eos_id], target + [eos_id]


def build_tiny_t5(folder: Path, pairs: list[dict]) -> None:
    """Build, briefly pre-train (span corruption + a little translation) and save the tiny T5."""
    from transformers import T5Config, T5ForConditionalGeneration

    r = TINY_T5_RECIPE
    torch.manual_seed(r["seed"])
    rng = random.Random(r["seed"])
    lines = [p["de"] for p in pairs] + [p["en"] for p in pairs]
    tokenizer = build_tiny_t5_tokenizer([TASK_PREFIX + p["de"] for p in pairs] + [p["en"] for p in pairs])
    vocab = -(-len(tokenizer) // 64) * 64          # round up to a multiple of 64
    config = T5Config(vocab_size=vocab, d_model=r["d_model"], d_ff=r["d_ff"], d_kv=r["d_kv"], num_heads=r["num_heads"],
                      num_layers=r["num_layers"], num_decoder_layers=r["num_decoder_layers"],
                      feed_forward_proj=r["feed_forward_proj"], tie_word_embeddings=False, dropout_rate=0.0,
                      pad_token_id=tokenizer.pad_token_id, eos_token_id=tokenizer.eos_token_id,
                      decoder_start_token_id=tokenizer.pad_token_id)
    model = T5ForConditionalGeneration(config)
    sentinel_ids = tokenizer.convert_tokens_to_ids([f"<extra_id_{i}>" for i in range(T5_SENTINELS)])
    mono = [tokenizer(s, add_special_tokens=False)["input_ids"] for s in lines]
    translation = encode_pairs(tokenizer, pairs[:r["translation_pairs"]])
    translation = list(zip(translation["input_ids"], translation["labels"]))
    opt = torch.optim.AdamW(model.parameters(), lr=r["pretrain_lr"])
    model.train()
    for _ in range(r["pretrain_steps"]):
        batch = []
        for _ in range(r["pretrain_batch"]):
            if rng.random() < r["translation_share"]:
                src, tgt = rng.choice(translation)
            else:
                src, tgt = span_corrupt(rng.choice(mono), sentinel_ids, tokenizer.eos_token_id, rng,
                                        r["noise_density"], r["mean_span"])
            batch.append({"input_ids": src, "labels": tgt})
        inputs = collate(tokenizer, batch, config.decoder_start_token_id)
        loss = model(**inputs).loss
        loss.backward()
        opt.step()
        opt.zero_grad()
    model.eval()
    model.generation_config.decoder_start_token_id = config.decoder_start_token_id
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    (folder / "recipe.json").write_text(json.dumps({**r, "final_pretrain_loss": round(loss.item(), 4)}))


def load_seq2seq(model_id: str, *, dtype: torch.dtype | None = None, device: str | None = None):
    """(model, tokenizer) for FLAN-T5 from the hub or a local folder, or the tiny T5 (built here, never downloaded)."""
    path = str(tiny_t5_dir()) if model_id == TINY_T5_ID else model_id
    return models.load_seq2seq_model(path, model_id=model_id, dtype=dtype, device=device)


def t5_lora_params(config, r: int, targets=("q", "v")) -> int:
    """LoRA parameters on a T5: r * (d_in + d_out) per targeted projection, in every attention block.

    An encoder block has one attention (self), a decoder block two (self and cross-attention over
    the encoder's output), each with q, k, v (d_model -> heads * d_kv) and o (back).

    Example:
        >>> t5_lora_params(models.flan_t5_config("google/flan-t5-small"), 8)
        344064
    """
    inner = config.num_heads * config.d_kv
    shapes = {"q": (config.d_model, inner), "k": (config.d_model, inner), "v": (config.d_model, inner),
              "o": (inner, config.d_model)}
    unknown = sorted(set(targets) - set(shapes))
    if unknown:
        raise ValueError(f"Unknown T5 attention projection(s) {unknown}: use some of {sorted(shapes)}.")
    per_attention = sum(r * sum(shapes[t]) for t in targets)
    return per_attention * (config.num_layers + 2 * config.num_decoder_layers)


def lora_config(r: int = 8, alpha: int = 32, dropout: float = 0.05, targets=("q", "v")):
    """peft's LoraConfig for an encoder-decoder: task_type SEQ_2_SEQ_LM, on T5's q and v projections."""
    from peft import LoraConfig

    return LoraConfig(r=r, lora_alpha=alpha, lora_dropout=dropout, target_modules=list(targets),
                      task_type="SEQ_2_SEQ_LM")


# --- precision -------------------------------------------------------------------------------------


def fp16_overflow_probe(model, batch: dict) -> dict:
    """The largest |activation| of every feed-forward output and the whole forward on a real batch (fp32).

    Returns {"max_activation": float, "where": module name, "fp16_max": 65504.0}.
    """
    peaks: dict[str, float] = {}

    def hook(name):
        def record(_module, _inputs, output):
            out = output[0] if isinstance(output, tuple) else output
            if torch.is_tensor(out):
                peaks[name] = max(peaks.get(name, 0.0), out.detach().abs().max().float().item())
        return record

    handles = [m.register_forward_hook(hook(n)) for n, m in model.named_modules()
               if n.endswith(("DenseReluDense", "DenseReluDense.wo", "layer.0", "layer.1", "layer.2"))]
    try:
        with torch.no_grad():
            model(**{k: v.to(model.device) for k, v in batch.items()})
    finally:
        for h in handles:
            h.remove()
    where = max(peaks, key=peaks.get)
    return {"max_activation": peaks[where], "where": where, "fp16_max": FP16_MAX}


def choose_precision(device: str, probe: dict | None = None, native_bf16: bool | None = None,
                     headroom: float = 8.0) -> tuple[str, str]:
    """("bf16" | "fp16" | "fp32", why): bf16 where native, fp16 only if the probe leaves `headroom`, else fp32.

    T5 was pre-trained in bf16, whose range equals fp32's; fp16 ends at 65,504 and FLAN-T5's
    feed-forward activations are known to exceed it (inf, then NaN loss). A T4 has no native bf16.
    $COURSE_DTYPE=float16 makes a bf16 GPU choose as a T4 would (fp16 or fp32); bfloat16 / float32 force those.
    """
    if device != "cuda":
        return "fp32", "a CPU computes in fp32"
    forced = runtime.forced_dtype()          # $COURSE_DTYPE (make gpu-check): what another GPU would pick
    if forced == torch.float32:
        return "fp32", f"{runtime.DTYPE_ENV}=float32 forces fp32"
    if forced == torch.bfloat16:
        return "bf16", f"{runtime.DTYPE_ENV}=bfloat16 forces bf16"
    if forced == torch.float16:
        native_bf16 = False                  # as on a T4: fp16 only where the probe leaves headroom
    if native_bf16 is None:
        native_bf16 = hardware.native_bf16("cuda")
    if native_bf16:
        return "bf16", "native bf16: the range of fp32 (T5 was pre-trained in bf16)"
    if probe is None:
        return "fp32", "no native bf16 and no overflow probe: fp32 is the safe choice for T5"
    if probe["max_activation"] * headroom < FP16_MAX:
        return "fp16", (f"no native bf16; the largest activation ({probe['max_activation']:,.0f}) leaves "
                        f"{headroom:g}x headroom below fp16's {FP16_MAX:,.0f}")
    return "fp32", (f"no native bf16, and fp16 would overflow: an activation of {probe['max_activation']:,.0f} "
                    f"in {probe['where']} is within {headroom:g}x of fp16's limit {FP16_MAX:,.0f}")


# --- metrics ---------------------------------------------------------------------------------------


# --- training and generation -----------------------------------------------------------------------


def training_args(output_dir: str, *, max_steps: int, batch_size: int, lr: float, seed: int = 42,
                  precision: str = "fp32", logging_steps: int | None = None, **overrides):
    """Seq2SeqTrainingArguments with the chosen precision, no checkpoints, no reports."""
    from transformers import Seq2SeqTrainingArguments

    kwargs = dict(output_dir=output_dir, max_steps=max_steps, per_device_train_batch_size=batch_size,
                  learning_rate=lr, lr_scheduler_type="linear", warmup_steps=0, weight_decay=0.0,
                  logging_steps=logging_steps or max(1, max_steps // 10), save_strategy="no", eval_strategy="no",
                  report_to="none", seed=seed, data_seed=seed, bf16=precision == "bf16", fp16=precision == "fp16",
                  use_cpu=not torch.cuda.is_available(), disable_tqdm=True)
    kwargs.update(overrides)
    return Seq2SeqTrainingArguments(**kwargs)


def train(model, tokenizer, train_ds, args):
    """Seq2SeqTrainer with DataCollatorForSeq2Seq (labels padded with -100); returns utils.train.TrainResult."""
    from transformers import DataCollatorForSeq2Seq, Seq2SeqTrainer
    from transformers.trainer_callback import PrinterCallback

    collator = DataCollatorForSeq2Seq(tokenizer, model=model, label_pad_token_id=IGNORE_INDEX)
    trainer = Seq2SeqTrainer(model=model, args=args, train_dataset=train_ds, data_collator=collator,
                             processing_class=tokenizer)
    if args.disable_tqdm:   # no progress bar: then no dict per logging step either (the result keeps the losses)
        trainer.remove_callback(PrinterCallback)
    with runtime.measure("training", verbose=False) as m:
        trainer.train()
    history = trainer.state.log_history
    return TrainResult(trainer=trainer, seconds=m.seconds, peak_bytes=m.peak_bytes, memory_kind=m.memory_kind,
                       train_loss=[(h["step"], h["loss"]) for h in history if "loss" in h])


def translate(model, tokenizer, sentences: list[str], *, num_beams: int = 1, max_new_tokens: int = 64,
              batch_size: int = 32, max_source_length: int = 128, prefix: str = TASK_PREFIX) -> list[str]:
    """English translations of German `sentences`: greedy (num_beams=1) or beam search."""
    model.eval()
    out = []
    for start in range(0, len(sentences), batch_size):
        chunk = [prefix + s for s in sentences[start:start + batch_size]]
        enc = tokenizer(chunk, return_tensors="pt", padding=True, truncation=True, max_length=max_source_length)
        with torch.no_grad():
            ids = model.generate(**{k: v.to(model.device) for k, v in enc.items()}, num_beams=num_beams,
                                 do_sample=False, max_new_tokens=max_new_tokens)
        out += [t.strip() for t in tokenizer.batch_decode(ids, skip_special_tokens=True)]
    return out


def evaluate_translation(model, tokenizer, pairs: list[dict], s: Seq2SeqSettings, num_beams: int | None = None) -> dict:
    """Translate the German side of `pairs` and score against the English side (translation_scores)."""
    hyps = translate(model, tokenizer, [p["de"] for p in pairs], num_beams=s.num_beams if num_beams is None else num_beams,
                     max_new_tokens=s.max_new_tokens, batch_size=s.eval_batch_size, max_source_length=s.max_source_length)
    return {**evaluation.translation_scores(hyps, [p["en"] for p in pairs], s.bootstrap_samples), "hypotheses": hyps}


def folder_bytes(folder) -> int:
    """Bytes of every file under `folder` (a saved adapter or checkpoint)."""
    return sum(p.stat().st_size for p in Path(folder).rglob("*") if p.is_file())


def run(method: str, s: Seq2SeqSettings, train_ds, *, seed: int = 42, precision: str = "fp32",
        output_dir: str = "outputs/08_run", device: str | None = None):
    """Train "lora" or "full" from a fresh copy of the base on the same data and steps.

    Returns (model, tokenizer, result, row): the trained model and its tokenizer, the trainer's
    result, and the row's trainable parameters, share, time per step, peak memory and size on disk
    (adapter folder for LoRA, whole checkpoint for full fine-tuning).
    """
    from peft import get_peft_model

    if method not in ("lora", "full"):
        raise ValueError(f"Unknown method {method!r}: use 'lora' or 'full'.")
    runtime.seed_everything(seed)
    model, tokenizer = load_seq2seq(s.model_id, device=device)
    if method == "lora":
        model = get_peft_model(model, lora_config(s.lora_r, s.lora_alpha, s.lora_dropout))
    trainable, total = lora.count_parameters(model)
    args = training_args(output_dir, max_steps=s.max_steps, batch_size=s.batch_size,
                         lr=s.lr if method == "lora" else s.full_lr, seed=seed, precision=precision)
    result = train(model, tokenizer, train_ds, args)
    save_dir = Path(output_dir) / ("adapter" if method == "lora" else "checkpoint")
    model.save_pretrained(save_dir)
    row = {"trainable parameters": trainable, "trainable %": 100 * trainable / total,
           "seconds per step": result.seconds / max(1, result.trainer.state.global_step),
           f"peak memory (MiB, {result.memory_kind})": result.peak_bytes / 2**20,
           "size on disk (MiB)": folder_bytes(save_dir) / 2**20}
    return model, tokenizer, result, row


# --- the smoke learning check (notebook and `make robustness`) -------------------------------------

SMOKE_BLEU_GAIN = 1.0      # BLEU points the smoke LoRA run must gain over the untouched tiny T5 (seeds 0-7 x 1, 2 threads gained +2.1 to +9.4)


def learning_threshold(untouched_bleu: float) -> float:
    """The bar of lesson 08's learning check: the untouched model's validation BLEU + SMOKE_BLEU_GAIN."""
    return untouched_bleu + SMOKE_BLEU_GAIN


def smoke_learning_run(seed: int = 42) -> dict:
    """Lesson 08's smoke pipeline (tiny T5, LoRA, greedy, validation split) with `seed`.

    Returns {"metric", "value", "threshold", "untouched"}; it passes when value > threshold.
    """
    s = settings(get_profile("smoke"))
    _, tokenizer = load_seq2seq(s.model_id, device="cpu")
    train_ds = to_dataset(encode_pairs(tokenizer, data.load_wmt16(s.data_source, "train", s.max_train_samples, seed=seed),
                                       s.max_source_length, s.max_target_length))
    val = data.load_wmt16(s.data_source, "validation", s.max_eval_samples)
    quick = dataclasses.replace(s, bootstrap_samples=1)
    base, tokenizer = load_seq2seq(s.model_id, device="cpu")
    before = evaluate_translation(base, tokenizer, val, quick, num_beams=1)["BLEU"]
    with tempfile.TemporaryDirectory() as tmp:
        model, tokenizer, _, _ = run("lora", s, train_ds, seed=seed, output_dir=tmp, device="cpu")
        after = evaluate_translation(model, tokenizer, val, quick, num_beams=1)["BLEU"]
    return {"metric": "validation BLEU (greedy) after LoRA", "value": after, "threshold": learning_threshold(before),
            "untouched": before}
