"""Random gain: scale the waveform by a level drawn uniformly in dB."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ._base import Transform


@dataclass(frozen=True)
class Gain(Transform):
    """Multiply by ``10 ** (g / 20)`` with ``g`` drawn uniformly from ``[min_gain_db, max_gain_db]``.

    Output is not clipped, so a positive gain can leave ``[-1, 1]``.
    Limits: gains within [-60, 60] dB.

    >>> import numpy as np
    >>> y = Gain(min_gain_db=6, max_gain_db=6, p=1.0)(np.full(4, 0.25, np.float32), 16000, np.random.default_rng(0))
    >>> np.round(y, 4)
    array([0.4988, 0.4988, 0.4988, 0.4988], dtype=float32)
    """

    min_gain_db: float = -6.0
    max_gain_db: float = 6.0
    p: float = 0.5

    name = "gain"
    _bounds = {"min_gain_db": (-60.0, 60.0), "max_gain_db": (-60.0, 60.0)}
    _ranges = (("min_gain_db", "max_gain_db"),)

    def _apply(self, x: np.ndarray, sample_rate: int, rng: np.random.Generator) -> np.ndarray:
        gain_db = rng.uniform(self.min_gain_db, self.max_gain_db)
        return (x * 10.0 ** (gain_db / 20.0)).astype(np.float32)
