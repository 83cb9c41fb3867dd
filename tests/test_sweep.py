"""utils.sweep (lesson 06): a provably fresh adapter per run, the seed's loop caught, an interrupted sweep resumed."""

import copy
import warnings

import pytest
import torch
from peft import LoraConfig, get_peft_model

from utils import lora, models, sweep

TARGETS = ["q_proj", "v_proj"]
ALL_SEVEN = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]


def config(r, targets=TARGETS):
    return LoraConfig(r=r, lora_alpha=32, lora_dropout=0.0, target_modules=list(targets), task_type="CAUSAL_LM")


@pytest.fixture()
def base(tiny):
    return copy.deepcopy(tiny[0])


@pytest.mark.parametrize("r,targets,expected", [(8, TARGETS, 851_968), (16, ALL_SEVEN, 11_272_192),
                                                (8, ALL_SEVEN, 5_636_096)])
def test_predicted_count_matches_peft_on_llama32_1b(r, targets, expected):
    assert sweep.predicted_trainable(models.meta_model(), r, targets) == expected
    peft_count, _ = lora.count_parameters(get_peft_model(models.meta_model(), config(r, targets)))
    assert peft_count == expected


@pytest.mark.parametrize("r,targets", [(1, TARGETS), (4, ["k_proj", "down_proj"]), (16, ["o_proj", "up_proj"])])
def test_predicted_count_matches_peft_on_the_tiny_model(tiny, r, targets):
    peft_count, _ = lora.count_parameters(get_peft_model(models.meta_model(tiny[0].config), config(r, targets)))
    assert sweep.predicted_trainable(models.meta_model(tiny[0].config), r, targets) == peft_count


def test_predicted_count_refuses_bad_input():
    with pytest.raises(ValueError, match="positive integer"):
        sweep.predicted_trainable(models.meta_model(), 0)
    with pytest.raises(ValueError, match="No nn.Linear"):
        sweep.predicted_trainable(models.meta_model(), 8, ["qproj"])


def train_a_little(peft_model):
    """Stand-in for training: every lora_B becomes non-zero."""
    for name, param in peft_model.named_parameters():
        if "lora_B" in name:
            param.data.fill_(0.05)


def sweep_problems(model, ranks, next_base) -> dict[int, list[str]]:
    """Run a rank sweep the way `next_base` prepares each run's base; per rank, what is not clean.

    Clean means: before attaching, the base is the untouched one (fingerprint), and the new
    adapter has exactly the predicted count and starts as a no-op.
    """
    pristine = sweep.fingerprint(model)
    predicted = {r: sweep.predicted_trainable(models.meta_model(model.config), r) for r in ranks}
    previous, found = None, {}
    for r in ranks:
        run_base = next_base(model, previous)
        found[r] = sweep.base_problems(run_base, pristine)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            peft_model = get_peft_model(run_base, config(r))
        found[r] += sweep.adapter_problems(peft_model, predicted[r])
        train_a_little(peft_model)
        previous = peft_model
    return found


def fresh(model, previous):
    return model if previous is None else sweep.reset_base(previous)


def seed_pattern(model, previous):
    return model                      # get_peft_model on the same base model, again and again


def test_each_rank_starts_from_the_untouched_base_with_exactly_the_predicted_adapter(base):
    assert sweep_problems(base, [1, 4, 16], fresh) == {1: [], 4: [], 16: []}


def test_the_same_check_catches_the_seed_tutorials_loop(base):
    found = sweep_problems(base, [1, 4, 16], seed_pattern)
    assert found[1] == []                                    # the first run is clean either way
    for r in (4, 16):
        assert any("edited in place" in p for p in found[r]), found[r]
        assert any("renamed" in p for p in found[r]), found[r]


def test_fresh_adapter_cleans_up_and_refuses_a_changed_base(base):
    pristine = sweep.fingerprint(base)
    first = sweep.fresh_adapter(base, config(4), pristine)
    train_a_little(first)
    second = sweep.fresh_adapter(first, config(16), pristine)          # the previous run's model goes in
    assert lora.count_parameters(second)[0] == 16 * 896
    train_a_little(second)
    changed = second.merge_and_unload()                                 # merging writes into the base weights
    with pytest.raises(RuntimeError, match="not the one the sweep started from.*changed"):
        sweep.fresh_adapter(changed, config(1), pristine)


def test_reset_base_is_unmerged_and_leaves_a_plain_model_alone(tiny, base):
    probe = torch.tensor([[1, 5, 9, 12]])
    with torch.no_grad():
        expected = tiny[0](input_ids=probe).logits
    peft_model = get_peft_model(base, config(4))
    train_a_little(peft_model)
    out = sweep.reset_base(peft_model)
    with torch.no_grad():
        assert torch.equal(out(input_ids=probe).logits, expected)
    assert sweep.reset_base(out) is out and not hasattr(out, "peft_config")


def fake_run(calls, crash_at=None):
    def run_one(run):
        calls.append((run["variant"], run["r"], run["seed"]))
        if crash_at is not None and len(calls) == crash_at:
            raise KeyboardInterrupt("the Colab session died")
        return {"trainable": 896 * run["r"], "accuracy": 0.5 + run["r"] / 100, "macro_f1": 0.4}
    return run_one


PLAN = [{"variant": "LoRA", "r": r, "seed": s} for r in (1, 4) for s in (0, 1)]
SETTINGS = {"profile": "smoke", "steps": 40}


def test_an_interrupted_sweep_resumes_where_it_stopped(tmp_path, capsys):
    path = tmp_path / "runs.csv"
    calls = []
    with pytest.raises(KeyboardInterrupt):
        sweep.run_sweep(PLAN, fake_run(calls, crash_at=3), path, SETTINGS)
    assert len(sweep.read_runs(path)) == 2                  # the two finished runs were saved at once
    calls.clear()
    table = sweep.run_sweep(PLAN, fake_run(calls), path, SETTINGS)
    assert calls == [("LoRA", 4, 0), ("LoRA", 4, 1)]        # only what was missing
    assert "skipping 2 of 4" in capsys.readouterr().out
    assert sorted(zip(table["r"], table["seed"])) == [(1, 0), (1, 1), (4, 0), (4, 1)]
    assert table["accuracy"].dtype.kind == "f"
    calls.clear()
    sweep.run_sweep(PLAN, fake_run(calls), path, SETTINGS)
    assert calls == [] and "skipping 4 of 4" in capsys.readouterr().out


def test_other_settings_are_not_reused_and_a_torn_line_is_dropped(tmp_path, capsys):
    path = tmp_path / "runs.csv"
    sweep.run_sweep(PLAN[:2], fake_run([]), path, SETTINGS)
    calls = []
    sweep.run_sweep(PLAN[:2], fake_run(calls), path, {**SETTINGS, "steps": 500})
    assert len(calls) == 2 and "other settings" in capsys.readouterr().out
    with path.open("a") as f:
        f.write("LoRA,16,0,143")                             # killed while writing
    assert len(sweep.read_runs(path)) == 4 and path.read_text().endswith("\n")
    assert "unfinished last line" in capsys.readouterr().out


def test_rslora_is_planned_only_where_it_differs_from_lora():
    """At r = 1 alpha / sqrt(r) = alpha / r: an rsLoRA run there is the LoRA run again (issue 21 item 2)."""
    assert lora.lora_scaling(32, 1) == lora.lora_scaling(32, 1, use_rslora=True)
    for ranks in ((1, 16), (1, 4, 16, 64), (1, 2, 4, 8, 16, 32, 64, 128), (2,)):
        plan = sweep.sweep_plan(ranks, 2)
        rs = [p["r"] for p in plan if p["variant"] == "rsLoRA"]
        assert rs and 1 not in rs and all(lora.lora_scaling(32, r) != lora.lora_scaling(32, r, True) for r in rs)
        assert len(plan) == 2 * len(ranks) + len(rs)
    assert sweep.rslora_ranks((1, 4, 16, 64)) == [16, 64] and sweep.rslora_ranks((1,)) == []
    with pytest.raises(ValueError, match="r = 1 is the LoRA run again"):
        sweep.sweep_plan((1, 16), 2, rslora_at=[1, 16])
    with pytest.raises(ValueError, match="positive integer"):
        sweep.sweep_plan((1, 16), 0)


def test_lesson06_plans_its_sweep_with_sweep_plan():
    import json
    from pathlib import Path

    nb = json.loads((Path(__file__).resolve().parents[1] / "solutions/06_rank_sweep/06_rank_sweep.ipynb").read_text())
    code = "\n".join("".join(c["source"]) for c in nb["cells"] if c["cell_type"] == "code")
    assert "sweep.sweep_plan(" in code and "[-2:]" not in code, "lesson 06 must plan rsLoRA with sweep.sweep_plan (r > 1)"
