"""What test-time normalisation is worth to trained models (issue 10): the same
fold models and test clips, standardised six ways.

    python benchmarks/normalisation.py [RUN ...] [--data ../shared/data]

For every fold of each finished speaker:5 run (default: :data:`RUNS`), the fold's float
Keras model scores its test clips (the mean of their windows' probabilities, as
the run's evaluation does) with the inputs standardised by:

- **as trained**: the run's own evaluation (fixed statistics, or adaptive
  statistics over each test speaker's stream, primed where the run was);
- **per file**: the run's own normalisation with every clip a stream of its own,
  started afresh from the training statistics: what ``predict`` does with a file
  given alone (its windows every half window aside; here they do not overlap);
- **one stream**: the run's own normalisation with all the fold's test clips one
  stream, in a random order, whoever speaks: what ``predict --one-stream`` does
  with a batch of files (under leave-one-corpus-out, one unseen corpus);
- **fixed**: the fold's training statistics;
- **adaptive**: running statistics over each test speaker's stream, with the
  fold's adaptive settings (the defaults, 20 s and -50 dBFS, for a run trained
  with fixed statistics), heard once, or **primed** (heard twice, the second
  hearing scored);
- **per speaker**: the mean and standard deviation of all the test speaker's
  voiced frames (c0 at least -50 dBFS), the standard deviation kept at least a
  quarter of the training one: the per-speaker standardisation of the eGeMAPS +
  SVM baseline, applied to the model's frames.

Windows are then tiled where the run's frontend tiles. The models were trained
with one of these, so the others measure a mismatch as well as the statistics:
the question is whether a trained model gains from its speaker's statistics.
Writes docs/normalisation.json and the normalisation section of docs/results.md.
"""
from __future__ import annotations

import dataclasses
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
import _report  # noqa: E402

#: the gate (dBFS, white-noise calibrated) these figures were measured with, and the rows' setting
GATE_DB = -50.0
RUNS = ("runs/ablation/balanced", "runs/ablation/adaptive", "runs/ablation/tile", "runs/ablation/tile-primed",
        "runs/ablation/adaptive-tile-g70-crops-avg", "runs/ablation/adaptive-tile-g70-crops-avg-tc2",
        "runs/ablation/balanced-tile-g70-crops-avg", "runs/ablation/balanced-avg",
        "runs/ablation/adaptive-tile-g70-crops-avg-restart", "runs/ablation/adaptive-tile-g70-crops-avg-restart1",
        "runs/default/cv-adaptive-tile-g70-short-avg-w0.25-p2x1-d4-k11.9-parallel-mean-c40-h256-2s",
        "runs/default/cv-adaptive-tile-g70-short-avg-egemaps-w0.25-p2x1-d4-k11.9-parallel-mean-c40-h256-2s",
        "runs/default/cv-balanced-tile-g70-short-avg-w0.25-p2x1-d4-k11.9-parallel-mean-c40-h256-2s")
VARIANTS = ("as trained", "per file", "one stream", "fixed", "adaptive", "primed", "per speaker")


def per_speaker(raw: np.ndarray, speakers: np.ndarray, gate: float, floor: np.ndarray) -> np.ndarray:
    """Raw windows ``(n, frames, coeffs)`` standardised by their speaker's voiced-frame statistics.

    >>> x = np.array([[[1.0, 2.0]], [[3.0, 6.0]]], np.float32)
    >>> per_speaker(x, np.array(["a", "a"]), -9.0, np.zeros(2, np.float32))[:, 0].tolist()
    [[-1.0, -1.0], [1.0, 1.0]]
    """
    out = np.empty_like(raw, dtype=np.float32)
    for s in np.unique(speakers):
        mine = speakers == s
        frames = raw[mine].reshape(-1, raw.shape[2])
        voiced = frames[frames[:, 0] >= gate]
        voiced = voiced if len(voiced) else frames
        out[mine] = (raw[mine] - voiced.mean(0)) / np.maximum(voiced.std(0), floor)
    return out


def run_scores(run: Path) -> dict:
    """UA per fold of one run's test clips under each of :data:`VARIANTS`, cached in
    ``RUN/normalisation.json`` and reused while the report and the variants are unchanged."""
    return _report.cached_in_run(run, "normalisation.json", lambda: _run_scores(run),
                                 lambda r: list(r["ua"]) == list(VARIANTS) and r.get("gate_db") == GATE_DB)


def _run_scores(run: Path) -> dict:
    from tinyser.experiment import clip_streams, one_stream, speaker_streams
    from tinyser.features.adaptive import AdaptiveConfig, gate_for_level
    from tinyser.metrics import scores
    from tinyser.training import clip_labels, clip_predictions, predict

    out: dict[str, list[float]] = {v: [] for v in VARIANTS}
    gate = None
    for fold, as_trained, _, te in _report.evaluated_folds(run):
        cfg, fs, fe, model = fold.config, fold.features(), fold.frontend, fold.model
        gate = gate_for_level(cfg.frontend, GATE_DB) if gate is None else gate  # one frontend for every fold
        rng = [cfg.train.seed, fold.fold]  # the run's evaluation order
        running = fe if fe.adaptive is not None else dataclasses.replace(fe, adaptive=AdaptiveConfig(gate=gate))
        raw = fs.features
        floor = np.float32(0.25) * np.asarray(fe.standardizer.std, np.float32)
        inputs = {
            "as trained": as_trained[te],
            "per file": fe.standardize_streams(raw, clip_streams(fs, te))[te],
            "one stream": fe.standardize_streams(raw, one_stream(fs, te, np.random.default_rng(rng)))[te],
            "fixed": fe.standardize(raw[te]),
            "adaptive": running.standardize_streams(raw, speaker_streams(fs, te, np.random.default_rng(rng)))[te],
            "primed": running.standardize_streams(raw, speaker_streams(fs, te, np.random.default_rng(rng), 2))[te],
            "per speaker": fe.fill(raw[te], per_speaker(raw[te], fs.groups[te], gate, floor)),
        }
        truth = clip_labels(fs.y[te], fs.clip_index[te])
        for name, x in inputs.items():
            _, proba = clip_predictions(predict(model, np.asarray(x, np.float32)), fs.clip_index[te])
            out[name].append(scores(truth, proba.argmax(1), fs.classes)["ua"])
    return {"run": str(run), "adaptive": cfg.adaptive, "tile": cfg.tile, "gate_db": GATE_DB,
            "ua": {k: {"folds": v, "mean": float(np.mean(v)), "std": float(np.std(v))} for k, v in out.items()}}


def markdown(results: list[dict], cmd: str) -> str:
    lines = ["## What test-time normalisation is worth to trained models (`benchmarks/normalisation.py`)", "",
             f"Reproduce: `{cmd}` on {_report.machine()}. Four corpora `common6`, speaker:5 (test speakers never "
             "trained on), each row's fold models and test clips; inputs standardised as the run was evaluated "
             "(**as trained**: each test speaker one stream, as a device that keeps listening), with every clip a "
             "stream of its own started from the training statistics (**per file**: what `predict` does with a file "
             "given alone), with all the fold's test clips one stream in a random order, whoever speaks (**one "
             "stream**: what `predict --one-stream` does with a batch of files), with the fold's training "
             "statistics (**fixed**), with running statistics over each test speaker's stream heard once "
             "(**adaptive**) or twice, the second hearing scored (**primed**), and "
             "with the statistics of all the test speaker's voiced frames (**per speaker**: the baseline's second "
             "column, applied to the model's frames). UA %, mean ± std over folds. The eGeMAPS + SVM baseline "
             "gains 12.2 points from per-speaker standardisation on this protocol (51.1 → 63.3).", "",
             "| run | normalisation in training | " + " | ".join(VARIANTS) + " |",
             "|---|---|" + "---:|" * len(VARIANTS)]
    for r in results:
        a = r["adaptive"]
        trained = ("fixed" if a is None else f"adaptive {a['time_constant']:g} s" + (", primed" if a.get("prime") else "")
                   + (f", training clips restarted with p {a['restart']:g}" if a.get("restart") else ""))
        best = max((v for v in VARIANTS if v in r["ua"]), key=lambda v: r["ua"][v]["mean"])
        ua = {v: r["ua"].get(v) or (r["ua"]["per file"] if a is None else None) for v in VARIANTS}  # fixed: all alike
        cells = [("–" if ua[v] is None else  # an adaptive row carried from before the variant existed
                  (f"**{100 * ua[v]['mean']:.1f}**" if v == best else f"{100 * ua[v]['mean']:.1f}")
                  + f" ± {100 * ua[v]['std']:.1f}") for v in VARIANTS]
        lines.append(f"| `{r['run']}`{_report.mark(r)} | {trained} | " + " | ".join(cells) + " |")
    lines += _report.carried_note(results)
    return "\n".join(lines)


def main() -> None:
    _report.tabulate_runs("normalisation", __doc__, RUNS, lambda run, data: run_scores(run), markdown)


if __name__ == "__main__":
    main()
