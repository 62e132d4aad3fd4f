"""Additive coloured noise (white, pink, brown and between) at a random SNR."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.fft

from ._base import Transform

#: Noise below this frequency (Hz) is removed: it is inaudible, the feature
#: frontend ignores it, and for brown noise it would otherwise hold most of the
#: energy, so the SNR would say little about what the model hears.
LOWEST_HZ = 20.0


def coloured_noise(n: int, beta: float, sample_rate: int, rng: np.random.Generator) -> np.ndarray:
    """``n`` samples of Gaussian noise whose power spectrum falls as ``1 / f**beta``.

    ``beta`` 0 is white, 1 pink, 2 brown (red); negative values tilt towards
    high frequencies (-1 blue).  Content below :data:`LOWEST_HZ` is removed.
    The result is float64 with unit RMS (shaped in single precision) (zeros if ``n`` is 0).

    >>> import numpy as np
    >>> w = coloured_noise(16000, 1.0, 16000, np.random.default_rng(0))
    >>> w.shape, round(float(np.sqrt(np.mean(w ** 2))), 6)
    ((16000,), 1.0)
    """
    if n <= 0:
        return np.zeros(max(n, 0))
    m = scipy.fft.next_fast_len(n, real=True)
    spectrum = scipy.fft.rfft(rng.standard_normal(m, dtype=np.float32))  # single precision: cheaper
    f = np.fft.rfftfreq(m, 1.0 / sample_rate).astype(np.float32)
    shape = np.zeros_like(f)
    audible = f >= LOWEST_HZ
    shape[audible] = (f[audible] / LOWEST_HZ) ** (-beta / 2.0)  # amplitude ~ f^(-beta/2): power ~ f^-beta
    noise = scipy.fft.irfft(spectrum * shape, m)[:n].astype(np.float64)
    r = float(np.sqrt(np.mean(np.square(noise))))
    return noise / r if r > 0 else noise


@dataclass(frozen=True)
class ColouredNoise(Transform):
    """Add noise with power spectrum ``1 / f**beta`` at a random SNR.

    ``beta`` is drawn uniformly from ``[min_beta, max_beta]`` (0 white, 1 pink,
    2 brown: hum, wind, fans and traffic are mostly low-frequency) and the SNR
    uniformly from ``[min_snr_db, max_snr_db]``.  The noise is shaped in the
    frequency domain from Gaussian noise drawn from ``rng``, has nothing below
    20 Hz, and is scaled so that the clip-RMS to noise-RMS ratio is exactly the
    drawn SNR.  A silent clip is returned unchanged.
    Limits: SNRs within [-30, 120] dB, beta within [-2, 2].

    >>> import numpy as np
    >>> x = np.sin(np.arange(16000) / 5).astype(np.float32)
    >>> t = ColouredNoise(min_snr_db=10, max_snr_db=10, min_beta=1, max_beta=1, p=1.0)
    >>> y = t(x, 16000, np.random.default_rng(0))
    >>> round(float(20 * np.log10(np.std(x) / np.std(y - x))), 1)
    10.0
    """

    min_snr_db: float = 5.0
    max_snr_db: float = 30.0
    min_beta: float = 0.0
    max_beta: float = 2.0
    p: float = 0.5

    name = "coloured_noise"
    _bounds = {"min_snr_db": (-30.0, 120.0), "max_snr_db": (-30.0, 120.0),
               "min_beta": (-2.0, 2.0), "max_beta": (-2.0, 2.0)}
    _ranges = (("min_snr_db", "max_snr_db"), ("min_beta", "max_beta"))

    def _apply(self, x: np.ndarray, sample_rate: int, rng: np.random.Generator) -> np.ndarray:
        snr_db = rng.uniform(self.min_snr_db, self.max_snr_db)
        beta = rng.uniform(self.min_beta, self.max_beta)
        noise = coloured_noise(x.shape[0], beta, sample_rate, rng)
        signal_rms = float(np.sqrt(np.mean(np.square(x, dtype=np.float64))))
        if signal_rms == 0.0 or not noise.any():
            return x.copy()
        return (x + noise * (signal_rms * 10.0 ** (-snr_db / 20.0))).astype(np.float32)
