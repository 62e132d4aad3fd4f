"""Telephone band-limiting: a random band-pass, optionally through an 8 kHz channel."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.signal import butter, sosfilt

from ..errors import ConfigError
from ._base import Transform, _fit_length

ORDER = 4  # Butterworth order of each edge: 24 dB per octave outside the band


@dataclass(frozen=True)
class BandLimit(Transform):
    """Keep only a telephone-like band: a Butterworth band-pass with random edges.

    The low edge is drawn uniformly from ``[min_low_hz, max_low_hz]`` (narrow-band
    telephony passes from about 300 Hz), the high edge from ``[min_high_hz,
    max_high_hz]`` (about 3.4 kHz), both 4th-order Butterworth (24 dB per octave),
    applied causally like a real channel (``scipy.signal.sosfilt``).  With
    probability ``p_8k`` the clip is also resampled to 8 kHz and back (libsoxr),
    as a narrow-band codec path would; clips at 8 kHz or less skip that step.
    Edges at or above 0.45 x the sample rate are lowered to it.
    Limits: low edges 20-4000 Hz, high edges 500-20000 Hz, max_low_hz < min_high_hz.

    >>> import numpy as np
    >>> t = np.arange(16000) / 16000
    >>> x = (np.sin(2 * np.pi * 100 * t) + np.sin(2 * np.pi * 1000 * t)).astype(np.float32)
    >>> y = BandLimit(p=1.0)(x, 16000, np.random.default_rng(0))
    >>> spec = np.abs(np.fft.rfft(y[4000:] * np.hanning(12000)))
    >>> bool(spec[75] < 0.03 * spec[750])  # 100 Hz down by over 30 dB relative to 1 kHz
    True
    """

    min_low_hz: float = 200.0
    max_low_hz: float = 400.0
    min_high_hz: float = 3000.0
    max_high_hz: float = 4000.0
    p_8k: float = 0.5
    p: float = 0.15

    name = "bandlimit"
    _bounds = {"min_low_hz": (20.0, 4000.0), "max_low_hz": (20.0, 4000.0),
               "min_high_hz": (500.0, 20000.0), "max_high_hz": (500.0, 20000.0), "p_8k": (0.0, 1.0)}
    _ranges = (("min_low_hz", "max_low_hz"), ("min_high_hz", "max_high_hz"))

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.max_low_hz >= self.min_high_hz:
            raise ConfigError(f"{self.name}: max_low_hz ({self.max_low_hz:g}) must be below "
                              f"min_high_hz ({self.min_high_hz:g})")

    def _apply(self, x: np.ndarray, sample_rate: int, rng: np.random.Generator) -> np.ndarray:
        low = float(rng.uniform(self.min_low_hz, self.max_low_hz))
        high = min(float(rng.uniform(self.min_high_hz, self.max_high_hz)), 0.45 * sample_rate)
        narrow = bool(rng.random() < self.p_8k) and sample_rate > 8000
        y = x.astype(np.float64)
        if narrow and x.shape[0] > 1:
            import soxr  # deferred: only loaded when needed

            y = soxr.resample(soxr.resample(y, sample_rate, 8000), 8000, sample_rate)
            y = _fit_length(y, x.shape[0]).astype(np.float64)
        if low < high:
            sos = butter(ORDER, [low, high], btype="bandpass", fs=sample_rate, output="sos")
            y = sosfilt(sos, y)
        return y.astype(np.float32)
