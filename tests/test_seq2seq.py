"""utils.seq2seq (lesson 08): the bundled sample, labels and collator, metrics, T5 parameter counts, precision."""

import json

import pytest
import torch

from utils import config, data, evaluation, models, seq2seq


def _rows(split):
    return [json.loads(line)["translation"] for line in data.sample_path(f"wmt_de_en_{split}.jsonl").read_text().splitlines()]


def test_sample_splits_are_disjoint_unique_and_have_wmt16s_layout():
    splits = {s: _rows(s) for s in data.SPLITS}
    assert {s: len(r) for s, r in splits.items()} == {"train": 1000, "validation": 100, "test": 150}
    for rows in splits.values():
        assert all(set(r) == {"de", "en"} and r["de"].strip() and r["en"].strip() for r in rows)
    for side in ("de", "en"):
        for a in data.SPLITS:
            assert len({r[side] for r in splits[a]}) == len(splits[a]), f"{a} repeats a {side} sentence"
            for b in data.SPLITS:
                if a < b:
                    shared = {r[side] for r in splits[a]} & {r[side] for r in splits[b]}
                    assert not shared, f"{a} and {b} share {side} sentences: {sorted(shared)[:3]}"


def test_load_wmt16_reads_the_sample_and_refuses_unknown_splits():
    pairs = data.load_wmt16("sample", "validation")
    assert len(pairs) == 100 and pairs[0] == _rows("validation")[0]
    assert len(data.load_wmt16("sample", "train", limit=10)) == 10
    with pytest.raises(ValueError, match="split"):
        data.load_wmt16("sample", "dev")


def test_prepare_labels_masks_padding_and_shifts_the_decoder_input():
    labels, dec = seq2seq.prepare_labels([[5, 6, 7, 1], [8, 1]], pad_token_id=0, decoder_start_token_id=0)
    assert labels.tolist() == [[5, 6, 7, 1], [8, 1, -100, -100]]
    assert dec.tolist() == [[0, 5, 6, 7], [0, 8, 1, 0]]          # no -100 reaches the embedding
    with pytest.raises(ValueError, match="at least one token"):
        seq2seq.prepare_labels([[5, 1], []], 0, 0)


@pytest.fixture(scope="module")
def tiny():
    return seq2seq.load_seq2seq(seq2seq.TINY_T5_ID, device="cpu")


def test_the_course_collator_equals_transformers_seq2seq_collator(tiny):
    from transformers import DataCollatorForSeq2Seq

    model, tokenizer = tiny
    enc = seq2seq.encode_pairs(tokenizer, data.load_wmt16("sample", "test")[:4])
    examples = [{"input_ids": i, "labels": lab} for i, lab in zip(enc["input_ids"], enc["labels"])]
    ours = seq2seq.collate(tokenizer, examples, model.config.decoder_start_token_id)
    theirs = DataCollatorForSeq2Seq(tokenizer, model=model, label_pad_token_id=-100)(examples)
    for key in ("input_ids", "attention_mask", "labels", "decoder_input_ids"):
        assert torch.equal(ours[key], theirs[key]), key
    assert (ours["labels"] == -100).any(), "the example batch should need padding"
    loss_ok = model(**ours).loss
    padded = dict(ours, labels=ours["labels"].masked_fill(ours["labels"] == -100, tokenizer.pad_token_id))
    assert not torch.isclose(model(**padded).loss, loss_ok), "padding with the pad id changes what the loss learns"


def test_encode_pairs_puts_the_prefix_on_the_encoder_side_only(tiny):
    _, tokenizer = tiny
    enc = seq2seq.encode_pairs(tokenizer, [{"de": "Der Hund schläft.", "en": "The dog sleeps."}])
    assert tokenizer.decode(enc["input_ids"][0], skip_special_tokens=True).startswith(seq2seq.TASK_PREFIX.strip())
    assert tokenizer.decode(enc["labels"][0], skip_special_tokens=True) == "The dog sleeps."
    assert enc["labels"][0][-1] == tokenizer.eos_token_id and enc["truncated"] == 0
    assert seq2seq.encode_pairs(tokenizer, [{"de": "Der Hund schläft.", "en": "The dog sleeps."}],
                                max_target_length=3)["truncated"] == 1


def test_corpus_bleu_from_counts_matches_sacrebleu_without_tokenization():
    from sacrebleu.metrics import BLEU

    hyps = ["the cat sat on the mat", "a dog runs in the park today", "she reads the old book"]
    refs = ["the cat sat on a mat", "the dog runs in the park", "she reads an old book"]
    ours = evaluation.corpus_bleu_from_tokens([h.split() for h in hyps], [r.split() for r in refs])
    assert ours == pytest.approx(BLEU(tokenize="none").corpus_score(hyps, [refs]).score, abs=1e-9)
    assert evaluation.corpus_bleu_from_tokens([["the", "cat", "sat", "on", "the", "mat"]],
                                           [["the", "cat", "sat", "on", "a", "mat"]]) == pytest.approx(53.728, abs=1e-3)
    # corpus BLEU is not the mean of sentence BLEUs: the second sentence alone has no 4-gram match
    assert evaluation.corpus_bleu_from_tokens([["a", "b", "c"]], [["a", "b", "d"]]) == 0.0


def test_translation_scores_have_signature_interval_and_perfect_scores_for_copies():
    refs = ["The dog sleeps in the garden.", "Does the girl read the book?", "The car is not new."]
    perfect = evaluation.translation_scores(refs, refs, n_bootstrap=50)
    assert perfect["BLEU"] == pytest.approx(100) and perfect["chrF"] == pytest.approx(100)
    assert perfect["ROUGE-L"] == pytest.approx(100)
    assert "tok:13a" in perfect["signature"] and "bs:50" in perfect["signature"] and "version:2.6.0" in perfect["signature"]
    worse = evaluation.translation_scores(["The dog sleeps.", "The girl reads a book.", "The car is new."], refs, n_bootstrap=50)
    assert worse["BLEU"] < 100 and worse["BLEU 95% CI low"] <= worse["BLEU 95% CI high"]
    with pytest.raises(ValueError, match="one reference per hypothesis"):
        evaluation.translation_scores(refs[:2], refs)


def test_the_bleu_interval_uses_public_api_and_matches_sacrebleus_bootstrap():
    """utils.evaluation.bleu_bootstrap (sentence counts + BLEU.compute_bleu, no private attribute): its corpus
    score is sacreBLEU's, and its percentile interval has the half-width sacreBLEU prints (the same resamples)."""
    import random

    from sacrebleu.metrics import BLEU

    rng = random.Random(0)
    pairs = data.load_wmt16("sample", "test")[:60]
    refs = [p["en"] for p in pairs]
    hyps = [" ".join(w for w in r.split() if rng.random() > 0.3) or r for r in refs]   # a degraded system
    score, low, high = evaluation.bleu_bootstrap(hyps, refs, n_bootstrap=200)
    bleu = BLEU()
    official = bleu.corpus_score(hyps, [refs], n_bootstrap=200)
    assert score == pytest.approx(official.score, abs=1e-9)
    printed = json.loads(official.format(is_json=True, width=6, signature=str(bleu.get_signature())))
    assert (high - low) / 2 == pytest.approx(printed["confidence_var"], abs=1e-5)
    assert low < score < high
    scores = evaluation.translation_scores(hyps, refs, n_bootstrap=200)
    assert (scores["BLEU 95% CI low"], scores["BLEU 95% CI high"]) == (low, high) and "bs:200" in scores["signature"]


def test_load_wmt16_says_how_many_empty_pairs_it_dropped(tmp_path):
    rows = [{"translation": {"de": "Der Hund schläft.", "en": "The dog sleeps."}},
            {"translation": {"de": "Das Auto.", "en": "  "}}]
    (tmp_path / "copy").mkdir()
    for path in (tmp_path / "pairs.jsonl", tmp_path / "copy" / "test.jsonl"):      # one file; a folder of splits
        path.write_text("\n".join(json.dumps(r, ensure_ascii=False) for r in rows))
        with pytest.warns(UserWarning, match="dropped 1 of 2 pairs with an empty side"):
            assert data.load_wmt16(str(path.parent if path.name == "test.jsonl" else path), "test") == \
                [{"de": "Der Hund schläft.", "en": "The dog sleeps."}]


@pytest.mark.parametrize("model_id, total", [("google/flan-t5-small", 76_961_152), ("google/flan-t5-base", 247_577_856)])
def test_flan_t5_sizes_and_lora_counts_against_peft_on_the_meta_device(model_id, total):
    from peft import get_peft_model

    from utils import lora

    cfg = models.flan_t5_config(model_id)
    base = models.meta_t5(cfg)
    assert models.flan_t5_params(model_id) == total                # the published checkpoints' sizes (77 M, 248 M)
    assert sum(p.numel() for p in base.parameters()) == total - cfg.vocab_size * cfg.d_model   # lm_head tied when built
    peft_model = get_peft_model(base, seq2seq.lora_config(8, 32))
    assert lora.count_parameters(peft_model)[0] == seq2seq.t5_lora_params(cfg, 8)
    if model_id.endswith("small"):
        assert seq2seq.t5_lora_params(cfg, 8) == 344_064            # 0.45 % of 77 M, far from the seed's "16 M (~21 %)"
    with pytest.raises(ValueError, match="projection"):
        seq2seq.t5_lora_params(cfg, 8, targets=("q_proj",))


def test_choose_precision_never_picks_fp16_that_would_overflow():
    assert seq2seq.choose_precision("cpu")[0] == "fp32"
    assert seq2seq.choose_precision("cuda", native_bf16=True)[0] == "bf16"
    assert seq2seq.choose_precision("cuda", native_bf16=False)[0] == "fp32"
    hot = {"max_activation": 20_000.0, "where": "decoder.block.1.layer.2.DenseReluDense.wo", "fp16_max": 65504.0}
    choice, why = seq2seq.choose_precision("cuda", hot, native_bf16=False)
    assert choice == "fp32" and "overflow" in why
    assert seq2seq.choose_precision("cuda", dict(hot, max_activation=100.0), native_bf16=False)[0] == "fp16"


def test_fp16_probe_reads_the_largest_activation(tiny):
    model, tokenizer = tiny
    enc = seq2seq.encode_pairs(tokenizer, data.load_wmt16("sample", "test")[:4])
    batch = seq2seq.collate(tokenizer, [{"input_ids": i, "labels": lab} for i, lab in zip(enc["input_ids"], enc["labels"])],
                            model.config.decoder_start_token_id)
    probe = seq2seq.fp16_overflow_probe(model, batch)
    assert 0 < probe["max_activation"] < seq2seq.FP16_MAX and probe["where"]


def test_settings_per_profile_and_clear_refusals():
    assert seq2seq.settings(config.get_profile("smoke")).model_id == seq2seq.TINY_T5_ID
    assert seq2seq.settings(config.get_profile("smoke"), max_steps=5).max_steps == 5
    with pytest.raises(ValueError, match="valid names"):
        seq2seq.settings(config.get_profile("smoke"), steps=5)


def test_learning_threshold_is_the_untouched_score_plus_the_gain():
    assert seq2seq.learning_threshold(10.0) == pytest.approx(10.0 + seq2seq.SMOKE_BLEU_GAIN)


def test_course_dtype_makes_a_bf16_gpu_choose_as_a_t4_would(monkeypatch):
    """make gpu-check's fp16 pass sets COURSE_DTYPE=float16: lesson 08 must then take the T4's path, not bf16."""
    small, huge = {"max_activation": 100.0, "where": "x"}, {"max_activation": 60000.0, "where": "wo"}
    monkeypatch.delenv("COURSE_DTYPE", raising=False)
    assert seq2seq.choose_precision("cuda", small, native_bf16=True)[0] == "bf16"
    monkeypatch.setenv("COURSE_DTYPE", "float16")
    assert seq2seq.choose_precision("cuda", small, native_bf16=True)[0] == "fp16"
    assert seq2seq.choose_precision("cuda", huge, native_bf16=True)[0] == "fp32"
    assert seq2seq.choose_precision("cpu", small, native_bf16=True)[0] == "fp32"
    monkeypatch.setenv("COURSE_DTYPE", "float32")
    assert seq2seq.choose_precision("cuda", small, native_bf16=True)[0] == "fp32"


def test_laptop_settings_take_flan_t5_online_and_the_tiny_t5_offline(monkeypatch):
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("HF_DATASETS_OFFLINE", raising=False)
    online = seq2seq.settings(config.get_profile("laptop"))
    assert (online.model_id, online.data_source) == ("google/flan-t5-small", "wmt/wmt16")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    offline = seq2seq.settings(config.get_profile("laptop"))
    assert offline == seq2seq.SETTINGS["smoke"]
