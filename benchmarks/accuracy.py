"""Accuracy under honest protocols: EMO-DB and RAVDESS, paper models vs `tiny`.

    python benchmarks/accuracy.py [--data ../shared/data] [--runs runs/accuracy] [--only NAME ...]

Each experiment is one `tinyser train` run (the exact command is recorded);
finished runs are reused, an interrupted one is resumed, so the script can be
stopped and restarted. Writes docs/results.json and the accuracy section of
docs/results.md. Model selection everywhere: best epoch by validation UA on
speakers (or, for random:K, clips) carved from the training folds; the test
fold is never looked at before the end.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
import _report  # noqa: E402

from tinyser.experiment import RunConfig, load_report  # noqa: E402
from tinyser.features import get_config  # noqa: E402
from tinyser.models import build_model, count_macs, count_params  # noqa: E402
from tinyser.training import TrainConfig  # noqa: E402

# Epoch budgets keep the whole benchmark near one hour on 2 CPU cores
# (Light-SERNet: ~5 s per EMO-DB epoch; tiny: ~0.7 s; lstm: ~1.3 s).
BUDGET = {"light_sernet": (15, 6), "tiny": (40, 10), "lstm": (20, 6), "cnn1d": (60, 15)}  # max epochs, patience
FRONTEND = {"cnn1d": "stats"}  # the others read mfcc frames

EXPERIMENTS = [
    # name, corpus, labels, model, protocol (speaker-independent ones first)
    ("emodb-tiny-loso", "emodb", "native", "tiny", "speaker"),
    ("emodb-light_sernet-loso", "emodb", "native", "light_sernet", "speaker"),
    ("emodb-cnn1d-loso", "emodb", "native", "cnn1d", "speaker"),
    ("ravdess-tiny-speaker5", "ravdess", "native", "tiny", "speaker:5"),
    ("ravdess-light_sernet-speaker5", "ravdess", "native", "light_sernet", "speaker:5"),
    ("ravdess-lstm-speaker5", "ravdess", "native", "lstm", "speaker:5"),
    ("ravdess-lstm-4class-speaker5", "ravdess", "4class", "lstm", "speaker:5"),
    ("ravdess-lstm-valence3-speaker5", "ravdess", "valence3", "lstm", "speaker:5"),
    ("emodb-light_sernet-random10", "emodb", "native", "light_sernet", "random:10"),
    ("emodb-tiny-random10", "emodb", "native", "tiny", "random:10"),
]
SEGMENTS = {"window": 3.0, "hop": None, "pad": "drop"}  # Light-SERNet's 3 s input; tails dropped


def command(data: Path, corpus, labels, model, protocol, out) -> str:
    epochs, patience = BUDGET[model]
    return (f"tinyser train --data {data / corpus} --model {model} --frontend {FRONTEND.get(model, 'mfcc')} "
            f"--labels {labels} --window 3.0 --pad drop "
            f"--cv {protocol} --epochs {epochs} --patience {patience} --out {out}")


def run(name, data: Path, runs: Path, corpus, labels, model, protocol) -> dict:
    out = runs / name
    epochs, patience = BUDGET[model]
    frontend = get_config(FRONTEND.get(model, "mfcc"))
    cfg = RunConfig((str(data / corpus),), model=model, frontend=frontend.to_dict(),
                    segments=SEGMENTS, labels=labels, protocol=protocol,
                    train=TrainConfig(epochs=epochs, patience=patience))
    if (out / "report.json").exists():
        report = load_report(out)
    else:
        report = _report.timed_training(cfg, out)
    wall = _report.wall_seconds(out)
    shape = (162,) if model == "cnn1d" else (frontend.n_frames(int(SEGMENTS["window"] * 16000)), 40)
    model_obj = build_model(model, shape, len(report["labels"]))
    return {"name": name, "corpus": corpus, "labels": labels, "model": model, "protocol": protocol,
            "speaker_independent": report["protocol"]["speaker_independent"],
            "ua": report["ua"], "ua_std": report["ua_std"], "wa": report["wa"], "wa_std": report["wa_std"],
            "f1": report["f1"], "f1_std": report["f1_std"], "n_classes": len(report["labels"]),
            "folds": len(report["folds"]), "epochs": epochs, "patience": patience,
            "mean_best_epoch": sum(f["best_epoch"] + 1 for f in report["folds"]) / len(report["folds"]),
            "params": count_params(model_obj), "macs_per_second": count_macs(model_obj) / SEGMENTS["window"],
            "wall_s": wall, "command": command(data, corpus, labels, model, protocol, out)}


def markdown(rows: list[dict]) -> str:
    lines = ["## Accuracy (`benchmarks/accuracy.py`)", "",
             f"Reproduce: `python benchmarks/accuracy.py --data ../shared/data` on {_report.machine()}. "
             "Features: `mfcc` (16 kHz, 64 ms / 16 ms, 40 mel 40-7600 Hz, 40 coefficients), standardised "
             "with statistics of each fold's training part; input 3 s windows. Best epoch chosen by UA on a "
             "validation part carved from the training folds (15 % of the training speakers for speaker "
             "protocols, 15 % of the training clips for random:K); cosine learning-rate decay; Adam 1e-3; "
             "batch 32; class-balanced weights. Mean ± std over folds.", "",
             "| corpus | classes | model | protocol | UA % | WA % | macro-F1 % | params | MACs / s audio "
             "| epochs (max / patience / mean best) | wall time |",
             "|---|---|---|---|---:|---:|---:|---:|---:|---|---:|"]
    for r in rows:
        proto = f"{r['protocol']} ({'speaker-indep.' if r['speaker_independent'] else 'random clips'})"
        lines.append(
            f"| {r['corpus']} | {r['labels']} ({r['n_classes']}) | `{r['model']}` | {proto} "
            f"| {100 * r['ua']:.1f} ± {100 * r['ua_std']:.1f} | {100 * r['wa']:.1f} ± {100 * r['wa_std']:.1f} "
            f"| {100 * r['f1']:.1f} ± {100 * r['f1_std']:.1f} | {r['params']:,} | {r['macs_per_second'] / 1e6:.1f} M "
            f"| {r['epochs']} / {r['patience']} / {r['mean_best_epoch']:.1f} | {r['wall_s'] / 60:.1f} min |")
    total = sum(r["wall_s"] for r in rows) / 60
    lines += ["", f"Total wall time {total:.0f} min (each run's time summed over its resumed segments).",
              "", "Commands:", "", "```bash"] + [r["command"] for r in rows] + ["```", ""]
    lines += goals(rows)
    return "\n".join(lines)


def goals(rows: list[dict]) -> list[str]:
    by = {r["name"]: r for r in rows}
    out = ["Goals (benchmark goals, not tests):", ""]
    t, ls = by.get("emodb-tiny-loso"), by.get("emodb-light_sernet-loso")
    if t and ls:
        ratio = t["macs_per_second"] / ls["macs_per_second"]
        out.append(f"- `tiny` ≥ `light_sernet` UA under EMO-DB LOSO at ≤ 1/10 of its MACs: "
                   f"{100 * t['ua']:.1f} vs {100 * ls['ua']:.1f} at {ratio:.2f}× the MACs "
                   f"({'met' if t['ua'] >= ls['ua'] and ratio <= 0.1 else 'not met'}).")
    best = max((r for r in rows if r["corpus"] == "emodb" and r["protocol"] == "speaker"), key=lambda r: r["ua"],
               default=None)
    if best:
        out.append(f"- EMO-DB LOSO UA ≥ 85: best {100 * best['ua']:.1f} (`{best['model']}`), "
                   f"gap {100 * best['ua'] - 85:+.1f} points.")
    rav = [r for r in rows if r["corpus"] == "ravdess" and r["labels"] == "native"]
    if rav:
        b = max(rav, key=lambda r: r["ua"])
        out.append(f"- RAVDESS speaker-independent 8-class UA ≥ 65: best {100 * b['ua']:.1f} (`{b['model']}`), "
                   f"gap {100 * b['ua'] - 65:+.1f} points.")
    return out


def main():
    ap = argparse.ArgumentParser()
    _report.add_data_argument(ap)
    ap.add_argument("--runs", type=Path, default=Path("runs/accuracy"))
    ap.add_argument("--only", nargs="*", help="names of experiments to run")
    args = ap.parse_args()
    rows = []
    for name, *spec in EXPERIMENTS:
        if not args.only or name in args.only:
            rows.append(run(name, args.data, args.runs, *spec))
            # written after every experiment, so an interrupted benchmark still leaves its results
            _report.write("results", {"machine": _report.machine(), "experiments": rows}, markdown(rows),
                          page="results.md")
    print(markdown(rows))


if __name__ == "__main__":
    main()
