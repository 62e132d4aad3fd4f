"""The compression table: float32 / float16 / dynamic-range / full-int8 TFLite
for `tiny` and `light_sernet` trained on EMO-DB (leave-one-speaker-out runs of
benchmarks/accuracy.py), plus float32 vs full-int8 UA over every fold.

    python benchmarks/accuracy.py --only emodb-tiny-loso emodb-light_sernet-loso   # the runs, if missing
    python benchmarks/quantization.py [--runs runs/accuracy]

Writes docs/quantization.json and the quantisation section of docs/results.md.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
import _report  # noqa: E402

from tinyser.benchmark import benchmark_run, markdown  # noqa: E402
from tinyser.experiment import load_fold, load_report  # noqa: E402
from tinyser.export import ensure_exported  # noqa: E402
from tinyser.metrics import scores  # noqa: E402
from tinyser.tflite import LiteRTModel  # noqa: E402
from tinyser.training import clip_labels, clip_predictions  # noqa: E402

RUNS = ("emodb-tiny-loso", "emodb-light_sernet-loso")


def all_folds_float_vs_int8(run: Path) -> dict:
    """Pooled test predictions of every fold's float32 and int8 model (each clip tested once)."""
    labels, truth, preds = None, [], {"float32": [], "int8": []}
    n_folds = len(load_report(run)["folds"])
    for k in range(n_folds):
        fm = load_fold(run, k)
        paths = ensure_exported(fm, list(preds))
        x, y, clip = fm.part("test")
        labels = fm.report["labels"]
        truth.append(clip_labels(y, clip))
        for q in preds:
            model = LiteRTModel(paths[q].read_bytes())
            preds[q].append(clip_predictions(model.predict(x), clip)[1].argmax(1))
    truth = np.concatenate(truth)
    res = {q: scores(truth, np.concatenate(p), labels) for q, p in preds.items()}
    agree = float(np.mean(np.concatenate(preds["float32"]) == np.concatenate(preds["int8"])))
    return {"folds": n_folds, "clips": int(len(truth)), "agreement": agree,
            **{q: {k: r[k] for k in ("ua", "wa", "f1")} for q, r in res.items()}}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=Path, default=Path("runs/accuracy"))
    args = ap.parse_args()
    results, lines = {"machine": _report.machine(), "models": {}}, [
        "## Quantisation and TFLite Micro (`benchmarks/quantization.py`)", "",
        f"Reproduce: `python benchmarks/quantization.py --runs runs/accuracy` on {_report.machine()}, after the "
        "EMO-DB leave-one-speaker-out runs of `benchmarks/accuracy.py` (commands above). Per model: the four "
        "variants of fold 0's model scored on fold 0's test speaker; host latency is LiteRT, 1 thread, median of "
        "100 invokes after warm-up; full-int8 is also run in the TFLite Micro interpreter (host build) and "
        "compared with LiteRT's reference kernels on 40 test inputs. Then float32 vs full-int8 over all ten "
        "folds (every EMO-DB clip tested once).", ""]
    for name in RUNS:
        run = args.runs / name
        table = benchmark_run(run, fold=0, repeats=100, micro_clips=40)
        pooled = all_folds_float_vs_int8(run)
        results["models"][name] = {"fold0": table, "all_folds": pooled}
        f32, i8 = pooled["float32"], pooled["int8"]
        lines += [f"### `{table['model']}`", "", markdown(table),
                  f"All {pooled['folds']} folds ({pooled['clips']} clips): float32 UA {100 * f32['ua']:.1f}, "
                  f"full-int8 UA {100 * i8['ua']:.1f} ({100 * (i8['ua'] - f32['ua']):+.1f} points; goal within 1), "
                  f"WA {100 * f32['wa']:.1f} → {100 * i8['wa']:.1f}, labels equal on {100 * pooled['agreement']:.1f} % "
                  "of clips.", ""]
        arena = next(v for v in table["variants"] if v["quantization"] == "int8")["arena_bytes"]
        lines += [f"TFLite Micro arena of the full-int8 `{table['model']}`: {arena:,} bytes "
                  f"({'fits' if arena <= 256 * 1024 else 'does not fit'} the Nano 33 BLE Sense's 256 KB of RAM).", ""]
    _report.write("quantization", results, "\n".join(lines), page="results.md")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
