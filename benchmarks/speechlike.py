"""Write a synthetic speech-like WAV that tinyser's voice activity calls speech.

    python benchmarks/speechlike.py one.wav [--seconds 3]

Syllables of a harmonic voice (F0 gliding around 150 Hz, four a second, rising
from and falling to a quiet floor) plus a little noise, 16 kHz mono: the
signal the tests use (tests/conftest.py imports it). Needs only NumPy and soundfile,
so it runs in the core install (CI's core-only check uses it).
"""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import soundfile as sf


def speechlike(seconds: float, sample_rate: int = 16000, freq: float = 150.0, channels: int = 1,
               seed: int = 0) -> np.ndarray:
    """Syllables of a harmonic voice (F0 gliding around ``freq``, about four a second, rising
    from and falling to a quiet floor) with a little noise: what tinyser's voice activity
    calls speech, where a steady tone is not (see tinyser.vad). The tests' signal too."""
    t = np.arange(int(round(seconds * sample_rate))) / sample_rate
    rng = np.random.default_rng(seed)
    f0 = freq * (1 + 0.1 * np.sin(2 * np.pi * 0.8 * t + seed))
    phase = 2 * np.pi * np.cumsum(f0) / sample_rate
    voice = sum(np.sin(k * phase) / k for k in range(1, 12) if k * freq < 0.45 * sample_rate)
    envelope = np.sin(np.pi * ((4.0 * t) % 1.0)) ** 2  # a syllable every 0.25 s
    y = (0.25 * voice * envelope + 0.003 * rng.standard_normal(t.size)).astype(np.float32)
    return y if channels == 1 else np.stack([y * (1 - 0.2 * c) for c in range(channels)], axis=1)


def write(path: str | Path, seconds: float = 3.0, sample_rate: int = 16000) -> Path:
    path = Path(path)
    sf.write(path, speechlike(seconds, sample_rate), sample_rate, subtype="PCM_16")
    return path


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out", type=Path)
    ap.add_argument("--seconds", type=float, default=3.0)
    args = ap.parse_args()
    write(args.out, args.seconds)
