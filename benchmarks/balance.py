"""Each test speaker's predictions balanced over the classes (issue 10): what the baseline's per-speaker
assumption is worth on the models' outputs.

    python benchmarks/balance.py [--data ../shared/data]

The eGeMAPS + SVM baseline's second column standardises each test speaker's features with the statistics
of all of that speaker's clips, and so assumes that they cover the emotions evenly, as in the acted
corpora (every speaker of EMO-DB, RAVDESS, TESS and SAVEE acts every emotion). The models' adaptive
normalisation already hears each test speaker as one stream; here the same assumption is made on their
outputs: every fold's float model scores its validation and test clips as the run's evaluation did,
then each speaker's clip probabilities are divided by that speaker's mean probability of each class
(``tinyser.metrics.balance_speakers``: no parameter, nothing chosen on test). The rows are the finished
runs of every setup with a goal in ``benchmarks/protocols.py`` (EMO-DB leave-one-speaker-out, RAVDESS
speaker:5; ``-bal`` rows chose their epochs on balanced validation UA already), of
``benchmarks/ablation.py`` (four corpora ``common6`` speaker:5) and of ``recipes/default_model.py``
(the shipped recipe cross-validated and left one corpus out); a run not on this machine keeps its
committed entry. The eGeMAPS + SVM baseline is scored beside them on the same folds, its Platt
probabilities as they are and balanced. Writes docs/balance.json and the balance section of docs/results.md.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
import _report  # noqa: E402
import ablation  # noqa: E402
import baseline  # noqa: E402
import protocols  # noqa: E402

PROTOCOL_RUNS = Path("runs/protocols")
ABLATION_RUNS = Path("runs/ablation")
#: ``recipes/default_model.py``'s runs: ``cv-<row>-<shape>`` (speaker:5 in the searched shape) and
#: ``corpus-<row>[-<shape>]`` (leave one corpus out, also made by ``ablation.py --loco``)
DEFAULT_RUNS = Path("runs/default")
PARTS = ("test", "test_balanced", "val", "val_balanced")
FOUR = f"four corpora {ablation.LABELS} {ablation.PROTOCOL}"
LOCO = f"four corpora {ablation.LABELS} leave one corpus out (mean over the four)"
#: issue 10's goals this table covers, by group: (UA goal, the eGeMAPS + SVM setup of ``benchmarks/baseline.py``)
GOALS = {**{f"{corpus} {protocol}": (target, corpus) for corpus, protocol, target in protocols.goal_groups(balanced=True)},
         FOUR: (0.65, "four-corpora"), LOCO: (0.40, "four-corpora-loco")}


def run_scores(run: Path) -> dict:
    """Per fold, the UA of a run's test and validation clips as evaluated and balanced per speaker,
    cached in ``RUN/balance.json``."""
    return _report.cached_in_run(run, "balance.json", lambda: _run_scores(run),
                                 lambda r: all(p in r["ua"] for p in PARTS))


def _run_scores(run: Path) -> dict:
    from tinyser.metrics import balance_speakers, scores
    from tinyser.training import clip_labels, clip_predictions, predict

    out: dict[str, list[float]] = {p: [] for p in PARTS}
    for fold, x, va, te in _report.evaluated_folds(run):
        fs = fold.features()
        for part, rows in (("val", va), ("test", te)):
            _, proba = clip_predictions(predict(fold.model, np.asarray(x[rows], np.float32)), fs.clip_index[rows])
            truth, speakers = (clip_labels(v[rows], fs.clip_index[rows]) for v in (fs.y, fs.groups))
            out[part].append(scores(truth, proba.argmax(1), fs.classes)["ua"])
            out[f"{part}_balanced"].append(scores(truth, balance_speakers(proba, speakers).argmax(1), fs.classes)["ua"])
    return {"run": str(run), "ua": {p: {"folds": v, "mean": float(np.mean(v))} for p, v in out.items()}}


def svm_reference(setup: str, data: Path) -> dict[str, float]:
    """The eGeMAPS + SVM baseline on a setup's folds, both standardisations, its class probabilities (Platt
    scaling) taken as they are and balanced per speaker: UA (mean over folds) by ``global``, ``speaker`` and
    each with ``_balanced``."""
    from tinyser.egemaps import fit_predict
    from tinyser.metrics import balance_speakers, scores

    fs, y, g, folds, x = baseline.setup_data(setup, data)
    out: dict[str, list[float]] = {}
    for standardisation in ("global", "speaker"):
        for fold in folds:
            proba = fit_predict(x, y, g, np.r_[fold.train, fold.val], fold.test, standardisation,
                                n_classes=len(fs.classes), probability=True)
            for name, p in ((standardisation, proba), (f"{standardisation}_balanced", balance_speakers(proba, g[fold.test]))):
                out.setdefault(name, []).append(scores(y[fold.test], p.argmax(1), fs.classes)["ua"])
    return {k: float(np.mean(v)) for k, v in out.items()}


def gain(entry: dict) -> tuple[float, float]:
    """The mean gain of balancing over the folds and 2 std/sqrt(n) of the fold gains (how far chance alone
    moves that mean, 19 times in 20), in points.

    >>> gain({"ua": {"test": {"folds": [.5, .6, .7]}, "test_balanced": {"folds": [.6, .6, .8]}}})
    (6.7, 6.7)
    """
    d = 100 * (np.asarray(entry["ua"]["test_balanced"]["folds"]) - np.asarray(entry["ua"]["test"]["folds"]))
    return round(float(d.mean()), 1), round(float(2 * d.std(ddof=1) / np.sqrt(len(d))), 1)


def goal_runs(kept: dict[str, dict]) -> list[tuple[str, str, Path]]:
    """(goal group, row, run folder) of every row this table covers, in table order: the goals' protocols rows
    (refits aside: they have no validation speakers of their own), the ablation's rows, then the recipe's
    runs in the searched shape (``cv-*``, speaker:5) and leave-one-corpus-out runs (``corpus-*``) that are
    here or in ``kept`` (docs/balance.json's entries by run folder), named by their folders."""
    out = [(f"{corpus} {protocol}", key, PROTOCOL_RUNS / key)
           for (corpus, protocol, _), keys in protocols.goal_groups(balanced=True).items() for key in keys
           if not protocols._refit(key)]
    out += [(FOUR, key, ABLATION_RUNS / key) for key in ablation.ROWS]
    for group, prefix in ((FOUR, "cv-"), (LOCO, "corpus-")):
        names = {run.name for run in DEFAULT_RUNS.glob(f"{prefix}*")}
        names |= {Path(e["run"]).name for e in kept.values() if e["group"] == group and e["key"].startswith(prefix)}
        out += [(group, name, DEFAULT_RUNS / name) for name in sorted(names)]
    return out


def _balanced_row(key: str, entry: dict) -> dict:
    """An entry as a goal line's row (``key``, ``ua``, ``val_ua``, ``carried``), its balanced scores."""
    return {"key": key, "ua": entry["ua"]["test_balanced"]["mean"], "val_ua": entry["ua"]["val_balanced"]["mean"],
            **({"carried": True} if entry.get("carried") else {})}


def shipped(kind: str) -> str:
    """The run folder name of the shipped default model's recipe (docs/default_model.json: its recipe and shape)
    cross-validated (``kind`` "cv") or left one corpus out ("corpus"), as ``recipes/default_model.py`` names it."""
    choice = json.loads((_report.DOCS / "default_model.json").read_text())
    return f"{kind}-{choice['chosen']}-{choice['shape']}"


def goal_lines(group: str, entries: dict[str, dict], svm: dict[str, float] | None) -> list[str]:
    """A goal's validation pick and best on test, by row and by recipe, with every figure balanced (four corpora:
    the ablation's pick and the shipped default model's recipe; leave one corpus out: every run)."""
    target = GOALS[group][0]
    head = f"- {group} UA ≥ {100 * target:.0f}"
    made = {k: _balanced_row(k, e) for k, e in entries.items()}
    if group == FOUR:
        pick, mine = ablation.recipe_pick(_report.committed("ablation", "rows", "key")), shipped("cv")
        said = [f"the ablation's pick {protocols._versus(made[pick], target)}" if pick in made else
                f"the ablation's pick `{pick}` has no finished run here"]
        said += [f"the shipped default model's recipe {protocols._versus(made[mine], target)}"] if mine in made else []
        return [f"{head}, balanced: " + "; ".join(said) + _svm_says(svm)]
    if group == LOCO:
        return [f"{head}, balanced: " + "; ".join(
            protocols._versus(r, target) + (" (the shipped default model's recipe)" if k == shipped("corpus") else "")
            for k, r in made.items()) + _svm_says(svm)]
    rows = list(made.values())
    recipes = protocols.recipe_means(rows)
    return [f"{head}, balanced: " + protocols._picks([r for r in rows if protocols.pickable(r["key"])], rows, target)
            + _svm_says(svm),
            "  - by recipe, its runs' mean: " + protocols._picks(recipes, recipes, target)]


def _svm_says(svm: dict[str, float] | None) -> str:
    """The baseline's figures on a goal line.

    >>> _svm_says({"global": .6, "global_balanced": .62, "speaker": .7, "speaker_balanced": .71})
    '; eGeMAPS + SVM (Platt probabilities) 60.0 → balanced 62.0 (global standardisation), 70.0 → 71.0 (per speaker)'
    """
    if not svm:
        return ""
    return (f"; eGeMAPS + SVM (Platt probabilities) {100 * svm['global']:.1f} → balanced {100 * svm['global_balanced']:.1f} "
            f"(global standardisation), {100 * svm['speaker']:.1f} → {100 * svm['speaker_balanced']:.1f} (per speaker)")


def markdown(results: list[dict], svm: dict[str, dict], data: Path) -> str:
    lines = ["## Each test speaker's predictions balanced (`benchmarks/balance.py`)", "",
             f"Reproduce: `python benchmarks/balance.py --data {data}` on {_report.machine()}. The rows of the goals "
             "of issue 10 (EMO-DB and RAVDESS from `benchmarks/protocols.py`, four corpora from "
             "`benchmarks/ablation.py`, the shipped recipe's `cv-*` and `corpus-*` runs from "
             "`recipes/default_model.py`), each fold's float model scoring its clips as the run evaluated them: "
             "**UA** of its predictions as they are (for a `-bal` row not the UA it reports, which is balanced), "
             "**balanced**: each speaker's clip probabilities divided by that speaker's mean probability of each "
             "class (`tinyser.metrics.balance_speakers`, no parameter). It assumes what the eGeMAPS + SVM "
             "baseline's per-speaker column assumes: that the test speaker's clips, all of them known, cover the "
             "emotions about evenly, as every speaker of these acted corpora does. It is an evaluation under that "
             "assumption, not what `predict` or the device does: a listener who is mostly neutral would be pushed "
             "away from neutral. Gain: mean over folds ± 2 std/sqrt(folds) of the fold gains. Validation is "
             "balanced too, and picks on it.", "",
             "| setup | row | UA % | balanced UA % | gain (points) | val UA % | balanced val UA % |",
             "|---|---|---:|---:|---:|---:|---:|"]
    groups: dict[str, dict[str, dict]] = {}
    for r in results:
        groups.setdefault(r["group"], {})[r["key"]] = r
        g, half = gain(r)
        ua = {p: 100 * r["ua"][p]["mean"] for p in PARTS}
        lines.append(f"| {r['group']} | `{r['key']}`{_report.mark(r)} | {ua['test']:.1f} | {ua['test_balanced']:.1f} | "
                     f"{g:+.1f} ± {half:.1f} | {ua['val']:.1f} | {ua['val_balanced']:.1f} |")
    gains = np.array([gain(r)[0] for r in results])
    if len(gains):
        lines += ["", f"Over the {len(gains)} rows balancing gains {gains.mean():+.1f} points on test on average "
                  f"({(gains > 0).sum()} rows gain, {(gains < 0).sum()} lose)."]
    lines += ["", "Goals under this assumption (benchmark goals): EMO-DB and RAVDESS as the protocols table judges "
              "them (validation's pick among the rows it may pick, the best on test, and the same by recipe), on "
              "balanced validation and test UA; four corpora: the ablation's pick (made on its own validation "
              "score) and the shipped default model's recipe; leave one corpus out: every run.", ""]
    for group, entries in groups.items():
        lines += goal_lines(group, entries, svm.get(GOALS[group][1]))
    lines += _report.carried_note(results)
    return "\n".join(lines)


def main() -> None:
    import argparse

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    _report.add_data_argument(ap)
    args = ap.parse_args()
    kept = _report.committed("balance", "runs", "run")
    results = []
    for group, key, run in goal_runs(kept):
        entry = _report.finished_or(run, lambda r, g=group, k=key: {**run_scores(r), "group": g, "key": k},
                                    kept.get(str(run)))
        if entry is not None:
            results.append(entry)
    svm = {GOALS[g][1]: svm_reference(GOALS[g][1], args.data) for g in dict.fromkeys(r["group"] for r in results)}
    _report.write("balance", {"runs": results, "svm": svm}, markdown(results, svm, args.data), page="results.md",
                  data=args.data)


if __name__ == "__main__":
    main()
