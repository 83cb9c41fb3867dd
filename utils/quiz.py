"""Lesson quizzes: practice questions that answer back, graded questions that do not.

The instructor writes each bank in plain text (``course/quizzes/NN_name.yaml``: question,
options, key, an explanation per option, and ``graded: true`` on the graded ones).
``make release`` (``course/tools/quiz_authoring.py``, the instructor's half) writes the
student-facing bank ``utils/quizzes/NN_name.json``:

- a **practice** question keeps instant feedback: its key is a salted SHA-256 and each option's
  explanation is sealed with a key derived from that option, so checking an answer reveals only
  the explanation of the option chosen. Anyone can try every letter, so practice questions earn
  at most a completion point (for answering, not for answering right);
- a **graded** question ships as text and options only: no key, hash or explanation. Its key
  lives in the lesson's hidden test (``grade_answer``), which nbgrader strips on release; the
  test prints the explanations, so students read them in their feedback after grading.

This module is the students' half: reading a bank, checking practice answers, the graded cells'
helpers. ``python -m course.tools.quiz_authoring build|cells`` is the instructor's (not in the
student distribution).

Example:
    >>> from utils import quiz
    >>> quiz.show("01")                                  # the questions, as plain text
    >>> quiz.check("01", {"q1": "b", "q2": " C) "})      # feedback on practice questions
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import sys
from pathlib import Path

BANK_DIR = Path(__file__).with_name("quizzes")
LETTERS = "abcdefgh"


class QuizError(ValueError):
    """A quiz was asked for something that does not exist, or an answer was malformed."""


# --- storage ---------------------------------------------------------------------------------

def digest(salt: str, lesson: str, qid: str, letter: str) -> str:
    """The salted hash that stands for one option of a practice question (the bank format; the builder,
    course/tools/quiz_authoring.py, writes it with this function)."""
    return hashlib.sha256(f"{salt}|{lesson}|{qid}|{letter}".encode()).hexdigest()


def keystream(seed: str, n: int) -> bytes:
    """The XOR key stream that seals an option's explanation (shared with the builder)."""
    out, counter = b"", 0
    while len(out) < n:
        out += hashlib.sha256(f"{seed}|{counter}".encode()).digest()
        counter += 1
    return out[:n]


def _unseal(blob: str, seed: str) -> str:
    raw = base64.b64decode(blob)
    return bytes(a ^ b for a, b in zip(raw, keystream(seed, len(raw)))).decode()


def lessons() -> list[str]:
    """Names of the lessons that have a quiz bank, e.g. ['01_peft_theory', ...]."""
    return sorted(p.stem for p in BANK_DIR.glob("*.json"))


def _resolve(lesson: str) -> str:
    key = str(lesson).strip()
    matches = [name for name in lessons() if name == key or name.split("_", 1)[0] == key.zfill(2)]
    if len(matches) != 1:
        raise QuizError(f"No quiz for lesson {lesson!r}: available lessons are {lessons()} (or their numbers, e.g. '01').")
    return matches[0]


def load_bank(lesson: str) -> dict:
    """The student-facing bank of a lesson: {'lesson', 'salt', 'questions': [...]} (no plain key)."""
    name = _resolve(lesson)
    return json.loads((BANK_DIR / f"{name}.json").read_text(encoding="utf-8"))


def _question(bank: dict, qid: str) -> dict:
    for q in bank["questions"]:
        if q["id"] == qid:
            return q
    ids = [q["id"] for q in bank["questions"]]
    raise QuizError(f"Lesson {bank['lesson']} has no question {qid!r}; its questions are {ids}.")


# --- answering -------------------------------------------------------------------------------

def normalise(answer) -> str:
    """Accept 'b', 'B', 'b)', '(b)', ' B ', 'b.' and return 'b'; anything else raises QuizError."""
    if not isinstance(answer, str):
        raise QuizError(f"Answer with a letter in quotes, like 'b'; got {answer!r} ({type(answer).__name__}).")
    m = re.fullmatch(r"\s*\(?\s*([A-Ha-h])\s*[).:]?\s*", answer)
    if not m:
        raise QuizError(f"{answer!r} is not an option letter: answer with one letter such as 'a' or 'B)'.")
    return m.group(1).lower()


def _verdict(bank: dict, qid: str, answer) -> tuple[bool | None, str]:
    q = _question(bank, qid)
    if answer is None or (isinstance(answer, str) and not answer.strip()):
        return None, f"{qid}: no answer yet."
    try:
        letter = normalise(answer)
    except QuizError as exc:
        return None, f"{qid}: {exc}"
    if letter not in q["options"]:
        return None, f"{qid}: there is no option {letter!r}; choose one of {', '.join(q['options'])}."
    if q.get("graded"):
        return None, (f"{qid}: {letter}) recorded. This question is graded by your instructor; "
                      "its explanation comes with your feedback.")
    seed = digest(bank["salt"], bank["lesson"], qid, letter)
    ok = seed == q["answer"]
    note = _unseal(q["feedback"][letter], seed)
    return ok, f"{qid}: {letter}) {'correct' if ok else 'not quite'}. {note}"


def practice_ids(lesson: str) -> list[str]:
    """Ids of the practice questions of a lesson (instant feedback, no points for being right)."""
    return [q["id"] for q in load_bank(lesson)["questions"] if not q.get("graded")]


def graded_ids(lesson: str) -> list[str]:
    """Ids of the graded questions of a lesson (no key on the student's side)."""
    return [q["id"] for q in load_bank(lesson)["questions"] if q.get("graded")]


def is_correct(lesson: str, qid: str, answer) -> bool:
    """True when `answer` (any forgiving format) is the keyed option of practice question `qid`."""
    bank = load_bank(lesson)
    if _question(bank, qid).get("graded"):
        raise QuizError(f"{qid} is a graded question: there is no key for it in your materials; "
                        "your instructor grades it and the feedback explains it.")
    ok, _ = _verdict(bank, qid, answer)
    return bool(ok)


def check(lesson: str, answers: dict, verbose: bool = True) -> tuple[int, int]:
    """Print feedback for every practice question (with the chosen option's explanation) and
    confirm the graded answers are valid letters; return (practice right, practice total)."""
    bank = load_bank(lesson)
    if not isinstance(answers, dict):
        raise QuizError("Put your answers in a dict such as {'q1': 'b', 'q2': 'a'}.")
    known = {q["id"] for q in bank["questions"]}
    lines = [f"{k}: there is no such question in lesson {bank['lesson']} (questions: {sorted(known)})."
             for k in answers if k not in known]
    right = practice = graded = recorded = 0
    for q in bank["questions"]:
        ok, text = _verdict(bank, q["id"], answers.get(q["id"]))
        if q.get("graded"):
            graded += 1
            recorded += text.endswith("comes with your feedback.")
        else:
            practice += 1
            right += bool(ok)
        lines.append(text)
    lines.append(f"Practice score: {right} / {practice}"
                 + (f"; graded questions answered: {recorded} / {graded} (your instructor grades them)" if graded else ""))
    if verbose:
        print("\n".join(lines))
    return right, practice


def check_answered(lesson: str, answers) -> None:
    """The practice completion point: every practice question has a valid letter, right or wrong.

    Returns None on purpose: a number as a graded cell's last value is read by nbgrader as
    partial credit."""
    ids = practice_ids(lesson)
    if not isinstance(answers, dict):
        raise AssertionError("QUIZ_ANSWERS should be a dict such as {'q1': 'b'}; run the quiz answers cell again.")
    problems = []
    for qid in ids:
        try:
            check_format(lesson, answers, qid)
        except AssertionError as exc:
            problems.append(str(exc))
    if problems:
        raise AssertionError(f"Answer every practice question ({', '.join(ids)}) to earn this point; right or wrong "
                             f"does not matter here. {' '.join(problems)}")
    print(f"All {len(ids)} practice questions answered: the completion point is yours.")


def grade_answer(answers, qid: str, key: str, explain: dict | None = None) -> None:
    """A graded question's hidden test: print what each option means (the student reads it in the
    feedback), then fail unless the answer is `key`. Only the instructor's source holds this call."""
    given = answers.get(qid) if isinstance(answers, dict) else None
    try:
        letter = normalise(given)
    except QuizError:
        letter = None
    key = normalise(key)
    print(f"{qid}: you answered {letter + ')' if letter else 'nothing valid'}; the answer is {key}).")
    for option, text in (explain or {}).items():
        mark = "the answer" if option == key else ("your choice" if option == letter else "")
        print(f"  {option}) {' '.join(str(text).split())}" + (f"  [{mark}]" if mark else ""))
    assert letter == key, f"{qid}: {letter or 'no answer'} is not the answer ({key}); the explanations above say why."


def check_format(lesson: str, answers, qid: str) -> str:
    """The visible part of a graded quiz cell: the answer exists and is a valid option letter."""
    bank = load_bank(lesson)
    q = _question(bank, qid)
    if not isinstance(answers, dict) or qid not in answers or answers[qid] in (None, ""):
        raise AssertionError(f"Put your answer to {qid} in QUIZ_ANSWERS, e.g. QUIZ_ANSWERS['{qid}'] = 'b'.")
    try:
        letter = normalise(answers[qid])
    except QuizError as exc:
        raise AssertionError(str(exc)) from None
    if letter not in q["options"]:
        raise AssertionError(f"{qid} has options {', '.join(q['options'])}; {letter!r} is not one of them.")
    return letter


def render(lesson: str) -> str:
    """The questions of a lesson as plain text (readable in any frontend), practice then graded."""
    bank = load_bank(lesson)
    out = [f"Quiz, lesson {bank['lesson']}: answer each question with one letter."]
    for graded, title in ((False, "Practice questions: quiz.check answers back at once."),
                          (True, "Graded questions: no check here; your feedback explains them after grading.")):
        group = [q for q in bank["questions"] if bool(q.get("graded")) == graded]
        if group:
            out.append(f"\n--- {title}")
        for q in group:
            out.append(f"\n{q['id']}. {q['text']}")
            out += [f"   {k}) {v}" for k, v in q["options"].items()]
    return "\n".join(out)


def show(lesson: str, interactive: bool | None = None) -> None:
    """Show the quiz once: clickable options where widgets can render, the plain text otherwise.

    Outside a kernel (or without ipywidgets) it prints :func:`render`. In Jupyter or Colab it
    displays one output holding both the widgets and :func:`render`'s text as their fallback: a
    frontend that renders widgets (JupyterLab, Colab) shows the options to click, one that cannot
    (nbconvert, a notebook viewer, a terminal client) shows the text.
    """
    if interactive is None:
        interactive = "ipykernel" in sys.modules
    try:
        if not interactive:
            raise ImportError
        import ipywidgets as widgets
        from IPython.display import display
    except ImportError:
        print(render(lesson))
        return
    bank = load_bank(lesson)
    rows = []
    for graded, title in ((False, "Practice questions: clicking an option answers back at once."),
                          (True, "Graded questions: no answer here; put your letters in QUIZ_ANSWERS, "
                                 "your feedback explains them after grading.")):
        group = [q for q in bank["questions"] if bool(q.get("graded")) == graded]
        if group:
            rows.append(widgets.HTML(f"<b>{title}</b>"))
        for q in group:
            pick = widgets.RadioButtons(options=[(f"{k}) {v}", k) for k, v in q["options"].items()], value=None,
                                        layout=widgets.Layout(width="auto"))
            out = widgets.Output()

            def on_change(change, qid=q["id"], out=out):
                out.clear_output()
                with out:
                    print(_verdict(bank, qid, change["new"])[1])

            pick.observe(on_change, names="value")
            rows.append(widgets.VBox([widgets.HTML(f"<b>{q['id']}.</b> {q['text']}"), pick, out]))
    box = widgets.VBox([widgets.HTML(f"<b>Quiz, lesson {bank['lesson']}</b>: one letter per question.")] + rows)
    display({"text/plain": render(lesson),
             "application/vnd.jupyter.widget-view+json": {"version_major": 2, "version_minor": 0,
                                                           "model_id": box.model_id}}, raw=True)
