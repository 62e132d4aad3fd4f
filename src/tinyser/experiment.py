"""A cross-validated training run: corpora → features → folds → one model per
fold → report. Everything lands in a run folder that can be resumed.

Run folder::

    config.json            what was asked (data, labels, frontend, model, protocol, training)
    fold_00/               checkpoints while training; then model.keras, frontend.json, result.json
    report.json/.md        scores (mean ± std over folds, pooled per-class scores and confusion)
    confusion.png, curves.png, folds.png
"""
from __future__ import annotations

import dataclasses
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from . import __version__
from .audio import SegmentConfig
from .cache import atomic_write
from .errors import TinyserError
from .features import FeatureSet, Frontend, config_from_dict, extract
from .progress import Bar
from .protocols import Fold, Protocol, make_folds
from .training import FoldData, TrainConfig, clear_checkpoints, clip_labels, clip_predictions, fit, predict


@dataclass(frozen=True)
class RunConfig:
    """Everything that defines a training run (serialised to ``config.json``)."""

    data: tuple[str, ...]
    model: str = "tiny"
    frontend: dict = field(default_factory=lambda: {"frontend": "mfcc"})
    segments: dict = field(default_factory=lambda: SegmentConfig().to_dict())
    labels: str = "native"
    corpus: str = "auto"
    protocol: str = "speaker:5"
    model_params: dict = field(default_factory=dict)
    train: TrainConfig = TrainConfig()

    def __post_init__(self):
        Protocol.parse(self.protocol)
        config_from_dict(self.frontend)
        SegmentConfig.from_dict(self.segments)

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d["data"], d["train"] = list(self.data), self.train.to_dict()
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "RunConfig":
        d = {k: v for k, v in d.items() if k != "tinyser"}  # the version that wrote it
        d["data"], d["train"] = tuple(d["data"]), TrainConfig.from_dict(d["train"])
        return cls(**d)


def run_training(cfg: RunConfig, out: str | os.PathLike, *, resume: bool = False, progress: bool = True,
                 on_epoch: Callable[[int, int, dict], None] | None = None) -> dict:
    """Train and evaluate one model per fold; returns the report (also written to ``out``).

    With ``resume`` an interrupted run in ``out`` continues from its last
    checkpoint using the configuration it was started with.

    >>> run_training(RunConfig(("data/emodb",), model="tiny", protocol="speaker:5"), "runs/x")  # doctest: +SKIP
    """
    out = Path(out)
    cfg = _prepare_folder(cfg, out, resume)
    fs = run_features(cfg, progress)
    clip_y, clip_g = _clip_arrays(fs)
    folds = make_folds(clip_y, clip_g, cfg.protocol, cfg.train.seed, cfg.train.val_fraction)
    results = []
    with Bar(len(folds) * cfg.train.epochs, "training", enabled=progress) as bar:
        for fold in folds:
            results.append(_run_fold(cfg, fs, fold, clip_g, out / f"fold_{fold.index:02d}", bar, on_epoch))
    from .report import build_report, write_report

    report = build_report(cfg, fs, results)
    write_report(report, out)
    return report


def _prepare_folder(cfg: RunConfig, out: Path, resume: bool) -> RunConfig:
    config_file = out / "config.json"
    if resume:
        if not config_file.exists():
            raise TinyserError(f"{out}: nothing to resume (no config.json)")
        return RunConfig.from_dict(json.loads(config_file.read_text()))
    if out.exists() and any(out.iterdir()):
        raise TinyserError(f"{out}: already exists and is not empty; pass --resume to continue it "
                           "or choose another --out")
    payload = {**cfg.to_dict(), "tinyser": __version__}
    atomic_write(config_file, lambda f: f.write(json.dumps(payload, indent=2).encode()))
    return cfg


def run_features(cfg: RunConfig, progress: bool = False) -> FeatureSet:
    """The features of a run's whole dataset (from the feature cache after the first time)."""
    from .corpora import load_dataset

    ds = load_dataset(list(cfg.data), corpus=cfg.corpus, labels=cfg.labels)
    fs = extract(ds.records, config_from_dict(cfg.frontend), SegmentConfig.from_dict(cfg.segments),
                 classes=ds.labels, progress=progress)
    if len(fs.clip_ids) == 0:
        raise TinyserError(f"{', '.join(cfg.data)}: no usable audio files")
    return fs


def _clip_arrays(fs: FeatureSet) -> tuple[np.ndarray, np.ndarray]:
    first = np.unique(fs.clip_index, return_index=True)[1]
    return fs.y[first], fs.groups[first]


def _segments_of(fs: FeatureSet, clips: np.ndarray) -> np.ndarray:
    return np.flatnonzero(np.isin(fs.clip_index, clips))


def _run_fold(cfg: RunConfig, fs: FeatureSet, fold: Fold, clip_g: np.ndarray, folder: Path, bar: Bar,
              on_epoch) -> dict:
    result_file = folder / "result.json"
    if result_file.exists():
        bar.advance(cfg.train.epochs)
        return json.loads(result_file.read_text())
    from .metrics import scores
    from .models import build_model

    tr, va, te = (_segments_of(fs, getattr(fold, part)) for part in ("train", "val", "test"))
    frontend = Frontend(config_from_dict(cfg.frontend)).fitted(fs.features[tr])  # training data only
    x = frontend.standardize(fs.features)
    y = fs.y
    data = FoldData(x[tr], y[tr], x[va], y[va], fs.clip_index[va], len(fs.classes),
                    _augmenter(cfg, fs, tr, frontend))

    def build():
        return build_model(cfg.model, x.shape[1:], len(fs.classes), **cfg.model_params)

    def progress(epoch, record):
        bar.advance(1, f"fold {fold.index + 1} epoch {epoch + 1}")
        if on_epoch:
            on_epoch(fold.index, epoch, record)

    model, state = fit(build, data, cfg.train, folder, progress)
    bar.advance(cfg.train.epochs - state.epoch)
    clips, proba = clip_predictions(predict(model, x[te]), fs.clip_index[te])
    truth = clip_labels(y[te], fs.clip_index[te])
    result = {
        "fold": fold.index,
        **{k: v for k, v in scores(truth, proba.argmax(1), fs.classes).items()},
        "best_epoch": state.best_epoch, "epochs_run": state.epoch, "val_ua": state.best_score,
        "history": state.history,
        "speakers": fold.speakers(clip_g),
        "clips": {part: [fs.clip_ids[i] for i in getattr(fold, part)] for part in ("train", "val", "test")},
        "test_predictions": {"clip": [fs.clip_ids[i] for i in clips], "true": truth.tolist(),
                             "pred": proba.argmax(1).tolist()},
    }
    model.save(folder / "model.keras")
    atomic_write(folder / "frontend.json", lambda f: f.write(frontend.to_json().encode()))
    atomic_write(result_file, lambda f: f.write(json.dumps(result).encode()))
    clear_checkpoints(folder)  # the fold is done: only model, frontend and result stay
    (folder / "state.json").unlink(missing_ok=True)
    return result


def _augmenter(cfg: RunConfig, fs: FeatureSet, train_segments: np.ndarray, frontend: Frontend):
    """Fresh waveform augmentation each epoch: features of the training segments are
    recomputed from augmented audio (slower, so off unless asked for)."""
    if not cfg.train.augment:
        return None
    from .audio import load
    from .augment import AugmentConfig, augment_batch

    aug_cfg = AugmentConfig.from_dict(cfg.train.augment)
    seg_cfg = SegmentConfig.from_dict(cfg.segments)
    sr = frontend.config.sample_rate
    clips = np.unique(fs.clip_index[train_segments])
    audio = np.concatenate([seg_cfg.split(load(fs.paths[c], sr), sr) for c in clips])

    def features(rng: np.random.Generator) -> np.ndarray:
        return frontend(augment_batch(audio, sr, rng, aug_cfg))
    return features


def load_report(run: str | os.PathLike) -> dict:
    """The report of a finished run folder."""
    path = Path(run) / "report.json"
    if not path.exists():
        raise TinyserError(f"{run}: no report.json (is the run finished? resume it with --resume)")
    return json.loads(path.read_text())

