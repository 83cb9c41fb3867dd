"""utils.fewshot (lesson 05): balanced draws, the few-shot chat, no leakage, the TF-IDF baseline."""

from collections import Counter

import datasets
import pytest

from utils import data, fewshot, prompts


@pytest.mark.parametrize("k", [0, 1, 2, 3, 5, 6, 8])
def test_balanced_examples_are_distinct_balanced_and_reproducible(k):
    labels = [0, 0, 0, 1, 1, 2, 2, 2]
    picked = fewshot.balanced_examples(labels, k, seed=4)
    assert len(picked) == len(set(picked)) == k
    counts = Counter(labels[i] for i in picked)
    available = Counter(labels)
    # counts differ by at most one among labels that still had examples left
    open_labels = [y for y in available if counts[y] < available[y]]
    assert all(counts[y] >= max(counts.values(), default=0) - 1 for y in open_labels)
    assert fewshot.balanced_examples(labels, k, seed=4) == picked


def test_balanced_examples_vary_with_the_seed_and_refuse_impossible_k():
    labels = [0, 1, 2] * 10
    assert len({tuple(fewshot.balanced_examples(labels, 3, seed=s)) for s in range(8)}) > 1
    for bad in (-1, 31):
        with pytest.raises(ValueError, match="k|Cannot"):
            fewshot.balanced_examples(labels, bad)


def test_few_shot_messages_order_labels_and_refusals():
    shots = [("cô dạy rất hay .", 2), ("phòng học nóng quá .", "negative")]
    msgs = fewshot.few_shot_messages("bài tập nhiều .", shots)
    assert [m["role"] for m in msgs] == ["system", "user", "assistant", "user", "assistant", "user"]
    assert [m["content"] for m in msgs[2::2]] == ["Sentiment: positive", "Sentiment: negative"]
    assert "cô dạy rất hay ." in msgs[1]["content"] and msgs[-1] == prompts.sentiment_messages("bài tập nhiều .")[-1]
    assert fewshot.few_shot_messages("ok .", []) == prompts.sentiment_messages("ok .")
    with pytest.raises(ValueError, match="leak"):
        fewshot.few_shot_messages(" phòng học nóng quá . ", shots)
    with pytest.raises(ValueError, match="repeats"):
        fewshot.few_shot_messages("ok .", shots + [("cô dạy rất hay . ", 2)])
    with pytest.raises(ValueError, match="not one of"):
        fewshot.few_shot_messages("ok .", [("câu .", 7)])
    with pytest.raises(ValueError, match="empty"):
        fewshot.few_shot_messages("   ", shots)


def test_draw_examples_never_uses_an_evaluated_sentence_or_a_duplicate():
    train = datasets.Dataset.from_dict({
        "sentence": ["a .", "a .", "b .", "c .", "d .", "e .", "", "f ."],
        "sentiment": [0, 0, 1, 2, 0, 2, 1, 1]})
    for seed in range(10):
        shots = fewshot.draw_examples(train, 4, seed=seed, avoid=["b .", "e . "])
        texts = [s for s, _ in shots]
        assert len(set(texts)) == 4 and not {"b .", "e .", ""} & set(texts)
    with pytest.raises(ValueError, match="Cannot choose"):
        fewshot.draw_examples(train, 6, avoid=["b ."])      # 5 distinct usable sentences are left


def test_sample_test_sentences_are_kept_out_of_few_shot_prompts(tiny):
    _, tok = tiny
    splits = data.load_vsfc("sample")
    test = [s.strip() for s in splits["test"]["sentence"]]
    shots = fewshot.draw_examples(splits["train"], 8, seed=1, avoid=test)
    assert not {s for s, _ in shots} & set(test)
    ids = fewshot.few_shot_prompts(tok, test[:2], shots)
    assert len(ids) == 2 and len(ids[0]) > len(prompts.prompt_ids(tok, test[0]))


def test_tfidf_baseline_learns_the_sample():
    splits = data.load_vsfc("sample")
    model = fewshot.tfidf_baseline().fit(splits["train"]["sentence"], splits["train"]["sentiment"])
    accuracy = (model.predict(splits["test"]["sentence"]) == splits["test"]["sentiment"]).mean()
    majority = Counter(splits["test"]["sentiment"]).most_common(1)[0][1] / len(splits["test"])
    assert accuracy > majority + 0.2
