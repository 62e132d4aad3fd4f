"""``stats``: the clip-level vector of the cAInvas / Kaggle speech-emotion
recipe — 162 values per clip, the means over frames of

=====  ============================  ==========================================
 1     zero-crossing rate            ``librosa.feature.zero_crossing_rate(y)``
 12    chroma                        ``chroma_stft(S=np.abs(stft(y)), sr=sr)``
 20    MFCC                          ``mfcc(y=y, sr=sr)``
 1     RMS                           ``rms(y=y)``
 128   mel power spectrogram         ``melspectrogram(y=y, sr=sr)``
=====  ============================  ==========================================

concatenated in that order, with librosa's default framing for each: 2048-point
frames every 512 samples, centred — zero padding for the STFT and RMS, edge
padding for the zero-crossing rate. Computed batched in numpy (librosa
supplies only the mel and chroma filter banks); it matches the recipe run
per clip with librosa 0.11 to float32 precision.

Differences from the original:

* chroma tuning is the parameter ``tuning`` (default 0.0, i.e. A440), where
  ``chroma_stft`` estimates it per clip from the spectrum (``tuning=None``:
  slow, and it makes the chroma filters depend on the clip);
* the chroma is computed from the STFT magnitude (not the power), as the recipe
  passes ``S=np.abs(stft(y))``; that is kept;
* the MFCC's 80 dB floor is relative to each clip's loudest mel bin, as in the
  per-clip original (librosa called on a batch would use the batch's).
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from ..errors import ConfigError
from .base import FrontendConfig
from .spectral import LogmelConfig, _dct_matrix, _mel_basis, _to_log, power_spectrogram

N_CHROMA = 12
ZC_THRESHOLD = 1e-10  # librosa.zero_crossings: |y| <= threshold counts as 0 (positive)


@dataclass(frozen=True)
class StatsConfig(FrontendConfig):
    """Clip-level statistics (162 values with the defaults): mean ZCR, chroma,
    MFCC, RMS and mel power over librosa-framed frames.

    >>> StatsConfig().compute(np.zeros((2, 22050), np.float32) + 0.1).shape
    (2, 162)
    """

    name = "stats"
    sample_rate: int = 22050
    n_fft: int = 2048
    hop_length: int = 512
    n_mels: int = 128
    n_mfcc: int = 20
    top_db: float | None = 80.0
    tuning: float = 0.0

    def __post_init__(self):
        super().__post_init__()
        if self.n_fft < 2 or self.hop_length < 1:
            raise ConfigError(f"{self.name}: need n_fft >= 2 and hop_length >= 1")
        if not 0 < self.n_mfcc <= self.n_mels:
            raise ConfigError(f"{self.name}: need 0 < n_mfcc <= n_mels (got {self.n_mfcc}, {self.n_mels})")
        if not -0.5 <= self.tuning < 0.5:
            raise ConfigError(f"{self.name}: tuning is in fractions of a chroma bin, in [-0.5, 0.5), "
                              f"not {self.tuning}")

    @property
    def n_features(self) -> int:
        return 1 + N_CHROMA + self.n_mfcc + 1 + self.n_mels

    def n_frames(self, n_samples: int) -> int:
        return 1 + n_samples // self.hop_length

    def compute(self, audio: np.ndarray) -> np.ndarray:
        y = np.asarray(audio, dtype=np.float32)
        if y.shape[-1] == 0:
            raise ConfigError("cannot compute features of empty audio")
        mel_cfg = self._mel_config()
        power = power_spectrogram(y, mel_cfg)                      # (..., frames, bins)
        lo, hi, basis = _mel_basis(mel_cfg)
        mel = power[..., lo:hi] @ basis                           # (..., frames, n_mels)
        mfcc = _to_log(mel, mel_cfg) @ _dct_matrix(self.n_mels, self.n_mfcc, 0.0).T
        chroma = np.sqrt(power) @ _chroma_basis(self.sample_rate, self.n_fft, self.tuning).T
        peak = chroma.max(axis=-1, keepdims=True)                  # librosa.util.normalize(norm=inf)
        chroma = chroma / np.where(peak < np.finfo(np.float32).tiny, np.float32(1), peak)
        parts = [_zcr(y, self.n_fft, self.hop_length)[..., None], chroma.mean(-2), mfcc.mean(-2),
                 _rms(y, self.n_fft, self.hop_length)[..., None], mel.mean(-2)]
        return np.concatenate([p.astype(np.float32, copy=False) for p in parts], axis=-1)

    def _mel_config(self) -> LogmelConfig:
        return LogmelConfig(sample_rate=self.sample_rate, n_fft=self.n_fft, win_length=self.n_fft,
                            hop_length=self.hop_length, window="hann", center=True, power=2.0, log="db",
                            top_db=self.top_db, n_mels=self.n_mels, fmin=0.0, fmax=self.sample_rate / 2,
                            htk=False, mel_norm="slaney")


@lru_cache(maxsize=8)
def _chroma_basis(sr: int, n_fft: int, tuning: float) -> np.ndarray:
    from ..extras import need

    librosa = need("librosa", "the stats frontend")
    return librosa.filters.chroma(sr=sr, n_fft=n_fft, tuning=tuning, n_chroma=N_CHROMA).astype(np.float32)


def _frame_sums(v: np.ndarray, n_frames: int, length: int, hop: int) -> np.ndarray:
    """Sums of ``v[..., t*hop : t*hop+length]`` for each frame ``t``, via a cumulative sum."""
    cs = np.zeros(v.shape[:-1] + (v.shape[-1] + 1,), np.float64)
    np.cumsum(v, axis=-1, dtype=np.float64, out=cs[..., 1:])
    start = np.arange(n_frames) * hop
    return cs[..., start + length] - cs[..., start]


def _zcr(y: np.ndarray, n_fft: int, hop: int) -> np.ndarray:
    """Mean over frames of ``librosa.feature.zero_crossing_rate`` (edge-padded frames;
    a frame's rate is its sign changes between consecutive samples / frame length)."""
    half = n_fft // 2
    yp = np.pad(y, [(0, 0)] * (y.ndim - 1) + [(half, half)], mode="edge")
    sign = np.signbit(yp) & (np.abs(yp) > np.float32(ZC_THRESHOLD))
    changes = sign[..., 1:] != sign[..., :-1]
    n_frames = 1 + (yp.shape[-1] - n_fft) // hop
    return (_frame_sums(changes, n_frames, n_fft - 1, hop) / n_fft).mean(-1)


def _rms(y: np.ndarray, n_fft: int, hop: int) -> np.ndarray:
    """Mean over frames of ``librosa.feature.rms(y=y)`` (zero-padded, unwindowed frames)."""
    half = n_fft // 2
    yp = np.pad(y, [(0, 0)] * (y.ndim - 1) + [(half, half)])
    n_frames = 1 + (yp.shape[-1] - n_fft) // hop
    power = _frame_sums(np.square(yp, dtype=np.float64), n_frames, n_fft, hop) / n_fft
    return np.sqrt(np.maximum(power, 0.0)).mean(-1)
