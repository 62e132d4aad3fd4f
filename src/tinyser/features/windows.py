"""Analysis windows without SciPy for the common names, so the core install
(which has no SciPy) builds the ``cmsis_mfcc`` tables.

``hann``, ``hamming`` and ``blackman`` are computed exactly as
``scipy.signal.get_window(name, n, fftbins=True)`` computes them (the same
cosine sum over the same ``linspace``, so the values are bit-identical;
``tests/test_frontends.py`` checks it); any other name is handed to SciPy
(the ``train`` extra).
"""
from __future__ import annotations

import numpy as np

#: periodic cosine-sum windows: coefficients as scipy.signal.windows gives them
COSINE_WINDOWS: dict[str, tuple[float, ...]] = {
    "hann": (0.5, 1.0 - 0.5),
    "hamming": (0.54, 1.0 - 0.54),
    "blackman": (0.42, 0.50, 0.08),
}


def get_window(name: str, n: int) -> np.ndarray:
    """The periodic (FFT) window ``name`` of ``n`` samples, float64.

    >>> get_window("hann", 4).tolist()
    [0.0, 0.5, 1.0, 0.5]

    Unknown names raise ``ValueError`` (from SciPy, when it is installed).
    """
    coefs = COSINE_WINDOWS.get(name) if isinstance(name, str) else None
    if coefs is None:
        from ..extras import need

        need("scipy", f"the {name!r} window")
        import scipy.signal

        return scipy.signal.get_window(name, n, fftbins=True).astype(np.float64)
    if n <= 1:
        return np.ones(max(n, 0))
    fac = np.linspace(-np.pi, np.pi, n + 1)  # periodic: one more point, then dropped
    w = np.zeros(n + 1)
    for k, a in enumerate(coefs):
        w += a * np.cos(k * fac)
    return w[:-1]
