import pytest
import torch

from utils import lora, models


def test_tiny_model_is_llama_shaped_with_dims_multiple_of_64(tiny):
    model, _ = tiny
    assert type(model).__name__ == "LlamaForCausalLM"
    names = {n.rsplit(".", 1)[-1] for n, m in model.named_modules() if isinstance(m, torch.nn.Linear)}
    assert set(lora.LLAMA_LINEARS) <= names
    for name, module in model.named_modules():
        if isinstance(module, torch.nn.Linear):   # bitsandbytes' CPU kernels need this (STACK_FACTS, bug A)
            assert module.in_features % 64 == 0 and module.out_features % 64 == 0, name
    assert model.config.tie_word_embeddings


def test_tiny_tokenizer_has_llama3_specials_and_template(tiny):
    _, tok = tiny
    assert tok.bos_token == "<|begin_of_text|>" and tok.eos_token == "<|eot_id|>" and tok.pad_token == "<|pad|>"
    text = tok.apply_chat_template([{"role": "user", "content": "Xin chào"}], add_generation_prompt=True, tokenize=False)
    assert text == ("<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\nXin chào<|eot_id|>"
                    "<|start_header_id|>assistant<|end_header_id|>\n\n")
    sentence = "Tôi đang học lượng tử hóa trọng số bốn bit."
    assert tok.decode(tok(sentence, add_special_tokens=False)["input_ids"]) == sentence


def test_templated_text_gets_a_single_bos_only_without_special_tokens(tiny):
    _, tok = tiny
    text = tok.apply_chat_template([{"role": "user", "content": "chào"}], tokenize=False)
    assert tok(text)["input_ids"][:2] == [tok.bos_token_id] * 2           # the double-BOS trap
    assert tok(text, add_special_tokens=False)["input_ids"][1] != tok.bos_token_id


def test_tiny_model_was_pretrained(tiny):
    model, tok = tiny
    enc = tok("thầy dạy rất nhiệt tình .", return_tensors="pt")
    with torch.no_grad():
        loss = model(**enc, labels=enc["input_ids"]).loss.item()
    assert loss < 3.0, f"a pretrained tiny model should find course text likely (loss {loss:.2f}; random is ~6.9)"


def test_cache_key_follows_the_recipe(monkeypatch, tmp_path):
    monkeypatch.setenv("COURSE_CACHE", str(tmp_path))
    built = []
    monkeypatch.setattr(models, "build_tiny_model", lambda folder, lines: (built.append(folder), (folder / "model.safetensors").write_text("x")))
    first = models.tiny_model_dir()
    assert models.tiny_model_dir() == first and len(built) == 1          # cached
    monkeypatch.setitem(models.TINY_RECIPE, "pretrain_steps", 301)
    second = models.tiny_model_dir()
    assert second != first and len(built) == 2                           # rebuilt when the recipe changes
    assert first.parent == tmp_path and not list(tmp_path.glob(".building-*"))


def test_hub_model_offline_gives_one_clear_sentence():
    from utils.runtime import HubAccessError

    with pytest.raises(HubAccessError, match="offline mode.*smoke profile"):
        models.load_model_and_tokenizer("meta-llama/Llama-3.2-1B-Instruct")


def test_llama32_1b_config_matches_published_values():
    c = models.llama32_1b_config()
    assert (c.hidden_size, c.num_hidden_layers, c.num_attention_heads, c.num_key_value_heads, c.head_dim) == (2048, 16, 32, 8, 64)
    assert (c.intermediate_size, c.vocab_size, c.max_position_embeddings) == (8192, 128256, 131072)
    assert c.tie_word_embeddings and c.rms_norm_eps == 1e-5
    rope = c.rope_parameters
    assert rope["rope_theta"] == 500000.0 and rope["rope_type"] == "llama3" and rope["factor"] == 32.0
    assert (rope["low_freq_factor"], rope["high_freq_factor"], rope["original_max_position_embeddings"]) == (1.0, 4.0, 8192)


def test_meta_model_counts_tied_parameters_once():
    assert lora.count_parameters(models.meta_model()) == (1_235_814_400, 1_235_814_400)


def test_init_empty_weights_would_untie_lm_head():
    """Why utils.models uses torch.device('meta'): accelerate's context manager unties lm_head."""
    from accelerate import init_empty_weights
    from transformers import LlamaForCausalLM

    with init_empty_weights():
        untied = LlamaForCausalLM(models.llama32_1b_config())
    assert lora.count_parameters(untied)[1] == 1_498_482_688


def test_gated_refusal_falls_back_to_the_mirror_with_a_message(monkeypatch, capsys):
    import httpx
    from huggingface_hub.errors import GatedRepoError
    from transformers import AutoTokenizer

    real = AutoTokenizer.from_pretrained
    mirror = str(models.tiny_model_dir())            # stands in for the ungated mirror (no network here)

    def refuse_gated(name, *args, **kwargs):
        if name == "meta-llama/Llama-3.2-1B-Instruct":
            request = httpx.Request("GET", "https://huggingface.co/meta-llama/Llama-3.2-1B-Instruct")
            raise GatedRepoError("Access to model meta-llama/Llama-3.2-1B-Instruct is restricted",
                                 response=httpx.Response(403, request=request))
        return real(name, *args, **kwargs)

    monkeypatch.setattr(AutoTokenizer, "from_pretrained", refuse_gated)
    monkeypatch.delenv("HF_TOKEN", raising=False)
    model, tok = models.load_model_and_tokenizer("meta-llama/Llama-3.2-1B-Instruct", fallback_model_id=mirror,
                                                 dtype=torch.float32, device="cpu")
    out = capsys.readouterr().out
    assert "gated model" in out and "HF_TOKEN" in out and f"Falling back to {mirror}" in out
    assert type(model).__name__ == "LlamaForCausalLM"
    from utils.runtime import HubAccessError

    with pytest.raises(HubAccessError, match="gated model"):
        models.load_model_and_tokenizer("meta-llama/Llama-3.2-1B-Instruct", dtype=torch.float32, device="cpu")
