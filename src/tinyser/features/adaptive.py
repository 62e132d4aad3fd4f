"""Adaptive standardisation: per-coefficient mean and variance that follow the
stream, as a device can compute them, so that a model sees every speaker and
microphone centred and scaled on *their own* statistics.

Fixed standardisation divides by statistics of the training set. Speakers,
microphones and rooms shift MFCCs far more than emotions do; standardising per
speaker is worth about nine points of UA on EMO-DB leave-one-speaker-out for an
SVM on utterance statistics (issue 10). A device never knows its speaker, but
it can keep running statistics over what it has heard. This module is the
reference arithmetic, in float32 and in one fixed order of operations, that
training, ``predict``, ``listen`` and the C frontend share (the C copy is
``tinyser_adapt_window`` in ``deploy/c/tinyser_frontend.c``).

The state is a per-coefficient mean ``mu`` and mean square ``sq``, started from
the training statistics (``mu = mean``, ``sq = std² + mean²``). It is updated
once per model window, from the frames that are new since the previous window
(all of them for the first window of a stream) and only from *voiced* frames,
whose first coefficient (c0, the frame's log spectral level) is at least
``gate``; then the whole window is standardised with the updated state::

    n      = number of new voiced frames           (nothing changes if n == 0)
    s1, s2 = Σ x, Σ x²  over them, frame by frame in time order (float32)
    a      = alpha[n] = 1 - exp(-n · frame_seconds / time_constant)   (table)
    mu    += a · (s1 / n - mu)
    sq    += a · (s2 / n - sq)
    var    = max(sq - mu · mu, floor)        floor = (min_std_ratio · std)²
    out    = (x - mu) / sqrt(var)            for every frame of the window

``time_constant`` is in seconds of *voiced* audio: after that much speech the
training statistics weigh ``1/e``. Silence neither updates the state nor
forgets it.

>>> import numpy as np
>>> from tinyser.features.base import Standardizer
>>> st = Standardizer((0.0, 0.0), (1.0, 1.0))
>>> norm = AdaptiveNorm(AdaptiveConfig(time_constant=1.0, gate=-1e9), st, frame_seconds=0.5, n_frames=4)
>>> out = norm.window(np.full((4, 2), 3.0, np.float32), new_frames=4)
>>> [round(float(v), 3) for v in norm.mu], out.shape
([2.594, 2.594], (4, 2))
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Iterable, Sequence

import numpy as np

from ..errors import ConfigError
from .base import Standardizer


@dataclass(frozen=True)
class AdaptiveConfig:
    """How the running statistics adapt (see the module docstring).

    ``gate`` is the c0 threshold of a voiced frame in the frontend's own units;
    :func:`gate_for_level` turns a level in dBFS into it. ``min_std_ratio``
    keeps a coefficient's running standard deviation at least that fraction of
    its training value (a steady tone would otherwise divide by ~0).

    >>> AdaptiveConfig.from_dict(AdaptiveConfig(time_constant=5.0, gate=-60.0).to_dict()).time_constant
    5.0
    """

    time_constant: float = 20.0
    gate: float = 0.0
    min_std_ratio: float = 0.25

    def __post_init__(self):
        for name in ("time_constant", "gate", "min_std_ratio"):
            v = getattr(self, name)
            if not isinstance(v, (int, float)) or not np.isfinite(v):
                raise ConfigError(f"adaptive normalisation: {name} must be a finite number, not {v!r}")
        if self.time_constant <= 0:
            raise ConfigError(f"adaptive normalisation: time_constant must be > 0 s, not {self.time_constant}")
        if not 0 < self.min_std_ratio <= 1:
            raise ConfigError("adaptive normalisation: min_std_ratio must be in (0, 1]")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> AdaptiveConfig:
        known = {f.name for f in dataclasses.fields(cls)}
        if not isinstance(d, dict) or set(d) - known:
            raise ConfigError(f"adaptive normalisation: expected keys {', '.join(sorted(known))}, got {d!r}")
        return cls(**{k: float(v) for k, v in d.items()})

    def alphas(self, frame_seconds: float, n_frames: int) -> np.ndarray:
        """``alpha[n]`` for ``n = 0..n_frames`` new voiced frames (float32; the C tables hold the same)."""
        n = np.arange(n_frames + 1, dtype=np.float64)
        return (-np.expm1(-n * frame_seconds / self.time_constant)).astype(np.float32)


#: frames at least this loud update the adaptive statistics, and bound a tiled window's sound, unless
#: told otherwise: dBFS RMS of *white noise* (:func:`gate_for_level`). A speech frame has a lower c0
#: than white noise of the same RMS level (its energy sits in the low bands), so this gate keeps
#: speech down to about -60 dBFS; at -50 it dropped most of RAVDESS's quietly recorded speech
#: (``benchmarks/gate.py``, docs/results.md), and models trained with it lost 3-9 points of UA
#: (four corpora, speaker:5: ablation rows adaptive-tile, tile, balanced-tile, adaptive-tile-crops).
DEFAULT_GATE_DB = -70.0


def gate_for_level(config, level_dbfs: float) -> float:
    """The c0 of white noise at ``level_dbfs`` dBFS RMS through frontend ``config``:
    frames at least that loud count as voiced. Deterministic (seeded noise).

    >>> from tinyser.features import get_config
    >>> g40, g50 = (gate_for_level(get_config("cmsis_mfcc"), db) for db in (-40, -50))
    >>> g40 > g50
    True
    """
    rng = np.random.default_rng(0)
    noise = rng.standard_normal(config.sample_rate).astype(np.float64)
    noise *= 10 ** (level_dbfs / 20) / np.sqrt(np.mean(noise ** 2))
    c0 = config.compute(noise.astype(np.float32))[..., 0]
    return float(np.median(c0))


class AdaptiveNorm:
    """The running state of one stream (a speaker, a file, a microphone)."""

    def __init__(self, config: AdaptiveConfig, standardizer: Standardizer, frame_seconds: float, n_frames: int):
        self.config = config
        mean = np.asarray(standardizer.mean, np.float32)
        std = np.asarray(standardizer.std, np.float32)
        self.mu = mean.copy()
        self.sq = (std * std + mean * mean).astype(np.float32)
        ratio = np.float32(config.min_std_ratio)
        self.floor = ((ratio * std) * (ratio * std)).astype(np.float32)
        self.alpha = config.alphas(frame_seconds, n_frames)
        self.gate = np.float32(config.gate)

    def update(self, new: np.ndarray) -> None:
        """Fold new raw frames ``(n, coeffs)`` (time order) into the state."""
        new = np.asarray(new, np.float32)
        voiced = new[new[:, 0] >= self.gate]
        n = len(voiced)
        if n == 0:
            return
        if n >= len(self.alpha):
            raise ConfigError(f"adaptive normalisation: {n} new frames, more than a window's {len(self.alpha) - 1}")
        # sequential float32 sums in time order (np.cumsum never reorders), as the C loop adds
        s1 = np.cumsum(voiced, axis=0, dtype=np.float32)[-1]
        s2 = np.cumsum(voiced * voiced, axis=0, dtype=np.float32)[-1]
        a, fn = self.alpha[n], np.float32(n)
        self.mu = (self.mu + a * (s1 / fn - self.mu)).astype(np.float32)
        self.sq = (self.sq + a * (s2 / fn - self.sq)).astype(np.float32)

    def standardize(self, window: np.ndarray) -> np.ndarray:
        """``(x - mu) / sqrt(var)`` with the current state."""
        var = np.maximum(self.sq - self.mu * self.mu, self.floor)
        return ((np.asarray(window, np.float32) - self.mu) / np.sqrt(var)).astype(np.float32)

    def window(self, raw: np.ndarray, new_frames: int | None = None) -> np.ndarray:
        """Update from the last ``new_frames`` frames of ``raw`` (all when None), then standardise it."""
        raw = np.asarray(raw, np.float32)
        k = len(raw) if new_frames is None else min(int(new_frames), len(raw))
        self.update(raw[len(raw) - k:])
        return self.standardize(raw)


def standardize_streams(features: np.ndarray, streams: Sequence[Iterable[int]], config: AdaptiveConfig,
                        standardizer: Standardizer, frame_seconds: float,
                        new_frames: np.ndarray | None = None) -> np.ndarray:
    """Adaptively standardise raw windows ``(n, frames, coeffs)``: each entry of
    ``streams`` lists window indices in the order one device would hear them
    (e.g. a speaker's clips in some order, each clip's windows in time order).
    ``new_frames[i]`` is how many frames of window i are new (default: all).
    Windows in no stream keep the fixed standardisation; a window listed twice keeps
    its later output (a stream heard twice is scored after the state has heard it once).

    >>> st = Standardizer((0.0,), (1.0,))
    >>> x = np.ones((3, 2, 1), np.float32)
    >>> y = standardize_streams(x, [[2, 0]], AdaptiveConfig(time_constant=1.0, gate=-9.0), st, 0.5)
    >>> bool(np.allclose(y[1], 1.0)), bool(y[2, 0, 0] > y[0, 0, 0])
    (True, True)
    """
    x = np.asarray(features, np.float32)
    out = standardizer.apply(x)
    for order in streams:
        norm = AdaptiveNorm(config, standardizer, frame_seconds, x.shape[1])
        for i in order:
            out[i] = norm.window(x[i], None if new_frames is None else new_frames[i])
    return out
