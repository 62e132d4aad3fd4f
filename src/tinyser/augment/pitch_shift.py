"""Pitch shift by a number of semitones without changing duration."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ._base import Transform, run_frozen


@dataclass(frozen=True)
class PitchShift(Transform):
    """Transpose by a number of semitones drawn uniformly from ``[min_semitones, max_semitones]``.

    Frequencies scale by ``2 ** (s / 12)``; duration and length are kept.
    Uses audiomentations' signalsmith-stretch backend with the shift fixed by
    ``rng``.  Limits: semitones within [-24, 24].

    >>> import numpy as np
    >>> x = np.sin(2 * np.pi * 440 * np.arange(16000) / 16000).astype(np.float32)
    >>> y = PitchShift(min_semitones=12, max_semitones=12, p=1.0)(x, 16000, np.random.default_rng(0))
    >>> peak_hz = int(np.argmax(np.abs(np.fft.rfft(y))))  # 1 Hz bins
    >>> round(peak_hz / 440, 2)  # one octave up
    2.0
    """

    min_semitones: float = -2.0
    max_semitones: float = 2.0
    p: float = 0.3

    name = "pitch_shift"
    _bounds = {"min_semitones": (-24.0, 24.0), "max_semitones": (-24.0, 24.0)}
    _ranges = (("min_semitones", "max_semitones"),)

    def _apply(self, x: np.ndarray, sample_rate: int, rng: np.random.Generator) -> np.ndarray:
        semitones = float(rng.uniform(self.min_semitones, self.max_semitones))
        if semitones == 0.0:
            return x.copy()
        from ..extras import need

        _Shift = need("audiomentations", "the pitch-shift augmentation").PitchShift  # heavy import, deferred
        t = _Shift(min_semitones=semitones, max_semitones=semitones, method="signalsmith_stretch", p=1.0)
        return run_frozen(t, {"num_semitones": semitones}, x, sample_rate, rng)
