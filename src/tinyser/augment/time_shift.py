"""Shift the waveform in time by a fraction of its length (roll or zero-fill)."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ._base import Transform


@dataclass(frozen=True)
class TimeShift(Transform):
    """Move the audio by ``round(f * len)`` samples, ``f`` uniform in ``[min_fraction, max_fraction]``.

    Positive fractions move the audio later.  With ``rollover=True`` samples
    pushed off one end re-enter at the other (``np.roll``); with
    ``rollover=False`` (default) they are dropped and the gap is zero-filled,
    so an utterance's end is never spliced onto its start.
    Limits: fractions within [-1, 1].

    >>> import numpy as np
    >>> x = np.zeros(10, np.float32); x[2] = 1.0
    >>> TimeShift(min_fraction=0.3, max_fraction=0.3, p=1.0)(x, 16000, np.random.default_rng(0))
    array([0., 0., 0., 0., 0., 1., 0., 0., 0., 0.], dtype=float32)
    """

    min_fraction: float = -0.1
    max_fraction: float = 0.1
    rollover: bool = False
    p: float = 0.5

    name = "time_shift"
    _bounds = {"min_fraction": (-1.0, 1.0), "max_fraction": (-1.0, 1.0)}
    _ranges = (("min_fraction", "max_fraction"),)

    def _apply(self, x: np.ndarray, sample_rate: int, rng: np.random.Generator) -> np.ndarray:
        n = x.shape[0]
        k = int(np.rint(rng.uniform(self.min_fraction, self.max_fraction) * n))
        if self.rollover:
            return np.roll(x, k)
        out = np.zeros_like(x)
        if k > 0:
            out[k:] = x[: n - k]
        elif k < 0:
            out[: n + k] = x[-k:]
        else:
            out[:] = x
        return out
