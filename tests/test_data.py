import json

import pytest

from utils import data


def test_sample_vsfc_has_the_hub_schema_and_label_coding():
    ds = data.load_vsfc("sample")
    assert set(ds) == {"train", "validation", "test"}
    for split in ds.values():
        assert split.column_names == ["sentence", "sentiment", "topic"]
        assert set(split["sentiment"]) <= {0, 1, 2} and set(split["topic"]) <= {0, 1, 2, 3}
    assert data.SENTIMENT_LABELS == ["negative", "neutral", "positive"]


def test_sample_vsfc_keeps_the_real_imbalance():
    train = data.load_vsfc("sample", split="train")
    share = [train["sentiment"].count(k) / len(train) for k in range(3)]
    assert 0.02 < share[1] < 0.08, f"neutral should be rare (~4 % in UIT-VSFC), got {share[1]:.1%}"
    assert share[0] > 0.35 and share[2] > 0.35


def _normalised(sentence: str) -> str:
    return " ".join(sentence.lower().split())


def test_sample_vsfc_splits_share_no_sentence():
    """A test sentence seen in training inflates every test score (issue 21 item 1): the splits are disjoint,
    and each split still holds every label."""
    ds = data.load_vsfc("sample")
    seen = {name: {_normalised(s) for s in split["sentence"]} for name, split in ds.items()}
    for a, b in (("train", "test"), ("train", "validation"), ("validation", "test")):
        shared = seen[a] & seen[b]
        assert not shared, f"{len(shared)} sentences are in both {a} and {b}, e.g. {sorted(shared)[:2]}"
    for name, split in ds.items():
        assert set(split["sentiment"]) == {0, 1, 2}, f"{name} lacks a label"


def test_sample_medmcqa_splits_share_no_question():
    ds = data.load_medmcqa("sample")
    seen = {name: {_normalised(q) for q in split["question"]} for name, split in ds.items()}
    assert not (seen["train"] & seen["test"]) and not (seen["train"] & seen["validation"])


def test_sample_medmcqa_hides_test_answers_like_the_hub():
    ds = data.load_medmcqa("sample")
    assert set(ds["test"]["cop"]) == {-1}
    for split in ("train", "validation"):
        assert set(ds[split]["cop"]) <= {0, 1, 2, 3}
        assert list(ds[split].column_names) == list(data.MEDMCQA_COLUMNS)
    letters = {data.MCQ_LETTERS[c] for c in ds["validation"]["cop"]}
    assert len(letters) >= 3, "answers should not all be the same letter"


def test_local_file_and_folder_sources(tmp_path):
    rows = [{"sentence": "cô dạy hay .", "sentiment": 2, "topic": 0}, {"sentence": "phòng nóng .", "sentiment": 0, "topic": 2}]
    one = tmp_path / "vsfc.jsonl"
    one.write_text("\n".join(json.dumps(r, ensure_ascii=False) for r in rows))
    assert data.load_vsfc(str(one))["sentence"][0] == "cô dạy hay ."
    folder = tmp_path / "vsfc"
    folder.mkdir()
    for split in ("train", "test"):
        (folder / f"{split}.csv").write_text("sentence,sentiment,topic\ncô dạy hay .,2,0\n", encoding="utf-8")
    assert data.load_vsfc(str(folder), split="test")["sentiment"] == [2]
    with pytest.raises(ValueError, match="no 'validation' split; it has"):
        data.load_vsfc(str(folder), split="validation")


def test_saved_to_disk_folder(tmp_path):
    data.load_vsfc("sample").save_to_disk(str(tmp_path / "saved"))
    assert len(data.load_vsfc(str(tmp_path / "saved"), split="validation")) == 60


def test_bad_sources_say_what_to_do(tmp_path):
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps({"text": "x", "label": 1}))
    with pytest.raises(ValueError, match=r"lacks column\(s\) \['sentence', 'sentiment', 'topic'\]"):
        data.load_vsfc(str(bad))
    with pytest.raises(ValueError, match="Unknown split 'dev'"):
        data.load_vsfc("sample", split="dev")
    (tmp_path / "notes.txt").write_text("hi")
    with pytest.raises(ValueError, match="Unsupported file type"):
        data.load_vsfc(str(tmp_path / "notes.txt"))
    with pytest.raises(ValueError, match="single table"):
        data.load_vsfc(str(bad), split="train")


def test_hub_source_offline_is_a_clear_error():
    from utils.runtime import HubAccessError

    with pytest.raises(HubAccessError, match="not in the local cache"):
        data.load_vsfc("uitnlp/vietnamese_students_feedback")


def test_take_is_reproducible():
    ds = data.load_vsfc("sample", split="train")
    assert data.take(ds, 10)["sentence"] == data.take(ds, 10)["sentence"]
    assert len(data.take(ds, None)) == len(ds) == len(data.take(ds, 10_000))


def test_vsfc_hub_id_reads_the_parquet_export_revision(monkeypatch):
    """datasets >= 4.0 refuses the repo's loading script; the loader asks for the parquet export."""
    import datasets

    from utils import config

    seen = {}

    def fake_load(source, **kwargs):
        seen.update(kwargs, source=source)
        raise ConnectionError("Couldn't reach the Hub (OfflineModeIsEnabled)")

    monkeypatch.setattr(datasets, "load_dataset", fake_load)
    from utils.runtime import HubAccessError

    with pytest.raises(HubAccessError, match="download revision 'refs/convert/parquet'.*pass that folder"):
        data.load_vsfc(config.VSFC_HUB_ID)
    assert seen["source"] == "uitnlp/vietnamese_students_feedback" and seen["revision"] == "refs/convert/parquet"


def test_a_folder_laid_out_like_the_hub_parquet_export(tmp_path):
    import pandas as pd

    for split, n in (("train", 3), ("validation", 1), ("test", 2)):
        (tmp_path / "default" / split).mkdir(parents=True)
        pd.DataFrame({"sentence": ["cô dạy hay ."] * n, "sentiment": [2] * n, "topic": [0] * n}).to_parquet(
            tmp_path / "default" / split / "0000.parquet")
    ds = data.load_vsfc(str(tmp_path))
    assert {k: len(v) for k, v in ds.items()} == {"train": 3, "validation": 1, "test": 2}
