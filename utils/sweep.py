"""A LoRA rank sweep that is clean, resumable and honest about noise (taught in lesson 06).

- **A fresh adapter per run.** ``peft.get_peft_model`` edits the model it is given in place: it
  swaps each target ``nn.Linear`` for a LoRA layer and adds a ``peft_config``. Calling it again on
  the same "base" (a seed tutorial's sweep) attaches the next rank to a model that already holds
  adapters; whether the old adapter is re-initialised, kept or stacked then depends on the peft
  version and the targets, with only a warning. ``reset_base`` removes every adapter (unmerged),
  ``base_problems`` compares the model with a ``fingerprint`` taken before the first run, and
  ``adapter_problems`` checks that the new adapter has exactly the ``predicted_trainable`` count
  and starts as a no-op. ``fresh_adapter`` does all three.
- **Resumable.** ``run_sweep`` appends one CSV row per finished (variant, r, seed) run and, when
  started again, skips the runs already in the file (with the same settings) and says so.
- ``sweep_plan``: every rank x seed, plus rsLoRA only where it differs from LoRA (r > 1,
  ``rslora_ranks``).
- ``sweep_summary`` / ``sweep_figure``: mean and spread over seeds, against rank and against
  trainable parameters.

Example:
    >>> from utils import models
    >>> predicted_trainable(models.meta_model(), 8)          # Llama-3.2-1B, q_proj + v_proj
    851968
"""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

from torch import nn

RUN_KEY = ("variant", "r", "seed")


def predicted_trainable(model, r: int, target_modules=("q_proj", "v_proj")) -> int:
    """LoRA parameters that rank r adds to `model`: r (in + out) for every nn.Linear whose name ends with a target (lesson 06).

    Read from the modules themselves, so it works for any architecture (and on the meta device).
    """
    if not isinstance(r, int) or r <= 0:
        raise ValueError(f"The rank r must be a positive integer, got {r!r}.")
    targets = [target_modules] if isinstance(target_modules, str) else list(target_modules)
    total = 0
    for name, module in model.named_modules():
        if isinstance(module, nn.Linear) and name.split(".")[-1] in targets:
            total += r * (module.in_features + module.out_features)
    if total == 0:
        raise ValueError(f"No nn.Linear named {targets} in this model: check target_modules.")
    return total


def fingerprint(model) -> dict[str, tuple]:
    """Name -> (shape, dtype, sum, sum of squares) of every tensor in the model's state dict (lesson 06).

    Cheap enough for a 1B model on a GPU (computed in chunks, in float64), and any change to a
    weight, a renamed or an added tensor shows up.
    """
    import torch

    out = {}
    for name, tensor in model.state_dict().items():
        flat = tensor.detach().reshape(-1)
        total = squares = 0.0
        for start in range(0, flat.numel(), 1 << 22):
            chunk = flat[start:start + (1 << 22)].to(torch.float64)
            total += chunk.sum().item()
            squares += chunk.square().sum().item()
        out[name] = (tuple(tensor.shape), str(tensor.dtype), total, squares)
    return out


def _has_adapters(model) -> list[str]:
    from peft.tuners.tuners_utils import BaseTunerLayer

    return [name for name, module in model.named_modules() if isinstance(module, BaseTunerLayer)]


def base_problems(model, pristine: dict) -> list[str]:
    """What differs between `model` and the base it was when `pristine` = fingerprint(base) was taken; [] if nothing (lesson 06)."""
    problems = []
    layers = _has_adapters(model)
    if layers:
        problems.append(f"{len(layers)} module(s) still hold adapters (e.g. {layers[0]}): the base was edited in place")
    if hasattr(model, "peft_config"):
        problems.append("the model still carries a peft_config from an earlier run")
    now = fingerprint(model)
    extra, missing = sorted(set(now) - set(pristine)), sorted(set(pristine) - set(now))
    if extra:
        problems.append(f"{len(extra)} tensor(s) not in the base, e.g. {extra[0]}")
    if missing:
        problems.append(f"{len(missing)} base tensor(s) missing or renamed, e.g. {missing[0]}")
    changed = [n for n in set(now) & set(pristine) if now[n][:2] != pristine[n][:2]
               or not all(math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-12) for a, b in zip(now[n][2:], pristine[n][2:]))]
    if changed:
        problems.append(f"{len(changed)} base weight(s) changed, e.g. {sorted(changed)[0]}")
    return problems


def adapter_problems(peft_model, predicted: int) -> list[str]:
    """What makes `peft_model` not a fresh adapter: a trainable count other than `predicted`,
    trainable non-LoRA weights, several adapters, or a non-zero lora_B; [] if none (lesson 06)."""
    trainable = {n: p for n, p in peft_model.named_parameters() if p.requires_grad}
    problems = []
    count = sum(p.numel() for p in trainable.values())
    if count != predicted:
        problems.append(f"{count:,} trainable parameters, predicted {predicted:,}")
    not_lora = [n for n in trainable if "lora_" not in n]
    if not_lora:
        problems.append(f"{len(not_lora)} trainable tensor(s) outside the adapter, e.g. {not_lora[0]}")
    configs = getattr(peft_model, "peft_config", {})
    if len(configs) != 1:
        problems.append(f"{len(configs)} adapters configured ({sorted(configs)}), expected exactly one")
    nonzero = [n for n, p in trainable.items() if "lora_B" in n and p.detach().abs().sum().item() != 0]
    if nonzero:
        problems.append(f"{len(nonzero)} lora_B matrices are not zero, so the run does not start from the base model")
    return problems


def reset_base(model):
    """The plain base model with every LoRA layer removed (not merged), whatever ran before (lesson 06).

    A PeftModel is unloaded; a base that get_peft_model edited in place (the seed's pattern) has
    each adapter layer replaced by the layer it wraps and its peft_config dropped.
    """
    from peft import PeftModel
    from peft.tuners.tuners_utils import BaseTunerLayer

    if isinstance(model, PeftModel):
        model = model.unload()
    for name, module in list(model.named_modules()):
        if isinstance(module, BaseTunerLayer):
            parent_name, _, child = name.rpartition(".")
            setattr(model.get_submodule(parent_name), child, module.get_base_layer())
    if hasattr(model, "peft_config"):
        del model.peft_config
    return model


def fresh_adapter(model, lora_config, pristine: dict):
    """reset_base, check the base against `pristine`, attach a new adapter, check it; raise if anything is off (lesson 06)."""
    from peft import get_peft_model

    base = reset_base(model)
    problems = base_problems(base, pristine)
    if problems:
        raise RuntimeError("The base model is not the one the sweep started from: " + "; ".join(problems))
    targets = sorted(lora_config.target_modules) if lora_config.target_modules else ["q_proj", "v_proj"]
    predicted = predicted_trainable(base, lora_config.r, targets)
    peft_model = get_peft_model(base, lora_config)
    problems = adapter_problems(peft_model, predicted)
    if problems:
        raise RuntimeError("The new adapter is not fresh: " + "; ".join(problems))
    return peft_model


# --- resumable results -----------------------------------------------------------------------------

def read_runs(path) -> list[dict]:
    """Rows of a sweep CSV (an unfinished last line, from a run killed while writing, is dropped with a message) (lesson 06)."""
    path = Path(path)
    if not path.exists() or not path.read_text(encoding="utf-8").strip():
        return []
    text = path.read_text(encoding="utf-8")
    if not text.endswith("\n"):
        text = text[:text.rfind("\n") + 1]
        path.write_text(text, encoding="utf-8")
        print(f"{path}: dropped an unfinished last line (the session stopped while writing it).")
    return list(csv.DictReader(text.splitlines()))


def append_run(path, row: dict) -> None:
    """Append one finished run to the CSV (header written first when the file is new) (lesson 06)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    existing = read_runs(path)
    fields = list(existing[0]) if existing else list(row)
    unknown = sorted(set(row) - set(fields))
    if unknown:
        raise ValueError(f"{path} has no column(s) {unknown}: write this sweep to a new file.")
    with path.open("a", encoding="utf-8", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=fields)
        if not existing:
            writer.writeheader()
        writer.writerow(row)
        f.flush()


def rslora_ranks(ranks, n: int = 2) -> list[int]:
    """The largest `n` ranks above 1: where rsLoRA's alpha / sqrt(r) differs from LoRA's alpha / r (lesson 06).

    At r = 1, sqrt(r) = r, so an "rsLoRA" run at r = 1 is the LoRA run again (same config, same
    seed, same numbers): comparing them would compare a run with itself.

    Example:
        >>> rslora_ranks((1, 16)), rslora_ranks((1, 4, 16, 64))
        ([16], [16, 64])
    """
    return sorted(r for r in set(ranks) if r > 1)[-n:] if n > 0 else []


def sweep_plan(ranks, seeds: int, rslora_at=None) -> list[dict]:
    """The runs of a rank sweep: every rank with seeds 0..seeds-1, plus rsLoRA (seed 0) at `rslora_at`
    (default: ``rslora_ranks(ranks)``) (lesson 06).

    Example:
        >>> [(p["variant"], p["r"], p["seed"]) for p in sweep_plan((1, 16), 2)]
        [('LoRA', 1, 0), ('LoRA', 1, 1), ('LoRA', 16, 0), ('LoRA', 16, 1), ('rsLoRA', 16, 0)]
    """
    if not isinstance(seeds, int) or seeds < 1:
        raise ValueError(f"seeds must be a positive integer (seeds per rank), got {seeds!r}.")
    rs = rslora_ranks(ranks) if rslora_at is None else list(rslora_at)
    if 1 in rs:
        raise ValueError("rsLoRA at r = 1 is the LoRA run again (alpha / sqrt(1) = alpha / 1): choose ranks above 1.")
    plan = [{"variant": "LoRA", "r": r, "seed": s} for r in ranks for s in range(seeds)]
    return plan + [{"variant": "rsLoRA", "r": r, "seed": 0} for r in rs]


def _key(row: dict) -> tuple:
    return tuple(str(row[k]) for k in RUN_KEY)


def run_sweep(plan: list[dict], run_one, path, settings: dict):
    """Run each planned {variant, r, seed} not yet in the CSV at `path` with these `settings`,
    appending each result as soon as it exists; return all matching rows as a DataFrame (lesson 06).

    `run_one(run)` returns a dict of results for one run. Rows saved with other settings (another
    profile, step count, learning rate, ...) are not reused.
    """
    import pandas as pd

    stamp = json.dumps(settings, sort_keys=True)
    saved = read_runs(path)
    other = sum(r.get("settings") != stamp for r in saved)
    done = {_key(r) for r in saved if r.get("settings") == stamp}
    if other:
        print(f"{path}: {other} saved run(s) used other settings and are ignored.")
    todo = [run for run in plan if _key(run) not in done]
    skipped = len(plan) - len(todo)
    if skipped:
        print(f"{path}: skipping {skipped} of {len(plan)} run(s) already saved; {len(todo)} to run.")
    for run in todo:
        result = run_one(run)
        append_run(path, {**{k: run[k] for k in RUN_KEY}, **result, "settings": stamp})
        print(f"saved {run['variant']} r={run['r']} seed={run['seed']}: "
              + ", ".join(f"{k} {v:.3f}" for k, v in result.items() if k in ("accuracy", "macro_f1", "train_s")))
    wanted = {_key(run) for run in plan}
    rows = [r for r in read_runs(path) if r.get("settings") == stamp and _key(r) in wanted]
    table = pd.DataFrame(rows).drop(columns="settings", errors="ignore")
    for column in table.columns:
        try:
            table[column] = pd.to_numeric(table[column])
        except (ValueError, TypeError):
            pass                                   # text columns (variant, memory kind) stay text
    return table


def sweep_summary(runs, metrics=("accuracy", "macro_f1", "macro_precision", "macro_recall")):
    """One row per (variant, r): parameters, mean time and memory, and mean / std / min / max of each metric over seeds (lesson 06)."""
    import pandas as pd

    groups = runs.groupby(["variant", "r"], sort=True)
    out = groups.agg(seeds=("seed", "nunique"), trainable=("trainable", "first"), pct_of_model=("pct_of_model", "first"),
                     train_s=("train_s", "mean"), peak_mib=("peak_mib", "max"))
    for m in metrics:
        stats = groups[m].agg(["mean", "std", "min", "max"])
        stats.columns = [f"{m}_{c}" for c in stats.columns]
        out = pd.concat([out, stats], axis=1)
    return out.reset_index()


def _seeds(part) -> str:
    n = part["seed"].nunique()
    return f"{n} seed" + ("s" if n != 1 else "")


def sweep_figure(runs, title: str, reference: dict | None = None, metric: str = "macro_f1"):
    """`metric` against rank and against trainable parameters (log x): each seed as a dot, the mean
    with min-max bars, one colour per variant; `reference` {r: value} drawn hollow and labelled (lesson 06)."""
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(10, 3.6), sharey=True)
    for i, (variant, part) in enumerate(runs.groupby("variant", sort=False)):
        stats = part.groupby("r").agg(mean=(metric, "mean"), lo=(metric, "min"), hi=(metric, "max"),
                                      trainable=("trainable", "first"))
        for ax, x_all, x in ((axes[0], part["r"], stats.index), (axes[1], part["trainable"], stats["trainable"])):
            ax.scatter(x_all, part[metric], s=12, alpha=0.5, color=f"C{i}")
            ax.errorbar(x, stats["mean"], yerr=[stats["mean"] - stats["lo"], stats["hi"] - stats["mean"]],
                        fmt="o-", capsize=4, color=f"C{i}", label=f"{variant}: mean of {_seeds(part)}, min-max")
    if reference:
        axes[0].plot(sorted(reference), [reference[r] for r in sorted(reference)], "D", mfc="none", color="grey",
                     label="reference: seed tutorial (GPU, 1 seed)")
    name = metric.replace("_", " ").replace("macro f1", "macro F1")
    axes[0].set(xscale="log", xlabel="LoRA rank r (log scale)", ylabel=name, ylim=(0, 1))
    axes[1].set(xscale="log", xlabel="trainable parameters (log scale)")
    ranks = sorted(set(runs["r"]) | set(reference or {}))
    axes[0].set_xticks(ranks, [str(r) for r in ranks])
    axes[0].minorticks_off()
    for ax in axes:
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=7, loc="lower right")
    fig.suptitle(title)
    fig.tight_layout()
    return fig
