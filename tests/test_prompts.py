"""utils.prompts on hand-made token lists, the tiny tokenizer and the real Llama-3.2 tokenizer."""

import time

import pytest
import torch

from course.tools import llama_tokenizer
from utils import data, prompts


@pytest.fixture(scope="module")
def real():
    """The real Llama-3 tokenizer, built offline from Meta's llama-models package (cached)."""
    return llama_tokenizer.load()


SEED_LIKE = ("<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nCutting Knowledge Date: December 2023\n"
             "Today Date: 26 Jul 2024\n\nYou label the sentiment of Vietnamese student feedback.<|eot_id|>"
             "<|start_header_id|>user<|end_header_id|>\n\nClassify the sentiment of the feedback below as positive, "
             "negative or neutral. Answer with \"Sentiment: <label>\".\n\nFeedback: slide giáo trình đầy đủ."
             "<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\nSentiment: positive<|eot_id|>")


def test_real_special_token_ids(real):
    ids = {t: real.convert_tokens_to_ids(t) for t in ("<|begin_of_text|>", "<|finetune_right_pad_id|>",
                                                       "<|start_header_id|>", "<|end_header_id|>", "<|eom_id|>", "<|eot_id|>")}
    assert ids == {"<|begin_of_text|>": 128000, "<|finetune_right_pad_id|>": 128004, "<|start_header_id|>": 128006,
                   "<|end_header_id|>": 128007, "<|eom_id|>": 128008, "<|eot_id|>": 128009}
    assert len(real) == 128256 and real.pad_token_id == 128004 != real.eos_token_id == 128009
    assert [real.convert_tokens_to_ids(w) for w in ("positive", "negative", "neutral", "Ġpositive")] == [31587, 43324, 60668, 6928]


def test_real_ids_equal_tiktoken_on_vietnamese(real):
    import tiktoken
    from tiktoken.load import load_tiktoken_bpe

    enc = tiktoken.Encoding("llama3", pat_str=llama_tokenizer.PATTERN, special_tokens={},
                            mergeable_ranks=load_tiktoken_bpe(str(llama_tokenizer.model_file())))
    for text in ("Tôi đang học lượng tử hóa trọng số bốn bit.", "giảng viên nói quá nhanh , khó theo kịp !", " 123 ,.;"):
        assert real(text, add_special_tokens=False)["input_ids"] == enc.encode(text)


def test_prompt_renders_exactly_the_llama32_format(real):
    messages = prompts.sentiment_messages("slide giáo trình đầy đủ.", 2)
    assert prompts.chat_text(real, messages) == SEED_LIKE
    ids = prompts.chat_ids(real, messages)
    assert ids[0] == 128000 and ids.count(128000) == 1, "one BOS, not two"
    assert real.decode(ids) == SEED_LIKE


def test_the_date_is_pinned_because_the_template_writes_today(real):
    messages = prompts.sentiment_messages("cô dạy hay .", 2)
    unpinned = real.apply_chat_template(messages, tokenize=False)
    assert f"Today Date: {time.strftime('%d %b %Y')}" in unpinned
    assert f"Today Date: {prompts.DATE_STRING}" in prompts.chat_text(real, messages)


def test_real_template_has_no_generation_markers_so_masking_goes_by_length(real, tiny):
    _, tiny_tok = tiny
    assert "{% generation %}" in tiny_tok.chat_template and "{% generation %}" not in real.chat_template
    for tok in (real, tiny_tok):
        messages = prompts.sentiment_messages("phòng học quá nóng .", "negative")
        ex = prompts.encode_chat_example(tok, messages)
        answer = [i for i, lab in zip(ex["input_ids"], ex["labels"]) if lab != -100]
        assert tok.decode(answer) == "Sentiment: negative<|eot_id|>"
        first = ex["labels"].index(answer[0])
        assert set(ex["labels"][:first]) == {-100} and ex["labels"][first:] == ex["input_ids"][first:]


def test_mask_prompt_on_hand_made_lists():
    assert prompts.mask_prompt([1, 2, 3], [7, 8]) == {"input_ids": [1, 2, 3, 7, 8], "labels": [-100, -100, -100, 7, 8]}
    assert prompts.mask_prompt([5], [6], max_length=2)["input_ids"] == [5, 6]
    with pytest.raises(ValueError, match="answer is empty"):
        prompts.mask_prompt([1, 2], [])
    with pytest.raises(ValueError, match="shorten the input text.*never cut the answer"):
        prompts.mask_prompt([1, 2, 3], [4, 5], max_length=4)


def test_collate_pads_right_with_pad_id_and_minus_100(real):
    a = prompts.encode_chat_example(real, prompts.sentiment_messages("cô dạy hay .", 2))
    b = {"input_ids": [1, 2], "labels": [-100, 2]}
    batch = prompts.Collator(real.pad_token_id)([a, b])
    n = len(a["input_ids"])
    assert {k: tuple(v.shape) for k, v in batch.items()} == {k: (2, n) for k in ("input_ids", "labels", "attention_mask")}
    assert batch["input_ids"][1, 2:].eq(128004).all() and batch["labels"][1, 2:].eq(-100).all()
    assert batch["attention_mask"].sum(1).tolist() == [n, 2] and batch["input_ids"].dtype == torch.long
    assert not batch["input_ids"].eq(real.eos_token_id)[1, 2:].any(), "padding must not be eos"
    with pytest.raises(ValueError, match="must align"):
        prompts.collate([{"input_ids": [1, 2], "labels": [1]}], 0)
    with pytest.raises(ValueError, match="empty batch"):
        prompts.collate([], 0)


def test_bad_sentences_and_labels_get_one_sentence():
    with pytest.raises(ValueError, match="empty"):
        prompts.sentiment_messages("   ", 1)
    with pytest.raises(TypeError, match="must be a string"):
        prompts.sentiment_messages(None, 1)
    for bad in (3, -1, "happy", True, 1.0):
        with pytest.raises(ValueError, match=r"not one of \['negative', 'neutral', 'positive'\]"):
            prompts.sentiment_messages("cô dạy hay .", bad)


def test_tokenizers_the_course_cannot_train_with_are_refused(real):
    import copy

    no_template = copy.deepcopy(real)
    no_template.chat_template = None
    with pytest.raises(ValueError, match="no chat template"):
        prompts.check_tokenizer(no_template)
    pad_is_eos = copy.deepcopy(real)
    pad_is_eos.pad_token = pad_is_eos.eos_token
    with pytest.raises(ValueError, match="pad token equals eos"):
        prompts.check_tokenizer(pad_is_eos)


def test_encode_sentiment_shortens_long_sentences_never_the_answer(real):
    import datasets

    long = " ".join(["giảng viên dạy rất nhiệt tình và dễ hiểu"] * 40)
    ds = datasets.Dataset.from_dict({"sentence": [long, "  ", "phòng học quá nóng ."], "sentiment": [2, 1, 0],
                                     "topic": [0, 0, 2]})
    encoded, report = prompts.encode_sentiment(real, ds, max_length=128)
    assert report == {"examples": 2, "shortened": 1, "skipped_empty": 1, "longest": report["longest"]}
    assert report["longest"] <= 128
    for row, label in zip(encoded, ("positive", "negative")):
        answer = [i for i, lab in zip(row["input_ids"], row["labels"]) if lab != -100]
        assert real.decode(answer) == f"Sentiment: {label}<|eot_id|>"
        assert real.decode(row["input_ids"][:row["prompt_len"]]).endswith("<|start_header_id|>assistant<|end_header_id|>\n\n")
    assert encoded["sentiment"] == [2, 0]
    with pytest.raises(ValueError, match="cannot hold even the prompt"):
        prompts.encode_sentiment(real, ds, max_length=40)
    bad = datasets.Dataset.from_dict({"sentence": ["cô dạy hay ."], "sentiment": [7], "topic": [0]})
    with pytest.raises(ValueError, match="not one of"):
        prompts.encode_sentiment(real, bad, max_length=128)


def test_the_bundled_sample_fits_the_smoke_max_length(tiny):
    from utils import config

    _, tok = tiny
    _, report = prompts.encode_sentiment(tok, data.load_vsfc("sample", "train"), config.PROFILES["smoke"].max_length)
    assert report["shortened"] == 0 and report["skipped_empty"] == 0


def test_mcq_training_text_contains_the_answer_and_the_prompt_stops_before_it(real):
    q = data.load_medmcqa("sample", "validation")[0]
    options = [q[k] for k in ("opa", "opb", "opc", "opd")]
    messages = prompts.mcq_messages(q["question"], options, q["cop"])
    letter = "ABCD"[q["cop"]]
    assert messages[-1]["content"] == f"Answer: {letter}. {options[q['cop']]}"
    ex = prompts.encode_chat_example(real, messages)
    learned = real.decode([i for i, lab in zip(ex["input_ids"], ex["labels"]) if lab != -100])
    assert learned == f"Answer: {letter}. {options[q['cop']]}<|eot_id|>"
    prompt = prompts.chat_text(real, prompts.mcq_messages(q["question"], options), add_generation_prompt=True)
    assert prompt.endswith("<|start_header_id|>assistant<|end_header_id|>\n\n") and "Answer: " not in prompt.split("D. ")[-1]
    with pytest.raises(ValueError, match="cop = -1"):
        prompts.mcq_messages(q["question"], options, -1)
    with pytest.raises(ValueError, match="exactly 4 options"):
        prompts.mcq_messages(q["question"], options[:3])
