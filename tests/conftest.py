"""Shared fixtures: where the real corpora are, synthesised audio, an isolated cache."""
from __future__ import annotations

import contextlib
import os
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
from speechlike import speechlike  # noqa: E402,F401  (one definition: the CI's core check writes it too)

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


def write_speechlike(path: Path, seconds: float = 0.5, sample_rate: int = 16000, channels: int = 1,
                     freq: float = 150.0, **kw) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, speechlike(seconds, sample_rate, freq, channels), sample_rate, **kw)
    return path


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


TOY_FREQS = {"low": 140.0, "mid": 320.0, "high": 700.0}


@pytest.fixture(scope="session")
def toy_manifest(tmp_path_factory) -> Path:
    """A CSV manifest of 54 generated clips: 3 pitch classes × 6 speakers × 3 takes."""
    root = tmp_path_factory.mktemp("toy")
    rows = ["path,label,speaker"]
    for s in range(6):
        for label, f in TOY_FREQS.items():
            for k in range(3):
                p = write_tone(root / f"s{s}" / f"{label}{k}.wav", 0.6, 16000, freq=f * (1 + 0.03 * s + 0.01 * k))
                rows.append(f"{p.relative_to(root)},{label},spk{s}")
    (root / "toy.csv").write_text("\n".join(rows) + "\n")
    return root / "toy.csv"


def toy_config(manifest: Path, **train):
    from tinyser.experiment import RunConfig
    from tinyser.training import TrainConfig

    return RunConfig((str(manifest),), model="tiny", protocol="speaker:3", model_params={"width": 0.5},
                     frontend={"frontend": "mfcc", "n_mfcc": 20},
                     segments={"window": 0.5, "hop": None, "pad": "zero"},
                     train=TrainConfig(**{"epochs": 3, "batch_size": 16, "seed": 5, **train}))


@pytest.fixture(scope="session")
def toy_run(toy_manifest, tmp_path_factory) -> tuple[Path, dict]:
    """A finished 3-fold run on the toy corpus: (run folder, report)."""
    from tinyser.experiment import run_training

    out = tmp_path_factory.mktemp("runs") / "toy"
    return out, run_training(toy_config(toy_manifest), out, progress=False)


@contextlib.contextmanager
def serve_in_thread(app):
    """A real uvicorn server for ``app`` on a free 127.0.0.1 port, in a thread:
    yields (port, server, thread); stopped (and joined) on exit."""
    import socket
    import threading
    import time

    import uvicorn

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    for _ in range(200):
        if server.started:
            break
        time.sleep(0.05)
    try:
        yield port, server, thread
    finally:
        server.should_exit = True
        thread.join(10)

