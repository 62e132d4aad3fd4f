"""Folds: speakers never cross train/validation/test; validation never overlaps test."""
from __future__ import annotations

import numpy as np
import pytest

from tinyser.errors import ConfigError
from tinyser.protocols import Protocol, make_folds


def corpus(n_speakers=10, per_class=6, classes="abcd"):
    labels, groups = [], []
    for s in range(n_speakers):
        for c in classes:
            labels += [c] * per_class
            groups += [f"spk{s:02d}"] * per_class
    return np.array(labels), np.array(groups)


@pytest.mark.parametrize("protocol,n_folds", [("speaker", 10), ("speaker:5", 5), ("speaker:3", 3), ("holdout", 1)])
def test_speaker_protocols_keep_speakers_apart(protocol, n_folds):
    y, g = corpus()
    folds = make_folds(y, g, protocol, seed=3)
    assert len(folds) == n_folds
    tested = []
    for f in folds:
        parts = {p: set(g[getattr(f, p)]) for p in ("train", "val", "test")}
        assert not parts["train"] & parts["val"] and not parts["train"] & parts["test"]
        assert not parts["val"] & parts["test"] and parts["val"]
        idx = np.concatenate([f.train, f.val, f.test])
        assert len(idx) == len(set(idx)) == len(y)          # every clip in exactly one part
        tested += f.test.tolist()
    if protocol != "holdout":
        assert sorted(tested) == list(range(len(y)))        # every clip tested exactly once


def test_random_kfold_is_stratified_and_validation_comes_from_training():
    y, g = corpus()
    folds = make_folds(y, g, "random:5", seed=0)
    tested = np.concatenate([f.test for f in folds])
    assert sorted(tested.tolist()) == list(range(len(y)))
    for f in folds:
        assert not set(f.val) & set(f.test) and not set(f.val) & set(f.train)
        _, counts = np.unique(y[f.test], return_counts=True)
        assert counts.max() - counts.min() <= 1


def test_same_seed_same_folds_other_seed_other_folds():
    y, g = corpus()
    a, b, c = (make_folds(y, g, "speaker:5", seed=s) for s in (1, 1, 2))
    assert all(np.array_equal(x.test, z.test) and np.array_equal(x.val, z.val) for x, z in zip(a, b))
    assert any(not np.array_equal(x.test, z.test) for x, z in zip(a, c))


@pytest.mark.parametrize("text", ["random", "speaker:1", "speaker:x", "loso", "holdout:3"])
def test_bad_protocol_names(text):
    with pytest.raises(ConfigError):
        Protocol.parse(text)


def test_too_few_speakers_or_clips():
    y, g = corpus(n_speakers=2)
    with pytest.raises(ConfigError, match="at least 3 speakers"):
        make_folds(y, g, "speaker")
    with pytest.raises(ConfigError, match="more folds"):
        make_folds(*corpus(n_speakers=4), "speaker:5")
    with pytest.raises(ConfigError, match="clips per class"):
        make_folds(np.array(list("aaab")), np.array(list("wxyz")), "random:2")


def test_final_protocol_trains_on_all_but_validation_speakers():
    y = np.array(list("ab") * 20)
    g = np.array([f"s{i % 10}" for i in range(40)])
    (fold,) = make_folds(y, g, "final", seed=1, val_fraction=0.2)
    spk = fold.speakers(g)
    assert len(spk["val"]) == 2 and not set(spk["val"]) & set(spk["train"])
    assert np.array_equal(np.sort(np.r_[fold.train, fold.val]), np.arange(40))
    assert np.array_equal(fold.test, fold.val)  # no test part: scores on validation, flagged in the report
    assert not Protocol.parse("final").speaker_independent
    with pytest.raises(ConfigError):
        Protocol.parse("final:3")
