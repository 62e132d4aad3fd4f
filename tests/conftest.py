"""Shared fixtures: where the real corpora are, synthesised audio, an isolated cache."""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

REPO = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("TINYSER_DATA", REPO.parent / "shared" / "data"))


def _corpus(name: str) -> Path:
    path = DATA / name
    if not path.is_dir():
        pytest.skip(f"real corpus {name} not found under {DATA} (set TINYSER_DATA)")
    return path


@pytest.fixture(scope="session")
def emodb_dir() -> Path:
    return _corpus("emodb")


@pytest.fixture(scope="session")
def ravdess_dir() -> Path:
    return _corpus("ravdess")


def tone(seconds: float, sample_rate: int = 16000, freq: float = 220.0, channels: int = 1,
         seed: int = 0) -> np.ndarray:
    """A harmonic tone with a little noise, (samples,) or (samples, channels)."""
    t = np.arange(int(round(seconds * sample_rate))) / sample_rate
    rng = np.random.default_rng(seed)
    y = 0.3 * np.sin(2 * np.pi * freq * t) + 0.1 * np.sin(2 * np.pi * 2.5 * freq * t)
    y = (y + 0.01 * rng.standard_normal(t.size)).astype(np.float32)
    return y if channels == 1 else np.stack([y * (1 - 0.2 * c) for c in range(channels)], axis=1)


def write_tone(path: Path, seconds: float = 0.5, sample_rate: int = 16000, channels: int = 1,
               freq: float = 220.0, **kw) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, tone(seconds, sample_rate, freq, channels), sample_rate, **kw)
    return path


@pytest.fixture(autouse=True, scope="session")
def _isolated_cache(tmp_path_factory):
    """Tests never read or write the user's feature cache."""
    old = os.environ.get("TINYSER_CACHE")
    os.environ["TINYSER_CACHE"] = str(tmp_path_factory.mktemp("cache"))
    yield
    if old is None:
        os.environ.pop("TINYSER_CACHE", None)
    else:
        os.environ["TINYSER_CACHE"] = old
