"""The demo app (utils.demo) through its real server: Gradio on a free localhost port, called with gradio_client.

Two smoke adapters are trained once (about 10 s on one CPU thread), served by a real Gradio
server, and the answers compared with ``evaluation.classify`` / ``mcq.answer`` run here on a
second copy of the same adapter loaded from its folder.
"""

import socket

import pytest
from peft import PeftModel

from utils import data, demo, evaluation, mcq, models

gradio_client = pytest.importorskip("gradio_client")

SENTENCES = ["thầy giảng bài rất dễ hiểu .", "phòng máy thường xuyên bị hỏng .", "môn học có bốn tín chỉ .",
             "giáo viên nhiệt tình , vui vẻ .", "bài tập quá nhiều , không đủ thời gian ."]
QUESTION = ("Bleeding gums, poor wound healing and perifollicular haemorrhages are signs of a deficiency of which "
            "vitamin?", "Vitamin A", "Vitamin B12", "Vitamin C", "Vitamin D")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def adapters(tmp_path_factory):
    root = tmp_path_factory.mktemp("demo")
    return {task: demo.train_smoke_adapter(task, root / task) for task in ("sentiment", "mcq")}


@pytest.fixture(scope="module")
def server(adapters):
    app = demo.build_app(sentiment=demo.load_adapter(adapters["sentiment"]), mcq=demo.load_adapter(adapters["mcq"]))
    port = _free_port()
    app.launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True)
    try:
        yield gradio_client.Client(f"http://127.0.0.1:{port}/", verbose=False, analytics_enabled=False)
    finally:
        app.close()


def _reference(adapter_dir):
    """The same adapter, loaded here from its folder, as the lesson does (PeftModel.from_pretrained)."""
    base, tokenizer = models.load_model_and_tokenizer(models.TINY_MODEL_ID, device="cpu")
    return PeftModel.from_pretrained(base, str(adapter_dir)).eval(), tokenizer


def _probs(label_output) -> dict:
    return {c["label"]: c["confidence"] for c in label_output["confidences"]}


TIE = 4e-3       # two probabilities closer than this: the server's float path may order them the other way


def _assert_same_choice(label, probs, reference_label, reference_probs):
    """The server's probabilities are the reference's (2e-3), its label is the top of its own probabilities, and
    it is the reference's label unless the reference's top two are a near tie (smoke adapters are close to uniform:
    another CPU or thread count rounds the server's forward pass differently, seen on an AMD EPYC)."""
    assert set(probs) == set(reference_probs)
    assert probs == pytest.approx(reference_probs, abs=2e-3)
    assert label == max(probs, key=probs.get)
    first, second = sorted(reference_probs.values(), reverse=True)[:2]
    if first - second > TIE:
        assert label == reference_label, (label, probs, reference_probs)


def test_sentiment_label_is_evaluation_classify_s(server, adapters):
    model, tokenizer = _reference(adapters["sentiment"])
    table = evaluation.classify(model, tokenizer, SENTENCES, data.SENTIMENT_LABELS)
    for i, sentence in enumerate(SENTENCES):
        out = server.predict(sentence, api_name="/classify")
        assert set(_probs(out)) == set(data.SENTIMENT_LABELS)
        _assert_same_choice(out["label"], _probs(out), table["label"][i],
                            {label: table[f"p({label})"][i] for label in data.SENTIMENT_LABELS})


def test_mcq_letters_are_mcq_answer_s(server, adapters):
    model, tokenizer = _reference(adapters["mcq"])
    row = mcq.answer(model, tokenizer, QUESTION[0], list(QUESTION[1:])).iloc[0]
    chosen, letters = server.predict(*QUESTION, api_name="/answer")
    _assert_same_choice(letters["label"], _probs(letters), row["answer"], {x: row[f"P({x})"] for x in "ABCD"})
    picked = chosen.removeprefix("Answer: ")[:1]                      # the answer line: a near tie may name the other
    probs = _probs(letters)
    assert picked in probs and probs[picked] >= max(probs.values()) - TIE, (chosen, probs)
    assert chosen == f"Answer: {picked}. {QUESTION[1 + 'ABCD'.index(picked)]}"


@pytest.mark.parametrize("api, args, message", [
    ("/classify", ("   ",), "The sentence is empty: give at least one word to classify."),
    ("/answer", (QUESTION[0], "Vitamin A", "", "Vitamin C", "Vitamin D"),
     "Option B is empty or not text (''): every option needs its text."),
    ("/answer", ("", *QUESTION[1:]), "The question is empty or not text (''): there is nothing to answer."),
])
def test_bad_input_gets_one_sentence(server, api, args, message):
    with pytest.raises(gradio_client.exceptions.AppError) as caught:
        server.predict(*args, api_name=api)
    assert str(caught.value) == message


def test_twenty_concurrent_requests_are_all_answered(server):
    expected = {s: server.predict(s, api_name="/classify")["label"] for s in SENTENCES}
    jobs = [server.submit(SENTENCES[i % len(SENTENCES)], api_name="/classify") for i in range(20)]
    answers = [job.result(timeout=120) for job in jobs]        # TimeoutError if the queue dropped one
    assert [a["label"] for a in answers] == [expected[SENTENCES[i % len(SENTENCES)]] for i in range(20)]


def test_page_says_what_it_serves(server, adapters):
    about = server.predict(api_name="/about")
    assert about["sentiment"]["adapter"] == str(adapters["sentiment"]) and about["mcq"]["adapter"] == str(adapters["mcq"])
    assert about["sentiment"]["model"] == models.TINY_MODEL_ID and about["sentiment"]["device"].startswith("cpu")


def test_a_missing_adapter_folder_says_what_to_do(tmp_path):
    with pytest.raises(FileNotFoundError, match="No adapter in .*run the lesson's save cell"):
        demo.load_adapter(tmp_path)
