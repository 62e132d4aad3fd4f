"""The accuracy ablation (issue 10): one protocol, one step of the recipe added per row.

    python benchmarks/ablation.py [--data ../shared/data] [--runs runs/ablation] [--rows a,b,...] [--loco a,b] [--table-only]

Protocol: the four shared corpora (EMO-DB, RAVDESS actors 1-20, TESS, SAVEE) under
``common6``, ``speaker:5`` (five folds grouped by speaker, speaker-independent;
validation speakers carved from each fold's training part choose the best
epoch). Features: ``cmsis_mfcc`` (the device's), 2 s windows, shorter clips and
tails zero-padded; a clip's score is the mean of its windows' probabilities.
Every row is `tiny` (width 0.375, time pooled first) unless it says otherwise,
trained from scratch; rows are resumable run folders under --runs (a killed
run continues where it stopped). Writes docs/ablation.json and the ablation
section of docs/results.md, with the openSMILE eGeMAPS + SVM baseline beside it.
"""
from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
import _report  # noqa: E402

from tinyser.egemaps import DEFAULT_TEACHER_SPLIT, FEATURE_SETS  # noqa: E402
from tinyser.experiment import RunConfig, load_report  # noqa: E402
from tinyser.features import get_config  # noqa: E402
from tinyser.search import BOARDS  # noqa: E402
from tinyser.training import TrainConfig  # noqa: E402

CORPORA = ("emodb", "ravdess", "tess", "savee")
#: the per-corpus column's order (the leave-one-corpus-out table's)
CORPORA_SHOWN = tuple(sorted(CORPORA))
LABELS = "common6"
PROTOCOL = "speaker:5"
SEGMENTS = {"window": 2.0, "hop": None, "pad": "zero"}
TINY = {"width": 0.375, "input_pool": [2, 1]}
BASE_TRAIN = {"epochs": 30, "patience": 8, "batch_size": 32, "epoch_size": 2400}
ADAPTIVE = {"time_constant": 20.0, "gate_db": -50.0, "min_std_ratio": 0.25}
CROPS = {"crop": 0.5, "crop_min": 0.5, "mixup": 0.2, "time_masks": 2, "mask_frames": 12, "label_smoothing": 0.1}
AUGMENT = {**CROPS, "augment_copies": 3}
TILE = {"gate_db": ADAPTIVE["gate_db"]}
#: the voiced-frame gate 20 dB lower (dBFS of white noise; benchmarks/gate.py), for normalisation and tiling
ADAPTIVE_G70 = {**ADAPTIVE, "gate_db": -70.0}
TILE_G70 = {"gate_db": ADAPTIVE_G70["gate_db"]}
#: short-utterance crops alone, without the crops row's SpecAugment, mixup and label smoothing
CROPS_ALONE = {"crop": CROPS["crop"], "crop_min": CROPS["crop_min"]}
#: Polyak averaging of the epoch-end weights (``TrainConfig.average``): decay per epoch
AVERAGE = 0.7
LSTM = {"units": [128], "frame_stride": 2, "pooling": "mean", "hidden": 64}
#: distillation into `tiny` from an ensemble of finished rows (same folds, seed and inputs: no
#: teacher saw a fold's test or validation speakers); "@row" names a row's run folder
DISTILL = {"teacher": ["@adaptive", "@crops", "@augment"], "weight": 0.5, "temperature": 2.0}
#: the same from the three weight-averaged rows at the -70 dBFS gate
DISTILL_AVG = {**DISTILL, "teacher": ["@adaptive-tile-g70-crops-avg", "@tile-g70-avg", "@adaptive-tile-g70-short-avg"]}
#: distillation from the eGeMAPS + RBF SVM baseline, its functionals standardised per speaker (tinyser.egemaps:
#: out-of-fold probabilities of each training clip, from SVMs trained on the fold's other training speakers)
DISTILL_EGEMAPS = {"egemaps": "speaker", "weight": 0.5, "temperature": 2.0}

#: row key -> (label, run settings); each row adds one step to the one before
ROWS: dict[str, tuple[str, dict]] = {
    "today": ("today's recipe (fixed standardisation, class-balanced sampling, no augmentation)",
              {"train": {"balance": "class"}}),
    "balanced": ("+ four corpora balanced ((corpus, class) weights)",
                 {"train": {"balance": "corpus_class"}}),
    "adaptive": ("+ adaptive normalisation (20 s of voiced audio)",
                 {"train": {"balance": "corpus_class"}, "adaptive": ADAPTIVE}),
    "crops": ("+ short-utterance crops, SpecAugment, mixup, label smoothing",
              {"train": {"balance": "corpus_class", **CROPS}, "adaptive": ADAPTIVE}),
    "augment": ("+ 3 realistic augmented copies per clip (speed, reverberation, noise, babble, telephone, EQ, clipping)",
                {"train": {"balance": "corpus_class", **AUGMENT}, "adaptive": ADAPTIVE}),
    "distill": ("crops row + distillation from the ensemble of the adaptive, crops and augment rows "
                "(weight 0.5, temperature 2)",
                {"train": {"balance": "corpus_class", **CROPS, "distill": DISTILL}, "adaptive": ADAPTIVE}),
    "model": ("crops row + mean and max pooling over time (statistics pooling; beside distillation)",
              {"train": {"balance": "corpus_class", **CROPS}, "adaptive": ADAPTIVE,
               "model_params": {**TINY, "pooling": "meanmax"}}),
    "prosody": ("crops row + prosody channels (log-F0, voicing, loudness)",
                {"train": {"balance": "corpus_class", **CROPS}, "adaptive": ADAPTIVE, "frontend": {"prosody": True}}),
    "short": ("balanced row + short-utterance crops on 80 % of windows, SpecAugment, mixup, label smoothing "
              "(fixed standardisation: the adaptive row did not help)",
              {"train": {"balance": "corpus_class", **CROPS, "crop": 0.8}}),
    "tile": ("crops row + tiled padding: each window's sound span repeated to fill it, in training, "
             "inference and on the device (instead of silence around short utterances)",
             {"train": {"balance": "corpus_class", **CROPS}, "adaptive": ADAPTIVE, "tile": TILE}),
    "adaptive-tile": ("adaptive row + tiled padding (no crops, SpecAugment, mixup or label smoothing: tiling "
                      "alone for short utterances)",
                      {"train": {"balance": "corpus_class"}, "adaptive": ADAPTIVE, "tile": TILE}),
    "adaptive-tile-crops": ("adaptive-tile row + short-utterance crops (p 0.5, from 0.5 s; without the crops row's "
                           "SpecAugment, mixup and label smoothing: crops alone for the 1.0 s gap)",
                           {"train": {"balance": "corpus_class", **CROPS_ALONE}, "adaptive": ADAPTIVE, "tile": TILE}),
    "adaptive-tile-g70": ("adaptive-tile row with the voiced-frame gate of normalisation and tiling at the c0 of "
                          "white noise at -70 dBFS instead of -50 (speech frames have a lower c0 than white noise "
                          "of the same level: at -50 most of RAVDESS's speech counted as silence)",
                          {"train": {"balance": "corpus_class"}, "adaptive": ADAPTIVE_G70, "tile": TILE_G70}),
    "tile-g70": ("tile row with the gate at -70 dBFS (adaptive normalisation, crops, SpecAugment, mixup, label "
                 "smoothing and tiled padding)", {"train": {"balance": "corpus_class", **CROPS},
                                                  "adaptive": ADAPTIVE_G70, "tile": TILE_G70}),
    "adaptive-tile-g70-crops": ("adaptive-tile-g70 row + short-utterance crops (p 0.5, from 0.5 s; no SpecAugment, "
                                "mixup or label smoothing)",
                                {"train": {"balance": "corpus_class", **CROPS_ALONE}, "adaptive": ADAPTIVE_G70,
                                 "tile": TILE_G70}),
    "adaptive-tile-g70-short": ("adaptive-tile-g70-crops row with crops on 80 % of windows (its 1.0 s gap on "
                                "validation, -6.1, missed issue 15's 5 points)",
                                {"train": {"balance": "corpus_class", **CROPS_ALONE, "crop": 0.8},
                                 "adaptive": ADAPTIVE_G70, "tile": TILE_G70}),
    "adaptive-tile-g70-crops-avg": ("adaptive-tile-g70-crops row + weight averaging: the model validated and kept is "
                                    f"a moving average of the epoch-end weights (decay {AVERAGE} per epoch)",
                                    {"train": {"balance": "corpus_class", **CROPS_ALONE, "average": AVERAGE},
                                     "adaptive": ADAPTIVE_G70, "tile": TILE_G70}),
    "tile-g70-avg": (f"tile-g70 row + weight averaging (decay {AVERAGE} per epoch)",
                     {"train": {"balance": "corpus_class", **CROPS, "average": AVERAGE}, "adaptive": ADAPTIVE_G70,
                      "tile": TILE_G70}),
    "adaptive-tile-g70-short-avg": ("adaptive-tile-g70-short row (the default model's recipe) + weight averaging "
                                    f"(decay {AVERAGE} per epoch)",
                                    {"train": {"balance": "corpus_class", **CROPS_ALONE, "crop": 0.8,
                                               "average": AVERAGE}, "adaptive": ADAPTIVE_G70, "tile": TILE_G70}),
    "adaptive-tile-g70-crops-avg-distill": ("adaptive-tile-g70-crops-avg row + distillation from the ensemble of the "
                                            "three weight-averaged rows ("
                                            + ", ".join(t[1:] for t in DISTILL_AVG["teacher"])
                                            + f"; weight {DISTILL_AVG['weight']:g}, temperature "
                                              f"{DISTILL_AVG['temperature']:g})",
                                            {"train": {"balance": "corpus_class", **CROPS_ALONE, "average": AVERAGE,
                                                       "distill": DISTILL_AVG},
                                             "adaptive": ADAPTIVE_G70, "tile": TILE_G70}),
    "adaptive-tile-g70-crops-avg-egemaps": None,  # these: the row named before "-egemaps", distilled from
    "adaptive-tile-g70-short-avg-egemaps": None,  # the eGeMAPS SVM (_svm_distilled, below)
    "adaptive-tile-g70-crops-avg-egemaps-clip": None,
    "adaptive-tile-g70-crops-avg-meanmax": ("adaptive-tile-g70-crops-avg row + mean and max pooling over time (the "
                                            "model row's change on the best row)",
                                            {"train": {"balance": "corpus_class", **CROPS_ALONE, "average": AVERAGE},
                                             "adaptive": ADAPTIVE_G70, "tile": TILE_G70,
                                             "model_params": {**TINY, "pooling": "meanmax"}}),
    "adaptive-tile-g70-crops-avg-meanmax-egemaps-clip": None,  # the best two changes together (the order)
    "adaptive-tile-g70-crops-avg-egemaps-clip-t1": None,  # the teacher's own probabilities, not softened
    "adaptive-tile-g70-crops-avg-egemaps-clip-t1-w0.8": None,  # and weighted 0.8 against the corpus labels' 0.2
    "adaptive-tile-g70-crops-avg-compare-clip-t1": None,  # the pick's teacher on ComParE's 6,373 functionals
    "adaptive-tile-g70-crops-avg-tc2": ("adaptive-tile-g70-crops-avg row with adaptive statistics over 2 s of voiced "
                                        "audio instead of 20 s (each utterance standardised mostly on itself, as "
                                        "per-utterance mean and variance normalisation does)",
                                        {"train": {"balance": "corpus_class", **CROPS_ALONE, "average": AVERAGE},
                                         "adaptive": {**ADAPTIVE_G70, "time_constant": 2.0}, "tile": TILE_G70}),
    "adaptive-tile-g70-crops-avg-restart": ("adaptive-tile-g70-crops-avg row with half the training clips starting "
                                            "the adaptive statistics afresh, as `predict` does for every file (the "
                                            "others go on from their speaker's clip before, as on the device)",
                                            {"train": {"balance": "corpus_class", **CROPS_ALONE, "average": AVERAGE},
                                             "adaptive": {**ADAPTIVE_G70, "restart": 0.5}, "tile": TILE_G70}),
    "adaptive-tile-g70-crops-avg-restart1": ("adaptive-tile-g70-crops-avg-restart row with every training clip "
                                             "starting the statistics afresh (trained as `predict` scores files; "
                                             "validation and test still hear each speaker as one stream)",
                                             {"train": {"balance": "corpus_class", **CROPS_ALONE, "average": AVERAGE},
                                              "adaptive": {**ADAPTIVE_G70, "restart": 1.0}, "tile": TILE_G70}),
    "balanced-tile-g70": ("balanced-tile row with the tiling gate at -70 dBFS (white-noise calibrated; fixed "
                          "standardisation)", {"train": {"balance": "corpus_class"}, "tile": TILE_G70}),
    "balanced-tile-g70-crops-avg": ("adaptive-tile-g70-crops-avg row with fixed standardisation (balanced-tile-g70 + "
                                    "crops alone + weight averaging): what `predict` scores on a file given alone is "
                                    "what the run measures",
                                    {"train": {"balance": "corpus_class", **CROPS_ALONE, "average": AVERAGE},
                                     "tile": TILE_G70}),
    "balanced-tile-g70-short-avg": ("adaptive-tile-g70-short-avg row (the default model's recipe) with fixed "
                                    "standardisation: adaptive normalisation off, the rest alike",
                                    {"train": {"balance": "corpus_class", **CROPS_ALONE, "crop": 0.8,
                                               "average": AVERAGE}, "tile": TILE_G70}),
    "balanced-avg": (f"balanced row + weight averaging (decay {AVERAGE} per epoch; fixed standardisation: the "
                     "balanced row scores best per file, benchmarks/normalisation.py)",
                     {"train": {"balance": "corpus_class", "average": AVERAGE}}),
    "lstm": ("adaptive-tile row with an LSTM instead of `tiny` (128 units over pairs of frames, its states "
             "averaged over time; full-int8 UNIDIRECTIONAL_SEQUENCE_LSTM)",
             {"train": {"balance": "corpus_class"}, "adaptive": ADAPTIVE, "tile": TILE, "model": "lstm",
              "model_params": LSTM}),
    "tile-fixed": ("tile row with fixed standardisation (the balanced row + crops and tiled padding)",
                   {"train": {"balance": "corpus_class", **CROPS}, "tile": TILE}),
    "balanced-tile": ("balanced row + tiled padding (no crops: tiling alone for short utterances; fixed "
                      "standardisation)", {"train": {"balance": "corpus_class"}, "tile": TILE}),
    "tile-long": ("tile row trained longer (at most 50 epochs, patience 12: its best epochs were near the "
                  "30-epoch end)", {"train": {"balance": "corpus_class", **CROPS, "epochs": 50, "patience": 12},
                                    "adaptive": ADAPTIVE, "tile": TILE}),
    "tile-tc60": ("tile row with adaptive statistics over 60 s of voiced audio instead of 20 s (a steadier "
                  "estimate of the speaker's own statistics)",
                  {"train": {"balance": "corpus_class", **CROPS},
                   "adaptive": {**ADAPTIVE, "time_constant": 60.0}, "tile": TILE}),
    "tile-primed": ("tile-tc60 row with each speaker's stream heard once before it is scored, in training and "
                    "evaluation (the device has listened to its speaker before: what the baseline's per-speaker "
                    "column assumes)",
                    {"train": {"balance": "corpus_class", **CROPS},
                     "adaptive": {**ADAPTIVE, "time_constant": 60.0, "prime": True}, "tile": TILE}),
    "crops-seed1": ("the crops row again under seed 1 (other folds, initialisation and draws: the recipe's "
                    "run-to-run spread; never picked by the recipe)",
                    {"train": {"balance": "corpus_class", **CROPS, "seed": 1}, "adaptive": ADAPTIVE}),
    "tile-seed1": ("the tile row again under seed 1 (the spread of the default model's recipe; never picked by the "
                   "recipe)", {"train": {"balance": "corpus_class", **CROPS, "seed": 1}, "adaptive": ADAPTIVE,
                               "tile": TILE}),
}


def variant(row: str, **changes) -> dict:
    """Row ``row``'s run settings with ``changes``: ``train`` merged into its training settings, any other
    part replaced.

    >>> variant("adaptive-tile-g70-crops-avg", train={"seed": 1})["train"]["average"]
    0.7
    """
    spec = ROWS[row][1]
    train = {**spec.get("train", {}), **changes.pop("train", {})}
    return {**spec, "train": train, **changes}


def _svm_distilled(key: str, split: str = DEFAULT_TEACHER_SPLIT,
                   temperature: float = DISTILL_EGEMAPS["temperature"],
                   weight: float = DISTILL_EGEMAPS["weight"], feature_set: str = "egemaps") -> tuple[str, dict]:
    """Row ``key`` distilled from the eGeMAPS + RBF SVM baseline (:data:`DISTILL_EGEMAPS`; or from another set's
    classifier, ``feature_set``: ``tinyser.egemaps.FEATURE_SETS``), its out-of-fold labels holding out whole speakers or clips
    (``split``, ``tinyser.egemaps.teacher_proba``), softened at ``temperature`` and mixed into the targets at
    ``weight``; :data:`ROWS` names such rows by :data:`_SVM_KEY`.

    >>> ROWS["adaptive-tile-g70-crops-avg-egemaps-clip-t1"][1]["train"]["distill"]
    {'egemaps': 'speaker', 'weight': 0.5, 'temperature': 1.0, 'split': 'clip'}
    >>> ROWS["adaptive-tile-g70-crops-avg-egemaps-clip-t1-w0.8"][1]["train"]["distill"]["weight"]
    0.8
    >>> ROWS["adaptive-tile-g70-crops-avg-compare-clip-t1"][1]["train"]["distill"]["functionals"]
    'compare'
    """
    default = split == DEFAULT_TEACHER_SPLIT  # its config and label as before the split was an option
    distill = {**DISTILL_EGEMAPS, **({} if default else {"split": split}), "temperature": temperature,
               "weight": weight, **({} if feature_set == "egemaps" else {"functionals": feature_set})}
    model = "SVMs" if feature_set == "egemaps" else "models"
    held = ("" if default else f", held out by clip: each labelled by {model} that heard its speaker's other "
            f"training clips; held out by speaker, a TESS clip is labelled by {model} that heard at most the other "
            "of TESS's two speakers")
    return (f"{key} row + distillation from {FEATURE_SETS[feature_set].title} standardised per speaker (its "
            f"out-of-fold probabilities of each training clip{held}; weight {weight:g}, "
            f"temperature {temperature:g})", variant(key, train={"distill": distill}))


#: a distilled row's key: the row it distils into, the teacher's functionals ("-egemaps", "-compare"), then its
#: split, temperature and weight where they are not the defaults ("-clip", "-t1", "-w0.8")
_SVM_KEY = re.compile(r"(?P<base>.+?)-(?P<set>egemaps|compare)(?:-(?P<split>[a-z]+))?(?:-t(?P<t>[0-9.]+))?"
                      r"(?:-w(?P<w>[0-9.]+))?")
for _key in [k for k, row in ROWS.items() if row is None]:
    _m = _SVM_KEY.fullmatch(_key)
    ROWS[_key] = _svm_distilled(_m["base"], _m["split"] or DEFAULT_TEACHER_SPLIT,
                                float(_m["t"] or DISTILL_EGEMAPS["temperature"]),
                                float(_m["w"] or DISTILL_EGEMAPS["weight"]), _m["set"])
_T1 = "adaptive-tile-g70-crops-avg-egemaps-clip-t1"
ROWS[f"{_T1}-prosody"] = (f"{_T1} row + prosody channels (log-F0, voicing, loudness: on EMO-DB the distilled recipe "
                          "gains from them, protocols row emodb-tiny-egemaps-prosody)",
                          variant(_T1, frontend={"prosody": True}))


def fits(row: dict) -> bool:
    """Whether a row's model fits the Nano 33 BLE Sense limits (owned by tinyser.search)."""
    lim = BOARDS["nano33ble"]
    return (row["arena_bytes"] <= lim.arena_bytes and row["int8_bytes"] <= lim.model_bytes
            and row["macs_per_second"] <= lim.macs_per_second)


def frontend(extra: dict | None = None) -> dict:
    return get_config("cmsis_mfcc", **(extra or {})).to_dict()


def run_config(data: Path, spec: dict, protocol: str = PROTOCOL, runs: Path = Path("runs/ablation"),
               corpora: tuple[str, ...] = CORPORA, labels: str = LABELS) -> RunConfig:
    """A row's run settings (``spec``: "train", "model", "model_params", "frontend", "adaptive", "tile",
    "train_only", "speaker_balanced", "running_balance")."""
    train = {**BASE_TRAIN, **spec.get("train", {})}
    # a teacher "@name": a finished run beside this one (same protocol, folds and seed: checked)
    if train.get("distill", {}).get("teacher"):
        train["distill"] = {**train["distill"], "teacher": [str(runs / t[1:]) if t.startswith("@") else t
                                                            for t in train["distill"]["teacher"]]}
    train = TrainConfig(**train)
    return RunConfig(tuple(str(data / c) for c in corpora), model=spec.get("model", "tiny"),
                     model_params=spec.get("model_params", TINY), frontend=frontend(spec.get("frontend")),
                     segments=SEGMENTS, labels=labels, protocol=protocol, train=train,
                     adaptive=spec.get("adaptive"), tile=spec.get("tile"), train_only=spec.get("train_only", ()),
                     speaker_balanced=spec.get("speaker_balanced", False), running_balance=spec.get("running_balance"))


def cost(cfg: RunConfig, n_classes: int = 6) -> dict:
    """MACs per second of audio, int8 size and TFLite Micro arena of the row's model (untrained copy)."""
    from tinyser.models import build_model, count_macs
    from tinyser.tflite import convert, find_arena_size

    fe = cfg.frontend
    shape = (fe.n_frames(int(SEGMENTS["window"] * fe.sample_rate)), fe.n_features)
    m = build_model(cfg.model, shape, n_classes, **cfg.model_params)
    blob = convert(m, "int8", np.random.default_rng(0).standard_normal((32, *shape)).astype(np.float32))
    return {"macs_per_second": count_macs(m) / SEGMENTS["window"], "int8_bytes": len(blob),
            "arena_bytes": find_arena_size(blob)}


def row_settings(key: str):
    """Row ``key``'s run settings as ROWS has them now (None for a key no longer there), to tell a
    committed row whose recipe changed in place (``_report.committed``)."""
    return run_config(Path("."), ROWS[key][1]) if key in ROWS else None


def row_result(key: str, data: Path, runs: Path, train: bool) -> dict | None:
    label, spec = ROWS[key]
    cfg = run_config(data, spec, runs=runs)
    run = _report.finished_run(cfg, runs / key, train)
    return None if run is None else {"key": key, "label": label, **run, **cost(cfg), **val_scores(runs / key)}


def val_scores(run: Path, per_file: bool = True) -> dict:
    """Validation speakers' UA of a finished row on whole clips and on the same clips cut to
    their loudest 1.0 s (``benchmarks/lengths.py``, cached in the run folder), each speaker one stream,
    and the same with every clip its own stream (``_file``: as ``predict`` scores a file given alone;
    equal for fixed standardisation; left out when ``per_file`` is off)."""
    import lengths

    out = {}
    for suffix, alone in (("", False), ("_file", True))[:2 if per_file else 1]:
        val = lengths.run_scores(run, part="val", per_file=alone and lengths.adaptive(run))["rows"]
        out |= {f"val_whole{suffix}": val["whole"]["ua_mean_over_folds"],
                f"val_1s{suffix}": val["1.0"]["ua_mean_over_folds"]}
    return out


def recipe_may_pick(key: str) -> bool:
    """Whether ``recipes/default_model.py`` considers a row: not one distilled from other runs (its
    teachers would have to be trained again under every protocol; the eGeMAPS SVM teacher is trained
    inside each fold, so a row distilled from it alone is considered), nor a repeat under another seed
    (picking the luckier seed is the winner's curse), nor a primed one (its scores assume the device has
    already heard the speaker, which a file given to ``predict`` alone is not).

    >>> recipe_may_pick("adaptive-tile-g70-crops-avg-egemaps"), recipe_may_pick("adaptive-tile-g70-crops-avg-distill")
    (True, False)
    """
    spec = ROWS[key][1]
    return not (spec.get("train", {}).get("distill") or {}).get("teacher") and not seed_repeat(spec) and \
        not (spec.get("adaptive") or {}).get("prime")


def seed_repeat(spec: dict) -> bool:
    """Whether run settings ``spec`` repeat a recipe under another seed (never picked: the luckier seed is the
    winner's curse)."""
    return "seed" in spec.get("train", {})


def recipe_score(row: dict) -> float:
    """What ``recipes/default_model.py`` ranks rows by: the mean of the validation speakers' UA
    on whole clips and on the same clips cut to their loudest 1.0 s."""
    return (row["val_whole"] + row["val_1s"]) / 2


#: issue 15's goal, held on validation speakers when picking the recipe: UA at 1.0 s within
#: this many points of whole-clip UA
MAX_SHORT_GAP = 0.05


def short_gap_ok(row: dict) -> bool:
    """Whether a row's validation UA at 1.0 s is within :data:`MAX_SHORT_GAP` of whole clips."""
    return row["val_whole"] - row["val_1s"] <= MAX_SHORT_GAP + 1e-9


def recipe_pick(rows: dict[str, dict]) -> str | None:
    """The row ``recipes/default_model.py`` makes the default model from (``rows``: key -> its
    validation scores): the best recipe score among the rows it may pick whose short-utterance
    gap is within the goal on validation; when none is, the best recipe score among them all."""
    allowed = {k: r for k, r in rows.items() if recipe_may_pick(k)}
    short_ok = {k: r for k, r in allowed.items() if short_gap_ok(r)}
    pool = short_ok or allowed
    return max(pool, key=lambda k: recipe_score(pool[k])) if pool else None


def fixed_twin(key: str) -> str | None:
    """The row that is row ``key`` with adaptive normalisation off and everything else alike; None for a
    row with fixed statistics, or where :data:`ROWS` has no such row.

    >>> fixed_twin("adaptive-tile-g70-short-avg"), fixed_twin("balanced")
    ('balanced-tile-g70-short-avg', None)
    """
    spec = ROWS[key][1]
    if not spec.get("adaptive"):
        return None
    fixed = {k: v for k, v in spec.items() if k != "adaptive"}
    return next((k for k, (_, s) in ROWS.items() if s == fixed), None)


def both_ways(row: dict, adaptive: bool) -> tuple[dict, dict]:
    """A row's validation scores each speaker one stream (as a device that keeps listening hears it) and
    every clip alone (the ``_file`` ones: as ``predict`` scores a file given alone; the same under fixed
    statistics).

    >>> both_ways({"val_whole": 0.6, "val_1s": 0.5, "val_whole_file": 0.4, "val_1s_file": 0.3}, True)[1]
    {'val_whole': 0.4, 'val_1s': 0.3}
    """
    if not adaptive:
        return row, row
    if "val_whole_file" not in row:
        raise ValueError("an adaptive recipe's validation scores lack the per-file ones (val_whole_file): "
                         "its run must be on this machine")
    return row, {f: row[f"{f}_file"] for f in ("val_whole", "val_1s")}


def normalisation_pick(pick: str, rows: dict[str, dict]) -> str:
    """Adaptive normalisation on or off for the recipe ``pick`` (issue 10: measure it on and off, keep what
    helps), decided on validation speakers scored both ways the default model is used (:func:`both_ways`):
    ``listen`` and the device hear each speaker as one stream, ``predict`` scores a file given alone.
    ``rows`` holds the validation scores of ``pick`` and of its :func:`fixed_twin`. The one kept meets the
    short-utterance goal both ways where either does, and has the higher mean recipe score over the two
    ways; the pick on a tie, and where it has no twin."""
    twin = fixed_twin(pick)
    if twin is None or twin not in rows:
        return pick
    ways = {k: both_ways(rows[k], k == pick) for k in (pick, twin)}
    pool = [k for k in ways if all(short_gap_ok(w) for w in ways[k])] or list(ways)
    return max(pool, key=lambda k: use_score(ways[k]))


def use_score(ways: tuple[dict, ...]) -> float:
    """The mean recipe score of a row's :func:`both_ways`."""
    return sum(recipe_score(w) for w in ways) / len(ways)


def markdown(rows: list[dict], data: Path, loco: list[dict] = (), shipped: list[dict] = ()) -> str:
    """The section (``rows``: one per row key, None where not finished; ``loco``: :func:`loco_rows`;
    ``shipped``: :func:`shipped_rows`)."""
    lines = ["## Ablation: what each step of the recipe is worth (`benchmarks/ablation.py`)", "",
             f"Reproduce: `python benchmarks/ablation.py --data {data}` on {_report.machine()}. Data: EMO-DB, "
             "RAVDESS actors 1-20, TESS, SAVEE (36 speakers) under `common6`; protocol speaker:5 (speaker-independent; "
             "the best epoch is chosen on validation speakers carved from each fold's training part, never on the "
             "test fold); `cmsis_mfcc` features, 2 s windows, clips scored as the mean of their windows. Model `tiny` "
             f"(width {TINY['width']}, time pooled first); up to {BASE_TRAIN['epochs']} epochs, patience "
             f"{BASE_TRAIN['patience']}. Sizes and arenas: full-int8 flatbuffer in the TFLite Micro interpreter. "
             "Each row adds one step to the row above up to the augmentation row; the later rows each name the row they change. Every epoch draws 2,400 windows (balanced sampling); wall times were measured while other jobs shared the two cores. Mean ± std over folds; by corpus: UA of the test clips pooled over the five folds.", "",
             "| step | UA % | WA % | macro-F1 % | test UA % by corpus (" + " / ".join(CORPORA_SHOWN) + ") | val UA % | "
             "recipe score (val: whole / 1.0 s) | val UA % per file (whole / 1.0 s) | best epoch / run | MACs / s audio | "
             "int8 model | TFLM arena | wall |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---|---:|---:|---:|---:|"]
    for r in rows:
        if r is None:
            continue
        be = ", ".join(f"{b}/{e}" for b, e in zip(r["best_epochs"], r["epochs_run"]))
        lines.append(f"| {r['label']}{_report.mark(r)} | {100 * r['ua']:.1f} ± {100 * r['ua_std']:.1f} | "
                     f"{100 * r['wa']:.1f} ± {100 * r['wa_std']:.1f} | {100 * r['f1']:.1f} ± {100 * r['f1_std']:.1f} | "
                     + " / ".join(f"{100 * r['per_corpus'][c]:.1f}" for c in CORPORA_SHOWN) + " | "
                     f"{100 * r['val_ua']:.1f} | {100 * recipe_score(r):.1f} ({100 * r['val_whole']:.1f} / "
                     f"{100 * r['val_1s']:.1f}) | {_per_file(r)} | {be} | {r['macs_per_second'] / 1e6:.1f} M | "
                     f"{r['int8_bytes'] / 1024:.1f} KB | {r['arena_bytes'] / 1024:.1f} KB | {r['wall_s'] / 60:.0f} min |")
    lines.append(f"| baseline: openSMILE eGeMAPS v02 + RBF SVM, global / per-speaker standardisation | "
                 f"{_report.baseline('four-corpora')} | | | | | | | | | | | |")
    done = [r for r in rows if r is not None]
    pick_key = recipe_pick({r["key"]: r for r in done})
    if pick_key is not None:
        pick = next(r for r in done if r["key"] == pick_key)
        lines += ["", "`recipes/default_model.py` picks the row with the highest recipe score among those whose "
                  f"validation UA at 1.0 s is within {100 * MAX_SHORT_GAP:.0f} points of whole clips (issue 15's "
                  "goal, held on validation speakers; rows distilled from other runs, seed repeats and primed rows "
                  "excluded, "
                  "`recipe_pick`): "
                  f"**{pick['key']}** ({100 * recipe_score(pick):.1f}"
                  + ("" if short_gap_ok(pick) else "; no row meets the gap on validation, so the best score") + "). "
                  + _shipped_note(pick["key"]) + _on_off_note(pick["key"])]
    if done:
        best = max(done, key=lambda r: r["ua"])

        def versus(r: dict) -> str:
            return (f"{100 * r['ua']:.1f} ({r['key']}{_report.mark(r)}), gap {100 * r['ua'] - 65:+.1f} points "
                    f"({'met' if r['ua'] >= 0.65 else 'not met'})")
        said = ([f"the recipe's pick (on validation) {versus(pick)}"] if pick_key is not None else []) + \
            ([] if pick_key == best["key"] else [f"best row on test (chosen on the test folds, so it flatters) "
                                                 f"{versus(best)}"]) + \
            [f"the shipped default model's recipe cross-validated in its shape {versus(r)}" for r in shipped]
        lines += ["", "Goals (benchmark goals, not tests; the same goals with each test speaker's predictions "
                  "balanced over the classes, the baseline's per-speaker assumption: `benchmarks/balance.py`):", "",
                  f"- Four corpora `common6` speaker:5 UA ≥ 65: {'; '.join(said)}; the eGeMAPS + SVM baseline: "
                  f"{_report.baseline('four-corpora')} (`benchmarks/baseline.py`)."]
        for r in done:
            if not fits(r):
                lines.append(f"- Row {r['key']} does not fit the budget (64 KB arena, 128 KB model, 8 M MACs/s).")
        lines.append("- Every row's `tiny` fits ≤ 64 KB TFLite Micro arena, ≤ 128 KB int8 model, ≤ 8 M MACs per "
                     "second of audio." if all(fits(r) for r in done) else "")
    if loco:
        lines += ["", "### Leave one corpus out (protocol `corpus`)", "",
                  "Trained on three corpora (validation speakers carved from them), tested on the fourth; "
                  f"the row's recipe (`python benchmarks/ablation.py --data {data} --rows '' --loco "
                  f"{','.join(r['key'] for r in loco if loco_target(r['key']))}`: a row's name, then the searched "
                  "shape's where the name says one; `recipes/default_model.py` runs its pick's the same way). "
                  f"Baseline eGeMAPS + SVM mean: {_report.baseline('four-corpora-loco')} "
                  "(global / per-corpus standardisation; `benchmarks/baseline.py`); goal: mean ≥ 40. With adaptive standardisation each "
                  "test speaker is one stream, as a device that keeps listening hears it; \"mean per file\" starts the "
                  "statistics afresh for every test clip, as `predict` scores a file given alone "
                  "(`benchmarks/normalisation.py`'s per-file scoring), and \"mean one stream\" hears all the "
                  "left-out corpus's clips as one stream, in a random order whoever speaks, as `predict "
                  "--one-stream` scores a batch of files from one source (both the same as the mean under fixed "
                  "standardisation).", "",
                  "| recipe | " + " | ".join(loco[0]["ua"]) + " | mean | mean per file | mean one stream |",
                  "|---|" + "---:|" * (len(loco[0]["ua"]) + 3)]
        for r in loco:
            mean = float(np.mean(list(r["ua"].values())))
            lines.append(f"| {r['key']}{_report.mark(r)} | " + " | ".join(f"{100 * v:.1f}" for v in r["ua"].values())
                         + f" | {100 * mean:.1f} ({'met' if mean >= 0.4 else f'gap {100 * mean - 40:+.1f}'}) | "
                         + " | ".join(_loco_mean(r, mean, field) for field in LOCO_SCORING) + " |")
        mine = next((r for r in loco if f"corpus-{r['key']}" == shipped_run("corpus")), None)
        if mine is not None:
            mean = float(np.mean(list(mine["ua"].values())))
            lines += ["", f"Goal, mean ≥ 40, for the shipped default model's recipe (`{mine['key']}`{_report.mark(mine)}): "
                      f"{100 * mean:.1f}, "
                      + ("met." if mean >= 0.4 else f"gap {100 * mean - 40:+.1f} points (not met).")]
    lines += _report.carried_note([*done, *loco])
    missing = [ROWS[k][0] for k, r in zip(ROWS, rows) if r is None]
    if missing:
        lines += ["", "Not yet trained (resume with the command above): " + "; ".join(missing) + "."]
        if rows[list(ROWS).index("balanced")] is None:
            lines.append("Until the balanced row is trained, the step to the adaptive row adds both the (corpus, class) "
                         "balance and the adaptive normalisation.")
    return "\n".join(lines)


def shipped_run(kind: str) -> str:
    """The run folder name of the shipped default model's recipe (docs/default_model.json: its recipe and shape)
    cross-validated (``kind`` "cv") or left one corpus out ("corpus"), as ``recipes/default_model.py`` names it."""
    choice = json.loads((_report.DOCS / "default_model.json").read_text())
    return f"{kind}-{choice['chosen']}-{choice['shape']}"


def shipped_rows(default_runs: Path) -> list[dict]:
    """The shipped default model's recipe cross-validated in its shape over the four corpora (speaker:5, the
    card's protocol; ``DEFAULT_RUNS/cv-...``): ``key``, ``ua``, ``ua_std``; from the committed JSON
    while the run is not on this machine; none where neither has it."""
    key = shipped_run("cv")
    run = default_runs / key
    if (run / "report.json").exists():
        report = load_report(run)
        return [{"key": key, "ua": report["ua"], "ua_std": report["ua_std"]}]
    return [r for r in _report.committed("ablation", "shipped", "key").values() if r["key"] == key]


def _shipped_note(pick: str) -> str:
    """Where the shipped default model's row (docs/model-card.md) stands against the rows' ``pick``."""
    card = (_report.DOCS / "model-card.md").read_text()
    found = re.search(r"ablation row `([\w-]+)`", card)
    shipped = found.group(1) if found else None
    found = re.search(r"The rows' pick was `([\w-]+)`", card)
    rows_pick = found.group(1) if found else None  # the pick when the model was made, where a shape chose again
    note = f"The shipped default model comes from row `{shipped or '?'}` (docs/model-card.md)"
    if shipped == pick:
        return note + "."
    if rows_pick == pick:
        return note + (": in the shipped shape the recipe chose again among the recipes cross-validated there, by "
                       "the same rule on validation.")
    if shipped and rows_pick and in_shape_choice(pick) == shipped:
        return note + (": in the shipped shape the recipe chooses again among the recipes cross-validated there "
                       "(docs/default_model.json), by the same rule on validation, and with this pick it still "
                       f"chooses that recipe (the card names the rows' earlier pick, `{rows_pick}`).")
    return note + "; it has not been re-made since the pick changed."


def in_shape_choice(pick: str) -> str | None:
    """What ``recipes/default_model.py`` would choose in the shipped shape given the rows' ``pick``, from the
    committed scores it compared there (docs/default_model.json; its cv runs on this machine aside), adaptive
    normalisation on or off (:func:`normalisation_pick`) where the twin was compared too; None when the pick
    was not cross-validated there."""
    _, val, first = _in_shape_first(pick)
    if first is None:
        return None
    try:
        return normalisation_pick(first, val)
    except ValueError:  # the twin's scores without the adaptive recipe's per-file ones: on / off not decided
        return first


def _recipe():
    """The recipe module (it owns the in-shape comparison and the leave-one-corpus-out runs) and the searched
    shape (None where it is the rows')."""
    import contextlib
    import io

    recipes = str(Path(__file__).resolve().parents[1] / "recipes")
    if recipes not in sys.path:
        sys.path.insert(0, recipes)
    import default_model

    with contextlib.redirect_stdout(io.StringIO()):  # it says which shape it read; the table need not
        return default_model, default_model.shape(Path("runs/search"))


def _in_shape_first(pick: str):
    """The recipe module, the validation scores it committed in the shipped shape (docs/default_model.json;
    none where no searched shape differs from the rows') and the recipe it chooses there first, before
    weighing adaptive normalisation, given the rows' ``pick`` (None when ``pick`` was not compared there)."""
    default_model, c = _recipe()
    val = {} if c is None else default_model.committed_in_shape(c)
    first = recipe_pick({k: v for k, v in val.items() if k in (pick, *default_model.SHAPE_RECIPES)}) \
        if pick in val else None
    return default_model, val, first


def loco_settings(key: str):
    """The run settings a leave-one-corpus-out entry would have now, for ``_report.committed``'s stale check
    (``key``: a row, or ``ROW-SHAPE`` in the searched shape as ``recipes/default_model.py`` names it; None
    where it names neither).

    >>> loco_settings("balanced").protocol, loco_settings("no-such-row") is None
    ('corpus', True)
    """
    found = loco_target(key)
    return None if found is None else _recipe()[0].row_config(Path("."), found[0], "corpus", found[1])


def loco_target(key: str):
    """The row and shape a leave-one-corpus-out entry's name says (``ROW``: the rows' shape, None;
    ``ROW-SHAPE``: the searched shape), or None where it names neither.

    >>> loco_target("balanced"), loco_target("balanced-w9")
    (('balanced', None), None)
    """
    default_model, c = _recipe()
    for row in ROWS:
        if key == row:
            return row, None
        if c is not None and key == f"{row}-{c.name}":
            return row, c
    return None


def _on_off_note(rows_pick: str) -> str:
    """The shipped shape's comparison of adaptive normalisation on and off (docs/default_model.json) where the
    recipe, given the rows' pick ``rows_pick``, chooses the recipe it was made for there; "" otherwise."""
    default_model, val, first = _in_shape_first(rows_pick)
    pick = json.loads(default_model.CHOICE.read_text()).get("adaptive_pick") if default_model.CHOICE.exists() else None
    twin = fixed_twin(pick) if pick in ROWS else None
    if first is None or first != pick or twin not in val or "val_whole_file" not in val[pick]:
        return ""
    return " In the shipped shape, " + default_model.on_off_sentence({k: val[k] for k in (pick, twin)}, pick)


def _per_file(row: dict) -> str:
    """A row's validation UA with every clip its own stream, whole / 1.0 s: its speaker-stream UA under fixed
    standardisation; "–" for an adaptive row carried over from before the column."""
    suffix = "" if row["config"].get("adaptive") is None else "_file"
    if f"val_whole{suffix}" not in row:
        return "–"
    return f"{100 * row[f'val_whole{suffix}']:.1f} / {100 * row[f'val_1s{suffix}']:.1f}"


def _loco_mean(row: dict, mean: float, field: str) -> str:
    """A leave-one-corpus-out row's mean UA scored as :data:`LOCO_SCORING` ``field`` says: ``mean`` (as
    evaluated) under fixed standardisation, "–" for an adaptive row where not measured."""
    if field in row:
        return f"{100 * float(np.mean(list(row[field].values()))):.1f}"
    fixed = row.get("adaptive") is False or (row["key"] in ROWS and ROWS[row["key"]][1].get("adaptive") is None)
    return f"{100 * mean:.1f}" if fixed else "–"


#: how a leave-one-corpus-out row's test clips are scored besides as evaluated: its field -> the
#: variant of ``benchmarks/normalisation.py``
LOCO_SCORING = {"ua_file": "per file", "ua_one": "one stream"}


def loco_rows(default_runs: Path) -> list[dict]:
    """Finished leave-one-corpus-out runs of the recipe (``DEFAULT_RUNS/corpus-<row>``), by name, with
    the committed ones whose runs are not on this machine (``_report.committed``)."""
    import lengths
    import normalisation

    out = _report.committed("ablation", "loco", "key", lambda r: loco_settings(r["key"]))
    for run in sorted(default_runs.glob("corpus-*")):
        if (run / "report.json").exists():
            key = run.name[len("corpus-"):]
            out[key] = {"key": key, "run": str(run), "ua": _report.loco_ua(load_report(run)),
                        "adaptive": lengths.adaptive(run), "config": json.loads((run / "config.json").read_text())}
            if out[key]["adaptive"]:  # each test clip its own stream, as `predict` hears a file given alone,
                ua = normalisation.run_scores(run)["ua"]  # and the left-out corpus one stream (--one-stream)
                for field, variant in LOCO_SCORING.items():  # folds in the report's order
                    out[key][field] = dict(zip(out[key]["ua"], ua[variant]["folds"]))
    return [out[k] for k in sorted(out)]


def _loco_arguments(ap) -> None:
    ap.add_argument("--loco", default="", help="rows to train under leave-one-corpus-out too, comma-separated: "
                                               "ROW in the rows' shape, ROW-SHAPE in the searched one (into "
                                               "RUNS/../default/corpus-NAME, where recipes/default_model.py keeps "
                                               "them)")


def _train_loco(args) -> None:
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "recipes"))
    import default_model  # the recipe owns the leave-one-corpus-out runs

    for key in (k.strip() for k in args.loco.split(",") if k.strip()):
        found = loco_target(key)
        if found is None:
            raise SystemExit(f"unknown row {key}; choose from {', '.join(ROWS)} (or ROW-SHAPE in the searched shape)")
        row, shape = found
        default_model.corpus_run(row, args.data, args.runs.parent / "default", shape, committed=False)  # asked: train


def main() -> None:
    _report.train_and_tabulate("ablation", __doc__, list(ROWS), row_result, markdown, "runs/ablation",
                               more=(_loco_arguments, _train_loco), settings=row_settings,
                               extra=lambda args: {"loco": loco_rows(args.runs.parent / "default"),
                                                   "shipped": shipped_rows(args.runs.parent / "default")})

if __name__ == "__main__":
    main()
