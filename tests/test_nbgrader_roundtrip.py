"""The nbgrader round trip in a temporary course: release, then autograde real-looking submissions.

Uses nbgrader's Python API and gradebook (the exit code of `nbgrader validate` is 0 even on failure).
"""

import csv
import json
import re
import shutil
from pathlib import Path

import pytest

import yaml

from course.tools import classroom as course
from course.tools import grading

ROOT = Path(__file__).resolve().parents[1]
LESSONS = course.assignments(ROOT)
pytestmark = pytest.mark.slow


def _hidden_and_solution_lines(nb_path: Path) -> list[str]:
    """Lines that must never reach students: solution bodies and hidden tests (long enough to be specific)."""
    lines = []
    for cell in json.loads(nb_path.read_text())["cells"]:
        src = "".join(cell["source"])
        for block in re.findall(r"### BEGIN (?:SOLUTION|HIDDEN TESTS)\n(.*?)### END", src, flags=re.S):
            lines += [ln.strip() for ln in block.splitlines() if len(ln.strip()) > 25]
    return lines


SPECIMEN = "01_peft_theory"          # the lesson used for the students' creative submissions
GUESS = "a"
# What issue 11 saw a student do: try every letter with the quiz's own check. It finds the
# practice keys; graded questions have no key in the student's materials, so it can only guess.
BRUTE_FORCE = f"""QUIZ_ANSWERS = {{}}
for q in quiz.load_bank("01")["questions"]:
    QUIZ_ANSWERS[q["id"]] = "{GUESS}"
    for letter in q["options"]:
        try:
            if quiz.is_correct("01", q["id"], letter):
                QUIZ_ANSWERS[q["id"]] = letter
        except quiz.QuizError:
            break
"""
CELL_TIMEOUT = 30
# Issue 17: the tamperer's four lines (first answer cell), then each exercise a wrapper of the course's own code.
TAMPER = """import contextlib as _cl, utils.checks as _c, utils.quiz as _q
_c.own_work = lambda *a, **k: _cl.nullcontext()
for _n in ('grade_answer', 'check_format', 'check_answered'):
    setattr(_q, _n, lambda *a, **k: None)
from utils import lora as _l

class LoRALinear(_l.LoRALinear):
    pass
"""
WRAPPERS = {name: f"def {name}(*a, **k):\n    return _l.{name}(*a, **k)\n"
            for name in ("lora_param_count", "llama_lora_params", "lora_scaling")}
# An honest student: every lesson 01 exercise written independently of the reference (and correct).
HONEST = {
    "lora_linear": """class LoRALinear(nn.Module):
    \"\"\"My adapter: a frozen layer plus scaling * B(A(x)).\"\"\"

    def __init__(self, base: nn.Linear, r: int, alpha: float):
        super().__init__()
        if type(r) is not int or r < 1:
            raise ValueError("the rank has to be a positive int")
        for weight in base.parameters():
            weight.requires_grad = False
        self.base = base
        down = torch.empty(r, base.in_features)
        torch.nn.init.kaiming_uniform_(down, a=5 ** 0.5)
        self.lora_A = nn.Parameter(down)
        self.lora_B = nn.Parameter(base.weight.new_zeros(base.out_features, r))
        self.scaling = alpha / r

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        low = torch.nn.functional.linear(x, self.lora_A)
        return self.base(x) + self.scaling * torch.nn.functional.linear(low, self.lora_B)

    def merge(self) -> nn.Linear:
        has_bias = self.base.bias is not None
        fused = nn.Linear(self.base.in_features, self.base.out_features, bias=has_bias)
        update = self.scaling * torch.mm(self.lora_B, self.lora_A)
        fused.weight.data = (self.base.weight.data + update).clone()
        if has_bias:
            fused.bias.data = self.base.bias.data.clone()
        return fused
""",
    "lora_param_count": "def lora_param_count(d_out: int, d_in: int, r: int) -> int:\n    return d_out * r + r * d_in\n",
    "llama_lora_params": """def llama_lora_params(config, r: int, targets=("q_proj", "v_proj")) -> int:
    d = config.hidden_size
    hd = getattr(config, "head_dim", None) or d // config.num_attention_heads
    q_dim, kv_dim, ff = config.num_attention_heads * hd, config.num_key_value_heads * hd, config.intermediate_size
    layer_dims = {"q_proj": (q_dim, d), "k_proj": (kv_dim, d), "v_proj": (kv_dim, d), "o_proj": (d, q_dim),
                  "gate_proj": (ff, d), "up_proj": (ff, d), "down_proj": (d, ff)}
    per_block = 0
    for name in targets:
        rows, cols = layer_dims[name]
        per_block += lora_param_count(rows, cols, r)
    return per_block * config.num_hidden_layers
""",
    "lora_scaling": """def lora_scaling(alpha: float, r: int, use_rslora: bool = False) -> float:
    if r < 1:
        raise ValueError("r has to be at least 1")
    denominator = math.sqrt(r) if use_rslora else r
    return alpha / denominator
""",
}
# The renamed copier: the model answer with its local names and comments changed.
RENAMES = {"merged": "fused_layer", "h": "hid", "head_dim": "hdim", "q_out": "qo", "kv_out": "kvo", "shapes": "table",
           "t": "tgt"}


def _renamed(src: str) -> str:
    src = re.sub(r"(?m)^\s*### (BEGIN|END) SOLUTION\n", "", src)
    src = re.sub(r'"""[^"]*"""', '"""Mine."""', src)
    for old, new in RENAMES.items():
        src = re.sub(rf"\b{old}\b", new, src)
    return src


def _reference_copy(name: str) -> str:
    """What a copier pastes: the course's own source of the function or class the exercise asks for."""
    import inspect

    from utils import lora

    obj = {"lora_linear": lora.LoRALinear}.get(name) or getattr(lora, name)
    return inspect.getsource(obj)


# Output a student cannot act on (issue 21 item 10): bitsandbytes' "kernels" notice (quieted when
# utils is imported before torch / peft), library deprecation warnings, the tiny tokenizer's length notice.
UNACTIONABLE = ("pip install kernels", "gemm_4bit_forward", "FutureWarning", "DeprecationWarning",
                "Token indices sequence length is longer")
# Known and not yet fixed (the test fails once they are gone, so the entry is removed with the fix).
KNOWN_UNACTIONABLE: dict[str, str] = {}   # lesson 03 imported bitsandbytes before utils until issue 21


def _output_text(nb) -> str:
    """Everything the executed code cells show: streams, results' plain text, errors."""
    parts = []
    for cell in nb["cells"]:
        for out in cell.get("outputs", []) if cell["cell_type"] == "code" else []:
            text = out.get("text") or out.get("data", {}).get("text/plain") or out.get("evalue") or ""
            parts.append("".join(text) if isinstance(text, list) else text)
    return "\n".join(parts)


def _cells_by_id(nb):
    return {c["metadata"]["nbgrader"]["grade_id"]: c for c in nb["cells"] if "nbgrader" in c["metadata"]}


def _work(root, blank=(), edits=None, drop=()):
    """A student's notebook: the solution, with some exercises left as released, some cells edited or deleted."""
    solved = json.loads((root / "solutions" / SPECIMEN / f"{SPECIMEN}.ipynb").read_text())
    released = _cells_by_id(json.loads((root / "exercises" / SPECIMEN / f"{SPECIMEN}.ipynb").read_text()))
    for grade_id, cell in _cells_by_id(solved).items():
        if grade_id in blank:
            cell["source"] = released[grade_id]["source"]
        if edits and grade_id in edits:
            cell["source"] = edits[grade_id](cell["source"] if isinstance(cell["source"], str) else "".join(cell["source"]))
    solved["cells"] = [c for c in solved["cells"] if c["metadata"].get("nbgrader", {}).get("grade_id") not in drop]
    return json.dumps(solved)


def _submit(root, student, assignment, filename, text):
    folder = root / "submitted" / student / assignment
    folder.mkdir(parents=True, exist_ok=True)
    (folder / filename).write_text(text)


# Each lesson's round trip is its own small course, so pytest-xdist grades lessons in parallel.
# make test runs `-n 2 --dist loadscope`: the tests of one class go to one worker, so each lesson's
# course (class TestRoundTrip_<lesson>, generated below) and the scenario batch (TestScenarios) are
# graded once. (xdist's `xdist_group` marks are not honoured with pytest 9.2: every worker graded
# every lesson.)
_LESSON_RUNS: dict = {}


def _release(root, names, cell_timeout=None):
    shutil.copytree(ROOT / "solutions", root / "solutions",
                    ignore=shutil.ignore_patterns("outputs", ".ipynb_checkpoints", *[n for n in LESSONS if n not in names]))
    api = course.api(root, cell_timeout=cell_timeout)
    for name in names:
        result = api.generate_assignment(name, force=True, create=True)
        assert result["success"], result["error"]


@pytest.fixture(scope="session")
def lesson_run(tmp_path_factory):
    """A temporary course per lesson: released, the model answer (alice) and the untouched release (bob)
    graded with the course's own cell timeout, and feedback written. Built once per lesson."""
    def run(name):
        if name not in _LESSON_RUNS:
            root = tmp_path_factory.mktemp(f"course-{name}")
            _release(root, [name])
            nb = f"{name}.ipynb"
            _submit(root, "alice", name, nb, (root / "solutions" / name / nb).read_text())    # the model answer
            _submit(root, "bob", name, nb, (root / "exercises" / name / nb).read_text())      # untouched release
            rows = grading.grade(root)
            grading.feedback(root)
            _LESSON_RUNS[name] = (root, {r["student"]: r for r in rows})
        return _LESSON_RUNS[name]
    return run


@pytest.fixture(scope="session")
def graded(tmp_path_factory):
    """Lesson 01 as every kind of student submits it, graded in one batch with a short cell timeout.

    Session-scoped: under xdist the scenario tests interleave with other tests of this module on
    their worker, and a module-scoped fixture was torn down and graded again (110 s each time)."""
    root = tmp_path_factory.mktemp("course-scenarios")
    _release(root, [SPECIMEN], cell_timeout=CELL_TIMEOUT)
    nb = f"{SPECIMEN}.ipynb"
    _submit(root, "carol", SPECIMEN, nb, _work(root, blank={"lora_linear"}))              # one exercise not done
    # behaviours that touch different cells share a student (each submission costs a lesson-01 autograde, ~20 s on
    # one core): dave games the grader three ways, erin's notebook hangs and is renamed, oscar copies two ways
    _submit(root, "dave", SPECIMEN, nb, _work(root, blank={"lora_scaling"}, drop={"test_lora_merge"}, edits={
        "test_lora_scaling": lambda src: "assert True\n",                                  # edits a locked test,
        "quiz_answers": lambda src: BRUTE_FORCE}))                                         # deletes one, tries every letter
    _submit(root, "erin", SPECIMEN, f"Copy of {nb}", _work(root, edits={                  # a cell that never ends, renamed
        "lora_param_count": lambda src: "import time\ntime.sleep(3600)\n" + src}))
    _submit(root, "heidi", SPECIMEN, nb, '{"cells": [ this is not json')                 # a broken file
    _submit(root, "mallory", SPECIMEN, nb, _work(root, blank={"quiz_answers"}, edits={       # tampers with the grader
        "lora_linear": lambda src: TAMPER, **{k: (lambda src, v=v: v) for k, v in WRAPPERS.items()}}))
    _submit(root, "oscar", SPECIMEN, nb, _work(root, edits={                                # pastes the utils reference,
        **{k: (lambda src, k=k: _reference_copy(k)) for k in ("lora_linear", "lora_param_count")},
        **{k: _renamed for k in ("llama_lora_params", "lora_scaling")}}))                 # renames a classmate's answer
    _submit(root, "trent", SPECIMEN, nb, _work(root, edits={k: (lambda src, v=v: v) for k, v in HONEST.items()}))  # honest
    rows = grading.grade(root, cell_timeout=CELL_TIMEOUT)
    return root, {(r["student"], r["assignment"]): r for r in rows}


def _cell_scores(root, student):
    from nbgrader.api import Gradebook

    with Gradebook(f"sqlite:///{root / 'gradebook.db'}") as gb:
        sub = gb.find_submission(SPECIMEN, student)
        return {g.name: g.score for nb in sub.notebooks for g in nb.grades}





class _LessonRoundTrip:
    """One lesson's round trip: released, the model answer and the untouched release graded, feedback."""

    lesson = ""

    def test_committed_exercises_are_what_release_produces_now(self, lesson_run):
        name = self.lesson
        root, _ = lesson_run(name)
        fresh = (root / "exercises" / name / f"{name}.ipynb").read_text()
        committed = (ROOT / "exercises" / name / f"{name}.ipynb").read_text()
        assert fresh == committed, f"exercises/{name} is stale: run `make release` and commit the result"
        assert sorted(p.name for p in (ROOT / "exercises" / name).iterdir()) == [f"{name}.ipynb"]

    def test_solution_gets_full_marks_and_figures(self, lesson_run):
        name = self.lesson
        root, rows = lesson_run(name)
        row = rows["alice"]
        assert row["max_score"] > 0 and row["score"] == row["max_score"], row
        assert not row["problems"], row["problems"]
        figures = list((root / "autograded" / "alice" / name / "outputs").glob("*.png"))
        assert figures and all(f.stat().st_size > 5_000 for f in figures), "the lesson's figures were not written"

    def test_untouched_release_scores_zero_without_crashing(self, lesson_run):
        name = self.lesson
        _, rows = lesson_run(name)
        row = rows["bob"]
        assert row["score"] == 0 and row["max_score"] == rows["alice"]["max_score"], row

    def test_the_executed_lesson_shows_no_warning_a_student_cannot_act_on(self, lesson_run):
        """The model answer as autograded (executed in the smoke profile): no library notice or deprecation
        warning, and a generation score of 0 at 100 % unparseable comes with the sentence that explains it."""
        name = self.lesson
        root, _ = lesson_run(name)
        text = _output_text(json.loads((root / "autograded" / "alice" / name / f"{name}.ipynb").read_text()))
        assert text.strip(), "the autograded notebook kept no outputs"
        found = [p for p in UNACTIONABLE if p in text]
        known = KNOWN_UNACTIONABLE.get(name)
        if known:
            assert known in found, f"{name} no longer shows {known!r}: remove it from KNOWN_UNACTIONABLE"
            found.remove(known)
        assert not found, f"{name} shows output a student cannot act on: {found}"
        if "unparseable 100%" in text:
            assert "never writes a label" in text or "does not answer in the asked format" in text, \
                "generation is 100 % unparseable and no sentence says why"

    def test_grades_csv_and_feedback(self, lesson_run):
        name = self.lesson
        root, rows = lesson_run(name)
        lines = (root / "grades.csv").read_text().splitlines()
        assert lines[0] == "student,assignment,score,max_score,failed_cells,problems,flags" and len(lines) == 1 + len(rows)
        for student in ("alice", "bob"):
            html = root / "feedback" / student / name / f"{name}.html"
            assert html.exists() and "Score" in html.read_text()


def _lesson08_shows_the_measured_table(self, lesson_run):
    """Issue 18: the executed lesson 08 (smoke) shows sacreBLEU's signature, the untouched rows, LoRA and full
    fine-tuning with parameters / time / memory / size, BLEU inside its interval, and the seed's labelled reference."""
    import pandas as pd

    root, _ = lesson_run(self.lesson)
    folder = root / "autograded" / "alice" / self.lesson
    text = _output_text(json.loads((folder / f"{self.lesson}.ipynb").read_text()))
    assert re.search(r"sacreBLEU signature: nrefs:1\|bs:\d+\|seed:12345\|case:mixed\|eff:no\|tok:13a\|smooth:exp\|version:2\.6\.0",
                     text), "no sacreBLEU signature in the output"
    assert "NOT meaningful" in text and "seed 004, 'LoRA'" in text and "16M (~21 %)" in text
    table = pd.read_csv(folder / "outputs" / "08_table.csv", index_col=0)
    assert list(table.index) == ["untouched, greedy", "untouched, beam 4", "LoRA, beam 4", "full fine-tuning, beam 4",
                                 "LoRA, greedy"]
    assert ((table["BLEU 95% CI low"] <= table["BLEU"]) & (table["BLEU"] <= table["BLEU 95% CI high"])).all()
    assert table[["chrF", "ROUGE-L"]].notna().all().all()
    lora_row, full_row = table.loc["LoRA, beam 4"], table.loc["full fine-tuning, beam 4"]
    assert 0 < lora_row["trainable parameters"] < 0.05 * full_row["trainable parameters"] and full_row["trainable %"] == 100
    assert 0 < lora_row["size on disk (MiB)"] < full_row["size on disk (MiB)"]
    memory = next(c for c in table.columns if c.startswith("peak memory"))
    assert (table.loc[["LoRA, beam 4", "full fine-tuning, beam 4"], ["seconds per step", memory]] > 0).all().all()


_EXTRA = {"08_lora_seq2seq": {"test_the_executed_lesson_shows_the_measured_table": _lesson08_shows_the_measured_table}}
for _name in LESSONS:
    globals()[f"TestRoundTrip_{_name}"] = type(f"TestRoundTrip_{_name}", (_LessonRoundTrip,),
                                               {"lesson": _name, **_EXTRA.get(_name, {})})


@pytest.mark.parametrize("name", LESSONS)
def test_no_solution_or_hidden_test_leaks_into_exercises(name):
    text = (ROOT / "exercises" / name / f"{name}.ipynb").read_text()
    for marker in ("BEGIN SOLUTION", "END SOLUTION", "BEGIN HIDDEN TESTS", "END HIDDEN TESTS"):
        assert marker not in text
    leaked = [ln for ln in _hidden_and_solution_lines(ROOT / "solutions" / name / f"{name}.ipynb")
              if json.dumps(ln)[1:-1] in text]
    assert not leaked, f"lines from solutions or hidden tests appear in the exercise: {leaked[:3]}"











class TestScenarios:
    """Lesson 01 as every kind of student submits it (one batch, graded once)."""

    def test_partial_work_gets_exact_per_cell_points(self, graded):
        root, rows = graded
        scores = _cell_scores(root, "carol")
        for cell in ("test_lora_init", "test_lora_matches_peft", "test_lora_merge", "test_lora_trains"):
            assert scores[cell] == 0, cell                                  # these need LoRALinear
        assert scores["test_lora_param_count"] == 1 and scores["test_llama_lora_params"] == 2 and scores["test_lora_scaling"] == 1
        assert scores["test_quiz_practice"] == 1 and all(scores[f"test_quiz_q{i}"] == 1 for i in range(7, 10))
        full = rows[("carol", SPECIMEN)]["max_score"]
        assert rows[("carol", SPECIMEN)]["score"] == full - 6
        assert "test_lora_init (0/1)" in rows[("carol", SPECIMEN)]["failed_cells"]


    def test_an_edited_locked_test_is_restored(self, graded):
        root, rows = graded
        assert _cell_scores(root, "dave")["test_lora_scaling"] == 0
        assert rows[("dave", SPECIMEN)]["score"] == rows[("dave", SPECIMEN)]["max_score"] - 1 - 4   # and the quiz (below)
        graded_nb = json.loads((root / "autograded" / "dave" / SPECIMEN / f"{SPECIMEN}.ipynb").read_text())
        source = "".join(_cells_by_id(graded_nb)["test_lora_scaling"]["source"])
        assert not source.startswith("assert True") and "check_implemented(lora_scaling, 32, 8)" in source
        assert "lora_scaling(16, 64, use_rslora=True)" in source           # the hidden tests were put back and ran


    def test_a_cell_that_never_ends_is_stopped_and_the_rest_graded(self, graded):
        root, rows = graded
        scores = _cell_scores(root, "erin")
        assert scores["test_lora_param_count"] == 0 and scores["test_llama_lora_params"] == 0   # never got defined
        assert scores["test_lora_init"] == 1 and scores["test_quiz_q9"] == 1
        assert rows[("erin", SPECIMEN)]["score"] == rows[("erin", SPECIMEN)]["max_score"] - 3


    def test_a_deleted_graded_cell_is_reported_restored_and_graded(self, graded):
        root, rows = graded
        row = rows[("dave", SPECIMEN)]
        assert any("test_lora_merge" in p and "deleted" in p for p in row["problems"]), row["problems"]
        assert _cell_scores(root, "dave")["test_lora_merge"] == 1
        assert row["score"] == row["max_score"] - 1 - 4                      # the edited test_lora_scaling and the quiz lost


    def test_a_renamed_notebook_is_graded_under_its_name(self, graded):
        root, rows = graded
        row = rows[("erin", SPECIMEN)]
        assert any("renamed" in p and "Copy of" in p for p in row["problems"]), row["problems"]
        assert _cell_scores(root, "erin")["test_lora_init"] == 1 and row["score"] == row["max_score"] - 3 > 0


    def test_a_broken_file_is_reported_and_the_batch_goes_on(self, graded):
        _, rows = graded
        row = rows[("heidi", SPECIMEN)]
        assert row["score"] == 0 and any("not a valid notebook" in p for p in row["problems"])
        assert len({s for s, _ in rows}) == 7                              # everyone after her was graded too


    def test_brute_forcing_the_quiz_earns_nothing(self, graded):
        """Issue 11: trying every letter with the quiz's own check finds the practice keys and nothing about the
        graded questions. Issue 17: quiz points come from the answers cell read as literals, outside the kernel,
        so answers computed by code score 0, with a sentence that says why."""
        root, rows = graded
        scores = _cell_scores(root, "dave")
        keys = {q["id"]: q["answer"] for q in yaml.safe_load((ROOT / "course/quizzes" / f"{SPECIMEN}.yaml").read_text())["questions"]
                if q.get("graded")}
        assert set(keys) == {"q7", "q8", "q9"}
        assert scores["test_quiz_practice"] == 0 and all(scores[f"test_quiz_{qid}"] == 0 for qid in keys)
        row = rows[("dave", SPECIMEN)]
        assert row["score"] == row["max_score"] - 1 - len(keys) - 1       # the last 1: his edited locked test (above)
        # nor could dave have read them: his released notebook and quiz bank hold no graded key
        released = (root / "exercises" / SPECIMEN / f"{SPECIMEN}.ipynb").read_text()
        assert "grade_answer" not in released and "QUIZ_ANSWERS.update" not in released
        bank = json.loads((ROOT / "utils" / "quizzes" / f"{SPECIMEN}.json").read_text())
        assert all(set(q) == {"id", "text", "options", "graded"} for q in bank["questions"] if q["id"] in keys)
        # the feedback explains the graded questions after grading, and why they scored 0
        html = _feedback_html(root, "dave")
        assert "Graded from your submitted answers cell" in html and "the answer is" in html

    def test_the_tamperer_gets_nothing_and_is_flagged(self, graded):
        """Issue 17's four lines: switch off own_work and the quiz helpers, wrap the course's functions."""
        root, rows = graded
        row = rows[("mallory", SPECIMEN)]
        scores = _cell_scores(root, "mallory")
        assert row["score"] <= scores["test_quiz_practice"] <= 1 and row["score"] == 0, (row, scores)
        assert any("tampering" in f and "own_work" in f for f in row["flags"]), row["flags"]
        assert any("setattr" in f or "attribute" in f for f in row["flags"]), row["flags"]
        csv_row = next(r for r in csv.DictReader((root / "grades.csv").open()) if r["student"] == "mallory")
        assert "tampering" in csv_row["flags"]
        assert "reaches into the grader" in _feedback_html(root, "mallory")

    def test_the_copiers_are_flagged(self, graded):
        root, rows = graded
        oscar = rows[("oscar", SPECIMEN)]["flags"]
        assert any(f.startswith("similar: lora_linear to reference") for f in oscar), oscar
        classmates = {"carol", "dave", "erin"}                                          # hold the model answer he renamed
        assert any(f.startswith("similar: llama_lora_params to ") and f.split(" to ")[1].split()[0] in classmates
                   for f in oscar), oscar
        listed = list(csv.DictReader((root / "similarity.csv").open()))
        assert "oscar" in {r["student"] for r in listed} and all(float(r["score"]) > 0 for r in listed)

    def test_the_honest_student_gets_full_marks_and_no_flag(self, graded):
        _, rows = graded
        row = rows[("trent", SPECIMEN)]
        assert row["score"] == row["max_score"] > 0, row
        assert row["flags"] == [], row["flags"]


def _feedback_html(root, student) -> str:
    path = root / "feedback" / student / SPECIMEN / f"{SPECIMEN}.html"
    if not path.exists():
        grading.feedback(root)
    return path.read_text()


@pytest.mark.parametrize("name", LESSONS)
def test_the_blank_quiz_answers_cell_lets_run_all_go_on(name):
    """The released answers cell is the dict of None, not a NotImplementedError that stops "Run all"."""
    nb = json.loads((ROOT / "exercises" / name / f"{name}.ipynb").read_text())
    cell = _cells_by_id(nb)["quiz_answers"]
    source = "".join(cell["source"])
    assert "NotImplementedError" not in source
    namespace = {}
    exec(source, namespace)
    assert namespace["QUIZ_ANSWERS"] and set(namespace["QUIZ_ANSWERS"].values()) == {None}
