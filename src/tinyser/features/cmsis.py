"""``cmsis_mfcc``: MFCC exactly as Arm CMSIS-DSP's ``arm_mfcc_f32`` /
``arm_mfcc_q15`` compute it on a Cortex-M, frame by frame.

Features are computed by the ``cmsisdsp`` Python package, which wraps the
same C kernels (CMSIS-DSP 1.16.2 in cmsisdsp 1.10.3) that run on the device,
when it is installed (``pip install 'tinyser[dsp]'``; it has no wheel, so it
needs a C compiler). Without it the f32 kernel runs in NumPy (:func:`kernel`
says which): the same tables and steps in float64, rounded to float32 at the
end, held to the C kernel by ``tests/test_frontends.py`` within 2e-3 absolute
per coefficient on speech (about 1e-4 typical: float32 rounding in the C FFT);
q15 needs ``cmsisdsp``. The constant tables (window, packed mel filters, DCT
matrix) come from :func:`cmsis_tables`, from which a C frontend can be generated.

Framing (the device streams audio): frames are not centred. ``n`` samples give
``1 + (n - N) // hop`` frames (trailing samples that do not fill a frame are
dropped); a clip shorter than one frame is zero-padded to ``N`` samples.

Tables (as CMSIS-DSP's ``cmsisdsp/mfcc.py`` builds them). ``N`` = frame_length,
``M`` = n_mels, ``K`` = n_mfcc, ``mel(f) = 1127 ln(1 + f/700)`` (HTK scale):

* ``w``: periodic window of length ``N`` (``scipy.signal.get_window(window, N)``).
* ``H[j, k]``, ``k = 0..N/2``: triangles with corners at ``M + 2`` points equally
  spaced in mel between ``fmin`` and ``fmax``, evaluated at bin frequencies
  ``k·sr/N``, peak 1, *not* area-normalised; ``H[:, 0] = 0``. Stored sparse:
  ``filter_pos[j]`` (first non-zero bin), ``filter_len[j]``, packed coefficients.
* ``D[i, j] = sqrt(2/M) · cos(π i (j + 0.5) / M)``: DCT-II; rows 1.. are
  orthonormal, row 0 is ``sqrt(2)`` times the orthonormal one.

f32 kernel, one frame ``x`` (float32, audio in [-1, 1)):

1. ``m = max|x|``; if ``m != 0``: ``x ← x · (1/m)`` (normalise, undone in 4.)
2. ``x ← x · w``
3. ``X = arm_rfft_fast_f32(x)`` (unscaled DFT, bins ``0..N/2``)
4. ``A[k] = |X[k]| · m`` — the **magnitude**, not the power
5. ``E[j] = Σ_k H[j, k] A[k]``
6. ``L[j] = ln(E[j] + 1e-6)`` (natural log, offset ``1e-6`` added to the
   magnitude mel energy)
7. ``c = D @ L`` (``K`` values).

So, up to float32 rounding, ``c = D · ln(H · |rfft(w·x)| + 1e-6)``.

q15 kernel, one frame of q1.15 integers (``fftShift = log2 N``):

1. ``m = max|x|``; unless ``m`` is 0 or 0x7FFF the frame is scaled to full scale
   (``x·0x7FFF/m`` via ``arm_divide_q15`` + ``arm_scale_q15``, saturating).
2. ``x ← (x · w_q15) >> 15``.
3. ``arm_rfft_q15``: output is the DFT divided by ``N`` (per-stage scaling).
4. ``arm_cmplx_mag_q15`` on bins ``0..N/2``: magnitude in q2.14.
5. 64-bit dot products with the q15 filters (q34.29), ``+ 537`` (1e-6 in
   q29), ``>> 10``, saturated to 31 bits; then multiplied back by ``m/32768``
   (``arm_scale_q31``) to undo step 1.
6. ``arm_vlog_q31`` (ln of the q31 value, q5.26) plus ``(fftShift + 12)·ln 2``
   (q26), so the result is ``ln E`` in the same units as the f32 kernel;
   ``>> 19`` and saturated to int16: the log-mel energies in **q8.7**.
7. ``arm_mat_vec_mult_q15(D_q15, L)``: MFCCs in **q8.7** (value = int / 128,
   range [-256, 256)).

:meth:`CmsisMfccConfig.compute` returns the q15 output divided by 128, in
the f32 kernel's units. Differences from f32: the log-mel energies are
quantised to 1/128; the energy resolution is ``2^(fftShift - 19)`` (the 1e-6
offset falls below it), so a band with no energy gives ``ln`` ≈
``(fftShift - 20)·ln 2`` (-6.93 for ``N = 1024``, against ``ln 1e-6 = -13.8``
in f32) and quiet frames lose precision.

Prosody (``prosody=True``, f32 only): three channels are appended to each
frame's MFCCs (which stay first, c0 at index 0): F0 in semitones above 50 Hz
(0 when unvoiced), voicing strength and loudness in dB, from the same frame's
spectrum (see :mod:`tinyser.features.prosody`); ``n_features`` is ``n_mfcc + 3``.
``prosody_deltas=True`` appends their deltas too (``n_mfcc + 6``): each frame's
channels minus the previous frame's *within the window* (0 for a window's first
frame), so a window's features never depend on audio before it, in Python as on
the device (which fills them in when it builds the model input).
The option is left out of :meth:`~CmsisMfccConfig.to_dict` when off, so older
models and feature caches keep their frontend dicts.

q15 input: float audio is quantised as a 16-bit PCM stream would deliver it,
``q = clip(round_half_even(x · 32768), -32768, 32767)`` (the exact inverse of
the usual ``int16 / 32768`` conversion); int16 audio is taken as is. The f32
kernel takes the float audio (int16 audio is divided by 32768).
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from ..errors import ConfigError
from .base import FrontendConfig

DTYPES = ("f32", "q15")
# arm_rfft_fast_f32 supports 32..4096 points (arm_rfft_q15 32..8192): the common range
FFT_LENGTHS = tuple(2 ** k for k in range(5, 13))
LOG_OFFSET = 1e-6  # arm_mfcc_f32 adds this before the log
Q15_OUT_SCALE = 1.0 / 128  # arm_mfcc_q15 output is q8.7
PROSODY_CHANNELS = 3  # semitones, voicing strength, loudness (tinyser.features.prosody)


@dataclass(frozen=True)
class CmsisMfccConfig(FrontendConfig):
    """MFCC as CMSIS-DSP's ``arm_mfcc_f32`` / ``arm_mfcc_q15`` compute it on the
    device: un-centred frames of ``frame_length`` samples every ``hop_length``,
    HTK-mel triangles on the FFT magnitude, natural log, DCT-II.

    Defaults: 16 kHz, 64 ms frames every 16 ms (as the ``mfcc`` frontend),
    40 bands over 40-7600 Hz (``fmin`` 40 Hz keeps the DC bins and their
    window leakage out of the lowest band; 7600 Hz stays below the
    microphone's decimation roll-off near 8 kHz).

    >>> CmsisMfccConfig().n_frames(32000)
    122
    """

    name = "cmsis_mfcc"
    frame_length: int = 1024
    hop_length: int = 256
    n_mels: int = 40
    fmin: float = 40.0
    fmax: float = 7600.0
    n_mfcc: int = 40
    dtype: str = "f32"
    window: str = "hann"
    #: append per-frame prosody channels (tinyser.features.prosody): semitones, voicing, loudness
    prosody: bool = False
    #: and their deltas (frame minus previous frame, within the window; needs prosody)
    prosody_deltas: bool = False

    def __post_init__(self):
        super().__post_init__()
        if self.frame_length not in FFT_LENGTHS:
            raise ConfigError(f"{self.name}: frame_length must be a power of two from 32 to 4096 "
                              f"(CMSIS-DSP RFFT sizes), not {self.frame_length}")
        if self.hop_length < 1:
            raise ConfigError(f"{self.name}: hop_length must be >= 1, not {self.hop_length}")
        if self.dtype not in DTYPES:
            raise ConfigError(f"{self.name}: dtype must be one of {', '.join(DTYPES)}, not {self.dtype!r}")
        if not 0 <= self.fmin < self.fmax <= self.sample_rate / 2:
            raise ConfigError(f"{self.name}: need 0 <= fmin < fmax <= sample_rate/2 "
                              f"(got {self.fmin}, {self.fmax}, {self.sample_rate})")
        if not 0 < self.n_mfcc <= self.n_mels:
            raise ConfigError(f"{self.name}: need 0 < n_mfcc <= n_mels (got {self.n_mfcc}, {self.n_mels})")
        if self.dtype == "q15" and self.n_mels < 3:
            raise ConfigError(f"{self.name}: q15 needs n_mels >= 3 so the DCT coefficients "
                              f"sqrt(2/n_mels) fit in q15")
        if not isinstance(self.window, str):
            raise ConfigError(f"{self.name}: window must be a window name such as 'hann'")
        try:
            _window64(self.window, self.frame_length)
        except ValueError:
            raise ConfigError(f"{self.name}: unknown window {self.window!r}") from None
        for flag in ("prosody", "prosody_deltas"):
            if not isinstance(getattr(self, flag), bool):
                raise ConfigError(f"{self.name}: {flag} must be true or false, not {getattr(self, flag)!r}")
        if self.prosody_deltas and not self.prosody:
            raise ConfigError(f"{self.name}: prosody_deltas needs prosody=true")
        if self.prosody:
            if self.dtype != "f32":
                raise ConfigError(f"{self.name}: prosody channels need dtype 'f32'")
            from .prosody import prosody_tables

            try:
                prosody_tables(self)
            except ValueError as e:
                raise ConfigError(f"{self.name}: {e}") from None
        _, empty = _mel_matrix(self.sample_rate, self.frame_length, self.n_mels, self.fmin, self.fmax)
        if empty:
            raise ConfigError(f"{self.name}: mel band(s) {', '.join(map(str, empty))} cover no FFT bin; "
                              f"use fewer n_mels, a larger frame_length or a wider fmin..fmax")

    @property
    def n_features(self) -> int:
        return self.n_mfcc + (PROSODY_CHANNELS if self.prosody else 0) + (PROSODY_CHANNELS if self.prosody_deltas
                                                                           else 0)

    def to_dict(self) -> dict:
        d = super().to_dict()
        for flag in ("prosody", "prosody_deltas"):
            if not d[flag]:  # models and feature caches from before the options keep their dicts
                del d[flag]
        return d

    def n_frames(self, n_samples: int) -> int:
        return 1 + max(0, n_samples - self.frame_length) // self.hop_length

    def compute(self, audio: np.ndarray) -> np.ndarray:
        x = np.asarray(audio)
        if x.shape[-1] == 0:
            raise ConfigError("cannot compute features of empty audio")
        if self.dtype == "q15":
            x = quantize_q15(x)
        elif np.issubdtype(x.dtype, np.integer):
            x = (x / 32768.0).astype(np.float32)
        else:
            x = x.astype(np.float32, copy=False)
        lead, n = x.shape[:-1], x.shape[-1]
        clips = x.reshape(-1, n)
        out = np.empty((clips.shape[0], self.n_frames(n), self.n_features), np.float32)
        run = _engine(self)
        for c in range(clips.shape[0]):
            fr = frames(clips[c], self)
            run(fr, out[c, :, :self.n_mfcc])
            if self.prosody:
                from .prosody import prosody_frames

                p = self.n_mfcc + PROSODY_CHANNELS
                out[c, :, self.n_mfcc:p] = prosody_frames(np.ascontiguousarray(fr), self)
                if self.prosody_deltas:
                    out[c, 0, p:] = 0.0
                    out[c, 1:, p:] = out[c, 1:, self.n_mfcc:p] - out[c, :-1, self.n_mfcc:p]
        return out.reshape(*lead, *out.shape[1:])


def quantize_q15(audio: np.ndarray) -> np.ndarray:
    """Float audio in [-1, 1) → int16 q1.15 as a PCM stream delivers it:
    ``clip(round_half_even(x·32768), -32768, 32767)``; int16 passes through.

    >>> quantize_q15(np.array([0.5, -1.0, 1.0, 1e-5])).tolist()
    [16384, -32768, 32767, 0]
    """
    x = np.asarray(audio)
    if x.dtype == np.int16:
        return x
    if np.issubdtype(x.dtype, np.integer):
        raise ConfigError(f"q15 input must be float audio or int16 PCM, not {x.dtype}")
    return np.clip(np.rint(x.astype(np.float64) * 32768.0), -32768, 32767).astype(np.int16)


def frames(audio: np.ndarray, cfg: CmsisMfccConfig) -> np.ndarray:
    """Un-centred frames ``(..., n_frames, frame_length)`` of ``(..., samples)``
    audio (a read-only view when no padding is needed); float input becomes
    float32, int16 stays int16.

    >>> frames(np.arange(2000.0), CmsisMfccConfig()).shape
    (4, 1024)
    >>> frames(np.ones(100), CmsisMfccConfig())[0, 98:102].tolist()
    [1.0, 1.0, 0.0, 0.0]
    """
    x = np.asarray(audio)
    if not np.issubdtype(x.dtype, np.integer):
        x = x.astype(np.float32, copy=False)
    if x.shape[-1] < cfg.frame_length:
        x = np.pad(x, [(0, 0)] * (x.ndim - 1) + [(0, cfg.frame_length - x.shape[-1])])
    return np.lib.stride_tricks.sliding_window_view(x, cfg.frame_length, axis=-1)[..., ::cfg.hop_length, :]


def cmsis_tables(cfg: CmsisMfccConfig) -> dict[str, np.ndarray]:
    """The constant tables the CMSIS-DSP kernels use, for ``cfg``:

    * ``window`` (float64), ``window_f32``, ``window_q15`` (int16): ``(N,)``
    * ``filter_pos``, ``filter_len`` (uint32): ``(n_mels,)``
    * ``filter_coefs`` (float64), ``filter_coefs_f32``, ``filter_coefs_q15``: packed,
      ``(sum(filter_len),)``
    * ``dct`` (float64), ``dct_f32``, ``dct_q15``: ``(n_mfcc, n_mels)``; CMSIS takes
      it row-major (``.ravel()``)
    * ``mel_matrix`` (float64): the dense filters ``(n_mels, N//2 + 1)``

    q15 tables use CMSIS's rule ``clip(round(v·32768), -32768, 32767)``. The
    arrays are shared and read-only.

    >>> t = cmsis_tables(CmsisMfccConfig())
    >>> t["window_q15"].dtype, t["dct_f32"].shape, int(t["filter_len"].sum()) == t["filter_coefs"].size
    (dtype('int16'), (40, 40), True)
    """
    return dict(_tables(cfg.sample_rate, cfg.frame_length, cfg.n_mels, cfg.fmin, cfg.fmax, cfg.n_mfcc,
                        cfg.window))


def _to_q15(v: np.ndarray) -> np.ndarray:
    return np.clip(np.round(np.asarray(v, np.float64) * 32768.0), -32768, 32767).astype(np.int16)


@lru_cache(maxsize=16)
def _window64(name: str, n: int) -> np.ndarray:
    from .windows import get_window  # hann, hamming, blackman without SciPy

    return get_window(name, n)


@lru_cache(maxsize=16)
def _mel_matrix(sr: int, n_fft: int, n_mels: int, fmin: float, fmax: float) -> tuple[np.ndarray, tuple[int, ...]]:
    """Dense CMSIS mel filters (n_mels, n_fft//2+1) and the indices of empty bands."""
    def mel(f):
        return 1127.0 * np.log(1.0 + f / 700.0)

    edges = np.linspace(mel(fmin), mel(fmax), n_mels + 2)
    bins = mel(np.linspace(0, sr / 2.0, n_fft // 2 + 1))[1:]
    lo, mid, hi = edges[:-2, None], edges[1:-1, None], edges[2:, None]
    tri = np.maximum(0.0, np.minimum((bins - lo) / (mid - lo), (hi - bins) / (hi - mid)))
    h = np.concatenate([np.zeros((n_mels, 1)), tri], axis=1)
    empty = tuple(int(j) for j in np.flatnonzero(~(h > 0).any(axis=1)))
    return h, empty


@lru_cache(maxsize=16)
def _tables(sr, n_fft, n_mels, fmin, fmax, n_mfcc, window) -> dict[str, np.ndarray]:
    h, _ = _mel_matrix(sr, n_fft, n_mels, fmin, fmax)
    nz = h > 0
    pos = nz.argmax(axis=1)
    end = h.shape[1] - nz[:, ::-1].argmax(axis=1)  # one past the last non-zero bin
    coefs = np.concatenate([h[j, pos[j]:end[j]] for j in range(n_mels)])
    s = (np.arange(n_mels) + 0.5) / n_mels
    dct = np.cos(np.pi * np.arange(n_mfcc)[:, None] * s) * np.sqrt(2.0 / n_mels)
    w = _window64(window, n_fft)
    t = {
        "window": w, "window_f32": w.astype(np.float32), "window_q15": _to_q15(w),
        "filter_pos": pos.astype(np.uint32), "filter_len": (end - pos).astype(np.uint32),
        "filter_coefs": coefs, "filter_coefs_f32": coefs.astype(np.float32), "filter_coefs_q15": _to_q15(coefs),
        "dct": dct, "dct_f32": dct.astype(np.float32), "dct_q15": _to_q15(dct),
        "mel_matrix": h.copy(),
    }
    for a in t.values():
        a.setflags(write=False)
    return t


def cmsisdsp_module():
    """The ``cmsisdsp`` module, or None when it is not installed (then the
    f32 kernel runs in NumPy)."""
    try:
        import cmsisdsp
    except ImportError:
        return None
    return cmsisdsp


def kernel() -> str:
    """Which f32 kernel computes ``cmsis_mfcc``: ``"cmsisdsp"`` (the device's C
    code) when installed, else ``"numpy"``.

    >>> kernel() in ("cmsisdsp", "numpy")
    True
    """
    return "numpy" if cmsisdsp_module() is None else "cmsisdsp"


#: frames per block of the NumPy kernel (bounds its float64 temporaries to a few MB)
_NUMPY_BLOCK = 256


def _numpy_engine(cfg: CmsisMfccConfig):
    """``arm_mfcc_f32`` in NumPy: ``c = D · ln(H · |rfft(w·x)| + 1e-6)`` with the
    float32 tables, computed in float64 (the max-normalisation of steps 1 and 4
    cancels exactly there, so it is left out)."""
    t = cmsis_tables(cfg)
    w = t["window_f32"].astype(np.float64)
    h_t = t["mel_matrix"].astype(np.float32).astype(np.float64).T.copy()  # the packed f32 coefficients, dense
    d_t = t["dct_f32"].astype(np.float64).T.copy()
    offset = float(np.float32(LOG_OFFSET))

    def run(fr: np.ndarray, out: np.ndarray) -> None:
        for i in range(0, fr.shape[0], _NUMPY_BLOCK):
            block = np.asarray(fr[i:i + _NUMPY_BLOCK], np.float64) * w
            mag = np.abs(np.fft.rfft(block, axis=-1))
            out[i:i + _NUMPY_BLOCK] = np.log(mag @ h_t + offset) @ d_t

    run.tables = t
    return run


@lru_cache(maxsize=8)
def _engine(cfg: CmsisMfccConfig):
    """One initialised CMSIS instance and temporary buffer per config:
    ``run(frames (F, N), out (F, n_mfcc))``; the NumPy kernel for f32
    when ``cmsisdsp`` is not installed."""
    dsp = cmsisdsp_module()
    if dsp is None:
        if cfg.dtype == "f32":
            return _numpy_engine(cfg)
        from ..extras import need

        dsp = need("cmsisdsp", f"{cfg.name} with dtype {cfg.dtype!r}")

    t = cmsis_tables(cfg)
    n, args = cfg.frame_length, (cfg.frame_length, cfg.n_mels, cfg.n_mfcc)
    if cfg.dtype == "f32":
        inst = dsp.arm_mfcc_instance_f32()
        status = dsp.arm_mfcc_init_f32(inst, *args, t["dct_f32"].ravel(), t["filter_pos"], t["filter_len"],
                                       t["filter_coefs_f32"], t["window_f32"])
        tmp = np.zeros(2 * n, np.float32)  # CMSIS needs N+2 (RFFT) or 2N (CFFT build)
        mfcc = dsp.arm_mfcc_f32

        def run(fr: np.ndarray, out: np.ndarray) -> None:
            for i in range(fr.shape[0]):
                out[i] = mfcc(inst, fr[i], tmp)
    else:
        inst = dsp.arm_mfcc_instance_q15()
        status = dsp.arm_mfcc_init_q15(inst, *args, t["dct_q15"].ravel(), t["filter_pos"], t["filter_len"],
                                       t["filter_coefs_q15"], t["window_q15"])
        tmp = np.zeros(2 * n, np.int32)
        mfcc = dsp.arm_mfcc_q15
        scale = np.float32(Q15_OUT_SCALE)

        def run(fr: np.ndarray, out: np.ndarray) -> None:
            for i in range(fr.shape[0]):
                st, out[i] = mfcc(inst, fr[i], tmp)
                if st:
                    raise ConfigError(f"arm_mfcc_q15 failed with CMSIS status {st}")
            out *= scale  # q8.7 -> real units (exact in float32)
    if status:
        raise ConfigError(f"{cfg.name}: CMSIS-DSP rejected the config (init status {status})")
    run.instance, run.tables = inst, t  # keep the tables alive with the C instance
    return run
