"""Inference throughput of the shipped default model on real recordings.

    python benchmarks/predict.py [--data ../shared/data]

Times the user's command, `tinyser predict ../shared/data/ravdess/Actor_01 --json`
(one process, start-up included, best of 3), and the Python API over the same
files with the model already loaded. Writes docs/predict.json and the predict
section of docs/benchmarks.md.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
import _report  # noqa: E402

from tinyser.inference import audio_inputs, load_model, predict_files  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    _report.add_data_argument(ap)
    args = ap.parse_args()
    folder = args.data / "ravdess" / "Actor_01"
    files, _ = audio_inputs([folder])
    cmd = [sys.executable, "-m", "tinyser", "predict", str(folder), "--json"]
    cli = []
    for _ in range(3):
        t = time.perf_counter()
        done = subprocess.run(cmd, capture_output=True, text=True, check=True)
        cli.append(time.perf_counter() - t)
    results = json.loads(done.stdout)["results"]
    n_results, audio_s = len(results), sum(r["duration"] for r in results)
    model = load_model()
    api = []
    for _ in range(3):
        t = time.perf_counter()
        predict_files(model, [folder], progress=False)
        api.append(time.perf_counter() - t)
    res = {"machine": _report.machine(), "files": len(files), "results": n_results, "audio_seconds": audio_s,
           "cli_seconds": min(cli), "api_seconds": min(api),
           "cli_files_per_second": len(files) / min(cli), "api_files_per_second": len(files) / min(api),
           "api_realtime_factor": min(api) / audio_s}
    md = "\n".join([
        "## Inference throughput (`benchmarks/predict.py`)", "",
        f"Reproduce: `python benchmarks/predict.py` on {_report.machine()}. The default model (full-int8, "
        "LiteRT, 1 thread) on RAVDESS Actor_01: every file decoded, resampled, cut into windows of the "
        "model's length every half window, `cmsis_mfcc` features, voice activity, inference. Best of 3.", "",
        "| what | files | results | audio | wall | files / s | real-time factor |",
        "|---|---:|---:|---:|---:|---:|---:|",
        f"| `tinyser predict {folder} --json` (whole command, start-up included) | {len(files)} | {n_results} "
        f"| {audio_s:.0f} s | {min(cli):.2f} s | {res['cli_files_per_second']:.0f} | {min(cli) / audio_s:.4f} |",
        f"| `predict_files(load_model(), [folder])` (model loaded) | {len(files)} | {n_results} | {audio_s:.0f} s "
        f"| {min(api):.2f} s | {res['api_files_per_second']:.0f} | {res['api_realtime_factor']:.4f} |", "",
        f"This copy of RAVDESS has {len(files)} files for Actor_01 (60 in the original; two are missing from "
        "the public source, see the data README)."])
    _report.write("predict", res, md)
    print(md)


if __name__ == "__main__":
    main()
