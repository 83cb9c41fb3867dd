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


def test_select_k_chooses_on_validation_only():
    import pandas as pd

    runs = pd.DataFrame({"k": [0, 1, 1, 2, 2], "draw": [0, 0, 1, 0, 1], "macro_f1": [0.30, 0.50, 0.10, 0.35, 0.35],
                         "split": "validation"})
    assert fewshot.select_k(runs) == 2                    # means: 0.30, 0.30, 0.35 (not the best single draw)
    tie = runs.assign(macro_f1=[0.4, 0.4, 0.4, 0.4, 0.4])
    assert fewshot.select_k(tie) == 0, "a tie goes to the cheaper prompt"
    with pytest.raises(ValueError, match="validation split only"):
        fewshot.select_k(runs.assign(split="test"))
    with pytest.raises(ValueError, match="validation split only"):
        fewshot.select_k(pd.concat([runs, runs.assign(split="test")]))
    with pytest.raises(ValueError, match="say nothing about their split"):
        fewshot.select_k(runs.drop(columns="split"))


def test_lesson04_shortfall_names_what_the_saved_adapter_missed():
    rows = {"majority class": {"accuracy": 0.475}, "untrained model (label scoring)": {"accuracy": 0.30},
            "LoRA (label scoring)": {"accuracy": 0.475}}
    note = fewshot.lesson04_shortfall(rows)
    assert note.startswith("did NOT pass its learning check") and "majority class 0.475" in note
    assert fewshot.lesson04_shortfall({**rows, "LoRA (label scoring)": {"accuracy": 0.80}}) == ""


def _code_cells(lesson):
    import json
    from pathlib import Path

    nb = json.loads((Path(__file__).resolve().parents[1] / "solutions" / lesson / f"{lesson}.ipynb").read_text())
    return ["".join(c["source"]) for c in nb["cells"] if c["cell_type"] == "code"]


def test_lesson05_chooses_k_on_validation_and_scores_test_once():
    """Issue 21 item 1: nothing in lesson 05 is selected on the test split.

    k is chosen once, by fewshot.select_k (which refuses runs not scored on validation); before
    that cell, nothing reads the test split but its sentences (kept out of every prompt); no cell
    picks a maximum of a table by hand."""
    import re

    cells = _code_cells("05_few_shot")
    code = "\n".join(cells)
    assert len(re.findall(r"\bbest_k\s*=(?!=)", code)) == 1, "best_k is assigned once"
    chooser = [i for i, src in enumerate(cells) if re.search(r"\bbest_k\s*=\s*fewshot\.select_k\(", src)]
    assert len(chooser) == 1, "best_k comes from fewshot.select_k"
    argument = re.search(r"fewshot\.select_k\(([^)]*)\)", cells[chooser[0]]).group(1)
    assert "test" not in argument, f"k is chosen on validation runs, not on {argument!r}"
    assert not re.search(r"\.(idxmax|idxmin|nlargest|nsmallest|sort_values)\(|\bargmax\(|\bmax\(\s*per_k", code), \
        "choose with fewshot.select_k on validation runs, not by hand"
    for src in cells[:chooser[0]]:
        for m in re.finditer(r"splits\[[\"']test[\"']\](.{0,12})", src):
            assert m.group(1).startswith('["sentence"]'), f"before k is chosen only the test sentences may be read: {src[:80]!r}"
        assert not re.search(r"\b(y_test|test_rows|test_sentences)\b", src), f"the test split is used before k is chosen: {src[:80]!r}"
        for call in re.findall(r"evaluate_few_shot\(([^\n]*)", src):
            assert "split=\"validation\"" in call and "val_sentences" in call, call
    after = "\n".join(cells[chooser[0]:])
    assert re.search(r"evaluate_few_shot\([^\n]*test_sentences[^\n]*best_k|draw_examples\([^\n]*best_k", after), \
        "the test split is scored for the chosen k"
