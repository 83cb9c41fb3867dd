"""Few-shot prompting and a cheap classic baseline for UIT-VSFC (taught in lesson 05).

- ``balanced_examples``: k training examples spread evenly over the labels, drawn with a seed
  (students write their own in lesson 05; this is the reference).
- ``few_shot_messages``: the chat for one sentence with k solved examples before it, each a
  user turn (the lesson 04 instruction) and an assistant turn ("Sentiment: <label>"); it refuses
  a repeated example and an example that is the sentence itself (its label would leak).
- ``draw_examples`` / ``few_shot_prompts``: examples from the TRAIN split only (never a sentence
  that is also being evaluated) and the token-id prompts that ``evaluation.score_candidates`` and
  ``evaluation.generate`` take.
- ``evaluate_few_shot``: one (k, draw) evaluated both ways, with prompt length and time.
- ``select_k``: the best k by mean score over draws, on validation runs only (test is
  scored once, for the chosen k).
- ``lesson04_shortfall``: whether lesson 04's saved adapter cleared its learning check's bar.
- ``tfidf_baseline``: TF-IDF word 1-2-grams + char_wb 2-5-grams with logistic regression
  (scikit-learn), the baseline every LLM result should be put beside.

Example:
    >>> balanced_examples([0, 0, 0, 1, 1, 2, 2, 2], 3, seed=0).__len__()
    3
    >>> sorted([0, 0, 0, 1, 1, 2, 2, 2][i] for i in balanced_examples([0, 0, 0, 1, 1, 2, 2, 2], 3, seed=0))
    [0, 1, 2]
"""

from __future__ import annotations

import random
import time

from utils import prompts

# utils.evaluation (torch) is imported inside the scoring function: building prompts stays light.


LABELS = ("negative", "neutral", "positive")


def balanced_examples(train_labels, k: int, seed: int = 0) -> list[int]:
    """Indices of k distinct training examples, as evenly spread over the labels as the data allow (lesson 05).

    Labels take turns (in a seeded order) until k are chosen; a label that runs out drops out.
    The returned order is shuffled with the same seed, so the last example's label varies.

    Example:
        >>> len(set(balanced_examples([0, 1, 2] * 5, 6, seed=1)))
        6
    """
    labels = [int(y) for y in train_labels]
    if not isinstance(k, int) or k < 0:
        raise ValueError(f"k must be a non-negative integer, got {k!r}.")
    if k > len(labels):
        raise ValueError(f"Cannot choose {k} distinct examples from {len(labels)} training sentences.")
    rng = random.Random(seed)
    pools = {y: [i for i, label in enumerate(labels) if label == y] for y in sorted(set(labels))}
    for pool in pools.values():
        rng.shuffle(pool)
    order = list(pools)
    rng.shuffle(order)
    chosen: list[int] = []
    while len(chosen) < k:
        for y in order:
            if pools[y] and len(chosen) < k:
                chosen.append(pools[y].pop())
    rng.shuffle(chosen)
    return chosen


def few_shot_messages(sentence: str, examples, labels=LABELS) -> list[dict]:
    """System message, then for each (sentence, label) example a user turn and the assistant's answer,
    then the sentence to classify as the last user turn (lesson 05).

    With no examples it is lesson 04's zero-shot prompt. A repeated example, or an example that is
    the sentence to classify (a leaked label), is refused.

    Example:
        >>> [m["role"] for m in few_shot_messages("ok .", [("cô dạy hay .", 2)])]
        ['system', 'user', 'assistant', 'user']
    """
    query = prompts.check_text(sentence)
    seen: dict[str, int] = {}
    messages = prompts.sentiment_messages(query, None, labels)[:1]
    for i, (text, label) in enumerate(examples):
        text = prompts.check_text(text, f"example {i}")
        if text == query:
            raise ValueError(f"Example {i} is the sentence being classified: its label would leak into the prompt; "
                             "draw examples from the training split only.")
        if text in seen:
            raise ValueError(f"Example {i} repeats example {seen[text]}: each example must be a different sentence.")
        seen[text] = i
        messages += prompts.sentiment_messages(text, label, labels)[1:]
    return messages + prompts.sentiment_messages(query, None, labels)[1:]


def draw_examples(train_ds, k: int, seed: int = 0, avoid=()) -> list[tuple[str, int]]:
    """k balanced (sentence, label) examples from a TRAIN split, never a sentence listed in `avoid`
    (the sentences under evaluation) and never the same sentence twice (lesson 05)."""
    avoid = {s.strip() for s in avoid if isinstance(s, str)}
    eligible, seen = [], set()
    for i, sentence in enumerate(train_ds["sentence"]):
        text = sentence.strip() if isinstance(sentence, str) else ""
        if text and text not in avoid and text not in seen:
            seen.add(text)
            eligible.append(i)
    labels = [train_ds["sentiment"][i] for i in eligible]
    return [(train_ds["sentence"][eligible[j]].strip(), int(labels[j])) for j in balanced_examples(labels, k, seed)]


def few_shot_prompts(tokenizer, sentences, examples, labels=LABELS) -> list[list[int]]:
    """Token-id prompts (chat template + generation prompt) for each sentence with the same examples (lesson 05)."""
    return [prompts.chat_ids(tokenizer, few_shot_messages(s, examples, labels), add_generation_prompt=True)
            for s in sentences]


def evaluate_few_shot(model, tokenizer, sentences, y_true, examples, labels=LABELS, batch_size: int = 16,
                      max_new_tokens: int = 8, split: str | None = None) -> dict:
    """Evaluate one set of examples by label scoring and by generation; metrics, prompt length and time (lesson 05).

    Returns a flat dict: k, split (the name given: ``select_k`` accepts only "validation"),
    prompt_tokens (mean), seconds_scoring, seconds_generation, and accuracy / macro_f1 for both
    methods, plus generation's unparseable rate and first reply.
    """
    from utils import evaluation

    ids = few_shot_prompts(tokenizer, sentences, examples, labels)
    candidates = evaluation.sentiment_candidates(tokenizer, labels)
    start = time.perf_counter()
    scored = evaluation.score_candidates(model, ids, candidates, tokenizer.pad_token_id, batch_size).argmax(-1).tolist()
    mid = time.perf_counter()
    replies = evaluation.generate(model, tokenizer, ids, max_new_tokens=max_new_tokens, batch_size=batch_size)
    end = time.perf_counter()
    by_scoring = evaluation.classification_metrics(y_true, scored, labels)
    by_generation = evaluation.classification_metrics(y_true, [evaluation.parse_label(r, labels) for r in replies], labels)
    return {"k": len(examples), "split": split, "prompt_tokens": sum(map(len, ids)) / len(ids),
            "seconds_scoring": mid - start, "seconds_generation": end - mid,
            "accuracy": by_scoring["accuracy"], "macro_f1": by_scoring["macro_f1"],
            "gen_accuracy": by_generation["accuracy"], "gen_macro_f1": by_generation["macro_f1"],
            "unparseable_rate": by_generation["unparseable_rate"], "first_reply": replies[0] if replies else ""}


def select_k(runs, metric: str = "macro_f1") -> int:
    """The k whose mean `metric` over draws is highest, chosen on VALIDATION runs only (lesson 05).

    `runs` holds one row per (k, draw) as ``evaluate_few_shot`` returns it, with a ``split``
    column. A run scored on any other split is refused: choosing k on the test sentences and then
    reporting their score for that k measures the choice, not the prompt. Ties go to the smaller k
    (the cheaper prompt).

    Example:
        >>> import pandas as pd
        >>> select_k(pd.DataFrame({"k": [0, 2, 2], "split": "validation", "macro_f1": [0.2, 0.3, 0.5]}))
        2
    """
    if "split" not in runs.columns:
        raise ValueError("The runs say nothing about their split: evaluate on validation and add split='validation'.")
    splits = sorted(set(runs["split"]))
    if splits != ["validation"]:
        raise ValueError(f"select_k chooses on the validation split only, and these runs come from {splits}: "
                         "evaluate every k on validation, choose there, then score the chosen k on test once.")
    means = runs.groupby("k")[metric].mean()
    return int(means[means == means.max()].index.min())


# Lesson 04's learning check (utils.checks.sentiment_learning) is saved with its rows as
# "learning check": {"missed": [...]}; rows saved before it existed are read against its accuracy bars.
LESSON04_MARGINS = {"untrained model (label scoring)": 0.1, "majority class": 0.05}


def lesson04_shortfall(rows: dict) -> str:
    """Empty if lesson 04's saved run passed its learning check, else one sentence saying what it missed (lesson 05).

    `rows` are the rows lesson 04 saved (``results.load("04_lora_sentiment", profile)["rows"]``).

    Example:
        >>> lesson04_shortfall({"LoRA (label scoring)": {"accuracy": 0.5}, "majority class": {"accuracy": 0.5},
        ...                     "untrained model (label scoring)": {"accuracy": 0.3}})
        'did NOT pass its learning check: accuracy 0.500, majority class 0.500 (needs +0.05)'
        >>> lesson04_shortfall({"LoRA (label scoring)": {"accuracy": 0.7},
        ...                     "learning check": {"missed": ["label NLL, below 0.80 x prior NLL"]}})
        'did NOT pass its learning check: accuracy 0.700, label NLL, below 0.80 x prior NLL'
    """
    lora_acc = rows["LoRA (label scoring)"]["accuracy"]
    if "learning check" in rows:
        missed = list(rows["learning check"].get("missed", []))
    else:
        missed = [f"{name.split(' (')[0]} {rows[name]['accuracy']:.3f} (needs +{margin:g})"
                  for name, margin in LESSON04_MARGINS.items()
                  if name in rows and not lora_acc > rows[name]["accuracy"] + margin]
    return f"did NOT pass its learning check: accuracy {lora_acc:.3f}, " + ", ".join(missed) if missed else ""


def tfidf_baseline(seed: int = 0):
    """An unfitted scikit-learn pipeline: TF-IDF word 1-2-grams + char_wb 2-5-grams, then logistic regression (lesson 05).

    Reference, not computed offline: fitted on the real UIT-VSFC train split and scored on its test
    split (3,166 sentences), this pipeline gives accuracy 0.894 and macro F1 0.693 (measured with
    the hub's data by the reporter of the course's issue 15, about 14 s on a 2-core CPU). The course
    cannot recompute it offline; lesson 05 fits the same pipeline live on the data its profile loads.

    Example:
        >>> model = tfidf_baseline().fit(["hay quá", "chán quá", "hay lắm", "chán lắm"], [2, 0, 2, 0])
        >>> model.predict(["hay"]).tolist()
        [2]
    """
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline, make_union

    features = make_union(TfidfVectorizer(analyzer="word", ngram_range=(1, 2), sublinear_tf=True),
                          TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 5), sublinear_tf=True))
    return make_pipeline(features, LogisticRegression(max_iter=2000, random_state=seed))


def score_vs_k_figure(draws, title: str, reference: dict | None = None, baselines: dict | None = None):
    """Accuracy and macro F1 against k (mean with min-max error bars over draws), both methods (lesson 05).

    `draws` is a DataFrame with one row per (k, draw) as ``evaluate_few_shot`` returns; `reference`
    maps k to (accuracy, macro F1) from elsewhere (drawn hollow, labelled); `baselines` maps a
    name to (accuracy, macro F1) drawn as horizontal lines.
    """
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(10, 3.6), sharey=True)
    for ax, (metric, gen_metric, name) in zip(axes, [("accuracy", "gen_accuracy", "accuracy"),
                                                     ("macro_f1", "gen_macro_f1", "macro F1")]):
        for column, label, marker in ((metric, "label scoring", "o-"), (gen_metric, "generation", "s--")):
            stats = draws.groupby("k")[column].agg(["mean", "min", "max"])
            ax.errorbar(stats.index, stats["mean"], yerr=[stats["mean"] - stats["min"], stats["max"] - stats["mean"]],
                        fmt=marker, capsize=4, label=f"{label} (this run)")
        if reference:
            ks = sorted(reference)
            ax.plot(ks, [reference[k][0 if metric == "accuracy" else 1] for k in ks], "D", mfc="none", color="grey",
                    label="reference: seed tutorial (GPU, 1 draw)")
        for i, (base, values) in enumerate((baselines or {}).items()):
            ax.axhline(values[0 if metric == "accuracy" else 1], ls=":", color=f"C{i + 2}", label=base)
        ax.set(xlabel="examples in the prompt (k)", ylabel=name, ylim=(-0.02, 1.02),
               xticks=sorted(set(draws["k"]) | set(reference or {})))
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=7, loc="lower right")
    fig.suptitle(title)
    fig.tight_layout()
    return fig
