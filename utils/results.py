"""Results that one lesson saves and a later lesson puts beside its own (lessons 04 -> 05, 06).

Saved as JSON in ``outputs/`` next to the notebook and in the course cache
(``$COURSE_CACHE/results``, default ``~/.cache/peft-course/results``), so a later notebook
finds them whether it runs in the same folder or elsewhere on the same machine (another Colab
notebook in the same runtime). Each file records the profile, so smoke numbers are never
shown as if they came from a GPU run.

Example:
    >>> save("04_lora_sentiment", profile, {"LoRA": {"accuracy": 0.9}})
    >>> load("04_lora_sentiment", profile)["rows"]["LoRA"]["accuracy"]
    0.9
"""

from __future__ import annotations

import json
import time
from pathlib import Path

from utils.config import cache_root


def _paths(lesson: str) -> list[Path]:

    return [Path("outputs") / f"{lesson}_results.json", cache_root() / "results" / f"{lesson}.json"]


def save(lesson: str, profile, rows: dict) -> str:
    """Write `rows` ({row name: {metric: value}}) with the profile and date; return the cache path."""
    payload = {"lesson": lesson, "profile": profile.name, "model": profile.model_id,
               "saved": time.strftime("%Y-%m-%d %H:%M"), "rows": rows}
    text = json.dumps(payload, indent=1, default=float)
    for path in _paths(lesson):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return str(_paths(lesson)[-1])


def load(lesson: str, profile) -> dict | None:
    """The saved results of `lesson` for this profile, or None (with a sentence saying why)."""
    for path in _paths(lesson):
        if path.exists():
            payload = json.loads(path.read_text())
            if payload.get("profile") == profile.name:
                return payload
            print(f"{path} holds {payload.get('profile')!r}-profile results, not {profile.name!r}: ignored.")
    print(f"No saved results of lesson {lesson} for the {profile.name!r} profile: run that lesson first.")
    return None
