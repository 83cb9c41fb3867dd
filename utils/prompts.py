"""Prompts as token ids: chat messages, the training example with its prompt masked, the padded batch.

Taught in lesson 04 (students write ``mask_prompt`` and ``collate``; these are the references
that lessons 05-07 import). The same code serves the tiny smoke model and the real
Llama-3.2-1B-Instruct, whose chat template differs (a system header with "Cutting Knowledge
Date" and today's date, no ``{% generation %}`` markers), so nothing here relies on template
markers: the prompt is masked by its length, after checking that it is a prefix of the full
conversation.

Example:
    >>> mask_prompt([1, 2, 3], [7, 8])
    {'input_ids': [1, 2, 3, 7, 8], 'labels': [-100, -100, -100, 7, 8]}
"""

from __future__ import annotations

IGNORE_INDEX = -100          # torch's cross-entropy skips these targets
# Llama-3.2's template writes today's date into the system header unless told otherwise; a fixed
# date makes the training text, the token counts and every test the same on every day.
DATE_STRING = "26 Jul 2024"

SENTIMENT_SYSTEM = "You label the sentiment of Vietnamese student feedback."
SENTIMENT_INSTRUCTION = ('Classify the sentiment of the feedback below as positive, negative or neutral. '
                         'Answer with "Sentiment: <label>".\n\nFeedback: {sentence}')
ANSWER_PREFIX = "Sentiment: "


def check_text(text, what: str = "sentence") -> str:
    """Refuse empty or non-text input with one sentence; return the stripped text."""
    if not isinstance(text, str):
        raise TypeError(f"The {what} must be a string, got {type(text).__name__}.")
    if not text.strip():
        raise ValueError(f"The {what} is empty: give at least one word to classify.")
    return text.strip()


def label_text(label, labels) -> str:
    """The label's word for a label index or word; anything outside `labels` is refused."""
    if isinstance(label, str) and label in labels:
        return label
    if isinstance(label, int) and not isinstance(label, bool) and 0 <= label < len(labels):
        return labels[label]
    raise ValueError(f"Label {label!r} is not one of {list(labels)} (or their indices 0..{len(labels) - 1}).")


def sentiment_messages(sentence: str, label=None, labels=("negative", "neutral", "positive")) -> list[dict]:
    """System + user messages asking for "Sentiment: <label>"; with `label`, the assistant's answer too.

    Example:
        >>> sentiment_messages("cô dạy hay .", 2)[-1]
        {'role': 'assistant', 'content': 'Sentiment: positive'}
    """
    messages = [{"role": "system", "content": SENTIMENT_SYSTEM},
                {"role": "user", "content": SENTIMENT_INSTRUCTION.format(sentence=check_text(sentence))}]
    if label is not None:
        messages.append({"role": "assistant", "content": ANSWER_PREFIX + label_text(label, labels)})
    return messages


def check_tokenizer(tokenizer) -> None:
    """A tokenizer the course can train with: a chat template and a pad token that is not eos."""
    if not getattr(tokenizer, "chat_template", None):
        raise ValueError("This tokenizer has no chat template: load an Instruct model (e.g. Llama-3.2-1B-Instruct) "
                         "or set tokenizer.chat_template before building prompts.")
    if tokenizer.pad_token_id is None:
        raise ValueError("This tokenizer has no pad token: set one that is not eos (Llama-3.2 has "
                         "'<|finetune_right_pad_id|>'); utils.models.load_model_and_tokenizer does this.")
    if tokenizer.pad_token_id == tokenizer.eos_token_id:
        raise ValueError("The pad token equals eos: padding positions would teach the model never to stop. "
                         "Use a dedicated pad token such as '<|finetune_right_pad_id|>'.")


def chat_ids(tokenizer, messages: list[dict], add_generation_prompt: bool = False) -> list[int]:
    """Token ids of `messages` rendered with the tokenizer's chat template (one BOS, the date pinned).

    transformers v5 returns a dict from apply_chat_template by default; this returns the ids.
    """
    return list(tokenizer.apply_chat_template(messages, add_generation_prompt=add_generation_prompt, tokenize=True,
                                              return_dict=False, date_string=DATE_STRING))


def chat_text(tokenizer, messages: list[dict], add_generation_prompt: bool = False) -> str:
    """The exact text the model reads for `messages` (the date pinned, see DATE_STRING)."""
    return tokenizer.apply_chat_template(messages, add_generation_prompt=add_generation_prompt, tokenize=False,
                                         date_string=DATE_STRING)


def mask_prompt(prompt_ids: list[int], answer_ids: list[int], max_length: int | None = None) -> dict:
    """One training example: prompt + answer as input_ids, labels -100 on the prompt.

    An empty answer, or one that does not fit, is refused: a truncated example would teach
    nothing or teach a cut-off answer. Shorten the input text instead (``fit_text``).

    Example:
        >>> mask_prompt([1, 2], [5, 6], max_length=4)["labels"]
        [-100, -100, 5, 6]
    """
    prompt_ids, answer_ids = list(prompt_ids), list(answer_ids)
    if not answer_ids:
        raise ValueError("The answer is empty: there would be nothing to learn from this example.")
    n = len(prompt_ids) + len(answer_ids)
    if max_length is not None and n > max_length:
        raise ValueError(f"The example has {n} tokens (prompt {len(prompt_ids)} + answer {len(answer_ids)}), more than "
                         f"max_length={max_length}; shorten the input text or raise max_length, never cut the answer.")
    return {"input_ids": prompt_ids + answer_ids, "labels": [IGNORE_INDEX] * len(prompt_ids) + answer_ids}


def encode_chat_example(tokenizer, messages: list[dict], max_length: int | None = None) -> dict:
    """Mask everything before the last (assistant) message: the prompt is rendered with the generation prompt.

    The rendered prompt must be a prefix of the rendered conversation; it is for Llama-3 templates
    (checked, not assumed: a template that breaks it raises).
    """
    if not messages or messages[-1]["role"] != "assistant":
        raise ValueError("The last message must be the assistant's answer to learn.")
    prompt = chat_ids(tokenizer, messages[:-1], add_generation_prompt=True)
    full = chat_ids(tokenizer, messages)
    if full[:len(prompt)] != prompt:
        raise ValueError("The chat template renders the prompt differently inside the full conversation, so the "
                         "prompt cannot be masked by its length; check tokenizer.chat_template.")
    return mask_prompt(prompt, full[len(prompt):], max_length)


def fit_text(tokenizer, text: str, max_tokens: int) -> tuple[str, bool]:
    """`text` cut to at most `max_tokens` tokens (at a token boundary); returns (text, was_cut)."""
    ids = tokenizer(text, add_special_tokens=False)["input_ids"]
    if len(ids) <= max_tokens:
        return text, False
    return tokenizer.decode(ids[:max_tokens]).strip(), True


def collate(features: list[dict], pad_token_id: int) -> dict:
    """Right-pad a list of {'input_ids', 'labels'} to the longest: pad id, labels -100, attention_mask 0.

    Returns torch tensors of shape (batch, longest). Builds attention_mask itself: trl drops an
    attention_mask column before the collator sees the batch.
    """
    import torch

    if not features:
        raise ValueError("collate got an empty batch.")
    width = max(len(f["input_ids"]) for f in features)
    input_ids = torch.full((len(features), width), pad_token_id, dtype=torch.long)   # (B, T)
    labels = torch.full((len(features), width), IGNORE_INDEX, dtype=torch.long)     # (B, T)
    attention_mask = torch.zeros((len(features), width), dtype=torch.long)          # (B, T)
    for i, f in enumerate(features):
        n = len(f["input_ids"])
        if len(f["labels"]) != n:
            raise ValueError(f"Example {i} has {n} input_ids but {len(f['labels'])} labels; they must align.")
        input_ids[i, :n] = torch.as_tensor(f["input_ids"])
        labels[i, :n] = torch.as_tensor(f["labels"])
        attention_mask[i, :n] = 1
    return {"input_ids": input_ids, "labels": labels, "attention_mask": attention_mask}


class Collator:
    """`collate` with the pad id bound, for Trainer / SFTTrainer (``data_collator=Collator(tok.pad_token_id)``)."""

    def __init__(self, pad_token_id: int):
        self.pad_token_id = pad_token_id

    def __call__(self, features: list[dict]) -> dict:
        return collate(features, self.pad_token_id)


def encode_sentiment(tokenizer, ds, max_length: int, labels=("negative", "neutral", "positive")):
    """Tokenize a UIT-VSFC split for training and evaluation; returns (datasets.Dataset, report).

    Each row: ``input_ids`` (prompt + "Sentiment: <label>" + end of turn), ``labels`` (-100 on
    the prompt), ``prompt_len`` (so ``input_ids[:prompt_len]`` is the inference prompt) and
    ``sentiment``. Sentences too long for `max_length` are shortened (never the answer) and
    empty ones are skipped; the report counts both, so nothing disappears silently.
    """
    import datasets

    check_tokenizer(tokenizer)
    rows, report = [], {"examples": 0, "shortened": 0, "skipped_empty": 0, "longest": 0}
    for sentence, label in zip(ds["sentence"], ds["sentiment"]):
        if not isinstance(sentence, str) or not sentence.strip():
            report["skipped_empty"] += 1
            continue
        messages = sentiment_messages(sentence, label, labels)
        full = chat_ids(tokenizer, messages)
        if len(full) > max_length:
            n_sentence = len(tokenizer(sentence.strip(), add_special_tokens=False)["input_ids"])
            keep = n_sentence - (len(full) - max_length) - 2      # 2 tokens of slack for merges at the cut
            if keep < 1:
                raise ValueError(f"max_length={max_length} cannot hold even the prompt ({len(full) - n_sentence} tokens "
                                 "without the sentence); raise max_length.")
            messages = sentiment_messages(fit_text(tokenizer, sentence.strip(), keep)[0], label, labels)
            report["shortened"] += 1
        example = encode_chat_example(tokenizer, messages, max_length)
        rows.append({**example, "prompt_len": len(example["input_ids"]) - sum(x != IGNORE_INDEX for x in example["labels"]),
                     "sentiment": int(labels.index(label_text(label, labels)))})
        report["longest"] = max(report["longest"], len(example["input_ids"]))
    report["examples"] = len(rows)
    if not rows:
        raise ValueError("No usable example: every sentence was empty.")
    return datasets.Dataset.from_list(rows), report


def prompt_ids(tokenizer, sentence: str, labels=("negative", "neutral", "positive")) -> list[int]:
    """The inference prompt for one sentence (chat template + generation prompt), as token ids."""
    return chat_ids(tokenizer, sentiment_messages(sentence, None, labels), add_generation_prompt=True)


# --- multiple-choice questions (lesson 07) ---------------------------------------------------------

MCQ_SYSTEM = "You answer medical multiple-choice questions."
MCQ_INSTRUCTION = "Answer with the letter of the correct option.\n\nQuestion: {question}\n{options}"
MCQ_LETTERS = "ABCD"
MCQ_ANSWER_PREFIX = "Answer: "


def mcq_messages(question: str, options, answer: int | None = None) -> list[dict]:
    """System + user messages for a four-option question; with `answer` (0..3), the assistant's
    reply "Answer: <letter>. <option text>" too (the training text must contain the answer).

    Example:
        >>> mcq_messages("Which vitamin?", ["A", "K", "E", "D"], 3)[-1]["content"]
        'Answer: D. D'
    """
    if not isinstance(question, str) or not question.strip():
        raise ValueError(f"The question is empty or not text ({question!r}): there is nothing to answer.")
    question, options = question.strip(), list(options)
    if len(options) != len(MCQ_LETTERS):
        raise ValueError(f"A question needs exactly {len(MCQ_LETTERS)} options, got {len(options)}.")
    for letter, text in zip(MCQ_LETTERS, options):
        if not isinstance(text, str) or not text.strip():
            raise ValueError(f"Option {letter} is empty or not text ({text!r}): every option needs its text.")
    options = [o.strip() for o in options]
    listed = "\n".join(f"{letter}. {text}" for letter, text in zip(MCQ_LETTERS, options))
    messages = [{"role": "system", "content": MCQ_SYSTEM},
                {"role": "user", "content": MCQ_INSTRUCTION.format(question=question, options=listed)}]
    if answer is not None:
        if not isinstance(answer, int) or not 0 <= answer < len(MCQ_LETTERS):
            raise ValueError(f"The answer must be an option index 0..3 (cop), got {answer!r}; the test split's "
                             "cop = -1 means the answer is hidden, so it cannot be trained or scored.")
        messages.append({"role": "assistant",
                         "content": f"{MCQ_ANSWER_PREFIX}{MCQ_LETTERS[answer]}. {options[answer]}"})
    return messages
