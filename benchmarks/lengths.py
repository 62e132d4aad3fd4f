"""Accuracy by utterance length (issue 15): the same test clips cut to 0.5, 1.0,
1.5 and 2.0 s, and whole, under the run's speaker-independent protocol.

    python benchmarks/lengths.py RUN [RUN ...] [--names before,after]

For every fold of each finished cross-validation run (e.g. ``runs/ablation/today``
and ``runs/ablation/augment``), each test clip is cut to its loudest L seconds
(the L-second stretch with the most energy), zero-padded to the model's window
exactly as ``predict`` pads a short file (then tiled when the run's frontend
tiles, as ``predict`` does), and scored by the fold's model; "whole"
scores the clip's windows as the run's evaluation does (mean of window
probabilities). With adaptive standardisation each test speaker is one stream
(clips in the same seeded order as the run's evaluation). Reports UA and the
share of the most-predicted class at each length. Writes docs/lengths.json and
the lengths section of docs/results.md.
"""
from __future__ import annotations

import argparse
import json
import shlex
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
import _report  # noqa: E402

LENGTHS = (0.5, 1.0, 1.5, 2.0)


def loudest(y: np.ndarray, n: int) -> np.ndarray:
    """The ``n``-sample stretch of ``y`` with the most energy (all of ``y`` if shorter).

    >>> loudest(np.array([0, 0, 3, 4, 0], np.float32), 2).tolist()
    [3.0, 4.0]
    """
    if len(y) <= n:
        return y
    energy = np.concatenate([[0.0], np.cumsum(y.astype(np.float64) ** 2)])
    start = int(np.argmax(energy[n:] - energy[:-n]))
    return y[start:start + n]


def fold_scores(run: Path, fold: int, part: str = "test", fs=None, per_file: bool = False) -> dict:
    """UA by length of one fold's ``part`` clips (``fs``: the run's features, read once per run). With
    ``per_file`` every clip, cut or whole, is a stream of its own (adaptive statistics started afresh
    from the training ones, as ``predict`` scores a file given alone) instead of each speaker one."""
    import keras

    from tinyser.audio import load
    from tinyser.experiment import RunConfig, clip_streams, run_features, speaker_streams, stream_passes
    from tinyser.features import FeatureSet, Frontend
    from tinyser.metrics import scores
    from tinyser.training import clip_predictions, predict

    cfg = RunConfig.from_dict(json.loads((run / "config.json").read_text()))
    folder = run / f"fold_{fold:02d}"
    frontend = Frontend.from_json((folder / "frontend.json").read_text())
    model = keras.models.load_model(folder / "model.keras", compile=False)
    result = json.loads((folder / "result.json").read_text())
    fs = run_features(cfg) if fs is None else fs
    index = {c: i for i, c in enumerate(fs.clip_ids)}
    if not result["clips"][part]:  # a refit fold's model trained on its validation clips: none left to score
        raise SystemExit(f"{folder}: no {part} clips to score (a refit run's model trained on its validation clips)")
    test = np.array([index[c] for c in result["clips"][part]])
    seg_cfg = cfg.segments
    sr = frontend.config.sample_rate
    n_window = int(round(seg_cfg.window * sr))
    first = np.unique(fs.clip_index, return_index=True)[1]
    truth = fs.y[first][test]
    out = {}
    audio = {int(c): load(fs.paths[c], sr) for c in test}
    for length in LENGTHS:
        n = int(round(length * sr))
        if n > n_window:  # a model with a shorter window than this length: not one window
            continue
        windows = np.zeros((len(test), n_window), np.float32)
        for i, c in enumerate(test):
            cut = loudest(audio[int(c)], n)
            windows[i, :len(cut)] = cut
        raw = frontend.features(windows)
        # one window per clip, speakers as streams in the evaluation's order
        sub = FeatureSet(raw, fs.labels[first][test], fs.groups[first][test], np.arange(len(test)),
                         [fs.clip_ids[c] for c in test], [fs.paths[c] for c in test], fs.classes, {}, {})
        x = frontend.standardize_streams(raw, [[i] for i in range(len(test))] if per_file else speaker_streams(
            sub, np.arange(len(test)), np.random.default_rng([cfg.train.seed, fold]), stream_passes(cfg)))
        pred = predict(model, x).argmax(1)
        out[str(length)] = {"pred": pred.tolist(), "truth": truth.tolist()}
    seg = np.flatnonzero(np.isin(fs.clip_index, test))
    x = frontend.standardize_streams(fs.features, clip_streams(fs, seg) if per_file else speaker_streams(
        fs, seg, np.random.default_rng([cfg.train.seed, fold]), stream_passes(cfg)))
    clips, proba = clip_predictions(predict(model, x[seg]), fs.clip_index[seg])
    order = {int(c): i for i, c in enumerate(clips)}
    out["whole"] = {"pred": [int(proba[order[int(c)]].argmax()) for c in test], "truth": truth.tolist()}
    for v in out.values():
        s = scores(np.array(v["truth"]), np.array(v["pred"]), fs.classes)
        v["ua"] = s["ua"]
    out["classes"] = fs.classes
    return out


def run_scores(run: Path, part: str = "test", per_file: bool = False) -> dict:
    """Scores by length of a finished run's ``test`` (or ``val``) clips, each speaker one stream (or
    each clip its own: ``per_file``), kept in ``RUN/lengths.json`` (``lengths-val.json``,
    ``lengths-file.json``, ``lengths-val-file.json``) and reused while the report is unchanged."""
    name = "lengths" + ("" if part == "test" else f"-{part}") + ("-file" if per_file else "")
    return _report.cached_in_run(run, f"{name}.json", lambda: _run_scores(run, part, per_file))


def _run_scores(run: Path, part: str, per_file: bool = False) -> dict:
    from tinyser.metrics import scores

    report = json.loads((run / "report.json").read_text())
    from tinyser.experiment import RunConfig, run_features

    fs = run_features(RunConfig.from_dict(json.loads((run / "config.json").read_text())))
    folds = [fold_scores(run, f["fold"], part, fs, per_file) for f in report["folds"]]
    classes = folds[0]["classes"]
    rows = {}
    for key in [k for k in [*map(str, LENGTHS), "whole"] if k in folds[0]]:
        pred = np.concatenate([f[key]["pred"] for f in folds])
        truth = np.concatenate([f[key]["truth"] for f in folds])
        top = np.bincount(pred, minlength=len(classes))
        rows[key] = {"ua_mean_over_folds": float(np.mean([f[key]["ua"] for f in folds])),
                     "ua_pooled": scores(truth, pred, classes)["ua"],
                     "top_class": classes[int(top.argmax())], "top_share": float(top.max() / len(pred)),
                     "n": int(len(pred))}
    return {"run": str(run), "protocol": report.get("protocol", ""), "rows": rows}


def adaptive(run: Path) -> bool:
    """Whether a run standardises adaptively (then a file scored alone differs from a speaker's stream)."""
    return json.loads((Path(run) / "config.json").read_text()).get("adaptive") is not None


def with_per_file(run: Path) -> dict:
    """:func:`run_scores` of the test clips, with ``per_file`` rows (every clip its own stream) for an
    adaptive run."""
    r = run_scores(run)
    return {**r, "per_file": run_scores(run, per_file=True)["rows"]} if adaptive(run) else r


def markdown(results: list[dict], names: list[str], cmd: str) -> str:
    keys = [*map(str, LENGTHS), "whole"]
    head = " | ".join(f"{k} s" if k != "whole" else "whole clip" for k in keys)
    lines = ["## Short utterances: accuracy by length (`benchmarks/lengths.py`)", "",
             f"Reproduce: `{cmd}` on {_report.machine()}. Each test clip of every fold of the run's speaker:5 "
             "cross-validation (speaker-independent; models chosen on validation speakers) cut to its loudest L "
             "seconds and zero-padded to the 2 s window as `predict` pads a short file (then tiled for the runs "
             "whose frontend tiles, as `predict` does for them); \"whole\" scores the clip's "
             "windows as the run's evaluation does. Float Keras models of each fold. UA is the mean over folds; "
             "\"top class\" is the share of all predictions taken by the most-predicted class (goal: at most 40 % at "
             "every length, and UA at 1.0 s within 5 points of whole-clip UA). With adaptive standardisation each test "
             "speaker is one stream, as a device that keeps listening hears it; \"per file\" rows start the "
             "statistics afresh for every clip, cut or whole, as `predict` scores a file given alone.", "",
             f"| model | {head} | goal 1.0 s vs whole |", "|---|" + "---:|" * (len(keys) + 1)]
    for name, r in zip(names, results):
        for label, rows in [(f"{name} (`{r['run']}`){_report.mark(r)}", r["rows"]),
                            *([(f"{name}, per file{_report.mark(r)}", r["per_file"])] if "per_file" in r else [])]:
            cells = " | ".join(f"{100 * rows[k]['ua_mean_over_folds']:.1f} (top {rows[k]['top_class']} "
                               f"{100 * rows[k]['top_share']:.0f} %)" for k in keys)
            gap = 100 * (rows["1.0"]["ua_mean_over_folds"] - rows["whole"]["ua_mean_over_folds"])
            worst = max(rows[k]["top_share"] for k in keys)
            ok = "met" if gap >= -5 and worst <= 0.4 else "not met"
            lines.append(f"| {label} | {cells} | {gap:+.1f} points, top share ≤ {100 * worst:.0f} %: {ok} |")
    lines += _report.carried_note(results)
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("runs", nargs="+", type=Path)
    ap.add_argument("--names", default=None, help="comma-separated row names (default: run folder names)")
    args = ap.parse_args()
    names = args.names.split(",") if args.names else [r.name for r in args.runs]
    if len(names) != len(args.runs):
        raise SystemExit("--names needs one name per run")
    results = [_report.run_or_carried("lengths", r, with_per_file) for r in args.runs]
    cmd = "python benchmarks/lengths.py " + " ".join(map(str, args.runs)) + (f" --names {shlex.quote(args.names)}"
                                                                           if args.names else "")
    _report.write("lengths", {"runs": results, "names": names}, markdown(results, names, cmd), page="results.md")


if __name__ == "__main__":
    main()
