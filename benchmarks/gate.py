"""What the voiced-frame gate keeps, corpus by corpus (issue 10).

    python benchmarks/gate.py [--data ../shared/data] [--levels -50,-60,-70]

Adaptive standardisation updates its statistics on frames whose c0 (the
frame's log level in ``cmsis_mfcc``) reaches a gate, and tiled padding repeats
each window's span from its first to its last such frame. A run setting gives
the gate in dBFS and :func:`tinyser.features.adaptive.gate_for_level` turns it
into c0: the c0 of *white noise* at that RMS level. Speech puts its energy in
the low bands, and c0 sums the log energies of all 40 bands, so a speech frame
has a lower c0 than white noise of the same RMS level. This measures by how
much, and what each gate then keeps:

- **calibration**: the median c0 of real frames (every 10th clip of each
  corpus) by their RMS level, against the c0 of white noise at that level;
- **per corpus**: the share of each clip's frames counted as sound (window
  padding excluded) and the mean sound span of the 2 s model windows, the
  part that tiling keeps and repeats.

Writes docs/gate.json and the gate section of docs/results.md.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
import _report  # noqa: E402
import ablation  # noqa: E402

LEVELS = (-50.0, -60.0, -70.0)
RMS_BINS = (-60, -50, -40, -30, -20)


def frame_levels(audio: np.ndarray, frame: int, hop: int) -> np.ndarray:
    """RMS level in dBFS of each frame (``frame`` samples every ``hop``), the framing of the frontend.

    >>> frame_levels(np.full(2048, 0.1, np.float32), 1024, 256).round(1).tolist()
    [-20.0, -20.0, -20.0, -20.0, -20.0]
    """
    frames = np.lib.stride_tricks.sliding_window_view(audio, frame)[::hop]
    return 10 * np.log10(np.mean(frames.astype(np.float64) ** 2, axis=1) + 1e-12)


def calibration(data: Path, fe_cfg, step: int = 10) -> dict:
    """Median c0 of real frames by RMS level (every ``step``-th clip), and white noise's c0 there."""
    from tinyser.audio import load
    from tinyser.corpora import load_dataset
    from tinyser.features.adaptive import gate_for_level

    levels, c0s = [], []
    for rec in load_dataset([str(data / c) for c in ablation.CORPORA], labels=ablation.LABELS).records[::step]:
        audio = load(rec.path, fe_cfg.sample_rate)
        c0 = fe_cfg.compute(audio)[:, 0]
        db = frame_levels(audio, fe_cfg.frame_length, fe_cfg.hop_length)
        n = min(len(c0), len(db))
        levels.append(db[:n])
        c0s.append(c0[:n])
    db, c0 = np.concatenate(levels), np.concatenate(c0s)
    rows = []
    for level in RMS_BINS:
        near = np.abs(db - level) <= 2.5
        rows.append({"rms_db": level, "frames": int(near.sum()), "speech_c0": float(np.median(c0[near])),
                     "white_noise_c0": gate_for_level(fe_cfg, level)})
    return {"clips_every": step, "rows": rows}


def per_corpus(data: Path, fe_cfg) -> list[dict]:
    """Share of real frames at or above each gate, and the windows' mean sound span, per corpus."""
    from tinyser.experiment import run_features
    from tinyser.features.adaptive import gate_for_level
    from tinyser.features.tile import sound_spans

    fs = run_features(ablation.run_config(data, {}))  # the rows' features (cached), before standardisation
    padding = float(fe_cfg.compute(np.zeros(fe_cfg.frame_length * 4, np.float32))[0, 0])
    corpus = np.array([str(g).split(":")[0] for g in fs.groups])
    out = []
    for name in ablation.CORPORA:
        x = fs.features[corpus == name]
        c0 = x[..., 0]
        real = c0 > padding
        row = {"corpus": name, "windows": int(len(x)), "gates": []}
        for level in LEVELS:
            gate = gate_for_level(fe_cfg, level)
            _, span = sound_spans(x, gate)
            row["gates"].append({"gate_db": level, "gate_c0": gate,
                                 "sound_share": float((c0[real] >= gate).mean()),
                                 "mean_span_s": float(span.mean() * fe_cfg.hop_length / fe_cfg.sample_rate)})
        out.append(row)
    return out


def markdown(res: dict, cmd: str) -> str:
    cal = res["calibration"]
    lines = ["## The voiced-frame gate, corpus by corpus (`benchmarks/gate.py`)", "",
             f"Reproduce: `{cmd}` on {_report.machine()}. The gate of adaptive standardisation and tiled padding is "
             "set in dBFS and turned into c0 (`cmsis_mfcc`'s first coefficient) as the c0 of white noise at that "
             "RMS level. Real frames (every "
             f"{cal['clips_every']}th clip of the four corpora) of the same RMS level have a much lower c0:", "",
             "| frame RMS level | frames | median c0 of real frames | c0 of white noise |",
             "|---:|---:|---:|---:|"]
    lines += [f"| {r['rms_db']} dBFS | {r['frames']:,} | {r['speech_c0']:.1f} | {r['white_noise_c0']:.1f} |"
              for r in cal["rows"]]
    lines += ["", "What each gate keeps: the share of the clips' frames (window padding excluded) counted as sound, "
              "and the mean sound span of the 2 s model windows (what tiling keeps and repeats):", "",
              "| corpus | windows | " + " | ".join(f"gate {g['gate_db']:g} dBFS: sound / span"
                                                for g in res["corpora"][0]["gates"]) + " |",
              "|---|---:|" + "---:|" * len(res["corpora"][0]["gates"])]
    for r in res["corpora"]:
        lines.append(f"| {r['corpus']} | {r['windows']:,} | " + " | ".join(
            f"{100 * g['sound_share']:.0f} % / {g['mean_span_s']:.2f} s" for g in r["gates"]) + " |")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    _report.add_data_argument(ap)
    args = ap.parse_args()
    from tinyser.features import get_config

    fe_cfg = get_config("cmsis_mfcc")
    res = {"calibration": calibration(args.data, fe_cfg), "corpora": per_corpus(args.data, fe_cfg)}
    _report.write("gate", res, markdown(res, "python benchmarks/gate.py --data ../shared/data"), page="results.md",
                  data=args.data)


if __name__ == "__main__":
    main()
