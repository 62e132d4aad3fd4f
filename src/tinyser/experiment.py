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
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Callable

import numpy as np

from . import __version__
from .audio import SegmentConfig
from .cache import atomic_write
from .errors import TinyserError
from .features import FeatureSet, Frontend, FrontendConfig, config_from_dict, extract
from .features.adaptive import DEFAULT_GATE_DB, AdaptiveConfig, gate_for_level
from .features.pipeline import code_key
from .features.tile import TileConfig, sound_spans
from .progress import Bar
from .protocols import Fold, Protocol, corpus_of, make_folds
from .training import (
    FoldData,
    TrainConfig,
    balance_weights,
    clear_checkpoints,
    clip_labels,
    clip_predictions,
    fit,
    predict,
    quiet_keras_arrays,
)

if TYPE_CHECKING:
    from .tflite import ModelMetadata

@dataclass(frozen=True)
class RunConfig:
    """Everything that defines a training run (serialised to ``config.json``).
    ``frontend`` and ``segments`` may be given as their JSON dicts; they are held
    as :class:`~tinyser.features.FrontendConfig` and :class:`~tinyser.audio.SegmentConfig`.

    >>> cfg = RunConfig(("data/emodb",), frontend={"frontend": "cmsis_mfcc"}, segments={"window": 2.0})
    >>> cfg.frontend.name, cfg.segments.window, cfg.to_dict()["segments"]
    ('cmsis_mfcc', 2.0, {'window': 2.0, 'hop': None, 'pad': 'zero'})
    >>> RunConfig.from_dict(cfg.to_dict()) == cfg
    True
    """

    data: tuple[str, ...]
    model: str = "tiny"
    frontend: FrontendConfig = field(default_factory=lambda: config_from_dict({"frontend": "mfcc"}))
    segments: SegmentConfig = field(default_factory=SegmentConfig)
    labels: str = "native"
    corpus: str = "auto"
    protocol: str = "speaker:5"
    model_params: dict = field(default_factory=dict)
    train: TrainConfig = TrainConfig()
    #: adaptive standardisation (tinyser.features.adaptive): {"time_constant": s, "gate_db": dBFS,
    #: "min_std_ratio": r, "prime": bool, "restart": p}; None = fixed training statistics. With "prime"
    #: each speaker's stream is heard once before it is scored (speaker_streams' passes=2), in training
    #: and evaluation: the device has already listened to its speaker, as per-speaker
    #: standardisation assumes. With "restart" p, in training only, each clip starts its statistics
    #: afresh with probability p (speaker_streams' restart), as ``predict`` does for every file, instead
    #: of going on from the speaker's clip before it: the model learns both states of the statistics
    adaptive: dict | None = None
    #: tiled padding (tinyser.features.tile): {"gate_db": dBFS}; None = windows as they are
    tile: dict | None = None
    #: corpora (names as in speaker ids, "corpus:speaker") whose clips train in every fold and are never
    #: validated or tested on: the protocol's folds, validation speakers and scores are the other corpora's,
    #: and classes the other corpora lack are dropped (more training data for a corpus's own protocol)
    train_only: tuple[str, ...] = ()
    #: score validation (the epoch choice) and test with each speaker's clip predictions balanced over the
    #: classes (tinyser.metrics.balance_speakers): the per-speaker assumption that a speaker's clips cover the
    #: emotions evenly, as in the acted corpora; an evaluation under that assumption, not what ``predict`` does
    speaker_balanced: bool = False
    #: score validation (the epoch choice) and test with each speaker's clip predictions balanced causally as
    #: the speaker's stream is heard (tinyser.metrics.RunningBalance, this time constant in clips): the same
    #: assumption, made as a device could, from the clips before each one; None = predictions as they are
    running_balance: float | None = None

    def __post_init__(self):
        Protocol.parse(self.protocol)
        if isinstance(self.frontend, dict):  # JSON boundary: converted once, here
            object.__setattr__(self, "frontend", config_from_dict(self.frontend))
        if isinstance(self.segments, dict):
            object.__setattr__(self, "segments", SegmentConfig.from_dict(self.segments))
        if self.adaptive is not None:
            adaptive_config(self.adaptive, self.frontend)
        if self.tile is not None:
            tile_config(self.tile, self.frontend)
        object.__setattr__(self, "train_only", tuple(self.train_only))
        if not isinstance(self.speaker_balanced, bool):
            raise TinyserError(f"speaker_balanced must be true or false, not {self.speaker_balanced!r}")
        r = self.running_balance
        if r is not None and (isinstance(r, bool) or not isinstance(r, (int, float)) or not 0 < r < float("inf")):
            raise TinyserError(f"running_balance must be a time constant in clips (> 0), not {r!r}")
        if r is not None and self.speaker_balanced:
            raise TinyserError("choose one of speaker_balanced and running_balance")

    def to_dict(self) -> dict:
        return {"data": list(self.data), "model": self.model, "frontend": self.frontend.to_dict(),
                "segments": self.segments.to_dict(), "labels": self.labels, "corpus": self.corpus,
                "protocol": self.protocol, "model_params": dict(self.model_params), "train": self.train.to_dict(),
                "adaptive": None if self.adaptive is None else dict(self.adaptive),
                **({} if self.tile is None else {"tile": dict(self.tile)}),  # absent: older runs' configs read the same
                **({"train_only": list(self.train_only)} if self.train_only else {}),
                **({"speaker_balanced": True} if self.speaker_balanced else {}),
                **({} if self.running_balance is None else {"running_balance": self.running_balance})}

    @classmethod
    def from_dict(cls, d: dict) -> RunConfig:
        d = {k: v for k, v in d.items() if k != "tinyser"}  # the version that wrote it
        d["data"], d["train"] = tuple(d["data"]), TrainConfig.from_dict(d["train"])
        return cls(**d)


def adaptive_config(spec: dict, frontend_config) -> AdaptiveConfig:
    """A run's ``adaptive`` setting as an :class:`~tinyser.features.adaptive.AdaptiveConfig`
    for its frontend (the voiced-frame gate given in dBFS becomes a c0 threshold).

    >>> from tinyser.features import get_config
    >>> adaptive_config({"time_constant": 10, "gate_db": -50}, get_config("cmsis_mfcc")).time_constant
    10.0
    """
    spec = dict(spec)
    gate = _gate("adaptive", spec, {"time_constant", "gate_db", "min_std_ratio", "prime", "restart"},
                 frontend_config)
    if not isinstance(spec.get("prime", False), bool):
        raise TinyserError(f"adaptive: prime must be true or false, not {spec['prime']!r}")
    restart = spec.get("restart", 0.0)
    if isinstance(restart, bool) or not isinstance(restart, (int, float)) or not 0.0 <= restart <= 1.0:
        raise TinyserError(f"adaptive: restart must be a probability from 0 to 1, not {restart!r}")
    return AdaptiveConfig(gate=gate, **{k: float(v) for k, v in spec.items()
                                        if k not in ("gate_db", "prime", "restart")})


def stream_passes(cfg: RunConfig) -> int:
    """How many times a run's speaker streams are heard, the last one scored (2 with ``adaptive.prime``).

    >>> stream_passes(RunConfig(("d",), adaptive={"prime": True})), stream_passes(RunConfig(("d",)))
    (2, 1)
    """
    return 2 if cfg.adaptive is not None and cfg.adaptive.get("prime") else 1


def _gate(name: str, spec: dict, known: set[str], frontend_config) -> float:
    """The c0 threshold of a run setting's ``gate_db`` (dBFS of white noise; default
    ``DEFAULT_GATE_DB``), after checking its keys."""
    if not isinstance(spec, dict) or set(spec) - known:
        raise TinyserError(f"{name}: unknown setting(s) in {spec!r}; known: {', '.join(sorted(known))}")
    gate_db = float(spec.get("gate_db", DEFAULT_GATE_DB))
    if not np.isfinite(gate_db):
        raise TinyserError(f"{name}: gate_db must be finite, not {gate_db}")
    return gate_for_level(frontend_config, gate_db)


def tile_config(spec: dict, frontend_config) -> TileConfig:
    """A run's ``tile`` setting as a :class:`~tinyser.features.tile.TileConfig` for its
    frontend (the sound gate given in dBFS becomes a c0 threshold).

    >>> from tinyser.features import get_config
    >>> tile_config({"gate_db": -50}, get_config("cmsis_mfcc")).gate < 0
    True
    """
    return TileConfig(gate=_gate("tile", spec, {"gate_db"}, frontend_config))


def run_training(cfg: RunConfig, out: str | os.PathLike, *, resume: bool = False, progress: bool = True,
                 on_epoch: Callable[[int, int, dict], None] | None = None) -> dict:
    """Train and evaluate one model per fold; returns the report (also written to ``out``).

    With ``resume`` an interrupted run in ``out`` continues from its last
    checkpoint using the configuration it was started with.

    >>> run_training(RunConfig(("data/emodb",), model="tiny", protocol="speaker:5"), "runs/x")  # doctest: +SKIP
    """
    out = Path(out)
    if resume:
        cfg = _prepare_folder(cfg, out, resume)
    else:
        _check_new_folder(out)
    fs = run_features(cfg, progress)
    _, clip_g, folds = folds_of(cfg, fs)  # data that cannot train fails here, before out is made
    if not resume:
        _prepare_folder(cfg, out, resume)
    results = []
    with Bar(len(folds) * _fold_epochs(cfg), "training", enabled=progress) as bar:
        for fold in folds:
            results.append(_run_fold(cfg, fs, fold, clip_g, fold_dir(out, fold.index), bar, on_epoch))
    from .report import build_report, write_report

    report = build_report(cfg, fs, results)
    write_report(report, out)
    return report


def _check_new_folder(out: Path) -> None:
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise TinyserError(f"{out}: already exists and is not empty; pass --resume to continue it "
                           "or choose another --out")


def _checked_folds(cfg: RunConfig, fs: FeatureSet, clip_y: np.ndarray, clip_g: np.ndarray) -> list[Fold]:
    """The run's folds, or one line saying why this data cannot train: one class, or
    too few speakers for the protocol (with the protocol that would work)."""
    where = ", ".join(cfg.data)
    present = sorted({fs.classes[int(i)] for i in np.unique(clip_y)})
    if len(present) < 2:
        raise TinyserError(f"{where}: only one class ({', '.join(present) or 'none'}) has usable clips; "
                           "training needs at least two (check --labels)")
    helper = np.isin(corpus_of(clip_g), cfg.train_only)
    target = np.flatnonzero(~helper)
    try:
        folds = make_folds(clip_y[target], clip_g[target], cfg.protocol, cfg.train.folds_seed,
                           cfg.train.val_fraction)
        return [Fold(f.index, np.sort(np.r_[target[f.train], np.flatnonzero(helper)]), target[f.val], target[f.test])
                for f in folds]
    except TinyserError as e:
        if Protocol.parse(cfg.protocol).kind == "random":
            raise
        n, k = len(np.unique(clip_g)), min(5, int(np.unique(clip_y, return_counts=True)[1].min()))
        hint = (f"use --cv random:{k} (clips, not speakers, held out: scores are optimistic)" if k >= 2 else
                "record more speakers or more clips per class")
        raise TinyserError(f"{where}: {e}; with {n} speaker{'s' if n != 1 else ''} {hint}") from None
    except ValueError as e:  # scikit-learn's splitters on data too small for the protocol
        raise TinyserError(f"{where}: too few clips for --cv {cfg.protocol} ({len(clip_y)} clips, "
                           f"{len(present)} classes): {str(e).strip().splitlines()[-1]}") from None


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
    records, classes = ds.records, ds.labels
    if cfg.train_only:
        records, classes = _without_helper_only_classes(records, classes, cfg)
    fs = extract(records, cfg.frontend, cfg.segments, classes=classes, progress=progress)
    if len(fs.clip_ids) == 0:
        raise TinyserError(f"{', '.join(cfg.data)}: no usable audio files")
    return fs


def _without_helper_only_classes(records: list, classes: list[str], cfg: RunConfig) -> tuple[list, list[str]]:
    """``records`` and ``classes`` without the classes that only ``cfg.train_only`` corpora have."""
    helper = {r.corpus for r in records} & set(cfg.train_only)
    if helper != set(cfg.train_only):
        raise TinyserError(f"{', '.join(cfg.data)}: train_only names corpora the data does not have: "
                           f"{', '.join(sorted(set(cfg.train_only) - helper))}")
    own = {r.label for r in records if r.corpus not in helper}
    if not own:
        raise TinyserError(f"{', '.join(cfg.data)}: every corpus is train_only; at least one must be tested")
    return [r for r in records if r.label in own], [c for c in classes if c in own]


def folds_of(cfg: RunConfig, fs: FeatureSet) -> tuple[np.ndarray, np.ndarray, list[Fold]]:
    """A run's clip labels (class indices), speaker groups and folds (indices into
    ``fs.clip_ids`` and ``fs.paths``), exactly as :func:`run_training` makes them."""
    clip_y, clip_g = _clip_arrays(fs)
    return clip_y, clip_g, _checked_folds(cfg, fs, clip_y, clip_g)


def _clip_arrays(fs: FeatureSet) -> tuple[np.ndarray, np.ndarray]:
    first = np.unique(fs.clip_index, return_index=True)[1]
    return fs.y[first], fs.groups[first]


def _segments_of(fs: FeatureSet, clips: np.ndarray) -> np.ndarray:
    return np.flatnonzero(np.isin(fs.clip_index, clips))


def _fold_epochs(cfg: RunConfig) -> int:
    """Most epochs one fold can train (twice the schedule with ``refit``), for the progress bar."""
    return cfg.train.epochs * (2 if cfg.train.refit else 1)


def _run_fold(cfg: RunConfig, fs: FeatureSet, fold: Fold, clip_g: np.ndarray, folder: Path, bar: Bar,
              on_epoch) -> dict:
    result_file = folder / "result.json"
    if result_file.exists():
        bar.advance(_fold_epochs(cfg))
        return json.loads(result_file.read_text())
    from .metrics import scores
    from .models import build_model

    tr, va, te = (_segments_of(fs, getattr(fold, part)) for part in ("train", "val", "test"))
    frontend, x, data = _fold_inputs(cfg, fs, fold, tr, va, te)

    def build():
        return build_model(cfg.model, x.shape[1:], len(fs.classes), **cfg.model_params)

    def progress(stage: str):
        def tick(epoch, record):
            bar.advance(1, f"fold {fold.index + 1} {stage}epoch {epoch + 1}")
            if on_epoch:  # a refit's records have no validation scores
                on_epoch(fold.index, epoch, record)
        return tick

    model, state = fit(build, data, cfg.train, folder, progress(""))
    bar.advance(cfg.train.epochs - state.epoch)
    truth = clip_labels(fs.y[te], fs.clip_index[te])

    def tested(model, x, heard):  # x: the inputs as heard with validation rows ``heard`` (none after a refit)
        clips, proba = clip_predictions(predict(model, x[te]), fs.clip_index[te])
        balanced = balancer(cfg, fs, fold.index, heard, te, te)
        proba = proba if balanced is None else balanced(proba)
        return clips, proba.argmax(1), scores(truth, proba.argmax(1), fs.classes)

    kept, refit = fold, {}
    if cfg.train.refit:  # validation chose the epoch count: train again on training + validation clips
        before = tested(model, x, va)[2]  # the chosen model's test scores, as the row without refit has them
        kept = dataclasses.replace(fold, train=np.sort(np.r_[fold.train, fold.val]), val=fold.val[:0])
        frontend, x, data = _fold_inputs(cfg, fs, kept, np.sort(np.r_[tr, va]), va[:0], te)
        va = va[:0]  # from here the test clips are heard without validation speakers
        stop = state.best_epoch + 1
        model, _ = fit(build, data, cfg.train, folder / "refit", progress("refit "), stop=stop)
        bar.advance(cfg.train.epochs - stop)
        refit = {"refit": {"epochs": stop, "val_speakers": fold.speakers(clip_g)["val"],
                           "val_clips": [fs.clip_ids[i] for i in fold.val],
                           "before": {k: before[k] for k in ("ua", "wa", "f1")}}}
    clips, pred, score = tested(model, x, va)
    result = {
        "fold": fold.index,
        **score,
        "best_epoch": state.best_epoch, "epochs_run": state.epoch, "val_ua": state.best_score,
        "history": state.history,
        "speakers": kept.speakers(clip_g),
        "clips": {part: [fs.clip_ids[i] for i in getattr(kept, part)] for part in ("train", "val", "test")},
        **refit,
        "test_predictions": {"clip": [fs.clip_ids[i] for i in clips], "true": truth.tolist(),
                             "pred": pred.tolist()},
    }
    with quiet_keras_arrays():
        model.save(folder / "model.keras")
    atomic_write(folder / "frontend.json", lambda f: f.write(frontend.to_json().encode()))
    atomic_write(result_file, lambda f: f.write(json.dumps(result).encode()))
    clear_checkpoints(folder)  # the fold is done: only model, frontend and result stay
    (folder / "state.json").unlink(missing_ok=True)
    if (folder / "refit").is_dir():  # the refit's own checkpoints
        shutil.rmtree(folder / "refit")
    return result


def _fold_inputs(cfg: RunConfig, fs: FeatureSet, fold: Fold, tr: np.ndarray, va: np.ndarray, te: np.ndarray):
    """A fold's frontend (statistics of its training windows ``tr``), every window's standardised
    inputs (validation and test speakers each one stream) and the training data; no validation data
    when ``va`` is empty."""
    fe_config = cfg.frontend
    frontend = Frontend(fe_config).fitted(fs.features[tr])  # training data only
    if cfg.adaptive is not None:
        frontend = dataclasses.replace(frontend, adaptive=adaptive_config(cfg.adaptive, fe_config))
    if cfg.tile is not None:
        frontend = dataclasses.replace(frontend, tile=tile_config(cfg.tile, fe_config))
    x = evaluation_inputs(cfg, fs, frontend, fold.index, va, te)
    y = fs.y
    weights = (balance_weights(y[tr], fs.groups[tr], len(fs.classes), cfg.train.balance)
               if cfg.train.class_weights else None)
    val = (x[va], y[va], fs.clip_index[va]) if len(va) else (None, None, None)
    data = FoldData(x[tr], y[tr], *val, len(fs.classes), _epoch_inputs(cfg, fs, tr, frontend), weights,
                    _teacher(cfg, fs, fold, tr), balancer(cfg, fs, fold.index, va, te, va) if len(va) else None)
    return frontend, x, data


def balancer(cfg: RunConfig, fs: FeatureSet, fold: int, va: np.ndarray, te: np.ndarray, part: np.ndarray):
    """How fold ``fold`` of a run balances the clip probabilities of one part (rows ``part``: ``va`` or ``te``;
    clips in the order of their ids, as ``training.clip_predictions`` gives them) before it scores them: each
    speaker's all at once (``speaker_balanced``), or as its stream hears them (``running_balance``, in the
    order of :func:`evaluation_streams`); None where the run scores them as they are."""
    from .metrics import balance_speakers, running_balance

    if cfg.speaker_balanced:
        speakers = clip_labels(fs.groups[part], fs.clip_index[part])
        return lambda proba: balance_speakers(proba, speakers)
    if cfg.running_balance is None:
        return None
    streams = clip_order(cfg, fs, fold, va, te, part)
    return lambda proba: running_balance(proba, streams, cfg.running_balance)


def clip_order(cfg: RunConfig, fs: FeatureSet, fold: int, va: np.ndarray, te: np.ndarray,
               part: np.ndarray) -> list[list[int]]:
    """The clips of rows ``part`` (``va`` or ``te``) as fold ``fold``'s evaluation hears them: one list per
    speaker (:func:`evaluation_streams`), each clip given by its place among the part's clip ids in sorted
    order (the rows of ``training.clip_predictions``' probabilities).

    >>> fs = FeatureSet(np.zeros((4, 1, 1)), np.array(list("aabb")), np.array(["s", "s", "t", "t"]),
    ...                 np.array([0, 1, 2, 3]), ["c0", "c1", "c2", "c3"], [""] * 4, ["a", "b"], {}, {})
    >>> cfg = RunConfig(data=("d",))
    >>> sorted(map(sorted, clip_order(cfg, fs, 0, np.array([0, 1]), np.array([2, 3]), np.array([2, 3]))))
    [[0, 1]]
    """
    ids = np.unique(fs.clip_index[part])
    mine = set(ids.tolist())
    heard = ([c for c in dict.fromkeys(fs.clip_index[stream].tolist()) if c in mine]
             for stream in evaluation_streams(cfg, fs, fold, va, te))
    return [np.searchsorted(ids, clips).tolist() for clips in heard if clips]


def evaluation_streams(cfg: RunConfig, fs: FeatureSet, fold: int, va: np.ndarray, te: np.ndarray) -> list[list[int]]:
    """How fold ``fold`` of a run hears its validation (rows ``va``) and test (``te``) windows when it is
    evaluated: each speaker one stream (:func:`speaker_streams`), in an order drawn from the run's seed and the
    fold, heard twice where the run primes (:func:`stream_passes`)."""
    return speaker_streams(fs, np.r_[va, te], np.random.default_rng([cfg.train.seed, fold]), stream_passes(cfg))


def evaluation_inputs(cfg: RunConfig, fs: FeatureSet, frontend: Frontend, fold: int, va: np.ndarray,
                      te: np.ndarray) -> np.ndarray:
    """Every window of ``fs`` standardised by ``frontend`` as fold ``fold`` of a run is evaluated, in the
    streams of :func:`evaluation_streams`."""
    return frontend.standardize_streams(fs.features, evaluation_streams(cfg, fs, fold, va, te))


def speaker_streams(fs: FeatureSet, segments: np.ndarray, rng: np.random.Generator,
                    passes: int = 1, restart: float = 0.0) -> list[list[int]]:
    """The order one device per speaker would hear ``segments`` in: each speaker's
    clips in a random order, each clip's windows in time order. With ``passes=2``
    the stream is listed twice: adaptive statistics hear the speaker once before the
    second hearing, whose outputs are the ones kept (later outputs overwrite earlier ones).
    With ``restart`` p, each clip after a speaker's first begins a stream of its own with
    probability p (statistics afresh, as ``predict`` scores a file given alone); 1 makes every
    clip its own stream.

    >>> fs = FeatureSet(np.zeros((4, 1, 1)), np.array(list("aabb")), np.array(["s", "s", "t", "t"]),
    ...                 np.array([0, 0, 1, 2]), ["c0", "c1", "c2"], [""] * 3, ["a", "b"], {}, {})
    >>> sorted(map(sorted, speaker_streams(fs, np.arange(4), np.random.default_rng(0))))
    [[0, 1], [2, 3]]
    >>> sorted(map(sorted, speaker_streams(fs, np.arange(4), np.random.default_rng(0), restart=1.0)))
    [[0, 1], [2], [3]]
    """
    segments = np.asarray(segments)
    streams = []
    for speaker in np.unique(fs.groups[segments]):
        mine = segments[fs.groups[segments] == speaker]
        clips = [np.sort(mine[fs.clip_index[mine] == c]).tolist()
                 for c in rng.permutation(np.unique(fs.clip_index[mine]))]
        # the clips that begin a stream of their own: the first always, the others with probability restart
        starts = np.flatnonzero(np.r_[True, rng.random(len(clips) - 1) < restart]) if restart else np.array([0])
        streams.extend([i for clip in clips[a:b] for i in clip] * passes
                       for a, b in zip(starts, [*starts[1:], len(clips)]))
    return streams


def clip_streams(fs: FeatureSet, segments: np.ndarray) -> list[list[int]]:
    """One stream per clip, its windows in time order: the running statistics start afresh
    from the training ones for every clip, as ``predict`` scores a file it is given alone.

    >>> from types import SimpleNamespace
    >>> clip_streams(SimpleNamespace(clip_index=np.array([0, 0, 1, 1, 1])), np.array([4, 0, 2, 1]))
    [[0, 1], [2, 4]]
    """
    segments = np.sort(np.asarray(segments))
    return [segments[fs.clip_index[segments] == c].tolist() for c in np.unique(fs.clip_index[segments])]


def one_stream(fs: FeatureSet, segments: np.ndarray, rng: np.random.Generator) -> list[list[int]]:
    """All ``segments`` as a single stream: their clips in a random order, each clip's windows
    in time order. The running statistics go on from clip to clip whoever speaks, as
    ``predict --one-stream`` carries them across the files of a batch (one microphone, one corpus).

    >>> from types import SimpleNamespace
    >>> one_stream(SimpleNamespace(clip_index=np.array([0, 0, 1])), np.array([2, 1, 0]), np.random.default_rng(3))
    [[2, 0, 1]]
    """
    clips = clip_streams(fs, segments)
    return [[i for k in rng.permutation(len(clips)) for i in clips[k]]]


#: where a crop finds sound in a run with neither adaptive standardisation nor tiling (dBFS of white
#: noise); with either, their own gate (the fixed-standardisation rows with crops were trained so)
CROP_GATE_DB = -50.0


def _epoch_inputs(cfg: RunConfig, fs: FeatureSet, train: np.ndarray, frontend: Frontend):
    """The callable giving each epoch's standardised training inputs (rows as
    ``train``): one of the cached augmented feature copies per clip (or the clean
    features), random-length crops with silence around them, and adaptive
    standardisation over freshly ordered speaker streams. None when every epoch
    would see the same inputs."""
    t = cfg.train
    if not (t.augment_copies or t.crop or t.augment or frontend.adaptive is not None):
        return None
    copies = augmented_copies(cfg, fs) if (t.augment_copies or t.augment) else None
    raw = fs.features[train]
    silence = frontend.features(np.zeros(int(round(_window(cfg) * frontend.config.sample_rate)),
                                         np.float32))[0]
    min_frames = max(1, int(round(t.crop_min / frontend.frame_seconds)))
    gate = (frontend.adaptive.gate if frontend.adaptive is not None else frontend.tile.gate
            if frontend.tile is not None else gate_for_level(frontend.config, CROP_GATE_DB))
    sub = FeatureSet(raw, fs.labels[train], fs.groups[train], fs.clip_index[train], fs.clip_ids, fs.paths,
                     fs.classes, fs.frontend, fs.segments)

    def features(rng: np.random.Generator) -> np.ndarray:
        x = raw
        if copies is not None:
            pick = rng.integers(0, len(copies) + 1, len(fs.clip_ids))[fs.clip_index[train]]
            x = raw.copy()
            for k in range(len(copies)):
                x[pick == k + 1] = copies[k][train[pick == k + 1]]
        if t.crop:
            x = crop_windows(x, rng, t.crop, min_frames, silence, gate)
        if frontend.adaptive is None:
            return frontend.standardize(x)
        return frontend.standardize_streams(x, speaker_streams(sub, np.arange(len(train)), rng, stream_passes(cfg),
                                                               float(cfg.adaptive.get("restart", 0.0))))
    return features


def crop_windows(x: np.ndarray, rng: np.random.Generator, p: float, min_frames: int,
                 silence: np.ndarray, gate: float) -> np.ndarray:
    """Cut each window, with probability ``p``, to a random span (log-uniform
    length) of ``min_frames`` frames or more *of its sound* (between its first and last frame whose c0 is
    at least ``gate``), placed at a random position with silence frames (the
    frontend's features of digital silence, as a zero-padded short clip gives)
    around it: short utterances are then something the model has seen, and a
    crop never holds only the silence of a padded clip.

    >>> x = np.full((1, 10, 1), -9, np.float32); x[0, 2:8, 0] = np.arange(6)
    >>> y = crop_windows(x, np.random.default_rng(3), 1.0, 2, np.full((10, 1), -1, np.float32), gate=0.0)
    >>> kept = y[y != -1].tolist(); len(kept) >= 2 and set(kept) <= set(range(6))
    True
    """
    out = np.array(x, np.float32)
    n, frames = x.shape[:2]
    firsts, spans = sound_spans(x, gate)
    for i in np.flatnonzero(rng.random(n) < p):
        first, span = int(firsts[i]), int(spans[i])
        if span == 0:
            continue
        lo = min(min_frames, span)  # log-uniform: short utterances are common in real speech
        length = int(np.clip(np.round(np.exp(rng.uniform(np.log(lo), np.log(span + 1)))), lo, span))
        src = first + int(rng.integers(0, span - length + 1))
        dst = int(rng.integers(0, frames - length + 1))
        out[i] = silence[:frames]
        out[i, dst:dst + length] = x[i, src:src + length]
    return out


def _window(cfg: RunConfig) -> float:
    return float(cfg.segments.window)


def augmented_copies(cfg: RunConfig, fs: FeatureSet) -> list[np.ndarray]:
    """``augment_copies`` feature copies of every segment, each from independently
    augmented audio (``augment``: an AugmentConfig, default the realistic
    recipe), computed once and kept in the feature cache (runs with the same
    data, features and augmentation share them), so an epoch costs what a clean one does. Babble is mixed from *the same
    speaker's* other clips: copies serve every fold, and another speaker's voice
    could be a test speaker's."""
    from .audio import load
    from .augment import AugmentConfig, augment_batch
    from .cache import config_digest, default_cache_dir

    k = max(1, cfg.train.augment_copies)
    augment = cfg.train.augment.to_dict() if cfg.train.augment else None
    key = config_digest({"frontend": cfg.frontend.to_dict(), "segments": cfg.segments.to_dict(), "augment": augment,
                         "copies": k, "seed": cfg.train.seed, "clips": fs.clip_ids, "version": 1,
                         **code_key(cfg.frontend)})
    path = default_cache_dir() / "augmented" / f"{key}.npy"
    if path.exists():
        arr = np.load(path, mmap_mode="r")
        if arr.shape[0] == k and arr.shape[1:] == fs.features.shape:
            return [arr[i] for i in range(k)]
    aug_cfg = cfg.train.augment or AugmentConfig.realistic()
    seg_cfg, fe = cfg.segments, cfg.frontend
    sr = fe.sample_rate
    out = np.empty((k, *fs.features.shape), np.float32)
    clip_groups = _clip_arrays(fs)[1]
    by_speaker = {g: np.flatnonzero(clip_groups == g) for g in np.unique(clip_groups)}
    audio_cache: dict[int, np.ndarray] = {}

    def audio(c: int) -> np.ndarray:
        if c not in audio_cache:
            audio_cache[c] = load(fs.paths[c], sr)
        return audio_cache[c]

    with Bar(len(fs.clip_ids), "augmenting", enabled=True) as bar:
        for clips in by_speaker.values():
            rng = np.random.default_rng([cfg.train.seed, len(clips)])
            audio_cache.clear()
            for c in clips:
                rows = np.flatnonzero(fs.clip_index == c)
                others = [int(o) for o in rng.permutation(clips[clips != c])[:8]]
                y = audio(int(c))
                clip_cfg = aug_cfg.with_babble_pool([audio(o) for o in others] or [y])
                for j in range(k):
                    r = np.random.default_rng([cfg.train.seed, int(c), j])
                    out[j, rows] = fe.compute(seg_cfg.split(augment_batch(y[None], sr, r, clip_cfg)[0], sr))
                bar.advance(1)
    atomic_write(path, lambda f: np.save(f, out))
    return [out[i] for i in range(k)]


def _teacher(cfg: RunConfig, fs: FeatureSet, fold: Fold, train: np.ndarray):
    """The teacher's probabilities for distillation, as ``teacher(x, rows)`` for inputs
    ``x`` drawn from the training windows ``train[rows]``: the mean over the same fold
    of finished runs (each with the same data, protocol and folds, so no teacher saw
    this fold's test or validation speakers) and, with ``egemaps``, the eGeMAPS SVM's
    out-of-fold probabilities of each training clip (trained on this fold's training
    clips alone, :func:`tinyser.egemaps.teacher_proba`)."""
    if not cfg.train.distill:
        return None
    import keras

    from .training import predict

    teachers = cfg.train.distill.get("teacher") or []
    runs = [Path(t) for t in ([teachers] if isinstance(teachers, str) else teachers)]
    mine = cfg.to_dict()
    models = []
    for run in runs:
        teacher_cfg = json.loads((run / "config.json").read_text())
        same = [[os.path.realpath(p) for p in teacher_cfg["data"]] == [os.path.realpath(p) for p in mine["data"]]]
        same += [teacher_cfg.get(k) == mine.get(k) for k in ("protocol", "labels", "corpus", "segments",
                                                               "frontend", "adaptive", "tile")]
        theirs = TrainConfig.from_dict(teacher_cfg["train"])
        same += [(theirs.folds_seed, theirs.val_fraction) == (cfg.train.folds_seed, cfg.train.val_fraction)]
        if not all(same):
            raise TinyserError(f"{run}: the teacher was trained on other data, folds or inputs; distillation "
                               "needs the same data, protocol, folds (split seed), frontend and normalisation")
        with quiet_keras_arrays():
            models.append(keras.models.load_model(fold_dir(run, fold.index) / "model.keras", compile=False))
    clip_proba = _egemaps_teacher(cfg, fs, fold)
    by_window = None if clip_proba is None else clip_proba[np.searchsorted(fold.train, fs.clip_index[train])]

    def teacher(x: np.ndarray, rows: np.ndarray) -> np.ndarray:
        members = [predict(m, x) for m in models] + ([] if by_window is None else [by_window[rows]])
        return np.mean(members, axis=0)

    return teacher


def _egemaps_teacher(cfg: RunConfig, fs: FeatureSet, fold: Fold) -> np.ndarray | None:
    """The eGeMAPS SVM's (or another set's classifier: ``distill["functionals"]``) out-of-fold probabilities for
    the fold's training clips (rows of ``fold.train``)."""
    standardisation = cfg.train.distill.get("egemaps")
    if not standardisation:
        return None
    from .egemaps import DEFAULT_TEACHER_SPLIT, functionals, teacher_proba

    clip_y, clip_g = _clip_arrays(fs)
    feature_set = cfg.train.distill.get("functionals", "egemaps")
    # the training clips alone, standardised among themselves
    x = functionals([fs.paths[i] for i in fold.train], feature_set=feature_set)
    return teacher_proba(x, clip_y[fold.train], clip_g[fold.train], np.arange(len(x)), len(fs.classes),
                         standardisation, seed=cfg.train.seed + fold.index,
                         split=cfg.train.distill.get("split", DEFAULT_TEACHER_SPLIT), feature_set=feature_set)


def load_report(run: str | os.PathLike) -> dict:
    """The report of a finished run folder."""
    path = Path(run) / "report.json"
    if not path.exists():
        raise TinyserError(f"{run}: no report.json (is the run finished? resume it with --resume)")
    return json.loads(path.read_text())



# --------------------------------------------------------------------------- the run folder, read back

def fold_dir(run_dir: str | os.PathLike, fold: int) -> Path:
    """A fold's folder in a run folder: ``RUN/fold_NN``.

    >>> fold_dir("runs/x", 3).as_posix()
    'runs/x/fold_03'
    """
    return Path(run_dir) / f"fold_{fold:02d}"


def default_export_dir(run_dir: str | os.PathLike, fold: int) -> Path:
    """Where a fold's exported files go unless told otherwise: ``RUN/export/fold_NN``.

    >>> default_export_dir("runs/x", 0).as_posix()
    'runs/x/export/fold_00'
    """
    return fold_dir(Path(run_dir) / "export", fold)


class FoldModel:
    """A trained fold of a run: its Keras model, frontend, data split and config."""

    def __init__(self, run_dir: Path, fold: int, features: FeatureSet | None = None):
        """``features``: the run's feature set where the caller has it already (:meth:`features`)."""
        from .extras import need

        keras = need("keras", "loading a trained fold")
        self.run_dir, self.fold = run_dir, fold
        folder = fold_dir(run_dir, fold)
        if not (folder / "model.keras").exists():
            raise TinyserError(f"{run_dir}: fold {fold} has no trained model (is the run finished?)")
        self.report = load_report(run_dir)
        self.config = RunConfig.from_dict(json.loads((run_dir / "config.json").read_text()))
        self.frontend = Frontend.from_json((folder / "frontend.json").read_text())
        with quiet_keras_arrays():
            self.model = keras.models.load_model(folder / "model.keras", compile=False)
        self.split = next(f for f in self.report["folds"] if f["fold"] == fold)
        self._features = features

    def features(self) -> FeatureSet:
        """The run's feature set (from the feature cache)."""
        if self._features is None:
            self._features = run_features(self.config)
        return self._features

    def rows(self, name: str) -> np.ndarray:
        """The rows of :meth:`features` that are the windows of this fold's train/val/test part."""
        fs = self.features()
        wanted = {c: i for i, c in enumerate(fs.clip_ids)}
        clips = np.array([wanted[c] for c in self.split["clips"][name] if c in wanted], dtype=np.int64)
        return np.flatnonzero(np.isin(fs.clip_index, clips))

    def evaluated(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Every window standardised as the run's evaluation standardised it (:func:`evaluation_inputs`), with
        the rows of the validation and test parts: ``(x, val, test)``."""
        va, te = self.rows("val"), self.rows("test")
        return evaluation_inputs(self.config, self.features(), self.frontend, self.fold, va, te), va, te

    def part(self, name: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Standardised inputs, class indices and clip indices of this fold's train/val/test part."""
        fs = self.features()
        seg = self.rows(name)
        x = self.frontend.standardize_streams(fs.features, speaker_streams(
            fs, seg, np.random.default_rng([self.config.train.seed, self.fold]), stream_passes(self.config)))
        return x[seg], fs.y[seg], fs.clip_index[seg]

    def representative(self, n: int = 300) -> np.ndarray:
        x, _, _ = self.part("train")
        return x[np.linspace(0, len(x) - 1, min(n, len(x))).astype(int)]

    def metadata(self, quant: str, blob: bytes | None) -> ModelMetadata:
        """What the exported file must say about itself (``blob``: the .tflite, for its tensors;
        None: the float ONNX model)."""
        from .models import count_macs, count_params
        from .tflite import LiteRTModel, ModelMetadata, TensorSpec, TrainingSummary

        if blob is None:  # ONNX: float input and output
            inp = TensorSpec((1, *self.model.input_shape[1:]), "float32")
            out = TensorSpec((1, len(self.report["labels"])), "float32")
        else:
            m = LiteRTModel(blob)
            inp, out = TensorSpec.from_details(m.input_details), TensorSpec.from_details(m.output_details)
        return ModelMetadata(
            model=self.config.model, model_params=dict(self.config.model_params or {}), quantization=quant,
            labels=tuple(self.report["labels"]), frontend=self.frontend,
            segments=self.config.segments,
            input=inp, output=out, params=count_params(self.model), macs=count_macs(self.model),
            training=TrainingSummary(
                data=tuple(str(d) for d in self.config.data), label_scheme=self.config.labels,
                protocol=self.config.protocol, fold=self.fold, speakers=self.split["speakers"],
                fold_scores={k: self.split[k] for k in ("ua", "wa", "f1")},
                run_scores={k: self.report[k] for k in ("ua", "wa", "f1")}))


def load_fold(run_dir: str | os.PathLike, fold: int = 0) -> FoldModel:
    """Load a trained fold of a run folder."""
    run_dir = Path(run_dir)
    if not (run_dir / "config.json").exists():
        raise TinyserError(f"{run_dir}: not a tinyser run folder (no config.json)")
    return FoldModel(run_dir, fold)
