"""Emotional-speech corpora: detect a corpus layout, scan it into labelled
records, and combine one or more corpora into a :class:`Dataset` under a label
scheme.

A scan never raises for a bad file: files that are misnamed, unreadable,
truncated or too short are listed in ``skipped`` with a reason, and the rest
are used.

>>> ds = load_dataset(["data/emodb", "data/ravdess"], labels="common6")   # doctest: +SKIP
>>> ds.summary()["classes"]                                                # doctest: +SKIP
{'angry': 319, 'happy': 263, ...}
"""
from __future__ import annotations

import itertools
import os
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping, Sequence

from ..errors import ConfigError, CorpusError
from ..labels import SCHEMES, apply_scheme, scheme_classes
from . import cremad, emodb, folders, iemocap, manifest, ravdess, savee, tess
from ._common import AUDIO_EXTENSIONS, Record, Skipped, iter_audio

__all__ = ["AUDIO_EXTENSIONS", "CORPORA", "Dataset", "Record", "Scan", "Skipped", "SCHEMES",
           "detect", "load_dataset", "scan"]

_NAMED = {m.NAME: m for m in (emodb, ravdess, tess, savee, cremad)}
_MODULES = {**_NAMED, "iemocap": iemocap, "folders": folders, "manifest": manifest}
CORPORA: tuple[str, ...] = tuple(_MODULES)
_SAMPLE_PER_DIR, _SAMPLE_MAX = 50, 1000


@dataclass
class Scan:
    """What :func:`scan` found under one path."""

    corpus: str
    root: str
    records: list[Record]
    skipped: list[Skipped]


def detect(path: str | os.PathLike) -> str:
    """Name of the corpus at ``path``, judged from the layout and a sample of file names.

    Raises :class:`CorpusError` when the path is missing or the layout is unknown.

    >>> detect("data/ravdess/Actor_01")   # doctest: +SKIP
    'ravdess'
    """
    p = _existing(path)
    if p.is_file():
        if p.suffix.lower() == ".csv":
            return "manifest"
        raise CorpusError(f"{p}: not a corpus folder or a .csv manifest")
    if iemocap.eval_dirs(p):
        return "iemocap"
    sample = list(itertools.islice(iter_audio(p, per_dir=_SAMPLE_PER_DIR), _SAMPLE_MAX))
    if not sample:
        raise CorpusError(f"{p}: no audio files found ({' '.join(sorted(AUDIO_EXTENSIONS))}); "
                          "pass a corpus folder or a CSV manifest")
    scores = {name: sum(m.parse(f) is not None for f in sample) for name, m in _NAMED.items()}
    best = max(scores, key=scores.get)
    if scores[best] * 2 > len(sample):
        return best
    if len(folders.label_dirs(p)) >= 2:
        return "folders"
    raise CorpusError(f"{p}: cannot tell the corpus layout (file names follow no known corpus "
                      "and there are not 2 label folders); pass --corpus or a CSV manifest")


def scan(path: str | os.PathLike, corpus: str = "auto", *, check_audio: bool = True) -> Scan:
    """Scan a corpus folder (or CSV manifest) into records sorted by path.

    ``corpus`` is a name from :data:`CORPORA` or ``"auto"``. With
    ``check_audio`` every file's header is probed; bad files go to ``skipped``.

    >>> s = scan("data/emodb")   # doctest: +SKIP
    >>> s.corpus, len(s.records), s.records[0].label   # doctest: +SKIP
    ('emodb', 535, 'happiness')
    """
    p = _existing(path)
    name = detect(p) if corpus.strip().lower() == "auto" else corpus_name(corpus)
    if (name == "manifest") != p.is_file():
        raise CorpusError(f"{p}: the {name} corpus needs "
                          f"{'a .csv file' if name == 'manifest' else 'a folder, not a file'}")
    if name == "iemocap" and not iemocap.eval_dirs(p):
        raise CorpusError(f"{p}: no IEMOCAP Session*/dialog/EmoEvaluation folder found")
    records, skipped = _MODULES[name].scan(p, check_audio)
    return Scan(name, str(p), sorted(records, key=lambda r: r.path), sorted(skipped, key=lambda s: s.path))


def corpus_name(name: str) -> str:
    """Normalise a corpus name (``"CREMA-D"`` -> ``"cremad"``); raises :class:`ConfigError` if unknown.

    >>> corpus_name("EMO-DB")
    'emodb'
    """
    key = name.strip().lower().replace("-", "").replace("_", "")
    if key not in _MODULES:
        raise ConfigError(f"unknown corpus {name!r}; use auto or one of {', '.join(CORPORA)}")
    return key


@dataclass
class Dataset:
    """Records of one or more corpora under one label scheme."""

    records: list[Record]
    skipped: list[Skipped] = field(default_factory=list)
    dropped: dict[str, int] = field(default_factory=dict)
    corpora: list[str] = field(default_factory=list)
    labels: list[str] = field(default_factory=list)
    scheme: str = "native"

    def __len__(self) -> int:
        return len(self.records)

    def class_counts(self) -> dict[str, int]:
        """Files per label, most frequent first.

        >>> Dataset([Record("/a.wav", "sad", "1", "x"), Record("/b.wav", "sad", "1", "x")]).class_counts()
        {'sad': 2}
        """
        return _by_count(Counter(r.label for r in self.records))

    def speaker_counts(self) -> dict[str, int]:
        """Files per speaker, sorted by id: plain ids for one corpus, ``corpus:id`` for several.

        >>> Dataset([Record("/a.wav", "sad", "03", "emodb")]).speaker_counts()
        {'03': 1}
        """
        several = len({r.corpus for r in self.records}) > 1
        ids = (r.group if several else r.speaker for r in self.records if r.speaker is not None)
        return dict(sorted(Counter(ids).items()))

    def summary(self) -> dict:
        """JSON-able overview: corpus, counts, classes, speakers, skipped and dropped files.

        >>> load_dataset("data/emodb").summary()["n_files"]   # doctest: +SKIP
        535
        """
        return {
            "corpus": "+".join(self.corpora),
            "n_files": len(self.records),
            "n_skipped": len(self.skipped),
            "classes": self.class_counts(),
            "speakers": self.speaker_counts(),
            "skipped": [{"path": s.path, "reason": s.reason} for s in self.skipped],
            "dropped": _by_count(self.dropped),
            "scheme": self.scheme,
        }


def load_dataset(paths: str | os.PathLike | Sequence[str | os.PathLike], corpus: str = "auto",
                 labels: str | os.PathLike | Mapping = "native", *, check_audio: bool = True) -> Dataset:
    """Scan one or more corpora and apply a label scheme.

    ``labels`` is a scheme name (see :data:`tinyser.labels.SCHEMES`) or a path
    to a JSON/YAML mapping file. A file reached through two of the paths is
    kept once and listed in ``skipped``.

    >>> ds = load_dataset(["data/emodb", "data/ravdess"], labels="common6")   # doctest: +SKIP
    >>> ds.corpora, ds.labels                                                 # doctest: +SKIP
    (['emodb', 'ravdess'], ['neutral', 'happy', 'sad', 'angry', 'fearful', 'disgust'])
    """
    scans = [scan(p, corpus, check_audio=check_audio) for p in _as_list(paths)]
    records, skipped = _merge(scans)
    kept, dropped = apply_scheme(records, labels)
    present = {r.label for r in kept}
    order = scheme_classes(labels)
    classes = [c for c in order if c in present] if order else sorted(present)
    corpora = list(dict.fromkeys(s.corpus for s in scans))
    name = "mapping" if isinstance(labels, Mapping) else os.fspath(labels)
    return Dataset(kept, skipped, dropped, corpora, classes, name)


def _existing(path: str | os.PathLike) -> Path:
    p = Path(os.path.abspath(os.path.expanduser(os.fspath(path))))
    if not p.exists():
        raise CorpusError(f"{p}: no such file or folder")
    return p


def _as_list(paths) -> list:
    items = [paths] if isinstance(paths, (str, os.PathLike)) else list(paths)
    if not items:
        raise CorpusError("no dataset path given")
    return items


def _merge(scans: list[Scan]) -> tuple[list[Record], list[Skipped]]:
    first: dict[str, str] = {}
    records, skipped = [], []
    for s in scans:
        skipped.extend(s.skipped)
        for r in s.records:
            if r.path in first:
                skipped.append(Skipped(r.path, f"found twice (also under {first[r.path]})"))
                continue
            first[r.path] = s.root
            records.append(r)
    return sorted(records, key=lambda r: r.path), skipped


def _by_count(counts: Mapping[str, int]) -> dict[str, int]:
    return dict(sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])))
