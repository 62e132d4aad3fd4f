"""Voice activity before and after: clips of the shared corpora with no speech
window, and windows of generated noise, DC, hum and silence wrongly called speech.

    python benchmarks/vad.py [--data ../shared/data]

Writes docs/vad.json and the ``vad`` section of docs/benchmarks.md.

Windows as ``tinyser predict`` cuts them for the default model: 2 s every 1 s,
the tail zero-padded (its padding is not judged). *Before*: the fixed rule
(a window is voiced when at least 10 % of its 32 ms frames reach -45 dBFS RMS).
*After*: :mod:`tinyser.vad` (noise floor of the recording + voicing), one
tracker per file as ``Stream`` runs it.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
import _report  # noqa: E402

from tinyser.audio import Segmenter, load  # noqa: E402
from tinyser.corpora import iter_audio  # noqa: E402
from tinyser.features import get_config  # noqa: E402
from tinyser.vad import VoiceConfig  # noqa: E402

SR, WINDOW, HOP = 16000, 32000, 16000
CORPORA = ("ravdess", "emodb", "tess", "savee")
CMD = "python benchmarks/vad.py --data ../shared/data"
FRONTEND = get_config("cmsis_mfcc")


def old_rule(window: np.ndarray) -> bool:
    """The fixed rule tinyser used before: 10 % of 512-sample frames at -45 dBFS or more."""
    n = len(window) // 512 * 512
    if n == 0:
        return False
    frames = window[:n].reshape(-1, 512).astype(np.float64)
    level = 10 * np.log10(np.mean(frames ** 2, axis=1) + 1e-12)
    return bool(np.mean(level >= -45.0) >= 0.1)


def windows_of(y: np.ndarray, config: VoiceConfig) -> tuple[list[bool], list[bool]]:
    """Per window: (old rule, new rule), streamed as Stream does."""
    seg, vad = Segmenter(WINDOW, HOP, pad="zero"), config.tracker(SR, FRONTEND)
    old, new = [], []
    step = HOP * 8
    found = []
    for i in range(0, len(y), step):
        part = y[i:i + step]
        vad.add(part)
        found += seg.push(part)
    found += seg.finish()
    for start, w in found:
        n = min(len(w), len(y) - start)
        old.append(old_rule(w[:n]))
        new.append(vad.window_speech(start, n))
    return old, new


def generated(seconds: float = 30.0) -> dict[str, np.ndarray]:
    n, rng = int(seconds * SR), np.random.default_rng(0)
    t = np.arange(n) / SR
    spec = np.fft.rfft(rng.standard_normal(n))
    spec[1:] /= np.sqrt(np.fft.rfftfreq(n, 1 / SR)[1:])
    spec[0] = 0
    pink = np.fft.irfft(spec, n)
    pink /= pink.std()
    white = rng.standard_normal(n)
    out = {"silence": np.zeros(n), "dither (-90 dBFS white)": 10 ** (-90 / 20) * white}
    for db in (-20, -40):
        g = 10 ** (db / 20)
        out[f"white noise {db} dBFS"] = g * white
        out[f"pink noise {db} dBFS"] = g * pink
        for hz in (50, 60):
            hum = sum(np.sin(2 * np.pi * hz * k * t + k) / k for k in range(1, 8))
            out[f"hum {hz} Hz + 6 harmonics {db} dBFS"] = g * hum / hum.std()
    hum60 = sum(np.sin(2 * np.pi * 60 * k * t + k) / k for k in range(1, 8))
    out["5 s silence, then hum 60 Hz -20 dBFS"] = np.where(t < 5, 0.0, 0.1 * hum60 / hum60.std())
    out["steady tone 220 Hz + harmonic, -13 dBFS"] = 0.3 * np.sin(2 * np.pi * 220 * t) + 0.1 * np.sin(
        2 * np.pi * 550 * t)
    out["DC 0.5"] = np.full(n, 0.5)
    out["DC 0.5 + white -40 dBFS"] = 0.5 + 0.01 * white
    return {k: v.astype(np.float32) for k, v in out.items()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    _report.add_data_argument(ap)
    args = ap.parse_args()
    config = VoiceConfig()
    start = time.perf_counter()
    corpora = {}
    for corpus in CORPORA:
        files = sorted(iter_audio(args.data / corpus))
        row = {"clips": len(files), "windows": 0, "before_no_voiced_window": 0, "after_no_voiced_window": 0,
               "before_voiced_windows": 0, "after_voiced_windows": 0, "after_examples": []}
        for f in files:
            old, new = windows_of(load(f, SR), config)
            row["windows"] += len(old)
            row["before_voiced_windows"] += sum(old)
            row["after_voiced_windows"] += sum(new)
            row["before_no_voiced_window"] += not any(old)
            if not any(new):
                row["after_no_voiced_window"] += 1
                if len(row["after_examples"]) < 5:
                    row["after_examples"].append(str(f.relative_to(args.data)))
        corpora[corpus] = row
        print(corpus, {k: v for k, v in row.items() if k != "after_examples"}, flush=True)
    example = args.data / "ravdess/Actor_09/03-01-07-02-01-01-09.wav"
    ex = None
    if example.exists():
        old, new = windows_of(load(example, SR), config)
        ex = {"path": "ravdess/Actor_09/03-01-07-02-01-01-09.wav", "windows": len(old),
              "before_voiced": sum(old), "after_voiced": sum(new)}
    gen = {}
    for name, y in generated().items():
        old, new = windows_of(y, config)
        gen[name] = {"windows": len(old), "before_voiced": sum(old), "after_voiced": sum(new)}
    results = {"config": config.to_dict(), "corpora": corpora, "example": ex, "generated": gen,
               "seconds": time.perf_counter() - start, "machine": _report.machine(), "command": CMD}
    _report.write("vad", results, markdown(results))
    print(markdown(results))


def markdown(r: dict) -> str:
    c, g = r["corpora"], r["generated"]
    pct = lambda a, b: f"{a} ({100 * a / max(b, 1):.1f} %)"  # noqa: E731
    lines = [
        "## Voice activity: quiet speech found, noise, DC and hum refused",
        "",
        f"Reproduce: `{r['command']}` ({r['machine']}, {r['seconds']:.0f} s). Windows of 2 s every 1 s as "
        "`predict` cuts them. Before: a fixed -45 dBFS level rule; after: `tinyser.vad` (level above the "
        "recording's own noise floor and voicing; " + ", ".join(f"{k} {v:g}" for k, v in r["config"].items()) + ").",
        "",
        "| corpus | clips | clips with no speech window, before | after | windows called speech, before | after |",
        "|---|---:|---:|---:|---:|---:|",
        *(f"| {k} | {v['clips']:,} | {pct(v['before_no_voiced_window'], v['clips'])} | "
          f"{pct(v['after_no_voiced_window'], v['clips'])} | {pct(v['before_voiced_windows'], v['windows'])} | "
          f"{pct(v['after_voiced_windows'], v['windows'])} |" for k, v in c.items()),
        "",
    ]
    if r["example"]:
        e = r["example"]
        lines += [f"`{e['path']}` (peak -31 dBFS): {e['before_voiced']} of {e['windows']} windows voiced before, "
                  f"{e['after_voiced']} after.", ""]
    lines += [
        "Generated signals (30 s each), windows wrongly called speech:",
        "",
        "| signal | windows | before | after |",
        "|---|---:|---:|---:|",
        *(f"| {k} | {v['windows']} | {v['before_voiced']} | {v['after_voiced']} |" for k, v in g.items()),
        "",
        "Gaps: hum that starts after digital silence counts as speech until the floor has risen to it (15 dB/s "
        "from min_level - margin, i.e. about 2.5 s for hum at -20 dBFS: the windows overlapping that rise); "
        "a steady tone or hum from the start never does. Windows of the corpora no longer called speech are "
        "those whose frames are mostly the clip's silent tail. The same rule runs in the C frontend "
        "(`tinyser_window_speech`), checked frame for frame against this one in `tests/test_deploy.py`.",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    if sys.argv[1:] == ["--markdown-only"]:  # re-render docs from docs/vad.json
        import json

        r = json.loads((_report.DOCS / "vad.json").read_text())
        _report.write("vad", r, markdown(r))
    else:
        main()
