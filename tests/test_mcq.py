"""utils.mcq and utils.qlora (lesson 07): training text with the answer, options never cut, letter
scoring, accuracy with its interval, and QLoRA gradients through 4-bit layers on this CPU."""

import ast
import copy
import inspect
import json

import pytest
import torch

from course.tools import llama_tokenizer
from utils import data, mcq, prompts, qlora

ROW = {"question": "A 30-year-old woman presents with fatigue, pallor and spoon-shaped nails after months of heavy "
                   "menstrual bleeding. The most likely deficiency is:",
       "opa": "Iron", "opb": "Vitamin B12", "opc": "Folate", "opd": "Vitamin C", "cop": 0}


@pytest.fixture(scope="module")
def real():
    return llama_tokenizer.load()


def _learned(tok, example):
    return tok.decode([i for i, lab in zip(example["input_ids"], example["labels"]) if lab != -100])


@pytest.mark.parametrize("which", ["tiny", "real"])
def test_training_text_ends_with_letter_option_and_end_of_turn(which, tiny, real):
    tok = tiny[1] if which == "tiny" else real
    ex = mcq.encode_mcq(tok, ROW, 10_000)
    assert _learned(tok, ex) == "Answer: A. Iron<|eot_id|>"                 # the seed trained without it
    assert ex["labels"][:ex["prompt_len"]] == [-100] * ex["prompt_len"] and not ex["shortened"]
    assert tok.decode(ex["input_ids"][:ex["prompt_len"]]).endswith("<|start_header_id|>assistant<|end_header_id|>\n\n")


@pytest.mark.parametrize("which", ["tiny", "real"])
def test_a_long_example_loses_its_stem_start_never_an_option(which, tiny, real):
    tok = tiny[1] if which == "tiny" else real
    n = len(mcq.encode_mcq(tok, ROW, 10_000)["input_ids"])
    for squeeze in (1, 12):
        ex = mcq.encode_mcq(tok, ROW, n - squeeze)
        text = tok.decode(ex["input_ids"][:ex["prompt_len"]])
        assert ex["shortened"] and len(ex["input_ids"]) <= n - squeeze
        assert all(f"{k}. {ROW[c]}" in text for k, c in zip("ABCD", mcq.OPTION_COLUMNS))
        assert "Question: ... " in text and "The most likely deficiency is:" in text
        assert _learned(tok, ex) == "Answer: A. Iron<|eot_id|>"
    with pytest.raises(ValueError, match="raise max_length"):
        mcq.encode_mcq(tok, ROW, 30)


def test_hidden_answers_never_reach_training_or_a_metric(tiny):
    _, tok = tiny
    with pytest.raises(ValueError, match="cop = -1"):
        mcq.encode_mcq(tok, {**ROW, "cop": -1}, 10_000)
    with pytest.raises(ValueError, match="hidden answer"):
        mcq.encode_mcq_split(tok, data.load_medmcqa("sample", "test"), 320)
    with pytest.raises(ValueError, match="hidden answer"):
        mcq.accuracy_with_ci([0, -1, 2], [0, 1, 2])
    with pytest.raises(ValueError, match="hidden answer"):
        mcq.results_table([3, -1], {"model": [3, 3]})
    with pytest.raises(ValueError, match="lacks the option column"):
        mcq.options_of({"question": "q", "opa": "a"})


def test_split_report_counts_shortened_and_skipped(tiny):
    _, tok = tiny
    val = data.load_medmcqa("sample", "validation")
    ds, report = mcq.encode_mcq_split(tok, val, 320)
    assert report == {"examples": 10, "over_max_length": 0, "shortened": 0, "skipped_too_long": 0,
                      "skipped_empty": 0, "longest": max(ds["n_tokens"])}
    assert ds["cop"] == val["cop"] and set(ds.column_names) >= {"input_ids", "labels", "prompt_len", "subject_name"}
    tight = sorted(ds["n_tokens"])[-3] - 1              # three examples too long for it
    ds2, report2 = mcq.encode_mcq_split(tok, val, tight)
    assert report2["over_max_length"] == 3 == report2["shortened"] + report2["skipped_too_long"]
    assert report2["examples"] == 10 - report2["skipped_too_long"] and max(map(len, ds2["input_ids"])) <= tight
    broken = val.map(lambda r, i: {"opc": "  " if i == 0 else r["opc"]}, with_indices=True)
    ds3, report3 = mcq.encode_mcq_split(tok, broken, 320)
    assert report3["skipped_empty"] == 1 and report3["examples"] == 9


@pytest.mark.parametrize("which", ["tiny", "real"])
def test_letters_are_single_tokens_after_a_shared_prefix(which, tiny, real):
    tok = tiny[1] if which == "tiny" else real
    candidates = mcq.letter_candidates(tok)
    assert [tok.decode(c) for c in candidates] == [f"Answer: {x}" for x in "ABCD"]
    prefix, letters = mcq.letter_token_ids(tok)
    assert all(c == prefix + [t] for c, t in zip(candidates, letters))


def test_letter_probabilities_by_hand():
    logits = torch.zeros(2, 10)
    logits[0, 5], logits[1, 0], logits[1, 9] = 2.0, 50.0, 1.0
    probs = mcq.letter_probabilities(logits, [3, 5, 7, 9])
    e2, e = torch.e ** 2, torch.e
    torch.testing.assert_close(probs, torch.tensor([[1 / (e2 + 3), e2 / (e2 + 3), 1 / (e2 + 3), 1 / (e2 + 3)],
                                                    [1 / (e + 3), 1 / (e + 3), 1 / (e + 3), e / (e + 3)]]))
    with pytest.raises(ValueError, match="four|4"):
        mcq.letter_probabilities(logits, [1, 2, 3])


def test_one_question_path_equals_batched_letter_scoring(tiny):
    model, tok = tiny
    val = data.load_medmcqa("sample", "validation")
    ds, _ = mcq.encode_mcq_split(tok, val, 320)
    batched = mcq.score_letters(model, tok, mcq.prompts_of(ds), batch_size=4)     # left-padded batches
    assert batched.shape == (10, 4)
    torch.testing.assert_close(batched.sum(1), torch.ones(10))
    for i in (0, 8):
        one = mcq.answer(model, tok, val[i]["question"], mcq.options_of(val[i]), key=val[i]["cop"])
        torch.testing.assert_close(torch.tensor(one.iloc[0][["P(A)", "P(B)", "P(C)", "P(D)"]].astype(float).values,
                                                dtype=torch.float32), batched[i], atol=6e-4, rtol=0)
        assert one.iloc[0]["key"] == "ABCD"[val[i]["cop"]]


def test_accuracy_with_ci_by_hand():
    acc, low, high = mcq.accuracy_with_ci([0] * 100, [0] * 31 + [1] * 69)
    assert acc == 0.31 and round(low, 4) == 0.2278 and round(high, 4) == 0.4063
    assert [round(v, 4) for v in mcq.accuracy_with_ci([2] * 10, [2] * 3 + [0] * 7)] == [0.3, 0.1078, 0.6032]
    for bad in (([0, 1], [0]), ([], [])):
        with pytest.raises(ValueError):
            mcq.accuracy_with_ci(*bad)
    table = mcq.results_table([0, 1, 2, 3, 0], {"always A": mcq.always("A", 5)})
    assert table.loc["always A", "accuracy"] == 0.4 and table.loc["random guessing (expected)", "accuracy"] == 0.25
    assert list(table.columns) == ["n", "accuracy", "95 % CI (Wilson): low", "95 % CI (Wilson): high"]
    assert table.loc["always A", "95 % CI (Wilson): low"] < 0.4 < table.loc["always A", "95 % CI (Wilson): high"]
    # the paper's spread of other models' scores is no interval of this run: it has its own table
    assert not table.isin(mcq.PAPER_BASELINES).any().any()
    reference = mcq.reference_table()
    assert tuple(reference.iloc[0][["lowest model's accuracy", "highest model's accuracy"]]) == mcq.PAPER_BASELINES


def _notebook_functions(root):
    nb = json.loads((root / "solutions" / "07_qlora_medmcqa" / "07_qlora_medmcqa.ipynb").read_text())
    code = "\n".join("".join(c["source"]) for c in nb["cells"] if c["cell_type"] == "code")
    return {node.name: node for node in ast.walk(ast.parse(code)) if isinstance(node, ast.FunctionDef)}, code


@pytest.mark.parametrize("name", ["encode_mcq", "letter_probabilities", "accuracy_with_ci"])
def test_exercises_have_the_names_and_signatures_of_their_references(root, name):
    functions, _ = _notebook_functions(root)
    ns: dict = {}
    exec(compile(ast.Module(body=[functions[name]], type_ignores=[]), name, "exec"),   # noqa: S102 - our notebook
         {"torch": torch, "__name__": "nb"}, ns)
    mine = inspect.signature(ns[name])
    ref = inspect.signature(getattr(mcq, name))
    assert [(p.name, p.kind, p.default) for p in mine.parameters.values()] == \
           [(p.name, p.kind, p.default) for p in ref.parameters.values()]


def test_the_lesson_uses_the_qlora_recipe(root):
    _, code = _notebook_functions(root)
    for piece in ('bnb_4bit_quant_type="nf4"', "bnb_4bit_use_double_quant=True", "use_rslora=True",
                  "lora_dropout=0.0", '"paged_adamw_8bit"', "optim=optim", "prepare_model_for_kbit_training",
                  "gradient_checkpointing=True", "activation_checkpointing_enable("):
        assert piece in code, piece
    cfg = qlora.lora_config()
    assert (cfg.r, cfg.lora_alpha, cfg.lora_dropout, cfg.use_rslora) == (16, 16, 0.0, True)
    assert cfg.target_modules == set(qlora.TARGETS)


def _qlora_and_twin():
    """Lesson 07's QLoRA model (4-bit, prepared, rsLoRA r=16 on all seven projections) and an fp32 twin
    whose linear weights are the dequantised 4-bit ones, with equal (non-zero) adapters."""
    import bitsandbytes as bnb
    from peft import get_peft_model, prepare_model_for_kbit_training

    from utils import models

    m4, tok = models.load_model_and_tokenizer(models.TINY_MODEL_ID, quantization_config=qlora.bnb_config(torch.float32),
                                              device="cpu")
    ref, _ = models.load_model_and_tokenizer(models.TINY_MODEL_ID, dtype=torch.float32, device="cpu")
    ref_modules = dict(ref.named_modules())
    for name, module in m4.named_modules():
        if isinstance(module, bnb.nn.Linear4bit):
            ref_modules[name].weight.data.copy_(bnb.functional.dequantize_4bit(module.weight.data, module.weight.quant_state))
    m4 = prepare_model_for_kbit_training(m4, use_gradient_checkpointing=False)      # as lesson 07 does it
    m4.activation_checkpointing_enable(activation_checkpointing_kwargs={"use_reentrant": False})
    p4, pref = get_peft_model(m4, qlora.lora_config()), get_peft_model(ref, copy.deepcopy(qlora.lora_config()))
    torch.manual_seed(0)
    ref_params = dict(pref.named_parameters())
    with torch.no_grad():
        for name, param in p4.named_parameters():
            if "lora_" in name:
                param.normal_(0, 0.05)
                ref_params[name].copy_(param)
    return p4, pref, tok


def test_lesson07_qlora_gradients_flow_through_4bit_layers_after_an_eval_pass():
    """On every CPU kind: score the untrained model first (a no-grad pass that repacks Linear4bit on
    AVX512-BF16 CPUs unless guarded), then every LoRA matrix gets the gradient an fp32 twin gets."""
    import bitsandbytes as bnb

    p4, pref, tok = _qlora_and_twin()
    ds, _ = mcq.encode_mcq_split(tok, data.load_medmcqa("sample", "validation").select(range(3)), 320)
    mcq.score_letters(p4, tok, mcq.prompts_of(ds))                   # the lesson's "before training" cell
    assert not any(getattr(m.weight.quant_state, "packing_format_for_cpu", False)
                   for m in p4.modules() if isinstance(m, bnb.nn.Linear4bit))
    batch = prompts.collate([{"input_ids": r["input_ids"], "labels": r["labels"]} for r in ds], tok.pad_token_id)
    p4.train()
    pref.train()
    p4(**batch).loss.backward()
    pref(**batch).loss.backward()
    ref_grads = {n: p.grad for n, p in pref.named_parameters() if p.requires_grad}
    checked = 0
    for name, param in p4.named_parameters():
        if param.requires_grad:
            assert param.grad is not None and param.grad.abs().sum() > 0, f"{name}: no gradient through the 4-bit layer"
            torch.testing.assert_close(param.grad, ref_grads[name], rtol=2e-3, atol=2e-5)
            checked += 1
    assert checked == 2 * len(qlora.TARGETS) * p4.config.num_hidden_layers       # A and B everywhere


def test_memory_helpers_count_4bit_weights_by_their_shape(tiny):
    from utils import models

    model16, _ = tiny
    m4, _ = models.load_model_and_tokenizer(models.TINY_MODEL_ID, quantization_config=qlora.bnb_config(torch.float32),
                                            device="cpu")
    total, in_4bit = qlora.logical_params(m4)
    assert total == sum(p.numel() for p in model16.parameters())
    assert in_4bit == sum(p.numel() for n, p in model16.named_parameters() if "layers" in n and n.endswith("proj.weight"))
    assert qlora.weight_bytes(m4) > m4.get_memory_footprint()               # + absmax and double-quant constants
    est = qlora.estimate(total, in_4bit, 1000, quantized=True)
    assert est["optimizer"] == 8000 and est["gradients"] == 4000
    assert est["weights"] < qlora.estimate(total, in_4bit, 1000, quantized=False)["weights"]


def test_the_estimate_knows_the_optimizer():
    """8-bit AdamW keeps m and v in 8 bit plus an fp32 absmax per 256 values: about a quarter of fp32 AdamW."""
    fp32 = qlora.estimate(10_000, 8_000, 1_000, quantized=True, optimizer="adamw_torch")
    eight = qlora.estimate(10_000, 8_000, 1_000, quantized=True, optimizer="paged_adamw_8bit")
    assert fp32["optimizer"] == 8_000 and eight["optimizer"] == 1_000 * (2 + 8 / 256)
    assert 0.25 < eight["optimizer"] / fp32["optimizer"] < 0.26
    assert eight["weights"] == fp32["weights"] and eight["gradients"] == fp32["gradients"] == 4_000
    assert qlora.estimate(10_000, 8_000, 1_000, quantized=True, optimizer="adamw_8bit") == eight
    with pytest.raises(ValueError, match="No memory recipe for the optimizer 'sgd'"):
        qlora.estimate(10_000, 8_000, 1_000, quantized=True, optimizer="sgd")


def test_optimizer_state_bytes_matches_bitsandbytes_8bit_adamw():
    """Measured on a real bitsandbytes optimizer: a big tensor in 8 bit (+ absmax), a small one in fp32."""
    import bitsandbytes as bnb

    big, small = torch.nn.Parameter(torch.randn(64, 128)), torch.nn.Parameter(torch.randn(16, 16))
    opt = bnb.optim.AdamW8bit([big, small], lr=1e-3)
    (big.sum() + small.sum()).backward()
    opt.step()
    n_big, n_small = big.numel(), small.numel()
    stored = qlora.optimizer_state_bytes(opt)
    moments = 2 * n_big + 2 * 4 * n_big / 256 + 2 * 4 * n_small             # 8-bit big, fp32 small
    maps = 2 * 256 * 4                                                      # the two 8-bit code tables, shared
    assert moments <= stored <= moments + maps + 64, (stored, moments)
    est = qlora.estimate(n_big + n_small + 1, 0, n_big + n_small, quantized=False, optimizer="adamw_8bit")["optimizer"]
    assert est < stored, "bitsandbytes keeps tensors under 4,096 elements in fp32: the estimate is a lower bound"
