"""Multiple-choice questions (MedMCQA): training examples, answer-letter scoring, honest accuracy.

Taught in lesson 07 (students write ``encode_mcq``, ``letter_probabilities`` and
``accuracy_with_ci``; these are the references, with the same names and arguments).

- **Training text** (``encode_mcq``): the chat prompt with the question and the four options
  A-D, then the assistant's answer "Answer: <letter>. <option text>" and the end-of-turn token.
  Only the answer is learned (prompt labels -100). The answer must be *in* the training text: a
  seed tutorial built it and never used it, so its model trained on questions alone.
- **Never cut an option.** An example longer than ``max_length`` has its question *stem*
  shortened (its start dropped: MedMCQA's long stems are case descriptions that end with the
  actual question), never an option and never the answer; ``encode_mcq_split`` counts how many
  were touched.
- **Letter scoring**: the log-likelihood of "Answer: A" ... "Answer: D" after the prompt, all four
  from one forward pass per batch (``utils.evaluation.score_candidates``: "Answer:" is shared, so
  each candidate is one letter token read at the last position). Nothing to parse.
- **Honest numbers**: accuracy with a 95 % Wilson interval, beside "always A" measured on the
  same questions and random guessing (0.25). MedMCQA's test split hides its answers (cop = -1);
  every function that touches a metric refuses such a label, so none can reach a number.

Example:
    >>> accuracy_with_ci([0, 1, 2, 3], [0, 1, 2, 0])
    (0.75, 0.3006..., 0.9544...)
"""

from __future__ import annotations

import torch

from utils.evaluation import answer_ids, score_candidates, wilson_interval
from utils.prompts import (
    IGNORE_INDEX, MCQ_ANSWER_PREFIX, MCQ_LETTERS, chat_ids, check_tokenizer, encode_chat_example, mcq_messages,
)

LETTERS = MCQ_LETTERS                       # cop 0..3 -> A..D
OPTION_COLUMNS = ("opa", "opb", "opc", "opd")
RANDOM_GUESS = 1 / len(LETTERS)             # 0.25
# MedMCQA paper (Pal et al., 2022), test accuracy of its BERT-family baselines (BERT, BioBERT,
# SciBERT, PubMedBERT): 0.33-0.41. A reference from another split and other models, not this run.
PAPER_BASELINES = (0.33, 0.41)
STEM_MARK = "... "                          # put in front of a question stem whose start was dropped


def options_of(row) -> list[str]:
    """The four option texts of a MedMCQA row (columns opa, opb, opc, opd), in A-D order."""
    missing = [c for c in OPTION_COLUMNS if c not in row]
    if missing:
        raise ValueError(f"This row lacks the option column(s) {missing}; a MedMCQA row has {list(OPTION_COLUMNS)}.")
    return [row[c] for c in OPTION_COLUMNS]


def answer_index(cop) -> int:
    """The correct option's index 0..3 from MedMCQA's `cop`; a hidden answer (-1) is refused."""
    if isinstance(cop, bool) or not isinstance(cop, int) or not 0 <= cop < len(LETTERS):
        raise ValueError(f"cop = {cop!r} is not an answer 0..3: MedMCQA's test split hides its answers (cop = -1), "
                         "so it can be neither trained on nor scored; use the validation split.")
    return cop


def check_labels(y_true) -> list[int]:
    """The labels as ints, after checking every one is an answer 0..3 (no hidden -1 reaches a metric)."""
    labels = [int(y) for y in y_true]
    bad = [(i, y) for i, y in enumerate(labels) if not 0 <= y < len(LETTERS)]
    if bad:
        i, y = bad[0]
        raise ValueError(f"Label {y} at position {i} (and {len(bad) - 1} more) is not an answer 0..3: cop = -1 marks "
                         "a hidden answer (MedMCQA's test split), which would count every prediction as wrong. "
                         "Evaluate on the validation split.")
    return labels


def shorten_stem(tokenizer, question: str, max_tokens: int) -> str:
    """The question's last `max_tokens` tokens, marked with a leading "... " (unchanged if it fits).

    The end is kept because a long MedMCQA stem is a case description that ends with the question.

    Example (the output depends on the tokenizer; this is Llama-3's):
        >>> shorten_stem(tokenizer, "A 40-year-old man has fever and cough. The most likely cause is:", 6)
        '... The most likely cause is:'
    """
    ids = tokenizer(question, add_special_tokens=False)["input_ids"]
    if len(ids) <= max_tokens:
        return question
    if max_tokens < 1:
        raise ValueError("The question stem cannot be shortened to nothing.")
    return STEM_MARK + tokenizer.decode(ids[-max_tokens:]).strip()


def encode_mcq(tokenizer, row: dict, max_length: int) -> dict:
    """One MedMCQA row as a training example whose labels learn only "Answer: <L>. <option>" + end of turn.

    Returns ``input_ids``, ``labels`` (-100 on the prompt), ``prompt_len`` (``input_ids[:prompt_len]``
    is the inference prompt) and ``shortened`` (True when the question stem was cut to fit
    `max_length`). The options and the answer are never cut: if they alone do not fit, a
    ValueError says to raise max_length.
    """
    options, answer = options_of(row), answer_index(row["cop"])
    messages = mcq_messages(row["question"], options, answer)        # refuses an empty question or option
    question = row["question"].strip()
    example = encode_chat_example(tokenizer, messages)
    n_stem, shortened = len(tokenizer(question, add_special_tokens=False)["input_ids"]), False
    while len(example["input_ids"]) > max_length:        # a few rounds at most: each drops the excess
        n_stem -= len(example["input_ids"]) - max_length
        if n_stem < 1:
            raise ValueError(f"The four options and the answer alone need more than max_length={max_length} tokens; "
                             "raise max_length (an option is never cut, so this example cannot be shortened).")
        example = encode_chat_example(tokenizer, mcq_messages(shorten_stem(tokenizer, question, n_stem), options, answer))
        shortened = True
    prompt_len = next(i for i, label in enumerate(example["labels"]) if label != IGNORE_INDEX)
    return {**example, "prompt_len": prompt_len, "shortened": shortened}


def encode_mcq_split(tokenizer, ds, max_length: int):
    """Encode a MedMCQA split with ``encode_mcq``; returns (datasets.Dataset, report).

    Rows: input_ids, labels, prompt_len, cop, subject_name, n_tokens (the length before any
    shortening). The report counts the examples, how many exceeded max_length, how many had their
    stem shortened, how many could not fit at all (skipped: their options alone are too long) and
    how many had an empty question or option (skipped). A split with hidden answers (cop = -1) is
    refused.
    """
    import datasets

    check_tokenizer(tokenizer)
    check_labels(ds["cop"])
    rows, report = [], {"examples": 0, "over_max_length": 0, "shortened": 0, "skipped_too_long": 0,
                        "skipped_empty": 0, "longest": 0}
    for row in ds:
        try:
            messages = mcq_messages(row["question"], options_of(row), row["cop"])
        except (TypeError, ValueError):           # an empty or missing question or option: nothing to learn
            report["skipped_empty"] += 1
            continue
        n_tokens = len(chat_ids(tokenizer, messages))
        report["over_max_length"] += n_tokens > max_length
        try:
            example = encode_mcq(tokenizer, row, max_length)
        except ValueError:
            if n_tokens <= max_length:
                raise
            report["skipped_too_long"] += 1
            continue
        report["shortened"] += example.pop("shortened")
        report["longest"] = max(report["longest"], len(example["input_ids"]))
        rows.append({**example, "cop": row["cop"], "subject_name": row.get("subject_name") or "unknown",
                     "n_tokens": n_tokens})
    report["examples"] = len(rows)
    if not rows:
        raise ValueError(f"No example fits max_length={max_length}: raise it.")
    return datasets.Dataset.from_list(rows), report


def prompts_of(ds) -> list[list[int]]:
    """The inference prompts of an encoded split: each example's input_ids up to its prompt_len."""
    return [ids[:n] for ids, n in zip(ds["input_ids"], ds["prompt_len"])]


def letter_candidates(tokenizer) -> list[list[int]]:
    """Token ids of "Answer: A" ... "Answer: D" exactly as the chat template writes the assistant's answer."""
    base = mcq_messages("x", ["a", "b", "c", "d"])
    return [answer_ids(tokenizer, base + [{"role": "assistant", "content": MCQ_ANSWER_PREFIX + letter}])
            for letter in LETTERS]


def letter_token_ids(tokenizer) -> tuple[list[int], list[int]]:
    """(the shared "Answer:" prefix ids, the one token id of each letter after it).

    Refused when a letter is not a single token after the prefix (then only
    ``evaluation.score_candidates`` can score the candidates); it is one token for the course's
    tiny tokenizer and for Llama-3's.
    """
    candidates = letter_candidates(tokenizer)
    prefix = candidates[0][:-1]
    if any(c[:-1] != prefix for c in candidates) or len({c[-1] for c in candidates}) != len(LETTERS):
        raise ValueError("The letters are not single, distinct tokens after the shared 'Answer:' prefix with this "
                         "tokenizer; score them with utils.evaluation.score_candidates instead.")
    return prefix, [c[-1] for c in candidates]


def letter_probabilities(logits: torch.Tensor, letter_ids: list[int]) -> torch.Tensor:
    """P(A), P(B), P(C), P(D): a softmax over the four letters' logits only. (N, V) -> (N, 4) float32.

    `logits` are the model's next-token logits at the position where the letter comes. Every
    other token of the vocabulary is ignored, so the four numbers sum to 1.

    Example:
        >>> letter_probabilities(torch.tensor([[0.0, 2.0, 0.0, 0.0, 9.0]]), [0, 1, 2, 3]).round(decimals=3)
        tensor([[0.0960, 0.7110, 0.0960, 0.0960]])
    """
    if not isinstance(logits, torch.Tensor) or logits.dim() != 2:
        raise ValueError("logits must be a (N, vocab) tensor: one row of next-token logits per question.")
    if len(letter_ids) != len(LETTERS):
        raise ValueError(f"Give the token ids of the {len(LETTERS)} letters A-D, got {len(letter_ids)}.")
    return logits[:, list(letter_ids)].float().softmax(dim=-1)          # (N, 4)


@torch.no_grad()
def score_letters(model, tokenizer, prompts: list[list[int]], batch_size: int = 16) -> torch.Tensor:
    """P(A..D) for each prompt, (N, 4): the four answers' log-likelihoods in one forward pass per batch, softmaxed."""
    scores = score_candidates(model, prompts, letter_candidates(tokenizer), tokenizer.pad_token_id, batch_size)
    return scores.softmax(dim=-1)


def accuracy_with_ci(y_true, y_pred, z: float = 1.96) -> tuple[float, float, float]:
    """(accuracy, low, high): the share of correct answers with its Wilson score interval (95 % for z = 1.96).

    Labels must be answers 0..3: a hidden answer (-1) is refused, so it never reaches the number.

    Example:
        >>> accuracy_with_ci([0] * 100, [0] * 31 + [1] * 69)
        (0.31, 0.2278..., 0.4062...)
    """
    y_true = check_labels(y_true)
    y_pred = [int(p) for p in y_pred]
    if len(y_true) != len(y_pred):
        raise ValueError(f"{len(y_true)} answers but {len(y_pred)} predictions: they must pair up.")
    if not y_true:
        raise ValueError("No questions to score.")
    correct = sum(t == p for t, p in zip(y_true, y_pred))
    low, high = wilson_interval(correct, len(y_true), z)
    return correct / len(y_true), low, high


def always(letter: str, n: int) -> list[int]:
    """The "always <letter>" baseline's predictions for n questions."""
    return [LETTERS.index(letter)] * n


CI_LOW, CI_HIGH = "95 % CI (Wilson): low", "95 % CI (Wilson): high"


def results_table(y_true, predictions: dict) -> "pd.DataFrame":
    """One row per model measured here: n, accuracy and its 95 % Wilson interval; plus random guessing (0.25).

    Only numbers measured on `y_true` sit in the interval columns. Published results of other
    models on another split are a different kind of number: ``reference_table`` holds them.

    Example:
        >>> list(results_table([0, 1], {"always A": [0, 0]}).columns)
        ['n', 'accuracy', '95 % CI (Wilson): low', '95 % CI (Wilson): high']
    """
    import pandas as pd

    rows = []
    for name, pred in predictions.items():
        acc, low, high = accuracy_with_ci(y_true, pred)
        rows.append({"model": name, "n": len(pred), "accuracy": acc, CI_LOW: low, CI_HIGH: high})
    rows.append({"model": "random guessing (expected)", "n": None, "accuracy": RANDOM_GUESS})
    table = pd.DataFrame(rows, columns=["model", "n", "accuracy", CI_LOW, CI_HIGH]).set_index("model")
    table["n"] = table["n"].astype("Int64")
    return table


def reference_table() -> "pd.DataFrame":
    """Published MedMCQA results to read beside this run: a spread of other models' scores, not an interval.

    The paper's BERT-family baselines (BERT, BioBERT, SciBERT, PubMedBERT) score 0.33 to 0.41 on the
    test split, whose answers are hidden here: another split and other models, so compare orders of
    magnitude only.
    """
    import pandas as pd

    low, high = PAPER_BASELINES
    return pd.DataFrame([{"reference": "BERT-family baselines, MedMCQA paper (Pal et al., 2022)", "split": "test",
                          "lowest model's accuracy": low, "highest model's accuracy": high}]).set_index("reference")


def per_subject(subjects, y_true, predictions: dict) -> "pd.DataFrame":
    """Questions and accuracy per subject for each model, largest subjects first."""
    import pandas as pd

    y_true = check_labels(y_true)
    frame = pd.DataFrame({"subject": list(subjects), "key": y_true})
    for name, pred in predictions.items():
        frame[name] = [int(p) == t for p, t in zip(pred, y_true)]
    table = frame.groupby("subject").agg(questions=("key", "size"), **{name: (name, "mean") for name in predictions})
    return table.sort_values("questions", ascending=False)


def letter_figure(y_true, predictions: dict, title: str):
    """Share of each letter A-D: the answer key and each model's predictions (small models favour one letter)."""
    import matplotlib.pyplot as plt
    import numpy as np

    series = {"answer key": check_labels(y_true), **predictions}
    fig, ax = plt.subplots(figsize=(6.4, 3.4))
    width = 0.8 / len(series)
    for k, (name, values) in enumerate(series.items()):
        counts = np.bincount([int(v) for v in values], minlength=len(LETTERS))
        ax.bar(np.arange(len(LETTERS)) + (k - (len(series) - 1) / 2) * width, 100 * counts / max(1, len(values)),
               width, label=name, hatch="//" if name == "answer key" else None, alpha=0.9)
    ax.axhline(100 * RANDOM_GUESS, color="grey", ls=":", lw=1, label="uniform (25 %)")
    ax.set_xticks(range(len(LETTERS)), list(LETTERS))
    ax.set(xlabel="answer letter", ylabel="share of questions (%)", title=title)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def accuracy_figure(table, title: str):
    """Accuracy with its 95 % interval per model, random guessing as a line, the paper's range as a band."""
    import matplotlib.pyplot as plt

    measured = table[table["n"].notna()]
    fig, ax = plt.subplots(figsize=(6.4, 0.55 * len(measured) + 1.6))
    y = range(len(measured))
    ax.errorbar(measured["accuracy"], y, xerr=[measured["accuracy"] - measured[CI_LOW],
                                                measured[CI_HIGH] - measured["accuracy"]],
                fmt="o", capsize=4, color="tab:blue", label="this run (95 % CI)")
    ax.axvline(RANDOM_GUESS, color="grey", ls=":", label="random guessing (0.25)")
    ax.axvspan(*PAPER_BASELINES, color="tab:orange", alpha=0.2, label="reference: BERT-family models' range, paper (test)")
    ax.set_yticks(list(y), list(measured.index))
    ax.set(xlim=(0, 1), xlabel="accuracy (share of questions answered correctly)", title=title)
    ax.invert_yaxis()
    ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    return fig


@torch.no_grad()
def answer(model, tokenizer, question: str, options, key: int | None = None) -> "pd.DataFrame":
    """Answer one question: the chosen letter and P(A..D) from one forward pass (``letter_probabilities``).

    With `key` (the correct index, checked against a source, never copied from a model), the table
    also says whether the model is right.
    """
    import pandas as pd

    prefix, letter_ids = letter_token_ids(tokenizer)
    ids = chat_ids(tokenizer, mcq_messages(question, options), add_generation_prompt=True) + prefix
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    logits = model(input_ids=torch.tensor([ids], device=device)).logits[:, -1].cpu()    # (1, V)
    model.train(was_training)
    probs = letter_probabilities(logits, letter_ids)[0]
    row = {"answer": LETTERS[int(probs.argmax())], **{f"P({x})": round(float(p), 3) for x, p in zip(LETTERS, probs)}}
    if key is not None:
        row.update(key=LETTERS[answer_index(key)], correct=row["answer"] == LETTERS[key])
    return pd.DataFrame([row], index=[question if len(question) <= 60 else question[:57] + "..."])
