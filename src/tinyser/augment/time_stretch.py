"""Time stretch without pitch change, keeping the clip's length (crop or zero-pad)."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ._base import Transform, run_frozen


@dataclass(frozen=True)
class TimeStretch(Transform):
    """Change tempo by a rate drawn uniformly from ``[min_rate, max_rate]``, pitch unchanged.

    ``rate > 1`` speeds speech up (the tail is zero-padded), ``rate < 1``
    slows it down (the end is cropped); the output always has the input's
    length.  Uses audiomentations' signalsmith-stretch backend with the rate
    fixed by ``rng``.  Limits: rates within [0.1, 10].

    >>> import numpy as np
    >>> x = np.sin(np.arange(16000) / 5).astype(np.float32)
    >>> y = TimeStretch(min_rate=2.0, max_rate=2.0, p=1.0)(x, 16000, np.random.default_rng(0))
    >>> y.shape, bool(np.all(y[-4000:] == 0))
    ((16000,), True)
    """

    min_rate: float = 0.9
    max_rate: float = 1.1
    p: float = 0.3

    name = "time_stretch"
    _bounds = {"min_rate": (0.1, 10.0), "max_rate": (0.1, 10.0)}
    _ranges = (("min_rate", "max_rate"),)

    def _apply(self, x: np.ndarray, sample_rate: int, rng: np.random.Generator) -> np.ndarray:
        rate = float(rng.uniform(self.min_rate, self.max_rate))
        if rate == 1.0:
            return x.copy()
        from ..extras import need

        _Stretch = need("audiomentations", "the time-stretch augmentation").TimeStretch  # heavy import, deferred
        t = _Stretch(min_rate=rate, max_rate=rate, leave_length_unchanged=True, method="signalsmith_stretch", p=1.0)
        return run_frozen(t, {"rate": rate}, x, sample_rate, rng)
