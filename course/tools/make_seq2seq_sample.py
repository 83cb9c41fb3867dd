"""Write the course's bundled German -> English sample for lesson 08 (the WMT16 de-en schema).

Every sentence pair is composed here from a small grammar written for the course (people and
animals at university, at home and in the park); none is copied from WMT16 or any corpus.
The rows have the hub dataset's layout, ``{"translation": {"de": ..., "en": ...}}``
(`wmt/wmt16`, config `de-en`), so one loader serves both. The grammar covers what makes
translation more than a word list: German verb-second order after a fronted time phrase
("Heute liest der Student das Buch." -> "Today the student reads the book."), questions that
English builds with "does", negation that English builds with "does not", and gender and case
in articles (der / den, im / in der).

The splits are disjoint: no German and no English sentence appears in two splits (pairs are
grouped by their English side first, since "Lehrer" and "Lehrerin" both give "teacher").

Run from the repository root: `python course/tools/make_seq2seq_sample.py` (deterministic).
"""

import json
import random
from pathlib import Path

OUT = Path(__file__).resolve().parents[2] / "utils" / "samples"
SIZES = {"train": 1000, "validation": 100, "test": 150}
SEED = 8

# (German noun, gender m/f/n, English noun)
PEOPLE = [("Student", "m", "student"), ("Lehrer", "m", "teacher"), ("Lehrerin", "f", "teacher"),
          ("Professor", "m", "professor"), ("Freund", "m", "friend"), ("Frau", "f", "woman"),
          ("Mann", "m", "man"), ("Kind", "n", "child"), ("Mädchen", "n", "girl"), ("Junge", "m", "boy")]
ANIMALS = [("Hund", "m", "dog"), ("Katze", "f", "cat"), ("Vogel", "m", "bird")]
THINGS = [("Buch", "n", "book"), ("Brief", "m", "letter"), ("Apfel", "m", "apple"), ("Tasche", "f", "bag"),
          ("Zeitung", "f", "newspaper"), ("Fenster", "n", "window"), ("Tür", "f", "door"),
          ("Computer", "m", "computer"), ("Bild", "n", "picture"), ("Heft", "n", "notebook"),
          ("Aufgabe", "f", "task"), ("Frage", "f", "question"), ("Lampe", "f", "lamp"), ("Auto", "n", "car"),
          ("Bericht", "m", "report"), ("Kaffee", "m", "coffee")]
PLACES = [("Haus", "n", "house"), ("Garten", "m", "garden"), ("Zimmer", "n", "room"), ("Küche", "f", "kitchen"),
          ("Schule", "f", "school"), ("Bibliothek", "f", "library"), ("Park", "m", "park"), ("Büro", "n", "office")]
# (German 3rd person singular, English 3rd person singular, English base form)
TRANSITIVE = [("liest", "reads", "read"), ("sieht", "sees", "see"), ("kauft", "buys", "buy"),
              ("sucht", "looks for", "look for"), ("öffnet", "opens", "open"), ("braucht", "needs", "need"),
              ("findet", "finds", "find"), ("hat", "has", "have"), ("trägt", "carries", "carry"),
              ("mag", "likes", "like"), ("schreibt", "writes", "write"), ("nimmt", "takes", "take")]
INTRANSITIVE = [("schläft", "sleeps", "sleep"), ("wartet", "waits", "wait"), ("arbeitet", "works", "work"),
                ("spielt", "plays", "play"), ("sitzt", "sits", "sit"), ("lacht", "laughs", "laugh")]
ADJECTIVES = [("alt", "old"), ("neu", "new"), ("groß", "big"), ("klein", "small"), ("rot", "red"),
              ("blau", "blue"), ("schön", "beautiful"), ("leer", "empty"), ("teuer", "expensive"),
              ("billig", "cheap"), ("laut", "loud"), ("müde", "tired"), ("glücklich", "happy"),
              ("interessant", "interesting")]
FOR_LIVING = {"tired", "happy"}                  # said of people and animals only
FOR_ALL = {"old", "big", "small", "loud"}      # said of anything
TIMES = [("Heute", "Today"), ("Jetzt", "Now"), ("Am Morgen", "In the morning"), ("Am Abend", "In the evening")]
NOMINATIVE = {"m": "der", "f": "die", "n": "das"}
ACCUSATIVE = {"m": "den", "f": "die", "n": "das"}
IN_DATIVE = {"m": "im", "f": "in der", "n": "im"}


def cap(text: str) -> str:
    return text[0].upper() + text[1:]


def clause(rng: random.Random):
    """One random clause as (kind, German pieces, English pieces)."""
    kind = rng.choice(["transitive", "transitive", "intransitive", "adjective"])
    if kind == "transitive":
        noun, gender, en_noun = rng.choice(PEOPLE)
        obj, obj_gender, en_obj = rng.choice(THINGS)
        verb = rng.choice(TRANSITIVE)
        return kind, (f"{NOMINATIVE[gender]} {noun}", verb[0], f"{ACCUSATIVE[obj_gender]} {obj}"), \
            (f"the {en_noun}", verb[1], verb[2], f"the {en_obj}")
    if kind == "intransitive":
        noun, gender, en_noun = rng.choice(PEOPLE + ANIMALS)
        place, place_gender, en_place = rng.choice(PLACES)
        verb = rng.choice(INTRANSITIVE)
        return kind, (f"{NOMINATIVE[gender]} {noun}", verb[0], f"{IN_DATIVE[place_gender]} {place}"), \
            (f"the {en_noun}", verb[1], verb[2], f"in the {en_place}")
    noun, gender, en_noun = rng.choice(THINGS + ANIMALS + PEOPLE[:2])
    living = (noun, gender, en_noun) not in THINGS
    adjective = rng.choice([a for a in ADJECTIVES if (a[1] in FOR_LIVING) == living or a[1] in FOR_ALL])
    very = rng.random() < 0.25
    return kind, (f"{NOMINATIVE[gender]} {noun}", "ist", ("sehr " if very else "") + adjective[0]), \
        (f"the {en_noun}", "is", "is", ("very " if very else "") + adjective[1])


def sentence_pair(rng: random.Random) -> tuple[str, str]:
    """A German sentence and its English translation, in one of four shapes."""
    kind, (subj, verb, rest), (en_subj, en_verb, en_base, en_rest) = clause(rng)
    shape = rng.choices(["statement", "time", "negation", "question"], weights=[4, 2, 2, 2])[0]
    if shape == "statement":
        return f"{cap(subj)} {verb} {rest}.", f"{cap(en_subj)} {en_verb} {en_rest}."
    if shape == "time":                                  # German puts the verb second: time, verb, subject
        de_time, en_time = rng.choice(TIMES)
        return f"{de_time} {verb} {subj} {rest}.", f"{en_time} {en_subj} {en_verb} {en_rest}."
    if shape == "negation":
        if kind == "adjective":
            return f"{cap(subj)} {verb} nicht {rest}.", f"{cap(en_subj)} is not {en_rest}."
        if kind == "intransitive":
            return f"{cap(subj)} {verb} nicht {rest}.", f"{cap(en_subj)} does not {en_base} {en_rest}."
        return f"{cap(subj)} {verb} {rest} nicht.", f"{cap(en_subj)} does not {en_base} {en_rest}."
    if kind == "adjective":
        return f"{cap(verb)} {subj} {rest}?", f"Is {en_subj} {en_rest}?"
    return f"{cap(verb)} {subj} {rest}?", f"Does {en_subj} {en_base} {en_rest}?"


def build(sizes=SIZES, seed: int = SEED) -> dict[str, list[dict]]:
    """Disjoint splits of unique pairs, grouped by the English sentence so no side repeats across splits."""
    rng = random.Random(seed)
    groups: dict[str, set[str]] = {}
    german_seen: set[str] = set()
    total = sum(sizes.values())
    while len(groups) < total:
        de, en = sentence_pair(rng)
        if de in german_seen:
            continue
        german_seen.add(de)
        groups.setdefault(en, set()).add(de)
    english = list(groups)
    rng.shuffle(english)
    out, start = {}, 0
    for split, n in sizes.items():
        out[split] = [{"translation": {"de": sorted(groups[en])[0], "en": en}} for en in english[start:start + n]]
        start += n
    return out


def main() -> None:
    splits = build()
    for split, rows in splits.items():
        path = OUT / f"wmt_de_en_{split}.jsonl"
        path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
        print(f"{path.relative_to(OUT.parents[1])}: {len(rows)} pairs")
    for a in splits:
        for b in splits:
            if a < b:
                for side in ("de", "en"):
                    shared = {r["translation"][side] for r in splits[a]} & {r["translation"][side] for r in splits[b]}
                    assert not shared, f"{a} and {b} share {side} sentences: {sorted(shared)[:3]}"


if __name__ == "__main__":
    main()
