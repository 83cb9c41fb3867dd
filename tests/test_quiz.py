import ast
import json
from pathlib import Path

import jupytext
import pytest
import yaml

from course.tools import quiz_authoring
from utils import quiz

ROOT = Path(__file__).resolve().parents[1]
SOURCES = sorted((ROOT / "course" / "quizzes").glob("*.yaml"))
NOTEBOOKS = sorted(p for p in (ROOT / "solutions").glob("*/*.ipynb") if p.stem == p.parent.name)


def _source(path):
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def test_every_lesson_has_a_quiz_of_at_least_five_questions():
    lessons = sorted(p.parent.name for p in (ROOT / "solutions").glob("*/*.ipynb"))
    banks = [p.stem for p in SOURCES]
    assert lessons and set(lessons) <= set(banks), f"lessons without a quiz bank: {set(lessons) - set(banks)}"
    assert banks == quiz.lessons(), "the student banks are stale: run make release"
    assert len(banks) == 8, "one bank per lesson of the sequence"
    for path in SOURCES:
        questions = _source(path)["questions"]
        graded = sum(bool(q.get("graded")) for q in questions)
        assert 5 <= len(questions) - graded <= 9, f"{path.name}: 5 to 9 practice questions"
        assert 3 <= graded <= 5, f"{path.name}: 3 to 5 graded questions"
    assert sum(len(_source(p)["questions"]) for p in SOURCES) >= 50


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
        if q_src.get("graded"):
            assert set(q) == {"id", "text", "options", "graded"}, f"{q['id']}: a graded question ships text and options only"
            with pytest.raises(quiz.QuizError, match="graded question"):
                quiz.is_correct(path.stem, q["id"], q_src["answer"])
            continue
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
    bank = json.loads(raw)
    assert '"answer": "' + source["questions"][0]["answer"] + '"' not in raw
    for q in source["questions"]:
        for text in q["explain"].values():
            assert str(text).strip()[:40] not in raw, "explanations must be sealed in the student bank"
        if q.get("graded"):   # not even a hash: no letter's digest appears anywhere in the file
            digests = [quiz.digest(bank["salt"], path.stem, q["id"], k) for k in q["options"]]
            assert not any(d in raw for d in digests), f"{q['id']}: a graded question's hash is in the student bank"


def test_brute_force_finds_practice_answers_only():
    """What issue 11 saw: a loop over is_correct finds every practice key, and now no graded one."""
    found, refused = {}, []
    for q in quiz.load_bank("01")["questions"]:
        for letter in q["options"]:
            try:
                if quiz.is_correct("01", q["id"], letter):
                    found[q["id"]] = letter
            except quiz.QuizError:
                refused.append(q["id"])
    assert sorted(found) == quiz.practice_ids("01") and set(refused) == set(quiz.graded_ids("01"))


def test_keys_are_spread_over_letters():
    for path in SOURCES:
        keys = [q["answer"] for q in _source(path)["questions"]]
        assert len(set(keys)) >= 3, f"{path.stem}: keys {keys} are too predictable"


def _key_is_longest(q) -> bool:
    """The key is (one of) the longest options: a student who always picks the longest gets it (ties count)."""
    lengths = {k: len(str(v)) for k, v in q["options"].items()}
    return lengths[q["answer"]] == max(lengths.values())


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: p.stem)
def test_the_key_is_not_given_away_by_its_length(path):
    """Issue 21 item 13: the key is the longest option in at most a third of a bank's questions, and no
    option is a throwaway under half the key's length."""
    questions = _source(path)["questions"]
    longest = [q["id"] for q in questions if _key_is_longest(q)]
    assert len(longest) <= len(questions) / 3, \
        f"{path.stem}: the key is the longest option in {longest} ({len(longest)} of {len(questions)}): lengthen the distractors"
    for q in questions:
        key = len(str(q["options"][q["answer"]]))
        short = [k for k, v in q["options"].items() if len(str(v)) < key / 2]
        assert not short, f"{path.stem} {q['id']}: options {short} are under half the key's length ({key} characters)"


def test_always_picking_the_longest_option_does_not_pass_the_graded_quiz():
    graded = [q for p in SOURCES for q in _source(p)["questions"] if q.get("graded")]
    won = sum(_key_is_longest(q) for q in graded)
    assert won <= len(graded) / 3, f"'pick the longest option' earns {won} of {len(graded)} graded quiz points"


@pytest.mark.parametrize("answer", ["b", "B", "b)", "(b)", " B ", "b.", "B:"])
def test_forgiving_answer_formats(answer):
    assert quiz.normalise(answer) == "b"


@pytest.mark.parametrize("answer", ["bc", "z)", "", "answer b", "1"])
def test_malformed_answers_get_a_message(answer):
    with pytest.raises(quiz.QuizError):
        quiz.normalise(answer)


def test_check_reports_every_problem_without_a_traceback(capsys):
    right, total = quiz.check("01", {"q1": "b", "q2": "e", "q3": 3, "q99": "a", "q7": "c", "q8": "z"})
    out = capsys.readouterr().out
    assert (right, total) == (1, 6)
    assert "q99: there is no such question" in out and "q2: there is no option 'e'" in out
    assert "q3: Answer with a letter" in out and "q4: no answer yet." in out
    assert "q7: c) recorded. This question is graded by your instructor" in out and "q8: 'z' is not an option" in out
    assert "Practice score: 1 / 6; graded questions answered: 1 / 3" in out


def test_check_answered_is_the_completion_point():
    answers = {f"q{i}": "a" for i in range(1, 7)}               # every practice question, all wrong but one
    assert quiz.check_answered("01", answers) is None            # a number would be nbgrader partial credit
    with pytest.raises(AssertionError, match="Answer every practice question.*QUIZ_ANSWERS\\['q6'\\]"):
        quiz.check_answered("01", {**answers, "q6": None})
    with pytest.raises(AssertionError, match="should be a dict"):
        quiz.check_answered("01", ["a"])


def test_grade_answer_prints_the_explanations_then_grades(capsys):
    explain = {"a": "Right, because.", "b": "Wrong,   because."}
    quiz.grade_answer({"q7": " A) "}, "q7", key="a", explain=explain)
    assert "q7: you answered a); the answer is a)." in capsys.readouterr().out
    with pytest.raises(AssertionError, match="q7: b is not the answer \\(a\\)"):
        quiz.grade_answer({"q7": "b"}, "q7", key="a", explain=explain)
    out = capsys.readouterr().out
    assert "a) Right, because.  [the answer]" in out and "b) Wrong, because.  [your choice]" in out
    with pytest.raises(AssertionError, match="no answer is not the answer"):
        quiz.grade_answer({"q7": None}, "q7", key="a")


def test_unknown_lesson_and_question():
    with pytest.raises(quiz.QuizError, match="No quiz for lesson '42'.*available lessons"):
        quiz.show("42")
    with pytest.raises(quiz.QuizError, match="has no question 'q0'"):
        quiz.is_correct("01", "q0", "a")
    with pytest.raises(quiz.QuizError, match="dict"):
        quiz.check("01", ["a", "b"])


def test_check_format_is_what_the_visible_graded_cell_shows():
    assert quiz.check_format("01", {"q1": " B) "}, "q1") == "b"
    assert quiz.check_format("01", {"q8": "c"}, "q8") == "c"         # graded: a valid letter, right or not
    with pytest.raises(AssertionError, match="Put your answer to q1 in QUIZ_ANSWERS"):
        quiz.check_format("01", {"q1": None}, "q1")
    with pytest.raises(AssertionError, match="not an option letter"):
        quiz.check_format("01", {"q1": "maybe"}, "q1")


def test_render_is_plain_text():
    text = quiz.render("01")
    assert text.startswith("Quiz, lesson 01_peft_theory") and "q9." in text and "d) 16" in text
    assert text.index("Practice questions") < text.index("q1.") < text.index("Graded questions") < text.index("q7.")


def test_show_prints_text_outside_a_kernel(capsys):
    quiz.show("01", interactive=False)
    assert capsys.readouterr().out.strip() == quiz.render("01")


def test_show_draws_each_question_once_with_the_text_as_fallback(capsys):
    """One output: widgets for a frontend that renders them, render()'s text for one that cannot."""
    import ipywidgets as widgets
    from IPython.core.interactiveshell import InteractiveShell
    from IPython.utils.capture import capture_output

    InteractiveShell.instance()
    with capture_output() as shown:
        quiz.show("01", interactive=True)
    assert shown.stdout == "" and len(shown.outputs) == 1, "the questions are shown once, not printed and drawn"
    data = shown.outputs[0].data
    assert data["text/plain"] == quiz.render("01")
    box = widgets.widget._instances[data["application/vnd.jupyter.widget-view+json"]["model_id"]]

    def walk(w):
        yield w
        for child in getattr(w, "children", ()):
            yield from walk(child)

    parts = list(walk(box))
    labels = " ".join(w.value for w in parts if isinstance(w, widgets.HTML))
    radios = [w for w in parts if isinstance(w, widgets.RadioButtons)]
    ids = [q["id"] for q in quiz.load_bank("01")["questions"]]
    assert len(radios) == len(ids) and all(r.description == "" for r in radios), "one label per question"
    assert all(labels.count(f"<b>{qid}.</b>") == 1 for qid in ids)


def test_build_refuses_a_key_that_is_not_an_option(tmp_path):
    (tmp_path / "09_x.yaml").write_text(yaml.safe_dump({"lesson": "09_x", "questions": [
        {"id": "q1", "question": "?", "options": {"a": "1", "b": "2"}, "answer": "c", "explain": {"a": "x", "b": "y"}}]}))
    with pytest.raises(quiz.QuizError, match="key 'c' is not among the options"):
        quiz_authoring.build_all(tmp_path, tmp_path / "out")


def test_build_refuses_a_graded_flag_that_is_not_a_boolean(tmp_path):
    (tmp_path / "09_x.yaml").write_text(yaml.safe_dump({"lesson": "09_x", "questions": [
        {"id": "q1", "graded": "yes", "question": "?", "options": {"a": "1", "b": "2"}, "answer": "a",
         "explain": {"a": "x", "b": "y"}}]}))
    with pytest.raises(quiz.QuizError, match="'graded' must be true or false"):
        quiz_authoring.build_all(tmp_path, tmp_path / "out")


def test_build_keeps_the_salt_so_rebuilds_are_stable(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    (src / "01_peft_theory.yaml").write_text((ROOT / "course/quizzes/01_peft_theory.yaml").read_text())
    first = quiz_authoring.build_all(src, tmp_path / "out")[0].read_text()
    assert quiz_authoring.build_all(src, tmp_path / "out")[0].read_text() == first
    assert json.loads(first)["salt"]


# --- the quiz section of the lesson notebooks ---------------------------------------------------

def _hidden_quiz_calls(nb_path: Path) -> dict[str, dict]:
    """Every quiz.grade_answer(...) call in the notebook's hidden tests: {qid: {'key', 'explain', 'grade_id'}}."""
    found = {}
    for cell in json.loads(nb_path.read_text())["cells"]:
        if cell["cell_type"] != "code":
            continue
        meta = cell["metadata"].get("nbgrader", {})
        code = "\n".join("#" + ln if ln.lstrip().startswith(("%", "!")) else ln for ln in "".join(cell["source"]).splitlines())
        for call in ast.walk(ast.parse(code)):
            if isinstance(call, ast.Call) and ast.unparse(call.func) == "quiz.grade_answer":
                qid = ast.literal_eval(call.args[1])
                kwargs = {k.arg: ast.literal_eval(k.value) for k in call.keywords}
                assert "### BEGIN HIDDEN TESTS" in "".join(cell["source"]) and meta.get("grade") and meta.get("locked")
                assert qid not in found, f"{nb_path.name}: two hidden tests grade {qid}"
                found[qid] = {**kwargs, "grade_id": meta.get("grade_id"), "points": meta.get("points")}
    return found


def _solution_answers(nb_path: Path) -> dict[str, str]:
    for cell in json.loads(nb_path.read_text())["cells"]:
        if cell["metadata"].get("nbgrader", {}).get("grade_id") == "quiz_answers":
            call = next(c for c in ast.walk(ast.parse("".join(cell["source"])))
                        if isinstance(c, ast.Call) and ast.unparse(c.func) == "QUIZ_ANSWERS.update")
            return {k.arg: k.value.value for k in call.keywords}
    return {}


@pytest.mark.parametrize("nb_path", NOTEBOOKS, ids=lambda p: p.stem)
def test_hidden_test_keys_agree_with_the_bank(nb_path):
    """The graded keys live in two instructor files, the YAML and the hidden tests: they cannot drift."""
    source = _source(ROOT / "course" / "quizzes" / f"{nb_path.stem}.yaml")
    graded = {q["id"]: q for q in source["questions"] if q.get("graded")}
    calls = _hidden_quiz_calls(nb_path)
    assert set(calls) == set(graded), (f"{nb_path.name}: hidden tests grade {sorted(calls)}, the bank marks "
                                       f"{sorted(graded)} as graded (print the cells: python -m course.tools.quiz_authoring cells {nb_path.stem[:2]})")
    for qid, call in calls.items():
        q = graded[qid]
        assert call["key"] == str(q["answer"]).lower(), f"{nb_path.name} {qid}: hidden key {call['key']!r}, bank {q['answer']!r}"
        assert call["explain"] == {k: " ".join(str(v).split()) for k, v in q["explain"].items()}, f"{qid}: explanations drifted"
        assert call["grade_id"] == f"test_quiz_{qid}" and call["points"] == 1
    answers = _solution_answers(nb_path)
    assert answers == {q["id"]: str(q["answer"]).lower() for q in source["questions"]}, \
        f"{nb_path.name}: the solution's QUIZ_ANSWERS disagree with the bank"


def test_cells_print_a_quiz_section_nbgrader_understands():
    text = quiz_authoring.cells("04", section="5")
    nb = jupytext.reads(text, fmt="py:percent")
    graded = {c.metadata["nbgrader"]["grade_id"]: c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade")}
    assert sorted(graded) == ["test_quiz_practice"] + [f"test_quiz_{q}" for q in quiz.graded_ids("04")]
    assert nb.cells[0].source.startswith("## 5. Quiz")
    answers = next(c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade_id") == "quiz_answers")
    assert answers.metadata["nbgrader"]["solution"] and not answers.metadata["nbgrader"]["locked"]
    namespace = {}
    exec(answers.source, namespace)   # the source cell runs and fills in every key
    assert all(namespace["QUIZ_ANSWERS"].values())
    for qid in quiz.graded_ids("04"):
        body = graded[f"test_quiz_{qid}"].source
        assert body.index("### BEGIN HIDDEN TESTS") < body.index("quiz.grade_answer") < body.index("### END HIDDEN TESTS")


def test_cells_of_an_unknown_lesson_say_where_banks_live():
    with pytest.raises(quiz.QuizError, match="No instructor bank for lesson '42'.*course source"):
        quiz_authoring.cells("42")
