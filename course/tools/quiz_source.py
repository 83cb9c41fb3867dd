"""Grading a lesson's quiz from the submitted notebook FILE, never from the student's kernel (issue 17).

A lesson's quiz cells (course/tools/quiz_authoring.py ``cells``) run in the student's kernel, where
a submission can replace ``utils.quiz.grade_answer`` before the hidden tests call it. This module
reads the answers as text instead: it finds the code cell whose nbgrader ``grade_id`` is
``quiz_answers``, parses its source with :mod:`ast` (nothing is executed) and grades the practice
completion point and every graded question against the instructor bank
(``course/quizzes/NN_name.yaml``), with the points that the lesson's source notebook
(``solutions/NN_name/NN_name.ipynb``) gives each quiz cell.

Only the ``quiz_answers`` cell counts: answers written in any other cell do not (the lesson tells
students to put their letters in that cell). Inside it, these statements count, in order (later
wins), besides comments and the ``### BEGIN/END SOLUTION`` markers::

    QUIZ_ANSWERS = {"q1": "b", "q2": None}      # a literal dict: str keys, str or None values
    QUIZ_ANSWERS.update({"q3": "a"})             # a literal dict
    QUIZ_ANSWERS.update(q4="c", q5=" D) ")       # literal keywords
    QUIZ_ANSWERS["q6"] = "b"                     # one literal key, one literal value

Anything else (a name, a call, an f-string, a loop, another variable, ``exec``...) does not count
and is reported as one sentence naming its line; a question whose value there is not a literal
letter reads as unanswered (None). Letters are normalised as :func:`utils.quiz.normalise` does
(``" C) "`` -> ``"c"``).

Example:
    >>> answers, problems = answers_from_notebook("submitted/ada/04_lora_sentiment/04_lora_sentiment.ipynb")
    >>> for g in grade("04", "submitted/ada/04_lora_sentiment/04_lora_sentiment.ipynb"):
    ...     print(g.grade_id, g.points, "/", g.max_points)
"""

from __future__ import annotations

import ast
import json
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from course.tools.quiz_authoring import load_source
from utils.quiz import QuizError, normalise

ROOT = Path(__file__).resolve().parents[2]
SOLUTIONS = ROOT / "solutions"
ANSWERS_ID = "quiz_answers"
PRACTICE_ID = "test_quiz_practice"
VARIABLE = "QUIZ_ANSWERS"
MAX_NOTEBOOK_BYTES = 64 * 2**20        # a notebook larger than this is not read
MAX_CELL_CHARS = 200_000               # an answers cell longer than this is not parsed

_HOW = f"put your letters in the quiz answers cell as literals, e.g. {VARIABLE}[\"q1\"] = \"b\""


@dataclass(frozen=True)
class QuizGrade:
    """The grade of one quiz cell: its nbgrader grade_id, points earned and possible, and the feedback text."""

    grade_id: str
    points: float
    max_points: float
    text: str


@dataclass(frozen=True)
class _Problem:
    sentence: str
    qids: frozenset = frozenset()      # the questions it concerns; empty: the whole cell


# --- reading the notebook --------------------------------------------------------------------------

def _load(nb) -> tuple[dict | None, str | None]:
    """A notebook as a JSON dict from a path, bytes, a dict or an nbformat node; or (None, why not)."""
    if isinstance(nb, dict):                         # nbformat's NotebookNode is a dict too
        return nb, None
    if isinstance(nb, (bytes, bytearray)):
        raw, where = bytes(nb), "The submitted notebook"
    else:
        path = Path(nb)
        where = f"{path}"
        try:
            if path.stat().st_size > MAX_NOTEBOOK_BYTES:
                return None, f"{where} is larger than {MAX_NOTEBOOK_BYTES // 2**20} MiB, so its quiz was not read."
            raw = path.read_bytes()
        except OSError as exc:
            return None, f"{where} could not be read ({exc.strerror or exc}), so its quiz was not graded."
    try:
        data = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        return None, f"{where} is not a notebook (not valid JSON), so its quiz was not graded."
    if not isinstance(data, dict):
        return None, f"{where} is not a notebook (its JSON is not an object), so its quiz was not graded."
    return data, None


def _grade_id(cell) -> str | None:
    meta = cell.get("metadata") if isinstance(cell, dict) else None
    nbg = meta.get("nbgrader") if isinstance(meta, dict) else None
    return nbg.get("grade_id") if isinstance(nbg, dict) else None


def _text(source) -> str | None:
    if isinstance(source, str):
        return source
    if isinstance(source, list) and all(isinstance(s, str) for s in source):
        return "".join(source)
    return None


def _answers_cell(data: dict) -> tuple[str | None, list[_Problem]]:
    cells = data.get("cells")
    cells = cells if isinstance(cells, list) else []
    found = [c for c in cells if _grade_id(c) == ANSWERS_ID]
    if not found:
        return None, [_Problem(f"The notebook has no quiz answers cell (nbgrader grade_id {ANSWERS_ID!r}), so every "
                               "quiz question counts as unanswered; copy the cell back from the released notebook.")]
    problems = []
    if len(found) > 1:
        problems.append(_Problem(f"The notebook has {len(found)} cells with grade_id {ANSWERS_ID!r}; only the first "
                                 "one counts."))
    cell = found[0]
    if cell.get("cell_type") != "code":
        return None, problems + [_Problem("The quiz answers cell is not a code cell, so every quiz question counts "
                                          "as unanswered; change it back to code.")]
    source = _text(cell.get("source", ""))
    if source is None:
        return None, problems + [_Problem("The quiz answers cell has no readable source, so every quiz question "
                                          "counts as unanswered.")]
    return source, problems


# --- parsing the answers cell ----------------------------------------------------------------------

def _is_var(node) -> bool:
    return isinstance(node, ast.Name) and node.id == VARIABLE


def _literal_key(node) -> str | None:
    return node.value if isinstance(node, ast.Constant) and isinstance(node.value, str) else None


def _letter(node, qid: str, line: int, problems: list[_Problem]) -> str | None:
    """The normalised letter of a literal value, or None (with a problem when it is not a literal letter)."""
    if isinstance(node, ast.Constant) and node.value is None:
        return None
    if not (isinstance(node, ast.Constant) and isinstance(node.value, str)):
        problems.append(_Problem(f"Line {line} of the quiz answers cell: the answer to {qid} is not a literal "
                                 f"letter in quotes, so {qid} counts as unanswered; {_HOW}.", frozenset({qid})))
        return None
    if not node.value.strip():
        return None
    try:
        return normalise(node.value)
    except QuizError:
        problems.append(_Problem(f"Line {line} of the quiz answers cell: {node.value!r} (for {qid}) is not an "
                                 f"option letter, so {qid} counts as unanswered; answer with one letter such as "
                                 "'b'.", frozenset({qid})))
        return None


def _pairs(dict_node: ast.Dict, line: int, answers: dict, problems: list[_Problem]) -> None:
    for key, value in zip(dict_node.keys, dict_node.values):
        qid = _literal_key(key) if key is not None else None
        if qid is None:
            problems.append(_Problem(f"Line {line} of the quiz answers cell: a key of the dict is not a question id "
                                     f"in quotes (or is **unpacking), so it does not count; {_HOW}."))
            continue
        answers[qid] = _letter(value, qid, line, problems)


def _statement(stmt: ast.stmt, answers: dict, problems: list[_Problem]) -> dict:
    """Apply one top-level statement to `answers` (returns the dict now in force)."""
    line = stmt.lineno
    ignored = (f"Line {line} of the quiz answers cell is not a literal answer (only {VARIABLE} = {{...}}, "
               f"{VARIABLE}.update(...) and {VARIABLE}[\"qN\"] = \"b\" with literal letters count), so it was "
               "ignored")
    if isinstance(stmt, ast.Assign) and len(stmt.targets) == 1:
        target, value = stmt.targets[0], stmt.value
        if _is_var(target):
            if isinstance(value, ast.Dict):
                fresh: dict = {}
                _pairs(value, line, fresh, problems)
                return fresh
            problems.append(_Problem(f"Line {line} of the quiz answers cell assigns {VARIABLE} something other than "
                                     "a literal dict, so every answer before it is dropped and only the literal "
                                     f"answers after it count; {_HOW}."))
            return {}
        if isinstance(target, ast.Subscript) and _is_var(target.value):
            qid = _literal_key(target.slice)
            if qid is None:
                problems.append(_Problem(f"{ignored}: its question id is not a literal in quotes; {_HOW}."))
                return answers
            answers[qid] = _letter(value, qid, line, problems)
            return answers
    if (isinstance(stmt, ast.Expr) and isinstance(stmt.value, ast.Call)
            and isinstance(stmt.value.func, ast.Attribute) and stmt.value.func.attr == "update"
            and _is_var(stmt.value.func.value)):
        call = stmt.value
        if len(call.args) > 1 or (call.args and not isinstance(call.args[0], ast.Dict)) \
                or any(k.arg is None for k in call.keywords):
            problems.append(_Problem(f"{ignored}: {VARIABLE}.update takes one literal dict and/or literal keywords "
                                     f"here; {_HOW}."))
            return answers
        if call.args:
            _pairs(call.args[0], line, answers, problems)
        for keyword in call.keywords:
            answers[keyword.arg] = _letter(keyword.value, keyword.arg, line, problems)
        return answers
    problems.append(_Problem(f"{ignored}; {_HOW}."))
    return answers


def _parse(nb) -> tuple[dict[str, str | None], list[_Problem]]:
    data, why = _load(nb)
    if data is None:
        return {}, [_Problem(why)]
    source, problems = _answers_cell(data)
    if source is None:
        return {}, problems
    if len(source) > MAX_CELL_CHARS:
        return {}, problems + [_Problem(f"The quiz answers cell is longer than {MAX_CELL_CHARS:,} characters, so it "
                                        "was not read and every quiz question counts as unanswered.")]
    try:
        tree = ast.parse(source)
    except SyntaxError as exc:
        return {}, problems + [_Problem(f"The quiz answers cell is not valid Python (line {exc.lineno}: {exc.msg}), "
                                        "so every quiz question counts as unanswered; fix that line.")]
    except (ValueError, RecursionError, MemoryError):
        return {}, problems + [_Problem("The quiz answers cell could not be parsed, so every quiz question counts "
                                        "as unanswered.")]
    answers: dict[str, str | None] = {}
    for stmt in tree.body:
        answers = _statement(stmt, answers, problems)
    return answers, problems


def answers_from_notebook(nb) -> tuple[dict[str, str | None], list[str]]:
    """The quiz answers of a submitted notebook, read from its ``quiz_answers`` cell as source, and the problems found.

    `nb` is a path, the notebook's bytes, its JSON dict or an nbformat node. Returns
    ({question id: normalised letter or None}, [one sentence per problem]). Nothing is executed:
    only the literal statements listed in the module docstring count, and answers written in any
    other cell do not count (the lesson tells students to use the answers cell). When the cell is
    missing or does not parse, the dict is empty (every question unanswered) and one sentence says why.

    Example:
        >>> answers_from_notebook({"cells": [{"cell_type": "code", "metadata": {"nbgrader": {"grade_id": "quiz_answers"}},
        ...                                   "source": 'QUIZ_ANSWERS = {"q1": " B) "}'}]})
        ({'q1': 'b'}, [])
    """
    answers, problems = _parse(nb)
    return answers, [p.sentence for p in problems]


# --- grading ---------------------------------------------------------------------------------------

@lru_cache(maxsize=32)
def _points(path: str, mtime_ns: int) -> dict[str, float]:
    data = json.loads(Path(path).read_text(encoding="utf-8"))
    out = {}
    for cell in data.get("cells", []):
        nbg = cell.get("metadata", {}).get("nbgrader", {})
        if nbg.get("grade") and str(nbg.get("grade_id", "")).startswith("test_quiz_"):
            out[nbg["grade_id"]] = float(nbg.get("points", 0))
    return out


def max_points(lesson: str) -> dict[str, float]:
    """{grade_id: points} of the quiz's graded cells in the lesson's source notebook (nbgrader metadata)."""
    name = load_source(lesson)["lesson"]
    path = SOLUTIONS / name / f"{name}.ipynb"
    if not path.is_file():
        raise QuizError(f"No source notebook {path} for lesson {name}: grade from a checkout of the course.")
    return _points(str(path), path.stat().st_mtime_ns)


def _explanation_lines(qid: str, letter: str | None, key: str, explain: dict) -> list[str]:
    """The lines utils.quiz.grade_answer prints for a graded question (kept identical; a test compares them)."""
    lines = [f"{qid}: you answered {letter + ')' if letter else 'nothing valid'}; the answer is {key})."]
    for option, text in explain.items():
        mark = "the answer" if option == key else ("your choice" if option == letter else "")
        lines.append(f"  {option}) {' '.join(str(text).split())}" + (f"  [{mark}]" if mark else ""))
    return lines


def grade(lesson: str, nb) -> list[QuizGrade]:
    """Grade a submission's quiz from its file: the practice completion point, then each graded question.

    `lesson` is '04' or '04_lora_sentiment'; `nb` as in :func:`answers_from_notebook`. The
    practice cell earns its points when every practice question has a letter that is one of its
    options (right or wrong); ``test_quiz_<qid>`` earns its points when the letter is the key in
    the instructor bank. Points possible come from the lesson's source notebook. Each text is
    the student's feedback: for a graded question the lines ``utils.quiz.grade_answer`` prints;
    problems about one question go with that question (and with the practice cell when it is a
    practice question), problems about the whole cell go with the practice cell and with every
    cell that earned nothing.
    """
    src = load_source(lesson)
    possible = max_points(lesson)
    answers, problems = _parse(nb)
    questions = {str(q["id"]): q for q in src["questions"]}
    practice = [qid for qid, q in questions.items() if not q.get("graded")]
    graded = [qid for qid, q in questions.items() if q.get("graded")]
    unknown = sorted(set(answers) - set(questions))
    if unknown:
        problems.append(_Problem(f"The quiz answers cell answers {', '.join(unknown)}, which lesson {src['lesson']} "
                                 f"does not ask (its questions are {', '.join(questions)})."))
    needed = [PRACTICE_ID] + [f"test_quiz_{qid}" for qid in graded]
    missing = [g for g in needed if g not in possible]
    if missing:
        raise QuizError(f"The source notebook of {src['lesson']} has no graded cell {', '.join(missing)}: rebuild its "
                        "quiz section (python -m course.tools.quiz_authoring cells) before grading.")

    def notes(qids: set, earned: bool, with_general: bool) -> list[str]:
        return [p.sentence for p in problems
                if (p.qids & qids) or (not p.qids and (with_general or not earned))]

    grades = []
    reasons = []
    for qid in practice:
        options = [str(k).lower() for k in questions[qid]["options"]]
        letter = answers.get(qid)
        if letter is None:
            reasons.append(f"{qid}: no answer.")
        elif letter not in options:
            reasons.append(f"{qid}: {letter!r} is not one of its options ({', '.join(options)}).")
    earned = not reasons
    if earned:
        lines = [f"All {len(practice)} practice questions answered: the completion point is yours."]
    else:
        lines = [f"Answer every practice question ({', '.join(practice)}) to earn this point; right or wrong does "
                 "not matter here. " + " ".join(reasons)]
    lines += notes(set(practice), earned, with_general=True)
    grades.append(QuizGrade(PRACTICE_ID, possible[PRACTICE_ID] if earned else 0.0, possible[PRACTICE_ID],
                            "\n".join(lines)))

    for qid in graded:
        q = questions[qid]
        key = normalise(str(q["answer"]))
        explain = {str(k).lower(): v for k, v in q.get("explain", {}).items()}
        letter = answers.get(qid)
        earned = letter == key
        gid = f"test_quiz_{qid}"
        lines = _explanation_lines(qid, letter, key, explain) + notes({qid}, earned, with_general=False)
        grades.append(QuizGrade(gid, possible[gid] if earned else 0.0, possible[gid], "\n".join(lines)))
    return grades
