"""Speed perturbation: resample so that tempo and pitch change together."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ._base import Transform, _fit_length


@dataclass(frozen=True)
class SpeedPerturb(Transform):
    """Play the clip ``factor`` times faster, ``factor`` uniform in ``[min_factor, max_factor]``.

    As in Ko et al., "Audio augmentation for speech recognition" (Interspeech
    2015), the waveform is resampled (libsoxr, the resampler of sox's
    ``speed`` effect) by ``1 / factor`` and played at the original rate, so
    duration shrinks and every frequency (pitch and formants) rises by
    ``factor``; the paper's factors are 0.9, 1.0 and 1.1.  Unlike
    :class:`~tinyser.augment.TimeStretch` + :class:`~tinyser.augment.PitchShift`
    this is one cheap resampling (about 1 ms per second of 16 kHz audio).
    The output keeps the input's length: a faster clip is zero-padded at the
    end, a slower one cropped.  Limits: factors within [0.5, 2].

    >>> import numpy as np
    >>> x = np.sin(2 * np.pi * 200 * np.arange(16000) / 16000).astype(np.float32)
    >>> y = SpeedPerturb(min_factor=1.25, max_factor=1.25, p=1.0)(x, 16000, np.random.default_rng(0))
    >>> y.shape, bool(np.all(y[12900:] == 0)), bool(np.abs(y[:12700]).max() > 0.9)
    ((16000,), True, True)
    """

    min_factor: float = 0.9
    max_factor: float = 1.1
    p: float = 0.3

    name = "speed"
    _bounds = {"min_factor": (0.5, 2.0), "max_factor": (0.5, 2.0)}
    _ranges = (("min_factor", "max_factor"),)

    def _apply(self, x: np.ndarray, sample_rate: int, rng: np.random.Generator) -> np.ndarray:
        factor = float(rng.uniform(self.min_factor, self.max_factor))
        if factor == 1.0 or x.shape[0] < 2:
            return x.copy()
        import soxr  # deferred: only loaded when the transform fires

        # Read the clip as if recorded at factor * rate and resample it to the
        # rate: n / factor samples that, played at the rate, are factor x faster.
        y = soxr.resample(x, sample_rate * factor, sample_rate, quality="HQ")
        return _fit_length(y, x.shape[0])
