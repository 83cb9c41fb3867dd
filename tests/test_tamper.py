"""course.tools.tamper: the static tamper report flags code that reaches into the grader, and no reference solution.

Fast (no kernel, no model): notebooks are built with nbformat or read from solutions/."""

from pathlib import Path

import nbformat
import pytest

from course.tools import tamper

ROOT = Path(__file__).resolve().parents[1]
SOLUTIONS = sorted(ROOT.glob("solutions/*/*.ipynb"))

ISSUE_TAMPERER = (
    "import contextlib as _cl, utils.checks as _c, utils.quiz as _q\n"
    "_c.own_work = lambda *a, **k: _cl.nullcontext()\n"
    "for _n in ('grade_answer', 'check_format', 'check_answered'):\n"
    "    setattr(_q, _n, lambda *a, **k: None)\n"
)


def _meta(grade_id, *, solution=False, grade=False, locked=False, points=0):
    return {"nbgrader": {"grade_id": grade_id, "solution": solution, "grade": grade, "locked": locked,
                         "points": points, "schema_version": 3}}


def lesson(solution_source: str, *, solution_id="mask_prompt") -> nbformat.NotebookNode:
    """A lesson-04-shaped notebook: locked setup, the imports cell, one solution cell, its locked test."""
    v4 = nbformat.v4
    nb = v4.new_notebook()
    nb.cells = [
        v4.new_markdown_cell("# Lesson"),
        v4.new_code_cell("import sys\nif 'google.colab' not in sys.modules:\n    pass", metadata=_meta("setup", locked=True)),
        v4.new_code_cell("import torch\n\nfrom utils import checks, data, prompts, quiz"),
        v4.new_code_cell(solution_source, metadata=_meta(solution_id, solution=True)),
        v4.new_code_cell("with checks.own_work(mask_prompt, prompts.mask_prompt):\n    assert mask_prompt([1], [2]) == [-100, 2]",
                         metadata=_meta("test_mask_prompt", grade=True, locked=True, points=2)),
        v4.new_code_cell("checks.check_defined(globals(), 'mask_prompt')"),
    ]
    return nb


HONEST = '''def mask_prompt(prompt_ids: list[int], answer_ids: list[int]) -> list[int]:
    """Labels: -100 for the prompt, the answer's ids for the answer."""
    ### BEGIN SOLUTION
    return [-100] * len(prompt_ids) + list(answer_ids)
    ### END SOLUTION
'''


def test_issue_tamperer_is_flagged_on_both_lines():
    nb = lesson(ISSUE_TAMPERER + "\n" + HONEST)
    rows = tamper.tampered_cells(nb)
    assert [(index, key) for index, key, _ in rows] == [(3, "mask_prompt")]
    kinds = {(f.line, f.kind) for f in rows[0][2]}
    assert (2, "module attribute write") in kinds          # _c.own_work = ...
    assert (4, "setattr on an import") in kinds            # setattr(_q, _n, ...)
    lines = tamper.report_lines(tamper.scan_notebook(nb))
    assert "mask_prompt line 2: module attribute write: _c.own_work = lambda *a, **k: _cl.nullcontext()" in lines
    assert "mask_prompt line 4: setattr on an import: setattr(_q, _n, lambda *a, **k: None)" in lines


HOSTILE = {
    "sys.modules": ("import sys\nsys.modules['utils.quiz'].grade_answer = print", "sys.modules"),
    "sys.modules lookup": ("import sys as s\nq = s.modules.get('utils.checks')", "sys.modules"),
    "builtins": ("import builtins\nbuiltins.isinstance = lambda *a: True", "builtins"),
    "__builtins__": ("__builtins__.len = lambda x: 0", "builtins"),
    "__code__": ("def ok(*a, **k):\n    return None\nquiz.grade_answer.__code__ = ok.__code__", "function internals"),
    "__globals__": ("g = prompts.mask_prompt.__globals__", "function internals"),
    "importlib.reload": ("import importlib\nimportlib.reload(quiz)", "importlib.reload"),
    "from importlib import reload": ("from importlib import reload as r\nr(checks)", "importlib.reload"),
    "gc.get_referrers": ("import gc\nfor holder in gc.get_referrers(checks.own_work):\n    pass", "gc object graph"),
    "sys._getframe": ("import sys\nframe = sys._getframe(1)", "frame inspection"),
    "inspect.currentframe": ("import inspect\nf = inspect.currentframe().f_back", "frame inspection"),
    "globals() write": ("globals()['quiz'] = None", "globals write"),
    "globals().update": ("globals().update(checks=None)", "globals write"),
    "del checks.own_work": ("del checks.own_work", "module attribute write"),
    "exec": ("exec('quiz.grade_answer = print')", "exec/eval/compile"),
    "rebind quiz": ("class Quiz:\n    def grade_answer(self, *a):\n        pass\nquiz = Quiz()", "rebinds an imported name"),
    "rebind in a function": ("def go():\n    global checks\n    checks = None\ngo()", "rebinds an imported name"),
    "fake utils module": ("import types\nprompts = types.SimpleNamespace(mask_prompt=len)", "rebinds an imported name"),
    "alias through a loop": ("import utils.quiz as q, utils.checks as c\nfor m in (q, c):\n    m.own_work = None",
                             "module attribute write"),
    "alias through assignment": ("m = quiz\nm.check_format = print", "module attribute write"),
    "__setattr__": ("object.__setattr__(quiz, 'check_format', print)", "setattr on an import"),
    "module __dict__": ("quiz.__dict__['check_format'] = print", "module __dict__"),
    "vars(module)": ("vars(checks)['own_work'] = None", "module __dict__"),
    "__import__": ("__import__('utils.quiz').quiz.grade_answer = print", "dynamic import"),
    "monkeypatch torch": ("torch.allclose = lambda *a, **k: True", "module attribute write"),
    "%run": ("%run helper.py", "ipython internals"),
    "os._exit": ("import os\nos._exit(0)", "process control"),
    "mock.patch": ("from unittest import mock\nmock.patch('utils.checks.own_work').start()", "mock patch"),
    "locals() write": ("locals()['checks'] = None", "globals write"),
    "setattr passed around": ("f = setattr\nf(quiz, 'grade_answer', print)", "builtin passed around"),
    "setattr through map": ("list(map(setattr, [quiz], ['check_format'], [print]))", "builtin passed around"),
    "sys.modules fetched": ("import sys\nq = sys.modules['utils.quiz']\nq.grade_answer = print", "sys.modules"),
}


@pytest.mark.parametrize("name", list(HOSTILE))
def test_each_hostile_form_is_flagged(name):
    source, kind = HOSTILE[name]
    findings = tamper.scan_notebook(lesson(source))["mask_prompt"]
    assert kind in {f.kind for f in findings}, (name, findings)


@pytest.mark.parametrize("path", SOLUTIONS, ids=lambda p: p.parent.name)
def test_reference_solutions_have_no_finding(path):
    """Every editable cell of every lesson, solution cells with their BEGIN/END SOLUTION markers kept."""
    assert SOLUTIONS, "no solutions/*/*.ipynb found"
    scanned = tamper.scan_notebook(path)
    nb = nbformat.read(path, as_version=4)
    solution_ids = {c.metadata["nbgrader"]["grade_id"] for c in nb.cells if c.metadata.get("nbgrader", {}).get("solution")}
    assert solution_ids <= set(scanned), "every solution cell is scanned"
    assert any("### BEGIN SOLUTION" in c.source for c in nb.cells if c.metadata.get("nbgrader", {}).get("solution"))
    assert {k: v for k, v in scanned.items() if v} == {}
    assert tamper.tampered_cells(path) == []


def test_normal_code_is_not_flagged():
    source = '''import math
import random

import numpy as np
import torch
import torch.nn as nn
from torch.nn import functional as F


class Head(nn.Module):
    def __init__(self, d):
        super().__init__()
        self.proj = nn.Linear(d, d)
        self.proj.weight.requires_grad_(False)

    def forward(self, x):
        return F.relu(self.proj(x))


def helper(xs):
    data = [math.sqrt(x) for x in xs]     # a local named like an import: not a rebinding
    return data


torch.manual_seed(0)
random.seed(0)
model = Head(4)
model.config = {"pad_token_id": 0}
setattr(model, "extra", 1)
import gc
gc.collect()
import sys
if "google.colab" not in sys.modules:    # the setup cell's check, copied: a read
    pass
for name, value in vars(model).items():  # vars() of the student's own object
    pass
def peek():
    return sorted(locals())
x = np.zeros(3)
checks.check_defined(globals(), "helper")
'''
    assert tamper.scan_notebook(lesson(source)) == {"cell 2": [], "mask_prompt": [], "cell 5": []}


def test_keys_order_and_locked_cells():
    nb = lesson(HONEST)
    assert list(tamper.scan_notebook(nb)) == ["cell 2", "mask_prompt", "cell 5"]   # locked setup and test skipped
    # a test cell that only claims to be locked (no grade_id) runs as written: it is scanned
    nb.cells[4].metadata["nbgrader"].pop("grade_id")
    nb.cells[4].source = "checks.own_work = None"
    assert [(i, k) for i, k, _ in tamper.tampered_cells(nb)] == [(4, "cell 4")]
    # a grade_id the release does not lock runs too: with release= only the release's locked ids are trusted
    forged = lesson(HONEST)
    forged.cells[4].metadata["nbgrader"]["grade_id"] = "test_made_up"
    forged.cells[4].source = "checks.own_work = None"
    assert tamper.tampered_cells(forged) == []
    assert [(i, k) for i, k, _ in tamper.tampered_cells(forged, release=lesson(HONEST))] == [(4, "test_made_up")]


def test_unparseable_cell_and_magics():
    rows = tamper.tampered_cells(lesson("def mask_prompt(:\n    pass"))
    assert [(k, [f.kind for f in fs]) for _, k, fs in rows] == [("mask_prompt", ["unparseable"])]
    magics = "%matplotlib inline\n!pip install tqdm\nimport sys\nsys.modules['utils.quiz'] = None\n"
    findings = tamper.scan_notebook(lesson(magics))["mask_prompt"]
    assert [(f.line, f.kind, f.text) for f in findings] == [(4, "sys.modules", "sys.modules['utils.quiz'] = None")]
    assert tamper.scan_notebook(lesson("%matplotlib inline\n!pip install tqdm\n" + HONEST))["mask_prompt"] == []


def test_not_a_notebook(tmp_path):
    bad = tmp_path / "alice.ipynb"
    bad.write_text("{ not json")
    with pytest.raises(tamper.NotebookError, match="is not a readable notebook.*submit the .ipynb"):
        tamper.scan_notebook(bad)
