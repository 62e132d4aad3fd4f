"""Random equalisation: a few peaking and shelving biquads, as microphones and rooms colour speech."""
from __future__ import annotations

import math
import numbers
from dataclasses import dataclass

import numpy as np
from scipy.signal import sosfilt

from ..errors import ConfigError
from ._base import Transform

MIN_Q, MAX_Q = 0.5, 2.0  # peaking bandwidths, drawn log-uniformly


def biquad(kind: str, freq_hz: float, gain_db: float, q: float, sample_rate: int) -> np.ndarray:
    """One second-order section ``[b0, b1, b2, 1, a1, a2]`` after R. Bristow-Johnson's
    Audio EQ Cookbook: ``kind`` ``"peak"`` (bandwidth ``q``), ``"low_shelf"`` or
    ``"high_shelf"`` (shelf slope 1; ``q`` unused).

    >>> import numpy as np
    >>> from scipy.signal import sosfreqz
    >>> sos = biquad("low_shelf", 300.0, 6.0, 1.0, 16000)[None]
    >>> _, h = sosfreqz(sos, worN=[0.0, 7999.0], fs=16000)
    >>> np.round(20 * np.log10(np.abs(h)), 2) + 0.0  # +6 dB at DC, 0 dB at Nyquist
    array([6., 0.])
    """
    a = 10.0 ** (gain_db / 40.0)
    w0 = 2.0 * math.pi * freq_hz / sample_rate
    cos_w, sin_w = math.cos(w0), math.sin(w0)
    if kind == "peak":
        alpha = sin_w / (2.0 * q)
        b = [1.0 + alpha * a, -2.0 * cos_w, 1.0 - alpha * a]
        den = [1.0 + alpha / a, -2.0 * cos_w, 1.0 - alpha / a]
    elif kind in ("low_shelf", "high_shelf"):
        s = 1.0 if kind == "low_shelf" else -1.0  # the high shelf mirrors the cosine terms
        k = 2.0 * math.sqrt(a) * sin_w / math.sqrt(2.0)  # 2 sqrt(A) alpha with slope S = 1
        b = [a * ((a + 1) - s * (a - 1) * cos_w + k), s * 2.0 * a * ((a - 1) - s * (a + 1) * cos_w),
             a * ((a + 1) - s * (a - 1) * cos_w - k)]
        den = [(a + 1) + s * (a - 1) * cos_w + k, -s * 2.0 * ((a - 1) + s * (a + 1) * cos_w),
               (a + 1) + s * (a - 1) * cos_w - k]
    else:
        raise ValueError(f"unknown biquad kind {kind!r}")
    return np.array([*b, *den]) / den[0]


@dataclass(frozen=True)
class RandomEQ(Transform):
    """Filter through ``k`` random biquads, ``k`` uniform in ``[min_bands, max_bands]``.

    Each band is, with equal chance, a peaking filter (bandwidth Q drawn
    log-uniformly in 0.5-2), a low shelf or a high shelf, at a frequency drawn
    log-uniformly from ``[min_freq_hz, max_freq_hz]`` (capped at 0.45 x the
    sample rate) with a gain uniform in ``[min_gain_db, max_gain_db]``: the
    broad tilts and resonances of cheap microphones, phone bodies and rooms.
    The bands run as one ``scipy.signal.sosfilt`` cascade.  The level is not
    renormalised (a boost makes the clip louder, as it would be).
    Limits: gains within [-24, 24] dB, frequencies 20-20000 Hz, 1-8 bands.

    >>> import numpy as np
    >>> x = np.random.default_rng(0).standard_normal(16000).astype(np.float32) * 0.1
    >>> y = RandomEQ(p=1.0)(x, 16000, np.random.default_rng(0))
    >>> y.dtype, bool(np.abs(y - x).max() > 0.01)
    (dtype('float32'), True)
    """

    min_bands: int = 1
    max_bands: int = 3
    min_gain_db: float = -6.0
    max_gain_db: float = 6.0
    min_freq_hz: float = 100.0
    max_freq_hz: float = 6000.0
    p: float = 0.3

    name = "eq"
    _bounds = {"min_gain_db": (-24.0, 24.0), "max_gain_db": (-24.0, 24.0),
               "min_freq_hz": (20.0, 20000.0), "max_freq_hz": (20.0, 20000.0)}
    _ranges = (("min_bands", "max_bands"), ("min_gain_db", "max_gain_db"), ("min_freq_hz", "max_freq_hz"))

    def __post_init__(self) -> None:
        for key in ("min_bands", "max_bands"):
            v = getattr(self, key)
            if isinstance(v, bool) or not isinstance(v, numbers.Real) or v != int(v) or not 1 <= v <= 8:
                raise ConfigError(f"{self.name}: {key} must be an integer within [1, 8], got {v!r}")
            object.__setattr__(self, key, int(v))
        super().__post_init__()

    def _apply(self, x: np.ndarray, sample_rate: int, rng: np.random.Generator) -> np.ndarray:
        k = int(rng.integers(self.min_bands, self.max_bands + 1))
        kinds = rng.integers(0, 3, size=k)
        log_f = rng.uniform(math.log(self.min_freq_hz), math.log(self.max_freq_hz), size=k)
        gains = rng.uniform(self.min_gain_db, self.max_gain_db, size=k)
        qs = np.exp(rng.uniform(math.log(MIN_Q), math.log(MAX_Q), size=k))
        top = 0.45 * sample_rate
        sos = np.stack([biquad(("peak", "low_shelf", "high_shelf")[int(kind)], min(math.exp(lf), top),
                               float(g), float(q), sample_rate)
                        for kind, lf, g, q in zip(kinds, log_f, gains, qs)])
        return sosfilt(sos, x.astype(np.float64)).astype(np.float32)
