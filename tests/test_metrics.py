"""UA/WA/F1 and the confusion matrix agree with scikit-learn."""
from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import accuracy_score, balanced_accuracy_score, confusion_matrix, f1_score

from tinyser.metrics import scores, summarize

CASES = [
    ([0, 0, 0, 1, 1, 2], [0, 1, 0, 1, 2, 2]),
    ([0, 1, 2, 3] * 5, [0, 1, 2, 3] * 4 + [3, 3, 3, 3]),
    (list(np.random.default_rng(1).integers(0, 5, 200)), list(np.random.default_rng(2).integers(0, 5, 200))),
    ([0, 0, 1, 1], [2, 2, 2, 2]),            # a class predicted that never occurs
]


@pytest.mark.parametrize("y_true,y_pred", CASES)
@pytest.mark.filterwarnings("ignore:y_pred contains classes not in y_true:UserWarning")  # sklearn's reference
def test_scores_match_sklearn(y_true, y_pred):
    labels = [f"c{i}" for i in range(max(max(y_true), max(y_pred)) + 1)]
    s = scores(y_true, y_pred, labels)
    assert s["ua"] == pytest.approx(balanced_accuracy_score(y_true, y_pred))
    assert s["wa"] == pytest.approx(accuracy_score(y_true, y_pred))
    present = sorted(set(y_true))
    assert s["f1"] == pytest.approx(f1_score(y_true, y_pred, labels=present, average="macro", zero_division=0))
    assert s["confusion"]["counts"] == confusion_matrix(y_true, y_pred, labels=range(len(labels))).tolist()


def test_hand_computed_case():
    s = scores([0, 0, 0, 0, 1, 1], [0, 0, 0, 1, 1, 0], ["neutral", "angry"])
    assert s["ua"] == pytest.approx((3 / 4 + 1 / 2) / 2)
    assert s["wa"] == pytest.approx(4 / 6)
    assert s["per_class"]["angry"] == pytest.approx({"precision": 0.5, "recall": 0.5, "f1": 0.5, "support": 2})
    assert s["confusion"]["normalized"] == [[0.75, 0.25], [0.5, 0.5]]


def test_summarize_mean_and_std():
    out = summarize([{"ua": 0.6, "wa": 0.7, "f1": 0.5}, {"ua": 0.8, "wa": 0.9, "f1": 0.7}])
    assert out["ua"] == {"mean": pytest.approx(0.7), "std": pytest.approx(0.1)}


def test_balance_speakers_removes_a_speakers_lean_and_leaves_balanced_speakers_alone():
    """A speaker whose every clip leans to class 0 gets back the order of its clips' other classes; a speaker
    whose clips already average evenly over the classes keeps its labels."""
    from tinyser.metrics import balance_speakers

    rng = np.random.default_rng(0)
    true = np.tile(np.arange(3), 4)
    clean = np.eye(3)[true] * 0.5 + 0.5 / 3                         # each clip right, mean uniform
    lean = clean * np.array([6.0, 1.0, 1.0])                          # one voice: class 0 wins everywhere
    lean /= lean.sum(1, keepdims=True)
    proba = np.r_[lean, clean] + rng.uniform(0, 1e-3, (24, 3))
    speakers = ["loud"] * 12 + ["even"] * 12
    assert (lean.argmax(1) == 0).all()
    balanced = balance_speakers(proba, speakers)
    assert (balanced.argmax(1) == np.r_[true, true]).all()
    assert np.allclose(balanced.sum(1), 1)
    assert (balance_speakers(clean, ["even"] * 12).argmax(1) == true).all()
