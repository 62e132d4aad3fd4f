"""The field's classic baseline: openSMILE's eGeMAPS v02 functionals and an RBF SVM.

eGeMAPS (Eyben et al., IEEE Trans. Affective Computing 7(2), 2016) is 88
utterance-level functionals of pitch, loudness, voice quality and spectrum.
An RBF SVM on them, standardised over the training clips (**global**) or on
each speaker's own clips (**speaker**; **corpus** for a corpus left out), is
the reference the project's models are measured against
(``benchmarks/baseline.py``). It can also teach ``tiny``: its out-of-fold
probabilities for each training clip are distillation targets
(:func:`teacher_proba`; a run's ``train.distill`` with ``"egemaps"``).

A larger set is at hand as well: openSMILE's ComParE 2016 functionals (6,373
of them; Schuller et al., Interspeech 2016), classified by a linear model, as
that challenge's baselines do (:data:`FEATURE_SETS`; ``train.distill`` with
``"functionals": "compare"``).

Needs the ``baseline`` extra (``opensmile``) for the functionals and the
``train`` extra (scikit-learn) for the classifiers.
"""
from __future__ import annotations

import multiprocessing
from concurrent.futures import ProcessPoolExecutor
from typing import NamedTuple, Sequence

import numpy as np

from .audio import DEFAULT_SAMPLE_RATE, load
from .cache import FeatureCache
from .errors import ConfigError
from .extras import need
from .progress import Bar

#: how a baseline standardises its functionals: over the training clips, or per speaker / corpus on its own clips
STANDARDISATIONS = ("global", "speaker", "corpus")
#: how the teacher's out-of-fold split holds out training clips: whole speakers (each clip labelled by SVMs
#: that never heard its speaker), or clips (by SVMs that heard the speaker's other clips)
TEACHER_SPLITS = ("speaker", "clip")
#: the split a teacher uses unless told (every committed distilled run before "clip" existed used it)
DEFAULT_TEACHER_SPLIT = TEACHER_SPLITS[0]
#: the SVM's settings: scikit-learn's defaults for the RBF kernel, classes weighted by their frequency
SVM = {"kernel": "rbf", "C": 1.0, "gamma": "scale", "class_weight": "balanced"}
#: the linear model's settings on the large set: logistic regression, classes weighted by their frequency; C chosen
#: by the out-of-fold UA of each fold's training clips (speakers held out; ``benchmarks/baseline.py``'s teacher
#: table), never on a test fold
LINEAR = {"C": 1e-3, "class_weight": "balanced", "max_iter": 3000}


class FunctionalSet(NamedTuple):
    """A set of openSMILE functionals: openSMILE's name for it, the version the cache records, how many
    functionals, the classifier on them ("svm": :data:`SVM`, "linear": :data:`LINEAR`) and how tables name it."""
    opensmile: str
    version: str
    size: int
    classifier: str
    title: str


#: openSMILE functionals by name
FEATURE_SETS = {"egemaps": FunctionalSet("eGeMAPSv02", "v02", 88, "svm", "the eGeMAPS + RBF SVM baseline"),
                "compare": FunctionalSet("ComParE_2016", "2016", 6373, "linear",
                                         "ComParE 2016 functionals + logistic regression")}


def functionals(paths: Sequence[str], cache_root=None, progress: bool = False, jobs: int = 2,
                feature_set: str = "egemaps") -> np.ndarray:
    """openSMILE functionals of each file (rows in the order of ``paths``; eGeMAPS v02 unless
    ``feature_set`` names another of :data:`FEATURE_SETS`), computed on the file at 16 kHz mono and cached
    by the file's content.

    openSMILE runs in ``jobs`` worker processes of its own: its native library
    corrupts the heap when it is loaded into a process where TensorFlow has run.

    >>> functionals(["03a01Fa.wav"]).shape    # doctest: +SKIP
    (1, 88)
    """
    smile_mod = need("opensmile", "openSMILE functionals")
    chosen = _feature_set(feature_set)
    cache = FeatureCache(cache_root, {feature_set: chosen.version, "opensmile": smile_mod.__version__,
                                      "sample_rate": DEFAULT_SAMPLE_RATE})
    keys = [cache.key(p) for p in paths]
    cache.digests.save()
    rows = {k: cache.get(k) for k in dict.fromkeys(keys)}
    missing = [(k, p) for k, p in dict(zip(keys, paths)).items() if rows[k] is None]
    if missing:
        chunks = [missing[i:i + 16] for i in range(0, len(missing), 16)]
        spawn = multiprocessing.get_context("spawn")
        with Bar(len(missing), f"{feature_set} functionals", enabled=progress) as bar, \
                ProcessPoolExecutor(max(1, min(jobs, len(chunks))), mp_context=spawn) as pool:
            for chunk, done in zip(chunks, pool.map(_compute, [[p for _, p in c] for c in chunks],
                                                    [feature_set] * len(chunks))):
                for (key, _), row in zip(chunk, done):
                    cache.put(key, row)
                    rows[key] = row
                bar.advance(len(chunk))
    return np.vstack([rows[k] for k in keys]) if keys else np.zeros((0, chosen.size))


def _feature_set(name: str) -> FunctionalSet:
    if name not in FEATURE_SETS:
        raise ConfigError(f"unknown functionals {name!r}; use one of {', '.join(FEATURE_SETS)}")
    return FEATURE_SETS[name]


_SMILE: dict = {}


def _compute(paths: list[str], feature_set: str) -> list[np.ndarray]:
    """A worker's part of :func:`functionals` (one openSMILE instance per process and set)."""
    import opensmile

    if feature_set not in _SMILE:
        name = FEATURE_SETS[feature_set].opensmile
        _SMILE[feature_set] = opensmile.Smile(feature_set=getattr(opensmile.FeatureSet, name),
                                              feature_level=opensmile.FeatureLevel.Functionals)
    smile = _SMILE[feature_set]
    return [np.asarray(smile.process_signal(load(p, DEFAULT_SAMPLE_RATE), DEFAULT_SAMPLE_RATE).to_numpy()[0],
                       np.float64) for p in paths]


def standardise(x: np.ndarray, groups: Sequence | None = None, reference: np.ndarray | None = None) -> np.ndarray:
    """Features minus a mean, over a standard deviation: each group's own (``groups``:
    a speaker or corpus id per row), or else the ``reference`` rows' (the training clips).

    >>> x = np.array([[1.0], [3.0], [10.0], [14.0]])
    >>> standardise(x, ["a", "a", "b", "b"]).ravel().tolist()
    [-1.0, 1.0, -1.0, 1.0]
    >>> standardise(x, reference=x[:2]).ravel().tolist()
    [-1.0, 1.0, 8.0, 12.0]
    """
    x = np.asarray(x, np.float64)
    if groups is None:
        ref = x if reference is None else reference
        return (x - ref.mean(0)) / np.maximum(ref.std(0), 1e-8)
    out = np.empty_like(x)
    groups = np.asarray(groups)
    for g in np.unique(groups):
        rows = groups == g
        out[rows] = (x[rows] - x[rows].mean(0)) / np.maximum(x[rows].std(0), 1e-8)
    return out


def _groups_for(standardisation: str, groups: np.ndarray) -> np.ndarray | None:
    if standardisation not in STANDARDISATIONS:
        raise ConfigError(f"unknown standardisation {standardisation!r}; use one of {', '.join(STANDARDISATIONS)}")
    if standardisation == "global":
        return None
    if standardisation == "corpus":
        return np.array([str(s).split(":", 1)[0] for s in groups])
    return np.asarray(groups)


def fit_predict(x: np.ndarray, y: np.ndarray, groups: Sequence, train: np.ndarray, test: np.ndarray,
                standardisation: str = "global", n_classes: int | None = None,
                probability: bool = False, feature_set: str = "egemaps") -> np.ndarray:
    """Train the classifier of ``feature_set`` (:data:`FEATURE_SETS`: the RBF SVM for eGeMAPS, :data:`LINEAR`
    for ComParE) on the ``train`` rows and label the ``test`` rows (their class probabilities with
    ``probability``, columns ``0..n_classes-1``).

    ``global`` standardises with the training rows' statistics; ``speaker`` and
    ``corpus`` standardise every row within its own group, test groups included
    (what per-speaker normalisation assumes: the speaker's other clips are at hand).

    >>> rng = np.random.default_rng(0)
    >>> y = np.repeat([0, 1], 20); x = rng.normal(size=(40, 3)) + 3 * y[:, None]
    >>> pred = fit_predict(x, y, np.repeat(["s1", "s2"], 20), np.arange(0, 40, 2), np.arange(1, 40, 2))
    >>> float((pred == y[1::2]).mean())
    1.0
    >>> p = fit_predict(x, y, np.repeat(["s1", "s2"], 20), np.arange(0, 40, 2), np.arange(1, 40, 2),
    ...                 probability=True, feature_set="compare")   # the linear model's probabilities
    >>> p.shape, float((p.argmax(1) == y[1::2]).mean())
    ((20, 2), 1.0)
    """
    kind = _feature_set(feature_set).classifier
    groups = np.asarray(groups)
    by = _groups_for(standardisation, groups)
    z = standardise(x, by) if by is not None else standardise(x, reference=np.asarray(x)[train])
    if kind == "linear":  # probabilities of its own
        model = need("sklearn.linear_model", "the ComParE baseline").LogisticRegression(**LINEAR)
    else:
        model = need("sklearn.svm", "the eGeMAPS baseline").SVC(**SVM, random_state=0)
    if probability and kind == "svm":  # Platt scaling fitted by 5-fold cross-validation on the training rows
        from sklearn.calibration import CalibratedClassifierCV

        model = CalibratedClassifierCV(model, ensemble=False)
    model.fit(z[train], np.asarray(y)[train])
    if not probability:
        return model.predict(z[test])
    out = np.zeros((len(test), n_classes or int(np.max(y)) + 1))
    out[:, model.classes_] = model.predict_proba(z[test])
    return out


def teacher_proba(x: np.ndarray, y: np.ndarray, groups: Sequence, train: np.ndarray, n_classes: int,
                  standardisation: str = "speaker", k: int = 5, seed: int = 0,
                  split: str = DEFAULT_TEACHER_SPLIT, feature_set: str = "egemaps") -> np.ndarray:
    """Out-of-fold class probabilities for the ``train`` rows: each is labelled by a
    classifier (:func:`fit_predict`'s for ``feature_set``) trained on the other training
    speakers (``k`` folds grouped by speaker), so
    the targets say how a clip sounds to a model that never heard its speaker; with
    ``split="clip"``, by one trained on the other training clips (``k`` folds
    stratified by class), its speaker's other clips among them: for a corpus of few
    speakers (TESS has two) no other training speaker sounds like it. Rows in the
    order of ``train``; nothing outside ``train`` is used.

    >>> rng = np.random.default_rng(0)
    >>> y = np.tile([0, 1], 30); x = rng.normal(size=(60, 2)) + 2 * y[:, None]
    >>> p = teacher_proba(x, y, np.repeat([f"s{i}" for i in range(6)], 10), np.arange(60), 2, "global")
    >>> p.shape, float((p.argmax(1) == y).mean()) > 0.8
    ((60, 2), True)
    >>> p = teacher_proba(x, y, np.repeat(["s1", "s2"], 30), np.arange(60), 2, "global", split="clip")
    >>> float((p.argmax(1) == y).mean()) > 0.8
    True
    """
    model_selection = need("sklearn.model_selection", "the eGeMAPS teacher")
    if split not in TEACHER_SPLITS:
        raise ConfigError(f"the eGeMAPS teacher's split must be one of {', '.join(TEACHER_SPLITS)}, not {split!r}")
    train = np.asarray(train)
    g = np.asarray(groups)[train]
    out = np.zeros((len(train), n_classes))
    y_train = np.asarray(y)[train]
    k = min(k, int(np.bincount(y_train).max()) if split == "clip" else len(np.unique(g)))
    if k < 2:
        raise ConfigError(f"the eGeMAPS teacher needs at least two training {split}s (of one class, for clips)")
    held_out = (model_selection.StratifiedKFold(k, shuffle=True, random_state=seed).split(train, y_train)
                if split == "clip" else
                model_selection.GroupKFold(k, shuffle=True, random_state=seed).split(train, groups=g))
    for fit_rows, held in held_out:
        out[held] = fit_predict(x, y, groups, train[fit_rows], train[held], standardisation, n_classes,
                                probability=True, feature_set=feature_set)
    return out
