"""The student distribution (dist/student/, built by `make release`): everything a student needs,
nothing an instructor must keep: no solution line, hidden-test line or graded quiz key, in any file."""

import json
import re
from pathlib import Path

import pytest
import yaml

from utils import course, quiz

ROOT = Path(__file__).resolve().parents[1]
LESSONS = course.assignments(ROOT)


def _blocks(kind: str) -> set[str]:
    """Lines of every `### BEGIN <kind>` region of the solution notebooks, long enough to be specific."""
    lines = set()
    for name in LESSONS:
        for cell in json.loads((ROOT / "solutions" / name / f"{name}.ipynb").read_text())["cells"]:
            for block in re.findall(rf"### BEGIN {kind}\n(.*?)### END", "".join(cell["source"]), flags=re.S):
                lines |= {ln.strip() for ln in block.splitlines() if len(ln.strip()) > 25}
    return lines


def _graded():
    for path in sorted((ROOT / "course" / "quizzes").glob("*.yaml")):
        bank = yaml.safe_load(path.read_text())
        for q in bank["questions"]:
            if q.get("graded"):
                yield path.stem, q


@pytest.fixture(scope="module")
def dist(tmp_path_factory):
    out = tmp_path_factory.mktemp("dist") / "student"
    assert course.build_student_distribution(ROOT, out) == out
    texts = {}
    for path in sorted(p for p in out.rglob("*") if p.is_file()):
        raw = path.read_bytes().decode("utf-8", errors="ignore")      # every file, whatever its type
        if path.suffix == ".ipynb":                                   # and a notebook's cells with escapes undone
            raw += "\n" + "\n".join("".join(c["source"]) for c in json.loads(raw)["cells"])
        texts[path.relative_to(out).as_posix()] = raw
    return out, texts


def test_it_holds_what_a_student_needs(dist):
    out, texts = dist
    for name in LESSONS:
        assert f"exercises/{name}/{name}.ipynb" in texts
        assert f"utils/quizzes/{name}.json" in texts
    for needed in ("README.md", "pyproject.toml", "Makefile", "utils/__init__.py", "utils/quiz.py", "utils/checks.py"):
        assert needed in texts, needed
    assert not any(p.startswith(("solutions/", "course/")) or p.endswith((".yaml", "course.py", "quiz_authoring.py")) for p in texts)
    url = course.student_url(ROOT)
    slug = url.split("github.com/", 1)[1]
    for name in LESSONS:
        assert f"colab.research.google.com/github/{slug}/blob/main/exercises/{name}/{name}.ipynb" in texts["README.md"]
        assert f'COURSE_REPO = "{url}"' in texts[f"exercises/{name}/{name}.ipynb"]
    assert f'Repository = "{url}"' in texts["pyproject.toml"] and f"git clone {url}" in texts["README.md"]
    if url != course.repository_url(ROOT):      # a graded class: nothing points students at the source
        source = re.escape(course.repository_url(ROOT)) + r"(?![\w-])"
        assert not [p for p, t in texts.items() if re.search(source, t)]
    assert out.joinpath("exercises").is_dir() and "{lessons}" not in texts["README.md"]


def test_no_solution_or_hidden_test_line_anywhere(dist):
    _, texts = dist
    shipped = course.shipped_reference_lines(ROOT)       # utils references later lessons import, by design
    hidden = _blocks("HIDDEN TESTS")
    assert hidden and not hidden & shipped, "a hidden-test line must never be part of the shipped utils"
    for marker in ("BEGIN SOLUTION", "END SOLUTION", "BEGIN HIDDEN TESTS", "END HIDDEN TESTS"):
        assert not [p for p, t in texts.items() if marker in t], marker
    for line in (_blocks("SOLUTION") - shipped) | hidden:
        leaked = [p for p, t in texts.items() if line in t]
        assert not leaked, f"{line!r} appears in {leaked}"


def test_no_graded_key_anywhere(dist):
    _, texts = dist
    everything = "\n".join(texts.values())
    assert "quiz.grade_answer(" not in everything and "QUIZ_ANSWERS.update" not in everything
    count = 0
    for lesson, q in _graded():
        count += 1
        salt = json.loads(texts[f"utils/quizzes/{lesson}.json"])["salt"]
        shipped = next(s for s in json.loads(texts[f"utils/quizzes/{lesson}.json"])["questions"] if s["id"] == q["id"])
        assert set(shipped) == {"id", "text", "options", "graded"}, f"{lesson} {q['id']} ships more than its text"
        for letter, text in q["explain"].items():
            assert quiz._digest(salt, lesson, q["id"], letter) not in everything, f"{lesson} {q['id']}: a hash"
            assert " ".join(str(text).split())[:50] not in everything, f"{lesson} {q['id']}: an explanation"
    assert count >= 3 * 7


def test_the_leak_check_finds_what_is_planted(dist, tmp_path):
    """The check that `make release` runs can fail: plant a hidden-test line, a graded hash, an instructor file."""
    out, _ = dist
    assert course.distribution_leaks(out, ROOT) == []
    lesson, q = next(_graded())
    salt = quiz.load_bank(lesson)["salt"]
    planted = {"notes.txt": sorted(_blocks("HIDDEN TESTS"))[0],
               "utils/cache.bin": quiz._digest(salt, lesson, q["id"], str(q["answer"])),
               "course/quizzes/x.yaml": "lesson: x"}
    for rel, text in planted.items():
        (out / rel).parent.mkdir(parents=True, exist_ok=True)
        (out / rel).write_text(text)
    problems = course.distribution_leaks(out, ROOT)
    for rel in planted:
        assert any(p.startswith(rel + ":") for p in problems), (rel, problems)
    for rel in planted:
        (out / rel).unlink()
