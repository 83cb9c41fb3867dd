"""The real Llama-3 tokenizer and the Llama-3.2 chat format, built offline (for tests and token counts).

The hub's Llama-3.2 tokenizer is gated; Meta's ``llama-models`` package on PyPI ships the same
BPE ranks (``llama_models/llama3/tokenizer.model``: 128,000 base tokens, then 256 special
tokens from id 128000). transformers' ``TikTokenConverter`` turns it into a fast tokenizer in a
few seconds; it is cached in ``utils.config.cache_root()``.

The tiny smoke model's tokenizer hides what the real one does (multi-token labels, prompt
lengths, the date in the system header, the pad token), so the tests run the prompt, masking,
collator and scoring code against this one.

Example:
    >>> tok = load()                        # needs `pip install llama-models tiktoken` (dev extra)
    >>> tok.convert_tokens_to_ids("<|eot_id|>")
    128009
"""

from __future__ import annotations

from utils.config import build_once, cache_root

# Llama-3's special tokens in id order from 128000 (llama_models/llama3/tokenizer.py), then reserved ones.
SPECIALS = ["<|begin_of_text|>", "<|end_of_text|>", "<|reserved_special_token_0|>", "<|reserved_special_token_1|>",
            "<|finetune_right_pad_id|>", "<|step_id|>", "<|start_header_id|>", "<|end_header_id|>", "<|eom_id|>",
            "<|eot_id|>", "<|python_tag|>", "<|image|>"]
N_SPECIALS = 256
PATTERN = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*"
           r"|\s*[\r\n]+|\s+(?!\S)|\s+")
# The Llama-3.2 Instruct chat format for system / user / assistant turns (the hub template also
# handles tools, which the course does not use). Note: no {% generation %} markers, and the
# system header always carries the knowledge cut-off and a date (today's, unless date_string).
CHAT_TEMPLATE = (
    "{{- bos_token }}"
    "{%- if not date_string is defined %}{%- if strftime_now is defined %}"
    "{%- set date_string = strftime_now('%d %b %Y') %}{%- else %}{%- set date_string = '26 Jul 2024' %}{%- endif %}"
    "{%- endif %}"
    "{%- if messages[0]['role'] == 'system' %}{%- set system_message = messages[0]['content'] | trim %}"
    "{%- set messages = messages[1:] %}{%- else %}{%- set system_message = '' %}{%- endif %}"
    "{{- '<|start_header_id|>system<|end_header_id|>\\n\\n' }}"
    "{{- 'Cutting Knowledge Date: December 2023\\n' }}"
    "{{- 'Today Date: ' + date_string + '\\n\\n' }}"
    "{{- system_message }}{{- '<|eot_id|>' }}"
    "{%- for message in messages %}"
    "{{- '<|start_header_id|>' + message['role'] + '<|end_header_id|>\\n\\n' + message['content'] | trim + '<|eot_id|>' }}"
    "{%- endfor %}"
    "{%- if add_generation_prompt %}{{- '<|start_header_id|>assistant<|end_header_id|>\\n\\n' }}{%- endif %}"
)


def model_file():
    """Path of Meta's tokenizer.model inside the installed llama-models package."""
    from importlib.util import find_spec
    from pathlib import Path

    spec = find_spec("llama_models")
    if spec is None or not spec.submodule_search_locations:
        raise ModuleNotFoundError("The real Llama-3 tokenizer needs the llama-models and tiktoken packages: "
                                  "run `make setup` (dev extra) or `pip install llama-models tiktoken`.")
    return Path(list(spec.submodule_search_locations)[0]) / "llama3" / "tokenizer.model"


def build(folder) -> None:
    """Convert Meta's tiktoken ranks to a transformers fast tokenizer with Llama-3.2's specials and template."""
    from tokenizers import AddedToken, processors
    from transformers import PreTrainedTokenizerFast
    from transformers.convert_slow_tokenizer import TikTokenConverter

    backend = TikTokenConverter(vocab_file=str(model_file()), pattern=PATTERN).converted()
    n_base = backend.get_vocab_size()
    specials = SPECIALS + [f"<|reserved_special_token_{2 + i}|>" for i in range(N_SPECIALS - len(SPECIALS))]
    backend.add_special_tokens([AddedToken(t, normalized=False, special=True) for t in specials])
    bos = "<|begin_of_text|>"
    backend.post_processor = processors.Sequence([
        processors.ByteLevel(trim_offsets=False),
        processors.TemplateProcessing(single=f"{bos} $A", pair=f"{bos} $A {bos} $B", special_tokens=[(bos, n_base)]),
    ])
    tok = PreTrainedTokenizerFast(tokenizer_object=backend, bos_token=bos, eos_token="<|eot_id|>",
                                  pad_token="<|finetune_right_pad_id|>", chat_template=CHAT_TEMPLATE,
                                  model_max_length=131072)
    tok.save_pretrained(folder)


def load():
    """The real Llama-3.2 tokenizer (built once, then cached)."""
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(str(build_once(cache_root() / "llama3-tokenizer-v1", build, marker="tokenizer.json")))
