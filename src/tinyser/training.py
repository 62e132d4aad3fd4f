"""Training one model on one fold, with model selection on validation data only.

Each epoch: a seeded shuffle (and, if configured, fresh waveform
augmentation), one pass of Adam, a validation score; the best epoch by
validation UA is kept and training stops after ``patience`` epochs without
improvement. A checkpoint (model, optimiser, state) is written after every
epoch, so a run that is killed resumes where it stopped and ends exactly as an
uninterrupted run would.
"""
from __future__ import annotations

import dataclasses
import functools
import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from .cache import atomic_write
from .errors import ConfigError

LOSSES = ("crossentropy", "focal")
SCHEDULES = ("cosine", "constant")


@dataclass(frozen=True)
class TrainConfig:
    """Optimisation settings; serialised into the run folder and the exported model."""

    epochs: int = 60
    batch_size: int = 32
    learning_rate: float = 1e-3
    schedule: str = "cosine"        # cosine decay over ``epochs``, or constant
    loss: str = "crossentropy"      # or "focal"
    focal_gamma: float = 2.0
    class_weights: bool = True      # "balanced" weights from the training fold
    patience: int = 15              # early stopping on validation UA
    val_fraction: float = 0.15
    seed: int = 0
    augment: dict | None = None     # tinyser.augment.AugmentConfig as a dict, None = off

    def __post_init__(self):
        if self.epochs < 1 or self.batch_size < 1 or self.learning_rate <= 0 or self.patience < 1:
            raise ConfigError("epochs, batch_size, patience and learning_rate must be positive")
        if self.loss not in LOSSES:
            raise ConfigError(f"loss must be one of {', '.join(LOSSES)}, not {self.loss!r}")
        if self.schedule not in SCHEDULES:
            raise ConfigError(f"schedule must be one of {', '.join(SCHEDULES)}, not {self.schedule!r}")
        if not 0 < self.val_fraction < 0.5:
            raise ConfigError("val_fraction must be between 0 and 0.5")

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "TrainConfig":
        return cls(**d)

    def lr_at(self, epoch: int) -> float:
        if self.schedule == "constant":
            return self.learning_rate
        return self.learning_rate * 0.5 * (1 + math.cos(math.pi * epoch / self.epochs))


@dataclass
class FoldData:
    """Standardised model inputs of one fold. ``*_clip`` maps each segment to its clip,
    so scores are computed per clip (segment probabilities averaged)."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray
    val_clip: np.ndarray
    n_classes: int
    augment_features: Callable[[np.random.Generator], np.ndarray] | None = None


@dataclass
class TrainState:
    epoch: int = 0                     # epochs finished
    best_epoch: int = -1
    best_score: float = -1.0
    history: list[dict] = field(default_factory=list)

    @property
    def stale(self) -> int:
        return self.epoch - 1 - self.best_epoch


def clip_predictions(proba: np.ndarray, clip: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Average segment probabilities per clip. Returns (clip ids, probabilities).

    >>> ids, p = clip_predictions(np.array([[1., 0.], [0., 1.], [1., 0.]]), np.array([0, 0, 3]))
    >>> ids.tolist(), p.tolist()
    ([0, 3], [[0.5, 0.5], [1.0, 0.0]])
    """
    ids, inverse = np.unique(clip, return_inverse=True)
    sums = np.zeros((len(ids), proba.shape[1]))
    np.add.at(sums, inverse, proba)
    return ids, sums / np.bincount(inverse)[:, None]


def clip_labels(y: np.ndarray, clip: np.ndarray) -> np.ndarray:
    """The label of each clip (every segment of a clip carries the clip's label)."""
    ids, first = np.unique(clip, return_index=True)
    return y[first]


def fit(build: Callable[[], "object"], data: FoldData, cfg: TrainConfig, folder: str | os.PathLike,
        progress: Callable[[int, dict], None] | None = None):
    """Train with early stopping on validation UA; resume from ``folder`` if it holds a checkpoint.

    ``build()`` returns a fresh Keras model. Returns (best model, TrainState).
    ``progress(epoch, record)`` is called after each epoch (raising from it
    stops training, as a kill would).
    """
    import tensorflow as tf

    from .metrics import scores

    tf.config.experimental.enable_op_determinism()  # same seed, same numbers on CPU
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    model, state = _resume_or_start(build, cfg, folder)
    weights = _class_weights(data.y_train, data.n_classes) if cfg.class_weights else None
    val_truth = clip_labels(data.y_val, data.val_clip)
    while state.epoch < cfg.epochs and state.stale < cfg.patience:
        e = state.epoch
        rng = np.random.default_rng([cfg.seed, e])
        _reseed(model, cfg.seed, e)
        x = data.augment_features(rng) if data.augment_features else data.x_train
        order = rng.permutation(len(x))
        model.optimizer.learning_rate.assign(cfg.lr_at(e))
        h = model.fit(x[order], data.y_train[order], batch_size=cfg.batch_size, epochs=e + 1,
                      initial_epoch=e, shuffle=False, class_weight=weights, verbose=0)
        _, proba = clip_predictions(predict(model, data.x_val), data.val_clip)
        val = scores(val_truth, proba.argmax(1), [str(i) for i in range(data.n_classes)])
        record = {"epoch": e, "loss": float(h.history["loss"][-1]), "lr": cfg.lr_at(e),
                  "val_ua": val["ua"], "val_wa": val["wa"], "val_loss": _nll(proba, val_truth)}
        state.history.append(record)
        state.epoch = e + 1
        if val["ua"] > state.best_score:
            state.best_score, state.best_epoch = val["ua"], e
            model.save_weights(folder / _best_name(e))
        _checkpoint(model, state, folder)
        if progress:
            progress(e, record)
    best = build()
    _compile(best, cfg)
    best.load_weights(folder / _best_name(state.best_epoch))
    return best, state


def predict(model, x: np.ndarray, batch_size: int = 256) -> np.ndarray:
    """Class probabilities; a plain forward pass per batch (no tf.function retracing per model)."""
    if len(x) == 0:
        return np.zeros((0, model.output_shape[-1]), np.float32)
    return np.concatenate([np.asarray(model(x[i:i + batch_size], training=False))
                           for i in range(0, len(x), batch_size)])


def _nll(proba: np.ndarray, truth: np.ndarray) -> float:
    return float(-np.mean(np.log(np.clip(proba[np.arange(len(truth)), truth], 1e-7, 1))))


def _class_weights(y: np.ndarray, n_classes: int) -> dict[int, float]:
    counts = np.bincount(y, minlength=n_classes).astype(float)
    w = len(y) / (n_classes * np.maximum(counts, 1))
    return {i: float(w[i]) for i in range(n_classes)}


def _compile(model, cfg: TrainConfig) -> None:
    import keras

    loss = (keras.losses.SparseCategoricalCrossentropy() if cfg.loss == "crossentropy"
            else focal_loss_class()(cfg.focal_gamma))
    model.compile(optimizer=keras.optimizers.Adam(cfg.learning_rate), loss=loss, jit_compile=False)
    model.optimizer.build(model.trainable_variables)  # so checkpoints restore its moments too


def _resume_or_start(build, cfg: TrainConfig, folder: Path):
    import keras

    state_file = folder / "state.json"
    keras.utils.set_random_seed(cfg.seed)
    model = build()
    _compile(model, cfg)
    if not state_file.exists():
        return model, TrainState()
    state = TrainState(**json.loads(state_file.read_text()))
    model.load_weights(folder / _ckpt_name(state.epoch))
    return model, state


def _reseed(model, seed: int, epoch: int) -> None:
    """Dropout masks depend only on (seed, epoch, step), so a resumed run draws
    the same ones as an uninterrupted run (seed-generator states are not saved
    with the weights)."""
    for i, var in enumerate(v for v in model.variables if "seed_generator_state" in v.path):
        var.assign(np.array([(seed * 7919 + epoch * 104729 + i * 15485863) % (2**31 - 1), 0],
                            dtype=var.dtype))


def _ckpt_name(epoch: int) -> str:
    return f"checkpoint-{epoch:04d}.weights.h5"


def _best_name(epoch: int) -> str:
    return f"best-{epoch:04d}.weights.h5"


def _checkpoint(model, state: TrainState, folder: Path) -> None:
    """Files are named by epoch and the state file, written last and atomically,
    says which are current: a kill at any point leaves a consistent checkpoint."""
    tmp = folder / f".tmp.{_ckpt_name(state.epoch)}"
    model.save_weights(tmp)
    os.replace(tmp, folder / _ckpt_name(state.epoch))
    atomic_write(folder / "state.json", lambda f: f.write(json.dumps(dataclasses.asdict(state)).encode()))
    clear_checkpoints(folder, keep={_ckpt_name(state.epoch), _best_name(state.best_epoch)})


def clear_checkpoints(folder: Path, keep: set[str] = frozenset()) -> None:
    """Delete a fold's training checkpoints, all but the files named in ``keep``."""
    for old in [*folder.glob("checkpoint-*"), *folder.glob("best-*.weights.h5")]:
        if old.name not in keep:
            old.unlink(missing_ok=True)


@functools.lru_cache(maxsize=None)
def focal_loss_class():
    """The Keras focal loss class, created on first use (importing Keras is slow)."""
    import keras
    from keras import ops

    @keras.saving.register_keras_serializable(package="tinyser")
    class SparseFocalLoss(keras.losses.Loss):
        """Focal loss (Lin et al., ICCV 2017) on integer labels: (1-p)^γ · CE."""

        def __init__(self, gamma: float = 2.0, name: str = "sparse_focal", **kw):
            super().__init__(name=name, **kw)
            self.gamma = gamma

        def call(self, y_true, y_pred):
            y_true = ops.cast(ops.reshape(y_true, (-1,)), "int32")
            p = ops.take_along_axis(y_pred, ops.expand_dims(y_true, -1), axis=-1)[:, 0]
            p = ops.clip(p, 1e-7, 1.0)
            return -ops.power(1.0 - p, self.gamma) * ops.log(p)

        def get_config(self):
            return {**super().get_config(), "gamma": self.gamma}

    return SparseFocalLoss
