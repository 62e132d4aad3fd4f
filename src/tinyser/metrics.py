"""Scores for emotion recognition, as the SER literature reports them.

UA (unweighted accuracy) is the mean per-class recall; WA (weighted accuracy)
is plain accuracy; F1 is macro-averaged. Everything is computed over a fixed
class list, so folds that miss a class still line up.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

from .errors import ConfigError
from .extras import need


def scores(y_true: Sequence[int], y_pred: Sequence[int], labels: Sequence[str]) -> dict:
    """UA, WA, macro-F1, per-class precision/recall/F1/support and the confusion
    matrix (counts and row-normalised), for integer class indices into ``labels``.

    >>> s = scores([0, 0, 1, 1], [0, 1, 1, 1], ["a", "b"])
    >>> round(s["ua"], 3), s["wa"], s["confusion"]["counts"]
    (0.75, 0.75, [[1, 1], [0, 2]])
    """
    need("sklearn", "scoring")
    from sklearn.metrics import accuracy_score, confusion_matrix, f1_score, precision_recall_fscore_support

    idx = list(range(len(labels)))
    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    p, r, f, n = precision_recall_fscore_support(y_true, y_pred, labels=idx, zero_division=0)
    present = n > 0  # a class absent from the truth has no recall to average
    counts = confusion_matrix(y_true, y_pred, labels=idx)
    with np.errstate(invalid="ignore", divide="ignore"):
        norm = np.nan_to_num(counts / counts.sum(axis=1, keepdims=True))
    return {
        "ua": float(r[present].mean()) if present.any() else 0.0,
        "wa": float(accuracy_score(y_true, y_pred)) if len(y_true) else 0.0,
        "f1": float(f1_score(y_true, y_pred, labels=np.flatnonzero(present), average="macro",
                             zero_division=0)) if present.any() else 0.0,
        "per_class": {lab: {"precision": float(p[i]), "recall": float(r[i]), "f1": float(f[i]),
                            "support": int(n[i])} for i, lab in enumerate(labels)},
        "confusion": {"counts": counts.tolist(), "normalized": norm.round(4).tolist()},
        "n": int(len(y_true)),
    }


def summarize(fold_scores: Sequence[dict]) -> dict:
    """Mean and standard deviation over folds of UA, WA and F1.

    >>> summarize([{"ua": .5, "wa": .6, "f1": .4}, {"ua": .7, "wa": .8, "f1": .6}])["ua"]
    {'mean': 0.6, 'std': 0.1}
    """
    out = {}
    for key in ("ua", "wa", "f1"):
        v = np.array([s[key] for s in fold_scores], dtype=float)
        out[key] = {"mean": round(float(v.mean()), 6), "std": round(float(v.std()), 6)}
    return out


def balance_speakers(proba: np.ndarray, speakers: Sequence[str]) -> np.ndarray:
    """Class probabilities ``(clips, classes)`` with each speaker's predictions balanced over the classes:
    every clip's probabilities divided by its speaker's mean probability of each class, then renormalised.

    A model that hears a new voice often leans towards a few classes for all of it (a loud
    speaker sounds angry throughout); this removes the lean, on the assumption that a speaker's
    clips cover the classes about evenly, as in the acted corpora (EMO-DB, RAVDESS, TESS, SAVEE
    record every speaker in every emotion). It is the assumption of per-speaker standardisation
    (the eGeMAPS + SVM baseline's second column) made on the outputs, and like it, it needs all of
    a speaker's clips: it has no parameter. Where one speaker is mostly neutral it would push
    their clips away from neutral, so it is an evaluation under that assumption, not a default.

    >>> p = np.array([[0.6, 0.4], [0.9, 0.1], [0.3, 0.7], [0.2, 0.8]])
    >>> p.argmax(1).tolist(), balance_speakers(p, list("aabb")).argmax(1).tolist()  # a leant to 0, b to 1
    ([0, 0, 1, 1], [1, 0, 0, 1])
    >>> balance_speakers(p, list("aabb")).sum(1).round(6).tolist()
    [1.0, 1.0, 1.0, 1.0]
    """
    proba = np.asarray(proba, np.float64)
    speakers = np.asarray(speakers)
    out = np.empty_like(proba)
    for s in np.unique(speakers):
        mine = speakers == s
        out[mine] = proba[mine] / np.maximum(proba[mine].mean(0), 1e-12)
    return out / out.sum(1, keepdims=True)


#: the running balance's time constant in clips unless told: the best of those ``benchmarks/balance.py`` scores
#: on the validation speakers of the goal rows (their mean validation UA; docs/results.md)
DEFAULT_BALANCE_CLIPS = 50.0


class RunningBalance:
    """:func:`balance_speakers` as a device can do it, causally: the running mean ``m`` of the clip
    probabilities one stream (a speaker, a microphone) has given so far, started from the uniform
    distribution, divides each new clip's probabilities before the clip updates it::

        out = p / m, renormalised
        m  += a · (p - m),   a = max(1 / (clips + 1), 1 - exp(-1 / time_constant))

    ``clips`` counts the clips heard before this one: the uniform start weighs as one clip, the first
    clips are averaged evenly and, after about ``time_constant`` clips, the mean forgets at that pace (a new
    speaker takes over). ``K`` floats and a counter of state; same assumption as :func:`balance_speakers`.

    >>> b = RunningBalance(3, time_constant=10.0)
    >>> [int(b.clip(np.array(p)).argmax()) for p in ([.5, .3, .2], [.5, .3, .2], [.4, .35, .25])]
    [0, 0, 1]
    """

    def __init__(self, classes: int, time_constant: float = DEFAULT_BALANCE_CLIPS):
        if not time_constant > 0:
            raise ConfigError(f"running balance: time_constant must be > 0 clips, not {time_constant}")
        self.mean = np.full(classes, 1.0 / classes)
        self.clips = 0
        self.forget = -np.expm1(-1.0 / time_constant)

    def clip(self, proba: np.ndarray) -> np.ndarray:
        """One clip's probabilities balanced by what the stream has given before it; then the state learns them."""
        proba = np.asarray(proba, np.float64)
        out = proba / np.maximum(self.mean, 1e-12)
        self.clips += 1
        self.mean += max(1.0 / (self.clips + 1), self.forget) * (proba - self.mean)
        total = out.sum()  # all zero (no evidence): uniform, as the C copy (tinyser_balance) gives
        return out / total if total > 0 else np.full_like(out, 1.0 / len(out))


def running_balance(proba: np.ndarray, streams: Sequence[Sequence[int]], time_constant: float) -> np.ndarray:
    """Clip probabilities ``(clips, classes)`` with each stream (row indices in listening order) balanced as
    it goes (:class:`RunningBalance`); rows in no stream are kept as they are.

    >>> p = np.array([[0.6, 0.4], [0.9, 0.1], [0.3, 0.7], [0.2, 0.8]])
    >>> running_balance(p, [[1, 0], [2, 3]], 5.0).argmax(1).tolist()   # clip 0 heard after clip 1's lean
    [1, 0, 1, 1]
    """
    out = np.asarray(proba, np.float64).copy()
    for order in streams:
        state = RunningBalance(out.shape[1], time_constant)
        for i in order:
            out[i] = state.clip(out[i])
    return out
