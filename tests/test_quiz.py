import json
from pathlib import Path

import pytest
import yaml

from utils import quiz

ROOT = Path(__file__).resolve().parents[1]
SOURCES = sorted((ROOT / "course" / "quizzes").glob("*.yaml"))


def _source(path):
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def test_every_lesson_has_a_quiz_of_at_least_five_questions():
    lessons = sorted(p.parent.name for p in (ROOT / "solutions").glob("*/*.ipynb"))
    banks = [p.stem for p in SOURCES]
    assert lessons and set(lessons) <= set(banks), f"lessons without a quiz bank: {set(lessons) - set(banks)}"
    assert banks == quiz.lessons(), "the student banks are stale: run make release"
    assert len(banks) == 7, "one bank per lesson of the sequence"
    for path in SOURCES:
        assert len(_source(path)["questions"]) >= 5, path.name
    assert sum(len(_source(p)["questions"]) for p in SOURCES) >= 40


def test_banks_cover_the_brief_topics():
    text = " ".join(json.dumps(_source(p), ensure_ascii=False).lower() for p in SOURCES)
    for topic in ("-100", "nf4", "double quantisation", "int8", "all seven", "truncat", "gradient checkpointing",
                  "decoder_input_ids", "merge_and_unload", "subspace", "not a parameter-efficient", "mcqa",
                  "frozen", "q_proj and v_proj", "use_rslora"):
        assert topic in text, f"no quiz question covers {topic!r}"


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: p.stem)
def test_student_bank_agrees_with_instructor_key(path):
    """The hashed bank (what students get) matches the plain key: regenerate with `make release` if not."""
    source = _source(path)
    bank = quiz.load_bank(path.stem)
    assert [q["id"] for q in bank["questions"]] == [q["id"] for q in source["questions"]]
    for q_src, q in zip(source["questions"], bank["questions"]):
        assert q["text"] == " ".join(q_src["question"].split())
        assert q["options"] == {k: str(v) for k, v in q_src["options"].items()}
        assert quiz.is_correct(path.stem, q["id"], q_src["answer"]), f"{path.stem} {q['id']}: key and hash disagree"
        wrong = [k for k in q["options"] if k != q_src["answer"]]
        assert not any(quiz.is_correct(path.stem, q["id"], k) for k in wrong)
        for letter, text in q_src["explain"].items():
            _, feedback = quiz._verdict(bank, q["id"], letter)
            assert str(text).strip() in feedback


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: p.stem)
def test_student_bank_does_not_reveal_the_key(path):
    source = _source(path)
    raw = (quiz.BANK_DIR / f"{path.stem}.json").read_text(encoding="utf-8")
    assert '"answer": "' + source["questions"][0]["answer"] + '"' not in raw
    for q in source["questions"]:
        for text in q["explain"].values():
            assert str(text).strip()[:40] not in raw, "explanations must be sealed in the student bank"


def test_keys_are_spread_over_letters():
    for path in SOURCES:
        keys = [q["answer"] for q in _source(path)["questions"]]
        assert len(set(keys)) >= 3, f"{path.stem}: keys {keys} are too predictable"


@pytest.mark.parametrize("answer", ["b", "B", "b)", "(b)", " B ", "b.", "B:"])
def test_forgiving_answer_formats(answer):
    assert quiz.normalise(answer) == "b"


@pytest.mark.parametrize("answer", ["bc", "z)", "", "answer b", "1"])
def test_malformed_answers_get_a_message(answer):
    with pytest.raises(quiz.QuizError):
        quiz.normalise(answer)


def test_check_reports_every_problem_without_a_traceback(capsys):
    right, total = quiz.check("01", {"q1": "b", "q2": "e", "q3": 3, "q99": "a"})
    out = capsys.readouterr().out
    assert (right, total) == (1, 9)
    assert "q99: there is no such question" in out and "q2: there is no option 'e'" in out
    assert "q3: Answer with a letter" in out and "q4: no answer yet." in out and "Score: 1 / 9" in out


def test_unknown_lesson_and_question():
    with pytest.raises(quiz.QuizError, match="No quiz for lesson '42'.*available lessons"):
        quiz.show("42")
    with pytest.raises(quiz.QuizError, match="has no question 'q0'"):
        quiz.is_correct("01", "q0", "a")
    with pytest.raises(quiz.QuizError, match="dict"):
        quiz.check("01", ["a", "b"])


def test_check_format_is_what_the_visible_graded_cell_shows():
    assert quiz.check_format("01", {"q1": " B) "}, "q1") == "b"
    with pytest.raises(AssertionError, match="Put your answer to q1 in QUIZ_ANSWERS"):
        quiz.check_format("01", {"q1": None}, "q1")
    with pytest.raises(AssertionError, match="not an option letter"):
        quiz.check_format("01", {"q1": "maybe"}, "q1")


def test_render_is_plain_text():
    text = quiz.render("01")
    assert text.startswith("Quiz, lesson 01_peft_theory") and "q9." in text and "d) 16" in text


def test_build_refuses_a_key_that_is_not_an_option(tmp_path):
    (tmp_path / "09_x.yaml").write_text(yaml.safe_dump({"lesson": "09_x", "questions": [
        {"id": "q1", "question": "?", "options": {"a": "1", "b": "2"}, "answer": "c", "explain": {"a": "x", "b": "y"}}]}))
    with pytest.raises(quiz.QuizError, match="key 'c' is not among the options"):
        quiz.build_all(tmp_path, tmp_path / "out")


def test_build_keeps_the_salt_so_rebuilds_are_stable(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    (src / "01_peft_theory.yaml").write_text((ROOT / "course/quizzes/01_peft_theory.yaml").read_text())
    first = quiz.build_all(src, tmp_path / "out")[0].read_text()
    assert quiz.build_all(src, tmp_path / "out")[0].read_text() == first
    assert json.loads(first)["salt"]
