"""The pictures `tinyser plot` draws, regenerated in docs/plots/, with the time
and peak memory they take.

    python benchmarks/plots.py [--data ../shared/data] [--before OLD/src]

Three recordings: a short RAVDESS clip, 31 s of RAVDESS clips (30 windows at
the default 1 s hop) and 10 minutes of them (written to a temporary WAV; no
audio is kept). Each is drawn by the user's command, ``tinyser plot FILE``,
in a fresh process: its wall time and peak resident memory (start-up and
prediction included). With ``--before`` the same command of an older tinyser
source tree is measured too. Writes docs/plots/*.png, docs/plots.json and the
plots section of docs/benchmarks.md.
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import soundfile as sf

sys.path.insert(0, str(Path(__file__).parent))
import _report  # noqa: E402

MEASURE = ("import resource, subprocess, sys, time; t = time.perf_counter(); "
           "rc = subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL).returncode; "
           "print(rc, time.perf_counter() - t, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)")


def measure(cmd: list[str], env: dict, cwd: Path) -> dict:
    out = subprocess.run([sys.executable, "-c", MEASURE, *cmd], capture_output=True, text=True, env=env, check=True,
                         cwd=cwd)
    rc, seconds, kb = out.stdout.split()
    return {"exit_status": int(rc), "seconds": round(float(seconds), 2), "peak_rss_mb": round(int(kb) / 1024, 1)}


def recordings(data: Path, tmp: Path) -> dict[str, Path]:
    from tinyser.audio import load

    actor = sorted((data / "ravdess" / "Actor_01").glob("*.wav"))
    short = tmp / actor[20].name
    short.write_bytes(actor[20].read_bytes())
    y = np.concatenate([load(p, 16000) for p in actor[:16]])
    sf.write(tmp / "clip31s.wav", y[:31 * 16000], 16000, subtype="PCM_16")
    with sf.SoundFile(tmp / "talk10min.wav", "w", 16000, 1, "PCM_16") as f:
        left, k = 600 * 16000, 0
        while left > 0:
            part = load(actor[k % len(actor)], 16000)[:left]
            f.write(part)
            left, k = left - len(part), k + 1
    return {"short": short, "clip31s": tmp / "clip31s.wav", "talk10min": tmp / "talk10min.wav"}


def main():
    ap = argparse.ArgumentParser()
    _report.add_data_argument(ap)
    ap.add_argument("--before", type=Path, help="src/ folder of an older tinyser to measure the same commands with")
    args = ap.parse_args()
    out_dir = _report.DOCS / "plots"
    out_dir.mkdir(parents=True, exist_ok=True)
    res = {"machine": _report.machine(), "plots": {}}
    with tempfile.TemporaryDirectory(prefix="tinyser-plots-") as tmp:
        tmp = Path(tmp)
        for name, path in recordings(args.data, tmp).items():
            png = out_dir / f"{name}.png"
            cmd = [sys.executable, "-m", "tinyser", "plot", path.name, "--out", str(png), "--force"]  # run in tmp
            row = {"audio_seconds": round(sf.info(str(path)).duration, 2), "png": str(png.relative_to(_report.DOCS.parent)),
                   "now": measure(cmd, dict(os.environ), tmp)}
            if args.before:
                old = tmp / f"{name}-before.png"
                env = {**os.environ, "PYTHONPATH": str(args.before.resolve())}
                row["before"] = measure([*cmd[:5], "--out", str(old)], env, tmp)
            res["plots"][name] = row
            print(name, row, flush=True)
    rows = []
    for name, r in res["plots"].items():
        before = (f" | {r['before']['seconds']:.1f} s, {r['before']['peak_rss_mb']:,.0f} MB"
                  if "before" in r else "")
        rows.append(f"| [{name}]({Path(r['png']).relative_to('docs')}) | {r['audio_seconds']:g} s | "
                    f"{r['now']['seconds']:.1f} s | {r['now']['peak_rss_mb']:,.0f} MB{before} |")
    head = "| recording | length | time | peak memory |" + (" before (time, memory) |" if args.before else "")
    md = "\n".join([
        "## Plots (`benchmarks/plots.py`)", "",
        f"`python benchmarks/plots.py{' --before OLD/src' if args.before else ''}` ({res['machine']}): "
        "`tinyser plot FILE` in a fresh process, start-up, prediction and drawing included; peak resident memory "
        "of the process. The waveform is drawn as a min/max envelope of at most 2,000 columns and the "
        "spectrogram from at most 800 short-time spectra, read block by block, so a longer file costs "
        "prediction time but no more memory." + (" *Before*: the same command of the tinyser before this "
                                                  "change (whole file loaded, log-mel of every frame)." if args.before else ""), "",
        head, "|---|---:|---:|---:|" + ("---|" if args.before else ""), *rows,
    ])
    _report.write("plots", res, md)
    print(md)


if __name__ == "__main__":
    main()
