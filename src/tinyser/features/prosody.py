"""Prosody channels of the ``cmsis_mfcc`` frontend (``prosody=True``): per frame,
log-F0 in semitones, voicing strength and loudness, computed from the very
frame the MFCC uses, in float32, in the order the C frontend computes them
(``tinyser_prosody`` in ``deploy/c/tinyser_frontend.c``).

One frame ``x`` of ``N`` samples (float32; ``sr`` the sample rate):

1. The frame's spectrum magnitude exactly as ``arm_mfcc_f32`` leaves it:
   ``m = max|x|``; ``x ← x·(1/m)`` (if ``m != 0``); ``x ← x·w``;
   ``X = arm_rfft_fast_f32(x)``; ``A[k] = sqrt(re² + im²)``; ``A ← A·m``
   (if ``m != 0``), bins ``k = 0..N/2``.
2. Power in the pitch band: ``P[k] = A[k]·A[k]`` for ``k_lo <= k <= k_hi``
   (``k_lo`` the first bin at or above :data:`LOW_CUT_HZ`, so DC and its window
   leakage are not "periodic"; ``k_hi`` the last bin at or below
   :data:`HIGH_CUT_HZ` and ``sr/4``), else 0.
3. Autocorrelation at even lags: ``H[τ] = Σ_k P[k]·cos(2πkτ/N)`` (half the DFT
   of ``P`` mirrored to ``N`` points). The band ending at or below ``sr/4``,
   ``H[2m]`` for ``m = 0..q`` (``q = N/4``) is the DCT-I of ``P[0..q]``, computed
   with ``arm_rfft_fast_f32`` of ``q`` points (a quarter of the frame's transform):
   ``y_j = (0.5·(P_j + P_{q-j})) - s_j·(P_j - P_{q-j})`` with ``s_j = sin(πj/q)``;
   ``H[4i] = Re Y_i + 0.5·(P_0 + P_q)``; ``H[2] = Σ_{j} P_j·cos(πj/q) + (P_0 - P_q)``
   (summed in order over the band) and ``H[4i+2] = H[4i-2] - Im Y_i``.
4. Normalised and corrected for the window (Boersma 1993):
   ``r[τ] = (H[τ]·(1/H[0]))·c[τ]`` with ``c[τ] = Rw[0]/Rw[τ]``, ``Rw`` the
   circular autocorrelation of the window (a table), for even ``τ = 2m``,
   ``m = m_lo-1 .. m_hi+1`` (``2 m_lo >= lag_min = floor(sr/F0_MAX)``,
   ``2 m_hi >= lag_max = ceil(sr/F0_MIN)``).
5. Peak: local maxima ``r[τ-2] < r[τ] >= r[τ+2]`` for ``m_lo <= m <= m_hi``, each
   weighed by the height of the parabola through its three points (6.), which
   a sharp peak between two even lags needs; ``best`` the largest height, if
   positive (else there is no peak); the chosen ``τ`` is the *smallest* whose
   height reaches ``OCTAVE_RATIO·best`` (the octave guard: a period's multiples
   peak about as high as the period itself, so the shortest wins).
6. Full resolution: ``H[τ-1]`` and ``H[τ+1]`` summed directly (``Σ_{k_lo}^{k_hi}``
   in order, ``cos`` from a table of ``N`` values), normalised as in 4.; ``t`` the
   largest of ``r[τ-1], r[τ], r[τ+1]`` (the first on a tie); parabolic
   interpolation with ``a, b, c = r[t-1], r[t], r[t+1]``:
   ``den = (a + c) - (b + b)``; ``d = (0.5·(a - c))/den`` (0 unless ``den < 0``,
   clipped to ±0.5); ``lag = t + d``; ``strength = b - (0.25·(a - c))·d``,
   clipped to [0, 1] (0 when there is no peak or ``H[0] <= 0``).
7. Voiced when ``strength >= VOICING_THRESHOLD`` and loudness ``>= MIN_LEVEL_DB``.
8. Channels (float32; ``ln`` is C's ``logf``: cmsisdsp's ``arm_vlog_f32`` here):

   * ``semitones = ln(K/lag)·(12/ln 2)`` with ``K = sr/REF_HZ`` (F0 in semitones
     above :data:`REF_HZ`, 3.2..39.9 for 60..500 Hz); **0 when unvoiced**;
   * ``strength`` (the voicing strength of 6.);
   * ``loudness = ln(H[0]·S + 1e-10)·(10/ln 10)``, ``S = 2/(N·Σw²)``: the
     band's mean square in dB (a full-scale sine in the band reads -3 dB).

Measured (``benchmarks/prosody.py``, docs/results.md): F0 within 0.90 % on
harmonic tones and glides 60-500 Hz; against ``librosa.pyin`` on 240 clips of
the four corpora, gross pitch errors on 2.4 % of the frames both call voiced and
voicing agreement 84.5 % (the 90 % goal is not met; a decision tree learned on
these values reaches 88.1 %). On an emulated Cortex-M4F the analysis costs 1.9 M
(portable C) / 1.5 M (CMSIS-DSP) instructions per second of audio.

The channels are appended after the MFCCs (c0 stays feature 0). The portable
C FFT differs from CMSIS's by float rounding, so on rare frames a voicing
decision or lag may differ between it and this reference; the CMSIS-DSP C
path uses the same kernels as this module.

>>> import numpy as np
>>> from tinyser.features import get_config
>>> cfg = get_config("cmsis_mfcc", prosody=True)
>>> t = np.arange(16000) / 16000
>>> y = sum(0.3 / k * np.sin(2 * np.pi * 200 * k * t) for k in range(1, 6)).astype(np.float32)
>>> p = analyse(y, cfg)
>>> round(float(np.median(p["f0"])), 1), bool(p["voiced"].all())
(200.0, True)
"""
from __future__ import annotations

from functools import lru_cache

import numpy as np

F0_MIN = 60.0          #: lowest F0 searched (Hz)
F0_MAX = 500.0         #: highest F0 searched (Hz)
LOW_CUT_HZ = 50.0      #: bins below this are left out (DC, hum's fundamental)
HIGH_CUT_HZ = 4000.0   #: bins above this are left out (fricatives, noise)
REF_HZ = 50.0          #: 0 semitones
OCTAVE_RATIO = 0.9     #: the shortest-lag peak within this fraction of the best wins
VOICING_THRESHOLD = 0.5
MIN_LEVEL_DB = -60.0   #: quieter frames are unvoiced whatever their periodicity
LOUDNESS_FLOOR = 1e-10  #: added before the log: silence reads -100 dB
N_CHANNELS = 3
#: bump when a change alters the channels a config gives (feature caches are keyed by it):
#: 1 = a full-length transform; 2 = even lags from the DCT-I through a quarter-length transform;
#: 3 = the same, H[2]'s end term added last (float rounding: at most 2e-4 semitone)
ANALYSIS_VERSION = 3
CHANNELS = ("semitones", "voicing", "loudness_db")


@lru_cache(maxsize=16)
def _tables(sr: int, n: int, window: str) -> dict:
    from .cmsis import _window64

    w = _window64(window, n)
    k = np.arange(n // 2 + 1) * sr / n
    q = n // 4  # the band ends at or below sr/4: its autocorrelation's even lags take a DCT-I of q + 1 points
    k_lo = int(np.flatnonzero(k >= LOW_CUT_HZ)[0])
    k_hi = int(np.flatnonzero(k <= min(HIGH_CUT_HZ, sr / 4))[-1])
    lag_min = int(np.floor(sr / F0_MAX))
    lag_max = int(np.ceil(sr / F0_MIN))
    m_lo, m_hi = (lag_min + 1) // 2, (lag_max + 1) // 2  # even lags 2m covering lag_min..lag_max
    lag0 = 2 * m_lo - 2  # the first lag any step reads
    if not (2 <= lag_min and 2 * m_hi + 2 < n // 2 and k_lo < k_hi and q >= 32):
        raise ValueError(f"prosody needs frames longer than 2 x {2 * m_hi + 2} samples at {sr} Hz")
    lin = np.correlate(w, w, mode="full")[n - 1:]  # Rw_lin[τ], τ = 0..n-1
    circ = lin + np.concatenate([[0.0], lin[:0:-1]])  # + Rw_lin[n - τ]
    lags = np.arange(lag0, 2 * m_hi + 3)
    cos = np.cos(2 * np.pi * np.arange(n) / n)
    cos[np.abs(cos) < 1e-9] = 0.0  # exact zeros at a quarter and three quarters of a turn
    t = {
        "k_lo": k_lo, "k_hi": k_hi, "lag_min": lag_min, "lag_max": lag_max, "q": q, "m_lo": m_lo, "m_hi": m_hi,
        "lag0": lag0, "lag_corr": (circ[0] / circ[lags]).astype(np.float32), "cos": cos.astype(np.float32),
        "loud_scale": np.float32(2.0 / (n * np.sum(w * w))),
        "st_k": np.float32(sr / REF_HZ),
        "st_scale": np.float32(12.0 / np.log(2.0)),
        "db_scale": np.float32(10.0 / np.log(10.0)),
        "sr": np.float32(sr),
    }
    t["lag_corr"].setflags(write=False)
    t["cos"].setflags(write=False)
    return t


def prosody_tables(cfg) -> dict:
    """The constants of the prosody channels for a ``cmsis_mfcc`` config (the C
    tables hold the same): band bins ``k_lo..k_hi``, lags ``lag_min..lag_max``
    searched as even lags ``2m``, ``m_lo <= m <= m_hi``; ``q`` (the DCT-I's
    size, N/4); ``lag_corr`` (float32, lags ``lag0 .. 2 m_hi + 2``), ``cos``
    (float32 cos(2πi/N), i < N), ``loud_scale``, ``st_k``, ``st_scale``,
    ``db_scale``, ``sr`` (float32 scalars).

    >>> from tinyser.features import get_config
    >>> t = prosody_tables(get_config("cmsis_mfcc"))
    >>> t["k_lo"], t["k_hi"], t["lag_min"], t["lag_max"], t["m_lo"], t["m_hi"], t["lag_corr"].size
    (4, 256, 32, 267, 16, 134, 241)
    """
    return _tables(cfg.sample_rate, cfg.frame_length, cfg.window)


@lru_cache(maxsize=8)
def _rfft(n: int):
    from .cmsis import cmsisdsp_module

    dsp = cmsisdsp_module()
    if dsp is None:  # NumPy, float64, in CMSIS's packed layout
        if n not in (2 ** k for k in range(5, 13)):
            raise ValueError(f"CMSIS-DSP has no real FFT of {n} points")

        def run_numpy(x: np.ndarray) -> np.ndarray:
            """Packed real FFTs: ``[X0, X(n/2), re X1, im X1, ...]``, float32."""
            s = np.fft.rfft(np.asarray(x, np.float64), axis=-1)
            out = np.empty(x.shape, np.float32)
            out[:, 0], out[:, 1] = s[:, 0].real, s[:, -1].real
            out[:, 2::2], out[:, 3::2] = s[:, 1:-1].real, s[:, 1:-1].imag
            return out

        return run_numpy

    inst = dsp.arm_rfft_fast_instance_f32()
    if dsp.arm_rfft_fast_init_f32(inst, n):
        raise ValueError(f"CMSIS-DSP has no real FFT of {n} points")
    fft = dsp.arm_rfft_fast_f32

    def run(x: np.ndarray) -> np.ndarray:
        """Packed CMSIS real FFTs of rows of x (F, n) → (F, n)."""
        out = np.empty_like(x)
        for i in range(x.shape[0]):
            out[i] = fft(inst, x[i], 0)
        return out

    run.instance = inst
    return run


def _ln(x: np.ndarray) -> np.ndarray:
    """C's logf, elementwise (cmsisdsp's arm_vlog_f32 calls it on a host; NumPy's
    float32 log without cmsisdsp)."""
    from .cmsis import cmsisdsp_module

    dsp = cmsisdsp_module()
    if dsp is None:
        return np.log(np.asarray(x, np.float32))
    flat = np.ascontiguousarray(x, np.float32).ravel()
    return np.asarray(dsp.arm_vlog_f32(flat), np.float32).reshape(np.shape(x)) if flat.size else flat.reshape(
        np.shape(x))


def magnitudes(fr: np.ndarray, window_f32: np.ndarray) -> np.ndarray:
    """Step 1: ``arm_mfcc_f32``'s spectrum magnitude ``(F, N/2+1)`` of float32 frames ``(F, N)``."""
    x = np.array(fr, np.float32)  # a copy: the steps work in place
    n = x.shape[1]
    m = np.max(np.abs(x), axis=1)
    nz = m != 0
    inv = np.ones_like(m)
    inv[nz] = np.float32(1.0) / m[nz]
    x[nz] *= inv[nz, None]
    x *= window_f32
    s = _rfft(n)(x)
    re = np.empty((x.shape[0], n // 2 + 1), np.float32)
    im = np.zeros_like(re)
    re[:, 0], re[:, n // 2] = s[:, 0], s[:, 1]
    re[:, 1:n // 2], im[:, 1:n // 2] = s[:, 2::2], s[:, 3::2]
    a = np.sqrt(re * re + im * im)
    a[nz] *= m[nz, None]
    return a


def _even_lags(p: np.ndarray, t: dict, m_top: int) -> np.ndarray:
    """Steps 3-4: ``H[2m] = Σ_k P[k] cos(2π k 2m / N)`` for ``m = 0..m_top`` (float32 ``(F, m_top+1)``) of
    band powers ``p`` ``(F, q+1)`` (zero outside the band): the DCT-I
    ``C[m] = Σ_{j=0}^{q} p_j cos(π j m / q)``, through a real FFT of ``q`` points:
    ``y_j = 0.5·(p_j + p_{q-j}) - sin(π j / q)·(p_j - p_{q-j})``; ``C[2i] = Re Y_i + 0.5·(p_0 + p_q)``;
    ``C[1] = Σ_{j=1}^{q-1} p_j cos(π j / q) + (p_0 - p_q)`` (summed in order); ``C[2i+1] = C[2i-1] - Im Y_i``."""
    q, cos, n = t["q"], t["cos"], t["cos"].size
    rev = p[:, ::-1][:, :q]  # p_{q-j}, j = 0..q-1
    head = p[:, :q]
    u = np.float32(0.5) * (head + rev)
    d = head - rev
    sin = cos[(2 * np.arange(q) - n // 4) % n]  # sin(π j / q) = cos(2π (2j - N/4) / N)
    y = u - sin * d
    spec = _rfft(q)(np.ascontiguousarray(y))
    f = p.shape[0]
    h = np.empty((f, m_top + 1), np.float32)
    e = np.float32(0.5) * (p[:, 0] + p[:, q])
    even = np.arange(0, m_top + 1, 2)
    h[:, even] = spec[:, even] + e[:, None]  # Re Y_i, packed at 2i = m (m_top < q: no Nyquist term)
    j = np.arange(t["k_lo"], min(t["k_hi"], q - 1) + 1)  # the band: other terms are exact zeros
    acc = _in_order(np.zeros(f, np.float32), p[:, j] * cos[2 * j]) + (p[:, 0] - p[:, q])
    odd = np.arange(1, m_top + 1, 2)
    h[:, odd] = np.cumsum(np.concatenate([acc[:, None], -spec[:, odd[1:]]], axis=1), axis=1, dtype=np.float32)
    return h  # C[m] = C[m - 2] - Im Y_i, i = (m - 1) / 2, packed at 2i + 1 = m


def _in_order(start: np.ndarray, terms: np.ndarray) -> np.ndarray:
    """``start + terms[:, 0] + terms[:, 1] + ...`` in float32, one addition after another from the left, as
    the C frontend's loops sum (``np.cumsum`` accumulates in order; ``np.sum`` would pair terms up).

    >>> t = np.array([[1e8, 1.0, -1e8, 1.0]], np.float32)
    >>> _in_order(np.zeros(1, np.float32), t).tolist()   # 1e8 + 1 rounds to 1e8 in float32
    [1.0]
    """
    if terms.shape[1] == 0:
        return start
    return np.cumsum(np.concatenate([start[:, None], terms], axis=1), axis=1, dtype=np.float32)[:, -1]


def _odd_lags(p: np.ndarray, t: dict, tau: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``H[τ-1]`` and ``H[τ+1]``, each ``Σ_{k_lo}^{k_hi} P[k] cos(2π k lag / N)`` summed in order, one
    ``τ`` per frame (step 6; one pass for both, as the C frontend's ``odd_lags``)."""
    cos, n = t["cos"], t["cos"].size
    k = np.arange(t["k_lo"], t["k_hi"] + 1)
    band, zero = p[:, k], np.zeros(p.shape[0], np.float32)
    return tuple(_in_order(zero, band * cos[(k * (tau[:, None] + s)) % n]) for s in (-1, 1))


def _parabola(a: np.ndarray, b: np.ndarray, c: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The offset ``d`` (in steps, within ±0.5; 0 unless the three points bend down) and the height
    of the parabola through ``a, b, c``: ``den = (a + c) - (b + b)``, ``d = (0.5·(a - c))/den``,
    ``height = b - (0.25·(a - c))·d``."""
    den = (a + c) - (b + b)
    neg = den < 0
    d = np.zeros_like(den)
    d[neg] = (np.float32(0.5) * (a[neg] - c[neg])) / den[neg]
    d = np.clip(d, np.float32(-0.5), np.float32(0.5))
    return d, b - (np.float32(0.25) * (a - c)) * d


def from_magnitudes(a: np.ndarray, t: dict) -> dict[str, np.ndarray]:
    """Steps 2-8 for magnitudes ``(F, N/2+1)``: a dict of float32 ``semitones``,
    ``strength``, ``loudness`` and ``f0`` (Hz, 0 unvoiced), ``lag`` (samples, 0
    where there is no peak) and bool ``voiced``, each ``(F,)``."""
    f = a.shape[0]
    q, m_lo, m_hi, lag0 = t["q"], t["m_lo"], t["m_hi"], t["lag0"]
    corr = t["lag_corr"]
    p = np.zeros((f, q + 1), np.float32)
    band = slice(t["k_lo"], t["k_hi"] + 1)
    p[:, band] = a[:, band] * a[:, band]
    h = _even_lags(p, t, m_hi + 1)
    r0 = h[:, 0]
    ok = r0 > 0
    inv = np.zeros_like(r0)
    inv[ok] = np.float32(1.0) / r0[ok]
    ms = np.arange(m_lo - 1, m_hi + 2)
    nr = (h[:, ms] * inv[:, None]) * corr[2 * ms - lag0]  # even lags lag0 .. 2 m_hi + 2
    left, mid, right = nr[:, :-2], nr[:, 1:-1], nr[:, 2:]
    peak = (mid > left) & (mid >= right) & ok[:, None]
    _, height = _parabola(left, mid, right)
    best = np.where(peak, height, np.float32(0)).max(axis=1).astype(np.float32)
    has = best > 0  # a positive peak (the best of several, or none)
    cand = peak & (height >= np.float32(OCTAVE_RATIO) * best[:, None])
    rows = np.arange(f)
    tau = 2 * (np.argmax(cand, axis=1) + m_lo)  # the first (shortest) even lag near the best
    # step 6: the odd lags beside it from their own sums, the full-resolution peak, interpolation
    col = tau // 2 - m_lo + 1  # τ's column of nr
    below, above = _odd_lags(p, t, tau)
    # r at τ-2 .. τ+2 (the even ones from nr, the odd ones normalised as in step 4)
    five = np.stack([nr[rows, col - 1], (below * inv) * corr[tau - 1 - lag0], nr[rows, col],
                     (above * inv) * corr[tau + 1 - lag0], nr[rows, col + 1]], axis=1)
    top = np.zeros(f, np.int64)  # the first maximum of r[τ-1], r[τ], r[τ+1]
    top[five[:, 2] > five[:, 1]] = 1
    top[(five[:, 3] > five[:, 1]) & (five[:, 3] > five[:, 2])] = 2
    a_, b_, c_ = five[rows, top], five[rows, top + 1], five[rows, top + 2]
    d, strength = _parabola(a_, b_, c_)
    lag = (tau - 1 + top).astype(np.float32) + d
    strength = np.where(has, np.clip(strength, np.float32(0), np.float32(1)), np.float32(0)).astype(np.float32)
    lag = np.where(has, lag, np.float32(0)).astype(np.float32)
    loud = _ln(r0 * t["loud_scale"] + np.float32(LOUDNESS_FLOOR)) * t["db_scale"]
    voiced = has & (strength >= np.float32(VOICING_THRESHOLD)) & (loud >= np.float32(MIN_LEVEL_DB))
    safe = np.where(voiced, lag, np.float32(1))
    st = np.where(voiced, _ln(t["st_k"] / safe) * t["st_scale"], np.float32(0)).astype(np.float32)
    f0 = np.where(voiced, t["sr"] / safe, np.float32(0)).astype(np.float32)
    return {"semitones": st, "strength": strength, "loudness": loud.astype(np.float32), "f0": f0, "lag": lag,
            "voiced": voiced}


def prosody_frames(fr: np.ndarray, cfg) -> np.ndarray:
    """The three channels ``(F, 3)`` (semitones, strength, loudness) of float32 frames ``(F, N)``."""
    from .cmsis import cmsis_tables

    if fr.shape[0] == 0:
        return np.zeros((0, N_CHANNELS), np.float32)
    p = from_magnitudes(magnitudes(fr, cmsis_tables(cfg)["window_f32"]), prosody_tables(cfg))
    return np.stack([p["semitones"], p["strength"], p["loudness"]], axis=1)


def analyse(audio: np.ndarray, cfg) -> dict[str, np.ndarray]:
    """Everything the prosody analysis finds for mono audio (float in [-1, 1)),
    framed as ``cfg`` (a ``cmsis_mfcc`` config) frames it: see :func:`from_magnitudes`,
    plus ``time`` (s, each frame's centre)."""
    from .cmsis import cmsis_tables, frames

    x = np.asarray(audio)
    if np.issubdtype(x.dtype, np.integer):
        x = (x / 32768.0).astype(np.float32)
    fr = np.ascontiguousarray(frames(x.astype(np.float32, copy=False), cfg))
    p = from_magnitudes(magnitudes(fr, cmsis_tables(cfg)["window_f32"]), prosody_tables(cfg))
    p["time"] = (np.arange(len(fr)) * cfg.hop_length + cfg.frame_length / 2) / cfg.sample_rate
    return p
