"""Exercises that have a reference in utils keep its name and signature (lessons 05 and 06).

Later lessons, and the notebooks after each exercise, call the utils version; a student who
writes the exercise must be able to swap one for the other.
"""

import ast
import inspect
import json

import pytest

from utils import evaluation, fewshot, sweep

EXERCISES = [
    ("05_few_shot", "few_shot_messages", fewshot.few_shot_messages),
    ("05_few_shot", "balanced_examples", fewshot.balanced_examples),
    ("05_few_shot", "parse_label", evaluation.parse_label),
    ("06_rank_sweep", "predicted_trainable", sweep.predicted_trainable),
    ("06_rank_sweep", "reset_base", sweep.reset_base),
]


def solution_signature(root, lesson, name):
    """The signature of `name` as the exercise cell (nbgrader grade_id = name) defines it, annotations left out."""
    nb = json.loads((root / "solutions" / lesson / f"{lesson}.ipynb").read_text())
    cells = [c for c in nb["cells"] if c["metadata"].get("nbgrader", {}).get("grade_id") == name]
    assert len(cells) == 1, f"{lesson}: no exercise cell with grade_id {name!r}"
    tree = ast.parse("".join(cells[0]["source"]))
    (fn,) = [node for node in tree.body if isinstance(node, ast.FunctionDef) and node.name == name]
    fn.body, fn.returns, fn.decorator_list = [ast.Pass(lineno=fn.lineno, col_offset=4)], None, []
    for arg in fn.args.args + fn.args.kwonlyargs:
        arg.annotation = None
    namespace: dict = {}
    exec(compile(ast.fix_missing_locations(ast.Module(body=[fn], type_ignores=[])), name, "exec"), namespace)   # noqa: S102 - our own notebook
    return inspect.signature(namespace[name])


def bare(signature):
    return [(p.name, p.kind, p.default) for p in signature.parameters.values()]


@pytest.mark.parametrize("lesson,name,reference", EXERCISES, ids=[f"{l}:{n}" for l, n, _ in EXERCISES])
def test_exercise_has_the_name_and_signature_of_its_reference(root, lesson, name, reference):
    assert reference.__name__ == name
    assert bare(solution_signature(root, lesson, name)) == bare(inspect.signature(reference))
