"""STFT-based frontends: ``spectrogram``, ``logmel`` and ``mfcc``.

They follow librosa's definitions (centred zero-padded frames, periodic
window, Slaney mel filters, power in dB with ``top_db`` clamping, orthonormal
DCT-II) so ``mfcc`` equals ``librosa.feature.mfcc`` with the same settings,
but run batched in float32 with cached filter banks. Output is time-major:
``(..., frames, coefficients)``.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from ..errors import ConfigError
from ..extras import need
from .base import FrontendConfig

LOG_MODES = ("db", "log", "none")


@dataclass(frozen=True)
class SpectrogramConfig(FrontendConfig):
    """Short-time power spectrum. Defaults follow Light-SERNet (Aftab et al.,
    ICASSP 2022): 16 kHz, 64 ms windows every 16 ms."""

    name = "spectrogram"
    n_fft: int = 1024
    win_length: int = 1024
    hop_length: int = 256
    window: str = "hann"
    center: bool = True
    power: float = 2.0
    log: str = "db"          # "db": 10·log10 like librosa.power_to_db, "log": natural log, "none"
    top_db: float | None = 80.0
    log_offset: float = 1e-6  # added before the natural log ("log" mode)

    def __post_init__(self):
        super().__post_init__()
        if not 0 < self.win_length <= self.n_fft or self.hop_length < 1:
            raise ConfigError(f"{self.name}: need 0 < win_length <= n_fft and hop_length >= 1")
        if self.log not in LOG_MODES:
            raise ConfigError(f"{self.name}: log must be one of {', '.join(LOG_MODES)}, not {self.log!r}")

    @property
    def n_features(self) -> int:
        return self.n_fft // 2 + 1

    def n_frames(self, n_samples: int) -> int:
        if self.center:
            return 1 + n_samples // self.hop_length
        return 1 + max(0, n_samples - self.n_fft) // self.hop_length

    def compute(self, audio: np.ndarray) -> np.ndarray:
        return _to_log(power_spectrogram(audio, self), self)


@dataclass(frozen=True)
class LogmelConfig(SpectrogramConfig):
    """Log mel-band energies."""

    name = "logmel"
    n_mels: int = 40
    fmin: float = 40.0
    fmax: float = 7600.0
    htk: bool = False
    mel_norm: str | None = "slaney"

    def __post_init__(self):
        super().__post_init__()
        if not 0 <= self.fmin < self.fmax <= self.sample_rate / 2:
            raise ConfigError(f"{self.name}: need 0 <= fmin < fmax <= sample_rate/2 "
                              f"(got {self.fmin}, {self.fmax}, {self.sample_rate})")

    @property
    def n_features(self) -> int:
        return self.n_mels

    def compute(self, audio: np.ndarray) -> np.ndarray:
        return _to_log(self.mel_energies(audio), self)

    def mel_energies(self, audio: np.ndarray) -> np.ndarray:
        lo, hi, basis = _mel_basis(self)
        return power_spectrogram(audio, self)[..., lo:hi] @ basis


@dataclass(frozen=True)
class MfccConfig(LogmelConfig):
    """MFCC: DCT-II (orthonormal) of the log mel energies."""

    name = "mfcc"
    n_mfcc: int = 40
    lifter: float = 0.0

    def __post_init__(self):
        super().__post_init__()
        if not 0 < self.n_mfcc <= self.n_mels:
            raise ConfigError(f"{self.name}: need 0 < n_mfcc <= n_mels")

    @property
    def n_features(self) -> int:
        return self.n_mfcc

    def compute(self, audio: np.ndarray) -> np.ndarray:
        return super().compute(audio) @ _dct_matrix(self.n_mels, self.n_mfcc, self.lifter).T


def power_spectrogram(audio: np.ndarray, cfg: SpectrogramConfig) -> np.ndarray:
    """|STFT|**power of ``(..., samples)`` audio as ``(..., frames, n_fft//2+1)`` float32.

    >>> power_spectrogram(np.zeros(16000, np.float32), SpectrogramConfig()).shape
    (63, 513)
    """
    y = np.asarray(audio, dtype=np.float32)
    if y.shape[-1] == 0:
        raise ConfigError("cannot compute features of empty audio")
    half = cfg.n_fft // 2 if cfg.center else 0
    right = half + max(0, cfg.n_fft - y.shape[-1] - 2 * half)
    if half or right:
        zeros = np.zeros(y.shape[:-1], np.float32)[..., None]
        y = np.concatenate([np.repeat(zeros, half, -1), y, np.repeat(zeros, right, -1)], axis=-1)
    frames = np.lib.stride_tricks.sliding_window_view(y, cfg.n_fft, axis=-1)[..., ::cfg.hop_length, :]
    lead, (n_frames, n_fft) = frames.shape[:-2], frames.shape[-2:]
    flat = frames.reshape(-1, n_frames, n_fft)
    if len(flat) == 1:
        return _power(flat, cfg).reshape(*lead, n_frames, n_fft // 2 + 1)
    out = np.empty((len(flat), n_frames, n_fft // 2 + 1), np.float32)
    for i in range(0, len(flat), _CHUNK):  # chunks keep the FFT's working set in cache
        out[i:i + _CHUNK] = _power(flat[i:i + _CHUNK], cfg)
    return out.reshape(*lead, n_frames, n_fft // 2 + 1)


_CHUNK = 8


def _power(frames: np.ndarray, cfg: SpectrogramConfig) -> np.ndarray:
    need("scipy", f"the {cfg.name} frontend")
    import scipy.fft  # lazy: scipy's import costs more than a cached run of the CLI

    workers = 1 if len(frames) == 1 else _WORKERS  # threads only pay off over several clips
    spec = scipy.fft.rfft(frames * _window(cfg.window, cfg.win_length, cfg.n_fft), axis=-1,
                          overwrite_x=True, workers=workers)
    power = np.square(spec.real)
    power += np.square(spec.imag)
    return power if cfg.power == 2.0 else power ** np.float32(cfg.power / 2)


_WORKERS = os.cpu_count() or 1


def _to_log(s: np.ndarray, cfg: SpectrogramConfig) -> np.ndarray:
    if cfg.log == "none":
        return s.astype(np.float32, copy=False)
    if cfg.log == "log":
        return np.log(s + np.float32(cfg.log_offset)).astype(np.float32, copy=False)
    db = np.float32(10.0) * np.log10(np.maximum(s, np.float32(1e-10)))
    if cfg.top_db is not None:
        db = np.maximum(db, db.max(axis=(-2, -1), keepdims=True) - np.float32(cfg.top_db))
    return db


@lru_cache(maxsize=16)
def _window(name: str, win_length: int, n_fft: int) -> np.ndarray:
    from .windows import get_window

    w = get_window(name, win_length).astype(np.float32)
    left = (n_fft - win_length) // 2
    return np.pad(w, (left, n_fft - win_length - left))


@lru_cache(maxsize=16)
def _mel_basis(cfg: LogmelConfig) -> tuple[int, int, np.ndarray]:
    """librosa's mel filter bank, cut to the FFT bins it uses: (first bin, end bin, bins × mels)."""
    librosa = need("librosa", f"the {cfg.name} frontend")  # the reference mel filter bank (a slow import)

    m = librosa.filters.mel(sr=cfg.sample_rate, n_fft=cfg.n_fft, n_mels=cfg.n_mels, fmin=cfg.fmin,
                            fmax=cfg.fmax, htk=cfg.htk, norm=cfg.mel_norm, dtype=np.float32)
    used = np.flatnonzero(m.any(axis=0))
    lo, hi = (int(used[0]), int(used[-1]) + 1) if used.size else (0, 1)
    return lo, hi, np.ascontiguousarray(m[:, lo:hi].T)


@lru_cache(maxsize=16)
def _dct_matrix(n_in: int, n_out: int, lifter: float) -> np.ndarray:
    need("scipy", "the mfcc frontend")
    import scipy.fft

    d = scipy.fft.dct(np.eye(n_in), type=2, norm="ortho", axis=0)[:n_out]
    if lifter > 0:
        d = d * (1 + (lifter / 2) * np.sin(np.pi * np.arange(1, n_out + 1) / lifter))[:, None]
    return d.astype(np.float32)
