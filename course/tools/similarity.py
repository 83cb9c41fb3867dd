"""Similarity report: each exercise's solution against the ``utils`` reference and every other student's.

For every exercise (an nbgrader solution cell other than ``quiz_answers``) of every submission,
the cell's source is compared with (a) the course function of the same name in ``utils/*.py``
(lesson 04's ``mask_prompt`` -> ``utils.prompts.mask_prompt``; found by parsing the modules with
``ast``, never by importing them; three exercises named apart from theirs, such as lesson 08's
``corpus_bleu``, get the references their hidden test's ``checks.own_work(...)`` switches off) and (b) the same exercise (same grade_id) of every other
student. What the students were given (the released stub: signature, docstring, ``raise
NotImplementedError()``) is boilerplate and is taken out of both sides first, so two blank
submissions share nothing. Pairs scoring at least THRESHOLD go to a CSV the instructor opens
(``write_report``: student, exercise, score, other; highest first). A high score is a reason to
read two cells side by side, not a verdict.

How two sources are compared (a small normalised-AST comparison, no third-party code):

1. parse with Python's own ``ast`` (after IPython's transformation of magics, as in
   ``course.tools.tamper``); docstrings go, comments never reach the tree;
2. walk the tree in source order and emit one token per node: its type; every identifier the
   source binds (arguments, assigned names, loop and comprehension variables, its own functions and
   classes) becomes a positional placeholder (the first one met is ``$0``, ...), so renaming
   variables changes nothing; names it does not bind (``torch``, ``len``, ``IGNORE_INDEX``) and
   attribute names (``.append``, ``.amax``) stay, numbers stay, every string is one ``str`` token;
3. the set of K-grams (K consecutive tokens) of each source, minus the K-grams of the stub, is its
   fingerprint (MOSS's k-grams, without winnowing: the cells are short enough to keep them all);
4. score = shared K-grams / the smaller fingerprint (a copy padded with extra code still scores
   high). A fingerprint of fewer than MIN_GRAMS K-grams scores 0: an exercise of a line or two is
   written the same way by everyone who solves it, so a match says nothing. In the solution
   notebooks five of the 27 exercises are that short (K-grams after the stub: lora_param_count 9,
   letter_probabilities 18, nearest_level 20, lora_scaling 27, bits_per_param 28) and are not judged;
   the next shortest is next_token_accuracy with 48.

Why not a library: copydetect (0.5.0, MIT, github.com/blingenf/copydetect) is the maintained-looking
candidate, a MOSS-style winnowing tool, but its last release is of March 2024, it tokenises with
Pygments' regex lexer (not Python's tokenizer: the brief asks for Python's), it replaces every name
by the same letter (``V``), so attribute and library names stop counting (measured here: without
attribute names the closest independent pair rises from 0.20 to 0.30), and its API wants files
on disk and writes an HTML report; it would add pygments/jinja2/tqdm and a C extension to the
grader for about 100 lines of code here. pycode-similar (1.4, 2020) is AST based but unmaintained.

Measured on the fixtures of tests/test_similarity.py (K = 5,
MIN_GRAMS = 30) for lesson 04's mask_prompt and lesson 02's absmax_quantize, stub taken out:

    verbatim copy of utils.prompts.mask_prompt vs the reference           1.00
    copy, every variable renamed, comments and messages rewritten,
      one expression pulled into a new variable, vs reference / verbatim  0.91 / 0.91
    two independent correct mask_prompt (loops vs comprehension)          0.02
      each of them vs the reference                                       0.11, 0.04
    two independent correct absmax_quantize                               0.10
      each of them vs utils.quant.absmax_quantize                         0.09, 0.20
    a blank submission (the stub) vs another blank / vs the reference     0.00 / 0.00
    (for scale) the solution notebook's own cells, same logic as utils
      but typed apart: mask_prompt, next_token_accuracy, absmax           0.65, 0.85, 0.67

(K = 4 and 6 give 0.94 / 0.90 for the renamed copy and at most 0.24 / 0.17 for the independent
ones.) THRESHOLD = 0.5 sits between 0.20 and 0.91 with a margin of 0.3 below and 0.4 above; the
tests hold both sides to that margin minus 0.1 (independent <= THRESHOLD - 0.2, copies >=
THRESHOLD + 0.2). A student who writes the reference's own logic line by line lands near 0.65-0.85
and is listed: read the cells.

What it cannot catch: a copy rewritten by hand (loops turned into comprehensions, statements
reordered), code copied from outside the class and the reference, or two students who share an
approach the exercise all but dictates. It reads every cell as source: nothing is run.

API: ``exercise_sources(nb) -> {grade_id: source}``; ``similarity(a, b, stub="") -> float``;
``report(submissions, stubs, threshold=THRESHOLD) -> [Pair]``; ``write_report(pairs, path)``.
``python -m course.tools.similarity RELEASE.ipynb SUBMISSION.ipynb... [-o similarity.csv]``
(student = the submission's parent folder name, as in nbgrader's submitted/<student>/<assignment>/).
"""

from __future__ import annotations

import ast
import csv
import functools
import warnings
from dataclasses import dataclass
from pathlib import Path

from course.tools.tamper import NotebookError, cell_source, load_notebook, nbgrader_meta, python_source

K = 5             # tokens per k-gram
MIN_GRAMS = 30    # fewer k-grams than this (after the stub is taken out): too short to judge, score 0
THRESHOLD = 0.5   # see the measurements in the module docstring
ROOT = Path(__file__).resolve().parents[2]
UTILS = ROOT / "utils"
NOT_EXERCISES = {"quiz_answers"}


@dataclass(frozen=True)
class Pair:
    student: str
    exercise: str      # the grade_id
    score: float
    other: str         # another student's name, or "reference utils.<module>.<function>"


# --- sources -------------------------------------------------------------------------------------------


def exercise_sources(nb) -> dict[str, str]:
    """{grade_id: source} of the notebook's exercise cells (nbgrader solution cells but the quiz's).

    `nb`: a path, a notebook dict or an nbformat node. A file that is not a notebook raises
    NotebookError with one sentence naming it."""
    nb = load_notebook(nb)
    out = {}
    for cell in nb["cells"]:
        meta = nbgrader_meta(cell)
        if cell.get("cell_type") == "code" and meta.get("solution") and meta.get("grade_id") \
                and meta["grade_id"] not in NOT_EXERCISES:
            out[meta["grade_id"]] = cell_source(cell)
    return out


@functools.lru_cache(maxsize=1)
def references() -> dict[str, list[tuple[str, str]]]:
    """{name: [("utils.<module>.<name>", source), ...]} of every top-level function and class in utils/*.py."""
    index: dict[str, list[tuple[str, str]]] = {}
    for path in sorted(UTILS.glob("*.py")):
        text = path.read_text(encoding="utf-8")
        for node in ast.parse(text).body:
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                index.setdefault(node.name, []).append((f"utils.{path.stem}.{node.name}",
                                                        ast.get_source_segment(text, node)))
    return index


@functools.lru_cache(maxsize=1)
def _utils_sources() -> dict[str, str]:
    return {qual: src for entries in references().values() for qual, src in entries}


@functools.lru_cache(maxsize=1)
def own_work_references() -> dict[str, tuple[str, ...]]:
    """{exercise function: utils qualnames} from the hidden tests' ``checks.own_work(f, quant.g, ...)``.

    Three exercises are named apart from their reference (lesson 08's ``corpus_bleu`` is
    ``utils.evaluation.corpus_bleu_from_tokens``; lesson 03's ``nf4_quantize_block`` is tested against
    ``references = (quant.nf4_quantize, ...)``): the test cells of solutions/*/*.ipynb name them."""
    modules = {p.stem for p in UTILS.glob("*.py")}
    known = _utils_sources()
    out: dict[str, list[str]] = {}
    for path in sorted(ROOT.glob("solutions/*/*.ipynb")):
        for cell in load_notebook(path)["cells"]:
            if not nbgrader_meta(cell).get("grade") or cell.get("cell_type") != "code":
                continue
            tree = _parse(cell_source(cell))
            if tree is None:
                continue
            tuples = {t.id: n.value.elts for n in ast.walk(tree) if isinstance(n, ast.Assign)
                      and isinstance(n.value, (ast.Tuple, ast.List)) for t in n.targets if isinstance(t, ast.Name)}
            for call in ast.walk(tree):
                if not (isinstance(call, ast.Call) and isinstance(call.func, ast.Attribute)
                        and call.func.attr == "own_work" and call.args and isinstance(call.args[0], ast.Name)):
                    continue
                args = []
                for a in call.args[1:]:
                    args.extend(tuples.get(a.value.id, []) if isinstance(a, ast.Starred) and isinstance(a.value, ast.Name) else [a])
                for a in args:
                    if isinstance(a, ast.Attribute) and isinstance(a.value, ast.Name) and a.value.id in modules:
                        qual = f"utils.{a.value.id}.{a.attr}"
                        if qual in known and qual not in out.setdefault(call.args[0].id, []):
                            out[call.args[0].id].append(qual)
    return {name: tuple(quals) for name, quals in out.items()}


def reference_sources(names) -> list[tuple[str, str]]:
    """(qualname, source) of the utils references of the functions `names`: same name, or named by own_work."""
    quals = dict.fromkeys(q for n in names for q, _ in references().get(n, []))
    quals.update(dict.fromkeys(q for n in names for q in own_work_references().get(n, ())))
    return [(q, _utils_sources()[q]) for q in quals]


def defined_names(src: str) -> list[str]:
    """Top-level functions and classes a source defines, in order (nothing for one that does not parse)."""
    tree = _parse(src)
    return [n.name for n in (tree.body if tree else [])
            if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))]


# --- normalised tokens -------------------------------------------------------------------------------------


def _parse(src: str) -> ast.Module | None:
    try:
        return ast.parse(python_source(src))
    except (SyntaxError, ValueError):
        return None


def _bound_names(tree: ast.AST) -> set[str]:
    bound = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Name) and isinstance(node.ctx, (ast.Store, ast.Del)):
            bound.add(node.id)
        elif isinstance(node, ast.arg):
            bound.add(node.arg)
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            bound.add(node.name)
        elif isinstance(node, ast.ExceptHandler) and node.name:
            bound.add(node.name)
    return bound


def _is_docstring(node: ast.AST) -> bool:
    return isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant) and isinstance(node.value.value, str)


def tokens(src: str) -> list[str]:
    """The normalised token sequence of a source (empty for one that does not parse)."""
    tree = _parse(src)
    if tree is None:
        return []
    bound = _bound_names(tree)
    placeholders: dict[str, str] = {}
    out: list[str] = []

    def name(identifier: str) -> str:
        if identifier in bound:
            return placeholders.setdefault(identifier, f"${len(placeholders)}")
        return identifier

    def visit(node: ast.AST) -> None:
        if isinstance(node, (ast.Load, ast.Store, ast.Del, ast.expr_context)):
            return
        kind = type(node).__name__
        if isinstance(node, ast.Name):
            out.append(name(node.id))
            return
        if isinstance(node, ast.arg):
            out.append(f"arg {name(node.arg)}")
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            out.append(f"{kind} {name(node.name)}")
        elif isinstance(node, ast.Attribute):
            out.append(f".{node.attr}")
        elif isinstance(node, ast.Constant):
            value = node.value
            out.append("str" if isinstance(value, (str, bytes)) else f"const {value!r}")
            return
        elif isinstance(node, ast.ExceptHandler) and node.name:
            out.append(f"{kind} {name(node.name)}")
        else:
            out.append(kind)
        body = getattr(node, "body", None)
        for field, value in ast.iter_fields(node):
            if isinstance(value, list):
                items = value[1:] if field == "body" and value is body and value and _is_docstring(value[0]) \
                    and isinstance(node, (ast.Module, ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) else value
                for item in items:
                    if isinstance(item, ast.AST):
                        visit(item)
            elif isinstance(value, ast.AST):
                visit(value)

    visit(tree)
    return out[1:] if out and out[0] == "Module" else out


def fingerprint(src: str, stub: str = "") -> frozenset[tuple[str, ...]]:
    """The source's K-grams that the stub does not have."""
    def grams(s: str) -> set[tuple[str, ...]]:
        t = tokens(s)
        return {tuple(t[i:i + K]) for i in range(len(t) - K + 1)}
    return frozenset(grams(src) - grams(stub)) if stub else frozenset(grams(src))


def _score(fa: frozenset, fb: frozenset) -> float:
    smaller = min(len(fa), len(fb))
    if smaller < max(MIN_GRAMS, 1):
        return 0.0
    return len(fa & fb) / smaller


def similarity(a: str, b: str, stub: str = "") -> float:
    """How much of the smaller of two sources (stub taken out) the other shares, in [0, 1]."""
    return _score(fingerprint(a, stub), fingerprint(b, stub))


# --- the report ------------------------------------------------------------------------------------------


def report(submissions: dict, stubs: dict[str, str], threshold: float = THRESHOLD) -> list[Pair]:
    """Every pair at or above `threshold`, highest score first.

    `submissions`: {student: notebook (path, dict or nbformat node)}; `stubs`: {grade_id: released
    source}, e.g. ``exercise_sources("release/ps1/04_lora_sentiment.ipynb")``. Each pair of
    students appears once (student < other by name); a reference pair has other =
    "reference utils.<module>.<function>". A submission that is not a notebook is left out with a
    warning that names it."""
    sources: dict[str, dict[str, str]] = {}
    for student in sorted(submissions):
        try:
            sources[student] = exercise_sources(submissions[student])
        except NotebookError as exc:
            warnings.warn(f"{student}: {exc} It is left out of the similarity report.", stacklevel=2)
    pairs: list[Pair] = []
    exercises = sorted({gid for s in sources.values() for gid in s})
    for gid in exercises:
        stub = stubs.get(gid, "")
        prints = {student: fingerprint(s[gid], stub) for student, s in sources.items() if gid in s}
        names = dict.fromkeys(defined_names(stub))
        for s in sources.values():
            if gid in s:
                names.update(dict.fromkeys(defined_names(s[gid])))
        refs = [(qual, fingerprint(src, stub)) for qual, src in reference_sources(names)]
        students = sorted(prints)
        for i, student in enumerate(students):
            for qual, ref in refs:
                score = _score(prints[student], ref)
                if score >= threshold:
                    pairs.append(Pair(student, gid, round(score, 3), f"reference {qual}"))
            for other in students[i + 1:]:
                score = _score(prints[student], prints[other])
                if score >= threshold:
                    pairs.append(Pair(student, gid, round(score, 3), other))
    return sorted(pairs, key=lambda p: (-p.score, p.exercise, p.student, p.other))


def write_report(pairs: list[Pair], path) -> Path:
    """The pairs as a CSV (student, exercise, score, other), highest score first; returns the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(["student", "exercise", "score", "other"])
        for p in sorted(pairs, key=lambda p: (-p.score, p.exercise, p.student, p.other)):
            writer.writerow([p.student, p.exercise, f"{p.score:.3f}", p.other])
    return path


def main(argv=None) -> int:
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("release", help="the released notebook (its solution cells are the stubs)")
    parser.add_argument("submissions", nargs="+", help="submitted notebooks; the student is the folder above the assignment's")
    parser.add_argument("-o", "--out", default="similarity.csv")
    parser.add_argument("--threshold", type=float, default=THRESHOLD)
    args = parser.parse_args(argv)
    try:
        stubs = exercise_sources(args.release)
    except NotebookError as exc:
        print(exc)
        return 2
    subs = {}
    for p in map(Path, args.submissions):
        subs[p.parent.parent.name if p.parent.parent.name else p.stem] = p
    pairs = report(subs, stubs, args.threshold)
    print(f"{len(pairs)} pair(s) at or above {args.threshold}: {write_report(pairs, args.out)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
