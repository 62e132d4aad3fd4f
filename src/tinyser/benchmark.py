"""The comparison table of a model's TFLite variants: size, accuracy, agreement
with the float model, host latency, MACs, and for full-int8 a TFLite Micro run
(agreement with LiteRT's reference kernels, smallest working arena) and, for
models the C frontend can run, the device budget (flash, RAM, MACs per second
of audio, estimated Cortex-M4F latency and real-time factor).

Every variant is scored on the same clips: for a run folder, the test part of
the exported fold (never seen in training or model selection).
"""
from __future__ import annotations

import json
import os
import statistics
import time
from pathlib import Path
from typing import TYPE_CHECKING, Sequence

import numpy as np

from .cache import atomic_write
from .metrics import scores
from .tflite.convert import QUANT_MODES
from .training import clip_labels, clip_predictions

if TYPE_CHECKING:
    from .tflite import ModelMetadata



def benchmark_run(run_dir: str | os.PathLike, fold: int = 0, repeats: int = 100, micro_clips: int = 40) -> dict:
    """Export (if needed) and compare all four variants of a run's fold.

    ``micro_clips`` test clips are also run through TFLite Micro and LiteRT's
    reference kernels (slow, reference C kernels on the host).

    >>> benchmark_run("runs/emodb-tiny")["variants"][-1]["arena_bytes"]   # doctest: +SKIP
    54272
    """
    from .experiment import load_fold
    from .export import ensure_exported

    run_dir = Path(run_dir)
    fm = load_fold(run_dir, fold)
    paths = ensure_exported(fm, QUANT_MODES)
    x, y, clip = fm.part("test")
    rows = _agreement([_variant(paths[q], x, y, clip, fm.report["labels"], repeats, micro_clips) for q in QUANT_MODES])
    return {"run": str(run_dir), "fold": fold, "model": fm.config.model, "labels": fm.report["labels"],
            "test_clips": int(len(np.unique(clip))), "test_speakers": fm.split["speakers"]["test"],
            "protocol": fm.config.protocol, "variants": rows}


def benchmark_files(models: Sequence[str | os.PathLike], data: Sequence[str | os.PathLike], repeats: int = 100,
                    micro_clips: int = 40) -> dict:
    """Compare exported ``.tflite`` files on every clip of ``data`` (read with each
    model's own labels and frontend). Mind that clips the models were trained
    on make the scores optimistic: prefer a run folder, scored on its test fold.
    """
    from .corpora import load_dataset
    from .features import extract
    from .inference import load_model

    rows, labels, feature_sets = [], None, {}
    for path in models:
        m = load_model(path)
        scheme = m.metadata.label_scheme
        key = json.dumps([scheme, m.labels, m.frontend.config.to_dict(), m.segments.to_dict()], sort_keys=True)
        if key not in feature_sets:  # the variants of one model share their features
            ds = load_dataset(list(data), labels=scheme)
            feature_sets[key] = extract(ds.records, m.frontend.config, m.segments, classes=m.labels)
        fs = feature_sets[key]
        x = m.frontend.standardize(fs.features)
        rows.append(_variant(Path(path), x, fs.y, fs.clip_index, m.labels, repeats, micro_clips))
        labels = m.labels
    return {"run": None, "data": [str(d) for d in data], "fold": None, "model": ", ".join(map(str, models)),
            "labels": labels, "test_clips": int(len(np.unique(fs.clip_index))), "test_speakers": ["all"],
            "protocol": "all clips of --data", "variants": _agreement(rows)}


def _agreement(rows: list[dict]) -> list[dict]:
    """Each variant's share of clips labelled as the float32 variant does (when one is present)."""
    ref = next((r["_pred"] for r in rows if r["quantization"] == "float32"), None)
    for r in rows:
        pred = r.pop("_pred")
        r["agreement_with_float32"] = None if ref is None else float(np.mean(np.array(pred) == np.array(ref)))
    return rows


def _variant(path: Path, x, y, clip, labels, repeats: int, micro_clips: int) -> dict:
    from .tflite import LiteRTModel, is_tflm_compatible, read_model

    blob, meta = read_model(path)
    model = LiteRTModel(blob, num_threads=1)
    _, proba = clip_predictions(model.predict(x), clip)
    pred = proba.argmax(1)
    s = scores(clip_labels(y, clip), pred, labels)
    row = {"file": path.name, "quantization": meta.quantization, "bytes": len(blob),
           "ua": s["ua"], "wa": s["wa"], "f1": s["f1"], "macs": meta.macs,
           "latency_ms": _latency(model, x[0], repeats), "_pred": pred.tolist()}
    if meta.quantization == "int8":
        row.update(_micro(blob, x, micro_clips))
        row["budget"] = _budget(path, meta)
    else:
        ok, reason = is_tflm_compatible(blob)
        row["tflm"] = "runs" if ok else f"not runnable on TFLite Micro: {reason}"
    return row


def _latency(model, row: np.ndarray, repeats: int) -> float:
    """Median milliseconds of one invoke (1 thread) after a warm-up, over ``repeats`` runs."""
    q = model.quantise(row[None])
    for _ in range(5):
        model.predict_raw(q)
    times = []
    for _ in range(max(repeats, 100)):
        t = time.perf_counter()
        model.predict_raw(q)
        times.append(time.perf_counter() - t)
    return 1000 * statistics.median(times)


def _micro(blob: bytes, x: np.ndarray, n: int) -> dict:
    from .errors import ConfigError
    from .tflite import LiteRTModel, TFLMModel, find_arena_size

    try:
        arena = find_arena_size(blob)  # also vets the model (in a child process)
    except ConfigError as err:
        return {"tflm": f"not runnable on TFLite Micro: {err}"}
    micro, ref = TFLMModel(blob, arena_size=arena), LiteRTModel(blob, reference=True)
    rows = x[np.linspace(0, len(x) - 1, min(n, len(x))).astype(int)]
    diffs, same = [], []
    for row in rows:
        q = ref.quantise(row[None])
        a, b = micro.predict_raw(q).astype(int), ref.predict_raw(q).astype(int)
        diffs.append(int(np.max(np.abs(a - b))))
        same.append(int(a.argmax() == b.argmax()))
    return {"tflm": "runs", "arena_bytes": arena, "micro_clips": len(rows), "micro_max_lsb_diff": max(diffs),
            "micro_label_agreement": float(np.mean(same))}


def _budget(path: Path, meta: ModelMetadata) -> dict | None:
    """The Nano 33 BLE Sense budget of a deployable model (see :meth:`ModelMetadata.deployable`),
    as JSON (:meth:`tinyser.deploy.Budget.to_dict`)."""
    from .deploy import budget

    if meta.deployable() is not None:
        return None
    return budget(path, "nano33ble").to_dict()


def write_benchmark(result: dict, out: str | os.PathLike) -> tuple[Path, Path]:
    """``benchmark.json`` and ``benchmark.md`` in folder ``out``."""
    out = Path(out)
    md = markdown(result)
    atomic_write(out / "benchmark.json", lambda f: f.write(json.dumps(result, indent=1).encode()))
    atomic_write(out / "benchmark.md", lambda f: f.write(md.encode()))
    return out / "benchmark.json", out / "benchmark.md"


def markdown(r: dict) -> str:
    """The variants as a Markdown table."""
    lines = [f"`{r['model']}` ({r['run'] or ', '.join(r['data'])}, fold {r['fold']}, protocol {r['protocol']}): "
             f"{r['test_clips']} test clips of speakers {', '.join(r['test_speakers'])}.", "",
             "| variant | size (bytes) | UA % | WA % | F1 % | agrees with float32 | host latency (ms, 1 thread) "
             "| MACs | TFLite Micro | arena (bytes) | TFLM vs LiteRT reference |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---|---:|---|"]
    for v in r["variants"]:
        micro = (f"max diff {v['micro_max_lsb_diff']} LSB, labels {100 * v['micro_label_agreement']:.0f} % equal "
                 f"({v['micro_clips']} clips)") if "arena_bytes" in v else "-"
        lines.append(f"| {v['quantization']} | {v['bytes']:,} | {100 * v['ua']:.1f} | {100 * v['wa']:.1f} "
                     f"| {100 * v['f1']:.1f} | {_pct(v['agreement_with_float32'])} | {v['latency_ms']:.2f} "
                     f"| {v['macs']:,} | {v['tflm']} | {v.get('arena_bytes', '-')} | {micro} |")
    for v in r["variants"]:
        if v.get("budget"):
            from .deploy import Budget, budget_markdown

            lines += ["", f"Device budget of the {v['quantization']} model:", "",
                      budget_markdown(Budget.from_dict(v["budget"]))]
        elif v["quantization"] == "int8":
            lines += ["", "No device budget: the C frontend computes `cmsis_mfcc` (f32) features only."]
    return "\n".join(lines) + "\n"


def _pct(v: float | None) -> str:
    return "-" if v is None else f"{100 * v:.1f} %"
