"""Label schemes: map each corpus's native labels onto a shared set of classes.

Every native label has a *canonical* label from :data:`CANONICAL` (EMO-DB
``anger`` and IEMOCAP ``ang`` are both ``angry``). A scheme then maps canonical
labels onto the classes a model is trained on, dropping the rest:

- ``native``: labels unchanged;
- ``common6``: neutral (incl. calm), happy, sad, angry, fearful, disgust;
- ``4class``: neutral (incl. calm), happy, surprise, unpleasant;
- ``valence3``: pleasant, unpleasant, neutral;
- ``canonical``: every corpus's labels spelt one way (:data:`CANONICAL`: EMO-DB ``anger`` and
  RAVDESS ``angry`` are one class), nothing merged or dropped;
- a JSON or YAML file mapping labels (native or canonical) to classes.

Records are any frozen dataclass with ``label``, ``native`` and ``canonical``
fields, such as :class:`tinyser.corpora.Record`.
"""
from __future__ import annotations

import dataclasses
import json
import os
from collections import Counter
from pathlib import Path
from typing import Any, Iterable, Mapping

from .errors import ConfigError, CorpusError

CANONICAL = ("neutral", "calm", "happy", "sad", "angry", "fearful", "disgust",
             "surprise", "boredom", "excited", "frustrated")

# Native labels of every supported corpus, and common spellings in user trees.
ALIASES: dict[str, str] = {
    **{c: c for c in CANONICAL},
    "neu": "neutral",
    "happiness": "happy", "hap": "happy", "joy": "happy",
    "sadness": "sad",
    "anger": "angry", "ang": "angry",
    "fear": "fearful", "fea": "fearful",
    "disgusted": "disgust", "dis": "disgust",
    "surprised": "surprise", "sur": "surprise", "ps": "surprise",
    "pleasant_surprise": "surprise", "pleasant_surprised": "surprise",
    "bored": "boredom",
    "exc": "excited",
    "fru": "frustrated", "frustration": "frustrated",
}

_UNPLEASANT = ("angry", "fearful", "disgust", "sad")
_TABLES: dict[str, dict[str, str]] = {
    "common6": {"neutral": "neutral", "calm": "neutral", "happy": "happy", "sad": "sad",
                "angry": "angry", "fearful": "fearful", "disgust": "disgust"},
    "4class": {"neutral": "neutral", "calm": "neutral", "happy": "happy", "surprise": "surprise",
               **{c: "unpleasant" for c in _UNPLEASANT}},
    "valence3": {"happy": "pleasant", "surprise": "pleasant",
                 **{c: "unpleasant" for c in _UNPLEASANT},
                 "neutral": "neutral", "calm": "neutral"},
    "canonical": {c: c for c in CANONICAL},
}
_ORDER = {
    "common6": ["neutral", "happy", "sad", "angry", "fearful", "disgust"],
    "4class": ["neutral", "happy", "surprise", "unpleasant"],
    "valence3": ["pleasant", "unpleasant", "neutral"],
    "canonical": list(CANONICAL),
}
SCHEMES: tuple[str, ...] = ("native", *_TABLES)
_MAPPING_SUFFIXES = (".json", ".yaml", ".yml")


def canonical(label: str) -> str:
    """Corpus-independent label of a native label; unknown labels come back as given.

    >>> canonical("anger"), canonical("ps"), canonical("Happy"), canonical("whisper")
    ('angry', 'surprise', 'happy', 'whisper')
    """
    return ALIASES.get(label.strip().casefold(), label)


def scheme_classes(scheme: str | os.PathLike | Mapping) -> list[str] | None:
    """Class order of a built-in scheme; ``None`` for ``native`` and mapping files.

    >>> scheme_classes("4class")
    ['neutral', 'happy', 'surprise', 'unpleasant']
    """
    order = _ORDER.get(scheme) if isinstance(scheme, str) else None
    return list(order) if order else None


def apply_scheme(records: Iterable, scheme: str | os.PathLike | Mapping = "native") -> tuple[list, dict[str, int]]:
    """Relabel records under a scheme; return (kept records, {dropped label: count}).

    ``scheme`` is a name from :data:`SCHEMES`, a path to a JSON/YAML mapping
    file, or a mapping itself. Dropped labels are counted by the label the
    record had before.

    >>> from tinyser.corpora import Record
    >>> calm, surprised = Record("/a.wav", "calm", "01", "ravdess"), Record("/b.wav", "surprised", "01", "ravdess")
    >>> kept, dropped = apply_scheme([calm, surprised], "common6")
    >>> [r.label for r in kept], dropped
    (['neutral'], {'surprised': 1})
    """
    records = list(records)
    if isinstance(scheme, str) and scheme == "native":
        return records, {}
    lookup = _lookup_for(scheme)
    kept, dropped = [], Counter()
    for r in records:
        target = lookup(r)
        if target is None:
            dropped[r.label] += 1
        else:
            kept.append(r if target == r.label else dataclasses.replace(r, label=target))
    return kept, dict(dropped.most_common())


def load_mapping(path: str | os.PathLike) -> dict[str, str | None]:
    """Read a JSON or YAML file mapping labels to classes (``null`` drops a label).

    Keys are matched case-insensitively against a record's label, native
    label and canonical label. Raises :class:`CorpusError` naming the file.

    >>> load_mapping("labels.yaml")   # doctest: +SKIP
    {'anger': 'negative', 'happiness': 'positive', 'boredom': None}
    """
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise CorpusError(f"{p}: cannot read label mapping ({getattr(e, 'strerror', None) or e})") from None
    data = _parse_mapping_text(p, text)
    if not isinstance(data, dict) or not data:
        raise CorpusError(f"{p}: label mapping must be a non-empty object of label: class pairs")
    for k, v in data.items():
        if not isinstance(k, str) or not (v is None or isinstance(v, str)):
            raise CorpusError(f"{p}: label mapping entry {k!r}: {v!r} is not text (quote labels such as yes/no)")
    return {k.strip().casefold(): (v.strip() if v else None) for k, v in data.items()}


def _parse_mapping_text(p: Path, text: str) -> Any:
    if p.suffix.lower() == ".json":
        try:
            return json.loads(text)
        except json.JSONDecodeError as e:
            raise CorpusError(f"{p}: invalid JSON label mapping ({e})") from None
    import yaml

    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark else ""
        raise CorpusError(f"{p}: invalid YAML label mapping ({getattr(e, 'problem', None) or e}{where})") from None


def _lookup_for(scheme):
    if isinstance(scheme, Mapping):
        table = {str(k).strip().casefold(): v for k, v in scheme.items()}
        return lambda r: _from_mapping(table, r)
    name = os.fspath(scheme)
    if name in _TABLES:
        return lambda r: _TABLES[name].get(r.canonical)
    if Path(name).suffix.lower() in _MAPPING_SUFFIXES or Path(name).exists():
        table = load_mapping(name)
        return lambda r: _from_mapping(table, r)
    raise ConfigError(f"unknown label scheme {name!r}; use one of {', '.join(SCHEMES)} "
                      "or a JSON/YAML mapping file")


def _from_mapping(table: Mapping[str, str | None], record) -> str | None:
    for key in (record.label, record.native, record.canonical):
        k = key.strip().casefold()
        if k in table:
            return table[k]
    return None
