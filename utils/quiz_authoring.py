"""Writing a lesson's quiz section from its instructor bank (instructor tool, not in the student distribution).

``python -m utils.quiz cells 04 [SECTION]`` prints the whole quiz section of lesson 04 as jupytext
py:percent cells with their nbgrader metadata: the practice/graded explanation, ``quiz.show``,
the answers cell (a solution cell: release keeps only its dict of None), ``quiz.check``, the
practice completion point and one graded cell per graded question, whose hidden test holds the
key and the explanations (``quiz.grade_answer``). tests/test_quiz.py checks that the keys in
every solution notebook agree with course/quizzes/*.yaml.

Example:
    >>> print(cells("04", section="5"))
"""

from __future__ import annotations

import json
from pathlib import Path

from utils.quiz import QuizError, build_bank, read_source

SOURCE_DIR = Path(__file__).resolve().parents[1] / "course" / "quizzes"   # the instructor banks


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
    None (utils/course.py), so "Run all" goes on to the end; graded keys and explanations sit in
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
