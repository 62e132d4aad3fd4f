"""Clipping: the loudest samples flattened, as in an overdriven recording."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ._base import Transform


@dataclass(frozen=True)
class Clipping(Transform):
    """Hard-clip a random fraction of the samples, as an overdriven input stage does.

    A fraction ``q`` is drawn uniformly from ``[min_fraction, max_fraction]``
    and every sample whose magnitude exceeds the ``1 - q`` quantile of ``|x|``
    is set to that level (with its sign), so about ``q`` of the samples end up
    clipped and the peak falls to the threshold.  This is a gain of
    ``1 / threshold`` into a full-scale clipper followed by the inverse gain:
    the waveform is distorted like a clipped recording while its level stays
    comparable (combine with :class:`~tinyser.augment.Gain` for level).
    A clip whose threshold is 0 (mostly digital silence) is returned unchanged.
    Limits: fractions within [0, 0.5].

    >>> import numpy as np
    >>> x = np.sin(np.arange(16000) / 5).astype(np.float32)
    >>> y = Clipping(min_fraction=0.05, max_fraction=0.05, p=1.0)(x, 16000, np.random.default_rng(0))
    >>> peak = float(np.abs(y).max())
    >>> peak < 0.999, round(float(np.mean(np.abs(x) >= peak)), 2)
    (True, 0.05)
    """

    min_fraction: float = 0.01
    max_fraction: float = 0.1
    p: float = 0.1

    name = "clipping"
    _bounds = {"min_fraction": (0.0, 0.5), "max_fraction": (0.0, 0.5)}
    _ranges = (("min_fraction", "max_fraction"),)

    def _apply(self, x: np.ndarray, sample_rate: int, rng: np.random.Generator) -> np.ndarray:
        q = float(rng.uniform(self.min_fraction, self.max_fraction))
        threshold = float(np.quantile(np.abs(x), 1.0 - q))
        if threshold <= 0.0:
            return x.copy()
        return np.clip(x, -threshold, threshold).astype(np.float32)
