"""Which kernels `predict` should run a full-int8 model with, so that the PC's
scores are the device's: LiteRT's default kernels (XNNPACK/optimised), LiteRT's
reference kernels (BUILTIN_REF) and the TFLite Micro interpreter, each against
TFLite Micro (which the emulated Cortex-M4 matches bit for bit, docs/device.json)
on the model inputs of real clips; and what each costs in files per second of
`tinyser predict`'s path (features + windows + model).

    python benchmarks/predict_kernels.py --data ../shared/data

Writes docs/predict_kernels.json and the `predict-kernels` section of docs/results.md.
"""
from __future__ import annotations

import argparse
import json
import re
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _report  # noqa: E402

from tinyser.cache import atomic_write  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
COMMAND = "python benchmarks/predict_kernels.py --data ../shared/data"


def runners(blob: bytes) -> dict:
    from tinyser.tflite import LiteRTModel, TFLMModel

    return {"LiteRT default": LiteRTModel(blob), "LiteRT reference (BUILTIN_REF)": LiteRTModel(blob, reference=True),
            "TFLite Micro (host)": TFLMModel(blob)}


def main():
    from tinyser.deploy.firmware import _clip_pcm, default_clips
    from tinyser.inference import DEFAULT_MODEL, load_model

    ap = argparse.ArgumentParser()
    _report.add_data_argument(ap)
    ap.add_argument("--clips", type=int, default=60)
    args = ap.parse_args()
    model = load_model(DEFAULT_MODEL)
    clips = default_clips(args.clips, args.data)
    x = []
    for c in clips:
        pcm = _clip_pcm(c, model.sample_rate, 10.0).astype(np.float32) / 32768.0
        segs = model.segments.split(pcm, model.sample_rate)
        x.append(model.runtime.quantise(model.frontend(segs)))
    x = np.concatenate(x)
    run = runners(model.bytes)
    outs, per_window = {}, {}
    for name, r in run.items():
        t0 = time.perf_counter()
        outs[name] = np.stack([r.predict_raw(row[None])[0] for row in x])
        per_window[name] = (time.perf_counter() - t0) / len(x)
    ref = outs["TFLite Micro (host)"]
    rows = []
    files = clips[: min(30, len(clips))]
    for name, r in run.items():
        model.runtime = r
        t0 = time.perf_counter()
        for f in files:
            model.predict_file(f)
        files_s = len(files) / (time.perf_counter() - t0)
        rows.append({"kernels": name, "windows": int(len(x)),
                     "equal_to_tflm": int(np.sum(np.all(outs[name] == ref, axis=1))),
                     "max_lsb_diff": int(np.max(np.abs(outs[name].astype(int) - ref.astype(int)))),
                     "ms_per_window": 1e3 * per_window[name], "files_per_second": files_s})
    text = "\n".join([
        "## `predict` and the device: which kernels (`benchmarks/predict_kernels.py`)", "",
        f"Reproduce: `{COMMAND}` ({_report.machine()}, shared with other jobs). The default model's int8 inputs of "
        f"{len(clips)} clips ({len(x)} windows) through each runner, compared with TFLite Micro (what the "
        f"Cortex-M4 computes, bit for bit: docs/device.json); files per second: `predict_file` on {len(files)} of "
        "the clips with that runner (features, windows, model).", "",
        "| kernels | outputs equal to TFLite Micro | max diff (LSB) | ms per window | files per second |",
        "|---|---|---|---|---|",
        *(f"| {r['kernels']} | {r['equal_to_tflm']}/{r['windows']} | {r['max_lsb_diff']} | {r['ms_per_window']:.2f} "
          f"| {r['files_per_second']:.2f} |" for r in rows)])
    atomic_write(ROOT / "docs" / "predict_kernels.json", lambda f: f.write(
        (json.dumps({"machine": _report.machine(), "command": COMMAND, "rows": rows}, indent=1) + "\n").encode()))
    md = ROOT / "docs" / "results.md"
    page = md.read_text()
    start, end = "<!-- predict-kernels:start -->", "<!-- predict-kernels:end -->"
    block = f"{start}\n{text}\n{end}"
    pattern = re.compile(re.escape(start) + ".*?" + re.escape(end), re.S)
    page = pattern.sub(lambda _: block, page) if pattern.search(page) else page.rstrip() + "\n\n" + block + "\n"
    atomic_write(md, lambda f: f.write(page.encode()))
    print(text)


if __name__ == "__main__":
    main()
