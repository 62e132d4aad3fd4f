"""Training one model on one fold, with model selection on validation data only.

Each epoch: a seeded shuffle (and, if configured, fresh waveform
augmentation), one pass of Adam, a validation score; the best epoch by
validation UA is kept and training stops after ``patience`` epochs without
improvement. A checkpoint (model, optimiser, state) is written after every
epoch, so a run that is killed resumes where it stopped and ends exactly as an
uninterrupted run would.
"""
from __future__ import annotations

import contextlib
import dataclasses
import functools
import json
import math
import os
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Callable

import numpy as np

from .cache import atomic_write
from .errors import ConfigError
from .extras import need

LOSSES = ("crossentropy", "focal")
SCHEDULES = ("cosine", "constant")
#: how training windows are weighted: not at all, so that every class weighs the
#: same, or every (corpus, class) cell (a corpus is the part of a speaker id before ":")
if TYPE_CHECKING:
    from .augment import AugmentConfig

BALANCE = ("none", "class", "corpus_class")


@dataclass(frozen=True)
class TrainConfig:
    """Optimisation settings; serialised into the run folder and the exported model."""

    epochs: int = 60
    batch_size: int = 32
    learning_rate: float = 1e-3
    schedule: str = "cosine"        # cosine decay over ``epochs``, or constant
    loss: str = "crossentropy"      # or "focal"
    focal_gamma: float = 2.0
    class_weights: bool = True      # "balanced" weights from the training fold (see ``balance``)
    patience: int = 15              # early stopping on validation UA
    val_fraction: float = 0.15
    seed: int = 0                   # initialisation, shuffles, draws; and the folds unless ``split_seed``
    split_seed: int | None = None   # the folds and validation part draw from this seed (None: ``seed``), so
                                    # runs differing only in ``seed`` share them: an ensemble whose members
                                    # may teach one another's students (no member saw a fold's held-out part)
    augment: AugmentConfig | None = None  # on-the-fly waveform augmentation (a dict is converted); None = off
    balance: str = "class"          # one of BALANCE (used when class_weights is on)
    label_smoothing: float = 0.0
    mixup: float = 0.0              # Beta(a, a) mixing of window pairs and their targets; 0 = off
    time_masks: int = 0             # SpecAugment: masks of up to ``mask_frames`` frames per window
    mask_frames: int = 0
    crop: float = 0.0               # probability that a training window is cut to a random length
    crop_min: float = 0.5           # shortest crop, seconds (silence fills the rest of the window)
    augment_copies: int = 0         # K augmented feature copies per clip, one drawn per epoch
    distill: dict | None = None     # {"teacher": run folder or list of them (an ensemble), "egemaps": one of
                                    #  tinyser.egemaps.STANDARDISATIONS (the eGeMAPS SVM as one more teacher;
                                    #  either or both; "split": one of tinyser.egemaps.TEACHER_SPLITS, how its
                                    #  out-of-fold labels hold training clips out; "functionals": one of
                                    #  tinyser.egemaps.FEATURE_SETS, "egemaps" unless said), "weight": 0..1,
                                    #  "temperature": T}
    epoch_size: int = 0             # > 0: each epoch draws this many windows with probabilities from
                                    # the balance weights (balanced sampling); 0: every window, weighted
    average: float = 0.0            # > 0: the model validated and kept is a moving average of the weights
                                    # at each epoch's end, this decay per epoch (Polyak averaging); 0 = off
    refit: bool = False             # after the best epoch is chosen on validation, train a fresh model on
                                    # the training and validation data together for that many epochs of the
                                    # same schedule; it is the model tested and kept (validation chose it)

    def __post_init__(self):
        if isinstance(self.augment, dict):  # JSON boundary
            from .augment import AugmentConfig

            object.__setattr__(self, "augment", AugmentConfig.from_dict(self.augment))
        for name in ("learning_rate", "focal_gamma", "val_fraction", "label_smoothing", "mixup", "crop",
                     "crop_min"):
            v = getattr(self, name)
            if not isinstance(v, (int, float)) or not math.isfinite(v):
                raise ConfigError(f"{name} must be a finite number, not {v!r}")
        if self.epochs < 1 or self.batch_size < 1 or self.learning_rate <= 0 or self.patience < 1:
            raise ConfigError("epochs, batch_size, patience and learning_rate must be positive")
        if self.balance not in BALANCE:
            raise ConfigError(f"balance must be one of {', '.join(BALANCE)}, not {self.balance!r}")
        if not 0 <= self.label_smoothing < 1 or self.mixup < 0 or not 0 <= self.crop <= 1 or self.crop_min <= 0:
            raise ConfigError("need 0 <= label_smoothing < 1, mixup >= 0, 0 <= crop <= 1 and crop_min > 0")
        if not isinstance(self.average, (int, float)) or not 0 <= self.average < 1:
            raise ConfigError(f"average must be a decay in [0, 1), not {self.average!r}")
        if min(self.time_masks, self.mask_frames, self.augment_copies, self.epoch_size) < 0:
            raise ConfigError("time_masks, mask_frames, augment_copies and epoch_size must be >= 0")
        if self.distill is not None:
            d = self.distill
            from .egemaps import DEFAULT_TEACHER_SPLIT, FEATURE_SETS, STANDARDISATIONS, TEACHER_SPLITS

            if not isinstance(d, dict) or not (d.get("teacher") or d.get("egemaps")) or \
                    d.get("egemaps", "global") not in STANDARDISATIONS or \
                    d.get("split", DEFAULT_TEACHER_SPLIT) not in TEACHER_SPLITS or \
                    d.get("functionals", "egemaps") not in FEATURE_SETS or \
                    not 0 < float(d.get("weight", 0.5)) <= 1 or not float(d.get("temperature", 1.0)) > 0:
                raise ConfigError("distill needs {'teacher': run folder or a list of them, and/or 'egemaps': "
                                  f"{' | '.join(STANDARDISATIONS)} (its 'split': {' | '.join(TEACHER_SPLITS)}, "
                                  f"'functionals': {' | '.join(FEATURE_SETS)}), 'weight': (0, 1], 'temperature': > 0}}")
        if self.loss not in LOSSES:
            raise ConfigError(f"loss must be one of {', '.join(LOSSES)}, not {self.loss!r}")
        if self.schedule not in SCHEDULES:
            raise ConfigError(f"schedule must be one of {', '.join(SCHEDULES)}, not {self.schedule!r}")
        if not 0 < self.val_fraction < 0.5:
            raise ConfigError("val_fraction must be between 0 and 0.5")
        if self.focal_gamma < 0 or self.seed < 0 or (self.split_seed is not None and self.split_seed < 0):
            raise ConfigError("focal_gamma, seed and split_seed must not be negative")

    def to_dict(self) -> dict:
        d = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        d["augment"] = None if self.augment is None else self.augment.to_dict()
        return d

    @classmethod
    def from_dict(cls, d: dict) -> TrainConfig:
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise ConfigError(f"unknown training setting(s) {', '.join(unknown)}")
        return cls(**d)

    @property
    def folds_seed(self) -> int:
        """The seed the folds and validation part are drawn with."""
        return self.seed if self.split_seed is None else self.split_seed

    def lr_at(self, epoch: int) -> float:
        if self.schedule == "constant":
            return self.learning_rate
        return self.learning_rate * 0.5 * (1 + math.cos(math.pi * epoch / self.epochs))


@dataclass
class FoldData:
    """Standardised model inputs of one fold. ``*_clip`` maps each segment to its clip,
    so scores are computed per clip (segment probabilities averaged).

    ``augment_features(rng)``, when given, returns the epoch's training inputs
    (same rows as ``x_train``: augmented, cropped, standardised afresh);
    ``weights`` are per-window training weights (None: unweighted);
    ``teacher(x, rows)`` gives a teacher's probabilities for distillation of the
    inputs ``x``, drawn from rows ``rows`` of ``x_train``; ``val_balance``, when given,
    balances the validation clips' probabilities (in the order of their ids) before they
    are scored (``tinyser.experiment.balancer``)."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray
    val_clip: np.ndarray
    n_classes: int
    augment_features: Callable[[np.random.Generator], np.ndarray] | None = None
    weights: np.ndarray | None = None
    teacher: Callable[[np.ndarray, np.ndarray], np.ndarray] | None = None
    val_balance: Callable[[np.ndarray], np.ndarray] | None = None


@dataclass
class TrainState:
    epoch: int = 0                     # epochs finished
    best_epoch: int = -1
    best_score: float = -1.0
    best_loss: float = float("inf")    # validation NLL of the best epoch: breaks ties in UA
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


def fit(build: Callable[[], object], data: FoldData, cfg: TrainConfig, folder: str | os.PathLike,
        progress: Callable[[int, dict], None] | None = None, stop: int | None = None):
    """Train with early stopping on validation UA; resume from ``folder`` if it holds a checkpoint.

    ``build()`` returns a fresh Keras model. Returns (best model, TrainState).
    ``progress(epoch, record)`` is called after each epoch (raising from it
    stops training, as a kill would). With ``stop`` (and no validation data,
    ``data.x_val`` None) the first ``stop`` epochs of ``cfg``'s schedule run
    without validation and the last one is kept: a refit for an epoch count
    that validation chose before.
    """
    tf = need("tensorflow", "training")

    from .metrics import scores

    tf.config.experimental.enable_op_determinism()  # same seed, same numbers on CPU
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    model, state = _resume_or_start(build, cfg, folder)
    average = _load_average(folder, state) if cfg.average else None
    if (stop is None) != (data.x_val is not None):
        raise ValueError("fit: give validation data or an epoch count to stop at, not both")
    val_truth = None if stop is not None else clip_labels(data.y_val, data.val_clip)
    while state.epoch < cfg.epochs and state.stale < cfg.patience if stop is None else state.epoch < stop:
        e = state.epoch
        rng = np.random.default_rng([cfg.seed, e])
        _reseed(model, cfg.seed, e)
        x, target, weight = epoch_batch(data, cfg, rng)
        model.optimizer.learning_rate.assign(cfg.lr_at(e))
        h = model.fit(x, target, sample_weight=weight, batch_size=cfg.batch_size, epochs=e + 1,
                      initial_epoch=e, shuffle=False, verbose=0)
        if cfg.average:  # validate (and keep) the averaged weights; train on from the epoch's own
            weights = model.get_weights()
            average = weights if average is None else moving_average(average, weights, cfg.average)
            model.set_weights(average)
        record = {"epoch": e, "loss": float(h.history["loss"][-1]), "lr": cfg.lr_at(e)}
        if stop is None:
            _, proba = clip_predictions(predict(model, data.x_val), data.val_clip)
            if data.val_balance is not None:
                proba = data.val_balance(proba)
            val = scores(val_truth, proba.argmax(1), [str(i) for i in range(data.n_classes)])
            record.update(val_ua=val["ua"], val_wa=val["wa"], val_loss=_nll(proba, val_truth))
        state.history.append(record)
        state.epoch = e + 1
        if stop is not None or val["ua"] > state.best_score or (val["ua"] == state.best_score and
                                                                record["val_loss"] < state.best_loss):
            if stop is None:
                state.best_score, state.best_loss = val["ua"], record["val_loss"]
            state.best_epoch = e
            with quiet_keras_arrays():
                model.save_weights(folder / _best_name(e))
        if cfg.average:
            model.set_weights(weights)
        _checkpoint(model, state, folder, average)
        if progress:
            progress(e, record)
    best = build()
    _compile(best, cfg)
    with quiet_keras_arrays():
        best.load_weights(folder / _best_name(state.best_epoch))
    return best, state


def epoch_batch(data: FoldData, cfg: TrainConfig, rng: np.random.Generator):
    """One epoch's shuffled inputs, soft targets and weights: augmented features,
    SpecAugment time masks, teacher targets (distillation), label smoothing in
    the loss, and mixup of window pairs.

    >>> d = FoldData(np.zeros((4, 3, 2), np.float32), np.array([0, 1, 0, 1]), None, None, None, 2)
    >>> x, t, w = epoch_batch(d, TrainConfig(), np.random.default_rng(0))
    >>> x.shape, t.sum(1).tolist(), w.shape
    ((4, 3, 2), [1.0, 1.0, 1.0, 1.0], (4,))
    >>> d.weights = np.array([1, 0, 1, 0], np.float32)     # balanced sampling draws only weighted windows
    >>> _, t, _ = epoch_batch(d, TrainConfig(epoch_size=6), np.random.default_rng(0)); t.argmax(1).tolist()
    [0, 0, 0, 0, 0, 0]
    """
    x = data.augment_features(rng) if data.augment_features else data.x_train
    if cfg.epoch_size:  # balanced sampling: draw windows in proportion to their weights
        w = np.ones(len(x)) if data.weights is None else np.asarray(data.weights, np.float64)
        order = rng.choice(len(x), cfg.epoch_size, replace=True, p=w / w.sum())
        weight = np.ones(len(order), np.float32)
    else:
        order = rng.permutation(len(x))
        weight = (np.ones(len(x), np.float32) if data.weights is None
                  else np.asarray(data.weights, np.float32)[order])
    x = np.array(x[order], np.float32)
    target = np.eye(data.n_classes, dtype=np.float32)[data.y_train[order]]
    if cfg.time_masks and cfg.mask_frames:
        mask_time(x, cfg.time_masks, cfg.mask_frames, rng)
    if data.teacher is not None and cfg.distill:
        soft = soften(data.teacher(x, order), float(cfg.distill.get("temperature", 1.0)))
        w = np.float32(cfg.distill.get("weight", 0.5))
        target = (1 - w) * target + w * soft
    if cfg.mixup > 0:
        lam = rng.beta(cfg.mixup, cfg.mixup, len(x)).astype(np.float32)
        lam = np.maximum(lam, 1 - lam)  # the first window dominates: its weight and identity stay
        pair = rng.permutation(len(x))
        x = lam[:, None, None] * x + (1 - lam[:, None, None]) * x[pair] if x.ndim == 3 else \
            lam[:, None] * x + (1 - lam[:, None]) * x[pair]
        target = lam[:, None] * target + (1 - lam[:, None]) * target[pair]
    return x.astype(np.float32), target.astype(np.float32), weight


def mask_time(x: np.ndarray, n_masks: int, max_frames: int, rng: np.random.Generator) -> None:
    """SpecAugment time masks (Park et al., Interspeech 2019) in place: ``n_masks``
    spans of 0..``max_frames`` frames per window set to 0 (the standardised mean).

    >>> x = np.ones((2, 10, 3), np.float32); mask_time(x, 1, 10, np.random.default_rng(1)); int((x == 0).sum()) > 0
    True
    """
    n, frames = x.shape[0], x.shape[1]
    for _ in range(n_masks):
        width = rng.integers(0, max_frames + 1, n)
        start = rng.integers(0, np.maximum(frames - width, 0) + 1)
        t = np.arange(frames)
        x[(t >= start[:, None]) & (t < (start + width)[:, None])] = 0.0


def soften(proba: np.ndarray, temperature: float) -> np.ndarray:
    """Teacher probabilities at ``temperature`` (p^(1/T), renormalised).

    >>> [round(float(v), 2) for v in soften(np.array([[0.8, 0.2]]), 2.0)[0]]
    [0.67, 0.33]
    """
    p = np.power(np.clip(proba, 1e-7, 1.0), 1.0 / temperature)
    return (p / p.sum(1, keepdims=True)).astype(np.float32)


def balance_weights(y: np.ndarray, groups: np.ndarray, n_classes: int, balance: str) -> np.ndarray | None:
    """Per-window weights (mean 1) so that every class, or every (corpus, class)
    cell, weighs the same in the loss; ``None`` for ``"none"``. A corpus is the part
    of a speaker id before ``":"`` (``load_dataset`` names speakers ``corpus:id``).

    >>> balance_weights(np.array([0, 0, 0, 1]), np.array(["a:1"] * 4), 2, "class").tolist()
    [0.6666666865348816, 0.6666666865348816, 0.6666666865348816, 2.0]
    >>> groups = np.array(["a:1"] * 4 + ["b:1"] * 2)
    >>> balance_weights(np.array([0, 0, 0, 0, 0, 1]), groups, 2, "corpus_class").round(2).tolist()
    [0.5, 0.5, 0.5, 0.5, 2.0, 2.0]
    """
    if balance == "none":
        return None
    from .protocols import corpus_of

    corpus = corpus_of(groups) if balance == "corpus_class" else np.zeros(len(y), str)
    cells = np.char.add(np.char.add(corpus.astype(str), "|"), np.asarray(y).astype(str))
    _, inverse, counts = np.unique(cells, return_inverse=True, return_counts=True)
    w = 1.0 / counts[inverse]
    return (w / w.mean()).astype(np.float32)


def predict(model, x: np.ndarray, batch_size: int = 256) -> np.ndarray:
    """Class probabilities; a plain forward pass per batch (no tf.function retracing per model)."""
    if len(x) == 0:
        return np.zeros((0, model.output_shape[-1]), np.float32)
    return np.concatenate([np.asarray(model(x[i:i + batch_size], training=False))
                           for i in range(0, len(x), batch_size)])


def _nll(proba: np.ndarray, truth: np.ndarray) -> float:
    return float(-np.mean(np.log(np.clip(proba[np.arange(len(truth)), truth], 1e-7, 1))))


def _compile(model, cfg: TrainConfig) -> None:
    keras = need("keras", "training")

    loss = (keras.losses.CategoricalCrossentropy(label_smoothing=cfg.label_smoothing)
            if cfg.loss == "crossentropy" else focal_loss_class()(cfg.focal_gamma, cfg.label_smoothing))
    model.compile(optimizer=keras.optimizers.Adam(cfg.learning_rate), loss=loss, jit_compile=False)
    model.optimizer.build(model.trainable_variables)  # so checkpoints restore its moments too


def _resume_or_start(build, cfg: TrainConfig, folder: Path):
    keras = need("keras", "training")

    state_file = folder / "state.json"
    keras.utils.set_random_seed(cfg.seed)
    model = build()
    _compile(model, cfg)
    if not state_file.exists():
        return model, TrainState()
    state = TrainState(**json.loads(state_file.read_text()))
    with quiet_keras_arrays():
        model.load_weights(folder / _ckpt_name(state.epoch))
    return model, state


def _reseed(model, seed: int, epoch: int) -> None:
    """Dropout masks depend only on (seed, epoch, step), so a resumed run draws
    the same ones as an uninterrupted run (seed-generator states are not saved
    with the weights)."""
    for i, var in enumerate(v for v in model.variables if "seed_generator_state" in v.path):
        var.assign(np.array([(seed * 7919 + epoch * 104729 + i * 15485863) % (2**31 - 1), 0],
                            dtype=var.dtype))


@contextlib.contextmanager
def quiet_keras_arrays():
    """Keras' TensorFlow backend converts each variable with ``np.array(x)`` when
    it saves or loads weights; under NumPy 2 every call warns (DeprecationWarning:
    "__array__ implementation doesn't accept a copy keyword"), about 1,800 times in
    the test suite. Harmless, and Keras' to fix: silenced at the calls that cause it.

    >>> import warnings
    >>> with quiet_keras_arrays():
    ...     warnings.warn("__array__ implementation doesn't accept a copy keyword, so ...", DeprecationWarning)
    """
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="__array__ implementation doesn't accept a copy keyword",
                                category=DeprecationWarning)
        yield


def _ckpt_name(epoch: int) -> str:
    return f"checkpoint-{epoch:04d}.weights.h5"


def _best_name(epoch: int) -> str:
    return f"best-{epoch:04d}.weights.h5"


def _average_name(epoch: int) -> str:
    return f"average-{epoch:04d}.npz"


def moving_average(average: list[np.ndarray], weights: list[np.ndarray], decay: float) -> list[np.ndarray]:
    """``decay * average + (1 - decay) * weights`` for float arrays; other arrays (counters) as in ``weights``.

    >>> moving_average([np.array([0.0]), np.array([1])], [np.array([1.0]), np.array([5])], 0.75)
    [array([0.25]), array([5])]
    """
    return [decay * a + (1 - decay) * w if np.issubdtype(w.dtype, np.floating) else w
            for a, w in zip(average, weights)]


def _load_average(folder: Path, state: TrainState) -> list[np.ndarray] | None:
    if state.epoch == 0:
        return None
    with np.load(folder / _average_name(state.epoch)) as f:
        return [f[f"w{i}"] for i in range(len(f.files))]


def _checkpoint(model, state: TrainState, folder: Path, average: list[np.ndarray] | None = None) -> None:
    """Files are named by epoch and the state file, written last and atomically,
    says which are current: a kill at any point leaves a consistent checkpoint
    (with weight averaging, the average so far is one of those files)."""
    tmp = folder / f".tmp.{_ckpt_name(state.epoch)}"
    with quiet_keras_arrays():
        model.save_weights(tmp)
    os.replace(tmp, folder / _ckpt_name(state.epoch))
    keep = {_ckpt_name(state.epoch), _best_name(state.best_epoch)}
    if average is not None:
        atomic_write(folder / _average_name(state.epoch),
                     lambda f: np.savez(f, **{f"w{i}": a for i, a in enumerate(average)}))
        keep.add(_average_name(state.epoch))
    atomic_write(folder / "state.json", lambda f: f.write(json.dumps(dataclasses.asdict(state)).encode()))
    clear_checkpoints(folder, keep=keep)


def clear_checkpoints(folder: Path, keep: set[str] = frozenset()) -> None:
    """Delete a fold's training checkpoints, all but the files named in ``keep``."""
    for old in [*folder.glob("checkpoint-*"), *folder.glob("best-*.weights.h5"), *folder.glob("average-*.npz")]:
        if old.name not in keep:
            old.unlink(missing_ok=True)


@functools.cache
def focal_loss_class():
    """The Keras focal loss class, created on first use (importing Keras is slow)."""
    keras = need("keras", "training")
    ops = keras.ops

    @keras.saving.register_keras_serializable(package="tinyser")
    class FocalLoss(keras.losses.Loss):
        """Focal loss (Lin et al., ICCV 2017) on (soft) one-hot targets: Σ y (1-p)^γ · -log p."""

        def __init__(self, gamma: float = 2.0, label_smoothing: float = 0.0, name: str = "focal", **kw):
            super().__init__(name=name, **kw)
            self.gamma, self.label_smoothing = gamma, label_smoothing

        def call(self, y_true, y_pred):
            n = ops.cast(ops.shape(y_pred)[-1], y_pred.dtype)
            y = y_true * (1.0 - self.label_smoothing) + self.label_smoothing / n
            p = ops.clip(y_pred, 1e-7, 1.0)
            return -ops.sum(y * ops.power(1.0 - p, self.gamma) * ops.log(p), axis=-1)

        def get_config(self):
            return {**super().get_config(), "gamma": self.gamma, "label_smoothing": self.label_smoothing}

    return FocalLoss
