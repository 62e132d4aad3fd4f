"""Evaluation protocols: which clips train, validate and test each fold.

- ``random:K``  stratified K-fold over clips (comparable with most papers;
  speakers are shared between train and test);
- ``speaker``   leave-one-speaker-out;
- ``speaker:K`` K folds grouped by speaker (speaker-independent);
- ``holdout``   one train/validation/test split by speaker;
- ``corpus``    leave one corpus out: train on the other corpora, test on the
  left-out one (speakers are ``corpus:id``; validation speakers are carved
  from each training corpus that has three or more speakers);
- ``final``     the model to ship: every speaker trains except the validation
  speakers that choose the best epoch. There is no test part: the "scores"
  of a final run are on those validation speakers and therefore optimistic;
  quote a cross-validation run of the same configuration instead.

Validation data is always carved from the fold's training part; in the
speaker protocols the validation speakers are neither training nor test
speakers. Model selection (early stopping, best epoch) sees only validation.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from .errors import ConfigError

PROTOCOLS = ("random:K", "speaker", "speaker:K", "holdout", "corpus", "final")


def _sklearn():
    """scikit-learn's splitters (the ``train`` extra), imported on first use."""
    from .extras import need

    return need("sklearn.model_selection", "splitting data into folds")


@dataclass(frozen=True)
class Fold:
    """Clip indices of one fold's train, validation and test parts."""

    index: int
    train: np.ndarray
    val: np.ndarray
    test: np.ndarray

    def speakers(self, groups: np.ndarray) -> dict[str, list[str]]:
        return {part: sorted(set(groups[getattr(self, part)].tolist())) for part in ("train", "val", "test")}


@dataclass(frozen=True)
class Protocol:
    """A parsed protocol name such as ``speaker:5``.

    >>> Protocol.parse("speaker:5")
    Protocol(kind='speaker', k=5)
    """

    kind: str
    k: int | None = None

    @classmethod
    def parse(cls, text: str) -> Protocol:
        kind, _, k = text.strip().partition(":")
        if kind not in ("random", "speaker", "holdout", "corpus", "final") or (kind == "random" and not k) or \
                (kind in ("holdout", "corpus", "final") and k):
            raise ConfigError(f"unknown protocol {text!r}; use one of {', '.join(PROTOCOLS)}")
        try:
            n = int(k) if k else None
        except ValueError:
            raise ConfigError(f"protocol {text!r}: K must be a whole number") from None
        if n is not None and n < 2:
            raise ConfigError(f"protocol {text!r}: K must be at least 2")
        return cls(kind, n)

    def __str__(self) -> str:
        return self.kind if self.k is None else f"{self.kind}:{self.k}"

    @property
    def speaker_independent(self) -> bool:
        return self.kind not in ("random", "final")


def make_folds(labels: Sequence, groups: Sequence, protocol: str | Protocol, seed: int = 0,
               val_fraction: float = 0.15) -> list[Fold]:
    """Split clips into folds. ``labels`` and ``groups`` (speakers) have one entry per clip.

    >>> folds = make_folds(list("aabbaabb") * 2, [f"s{i // 4}" for i in range(16)], "speaker")
    >>> len(folds), folds[0].speakers(np.array([f"s{i // 4}" for i in range(16)]))["test"]
    (4, ['s0'])
    """
    p = protocol if isinstance(protocol, Protocol) else Protocol.parse(protocol)
    y, g = np.asarray(labels), np.asarray(groups)
    if len(y) != len(g) or len(y) == 0:
        raise ConfigError("labels and speaker groups must be non-empty and of equal length")
    rng = np.random.default_rng(seed)
    if p.kind == "random":
        _check_counts(y, p.k)
        splits = _sklearn().StratifiedKFold(p.k, shuffle=True, random_state=seed).split(y, y)
        return [_random_val(i, tr, te, y, val_fraction, seed) for i, (tr, te) in enumerate(splits)]
    speakers = np.unique(g)
    if p.kind == "holdout":
        return [_holdout(y, g, speakers, val_fraction, rng)]
    if p.kind == "final":
        return [_final(y, g, speakers, val_fraction, rng)]
    if p.kind == "corpus":
        return _corpus_folds(y, g, val_fraction, rng)
    if len(speakers) < 3:
        raise ConfigError(f"protocol {p}: needs at least 3 speakers, the data has {len(speakers)}")
    if p.k is None:
        tests = [np.flatnonzero(g == s) for s in speakers]
    else:
        if p.k > len(speakers):
            raise ConfigError(f"protocol {p}: more folds than the {len(speakers)} speakers")
        splitter = _sklearn().StratifiedGroupKFold(p.k, shuffle=True, random_state=seed)
        tests = [te for _, te in splitter.split(y, y, g)]
    return [_speaker_val(i, te, y, g, val_fraction, rng) for i, te in enumerate(tests)]


def _check_counts(y: np.ndarray, k: int) -> None:
    _, counts = np.unique(y, return_counts=True)
    if counts.min() < k:
        raise ConfigError(f"random:{k} needs at least {k} clips per class; the smallest class has {counts.min()}")


def _random_val(i, train, test, y, frac, seed) -> Fold:
    tr, va = _sklearn().train_test_split(train, test_size=frac, stratify=y[train], random_state=seed + i)
    return Fold(i, np.sort(tr), np.sort(va), np.sort(test))


def _speaker_val(i, test, y, g, frac, rng) -> Fold:
    """Validation speakers are drawn from the speakers left after the test ones."""
    rest = np.setdiff1d(np.arange(len(y)), test)
    rest_speakers = np.unique(g[rest])
    n_val = max(1, int(round(frac * len(rest_speakers))))
    val_speakers = rng.choice(rest_speakers, n_val, replace=False)
    is_val = np.isin(g[rest], val_speakers)
    return Fold(i, rest[~is_val], rest[is_val], np.sort(test))


def corpus_of(groups) -> np.ndarray:
    """The corpus part of ``corpus:speaker`` ids (the whole id when it has no ``:``).

    >>> corpus_of(["emodb:03", "tess:OAF", "x"]).tolist()
    ['emodb', 'tess', 'x']
    """
    return np.array([str(s).split(":", 1)[0] for s in np.asarray(groups).tolist()])


def _corpus_folds(y, g, frac, rng) -> list[Fold]:
    corpora = corpus_of(g)
    names = np.unique(corpora)
    if len(names) < 2:
        raise ConfigError(f"protocol corpus: needs at least 2 corpora, the data has {len(names)} "
                          "(combine corpora, e.g. --data emodb --data ravdess)")
    folds = []
    for i, name in enumerate(names):
        test = np.flatnonzero(corpora == name)
        val_speakers = []
        for other in names[names != name]:
            spk = np.unique(g[corpora == other])
            if len(spk) >= 3:
                val_speakers += list(rng.choice(spk, max(1, int(round(frac * len(spk)))), replace=False))
        if not val_speakers:
            raise ConfigError("protocol corpus: no training corpus has 3 or more speakers to carve validation "
                              "speakers from")
        val = np.flatnonzero(np.isin(g, val_speakers))
        train = np.setdiff1d(np.flatnonzero(corpora != name), val)
        folds.append(Fold(i, train, val, test))
    return folds


def _holdout(y, g, speakers, frac, rng) -> Fold:
    if len(speakers) < 3:
        raise ConfigError(f"protocol holdout: needs at least 3 speakers, the data has {len(speakers)}")
    order = rng.permutation(speakers)
    n = max(1, int(round(frac * len(order))))
    test_s, val_s = order[:n], order[n:2 * n]
    test, val = np.flatnonzero(np.isin(g, test_s)), np.flatnonzero(np.isin(g, val_s))
    train = np.setdiff1d(np.arange(len(y)), np.r_[test, val])
    return Fold(0, train, val, test)


def _final(y, g, speakers, frac, rng) -> Fold:
    """All clips train but the validation speakers'; those also stand in as the
    "test" part so that a final run reports something (flagged as optimistic)."""
    if len(speakers) < 2:
        raise ConfigError(f"protocol final: needs at least 2 speakers, the data has {len(speakers)}")
    val_s = rng.choice(speakers, max(1, int(round(frac * len(speakers)))), replace=False)
    val = np.flatnonzero(np.isin(g, val_s))
    return Fold(0, np.setdiff1d(np.arange(len(y)), val), val, val)
