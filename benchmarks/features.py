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


def best_of(fn, repeats=REPEATS) -> float:
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)


def frontend_vs_librosa(clips, cfg) -> dict:
    def ours():
        return [cfg.compute(y) for y in clips]

    def ref():
        return [librosa.feature.mfcc(y=y, sr=cfg.sample_rate, n_mfcc=cfg.n_mfcc, n_fft=cfg.n_fft,
                                     hop_length=cfg.hop_length, win_length=cfg.win_length, n_mels=cfg.n_mels,
                                     fmin=cfg.fmin, fmax=cfg.fmax, center=cfg.center).T for y in clips]
    diff = max(float(np.max(np.abs(a - b))) for a, b in zip(ours(), ref()))
    t_ref, t_ours = best_of(ref), best_of(ours)
    return {"clips": len(clips), "librosa_s": t_ref, "tinyser_s": t_ours, "speedup": t_ref / t_ours,
            "max_abs_diff": diff}


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
    ap.add_argument("--data", type=Path, default=Path(os.environ.get("TINYSER_DATA", "../shared/data")))
    args = ap.parse_args()
    cfg = get_config("mfcc")
    clips = [load(r.path, cfg.sample_rate) for r in load_dataset(args.data / "emodb").records]
    fe = frontend_vs_librosa(clips, cfg)
    cache = cache_cold_vs_warm(args.data)
    results = {"machine": _report.machine(), "frontend": cfg.to_dict(), "mfcc_vs_librosa": fe,
               "features_cache": cache, "librosa": librosa.__version__}
    md = f"""## Feature speed (`benchmarks/features.py`)

Reproduce: `python benchmarks/features.py --data ../shared/data` on {results['machine']}.

`mfcc` frontend (Light-SERNet setup: 16 kHz, n_fft 1024, hop 256, 40 mel bands 40-7600 Hz, 40 coefficients)
against `librosa.feature.mfcc` {librosa.__version__} with the same settings, one clip per call, on all
{fe['clips']} EMO-DB clips (2.0 s each, loaded at 16 kHz), best of {REPEATS} runs each, measured in one run:

| implementation | time for all clips | per clip | max abs difference |
|---|---:|---:|---:|
| librosa.feature.mfcc | {fe['librosa_s']:.3f} s | {1000 * fe['librosa_s'] / fe['clips']:.2f} ms | reference |
| tinyser `mfcc` | {fe['tinyser_s']:.3f} s | {1000 * fe['tinyser_s'] / fe['clips']:.2f} ms | {fe['max_abs_diff']:.1e} |

**Speed-up: {fe['speedup']:.1f}×** (goal ≥ 3×).

Feature cache: `tinyser features ../shared/data/emodb --frontend mfcc --out F.npz` on an empty cache took
{cache['cold_s']:.1f} s; the same command again (cache hit, whole process included) took {cache['warm_s']:.1f} s:
**{cache['speedup']:.1f}× faster** (goal ≥ 10×).
"""
    _report.write("features", results, md)
    print(md)


if __name__ == "__main__":
    main()
