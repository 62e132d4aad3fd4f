"""Training: same seed → same result; a killed run resumes to the uninterrupted result."""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from tinyser.errors import ConfigError
from tinyser.training import FoldData, TrainConfig, _compile, clip_predictions, fit


def toy_data(seed=0, n=96, frames=12, feats=8, classes=3):
    rng = np.random.default_rng(seed)
    y = np.arange(n) % classes
    x = 0.3 * rng.standard_normal((n, frames, feats)).astype(np.float32)
    x[np.arange(n), :, y] += 2.0            # a learnable cue: one feature per class
    yv = np.arange(30) % classes
    xv = 0.3 * rng.standard_normal((30, frames, feats)).astype(np.float32)
    xv[np.arange(30), :, yv] += 2.0
    return FoldData(x, y, xv, yv, np.arange(30), classes)


def build():
    import keras
    return keras.Sequential([keras.Input((12, 8)), keras.layers.Flatten(), keras.layers.Dense(16, activation="relu"),
                             keras.layers.Dropout(0.3), keras.layers.Dense(3, activation="softmax")])


CFG = TrainConfig(epochs=5, batch_size=16, learning_rate=0.01, patience=10, seed=7)


def weights(model):
    return [w.copy() for w in model.get_weights()]


def test_same_seed_same_result(tmp_path):
    m1, s1 = fit(build, toy_data(), CFG, tmp_path / "a")
    m2, s2 = fit(build, toy_data(), CFG, tmp_path / "b")
    assert s1.history == s2.history and s1.best_epoch == s2.best_epoch
    for a, b in zip(weights(m1), weights(m2)):
        np.testing.assert_array_equal(a, b)
    assert s1.best_score > 0.8       # it learnt the cue


@pytest.mark.parametrize("cfg", [CFG, dataclasses.replace(CFG, average=0.5)], ids=["plain", "averaged"])
def test_kill_and_resume_equals_uninterrupted(tmp_path, cfg):
    ref_model, ref = fit(build, toy_data(), cfg, tmp_path / "ref")

    def kill_after_two(epoch, record):
        if epoch == 1:
            raise KeyboardInterrupt
    with pytest.raises(KeyboardInterrupt):
        fit(build, toy_data(), cfg, tmp_path / "run", kill_after_two)
    assert len(list((tmp_path / "run").glob("checkpoint-*.weights.h5"))) == 1
    assert len(list((tmp_path / "run").glob("average-*.npz"))) == (1 if cfg.average else 0)
    model, state = fit(build, toy_data(), cfg, tmp_path / "run")
    assert state.history == ref.history
    for a, b in zip(weights(model), weights(ref_model)):
        np.testing.assert_array_equal(a, b)


def _checkpoint_weights(path):
    model = build()
    _compile(model, CFG)
    model.load_weights(path)
    return model.get_weights()


def test_weight_averaging_validates_and_keeps_the_moving_average(tmp_path):
    cfg = dataclasses.replace(CFG, epochs=2, average=0.75)
    data = toy_data()

    def stop_after_first(epoch, record):
        raise KeyboardInterrupt
    with pytest.raises(KeyboardInterrupt):
        fit(build, data, cfg, tmp_path, stop_after_first)
    first = _checkpoint_weights(tmp_path / "checkpoint-0001.weights.h5")
    with np.load(tmp_path / "average-0001.npz") as f:  # after one epoch the average is that epoch's weights
        for i, w in enumerate(first):
            np.testing.assert_array_equal(f[f"w{i}"], w)
    model, state = fit(build, data, cfg, tmp_path)
    second = _checkpoint_weights(tmp_path / "checkpoint-0002.weights.h5")
    average = [0.75 * a + 0.25 * b for a, b in zip(first, second)]
    assert not np.allclose(second[0], average[0])  # training went on from its own weights
    with np.load(tmp_path / "average-0002.npz") as f:
        for i, w in enumerate(average):
            np.testing.assert_allclose(f[f"w{i}"], w, rtol=1e-6, atol=1e-7)
    kept = average if state.best_epoch == 1 else first  # the best epoch's average, as validated
    for a, b in zip(model.get_weights(), kept):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)
    proba = model.predict(data.x_val, verbose=0)
    assert np.mean(proba.argmax(1) == data.y_val) > 0.8


def test_early_stopping_uses_validation_only(tmp_path):
    data = toy_data()
    data.y_val = np.zeros_like(data.y_val)       # validation says nothing improves after epoch 0
    _, state = fit(build, data, TrainConfig(epochs=20, patience=2, seed=1), tmp_path / "es")
    assert state.epoch == state.best_epoch + 3 and state.epoch < 20


def test_focal_loss_trains_and_resumes(tmp_path):
    cfg = TrainConfig(epochs=2, loss="focal", focal_gamma=2.0, seed=3)
    _, state = fit(build, toy_data(), cfg, tmp_path / "f")
    assert len(state.history) == 2 and np.isfinite(state.history[-1]["loss"])


def test_clip_predictions_average_segments():
    ids, p = clip_predictions(np.array([[.8, .2], [.4, .6], [0., 1.]]), np.array([5, 5, 9]))
    assert ids.tolist() == [5, 9] and np.allclose(p, [[.6, .4], [0., 1.]])


@pytest.mark.parametrize("bad", [dict(epochs=0), dict(loss="hinge"), dict(schedule="step"), dict(val_fraction=0.7),
                                 dict(average=1.0), dict(average="0.5")])
def test_bad_config(bad):
    with pytest.raises(ConfigError):
        TrainConfig(**bad)
