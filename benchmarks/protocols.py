"""The default model's recipe under the field's other honest protocols (issue 10).

    python benchmarks/protocols.py [--data ../shared/data] [--runs runs/protocols] [--only a,b,...] [--table-only]

One corpus or set of corpora per row, trained from scratch with the recipe of an
ablation row (``benchmarks/ablation.py``: ``crops``, or ``tile``, ``adaptive-tile`` or
``balanced`` where the row says so; ``tile`` is the shipped default model's):
original EMO-DB 7 classes leave-one-speaker-out
(`tiny`, `tiny` with prosody channels, and `light_sernet` under the same recipe),
RAVDESS actors 1-20 8 classes speaker:5, and the setups of the papers this
project grew from (RAVDESS + TESS + SAVEE, `4class` and `valence3`) under their
random split (``random:5``, clips of one speaker on both sides) and
speaker-independently (``speaker:5``) side by side. The best epoch is always
chosen on validation data carved from the training part (speakers, or clips for
``random:5``). Runs are resumable folders under --runs. Writes
docs/protocols.json and the protocols section of docs/results.md.
"""
from __future__ import annotations

import re
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
import _report  # noqa: E402
import ablation  # noqa: E402

from tinyser.metrics import DEFAULT_BALANCE_CLIPS  # noqa: E402

_spec = ablation.variant  # a row's run settings with changes


#: name -> (corpora, labels, protocol, recipe spec, recipe label, reference); "@SETUP" in a reference is the
#: eGeMAPS + SVM baseline measured on that setup of benchmarks/baseline.py ("@" alone: the one of this name)
#: epochs and windows per epoch are scaled to each training set on 2 cores
_EMODB = {"epochs": 25, "patience": 8, "epoch_size": 1000}
_RTS = {"epochs": 15, "patience": 6, "epoch_size": 1600}
_W08 = {**ablation.DISTILL_EGEMAPS, "weight": 0.8}
_EMODB40 = {**_EMODB, "epochs": 40, "patience": 12}  # the longer schedule
_LIGHT_SERNET = {"model": "light_sernet", "model_params": {}}  # at its own defaults, beside `tiny`
_REFIT = ("refit (validation chooses the epoch count as in that row; then a fresh model trains on the training "
          "and validation speakers together for that many epochs of the same schedule, and it is the one tested)")


def _egemaps_prosody(train: dict, **changes) -> dict:
    """The eGeMAPS-distilled recipe with prosody channels, training ``train`` (EMO-DB's best `tiny` rows')."""
    return _spec("adaptive-tile-g70-crops-avg-egemaps", train=train, frontend={"prosody": True}, **changes)


def _and_teacher(*setups: str) -> dict:
    """Training settings distilling from the eGeMAPS SVM and the fold models of protocols rows ``setups`` together."""
    return {"distill": {**ablation.DISTILL_EGEMAPS, "teacher": [f"@{s}" for s in setups]}}


def _emodb40(what: str, **train) -> tuple:
    """An EMO-DB setup: `tiny`'s 40-epoch prosody recipe (row emodb-tiny-egemaps-prosody-e40) with the training
    changes ``train``, which ``what`` says in the table."""
    return (("emodb",), "native", "speaker", _egemaps_prosody({**_EMODB40, **train}),
            f"`tiny` + prosody channels, 40-epoch eGeMAPS-distilled recipe (row emodb-tiny-egemaps-prosody-e40) {what}",
            "@emodb")


def _emodb40_again(row: str, seed: int, **train) -> tuple:
    """Setup ``row`` (a 40-epoch EMO-DB variant with the training changes ``train``) again under ``seed``."""
    return (("emodb",), "native", "speaker", _egemaps_prosody({**_EMODB40, **train, "seed": seed}),
            f"`tiny` row {row} again under seed {seed} (its run-to-run spread)", "@emodb")


def _train_changed(setup: tuple, label: str, **train) -> tuple:
    """Protocols setup ``setup`` with the training changes ``train`` and the recipe label ``label``."""
    corpora, labels, protocol, spec, _, ref = setup
    return corpora, labels, protocol, {**spec, "train": {**spec["train"], **train}}, label, ref


def ensemble_rows(key: str, setups: dict[str, tuple], splits=(0, 1, 2)) -> dict[str, tuple]:
    """Rows distilling setup ``key`` from the ensemble of itself under three seeds on one seed's folds and
    validation speakers (``split_seed``), for each seed S in ``splits``: the two members made for it,
    ``ROW-initJ`` under the first two seeds of 0, 1, 2 other than S (``ROW`` is ``key`` under S, ``KEY-seedS``,
    already among ``setups``; the third member), and the student ``KEY-ens[-seedS]``, under S itself, distilled
    from the three and the recipe's own teachers (the SVM).

    >>> base = (("c",), "native", "speaker", {"train": {"distill": {"egemaps": "speaker"}}}, "r", "@")
    >>> rows = ensemble_rows("k", {"k": base}, splits=(0,))
    >>> list(rows), rows["k-init2"][3]["train"], rows["k-ens"][3]["train"]["distill"]["teacher"]
    (['k-init1', 'k-init2', 'k-ens'], {'distill': {'egemaps': 'speaker'}, 'seed': 2, 'split_seed': 0}, ['@k', '@k-init1', '@k-init2'])
    >>> ensemble_rows("k", {"k-seed3": base}, splits=(3,))["k-ens-seed3"][3]["train"]["distill"]["teacher"]
    ['@k-seed3-init0', '@k-seed3-init1', '@k-seed3']
    """
    rows = {}
    for split in splits:
        row, student = (f"{key}-seed{split}", f"{key}-ens-seed{split}") if split else (key, f"{key}-ens")
        seeds = sorted([split, *[s for s in range(3) if s != split][:2]])
        members = [row if seed == split else f"{row}-init{seed}" for seed in seeds]
        for seed, member in zip(seeds, members):
            if member != row:
                rows[member] = _on_its_folds(setups[row], row, seed, split, f"a teacher of row {student}")
        distill = {**setups[row][3]["train"]["distill"], "teacher": [f"@{m}" for m in members]}
        rows[student] = _train_changed(
            setups[row], (f"`tiny` row {row} distilled from the ensemble of its fold models under seeds "
                          f"{seeds[0]}, {seeds[1]} and {seeds[2]} "
                          f"on its folds (rows {', '.join(m for m in members if m != row)} beside it: no teacher "
                          "saw a fold's test or validation speakers)"
                          + (" and the eGeMAPS SVM" if "egemaps" in distill else "")
                          + (f" (row {key}-ens again under seed {split}: its run-to-run spread)" if split else "")),
            distill=distill)
    return rows


def _on_its_folds(setup: tuple, row: str, seed: int, split: int, why: str) -> tuple:
    """Setup ``setup`` (row ``row``) again under ``seed`` on the folds and validation speakers of split seed
    ``split``, which ``why`` says the table needs (row ``ROW-initN``)."""
    return _train_changed(setup, f"`tiny` row {row} again under seed {seed}, its folds and validation speakers the "
                                 f"same (split seed {split}): {why}", seed=seed, split_seed=split)


def _inits(setup: tuple, row: str, seeds, why: str) -> dict[str, tuple]:
    """Row ``row`` (setup ``setup``) again under each of ``seeds`` on its own folds (split seed 0): ``ROW-initN``."""
    return {f"{row}-init{seed}": _on_its_folds(setup, row, seed, 0, why) for seed in seeds}


def patient_students(key: str, setups: dict[str, tuple], epochs: int, patience: int, splits=(0, 1, 2),
                     weight: float = 0.8) -> dict[str, tuple]:
    """For each split's student of :func:`ensemble_rows` (``KEY-ens[-seedS]``, already among ``setups``), the
    same student with the same teachers distilled patiently, ``KEY-ens-long[-seedS]``: the teachers weighted
    ``weight`` against the corpus labels, at most ``epochs`` epochs with ``patience``.

    >>> base = (("c",), "native", "speaker", {"train": {"distill": {"teacher": ["@k"], "weight": 0.5}}}, "r", "@")
    >>> rows = patient_students("k", {"k-ens-seed1": base}, 60, 20, splits=(1,))
    >>> list(rows), rows["k-ens-long-seed1"][3]["train"]
    (['k-ens-long-seed1'], {'distill': {'teacher': ['@k'], 'weight': 0.8}, 'epochs': 60, 'patience': 20})
    """
    rows = {}
    for split in splits:
        student, name = (f"{key}-ens-seed{split}", f"{key}-ens-long-seed{split}") if split else \
            (f"{key}-ens", f"{key}-ens-long")
        rows[name] = _patiently(setups[student], f"`tiny` row {student} (the same teachers) distilled patiently: the "
                                f"teachers weighted {weight} against the corpus labels' {1 - weight:.1f}, at most "
                                f"{epochs} epochs, patience {patience} (a student matches its teachers better on a "
                                "longer schedule: Beyer et al., CVPR 2022)", epochs, patience, weight)
    return rows


def _patiently(setup: tuple, label: str, epochs: int, patience: int, weight: float) -> tuple:
    """Distilling setup ``setup`` with its teachers weighted ``weight``, at most ``epochs`` epochs, ``patience``."""
    return _train_changed(setup, label, epochs=epochs, patience=patience,
                          distill={**setup[3]["train"]["distill"], "weight": weight})


#: how a ``KEY-SUFFIX`` row of :func:`balanced_rows` scores validation (the epoch choice) and test: SUFFIX ->
#: (its run settings, what the row's label says)
BALANCINGS = {
    "bal": ({"speaker_balanced": True}, "each speaker's predictions balanced over the classes (the baseline's "
                                        "per-speaker assumption"),
    "rbal": ({"running_balance": DEFAULT_BALANCE_CLIPS},
             "each speaker's predictions balanced over the classes as its stream is heard (the same assumption "
             "made causally, as a device can: `tinyser.metrics.RunningBalance`, time constant "
             f"{DEFAULT_BALANCE_CLIPS:g} clips"),
}


def balanced_rows(keys: dict[str, tuple[int, ...]], setups: dict[str, tuple], suffix: str,
                  splits: dict[str, tuple[int, ...]] | None = None) -> dict[str, tuple]:
    """For each setup ``key`` (among ``setups``), ``KEY-SUFFIX``: the same recipe with validation (the epoch choice)
    and test scored balanced as :data:`BALANCINGS` ``suffix`` says (``benchmarks/balance.py``),
    ``KEY-SUFFIX-initN`` again under each seed N of ``keys[key]`` on its folds, and ``KEY-SUFFIX-seedS`` under
    each seed S of ``splits[key]`` (its own validation speakers and draws).

    >>> base = (("c",), "native", "speaker", {"train": {}}, "r", "@")
    >>> rows = balanced_rows({"k": (1,)}, {"k": base}, "bal")
    >>> list(rows), rows["k-bal"][3]["speaker_balanced"], rows["k-bal-init1"][3]["train"]
    (['k-bal', 'k-bal-init1'], True, {'seed': 1, 'split_seed': 0})
    >>> rows = balanced_rows({"k": ()}, {"k": base}, "rbal", {"k": (1,)})
    >>> rows["k-rbal"][3]["running_balance"], rows["k-rbal-seed1"][3]["train"], rows["k-rbal-seed1"][3]["running_balance"]
    (50.0, {'seed': 1}, 50.0)
    """
    setting, said = BALANCINGS[suffix]
    rows = {}
    for key, seeds in keys.items():
        corpora, labels, protocol, spec, _, ref = setups[key]
        rows[f"{key}-{suffix}"] = (corpora, labels, protocol, {**spec, **setting},
                                   f"`tiny` row {key} with validation (the epoch choice) and test scored with {said}; "
                                   "not on the goal lines below: `benchmarks/balance.py`)", ref)
        rows.update(_inits(rows[f"{key}-{suffix}"], f"{key}-{suffix}", seeds, "its run-to-run spread"))
        rows.update({f"{key}-{suffix}-seed{seed}": _train_changed(
            rows[f"{key}-{suffix}"], f"`tiny` row {key}-{suffix} again under seed {seed} (other validation speakers "
            "and draws: its run-to-run spread)", seed=seed) for seed in (splits or {}).get(key, ())})
    return rows


SETUPS: dict[str, tuple] = {
    "emodb-tiny": (("emodb",), "native", "speaker", _spec("crops", train=_EMODB), "`tiny`, crops recipe",
                   "@emodb"),
    "ravdess-tiny": (("ravdess",), "native", "speaker:5", _spec("crops", train={"epoch_size": 1200}),
                     "`tiny`, crops recipe", "@ravdess"),
    "rts-4class-speaker": (("ravdess", "tess", "savee"), "4class", "speaker:5", _spec("crops", train=_RTS),
                           "`tiny`, crops recipe", "published 72.9 % accuracy (random split); @"),
    "rts-4class-random": (("ravdess", "tess", "savee"), "4class", "random:5", _spec("crops", train=_RTS),
                          "`tiny`, crops recipe", "published 72.9 % accuracy (random split); @"),
    "rts-valence3-speaker": (("ravdess", "tess", "savee"), "valence3", "speaker:5", _spec("crops", train=_RTS),
                             "`tiny`, crops recipe", "published 76.2 % accuracy (random split); @"),
    "rts-valence3-random": (("ravdess", "tess", "savee"), "valence3", "random:5", _spec("crops", train=_RTS),
                            "`tiny`, crops recipe", "published 76.2 % accuracy (random split); @"),
    "emodb-light_sernet": (("emodb",), "native", "speaker",
                           _spec("crops", train={**_EMODB, "epochs": 12, "patience": 5}, **_LIGHT_SERNET),
                           "`light_sernet`, crops recipe (at most 12 epochs, patience 5, for time; `tiny` 25 / 8)",
                           "@emodb"),
    "emodb-tiny-prosody": (("emodb",), "native", "speaker",
                           _spec("crops", train=_EMODB, frontend={"prosody": True}),
                           "`tiny` + prosody channels, crops recipe", "@emodb"),
    "emodb-tiny-distill": (("emodb",), "native", "speaker",
                           _spec("crops", train={**_EMODB, "distill": {**ablation.DISTILL,
                                                                       "teacher": ["@emodb-tiny",
                                                                                   "@emodb-light_sernet"]}}),
                           "`tiny`, crops recipe + distillation from the ensemble of the `tiny` and `light_sernet` "
                           "rows above (same folds: no teacher saw a fold's test speakers)",
                           "@emodb"),
    "emodb-tiny-tile": (("emodb",), "native", "speaker", _spec("tile", train=_EMODB),
                        "`tiny`, tile recipe (crops + tiled padding)", "@emodb"),
    "ravdess-tiny-tile": (("ravdess",), "native", "speaker:5", _spec("tile", train={"epoch_size": 1200}),
                          "`tiny`, tile recipe (crops + tiled padding)", "@ravdess"),
    "emodb-tiny-adaptive-tile": (("emodb",), "native", "speaker", _spec("adaptive-tile", train=_EMODB),
                                 "`tiny`, adaptive-tile recipe (adaptive normalisation + tiled padding, no crops)",
                                 "@emodb"),
    "ravdess-tiny-adaptive-tile": (("ravdess",), "native", "speaker:5",
                                   _spec("adaptive-tile", train={"epoch_size": 1200}),
                                   "`tiny`, adaptive-tile recipe (adaptive normalisation + tiled padding, no crops)",
                                   "@ravdess"),
    "emodb-tiny-balanced": (("emodb",), "native", "speaker", _spec("balanced", train=_EMODB),
                            "`tiny`, balanced recipe (fixed standardisation, no crops, SpecAugment, mixup or tiling: "
                            "the best four-corpora row on test)", "@emodb"),
    "emodb-tiny-tile-g70": (("emodb",), "native", "speaker", _spec("tile-g70", train=_EMODB),
                            "`tiny`, tile recipe with the voiced-frame gate at -70 dBFS", "@emodb"),
    "ravdess-tiny-tile-g70": (("ravdess",), "native", "speaker:5", _spec("tile-g70", train={"epoch_size": 1200}),
                              "`tiny`, tile recipe with the voiced-frame gate at -70 dBFS", "@ravdess"),
    "emodb-tiny-adaptive-tile-g70-crops-avg": (("emodb",), "native", "speaker",
                                               _spec("adaptive-tile-g70-crops-avg", train=_EMODB),
                                               "`tiny`, adaptive-tile-g70-crops-avg recipe (gate -70 dBFS, tiling, "
                                               "crops alone, weight averaging)", "@emodb"),
    "ravdess-tiny-adaptive-tile-g70-crops-avg": (("ravdess",), "native", "speaker:5",
                                                 _spec("adaptive-tile-g70-crops-avg", train={"epoch_size": 1200}),
                                                 "`tiny`, adaptive-tile-g70-crops-avg recipe (gate -70 dBFS, tiling, "
                                                 "crops alone, weight averaging)", "@ravdess"),
    "emodb-tiny-egemaps": (("emodb",), "native", "speaker",
                           _spec("adaptive-tile-g70-crops-avg-egemaps", train=_EMODB),
                           "`tiny`, adaptive-tile-g70-crops-avg recipe + distillation from the eGeMAPS + SVM baseline "
                           "standardised per speaker (out-of-fold probabilities of the training clips)",
                           "@emodb"),
    "ravdess-tiny-egemaps": (("ravdess",), "native", "speaker:5",
                             _spec("adaptive-tile-g70-crops-avg-egemaps", train={"epoch_size": 1200}),
                             "`tiny`, adaptive-tile-g70-crops-avg recipe + distillation from the eGeMAPS + SVM "
                             "baseline standardised per speaker (out-of-fold probabilities of the training clips)",
                             "@ravdess"),
    "ravdess-tiny-egemaps-refit": (("ravdess",), "native", "speaker:5",
                                   _spec("adaptive-tile-g70-crops-avg-egemaps",
                                         train={"epoch_size": 1200, "refit": True}),
                                   f"`tiny`, eGeMAPS-distilled recipe (row ravdess-tiny-egemaps) + {_REFIT}",
                                   "@ravdess"),
    "ravdess-tiny-egemaps-w0.8": (("ravdess",), "native", "speaker:5",
                                  _spec("adaptive-tile-g70-crops-avg-egemaps",
                                        train={"epoch_size": 1200, "distill": _W08}),
                                  "`tiny`, adaptive-tile-g70-crops-avg recipe + distillation from the eGeMAPS + SVM "
                                  "baseline standardised per speaker, weighted 0.8 against the corpus labels' 0.2 "
                                  "(the teacher is ahead of the student here)", "@ravdess"),
    "emodb-tiny-egemaps-prosody": (("emodb",), "native", "speaker",
                                   _egemaps_prosody(_EMODB),
                                   "`tiny` + prosody channels, adaptive-tile-g70-crops-avg recipe + distillation from "
                                   "the eGeMAPS + SVM baseline standardised per speaker (EMO-DB's two best changes "
                                   "together)", "@emodb"),
    "emodb-tiny-egemaps-prosody-seed1": (("emodb",), "native", "speaker",
                                         _egemaps_prosody({**_EMODB, "seed": 1}),
                                         "`tiny` + prosody channels, eGeMAPS-distilled recipe (row "
                                         "emodb-tiny-egemaps-prosody) again under seed 1 (other validation "
                                         "speakers, initialisation and draws: its run-to-run spread)", "@emodb"),
    "emodb-tiny-egemaps-prosody-e40": (("emodb",), "native", "speaker",
                                       _egemaps_prosody(_EMODB40),
                                       "`tiny` + prosody channels, eGeMAPS-distilled recipe (row "
                                       "emodb-tiny-egemaps-prosody) with a longer schedule: at most 40 epochs, "
                                       "patience 12 (at 25 its best epoch was the 19th to 25th in 6 of 10 folds)",
                                       "@emodb"),
    "emodb-tiny-egemaps-prosody-e40-seed1": _emodb40_again("emodb-tiny-egemaps-prosody-e40", 1),
    "emodb-tiny-egemaps-prosody-e40-seed2": _emodb40_again("emodb-tiny-egemaps-prosody-e40", 2),
    "emodb-tiny-egemaps-prosody-e40-refit": _emodb40(f"+ {_REFIT}", refit=True),
    "emodb-tiny-egemaps-prosody-e40-avg0.9": _emodb40("with weight averaging over a longer span: decay 0.9 per "
                                                      "epoch instead of 0.7 (one recipe's runs under two seeds differ "
                                                      "by up to 12 points on a fold)", average=0.9),
    "emodb-tiny-egemaps-prosody-e40-avg0.9-seed1": _emodb40_again("emodb-tiny-egemaps-prosody-e40-avg0.9", 1,
                                                                  average=0.9),
    "emodb-tiny-egemaps-prosody-e40-val2": _emodb40("validated on two speakers per fold instead of one (7 train; "
                                                    "the refit row above, which trains on 9 without choosing, lost "
                                                    "2.2 points)", val_fraction=0.25),
    "emodb-tiny-egemaps-prosody-e40-val2-seed1": _emodb40_again("emodb-tiny-egemaps-prosody-e40-val2", 1,
                                                                val_fraction=0.25),
    "emodb-tiny-egemaps-prosody-e40-val2-seed2": _emodb40_again("emodb-tiny-egemaps-prosody-e40-val2", 2,
                                                                val_fraction=0.25),
    "emodb-tiny-egemaps-prosody-e40-val2-seed3": _emodb40_again("emodb-tiny-egemaps-prosody-e40-val2", 3,
                                                                val_fraction=0.25),
    "emodb-light_sernet-egemaps-prosody": (("emodb",), "native", "speaker",
                                           _egemaps_prosody(_EMODB, **_LIGHT_SERNET),
                                           "`light_sernet` under the recipe of `tiny`'s best EMO-DB row "
                                           "(emodb-tiny-egemaps-prosody: prosody channels, eGeMAPS-distilled, "
                                           "25 epochs, patience 8)", "@emodb"),
    "emodb-tiny-egemaps-prosody-e40-lsn": _emodb40("distilled from the `light_sernet` row above and the SVM "
                                                   "together (same folds: no teacher saw a fold's test or validation "
                                                   "speakers)", **_and_teacher("emodb-light_sernet-egemaps-prosody")),
    "emodb-light_sernet-egemaps-prosody-seed1": (("emodb",), "native", "speaker",
                                                 _egemaps_prosody({**_EMODB, "seed": 1}, **_LIGHT_SERNET),
                                                 "`light_sernet` row emodb-light_sernet-egemaps-prosody again under "
                                                 "seed 1 (the teacher of the next row)", "@emodb"),
    "emodb-tiny-egemaps-prosody-e40-lsn-seed1": (("emodb",), "native", "speaker",
                                                 _egemaps_prosody({**_EMODB40, "seed": 1,
                                                                   **_and_teacher("emodb-light_sernet-egemaps-"
                                                                                  "prosody-seed1")}),
                                                 "`tiny` row emodb-tiny-egemaps-prosody-e40-lsn again under seed 1, "
                                                 "its teacher the `light_sernet` row above (its run-to-run spread)",
                                                 "@emodb"),
    "ravdess-tiny-egemaps-prosody": (("ravdess",), "native", "speaker:5",
                                     _egemaps_prosody({"epoch_size": 1200}),
                                     "`tiny` + prosody channels, adaptive-tile-g70-crops-avg recipe + distillation "
                                     "from the eGeMAPS + SVM baseline standardised per speaker", "@ravdess"),
    "ravdess-tiny-egemaps-clip": (("ravdess",), "native", "speaker:5",
                                  _spec("adaptive-tile-g70-crops-avg-egemaps-clip", train={"epoch_size": 1200}),
                                  "`tiny`, adaptive-tile-g70-crops-avg recipe + distillation from the eGeMAPS + SVM "
                                  "baseline standardised per speaker, its labels held out by clip (each training clip "
                                  "labelled by SVMs that heard its speaker's other training clips)", "@ravdess"),
    "emodb-tiny-egemaps-clip": (("emodb",), "native", "speaker",
                                _spec("adaptive-tile-g70-crops-avg-egemaps-clip", train=_EMODB),
                                "`tiny`, adaptive-tile-g70-crops-avg recipe + distillation from the eGeMAPS + SVM "
                                "baseline standardised per speaker, its labels held out by clip (on EMO-DB they are "
                                "right more often than held out by speaker: 79.0 against 74.2 % UA)", "@emodb"),
    "emodb-tiny-crops-egemaps": (("emodb",), "native", "speaker",
                                 _spec("crops", train={**_EMODB, "distill": ablation.DISTILL_EGEMAPS}),
                                 "`tiny`, crops recipe + distillation from the eGeMAPS + SVM baseline standardised per "
                                 "speaker (on EMO-DB the SVM is ahead of every `tiny` row)", "@emodb"),
    "emodb-tiny-crops-avg": (("emodb",), "native", "speaker",
                             _spec("crops", train={**_EMODB, "average": ablation.AVERAGE}),
                             f"`tiny`, crops recipe + weight averaging (decay {ablation.AVERAGE} per epoch)",
                             "@emodb"),
    "ravdess-tiny-tile-g70-avg": (("ravdess",), "native", "speaker:5", _spec("tile-g70-avg", train={"epoch_size": 1200}),
                                  "`tiny`, tile-g70-avg recipe (tile recipe at the -70 dBFS gate + weight averaging)",
                                  "@ravdess"),
    "ravdess-tiny-helped": (("ravdess", "emodb", "tess", "savee"), "canonical", "speaker:5",
                            _spec("adaptive-tile-g70-crops-avg", train={"epoch_size": 2400},
                                  train_only=["emodb", "tess", "savee"]),
                            "`tiny`, adaptive-tile-g70-crops-avg recipe, with EMO-DB, TESS and SAVEE training in "
                            "every fold (their clips of RAVDESS's 8 classes; folds, validation and scores RAVDESS's "
                            "alone; (corpus, class)-balanced sampling, 2,400 windows per epoch)",
                            "@ravdess"),
    "emodb-tiny-helped": (("emodb", "ravdess", "tess", "savee"), "canonical", "speaker",
                          _spec("crops", train={**_EMODB, "epoch_size": 2000}, train_only=["ravdess", "tess", "savee"]),
                          "`tiny`, crops recipe (as `emodb-tiny`), with RAVDESS, TESS and SAVEE training in every fold "
                          "(their clips of EMO-DB's 7 classes; folds, validation and scores EMO-DB's alone; (corpus, "
                          "class)-balanced sampling, 2,000 windows per epoch)", "@emodb"),
}
SETUPS.update(ensemble_rows("emodb-tiny-egemaps-prosody-e40-val2", SETUPS, splits=(0, 1, 2, 3)))
SETUPS.update(ensemble_rows("ravdess-tiny-egemaps", SETUPS, splits=(0,)))
SETUPS.update(patient_students("emodb-tiny-egemaps-prosody-e40-val2", SETUPS, epochs=80, patience=25))
SETUPS.update(patient_students("ravdess-tiny-egemaps", SETUPS, splits=(0,), epochs=60, patience=20))
SETUPS.update(_inits(SETUPS["ravdess-tiny-egemaps-ens-long"], "ravdess-tiny-egemaps-ens-long", (1, 2),
                     "its run-to-run spread (the same teachers)"))
for _suffix in BALANCINGS:
    SETUPS.update(balanced_rows({"emodb-tiny-egemaps-prosody-e40-val2": (1, 2), "ravdess-tiny-egemaps": (1, 2)},
                                SETUPS, _suffix, {"emodb-tiny-egemaps-prosody-e40-val2": (1, 2)} if _suffix == "rbal"
                                else None))
#: the same recipes distilled from ComParE 2016 functionals + logistic regression instead of the eGeMAPS SVM
#: (ahead of it with per-speaker standardisation: benchmarks/baseline.py)
_COMPARE = {**ablation.DISTILL_EGEMAPS, "functionals": "compare"}
SETUPS["emodb-tiny-compare-prosody-e40-val2"] = _emodb40(
    "validated on two speakers per fold (row emodb-tiny-egemaps-prosody-e40-val2), its teacher ComParE 2016 "
    "functionals + logistic regression instead of the eGeMAPS SVM", val_fraction=0.25, distill=_COMPARE)
SETUPS["ravdess-tiny-compare"] = _train_changed(
    SETUPS["ravdess-tiny-egemaps"], "`tiny` row ravdess-tiny-egemaps, its teacher ComParE 2016 functionals + "
    "logistic regression instead of the eGeMAPS SVM", distill=_COMPARE)
SETUPS["ravdess-tiny-egemaps-long"] = _patiently(
    SETUPS["ravdess-tiny-egemaps"], "`tiny` row ravdess-tiny-egemaps (the SVM alone teaching) on the patient schedule "
    "of row ravdess-tiny-egemaps-ens-long: the teacher weighted 0.8, at most 60 epochs, patience 20 (what the "
    "schedule alone is worth, without the ensemble)", 60, 20, 0.8)
#: benchmark goals of issue 10, by setup
_GOALS = {("emodb", "speaker"): 0.75, ("ravdess", "speaker:5"): 0.60}


def goal(name: str, balanced: bool = False) -> float | None:
    """Issue 10's UA goal for setup ``name``: `tiny` on the corpus it is scored on (its corpora less those that
    only train), by that corpus's protocol, all of its classes; None where the issue sets none, and for a
    setup scored with each speaker's predictions balanced unless ``balanced`` (``benchmarks/balance.py``).

    >>> goal("emodb-tiny-prosody"), goal("ravdess-tiny-helped"), goal("emodb-light_sernet"), goal("rts-4class-speaker")
    (0.75, 0.6, None, None)
    >>> goal("ravdess-tiny-egemaps-bal"), goal("ravdess-tiny-egemaps-bal", balanced=True)
    (None, 0.6)
    """
    _, labels, protocol, spec, _, _ = SETUPS[name]
    scored = _scored(name)
    if spec.get("model", "tiny") != "tiny" or len(scored) != 1 or labels not in ("native", "canonical") or \
            any(k in spec for setting, _ in BALANCINGS.values() for k in setting) and not balanced:
        return None
    return _GOALS.get((scored[0], protocol))


def _scored(name: str) -> tuple[str, ...]:
    """The corpora setup ``name`` is scored on: its corpora less those that only train."""
    corpora, spec = SETUPS[name][0], SETUPS[name][3]
    return tuple(c for c in corpora if c not in spec.get("train_only", ()))


def goal_groups(balanced: bool = False) -> dict[tuple[str, str, float], list[str]]:
    """The setups that have a goal (:func:`goal`, ``balanced`` as there), by (scored corpus, protocol, goal), in
    ``SETUPS`` order.

    >>> groups = goal_groups()
    >>> sorted(groups), "emodb-tiny-prosody" in groups["emodb", "speaker", 0.75]
    ([('emodb', 'speaker', 0.75), ('ravdess', 'speaker:5', 0.6)], True)
    """
    groups: dict[tuple[str, str, float], list[str]] = {}
    for key in SETUPS:
        target = goal(key, balanced)
        if target is not None:
            groups.setdefault((_scored(key)[0], SETUPS[key][2], target), []).append(key)
    return groups


def _versus(row: dict, target: float) -> str:
    gap = 100 * (row["ua"] - target)
    runs = f" ({row['runs']} run{'s' * (row['runs'] > 1)})" if "runs" in row else ""
    return (f"`{row['key']}`{_report.mark(row)}{runs} {100 * row['ua']:.1f} "
            f"({'met' if gap >= 0 else f'gap {gap:+.1f}'}; validation {100 * row['val_ua']:.1f})")


#: a seed repeat's suffix: ``-seedN`` (other folds, validation speakers and draws) or ``-initN`` (the same folds)
_REPEAT = r"-(?:seed|init)\d+"


def _picks(pickable_rows: list[dict], rows: list[dict], target: float) -> str:
    """Validation's pick among ``pickable_rows`` and the best of ``rows`` on test, against goal ``target``.

    >>> a, b = {"key": "a", "ua": .7, "val_ua": .8}, {"key": "b", "ua": .76, "val_ua": .7}
    >>> _picks([a, b], [a, b], .75)
    'validation picks `a` 70.0 (gap -5.0; validation 80.0); best on test `b` 76.0 (met; validation 70.0)'
    """
    picked = max(pickable_rows, key=lambda r: r["val_ua"], default=None)
    best = max(rows, key=lambda r: r["ua"])
    said = [f"validation picks {_versus(picked, target)}"] if picked and picked is not best else []
    said.append(f"{'validation picks the best on test' if picked is best else 'best on test'} {_versus(best, target)}")
    return "; ".join(said)


def seed_spread(done: dict[str, dict]) -> list[str]:
    """The run-to-run spread the goal lines sit in: for each seed repeat (``KEY-seedN``; ``KEY-initN`` on the
    same folds and validation speakers) made on the same machine as its row ``KEY`` (both with fold scores),
    the two means and the standard deviation s of their fold-by-fold difference; by chance alone two rows' means then differ by up to about 2 s/sqrt(folds)
    (two standard deviations of a difference of means over that many folds).

    >>> rows = {k: {"key": k, "ua": .7, "fold_ua": f} for k, f in (("a", [.6, .8, .7, .7]), ("a-seed1", [.8, .6, .7, .7]))}
    >>> seed_spread(rows)[-1]
    '- `a` 70.0 and `a-seed1` 70.0: fold by fold they differ by 16.3 points (std s), so by chance alone the means of two rows of 4 folds differ by up to about 16.3 points (2 s/sqrt(4), 19 times in 20).'
    """
    import numpy as np

    base = {k: m[1] for k in done if (m := re.fullmatch(rf"(.+){_REPEAT}", k))}
    pairs = [(done[b], done[k]) for k, b in base.items() if "fold_ua" in done[k] and "fold_ua" in done.get(b, {})]
    lines = ["", "Run-to-run spread (seed repeats and their rows, both made on this machine; `-initN`: the same "
                 "folds and validation speakers, other initialisation and draws):", ""] if pairs else []
    for a, b in pairs:
        diff = 100 * (np.asarray(a["fold_ua"]) - np.asarray(b["fold_ua"]))
        s, n = float(diff.std(ddof=1)), len(diff)
        lines.append(f"- `{a['key']}` {100 * a['ua']:.1f} and `{b['key']}` {100 * b['ua']:.1f}: fold by fold they "
                     f"differ by {s:.1f} points (std s), so by chance alone the means of two rows of {n} folds "
                     f"differ by up to about {2 * s / np.sqrt(n):.1f} points (2 s/sqrt({n}), 19 times in 20).")
    return lines


def teacher_ensembles(done: dict[str, dict]) -> list[str]:
    """For each row distilled from two or more runs (``teachers_vote_ua``, :func:`_report.teachers_vote`), its
    teachers' mean UA and their majority vote on the same test folds (what the student learns from, scored on its
    own, with the MACs the ensemble would cost on the device); then, per recipe (:func:`recipe`) with two or more
    students whose teachers are all made, the mean of each student's lead over its teachers' mean and how far
    chance alone would move it.

    >>> t, u = {"key": "t", "ua": .7, "macs_per_second": 4e6}, {"key": "u", "ua": .74, "macs_per_second": 4e6}
    >>> rows = {"t": t, "u": u}
    >>> for s, ua in (("s", .74), ("s-seed1", .71)):
    ...     rows[s] = {"key": s, "ua": ua, "teachers_vote_ua": [.8, .76],
    ...                "config": {"train": {"distill": {"teacher": ["runs/t", "runs/u"]}}}}
    >>> print("\\n".join(teacher_ensembles(rows)[-3:]))
    - `s` 74.0: its 2 teachers 72.0 on average, 78.0 by majority vote (8.0 M MACs/s together)
    - `s-seed1` 71.0: its 2 teachers 72.0 on average, 78.0 by majority vote (8.0 M MACs/s together)
    - `s`, 2 students (seed repeats): 72.5 against their teachers' 72.0 on average: +0.5 points (each student's lead: std 2.1, so chance alone moves this mean by up to about 3.0 points, 2 std/sqrt(2))
    """
    import numpy as np

    rows = [r for r in done.values() if "teachers_vote_ua" in r]
    lines = ["", "Teacher ensembles (each row distilled from several runs beside its teachers' mean and majority vote "
                 "of clip labels, on the same test folds):", ""] if rows else []
    leads: dict[str, list] = {}
    for r in rows:
        teachers = [done.get(Path(t).name) for t in r["config"]["train"]["distill"]["teacher"]]
        made = all(teachers)
        mean = float(np.mean([t["ua"] for t in teachers])) if made else None
        macs = f" ({sum(t['macs_per_second'] for t in teachers) / 1e6:.1f} M MACs/s together)" if made else ""
        lines.append(f"- `{r['key']}` {100 * r['ua']:.1f}: its {len(teachers)} teachers "
                     + (f"{100 * mean:.1f} on average, " if made else "")
                     + f"{100 * np.mean(r['teachers_vote_ua']):.1f} by majority vote{macs}")
        if made:
            leads.setdefault(recipe(r["key"]), []).append((r["ua"], mean))
    for key, pairs in leads.items():
        if len(pairs) < 2:
            continue
        student, teacher = 100 * np.asarray(pairs).T
        s, n = float(np.std(student - teacher, ddof=1)), len(pairs)
        lines.append(f"- `{key}`, {n} students (seed repeats): {student.mean():.1f} against their teachers' "
                     f"{teacher.mean():.1f} on average: {(student - teacher).mean():+.1f} points (each student's lead: std {s:.1f}, so chance alone "
                     f"moves this mean by up to about {2 * s / np.sqrt(n):.1f} points, 2 std/sqrt({n}))")
    return lines


def recipe(name: str) -> str:
    """The recipe setup ``name`` runs: its name less its seed-repeat suffixes (``-seedN``, ``-initN``).

    >>> recipe("a-val2-seed1-init0"), recipe("a-val2-ens-seed2"), recipe("a")
    ('a-val2', 'a-val2-ens', 'a')
    """
    return re.sub(rf"(?:{_REPEAT})+$", "", name)


def recipe_means(made: list[dict]) -> list[dict]:
    """Rows ``made`` grouped by :func:`recipe`, refits aside (their validation is the row's they refit): per
    recipe its runs' mean test and validation UA, as ``key`` (the recipe), ``ua``, ``val_ua`` and ``runs``.

    >>> made = [{"key": k, "ua": u, "val_ua": v} for k, u, v in (("a", .7, .8), ("a-seed1", .8, .7), ("b", .6, .9))]
    >>> [(r["key"], r["runs"], round(r["ua"], 2), round(r["val_ua"], 2)) for r in recipe_means(made)]
    [('a', 2, 0.75, 0.75), ('b', 1, 0.6, 0.9)]
    """
    groups: dict[str, list[dict]] = {}
    for r in made:
        if not _refit(r["key"]):
            groups.setdefault(recipe(r["key"]), []).append(r)
    return [{"key": k, "runs": len(g), "ua": sum(r["ua"] for r in g) / len(g),
             "val_ua": sum(r["val_ua"] for r in g) / len(g)} for k, g in groups.items()]


def pickable(name: str) -> bool:
    """Whether validation may pick setup ``name`` for a goal: not a seed repeat (picking the luckier seed is the
    winner's curse) nor a refit (its validation is its selection run's, the same as the row it refits, so
    choosing between the two would be choosing on test).

    >>> pickable("emodb-tiny-egemaps-prosody-e40"), pickable("emodb-tiny-egemaps-prosody-e40-seed1")
    (True, False)
    >>> pickable("emodb-tiny-egemaps-prosody-e40-refit")
    False
    """
    return not ablation.seed_repeat(SETUPS[name][3]) and not _refit(name)


def _refit(name: str) -> bool:
    """Whether setup ``name`` (False for a name not among ``SETUPS``) refits on its validation speakers."""
    return name in SETUPS and bool(SETUPS[name][3]["train"].get("refit"))


def _before_refit(row: dict) -> str:
    """A refit row's test UA of the models validation chose, before the refit (the row it refits, made again).

    >>> _before_refit({"before_refit": {"ua": 0.7312, "wa": 0.75, "f1": 0.7}}), _before_refit({})
    (' (before the refit: 73.1)', '')
    """
    return f" (before the refit: {100 * row['before_refit']['ua']:.1f})" if "before_refit" in row else ""


def setup_config(name: str, data: Path, runs: Path = Path("runs/protocols")):
    corpora, labels, protocol, spec, _, _ = SETUPS[name]
    return ablation.run_config(data, spec, protocol=protocol, runs=runs, corpora=corpora, labels=labels)


def reference(name: str) -> str:
    """A setup's reference, with the eGeMAPS + SVM baseline's figures as measured (``_report.baseline``)."""
    text = SETUPS[name][5]
    return re.sub(r"@([\w-]*)", lambda m: f"eGeMAPS + SVM {_report.baseline(m.group(1) or name)}", text)


def result(name: str, data: Path, runs: Path, train: bool) -> dict | None:
    cfg = setup_config(name, data, runs)
    run = _report.finished_run(cfg, runs / name, train)
    if run is None:
        return None
    corpora, labels, protocol, _, recipe, _ = SETUPS[name]
    return {"key": name, "corpora": list(corpora), "labels": labels, "protocol": protocol, "recipe": recipe,
            "reference": reference(name), **run, **ablation.cost(cfg, len(run["classes"]))}


def markdown(rows: list[dict | None], data: Path) -> str:
    lines = ["## The recipe under other honest protocols (`benchmarks/protocols.py`)", "",
             f"Reproduce: `python benchmarks/protocols.py --data {data}` on {_report.machine()}. The recipe of "
             "ablation row `crops` (adaptive normalisation, (corpus, class) balanced sampling, short-utterance "
             "crops, SpecAugment, mixup, label smoothing; `cmsis_mfcc`, 2 s windows, clips scored as the mean of "
             "their windows) unless the row names another: `tile` (the same plus tiled padding: the default model's "
             "recipe), `adaptive-tile` (adaptive normalisation, balanced sampling and tiled padding, without crops, "
             "SpecAugment, mixup or label smoothing) or `balanced` (balanced sampling alone, fixed "
             "standardisation), trained from scratch per row. `speaker` = leave one speaker out, "
             "`speaker:5` = five speaker-independent folds, `random:5` = five folds of random clips (a speaker's "
             "clips on both sides: the papers' protocol, not speaker-independent). The best epoch is chosen on "
             "validation data carved from each fold's training part. Mean ± std over folds; the eGeMAPS v02 + "
             "RBF SVM baseline with global / per-speaker standardisation on the same folds (`benchmarks/baseline.py`).", "",
             "| corpora | classes | protocol | model and recipe | UA % | WA % | macro-F1 % | val UA % | "
             "MACs / s | int8 model | TFLM arena | reference | wall |",
             "|---|---|---|---|---:|---:|---:|---:|---:|---:|---:|---|---:|"]
    for r in rows:
        if r is None:
            continue
        lines.append(f"| {' + '.join(r['corpora'])} | {r['labels']} ({len(r['classes'])}) | {r['protocol']} | "
                     f"{r['recipe']}{_before_refit(r)}{_report.mark(r)} | {100 * r['ua']:.1f} ± {100 * r['ua_std']:.1f} | "
                     f"{100 * r['wa']:.1f} ± {100 * r['wa_std']:.1f} | {100 * r['f1']:.1f} ± {100 * r['f1_std']:.1f} | "
                     f"{100 * r['val_ua']:.1f} | {r['macs_per_second'] / 1e6:.1f} M | {r['int8_bytes'] / 1024:.1f} KB | "
                     f"{r['arena_bytes'] / 1024:.1f} KB | {reference(r['key'])} | {r['wall_s'] / 60:.0f} min |")
    done = {r["key"]: r for r in rows if r is not None}
    lines += ["", "Goals (benchmark goals, not tests), one line per goal over the `tiny` rows that have it: the "
              "row with the best validation UA (seed repeats and refits aside, `pickable`), and the best on test, "
              "which is chosen on the test folds and so flatters. A refit row's validation UA is its selection "
              "run's, scored on the model before the refit. The same rows with each test speaker's predictions "
              "balanced over the classes (the baseline's per-speaker assumption): `benchmarks/balance.py`.", ""]
    for (corpus, protocol, target), keys in goal_groups().items():
        made = [done[k] for k in keys if k in done]
        head = f"- {corpus} {protocol} UA ≥ {100 * target:.0f}"
        if not made:
            lines.append(f"{head}: not yet trained")
            continue
        recipes = recipe_means(made)
        lines += [f"{head} ({len(made)} rows): " + _picks([r for r in made if pickable(r["key"])], made, target),
                  f"  - by recipe, its runs' mean ({len(recipes)} recipes; a row, its seed repeats and `-initN` runs "
                  f"together): " + _picks(recipes, recipes, target)]
    lines += seed_spread(done) + teacher_ensembles(done)
    lines += _report.carried_note(done.values())
    missing = [k for k in SETUPS if k not in done]
    if missing:
        lines += ["", "Not yet trained (resume with the command above): " + ", ".join(missing) + "."]
    return "\n".join(lines)


def main() -> None:
    _report.train_and_tabulate("protocols", __doc__, list(SETUPS), result, markdown, "runs/protocols")

if __name__ == "__main__":
    main()
