"""Training with trl's SFTTrainer the same way on a CPU, a T4 and an H100 (lessons 04, 06, 07).

- ``sft_config``: an ``SFTConfig`` whose precision follows the hardware (SFTConfig defaults to
  bf16, which fails on a CPU and is only emulated on a T4), with the profile's sizes.
- ``train``: SFTTrainer on pre-tokenized examples (``input_ids`` + ``labels``, prompt masked),
  the course's right-padding collator, timing and peak memory, and the loss history.
- ``loss_figure``: training and evaluation loss against the step.

Example:
    >>> args = sft_config("outputs/run", max_steps=30, batch_size=8, lr=5e-3)
    >>> args.bf16, args.max_steps
    (False, 30)
"""

from __future__ import annotations

from dataclasses import dataclass, field

from utils import prompts

# trl, transformers and utils.runtime (torch) are imported where used: building an SFTConfig's arguments stays light.


def sft_config(output_dir: str, *, max_steps: int, batch_size: int, lr: float, eval_steps: int | None = None,
               max_length: int = 256, seed: int = 42, logging_steps: int | None = None,
               gradient_checkpointing: bool = False, optim: str = "adamw_torch", **overrides):
    """SFTConfig with the precision of this machine (runtime.precision_args) and no checkpoints saved.

    Gradient checkpointing is off unless asked for (SFTConfig turns it on by default; it trades
    time for memory, which QLoRA in lesson 07 wants and the small runs here do not).
    """
    from trl import SFTConfig

    from utils import runtime

    kwargs = dict(
        output_dir=output_dir, max_steps=max_steps, per_device_train_batch_size=batch_size,
        per_device_eval_batch_size=batch_size, learning_rate=lr, lr_scheduler_type="linear", warmup_steps=0,
        logging_steps=logging_steps or max(1, max_steps // 10), eval_strategy="steps" if eval_steps else "no",
        eval_steps=eval_steps, save_strategy="no", report_to="none", seed=seed, data_seed=seed,
        max_length=max_length, activation_checkpointing=gradient_checkpointing, optim=optim,
        **runtime.precision_args(),
    )
    kwargs.update(overrides)
    return SFTConfig(**kwargs)


@dataclass
class TrainResult:
    """What a training run produced: the trainer, wall time, peak memory and the loss history."""

    trainer: object
    seconds: float
    peak_bytes: int
    memory_kind: str
    train_loss: list[tuple[int, float]] = field(default_factory=list)   # (step, loss)
    eval_loss: list[tuple[int, float]] = field(default_factory=list)

    def summary(self) -> str:
        first = self.train_loss[0][1] if self.train_loss else float("nan")
        last = self.train_loss[-1][1] if self.train_loss else float("nan")
        return (f"trained {self.trainer.state.global_step} steps in {self.seconds:.1f} s, peak {self.memory_kind} "
                f"{self.peak_bytes / 2**20:,.0f} MiB, training loss {first:.3f} -> {last:.3f}")


def train(model, tokenizer, train_ds, args, eval_ds=None, peft_config=None, callbacks=None) -> TrainResult:
    """Fine-tune with SFTTrainer on pre-tokenized examples; return timing, memory and losses.

    `train_ds` / `eval_ds` hold ``input_ids`` and ``labels`` (prompt masked with -100), so trl
    neither re-tokenizes them nor adds a second BOS. The course's collator right-pads and builds
    the attention mask.
    """
    from trl import SFTTrainer

    from utils import runtime

    prompts.check_tokenizer(tokenizer)
    missing = {"input_ids", "labels"} - set(train_ds.column_names)
    if missing:
        raise ValueError(f"The training set lacks {sorted(missing)}: encode it first (utils.prompts).")
    trainer = SFTTrainer(model=model, args=args, train_dataset=train_ds, eval_dataset=eval_ds,
                         processing_class=tokenizer, data_collator=prompts.Collator(tokenizer.pad_token_id),
                         peft_config=peft_config, callbacks=callbacks)
    keep_adapter_in_fp32(trainer.model, args)
    with runtime.measure("training", verbose=False) as m:
        trainer.train()
    history = trainer.state.log_history
    return TrainResult(trainer=trainer, seconds=m.seconds, peak_bytes=m.peak_bytes, memory_kind=m.memory_kind,
                       train_loss=[(h["step"], h["loss"]) for h in history if "loss" in h],
                       eval_loss=[(h["step"], h["eval_loss"]) for h in history if "eval_loss" in h])


def keep_adapter_in_fp32(model, args) -> int:
    """Undo trl's cast of a quantised model's adapter to bf16 unless training runs in bf16; return how many.

    trl 1.16's SFTTrainer stores the LoRA weights of a 4-bit model in bf16 (the QLoRA paper's
    choice). With fp16 mixed precision (a T4) the gradient scaler then fails on its first step
    ("_amp_foreach_non_finite_check_and_unscale_cuda" not implemented for 'BFloat16', trl issue
    #4901), and in fp32 (a CPU) the adapter would silently train in bf16. Seen on an H200 with
    torch 2.11, trl 1.16.0, peft 0.21.2.
    """
    import torch

    if args.bf16:
        return 0
    cast = 0
    for param in model.parameters():
        if param.requires_grad and param.dtype == torch.bfloat16:
            param.data = param.data.float()
            cast += 1
    return cast


def loss_figure(result: TrainResult, title: str):
    """Training (and evaluation) loss against the step."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3.2))
    if result.train_loss:
        ax.plot(*zip(*result.train_loss), "o-", label="training loss")
    if result.eval_loss:
        ax.plot(*zip(*result.eval_loss), "s--", label="validation loss")
    ax.set(xlabel="step", ylabel="cross-entropy (answer tokens only)", title=title)
    ax.legend()
    fig.tight_layout()
    return fig
