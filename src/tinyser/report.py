"""Run reports: ``report.json`` (machine-readable), ``report.md`` and PNG plots."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from . import __version__
from .cache import atomic_write
from .extras import need
from .metrics import scores, summarize
from .protocols import Protocol


def build_report(cfg, fs, folds: list[dict]) -> dict:
    """Mean ± std over folds of UA/WA/F1, plus per-class scores and the confusion
    matrix of all test predictions pooled (each clip is tested once per fold it is in)."""
    true = np.concatenate([f["test_predictions"]["true"] for f in folds]).astype(int)
    pred = np.concatenate([f["test_predictions"]["pred"] for f in folds]).astype(int)
    pooled = scores(true, pred, fs.classes)
    summary = summarize(folds)
    proto = Protocol.parse(cfg.protocol)
    return {
        "ua": summary["ua"]["mean"], "wa": summary["wa"]["mean"], "f1": summary["f1"]["mean"],
        "ua_std": summary["ua"]["std"], "wa_std": summary["wa"]["std"], "f1_std": summary["f1"]["std"],
        "labels": fs.classes,
        "per_class": pooled["per_class"],
        "confusion": pooled["confusion"],
        "pooled": {k: pooled[k] for k in ("ua", "wa", "f1", "n")},
        "protocol": {"name": cfg.protocol, "speaker_independent": proto.speaker_independent,
                     "model_selection": "best epoch by validation UA; validation carved from training folds",
                     **({"scores_on": "validation speakers (optimistic: they chose the best epoch)"}
                        if proto.kind == "final" else {})},
        "model": cfg.model, "frontend": fs.frontend, "data": list(cfg.data), "label_scheme": cfg.labels,
        "n_clips": len(fs.clip_ids), "n_segments": int(len(fs.labels)),
        "folds": [{k: f[k] for k in ("fold", "ua", "wa", "f1", "best_epoch", "epochs_run", "val_ua",
                                     "speakers", "clips", "history", "refit") if k in f} for f in folds],
        **({"before_refit": {k: v["mean"] for k, v in summarize([f["refit"]["before"] for f in folds]).items()}}
           if all("refit" in f for f in folds) and folds else {}),
        "tinyser": __version__,
    }


def write_report(report: dict, out: str | Path) -> None:
    out = Path(out)
    atomic_write(out / "report.json", lambda f: f.write(json.dumps(report, indent=1).encode()))
    atomic_write(out / "report.md", lambda f: f.write(markdown(report).encode()))
    plot_confusion(report, out / "confusion.png")
    plot_curves(report, out / "curves.png")
    plot_folds(report, out / "folds.png")


def markdown(r: dict) -> str:
    """The report as Markdown tables.

    >>> "UA" in markdown({"ua": .5, "wa": .5, "f1": .5, "ua_std": 0, "wa_std": 0, "f1_std": 0, "labels": [],
    ...                   "per_class": {}, "confusion": {"counts": []}, "folds": [], "model": "m",
    ...                   "protocol": {"name": "speaker", "speaker_independent": True}, "data": []})
    True
    """
    p = r["protocol"]
    lines = [f"# {r['model']} on {', '.join(r['data'])}", "",
             f"Protocol `{p['name']}` ({_protocol_words(p)}); "
             "best epoch chosen on validation data carved from the training part of each fold.", "",
             *([f"**Scores below are on the {p['scores_on']}.** A final run has no test data; "
                "quote a cross-validation run of the same configuration.", ""] if "scores_on" in p else []),
             "| UA | WA | macro-F1 |", "|---:|---:|---:|",
             f"| {_pm(r, 'ua')} | {_pm(r, 'wa')} | {_pm(r, 'f1')} |", "",
             "## Per fold", "", "| fold | test speakers | UA | WA | F1 | best epoch | epochs run |",
             "|---:|---|---:|---:|---:|---:|---:|"]
    for f in r["folds"]:
        spk = ", ".join(f["speakers"]["test"]) if p["speaker_independent"] else "(random)"
        lines.append(f"| {f['fold']} | {spk} | {100 * f['ua']:.1f} | {100 * f['wa']:.1f} | {100 * f['f1']:.1f} "
                     f"| {f['best_epoch'] + 1} | {f['epochs_run']} |")
    lines += ["", "## Per class (all test folds pooled)", "", "| class | precision | recall | F1 | support |",
              "|---|---:|---:|---:|---:|"]
    for label, c in r["per_class"].items():
        lines.append(f"| {label} | {100 * c['precision']:.1f} | {100 * c['recall']:.1f} | {100 * c['f1']:.1f} "
                     f"| {c['support']} |")
    lines += ["", "## Confusion matrix (rows: true, columns: predicted)", "",
              "| | " + " | ".join(r["labels"]) + " |", "|---|" + "---:|" * len(r["labels"])]
    for label, row in zip(r["labels"], r["confusion"]["counts"]):
        lines.append(f"| {label} | " + " | ".join(map(str, row)) + " |")
    return "\n".join(lines) + "\n"


def _protocol_words(p: dict) -> str:
    if "scores_on" in p:
        return "final model: all speakers but the validation ones train"
    return "speaker-independent" if p["speaker_independent"] else "random clips; speakers shared between train and test"


def _pm(r: dict, key: str) -> str:
    return f"{100 * r[key]:.1f} ± {100 * r[key + '_std']:.1f}"


def _pyplot():
    matplotlib = need("matplotlib", "plotting a run's report")
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return plt


def plot_confusion(r: dict, path: Path) -> None:
    plt = _pyplot()
    m = np.array(r["confusion"]["normalized"])
    fig, ax = plt.subplots(figsize=(1.2 + 0.7 * len(m), 1 + 0.6 * len(m)))
    ax.imshow(m, cmap="Blues", vmin=0, vmax=1)
    ax.set_xticks(range(len(m)), r["labels"], rotation=45, ha="right")
    ax.set_yticks(range(len(m)), r["labels"])
    for i, j in np.ndindex(m.shape):
        ax.text(j, i, f"{m[i, j]:.2f}", ha="center", va="center", color="white" if m[i, j] > .5 else "black",
                fontsize=8)
    ax.set(xlabel="predicted", ylabel="true", title=f"{r['model']}: UA {100 * r['ua']:.1f}")
    _save(fig, path)


def plot_curves(r: dict, path: Path) -> None:
    plt = _pyplot()
    fig, (a, b) = plt.subplots(1, 2, figsize=(10, 3.5))
    for f in r["folds"]:
        h = f["history"]
        a.plot([e["loss"] for e in h], alpha=.7, label=f"fold {f['fold']}")
        b.plot([e["val_ua"] for e in h], alpha=.7)
        b.scatter([f["best_epoch"]], [f["val_ua"]], s=12)
    a.set(xlabel="epoch", ylabel="training loss", title="training loss")
    b.set(xlabel="epoch", ylabel="validation UA", title="validation UA (dot: chosen epoch)")
    if len(r["folds"]) <= 10:
        a.legend(fontsize=7)
    _save(fig, path)


def plot_folds(r: dict, path: Path) -> None:
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(max(4, .6 * len(r["folds"]) + 2), 3))
    idx = np.arange(len(r["folds"]))
    for k, key in enumerate(("ua", "wa", "f1")):
        ax.bar(idx + (k - 1) * .27, [100 * f[key] for f in r["folds"]], .27, label=key.upper())
    ax.set(xticks=idx, xlabel="fold", ylabel="%", ylim=(0, 100), title="test scores per fold")
    ax.legend(fontsize=8)
    _save(fig, path)


def _save(fig, path: Path) -> None:
    fig.tight_layout()
    tmp = path.with_name(f".{path.name}.tmp.png")
    fig.savefig(tmp, dpi=110)
    tmp.replace(path)
    import matplotlib.pyplot as plt
    plt.close(fig)
