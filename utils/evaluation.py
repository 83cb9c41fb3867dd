"""Evaluating a causal LM as a classifier, correctly: label scoring, generation, metrics; and translation metrics.

Taught in lesson 04 and reused by lessons 05-07; lesson 08 scores translations (the last section).

- A causal LM's logits at position i predict token i+1. Comparing ``argmax(logits)[i]`` with
  ``labels[i]`` (a seed tutorial's ``compute_metrics``) is off by one; ``next_token_accuracy``
  shifts first.
- **Label scoring** (``score_candidates``): the log-likelihood of each candidate answer after the
  prompt, for all candidates in one forward pass per batch; the prediction is the best one. No
  generation, no parsing, nothing unparseable.
- **Generation** (``generate``): greedy decoding, parsed by ``parse_label``; replies that name no
  label (or several) are counted as unparseable and reported, never replaced by a guess.
- ``classification_metrics``: accuracy, macro F1, per-class precision / recall / F1 with
  scikit-learn (``evaluate.load`` needs the hub).
- **Translation** (lesson 08): ``translation_scores`` gives corpus BLEU with sacreBLEU's signature
  and a bootstrap 95 % interval, chrF and ROUGE-L (rouge-score); ``corpus_bleu_from_tokens`` is
  corpus BLEU from n-gram counts, the reference of lesson 08's exercise.

Example:
    >>> import torch
    >>> logits = torch.zeros(1, 3, 5); logits[0, 0, 7 % 5] = 1; logits[0, 1, 3] = 1
    >>> next_token_accuracy(logits, torch.tensor([[-100, 2, 3]]))
    1.0
"""

from __future__ import annotations

import math
import re

import torch

from utils.prompts import IGNORE_INDEX, chat_ids, prompt_ids, sentiment_messages


def next_token_accuracy(logits: torch.Tensor, labels: torch.Tensor) -> float:
    """Share of labelled tokens that the model predicts, with the causal shift (logits[i] -> labels[i+1]).

    logits (B, T, V), labels (B, T) with -100 where there is nothing to predict.
    """
    predictions = logits[:, :-1].argmax(dim=-1)        # (B, T-1): guesses for tokens 1..T-1
    targets = labels[:, 1:]                            # (B, T-1)
    mask = targets != IGNORE_INDEX
    if not mask.any():
        raise ValueError("No labelled token in this batch: every label is -100.")
    return (predictions[mask] == targets[mask]).float().mean().item()


def answer_ids(tokenizer, answer_messages: list[dict]) -> list[int]:
    """Token ids of the assistant's answer exactly as the chat template writes it, without end-of-turn."""
    prompt = chat_ids(tokenizer, answer_messages[:-1], add_generation_prompt=True)
    full = chat_ids(tokenizer, answer_messages)
    if full[:len(prompt)] != prompt:
        raise ValueError("The chat template renders the prompt differently inside the conversation; "
                         "candidates cannot be cut out of it.")
    ids = full[len(prompt):]
    # The answer ends at the end-of-turn token; ChatML templates (SmolLM2) write "\n" after it
    # ("<|im_end|>\n"), so everything from that token on is cut, not only a final one.
    vocab = tokenizer.get_vocab()
    ends = {tokenizer.eos_token_id, vocab.get("<|eot_id|>"), vocab.get("<|im_end|>")} - {None}
    return ids[:next((i for i, t in enumerate(ids) if t in ends), len(ids))]


def _left_pad(sequences: list[list[int]], pad_id: int, device) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(input_ids, attention_mask, position_ids), each (N, T), padded on the left so every sequence ends at T-1."""
    width = max(map(len, sequences))
    ids = torch.full((len(sequences), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(sequences), width), dtype=torch.long)
    for i, seq in enumerate(sequences):
        ids[i, width - len(seq):] = torch.as_tensor(seq)
        mask[i, width - len(seq):] = 1
    positions = (mask.cumsum(dim=1) - 1).clamp(min=0)   # real tokens at 0, 1, 2... whatever the padding
    return ids.to(device), mask.to(device), positions.to(device)


@torch.no_grad()
def score_candidates(model, prompts: list[list[int]], candidates: list[list[int]], pad_token_id: int,
                     batch_size: int = 16) -> torch.Tensor:
    """Log-likelihood of each candidate continuation after each prompt: a (len(prompts), len(candidates)) tensor.

    Candidates sharing a common first part (e.g. "Sentiment: ") have it moved into the prompt, since
    it scores the same for all. When what is left is one token per candidate, one forward pass over
    the prompts reads all candidates from the last position; otherwise every (prompt, candidate)
    pair goes into one padded batch. Sequences are left-padded with explicit position ids, so the
    padding changes nothing.
    """
    if not candidates or any(len(c) == 0 for c in candidates):
        raise ValueError("Every candidate answer needs at least one token.")
    shared = 0
    while all(len(c) > shared + 1 for c in candidates) and len({c[shared] for c in candidates}) == 1:
        shared += 1
    prefix, tails = candidates[0][:shared], [c[shared:] for c in candidates]
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    out = []
    for start in range(0, len(prompts), batch_size):
        batch = [list(p) + prefix for p in prompts[start:start + batch_size]]
        if all(len(t) == 1 for t in tails):
            ids, mask, pos = _left_pad(batch, pad_token_id, device)
            logits = model(input_ids=ids, attention_mask=mask, position_ids=pos, logits_to_keep=1).logits[:, -1]  # (B, V)
            out.append(logits.float().log_softmax(-1)[:, [t[0] for t in tails]].cpu())
            continue
        longest = max(map(len, tails))
        pairs = [p + t for p in batch for t in tails]                              # B * C sequences
        ids, mask, pos = _left_pad(pairs, pad_token_id, device)
        logits = model(input_ids=ids, attention_mask=mask, position_ids=pos, logits_to_keep=longest + 1).logits
        logprobs = logits[:, :-1].float().log_softmax(-1)                          # (B*C, longest, V)
        # each tail fills the last len(tail) positions; the logits one step earlier predict them
        targets = torch.zeros((len(tails), longest), dtype=torch.long)             # (C, longest), right-aligned
        valid = torch.zeros((len(tails), longest))
        for c, tail in enumerate(tails):
            targets[c, longest - len(tail):] = torch.tensor(tail)
            valid[c, longest - len(tail):] = 1
        targets, valid = targets.repeat(len(batch), 1).to(device), valid.repeat(len(batch), 1).to(device)
        scores = (logprobs.gather(2, targets[:, :, None]).squeeze(-1) * valid).sum(1).cpu()   # (B*C,)
        out.append(scores.reshape(len(batch), len(tails)))
    model.train(was_training)
    return torch.cat(out)


@torch.no_grad()
def generate(model, tokenizer, prompts: list[list[int]], max_new_tokens: int = 8, batch_size: int = 16) -> list[str]:
    """Greedy replies to token-id prompts (left-padded, as generation needs), decoded without special tokens."""
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    stop = [i for i in {tokenizer.eos_token_id, tokenizer.convert_tokens_to_ids("<|eot_id|>")} if i is not None]
    replies = []
    for start in range(0, len(prompts), batch_size):
        ids, mask, _ = _left_pad([list(p) for p in prompts[start:start + batch_size]], tokenizer.pad_token_id, device)
        out = model.generate(input_ids=ids, attention_mask=mask, max_new_tokens=max_new_tokens, do_sample=False,
                             pad_token_id=tokenizer.pad_token_id, eos_token_id=stop)
        replies += tokenizer.batch_decode(out[:, ids.shape[1]:], skip_special_tokens=True)
    model.train(was_training)
    return replies


def parse_label(text: str, labels) -> int | None:
    """The index of the one label a reply names ("Sentiment: positive", "positive."), else None.

    None when the reply names no label or more than one: such replies are counted as
    unparseable, never silently mapped to a label.

    Example:
        >>> parse_label(" Sentiment: Negative", ["negative", "neutral", "positive"])
        0
    """
    words = set(re.findall(r"[a-zà-ỹđ]+", str(text).lower()))
    found = [i for i, label in enumerate(labels) if label.lower() in words]
    return found[0] if len(found) == 1 else None


def classification_metrics(y_true, y_pred, labels) -> dict:
    """Accuracy, macro F1, macro precision / recall, per-class table and unparseable rate.

    `y_pred` may hold None (an unparseable reply): it counts as wrong for every metric.
    """
    import pandas as pd
    from sklearn.metrics import accuracy_score, precision_recall_fscore_support

    y_true = [int(y) for y in y_true]
    if len(y_true) != len(y_pred):
        raise ValueError(f"{len(y_true)} true labels but {len(y_pred)} predictions.")
    if not y_true:
        raise ValueError("No examples to evaluate.")
    unparseable = sum(p is None for p in y_pred)
    pred = [-1 if p is None else int(p) for p in y_pred]        # -1 matches no class: always wrong
    ids = list(range(len(labels)))
    p, r, f, s = precision_recall_fscore_support(y_true, pred, labels=ids, zero_division=0)
    pm, rm, fm, _ = precision_recall_fscore_support(y_true, pred, labels=ids, average="macro", zero_division=0)
    per_class = pd.DataFrame({"precision": p, "recall": r, "f1": f, "support": s}, index=list(labels))
    return {"n": len(y_true), "accuracy": accuracy_score(y_true, pred), "macro_f1": fm, "macro_precision": pm,
            "macro_recall": rm, "unparseable_rate": unparseable / len(y_true), "per_class": per_class}


def summary_row(name: str, metrics: dict) -> dict:
    """One row for a results table (the per-class table left out)."""
    return {"model": name, **{k: v for k, v in metrics.items() if k != "per_class"}}


def confusion_figure(y_true, y_pred, labels, title: str):
    """A confusion-matrix figure (rows true, columns predicted; an extra column for unparseable replies)."""
    import matplotlib.pyplot as plt
    import numpy as np

    n = len(labels)
    has_none = any(p is None for p in y_pred)
    counts = np.zeros((n, n + has_none), dtype=int)
    for t, p in zip(y_true, y_pred):
        counts[int(t), n if p is None else int(p)] += 1
    fig, ax = plt.subplots(figsize=(4.2 + has_none, 3.6))
    ax.imshow(counts, cmap="Blues")
    cols = list(labels) + (["unparseable"] if has_none else [])
    ax.set_xticks(range(len(cols)), cols, rotation=30)
    ax.set_yticks(range(n), labels)
    for i in range(n):
        for j in range(len(cols)):
            ax.text(j, i, counts[i, j], ha="center", va="center",
                    color="white" if counts[i, j] > counts.max() / 2 else "black")
    ax.set(xlabel="predicted", ylabel="true", title=title)
    fig.tight_layout()
    return fig


def majority_baseline(train_labels, n_eval: int) -> list[int]:
    """Predict the most frequent training label for every evaluation example."""
    from collections import Counter

    if not len(train_labels):
        raise ValueError("No training labels to take the majority from.")
    return [Counter(int(y) for y in train_labels).most_common(1)[0][0]] * n_eval


def label_nll(scores: torch.Tensor, y_true) -> float:
    """Mean negative log-likelihood (nats) of the true label's answer: ``-scores[i, y_i]`` averaged.

    `scores` is ``score_candidates``' (N, C) tensor of log-probabilities over the whole vocabulary,
    so this measures what the model learned about the *label*, unlike trl's training loss and
    token accuracy, which average over the answer's constant tokens ("Sentiment", ":", end of turn).
    """
    y = torch.as_tensor(list(y_true), dtype=torch.long)
    if scores.ndim != 2 or len(y) != scores.shape[0] or len(y) == 0:
        raise ValueError(f"label_nll needs one score row per label: got scores {tuple(scores.shape)} and {len(y)} labels.")
    return -scores.float().gather(1, y[:, None]).mean().item()


def prior_nll(train_labels, y_true, n_classes: int) -> float:
    """The label NLL of a model that knows only the training label frequencies (add-one smoothed).

    A model that learned the answer format and the class balance but nothing about the sentence
    reaches this; one that reads the sentence goes clearly below it.
    """
    from collections import Counter

    counts = Counter(int(v) for v in train_labels)
    total = sum(counts.values()) + n_classes
    y = [int(v) for v in y_true]
    if not y or not counts:
        raise ValueError("prior_nll needs training labels and evaluation labels.")
    return -sum(math.log((counts[v] + 1) / total) for v in y) / len(y)


def wilson_interval(correct: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """95 % (z = 1.96) Wilson score interval for an accuracy of correct / n."""
    if n <= 0:
        raise ValueError("The interval needs at least one example.")
    p = correct / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return centre - half, centre + half


def sentiment_candidates(tokenizer, labels=("negative", "neutral", "positive")) -> list[list[int]]:
    """The token ids of "Sentiment: <label>" for each label, as the chat template writes the answer."""
    return [answer_ids(tokenizer, sentiment_messages("x", i, labels)) for i in range(len(labels))]


def classify(model, tokenizer, sentences, labels=("negative", "neutral", "positive"), batch_size: int = 16):
    """Label new sentences by label scoring: a table of sentence, label and each label's probability.

    The probabilities are the label log-likelihoods normalised over the labels (softmax).
    Empty sentences are refused with a clear message (utils.prompts.check_text).
    """
    import pandas as pd

    if isinstance(sentences, str):
        sentences = [sentences]
    ids = [prompt_ids(tokenizer, s, labels) for s in sentences]
    probs = score_candidates(model, ids, sentiment_candidates(tokenizer, labels), tokenizer.pad_token_id,
                             batch_size).softmax(-1)
    table = pd.DataFrame(probs.numpy(), columns=[f"p({label})" for label in labels]).round(3)
    table.insert(0, "label", [labels[i] for i in probs.argmax(-1).tolist()])
    table.insert(0, "sentence", list(sentences))
    return table


# --- translation (lesson 08) -----------------------------------------------------------------------


def _ngrams(tokens: list[str], n: int):
    from collections import Counter

    return Counter(tuple(tokens[i:i + n]) for i in range(len(tokens) - n + 1))


def corpus_bleu_from_tokens(hypotheses: list[list[str]], references: list[list[str]], max_n: int = 4) -> float:
    """Corpus BLEU (0-100) from n-gram counts on given tokens: one reference each, no smoothing.

    Clipped n-gram matches and totals are summed over the *corpus* first, then
    BLEU = BP * exp(mean_n log p_n), BP = exp(1 - ref_len / hyp_len) when the hypotheses are shorter.
    Equals sacreBLEU with ``tokenize="none"`` wherever every p_n > 0.

    Example:
        >>> round(corpus_bleu_from_tokens([["the", "cat", "sat", "on", "the", "mat"]],
        ...                               [["the", "cat", "sat", "on", "a", "mat"]]), 2)
        53.73
    """
    if len(hypotheses) != len(references) or not hypotheses:
        raise ValueError(f"Need one reference per hypothesis, and at least one: got {len(hypotheses)} and {len(references)}.")
    matches, totals = [0] * max_n, [0] * max_n
    for hyp, ref in zip(hypotheses, references):
        for n in range(1, max_n + 1):
            h, r = _ngrams(hyp, n), _ngrams(ref, n)
            matches[n - 1] += sum(min(c, r[g]) for g, c in h.items())
            totals[n - 1] += max(0, len(hyp) - n + 1)
    if min(matches) == 0:
        return 0.0
    hyp_len, ref_len = sum(map(len, hypotheses)), sum(map(len, references))
    brevity = 1.0 if hyp_len > ref_len else math.exp(1 - ref_len / hyp_len)
    return 100 * brevity * math.exp(sum(math.log(m / t) for m, t in zip(matches, totals)) / max_n)


BOOTSTRAP_SEED = 12345      # sacreBLEU's default ($SACREBLEU_SEED): the same resamples as `sacrebleu --confidence`


def bleu_bootstrap(hypotheses: list[str], references: list[str], n_bootstrap: int = 1000, seed: int = BOOTSTRAP_SEED,
                   **bleu_options) -> tuple[float, float, float]:
    """(corpus BLEU, 2.5th, 97.5th percentile) over `n_bootstrap` resamples of the sentences, public API only.

    Each sentence's n-gram counts come from ``BLEU.sentence_score`` (counts, totals, lengths); a
    resample sums them and ``BLEU.compute_bleu`` scores the sum with the corpus metric's smoothing.
    The first value equals ``BLEU(**bleu_options).corpus_score(...).score``; the interval is the
    percentile bootstrap (Koehn, 2004) over the resamples sacreBLEU's ``n_bootstrap`` draws with the
    same seed.
    """
    import numpy as np
    from sacrebleu.metrics import BLEU

    bleu = BLEU(**bleu_options)
    counter = BLEU(**{**bleu_options, "effective_order": True})   # same counts; no per-sentence warning
    stats = np.array([[*s.counts, *s.totals, s.sys_len, s.ref_len]
                      for s in (counter.sentence_score(h, [r]) for h, r in zip(hypotheses, references))], dtype=np.int64)
    order = bleu.max_ngram_order

    def score(row) -> float:
        return BLEU.compute_bleu(row[:order].tolist(), row[order:2 * order].tolist(), int(row[-2]), int(row[-1]),
                                 smooth_method=bleu.smooth_method, smooth_value=bleu.smooth_value,
                                 effective_order=bleu.effective_order, max_ngram_order=order).score

    idx = np.random.default_rng(seed).choice(len(stats), size=(n_bootstrap, len(stats)), replace=True)
    resampled = sorted(score(row) for row in stats[idx].sum(1))
    low = n_bootstrap // 40                 # 2.5 % from each end, as sacreBLEU cuts its sorted list
    return score(stats.sum(0)), resampled[low], resampled[n_bootstrap - low - 1]


def translation_scores(hypotheses: list[str], references: list[str], n_bootstrap: int = 1000) -> dict:
    """Corpus BLEU with sacreBLEU's signature and a bootstrap 95 % interval, chrF and ROUGE-L (F, 0-100).

    ROUGE-L is rouge-score's (the library behind ``evaluate``'s rouge), averaged over sentences.
    `n_bootstrap` = 1 skips the interval (NaN).
    """
    from rouge_score import rouge_scorer
    from sacrebleu.metrics import BLEU, CHRF

    if len(hypotheses) != len(references) or not hypotheses:
        raise ValueError(f"Need one reference per hypothesis, and at least one: got {len(hypotheses)} and {len(references)}.")
    bleu = BLEU()
    corpus = bleu.corpus_score(list(hypotheses), [list(references)], n_bootstrap=n_bootstrap)  # signature says bs:N
    low, high = (bleu_bootstrap(hypotheses, references, n_bootstrap)[1:] if n_bootstrap > 1
                 else (float("nan"), float("nan")))
    chrf = CHRF().corpus_score(list(hypotheses), [list(references)])
    scorer = rouge_scorer.RougeScorer(["rougeL"], use_stemmer=True)
    rouge = sum(scorer.score(r, h)["rougeL"].fmeasure for h, r in zip(hypotheses, references)) / len(references)
    return {"BLEU": corpus.score, "BLEU 95% CI low": low, "BLEU 95% CI high": high,
            "chrF": chrf.score, "ROUGE-L": 100 * rouge, "signature": str(bleu.get_signature())}
