"""Additive white Gaussian noise at a signal-to-noise ratio drawn in dB."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ._base import Transform


@dataclass(frozen=True)
class AddGaussianNoise(Transform):
    """Add white Gaussian noise at an SNR drawn uniformly from ``[min_snr_db, max_snr_db]``.

    The SNR is the ratio of the clip's RMS to the noise's RMS; the drawn noise
    is rescaled to exactly that RMS, so the achieved SNR equals the drawn one.
    A silent clip (RMS 0) has no defined SNR and is returned unchanged.
    Limits: SNRs within [-30, 120] dB.

    >>> import numpy as np
    >>> x = np.sin(np.arange(16000) / 5).astype(np.float32)
    >>> y = AddGaussianNoise(min_snr_db=20, max_snr_db=20, p=1.0)(x, 16000, np.random.default_rng(0))
    >>> snr = 20 * np.log10(np.sqrt(np.mean(x**2)) / np.sqrt(np.mean((y - x) ** 2)))
    >>> round(float(snr), 2)
    20.0
    """

    min_snr_db: float = 10.0
    max_snr_db: float = 30.0
    p: float = 0.5

    name = "noise"
    _bounds = {"min_snr_db": (-30.0, 120.0), "max_snr_db": (-30.0, 120.0)}
    _ranges = (("min_snr_db", "max_snr_db"),)

    def _apply(self, x: np.ndarray, sample_rate: int, rng: np.random.Generator) -> np.ndarray:
        snr_db = rng.uniform(self.min_snr_db, self.max_snr_db)
        noise = rng.standard_normal(x.shape[0])
        signal_rms = float(np.sqrt(np.mean(np.square(x, dtype=np.float64))))
        noise_rms = float(np.sqrt(np.mean(np.square(noise))))
        if signal_rms == 0.0 or noise_rms == 0.0:
            return x.copy()
        noise *= signal_rms / (noise_rms * 10.0 ** (snr_db / 20.0))
        return (x + noise).astype(np.float32)
