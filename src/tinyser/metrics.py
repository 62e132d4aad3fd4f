"""Scores for emotion recognition, as the SER literature reports them.

UA (unweighted accuracy) is the mean per-class recall; WA (weighted accuracy)
is plain accuracy; F1 is macro-averaged. Everything is computed over a fixed
class list, so folds that miss a class still line up.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

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
