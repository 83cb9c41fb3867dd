"""utils.evaluation: the shift, label scoring against brute force, parsing, metrics by hand."""

import math

import pytest
import torch

from course.tools import llama_tokenizer
from utils import data, evaluation, prompts


def test_next_token_accuracy_is_shifted():
    logits = torch.zeros(1, 3, 5)
    logits[0, 0, 2] = logits[0, 1, 3] = 1.0
    labels = torch.tensor([[-100, 2, 3]])
    assert evaluation.next_token_accuracy(logits, labels) == 1.0
    assert (logits.argmax(-1) == labels)[labels != -100].float().mean().item() == 0.0   # the seed's metric
    with pytest.raises(ValueError, match="every label is -100"):
        evaluation.next_token_accuracy(logits, torch.full((1, 3), -100))


def _brute_force(model, prompt, candidate):
    """log P(candidate | prompt) from one unpadded forward pass, token by token."""
    ids = torch.tensor([prompt + candidate])
    with torch.no_grad():
        logprobs = model(input_ids=ids).logits[0].log_softmax(-1)
    return sum(logprobs[len(prompt) - 1 + k, tok].item() for k, tok in enumerate(candidate))


@pytest.mark.parametrize("candidates", [
    [[675, 31, 716], [675, 31, 859], [675, 31, 715]],       # shared prefix, one token each: the fast path
    [[31, 716, 12], [859], [715, 90, 419, 412]],            # different lengths: every pair in one batch
])
def test_label_scoring_equals_brute_force_whatever_the_padding(tiny, candidates):
    model, tok = tiny
    sentences = ["cô dạy hay .", "phòng học quá nóng và ồn , không ai nghe được gì cả .", "ok ."]
    ids = [prompts.prompt_ids(tok, s) for s in sentences]
    scores = evaluation.score_candidates(model, ids, candidates, tok.pad_token_id, batch_size=2)
    assert scores.shape == (3, len(candidates))
    shared = 2 if len(candidates[0]) == 3 and candidates[0][:2] == candidates[1][:2] else 0
    for i, prompt in enumerate(ids):
        for j, cand in enumerate(candidates):
            expected = _brute_force(model, prompt + cand[:shared], cand[shared:])
            assert math.isclose(scores[i, j].item(), expected, abs_tol=1e-3), (i, j, scores[i, j].item(), expected)


def test_real_sentiment_answers_are_one_token_after_a_shared_prefix():
    real = llama_tokenizer.load()
    cands = evaluation.sentiment_candidates(real, data.SENTIMENT_LABELS)
    assert [real.decode(c) for c in cands] == ["Sentiment: negative", "Sentiment: neutral", "Sentiment: positive"]
    assert cands[0][:-1] == cands[1][:-1] == cands[2][:-1] and len({c[-1] for c in cands}) == 3


@pytest.mark.parametrize("reply,expected", [
    ("Sentiment: positive", 2), (" Sentiment: Negative.", 0), ("neutral", 1), ("POSITIVE!", 2),
    ("Sentiment: positive or negative", None), ("", None), ("Sentiment:", None), ("neutrality", None),
    ("tích cực", None),
])
def test_parse_label(reply, expected):
    assert evaluation.parse_label(reply, data.SENTIMENT_LABELS) == expected


def test_metrics_by_hand_with_an_unparseable_reply():
    # true: neg neg neu pos pos ; predicted: neg pos neu pos None
    m = evaluation.classification_metrics([0, 0, 1, 2, 2], [0, 2, 1, 2, None], data.SENTIMENT_LABELS)
    assert m["accuracy"] == 3 / 5 and m["unparseable_rate"] == 1 / 5
    # F1: negative p=1 r=.5 -> 2/3; neutral 1; positive p=.5 r=.5 -> .5
    assert math.isclose(m["macro_f1"], (2 / 3 + 1 + 0.5) / 3)
    assert m["per_class"].loc["neutral", "f1"] == 1.0 and m["per_class"]["support"].tolist() == [2, 1, 2]
    with pytest.raises(ValueError, match="2 true labels but 1 predictions"):
        evaluation.classification_metrics([0, 1], [0], data.SENTIMENT_LABELS)


def test_majority_baseline_and_wilson_interval():
    assert evaluation.majority_baseline([0, 2, 2, 1], 3) == [2, 2, 2]
    low, high = evaluation.wilson_interval(50, 100)
    assert round(low, 3) == 0.404 and round(high, 3) == 0.596
    low, high = evaluation.wilson_interval(0, 10)
    assert abs(low) < 1e-12 and round(high, 3) == 0.278
    with pytest.raises(ValueError):
        evaluation.wilson_interval(1, 0)


def test_generation_is_left_padded_and_parses(tiny):
    model, tok = tiny
    ids = [prompts.prompt_ids(tok, s) for s in ("cô dạy hay .", "phòng học quá nóng và ồn , không ai nghe được .")]
    batched = evaluation.generate(model, tok, ids, max_new_tokens=5, batch_size=2)
    single = [evaluation.generate(model, tok, [i], max_new_tokens=5)[0] for i in ids]
    assert batched == single and all(isinstance(r, str) for r in batched)


def test_classify_refuses_empty_text(tiny):
    model, tok = tiny
    table = evaluation.classify(model, tok, ["cô dạy hay ."])
    assert list(table.columns) == ["sentence", "label", "p(negative)", "p(neutral)", "p(positive)"]
    assert math.isclose(table.iloc[0, 2:].sum(), 1.0, abs_tol=2e-3)
    with pytest.raises(ValueError, match="empty"):
        evaluation.classify(model, tok, [""])
