"""course.tools.similarity: copies of the reference and of each other are flagged, independent solutions are not.

Fast (no kernel, no model): sources are strings, notebooks are built with nbformat; the lesson
04 and 02 stubs are read from exercises/ and the solution cells from solutions/."""

import csv
import warnings
from pathlib import Path

import nbformat
import pytest
import torch

from course.tools import similarity as sim
from utils import prompts, quant

ROOT = Path(__file__).resolve().parents[1]
L04 = "04_lora_sentiment/04_lora_sentiment.ipynb"
L02 = "02_int8_absmax/02_int8_absmax.ipynb"
STUBS_04 = sim.exercise_sources(ROOT / "exercises" / L04)
STUBS_02 = sim.exercise_sources(ROOT / "exercises" / L02)
SOLVED_04 = sim.exercise_sources(ROOT / "solutions" / L04)
SOLVED_02 = sim.exercise_sources(ROOT / "solutions" / L02)
REF = {name: src for name, [(qual, src)] in
       ((n, sim.references()[n]) for n in ("mask_prompt", "absmax_quantize", "absmax_dequantize"))}

# A student who pasted utils.prompts.mask_prompt into the cell.
VERBATIM = REF["mask_prompt"]

# The same, every variable renamed, the docstring and comments rewritten, a constant inlined by name.
RENAMED = '''def mask_prompt(p: list[int], a: list[int], max_length: int | None = None) -> dict:
    """My own masking function."""
    # turn both into lists first
    p, a = list(p), list(a)
    if not a:
        raise ValueError("no answer")   # nothing to learn
    total = len(p) + len(a)
    # too long: refuse
    if max_length is not None and total > max_length:
        raise ValueError(f"{total} is too many tokens (limit {max_length})")
    return {"input_ids": p + a, "labels": [IGNORE_INDEX] * len(p) + a}
'''

# Two independent correct solutions, written differently (checked against the reference below).
HONEST_A = '''def mask_prompt(prompt_ids: list[int], answer_ids: list[int], max_length: int | None = None) -> dict:
    """input_ids = prompt + answer; labels = -100 on the prompt, the answer ids after it."""
    if len(answer_ids) == 0:
        raise ValueError("empty answer")
    input_ids, labels = [], []
    for token in prompt_ids:
        input_ids.append(token)
        labels.append(-100)
    for token in answer_ids:
        input_ids.append(token)
        labels.append(token)
    if max_length is not None and len(input_ids) > max_length:
        raise ValueError("too long for max_length")
    return dict(input_ids=input_ids, labels=labels)
'''

HONEST_B = '''def mask_prompt(prompt_ids: list[int], answer_ids: list[int], max_length: int | None = None) -> dict:
    """input_ids = prompt + answer; labels = -100 on the prompt, the answer ids after it."""
    ids = [*prompt_ids, *answer_ids]
    n_prompt = len(ids) - len(answer_ids)
    limit = len(ids) if max_length is None else max_length
    if n_prompt == len(ids) or len(ids) > limit:
        raise ValueError(f"bad example: {n_prompt} prompt tokens, {len(ids) - n_prompt} answer tokens, limit {limit}")
    return {"input_ids": ids, "labels": [tok if pos >= n_prompt else -100 for pos, tok in enumerate(ids)]}
'''

ABSMAX_A = '''def absmax_quantize(x: torch.Tensor) -> tuple[torch.Tensor, float]:
    """Per-tensor absmax int8: (round(c x) as int8, c = 127 / max|x|)."""
    biggest = float(torch.max(torch.abs(x)))
    scale = 1.0 if biggest == 0 else 127 / biggest
    quantised = (x.to(torch.float64) * scale).round().to(torch.int8)
    return quantised, scale


def absmax_dequantize(q: torch.Tensor, c: float) -> torch.Tensor:
    """Back to float32: q / c."""
    return q.float() / c
'''

ABSMAX_B = '''def absmax_quantize(x: torch.Tensor) -> tuple[torch.Tensor, float]:
    """Per-tensor absmax int8: (round(c x) as int8, c = 127 / max|x|)."""
    peak = x.detach().abs().amax()
    if peak == 0:
        return torch.zeros_like(x, dtype=torch.int8), 1.0
    c = 127 / peak.item()
    q = torch.clamp(torch.round(x.double() * c), min=-127, max=127)
    return q.to(torch.int8), c


def absmax_dequantize(q: torch.Tensor, c: float) -> torch.Tensor:
    """Back to float32: q / c."""
    return torch.div(q.to(torch.float32), c)
'''


def _define(src: str, name: str):
    scope = {"torch": torch, "IGNORE_INDEX": prompts.IGNORE_INDEX}
    exec(src, scope)   # the test's own fixtures, to show they are correct
    return scope[name]


@pytest.mark.parametrize("src", [VERBATIM, RENAMED, HONEST_A, HONEST_B])
def test_mask_prompt_fixtures_are_correct(src):
    fn = _define(src, "mask_prompt")
    for p, a, m in (([1, 2, 3], [7, 8], None), ([5], [6], 2), ([], [4, 4], 9)):
        assert fn(p, a, m) == prompts.mask_prompt(p, a, m)
    for p, a, m in (([1], [], None), ([1, 2], [3], 2)):
        with pytest.raises(ValueError):
            fn(p, a, m)


@pytest.mark.parametrize("src", [ABSMAX_A, ABSMAX_B])
def test_absmax_fixtures_are_correct(src):
    quantize, dequantize = _define(src, "absmax_quantize"), _define(src, "absmax_dequantize")
    for x in (torch.tensor([0.3, -0.2, 1.5, -0.8]), torch.zeros(4), torch.randn(64, generator=torch.Generator().manual_seed(0))):
        q, c = quantize(x)
        q_ref, c_ref = quant.absmax_quantize(x)
        assert torch.equal(q, q_ref) and c == pytest.approx(c_ref)
        assert torch.allclose(dequantize(q, c), quant.absmax_dequantize(q_ref, c_ref))


STUB = STUBS_04["mask_prompt"]
REF_MASK = REF["mask_prompt"]


def test_references_are_found_by_name():
    assert sim.references()["mask_prompt"][0][0] == "utils.prompts.mask_prompt"
    assert {q for q, _ in sim.references()["collate"]} == {"utils.prompts.collate", "utils.seq2seq.collate"}
    assert set(STUBS_04) == {"mask_prompt", "collate", "next_token_accuracy"}   # quiz_answers is not an exercise


def test_references_named_by_the_hidden_tests():
    """Exercises named apart from their utils function get the one their own_work check switches off."""
    refs = sim.own_work_references()
    assert refs["corpus_bleu"] == ("utils.evaluation.corpus_bleu_from_tokens",)
    assert refs["t5_lora_param_count"] == ("utils.seq2seq.t5_lora_params",)
    assert "utils.quant.nf4_quantize" in refs["nf4_quantize_block"]
    assert [q for q, _ in sim.reference_sources(["corpus_bleu"])] == ["utils.evaluation.corpus_bleu_from_tokens"]


@pytest.mark.parametrize("release", sorted(ROOT.glob("exercises/*/*.ipynb")), ids=lambda p: p.parent.name)
def test_blank_submissions_never_pair(release):
    """Two blank submissions and the solved source: no blank appears in any pair, on every lesson."""
    stubs = sim.exercise_sources(release)
    assert stubs, release
    solved = ROOT / "solutions" / release.parent.name / release.name
    pairs = sim.report({"blank1": release, "blank2": release, "solved": solved}, stubs)
    assert {p.student for p in pairs} | {p.other for p in pairs} <= {"solved"} | {p.other for p in pairs if p.other.startswith("reference ")}


def test_copies_are_flagged():
    assert sim.similarity(VERBATIM, REF_MASK, STUB) == pytest.approx(1.0)
    assert sim.similarity(RENAMED, REF_MASK, STUB) >= sim.THRESHOLD + 0.2
    assert sim.similarity(RENAMED, VERBATIM, STUB) >= sim.THRESHOLD + 0.2
    absmax_stub = STUBS_02["absmax"]
    copied = REF["absmax_quantize"] + "\n\n" + REF["absmax_dequantize"]
    assert sim.similarity(copied, REF["absmax_quantize"], absmax_stub) == pytest.approx(1.0)


def test_independent_solutions_are_not_flagged():
    cases = [(HONEST_A, HONEST_B, STUB), (HONEST_A, REF_MASK, STUB), (HONEST_B, REF_MASK, STUB),
             (ABSMAX_A, ABSMAX_B, STUBS_02["absmax"]), (ABSMAX_A, REF["absmax_quantize"], STUBS_02["absmax"]),
             (ABSMAX_B, REF["absmax_quantize"], STUBS_02["absmax"])]
    scores = [sim.similarity(a, b, stub) for a, b, stub in cases]
    assert max(scores) <= sim.THRESHOLD - 0.2, scores


def test_stub_alone_is_not_flagged():
    assert sim.similarity(STUB, STUB, STUB) == 0.0
    assert sim.similarity(STUB, REF_MASK, STUB) == 0.0
    assert sim.similarity(STUB + "\n", STUB.replace("raise NotImplementedError()", "pass"), STUB) == 0.0


def test_one_line_exercises_are_not_judged():
    """Everyone who solves lesson 01's lora_param_count writes `return r * (d_in + d_out)`: no pair."""
    stub = sim.exercise_sources(ROOT / "exercises/01_peft_theory/01_peft_theory.ipynb")["lora_param_count"]
    solved = stub.replace("raise NotImplementedError()", "return r * (d_in + d_out)")
    assert sim.similarity(solved, solved, stub) == 0.0
    assert sim.similarity(solved, sim.references()["lora_param_count"][0][1], stub) == 0.0


def test_similarity_is_pythons_tokens_not_text():
    assert sim.tokens("x = 1  # a comment") == sim.tokens("y=1")
    assert sim.tokens("def f(a):\n    '''doc'''\n    return a") == sim.tokens("def g(b):\n    return b")
    assert sim.tokens("a.append(b)") != sim.tokens("a.extend(b)")   # attribute names count
    assert sim.tokens("def f(:") == []
    assert 0.0 <= sim.similarity(HONEST_A, "%matplotlib inline\n" + HONEST_A) <= 1.0


def _submission(sources: dict[str, str]) -> nbformat.NotebookNode:
    """A lesson-04 notebook: the released one with the given solution cells filled in."""
    nb = nbformat.read(ROOT / "exercises" / L04, as_version=4)
    for cell in nb.cells:
        gid = cell.metadata.get("nbgrader", {}).get("grade_id")
        if gid in sources:
            cell.source = sources[gid]
    return nb


def test_report_and_csv(tmp_path):
    bad = tmp_path / "mallory.ipynb"
    bad.write_text("this is not json")
    submissions = {
        "alice": _submission({"mask_prompt": HONEST_A}),
        "bob": _submission({"mask_prompt": HONEST_B}),
        "carol": _submission({"mask_prompt": RENAMED}),
        "dave": _submission({"mask_prompt": VERBATIM}),
        "erin": _submission({}),            # blank
        "frank": _submission({}),           # blank
        "grace": _submission(SOLVED_04),    # the solution notebook's cells, written apart from utils
        "mallory": bad,
    }
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        pairs = sim.report(submissions, STUBS_04)
    assert [str(w.message) for w in caught] == [
        f"mallory: {bad} is not a readable notebook (JSONDecodeError: Expecting value: line 1 column 1 (char 0)); "
        "ask the student to submit the .ipynb file saved by Jupyter. It is left out of the similarity report."]
    found = {(p.student, p.exercise, p.other) for p in pairs}
    ref = "reference utils.prompts.mask_prompt"
    assert {("carol", "mask_prompt", ref), ("dave", "mask_prompt", ref), ("carol", "mask_prompt", "dave")} <= found
    flagged = {p.student for p in pairs} | {p.other for p in pairs}
    assert not flagged & {"alice", "bob", "erin", "frank"}, pairs
    assert [p.score for p in pairs] == sorted((p.score for p in pairs), reverse=True)

    out = sim.write_report(pairs, tmp_path / "similarity.csv")
    rows = list(csv.DictReader(out.open()))
    assert list(rows[0]) == ["student", "exercise", "score", "other"]
    assert len(rows) == len(pairs) and float(rows[0]["score"]) == max(p.score for p in pairs)


def test_not_a_notebook(tmp_path):
    bad = tmp_path / "bob.ipynb"
    bad.write_text("{")
    with pytest.raises(sim.NotebookError, match=r"bob.ipynb is not a readable notebook .*; ask the student"):
        sim.exercise_sources(bad)
