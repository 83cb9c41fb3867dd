"""Load UIT-VSFC, MedMCQA and WMT16 de-en from the Hub, a local file or folder, or the bundled samples.

One loader per dataset, whatever the source, so the notebooks never change between the smoke
profile (bundled samples, no network) and a GPU run (the hub datasets):

- ``"sample"``: the course's own small sets in ``utils/samples/`` (written for the course,
  same columns and label coding as the hub datasets);
- a hub id, e.g. ``"uitnlp/vietnamese_students_feedback"`` (read from its parquet export,
  revision ``refs/convert/parquet``: the main branch holds only a loading script that
  datasets >= 4.0 refuses);
- a local ``.jsonl`` / ``.json`` / ``.csv`` / ``.parquet`` file, a folder holding
  ``train.*`` / ``validation.*`` / ``test.*`` files, a folder laid out like the hub's parquet
  export (``default/train/0000.parquet`` ...), or a folder written by ``save_to_disk``
  (offline classrooms).

Example:
    >>> from utils import data
    >>> data.load_vsfc("sample", split="test").column_names
    ['sentence', 'sentiment', 'topic']
"""

from __future__ import annotations

from pathlib import Path

from utils.config import VSFC_HUB_ID, VSFC_HUB_REVISION

# utils.runtime and datasets (heavy) are imported where used: reading a bundled sample path stays light.


SENTIMENT_LABELS = ["negative", "neutral", "positive"]    # UIT-VSFC: 0, 1, 2
TOPIC_LABELS = ["lecturer", "training_program", "facility", "others"]
MCQ_LETTERS = "ABCD"                                      # MedMCQA cop 0..3; test split has cop = -1
VSFC_COLUMNS = ("sentence", "sentiment", "topic")
MEDMCQA_COLUMNS = ("id", "question", "opa", "opb", "opc", "opd", "cop", "choice_type", "exp",
                   "subject_name", "topic_name")
SPLITS = ("train", "validation", "test")
_FORMATS = {".jsonl": "json", ".json": "json", ".csv": "csv", ".parquet": "parquet"}


def sample_path(name: str) -> Path:
    """Path of a file bundled with the course package (utils/samples/NAME)."""
    path = Path(__file__).with_name("samples") / name
    if not path.exists():
        raise FileNotFoundError(f"Bundled sample {name!r} is missing from {path.parent}; reinstall the course package.")
    return path


def _hub_revision(source: str) -> str | None:
    return VSFC_HUB_REVISION if source == VSFC_HUB_ID else None


def _load(source: str, prefix: str, split: str | None):
    import datasets

    if split is not None and split not in SPLITS:
        raise ValueError(f"Unknown split {split!r}: use one of {SPLITS} or None for all three.")
    if source == "sample":
        files = {s: str(sample_path(f"{prefix}_{s}.jsonl")) for s in SPLITS}
        ds = datasets.load_dataset("json", data_files=files)
    elif Path(source).exists():
        ds = _load_local(Path(source))
    else:
        from utils import runtime

        revision = _hub_revision(source)
        try:
            ds = datasets.load_dataset(source, revision=revision, token=runtime.hf_token())
        except Exception as exc:  # noqa: BLE001 - one clear message for every hub failure
            error = runtime.explain_hub_error(exc, source)
            where = f"revision {revision!r}: " if revision else ""
            raise type(error)(f"{error} To work without the Hub, download {where}the files "
                              "train / validation / test (parquet, jsonl or csv) into a folder and pass that folder "
                              "as the data source.", kind=error.kind) from None
    if split is None:
        return ds
    if isinstance(ds, datasets.Dataset):
        raise ValueError(f"{source} holds a single table, not splits: pass split=None, then train_test_split.")
    if split not in ds:
        raise ValueError(f"{source} has no {split!r} split; it has {list(ds)}.")
    return ds[split]


def _load_local(path: Path):
    import datasets

    if path.is_dir() and (path / "dataset_dict.json").exists():
        return datasets.load_from_disk(str(path))
    if path.is_file():
        if path.suffix not in _FORMATS:
            raise ValueError(f"Unsupported file type {path.suffix!r}: use one of {sorted(_FORMATS)}.")
        return datasets.load_dataset(_FORMATS[path.suffix], data_files=str(path), split="train")
    files = {s: [str(p) for p in sorted(path.glob(f"{s}.*")) if p.suffix in _FORMATS] for s in SPLITS}
    if not any(files.values()):   # the hub's parquet export: <config>/<split>/0000.parquet
        files = {s: [str(p) for p in sorted(path.glob(f"*/{s}/*.parquet")) + sorted(path.glob(f"{s}/*.parquet"))]
                 for s in SPLITS}
    files = {s: f for s, f in files.items() if f}
    if not files:
        raise ValueError(f"No train.* / validation.* / test.* files ({sorted(_FORMATS)}), nor default/<split>/*.parquet, "
                         f"in folder {path}.")
    kinds = {_FORMATS[Path(f[0]).suffix] for f in files.values()}
    if len(kinds) > 1:
        raise ValueError(f"Mixed file types in {path}: keep every split in one format.")
    return datasets.load_dataset(kinds.pop(), data_files=files)


def _check_columns(ds, required, source):
    import datasets

    tables = [ds] if isinstance(ds, datasets.Dataset) else list(ds.values())
    for table in tables:
        missing = [c for c in required if c not in table.column_names]
        if missing:
            raise ValueError(f"{source} lacks column(s) {missing}; expected {list(required)}, found {table.column_names}.")
    return ds


def load_vsfc(source: str = "sample", split: str | None = None):
    """UIT-VSFC (sentence, sentiment 0 neg / 1 neu / 2 pos, topic) from any source (see module doc)."""
    return _check_columns(_load(source, "vsfc", split), VSFC_COLUMNS, source)


def load_medmcqa(source: str = "sample", split: str | None = None):
    """MedMCQA (question, opa..opd, cop 0..3 = A..D; -1 where answers are hidden) from any source."""
    return _check_columns(_load(source, "medmcqa", split), ("question", "opa", "opb", "opc", "opd", "cop"), source)


def take(ds, n: int | None, seed: int = 42):
    """A reproducible random subset of at most `n` rows (all rows when n is None)."""
    if n is None or n >= len(ds):
        return ds
    return ds.shuffle(seed=seed).select(range(n))


WMT16_HUB_ID = "wmt/wmt16"      # config "de-en": {"translation": {"de": ..., "en": ...}}, parquet on the hub's main branch
WMT16_CONFIG = "de-en"          # no revision pinned: the course has not read the hub's commit id offline (issue 18)
WMT_SAMPLE_PREFIX = "wmt_de_en"  # utils/samples/wmt_de_en_{train,validation,test}.jsonl (course/tools/make_seq2seq_sample.py)


def load_wmt16(source: str = "sample", split: str = "train", limit: int | None = None, seed: int = 42) -> list[dict]:
    """German -> English pairs as [{"de": ..., "en": ...}] (lesson 08) from the bundled sample, a local copy or the hub.

    Rows are WMT16's ({"translation": {"de": ..., "en": ...}}). A local file is read as the split
    asked for, a folder as for the other datasets (``train.*`` ... or the hub's parquet layout).
    `limit` takes a reproducible random subset (``take``); pairs with an empty side are dropped,
    and counted in a warning.

    Example:
        >>> load_wmt16("sample", "test")[0].keys()
        dict_keys(['de', 'en'])
    """
    import datasets

    if split not in SPLITS:
        raise ValueError(f"Unknown split {split!r}: use one of {SPLITS}.")
    if source == "sample":
        ds = datasets.load_dataset("json", data_files=str(sample_path(f"{WMT_SAMPLE_PREFIX}_{split}.jsonl")), split="train")
    elif Path(source).is_file():
        ds = _load_local(Path(source))                  # one file: the pairs of this split
    elif Path(source).exists():
        ds = _load(source, WMT_SAMPLE_PREFIX, split)   # a folder, as for the other datasets
    else:
        from utils import runtime

        try:
            ds = datasets.load_dataset(source, WMT16_CONFIG, split=split, token=runtime.hf_token())
        except Exception as exc:  # noqa: BLE001 - one clear message for every hub failure
            raise runtime.explain_hub_error(exc, source) from None
    if "translation" not in ds.column_names:
        raise ValueError(f"{source} has no 'translation' column (rows like {{'translation': {{'de': ..., 'en': ...}}}}); "
                         f"found {ds.column_names}.")
    ds = take(ds, limit, seed=seed)
    pairs = [{"de": t["de"].strip(), "en": t["en"].strip()} for t in ds["translation"]]
    kept = [p for p in pairs if p["de"] and p["en"]]
    if len(kept) < len(pairs):
        import warnings

        warnings.warn(f"{source} ({split}): dropped {len(pairs) - len(kept)} of {len(pairs)} pairs with an empty side.",
                      stacklevel=2)
    return kept
