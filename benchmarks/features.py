"""Feature speed on all EMO-DB clips: tinyser's `mfcc` frontend vs
`librosa.feature.mfcc` with the same settings, and the feature cache.

    python benchmarks/features.py [--data ../shared/data]

Writes docs/features.json and a section of docs/benchmarks.md.
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import librosa
import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
import _report  # noqa: E402

from tinyser.audio import load  # noqa: E402
from tinyser.corpora import load_dataset  # noqa: E402
from tinyser.features import get_config  # noqa: E402

REPEATS = 5


def best_of_interleaved(fns, repeats=REPEATS) -> list[float]:
    """Best time of each function, alternating between them so that any load
    from elsewhere on the machine hits both alike."""
    best = [float("inf")] * len(fns)
    for _ in range(repeats):
        for i, fn in enumerate(fns):
            t = time.perf_counter()
            fn()
            best[i] = min(best[i], time.perf_counter() - t)
    return best


def frontend_vs_librosa(clips, cfg) -> dict:
    def ours():
        return [cfg.compute(y) for y in clips]

    def ref():
        return [librosa.feature.mfcc(y=y, sr=cfg.sample_rate, n_mfcc=cfg.n_mfcc, n_fft=cfg.n_fft,
                                     hop_length=cfg.hop_length, win_length=cfg.win_length, n_mels=cfg.n_mels,
                                     fmin=cfg.fmin, fmax=cfg.fmax, center=cfg.center).T for y in clips]
    diff = max(float(np.max(np.abs(a - b))) for a, b in zip(ours(), ref()))
    t_ref, t_ours = best_of_interleaved([ref, ours])
    return {"clips": len(clips), "librosa_s": t_ref, "tinyser_s": t_ours, "speedup": t_ref / t_ours,
            "max_abs_diff": diff}


def stage_cold_vs_warm(records, cfg) -> dict:
    """The feature stage alone (decode, resample, frontend vs cache read), in this process."""
    from tinyser.features import extract

    with tempfile.TemporaryDirectory() as tmp:
        t = time.perf_counter()
        extract(records, cfg, cache_dir=tmp)
        cold = time.perf_counter() - t
        t = time.perf_counter()
        extract(records, cfg, cache_dir=tmp)
        warm = time.perf_counter() - t
    return {"cold_s": cold, "warm_s": warm, "speedup": cold / warm}


def cache_cold_vs_warm(data: Path) -> dict:
    times = {}
    with tempfile.TemporaryDirectory() as tmp:
        env = {**os.environ, "TINYSER_CACHE": tmp}
        for run in ("cold", "warm"):
            cmd = ["tinyser", "features", str(data / "emodb"), "--frontend", "mfcc",
                   "--out", f"{tmp}/{run}.npz"]
            t = time.perf_counter()
            subprocess.run(cmd, check=True, env=env, capture_output=True)
            times[run] = time.perf_counter() - t
    return {"cold_s": times["cold"], "warm_s": times["warm"], "speedup": times["cold"] / times["warm"]}


def main():
    ap = argparse.ArgumentParser()
    _report.add_data_argument(ap)
    args = ap.parse_args()
    cfg = get_config("mfcc")
    records = load_dataset(args.data / "emodb").records
    clips = [load(r.path, cfg.sample_rate) for r in records]
    fe = frontend_vs_librosa(clips, cfg)
    cache = cache_cold_vs_warm(args.data)
    stage = stage_cold_vs_warm(records, cfg)
    results = {"machine": _report.machine(), "frontend": cfg.to_dict(), "mfcc_vs_librosa": fe,
               "features_cache": cache, "features_stage_cache": stage, "librosa": librosa.__version__}
    md = f"""## Feature speed (`benchmarks/features.py`)

Reproduce: `python benchmarks/features.py --data ../shared/data` on {results['machine']}.

`mfcc` frontend (Light-SERNet setup: 16 kHz, n_fft 1024, hop 256, 40 mel bands 40-7600 Hz, 40 coefficients)
against `librosa.feature.mfcc` {librosa.__version__} with the same settings, one clip per call, on all
{fe['clips']} EMO-DB clips (2.0 s each, loaded at 16 kHz), best of {REPEATS} alternating runs each, measured
in one run:

| implementation | time for all clips | per clip | max abs difference |
|---|---:|---:|---:|
| librosa.feature.mfcc | {fe['librosa_s']:.3f} s | {1000 * fe['librosa_s'] / fe['clips']:.2f} ms | reference |
| tinyser `mfcc` | {fe['tinyser_s']:.3f} s | {1000 * fe['tinyser_s'] / fe['clips']:.2f} ms | {fe['max_abs_diff']:.1e} |

**Speed-up: {fe['speedup']:.1f}×** (goal ≥ 3×).

Feature cache (goal: a second run ≥ 10× faster):

| what is timed | empty cache | cache hit | speed-up |
|---|---:|---:|---:|
| the feature stage (`tinyser.features.extract` over the 535 clips) | {stage['cold_s']:.2f} s | {stage['warm_s']:.2f} s | **{stage['speedup']:.1f}×** |
| the whole command `tinyser features ../shared/data/emodb --frontend mfcc --out F.npz` | {cache['cold_s']:.2f} s | {cache['warm_s']:.2f} s | **{cache['speedup']:.1f}×** |

The whole command's cache-hit time is mostly fixed cost (Python start-up and imports, scanning the
corpus, writing the 16 MB `.npz`); on EMO-DB's 535 short clips the cold run is only a few seconds, so the
whole-command ratio stays below 10× while the cached stage itself is well above it.
"""
    _report.write("features", results, md)
    print(md)


if __name__ == "__main__":
    main()
