"""Each test speaker's predictions balanced over the classes (issue 10): what the baseline's per-speaker
assumption is worth on the models' outputs.

    python benchmarks/balance.py [--data ../shared/data]

The eGeMAPS + SVM baseline's second column standardises each test speaker's features with the statistics
of all of that speaker's clips, and so assumes that they cover the emotions evenly, as in the acted
corpora (every speaker of EMO-DB, RAVDESS, TESS and SAVEE acts every emotion). The models' adaptive
normalisation already hears each test speaker as one stream; here the same assumption is made on their
outputs: every fold's float model scores its validation and test clips as the run's evaluation did,
then each speaker's clip probabilities are divided by that speaker's mean probability of each class
(``tinyser.metrics.balance_speakers``: no parameter, nothing chosen on test), and, causally, as a device
can, by the running mean of the speaker's clips heard before each one (``tinyser.metrics.RunningBalance``:
its time constant chosen here on validation, among :data:`TIME_CONSTANTS`). The rows are the finished
runs of every setup with a goal in ``benchmarks/protocols.py`` (EMO-DB leave-one-speaker-out, RAVDESS
speaker:5; ``-bal`` and ``-rbal`` rows chose their epochs on validation balanced so already), of
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

from tinyser.metrics import DEFAULT_BALANCE_CLIPS  # noqa: E402

PROTOCOL_RUNS = Path("runs/protocols")
ABLATION_RUNS = Path("runs/ablation")
#: ``recipes/default_model.py``'s runs: ``cv-<row>-<shape>`` (speaker:5 in the searched shape) and
#: ``corpus-<row>[-<shape>]`` (leave one corpus out, also made by ``ablation.py --loco``)
DEFAULT_RUNS = Path("runs/default")
#: the running balance's time constants (in clips) scored (1e9: the running mean of all clips heard so far)
TIME_CONSTANTS = (2, 5, 10, 20, 50, 100, 1e9)
#: the tables' running balance: ``tinyser.metrics.RunningBalance``'s default time constant
RUNNING = f"running{DEFAULT_BALANCE_CLIPS:g}"
#: how the tables balance predictions besides as they are: variant -> what the goal lines call it
VARIANTS = {"balanced": "balanced (all of each test speaker's clips)",
            RUNNING: f"balanced as heard (causal, time constant {DEFAULT_BALANCE_CLIPS:g} clips)"}
FOUR = f"four corpora {ablation.LABELS} {ablation.PROTOCOL}"
LOCO = f"four corpora {ablation.LABELS} leave one corpus out (mean over the four)"
#: issue 10's goals this table covers, by group: (UA goal, the eGeMAPS + SVM setup of ``benchmarks/baseline.py``)
GOALS = {**{f"{corpus} {protocol}": (target, corpus) for corpus, protocol, target in protocols.goal_groups(balanced=True)},
         FOUR: (0.65, "four-corpora"), LOCO: (0.40, "four-corpora-loco")}


def run_scores(run: Path) -> dict:
    """Per fold, the UA of a run's test and validation clips as evaluated, balanced per speaker and balanced
    as they are heard (:data:`TIME_CONSTANTS`), from its clips' probabilities (:func:`run_clips`); ``chose``:
    the variant the run chose its epoch on ("": as they are)."""
    from tinyser.metrics import balance_speakers, running_balance, scores

    kept = run_clips(run)
    out: dict[str, list[float]] = {}
    for fold in kept["folds"]:
        for part in ("val", "test"):
            c = fold[part]
            proba, truth = np.asarray(c["proba"]), np.asarray(c["truth"])
            variants = {part: proba, f"{part}_balanced": balance_speakers(proba, c["speaker"]),
                        **{f"{part}_running{t:g}": running_balance(proba, c["streams"], t) for t in TIME_CONSTANTS}}
            for name, p in variants.items():
                out.setdefault(name, []).append(scores(truth, p.argmax(1), kept["classes"])["ua"])
    config = json.loads((Path(run) / "config.json").read_text())
    chose = "balanced" if config.get("speaker_balanced") else \
        "" if config.get("running_balance") is None else f"running{config['running_balance']:g}"
    kept_folds = ("val", "test", "val_balanced", "test_balanced", f"val_{RUNNING}", f"test_{RUNNING}")
    return {"run": str(run), "chose": chose,  # the other time constants: their means alone
            "ua": {p: {**({"folds": [round(u, 6) for u in v]} if p in kept_folds else {}),
                       "mean": round(float(np.mean(v)), 6)} for p, v in out.items()}}


def run_clips(run: Path) -> dict:
    """Each fold's validation and test clips as the run evaluated them (``proba``: the float model's clip
    probabilities, ``truth``, ``speaker``, ``streams``: the clips in the order each speaker's stream heard them,
    ``tinyser.experiment.clip_order``), with the run's ``classes``; cached in ``RUN/balance.json``."""
    return _report.cached_in_run(run, "balance.json", lambda: _run_clips(run), lambda r: "streams" in r.get("folds", [{}])[0].get("test", {}))


def _run_clips(run: Path) -> dict:
    from tinyser.experiment import clip_order
    from tinyser.training import clip_labels, clip_predictions, predict

    folds = []
    for fold, x, va, te in _report.evaluated_folds(run):
        fs = fold.features()
        folds.append({})
        for part, rows in (("val", va), ("test", te)):
            _, proba = clip_predictions(predict(fold.model, np.asarray(x[rows], np.float32)), fs.clip_index[rows])
            truth, speakers = (clip_labels(v[rows], fs.clip_index[rows]) for v in (fs.y, fs.groups))
            folds[-1][part] = {"proba": proba.tolist(), "truth": truth.tolist(), "speaker": speakers.tolist(),
                               "streams": clip_order(fold.config, fs, fold.fold, va, te, rows)}
    return {"run": str(run), "classes": list(fs.classes), "folds": folds}


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


def gain(entry: dict, variant: str = "balanced") -> tuple[float, float]:
    """The mean gain of balancing (``variant``) over the folds and 2 std/sqrt(n) of the fold gains (how far chance
    alone moves that mean, 19 times in 20), in points.

    >>> gain({"ua": {"test": {"folds": [.5, .6, .7]}, "test_balanced": {"folds": [.6, .6, .8]}}})
    (6.7, 6.7)
    """
    d = 100 * (np.asarray(entry["ua"][f"test_{variant}"]["folds"]) - np.asarray(entry["ua"]["test"]["folds"]))
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


def _balanced_row(key: str, entry: dict, variant: str) -> dict:
    """An entry as a goal line's row (``key``, ``ua``, ``val_ua``, ``carried``), its scores balanced (``variant``)."""
    return {"key": key, "ua": entry["ua"][f"test_{variant}"]["mean"], "val_ua": entry["ua"][f"val_{variant}"]["mean"],
            **({"carried": True} if entry.get("carried") else {})}


def goal_lines(group: str, entries: dict[str, dict], svm: dict[str, float] | None, variant: str) -> list[str]:
    """A goal's validation pick and best on test, by row and by recipe, with every figure balanced as ``variant``
    says (four corpora: the ablation's pick and the shipped default model's recipe; leave one corpus out: every
    run); ``svm``: the baseline's figures to add, or None."""
    target = GOALS[group][0]
    head = f"- {group} UA ≥ {100 * target:.0f}, {VARIANTS[variant]}: "
    made = {k: _balanced_row(k, e, variant) for k, e in entries.items()}
    if group == FOUR:
        pick, mine = ablation.recipe_pick(_report.committed("ablation", "rows", "key")), ablation.shipped_run("cv")
        said = [f"the ablation's pick {protocols._versus(made[pick], target)}" if pick in made else
                f"the ablation's pick `{pick}` has no finished run here"]
        said += [f"the shipped default model's recipe {protocols._versus(made[mine], target)}"] if mine in made else []
        return [head + "; ".join(said) + _svm_says(svm)]
    if group == LOCO:
        mine = ablation.shipped_run("corpus")
        return [head + "; ".join(
            protocols._versus(r, target) + (" (the shipped default model's recipe)" if k == mine else "")
            for k, r in made.items()) + _svm_says(svm)]
    rows = list(made.values())
    recipes = protocols.recipe_means(rows)
    return [head + protocols._picks([r for r in rows if protocols.pickable(r["key"])], rows, target)
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


def _cell(entry: dict, part: str) -> str:
    """An entry's mean UA of ``part`` in %."""
    return f"{100 * entry['ua'][part]['mean']:.1f}"


def _gain_cell(entry: dict, variant: str) -> str:
    g, half = gain(entry, variant)
    return f"{g:+.1f} ± {half:.1f}"


def time_constants(results: list[dict]) -> list[tuple[str, float, float]]:
    """Per running balance time constant (and the all-clips balance): the mean validation and test UA of the rows
    that chose their epochs on predictions as they are (a row that chose on balanced ones favours its own)."""
    rows = [r for r in results if not r["chose"]]
    variants = ["", "balanced", *(f"running{t:g}" for t in TIME_CONSTANTS)]
    return [(v, *(float(np.mean([r["ua"][f"{part}_{v}" if v else part]["mean"] for r in rows])) for part in ("val", "test")))
            for v in variants] if rows else []


def markdown(results: list[dict], svm: dict[str, dict], data: Path) -> str:
    lines = ["## Each test speaker's predictions balanced (`benchmarks/balance.py`)", "",
             f"Reproduce: `python benchmarks/balance.py --data {data}` on {_report.machine()}. The rows of the goals "
             "of issue 10 (EMO-DB and RAVDESS from `benchmarks/protocols.py`, four corpora from "
             "`benchmarks/ablation.py`, the shipped recipe's `cv-*` and `corpus-*` runs from "
             "`recipes/default_model.py`), each fold's float model scoring its clips as the run evaluated them: "
             "**UA** of its predictions as they are (for a `-bal` or `-rbal` row not the UA it reports, which is "
             "balanced), **balanced**: each speaker's clip probabilities divided by that speaker's mean probability "
             "of each class (`tinyser.metrics.balance_speakers`, no parameter), and **as heard**: the same done "
             "causally, as a device can, each clip divided by the running mean of the probabilities of the "
             "speaker's clips heard before it, in the order the run's evaluation heard them "
             f"(`tinyser.metrics.RunningBalance`, time constant {DEFAULT_BALANCE_CLIPS:g} clips). Both assume what "
             "the eGeMAPS + SVM baseline's per-speaker column assumes: that a test speaker's clips cover the "
             "emotions about evenly, as every speaker of these acted corpora does; balanced needs all of them "
             "known, as the baseline's standardisation does, as heard only those before each clip. Neither is "
             "what `predict` does: a listener who is mostly neutral would be pushed away from neutral. Gain: mean "
             "over folds ± 2 std/sqrt(folds) of the fold gains. Validation is balanced the same way, and picks on it.",
             "", "| setup | row | UA % | balanced UA % | gain (points) | as heard UA % | gain (points) | val UA % | "
             "balanced val UA % | as heard val UA % |", "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    groups: dict[str, dict[str, dict]] = {}
    for r in results:
        groups.setdefault(r["group"], {})[r["key"]] = r
        lines.append(f"| {r['group']} | `{r['key']}`{_report.mark(r)} | {_cell(r, 'test')} | {_cell(r, 'test_balanced')} | "
                     f"{_gain_cell(r, 'balanced')} | {_cell(r, f'test_{RUNNING}')} | {_gain_cell(r, RUNNING)} | "
                     f"{_cell(r, 'val')} | {_cell(r, 'val_balanced')} | {_cell(r, f'val_{RUNNING}')} |")
    for variant, said in VARIANTS.items():
        gains = np.array([gain(r, variant)[0] for r in results])
        if len(gains):
            lines += ["", f"Over the {len(gains)} rows, {said.split(' (')[0]} gains {gains.mean():+.1f} points on "
                      f"test on average ({(gains > 0).sum()} rows gain, {(gains < 0).sum()} lose)."]
    chosen = time_constants(results)
    if chosen:
        best = max(chosen[2:], key=lambda c: c[1])[0]
        lines += ["", "The running balance's time constant, chosen on validation: mean UA of the rows that chose their "
                  "epochs on predictions as they are, by time constant in clips (`tinyser.metrics.DEFAULT_BALANCE_CLIPS` "
                  f"is {DEFAULT_BALANCE_CLIPS:g}; validation's best here: {best[len('running'):]}; 1e+09: the mean of "
                  "all clips heard so far).", "",
                  "| | " + " | ".join(v.replace("running", "") or "as they are" for v, _, _ in chosen) + " |",
                  "|---|" + "---:|" * len(chosen),
                  "| val UA % | " + " | ".join(f"{100 * v:.1f}" for _, v, _ in chosen) + " |",
                  "| test UA % | " + " | ".join(f"{100 * t:.1f}" for _, _, t in chosen) + " |"]
    lines += ["", "Goals under this assumption (benchmark goals): EMO-DB and RAVDESS as the protocols table judges "
              "them (validation's pick among the rows it may pick, the best on test, and the same by recipe), on "
              "validation and test UA balanced the same way; four corpora: the ablation's pick (made on its own "
              "validation score) and the shipped default model's recipe; leave one corpus out: every run.", ""]
    for variant in VARIANTS:
        for group, entries in groups.items():
            lines += goal_lines(group, entries, svm.get(GOALS[group][1]) if variant == "balanced" else None, variant)
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
