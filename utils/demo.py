"""A web demo of the course's adapters (Gradio): `make demo`, or the optional last cell of lessons 04 and 07.

Two tabs, each serving one base model plus one LoRA adapter folder:

- **Sentiment** (lesson 04's ``outputs/04_adapter``): a sentence in; its label and the three label
  probabilities out, as bars. The scoring is ``evaluation.classify``, the lesson's label scoring.
- **MedMCQA** (lesson 07's ``outputs/07_adapter``): a question and four options in; P(A..D) out
  (``mcq.answer``, one forward pass), the chosen letter on top and spelled out beside it.

Without an adapter folder a tab trains a *smoke* adapter first: the tiny local model, the bundled
samples, a few dozen steps on a CPU. It shows that the app works; its answers mean nothing.
Requests wait in Gradio's queue and are answered one at a time (one model, one forward pass at a
time), so a crowd of requests is served in turn instead of crashing. The page says which model,
adapter and device each tab serves.

Gradio is imported only when an app is built, so ``import utils`` works without it (a student
install without the demo). Command line (``make demo DEMO_ARGS="..."`` passes the same flags)::

    python -m utils.demo                                  # smoke adapters, http://127.0.0.1:7860
    python -m utils.demo --sentiment solutions/04_lora_sentiment/outputs/04_adapter \\
                         --mcq solutions/07_qlora_medmcqa/outputs/07_adapter --mcq-4bit
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

from utils import config, data, prompts, train

# torch, Gradio and the model modules are imported where used: `python -m utils.demo --help` and the tests' helpers stay light.


SMOKE_STEPS = 30          # the smoke adapters' training steps (lesson 04 smoke trains 60)
GRADIO_PIN = "gradio==6.31.0"


@dataclass
class Served:
    """One model a tab answers with, and what the page says about it."""

    model: object
    tokenizer: object
    model_name: str
    adapter: str
    device: str
    note: str = ""

    def describe(self) -> str:
        text = f"model `{self.model_name}` · adapter `{self.adapter}` · device `{self.device}`"
        return text + (f" · {self.note}" if self.note else "")


def _gradio():
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")   # no calls home from a course machine
    try:
        import gradio as gr
    except ModuleNotFoundError:
        raise ModuleNotFoundError(f"The demo needs Gradio: pip install '{GRADIO_PIN}' (make setup installs it).") from None
    return gr


def _base_of(adapter_dir: Path) -> str:
    """The base model an adapter was trained on, from its adapter_config.json (the tiny model wherever it lives)."""
    recorded = json.loads((adapter_dir / "adapter_config.json").read_text()).get("base_model_name_or_path") or ""
    if Path(recorded).name.startswith("tiny-llama") and not Path(recorded).exists():
        return config.TINY_MODEL_ID        # trained on another machine's cache: the same recipe builds it here
    return recorded or config.TINY_MODEL_ID


def load_adapter(adapter_dir, base_model: str | None = None, four_bit: bool = False, note: str = "") -> Served:
    """Base model (default: the one recorded in the adapter) + the adapter in `adapter_dir`, ready to answer.

    `four_bit` loads the base in NF4 as lesson 07 trains it (QLoRA); without it a QLoRA adapter
    runs on the unquantised base, which answers almost the same and needs no bitsandbytes kernel.
    """
    from peft import PeftModel

    from utils import models, qlora, runtime

    adapter_dir = Path(adapter_dir)
    if not (adapter_dir / "adapter_config.json").is_file():
        raise FileNotFoundError(f"No adapter in {adapter_dir}: run the lesson's save cell (it writes outputs/NN_adapter) "
                                "or leave the folder out to serve a smoke adapter.")
    base = base_model or _base_of(adapter_dir)
    tiny_path = str(models.tiny_model_dir())
    model_id = config.TINY_MODEL_ID if base in (config.TINY_MODEL_ID, tiny_path) else base
    device = runtime.get_device()
    model, tokenizer = models.load_model_and_tokenizer(model_id, quantization_config=qlora.bnb_config() if four_bit else None)
    model = PeftModel.from_pretrained(model, str(adapter_dir))
    model.eval()
    name = model_id + (" (NF4)" if four_bit else "")
    return Served(model, tokenizer, name, str(adapter_dir), runtime.describe_device(device), note)


def _train_smoke(task: str, folder: Path, steps: int) -> Path:
    from peft import LoraConfig, get_peft_model

    from utils import mcq, models, qlora, runtime

    profile = config.get_profile("smoke")
    runtime.seed_everything(profile.seed)
    model, tokenizer = models.load_model_and_tokenizer(config.TINY_MODEL_ID, device="cpu")
    if task == "sentiment":
        rows = data.load_vsfc("sample")["train"]
        train_ds, _ = prompts.encode_sentiment(tokenizer, rows, profile.max_length)
        lora = LoraConfig(r=profile.lora_r, lora_alpha=profile.lora_alpha, lora_dropout=0.1,
                          target_modules=["q_proj", "v_proj"], task_type="CAUSAL_LM")       # lesson 04's
    else:
        rows = data.load_medmcqa("sample")["train"]
        train_ds, _ = mcq.encode_mcq_split(tokenizer, rows, profile.max_length)
        lora = qlora.lora_config(profile.lora_r, profile.lora_alpha)                         # lesson 07's
    peft_model = get_peft_model(model, lora)
    args = train.sft_config(str(folder / "run"), max_steps=steps, batch_size=profile.batch_size, lr=profile.lr,
                            max_length=profile.max_length, seed=profile.seed)
    train.train(peft_model, tokenizer, train_ds.select_columns(["input_ids", "labels"]), args)
    peft_model.save_pretrained(str(folder / "adapter"))
    return folder / "adapter"


def train_smoke_adapter(task: str, folder=None, steps: int = SMOKE_STEPS) -> Path:
    """Train a smoke adapter ("sentiment" as lesson 04, "mcq" as lesson 07, without 4 bit) on the tiny model; its folder.

    A few seconds on a CPU; it proves the pipeline, not the model (the smoke profile's numbers mean nothing).
    """
    if task not in ("sentiment", "mcq"):
        raise ValueError(f"task is 'sentiment' or 'mcq', not {task!r}.")
    folder = Path(folder or tempfile.mkdtemp(prefix=f"peft-demo-{task}-"))
    return _train_smoke(task, folder, steps)


SMOKE_NOTE = "smoke adapter trained just now: its answers are not meaningful"


def serve(task: str, adapter_dir=None, base_model: str | None = None, four_bit: bool = False) -> Served:
    """What a tab serves: `adapter_dir` on its base, or a freshly trained smoke adapter when it is None."""
    if adapter_dir is None:
        print(f"No {task} adapter given: training a smoke adapter on the tiny model ({SMOKE_STEPS} steps)...")
        return load_adapter(train_smoke_adapter(task), note=SMOKE_NOTE)
    return load_adapter(adapter_dir, base_model, four_bit)


# --- what the tabs answer (plain functions: the tests call them directly too) --------------------------------

def sentiment_probabilities(served: Served, sentence) -> dict[str, float]:
    """{label: probability} for one sentence, from ``evaluation.classify`` (label scoring)."""
    from utils import evaluation

    text = prompts.check_text(sentence if sentence is not None else "", "sentence")
    table = evaluation.classify(served.model, served.tokenizer, [text], data.SENTIMENT_LABELS)
    return {label: float(table[f"p({label})"][0]) for label in data.SENTIMENT_LABELS}


def mcq_probabilities(served: Served, question, a, b, c, d) -> tuple[dict[str, float], str]:
    """({"A": p, ...}, "Answer: C. <option>") for one question, from ``mcq.answer``."""
    from utils import mcq

    options = ["" if o is None else o for o in (a, b, c, d)]
    row = mcq.answer(served.model, served.tokenizer, question if question is not None else "", options).iloc[0]
    probs = {letter: float(row[f"P({letter})"]) for letter in mcq.LETTERS}
    chosen = row["answer"]
    return probs, f"Answer: {chosen}. {options[mcq.LETTERS.index(chosen)].strip()}"


def build_app(sentiment: Served | None = None, mcq: Served | None = None, max_queue: int = 64):
    """The Gradio app: a tab per served model; requests queue and run one at a time."""
    gr = _gradio()
    if sentiment is None and mcq is None:
        raise ValueError("Give the app something to serve: sentiment=serve('sentiment') and/or mcq=serve('mcq').")

    def refused(fn):
        def wrapped(*args):
            try:
                return fn(*args)
            except (TypeError, ValueError) as exc:      # bad input: one sentence on the page, no traceback
                raise gr.Error(str(exc).splitlines()[0], print_exception=False) from None
        return wrapped

    def about() -> dict:
        return {name: None if s is None else {"model": s.model_name, "adapter": s.adapter, "device": s.device,
                                               "note": s.note}
                for name, s in (("sentiment", sentiment), ("mcq", mcq))}

    with gr.Blocks(title="PEFT course: try the adapters") as app:
        gr.Markdown("## PEFT course: try the adapters\nLesson 04's sentiment adapter and lesson 07's MedMCQA adapter. "
                    "Requests wait in a queue and are answered one at a time.")
        if sentiment is not None:
            with gr.Tab("Sentiment (lesson 04)"):
                gr.Markdown(f"Serving {sentiment.describe()}", elem_id="sentiment-info")
                sentence = gr.Textbox(label="A sentence of student feedback (Vietnamese)", elem_id="sentence",
                                      placeholder="thầy giảng bài rất dễ hiểu .")
                go = gr.Button("Classify", variant="primary", elem_id="classify")
                label = gr.Label(num_top_classes=3, label="Label and its probability", elem_id="sentiment-label")
                go.click(refused(lambda s: sentiment_probabilities(sentiment, s)), sentence, label, api_name="classify")
        if mcq is not None:
            with gr.Tab("MedMCQA (lesson 07)"):
                gr.Markdown(f"Serving {mcq.describe()}", elem_id="mcq-info")
                question = gr.Textbox(label="Question", elem_id="question")
                options = [gr.Textbox(label=f"Option {x}", elem_id=f"option-{x}") for x in "ABCD"]
                ask = gr.Button("Answer", variant="primary", elem_id="answer")
                chosen = gr.Textbox(label="Chosen answer", interactive=False, elem_id="chosen")
                letters = gr.Label(num_top_classes=4, label="P(A..D): the chosen letter on top", elem_id="letters")
                ask.click(refused(lambda *q: mcq_probabilities(mcq, *q)[::-1]), [question, *options], [chosen, letters],
                          api_name="answer")
        gr.api(about, api_name="about")
    return app.queue(default_concurrency_limit=1, max_size=max_queue)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(prog="python -m utils.demo", description=__doc__.split("\n\n")[0])
    parser.add_argument("--sentiment", metavar="DIR", help="lesson 04's adapter folder (default: train a smoke adapter)")
    parser.add_argument("--mcq", metavar="DIR", help="lesson 07's adapter folder (default: train a smoke adapter)")
    parser.add_argument("--base", metavar="MODEL", help="base model id or folder (default: the one the adapter records)")
    parser.add_argument("--mcq-4bit", action="store_true", help="load the MedMCQA base in NF4, as lesson 07 trains it")
    parser.add_argument("--only", choices=("sentiment", "mcq"), help="serve one tab only")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=7860)
    args = parser.parse_args(argv)
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    sentiment = None if args.only == "mcq" else serve("sentiment", args.sentiment, args.base)
    mcq = None if args.only == "sentiment" else serve("mcq", args.mcq, args.base, args.mcq_4bit)
    for name, s in (("sentiment", sentiment), ("mcq", mcq)):
        if s is not None:
            print(f"{name}: {s.describe()}")
    build_app(sentiment, mcq).launch(server_name=args.host, server_port=args.port)


if __name__ == "__main__":
    main()
