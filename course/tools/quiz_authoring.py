"""Writing a lesson's quiz section from its instructor bank (instructor tool, not in the student distribution).

``python -m course.tools.quiz_authoring build`` (run by ``make release``) turns the instructor banks
``course/quizzes/*.yaml`` into the student banks ``utils/quizzes/*.json`` (hashed practice keys,
sealed explanations, graded questions as text only: see utils/quiz.py).

``python -m course.tools.quiz_authoring cells 04 [SECTION]`` prints the whole quiz section of lesson 04 as jupytext
py:percent cells with their nbgrader metadata: the practice/graded explanation, ``quiz.show``,
the answers cell (a solution cell: release keeps only its dict of None), ``quiz.check``, the
practice completion point and one graded cell per graded question, whose hidden test holds the
key and the explanations (``quiz.grade_answer``). tests/test_quiz.py checks that the keys in
every solution notebook agree with course/quizzes/*.yaml.

Example:
    >>> print(cells("04", section="5"))
"""

from __future__ import annotations

import base64
import json
import secrets
import sys
from pathlib import Path

import yaml

from utils.quiz import BANK_DIR, QuizError, digest, keystream

SOURCE_DIR = Path(__file__).resolve().parents[2] / "course" / "quizzes"   # the instructor banks


def load_source(lesson: str, source_dir: Path = SOURCE_DIR) -> dict:
    """The instructor bank of a lesson ('04' or '04_lora_sentiment'), plain key included."""
    key = str(lesson).strip()
    paths = [p for p in sorted(Path(source_dir).glob("*.yaml")) if p.stem == key or p.stem.split("_", 1)[0] == key.zfill(2)]
    if len(paths) != 1:
        raise QuizError(f"No instructor bank for lesson {lesson!r} in {source_dir} (the course source, not the "
                        "student distribution, holds them).")
    return read_source(paths[0])


def _meta(grade_id: str, *, grade: bool, solution: bool, points: int | None = None) -> str:
    meta = {"grade": grade, "grade_id": grade_id, "locked": not solution}
    if points is not None:
        meta["points"] = points
    meta |= {"schema_version": 3, "solution": solution, "task": False}
    return json.dumps(meta)


def _span(ids: list[str]) -> str:
    """'q1–q6' for consecutive ids, 'q1, q3' otherwise."""
    numbers = [int(i[1:]) if i[1:].isdigit() else None for i in ids]
    if len(ids) > 2 and None not in numbers and numbers == list(range(numbers[0], numbers[0] + len(ids))):
        return f"{ids[0]}–{ids[-1]}"
    return ", ".join(ids) or "none"


def cells(lesson: str, section: str = "", source_dir: Path = SOURCE_DIR) -> str:
    """The quiz section of a lesson as jupytext py:percent cells with nbgrader metadata.

    Paste it between the Exercises and the Summary of solutions/NN_name/NN_name.ipynb (as text:
    ``jupytext --to py:percent``), convert back with ``jupytext --update --to ipynb``, then run
    ``make release``. The answers cell is a solution cell whose release keeps only the dict of
    None (course/tools/classroom.py), so "Run all" goes on to the end; graded keys and explanations sit in
    hidden tests only.
    """
    src = load_source(lesson, source_dir)
    build_bank(src, "check")                     # the same validation as make release
    number = src["lesson"].split("_", 1)[0]
    practice = [q["id"] for q in src["questions"] if not q.get("graded")]
    graded = [q["id"] for q in src["questions"] if q.get("graded")]
    heading = f"## {section}. Quiz" if section else "## Quiz"
    md = [
        "# %% [markdown]", f"# {heading}", "#",
        f"# **Practice questions** ({_span(practice)}) answer back at once: `quiz.check` says whether each",
        "# letter is right and explains the option you chose. Together they earn 1 point once every one",
        "# has an answer, right or wrong: try options and read why.",
        f"# **Graded questions** ({_span(graded)}, 1 point each) have no check in your materials: your",
        "# instructor grades them, and the feedback you get back explains every option.",
        "# The next cell prints the questions (with clickable options in Jupyter and Colab).",
        "", "# %%", f'quiz.show("{number}")', "",
        "# %% [markdown]",
        "# Put one letter per question in `QUIZ_ANSWERS` and run the check after it, as often as you like.",
        "",
    ]
    keys = ", ".join(f'{q["id"]}="{str(q["answer"]).lower()}"' for q in src["questions"])
    code = [
        f"# %% nbgrader={_meta('quiz_answers', grade=False, solution=True)}",
        'QUIZ_ANSWERS = {   # replace each None by a letter, e.g. "b"',
        *[f"    {', '.join(f'{q!r}: None' for q in ids).replace(chr(39), chr(34))},   # {kind}"
          for ids, kind in ((practice, "practice"), (graded, "graded")) if ids],
        "}",
        "### BEGIN SOLUTION", f"QUIZ_ANSWERS.update({keys})", "### END SOLUTION", "",
        "# %%", f'quiz.check("{number}", QUIZ_ANSWERS)', "",
        "# %% [markdown]",
        "# The graded cells below check only that your answers are letters of the options; grading",
        "# checks the graded questions.", "",
        f"# %% nbgrader={_meta('test_quiz_practice', grade=True, solution=False, points=1)}",
        f'quiz.check_answered("{number}", QUIZ_ANSWERS)', "",
    ]
    for q in src["questions"]:
        if not q.get("graded"):
            continue
        explain = "".join(f"\n    {json.dumps(str(k))}: {json.dumps(' '.join(str(v).split()), ensure_ascii=False)},"
                          for k, v in q["explain"].items())
        code += [
            f"# %% nbgrader={_meta('test_quiz_' + q['id'], grade=True, solution=False, points=1)}",
            f'quiz.check_format("{number}", QUIZ_ANSWERS, "{q["id"]}")',
            "### BEGIN HIDDEN TESTS",
            f'quiz.grade_answer(QUIZ_ANSWERS, "{q["id"]}", key="{str(q["answer"]).lower()}", explain={{{explain}',
            "})", "### END HIDDEN TESTS", "",
        ]
    return "\n".join(md + code)


# --- building the student banks ------------------------------------------------------------------

def seal(text: str, seed: str) -> str:
    """An option's explanation, XOR-sealed with the key stream of its option's digest (utils.quiz unseals it)."""
    raw = text.encode()
    return base64.b64encode(bytes(x ^ y for x, y in zip(raw, keystream(seed, len(raw))))).decode()


def build_bank(source: dict, salt: str) -> dict:
    """Turn an instructor bank (plain key) into the student bank (hashed key, sealed feedback)."""
    lesson = source["lesson"]
    questions = []
    for q in source["questions"]:
        options = {str(k).lower(): str(v) for k, v in q["options"].items()}
        key = str(q["answer"]).lower()
        if key not in options:
            raise QuizError(f"{lesson} {q['id']}: key {key!r} is not among the options {list(options)}.")
        missing = sorted(set(options) - {str(k).lower() for k in q["explain"]})
        if missing:
            raise QuizError(f"{lesson} {q['id']}: no explanation for option(s) {missing}.")
        graded = q.get("graded", False)
        if not isinstance(graded, bool):
            raise QuizError(f"{lesson} {q['id']}: 'graded' must be true or false, got {graded!r}.")
        text = " ".join(str(q["question"]).split())
        if graded:   # text and options only: no key, no hash, no explanation
            questions.append({"id": q["id"], "text": text, "options": options, "graded": True})
            continue
        feedback = {k: seal(str(q["explain"][k]).strip(), digest(salt, lesson, q["id"], k)) for k in options}
        questions.append({"id": q["id"], "text": text, "options": options,
                          "answer": digest(salt, lesson, q["id"], key), "feedback": feedback})
    return {"lesson": lesson, "salt": salt, "questions": questions}


def read_source(path: Path) -> dict:
    """An instructor bank (YAML), with a clear message when it is not valid YAML."""
    path = Path(path)
    try:
        source = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark else ""
        raise QuizError(f"{path}{where}: not valid YAML ({getattr(exc, 'problem', exc)}); "
                        "quote text that contains ': '.") from None
    if not isinstance(source, dict) or source.get("lesson") != path.stem:
        raise QuizError(f"{path}: 'lesson' must equal the file name {path.stem!r}.")
    return source


def build_all(source_dir: Path = SOURCE_DIR, out_dir: Path = BANK_DIR) -> list[Path]:
    """Write a student bank for every course/quizzes/*.yaml, keeping an existing bank's salt."""
    written = []
    out_dir.mkdir(parents=True, exist_ok=True)
    for src in sorted(Path(source_dir).glob("*.yaml")):
        source = read_source(src)
        target = out_dir / f"{src.stem}.json"
        salt = json.loads(target.read_text())["salt"] if target.exists() else secrets.token_hex(16)
        target.write_text(json.dumps(build_bank(source, salt), ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
        written.append(target)
    return written


USAGE = """usage: python -m course.tools.quiz_authoring build [SOURCE_DIR]   write utils/quizzes/*.json (default course/quizzes)
       python -m course.tools.quiz_authoring cells NN [SECTION]    print lesson NN's quiz section as jupytext cells"""


def main(argv: list[str]) -> None:
    command, args = (argv[0], argv[1:]) if argv else ("", [])
    try:
        if command == "build" and len(args) <= 1:
            for path in build_all(Path(args[0]) if args else SOURCE_DIR):
                print(f"wrote {path}")
        elif command == "cells" and 1 <= len(args) <= 2:
            print(cells(args[0], *args[1:]))
        else:
            sys.exit(USAGE)
    except QuizError as exc:
        sys.exit(str(exc))


if __name__ == "__main__":
    main(sys.argv[1:])
