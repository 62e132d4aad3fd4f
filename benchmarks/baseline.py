"""The reference to beat: openSMILE eGeMAPS v02 functionals + RBF SVM (issue 10).

    python benchmarks/baseline.py [--data ../shared/data]

The field's classic baseline (:mod:`tinyser.egemaps`), on the same clips and
the very same folds as the models' runs (``tinyser.experiment.folds_of``,
seed 0), with the functionals standardised over the training clips
(**global**) or on each speaker's own clips, test speakers included (**per
speaker**; per corpus when a corpus is left out). The SVM has no setting
chosen on any data (scikit-learn's RBF defaults, C = 1, classes weighted by
frequency), so it trains on the training and validation parts together.
UA %, mean ± std over folds; the figures the developers' guide quotes for the
same setups are beside them. Where `tiny` rows distil from the SVM
(:data:`TEACHER_SETUPS`), the teacher's out-of-fold labels of the training
clips are scored too, held out by speaker and by clip. Beside it, openSMILE's
ComParE 2016 functionals with a linear model (``tinyser.egemaps.FEATURE_SETS``),
whose C as a teacher is chosen here on training clips alone (:data:`LINEAR_CS`).
Writes docs/baseline.json and the baseline section of docs/results.md.
"""
from __future__ import annotations

import argparse
import contextlib
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
import _report  # noqa: E402
import ablation  # noqa: E402

from tinyser.egemaps import LINEAR, TEACHER_SPLITS  # noqa: E402

_RTS = ("ravdess", "tess", "savee")
#: name -> (corpora, labels, protocol, the guide's figures (global / per speaker or corpus) or None)
SETUPS: dict[str, tuple] = {
    "emodb": (("emodb",), "native", "speaker", (65.2, 78.7)),
    "ravdess": (("ravdess",), "native", "speaker:5", (48.2, 56.5)),
    "four-corpora": (ablation.CORPORA, ablation.LABELS, ablation.PROTOCOL, (51.1, 63.3)),
    "four-corpora-loco": (ablation.CORPORA, ablation.LABELS, "corpus", (28.1, 43.2)),
    "rts-4class-speaker": (_RTS, "4class", "speaker:5", None),
    "rts-4class-random": (_RTS, "4class", "random:5", None),
    "rts-valence3-speaker": (_RTS, "valence3", "speaker:5", None),
    "rts-valence3-random": (_RTS, "valence3", "random:5", None),
}
#: setups whose `tiny` rows distil from the SVM (``train.distill.egemaps``): the teacher's labels are measured too
TEACHER_SETUPS = ("emodb", "ravdess", "four-corpora")


#: the ComParE teacher's C candidates, each scored on the training clips alone (:func:`teacher_quality`, held out
#: by speaker); ``tinyser.egemaps.LINEAR`` keeps the best mean over :data:`TEACHER_SETUPS`
LINEAR_CS = (1e-4, 1e-3, 1e-2, 1e-1)


def setup_data(name: str, data: Path, feature_set: str = "egemaps"):
    """A setup's clips as the baseline sees them: ``(fs, y, groups, folds, x)``, the run features (for the
    class list and paths), each clip's class and speaker, the protocol's folds over clips and the clips'
    functionals (``feature_set``: one of ``tinyser.egemaps.FEATURE_SETS``)."""
    from tinyser.egemaps import functionals
    from tinyser.experiment import folds_of, run_features

    corpora, labels, protocol, _ = SETUPS[name]
    cfg = ablation.run_config(data, {}, protocol=protocol, corpora=corpora, labels=labels)
    fs = run_features(cfg)
    clip_y, clip_g, folds = folds_of(cfg, fs)
    return fs, clip_y, clip_g, folds, functionals(fs.paths, progress=True, feature_set=feature_set)


def evaluate(name: str, data: Path) -> dict:
    """Both standardisations of one setup, fold by fold, for eGeMAPS (the reference) and ComParE (``compare``)."""
    from tinyser.egemaps import functionals

    corpora, labels, protocol, _ = SETUPS[name]
    fs, clip_y, clip_g, folds, x = setup_data(name, data)
    own = "corpus" if protocol == "corpus" else "speaker"
    out = {"corpora": list(corpora), "labels": labels, "protocol": protocol, "clips": len(clip_y),
           "classes": fs.classes, "own": own}
    compare = functionals(fs.paths, progress=True, feature_set="compare")
    for feature_set, part, features in (("egemaps", out, x), ("compare", out.setdefault("compare", {}), compare)):
        for standardisation in ("global", own):
            part["global" if standardisation == "global" else "own"] = _scored(
                features, clip_y, clip_g, folds, fs.classes, standardisation, feature_set)
    if name in TEACHER_SETUPS:
        out["teacher"] = teacher_quality(x, clip_y, clip_g, folds, fs.classes)
        chosen = out["compare"]["teacher"] = teacher_quality(compare, clip_y, clip_g, folds, fs.classes, "compare")
        out["compare"]["teacher_c"] = {}
        for c in LINEAR_CS:  # LINEAR's own C was just scored: its by-speaker part is not made again
            if c == LINEAR["C"]:
                out["compare"]["teacher_c"][f"{c:g}"] = {TEACHER_SPLITS[0]: chosen[TEACHER_SPLITS[0]]}
                continue
            with _linear_c(c):
                out["compare"]["teacher_c"][f"{c:g}"] = teacher_quality(
                    compare, clip_y, clip_g, folds, fs.classes, "compare", splits=TEACHER_SPLITS[:1])
    return out


def _scored(x, y, g, folds, classes, standardisation: str, feature_set: str) -> dict:
    """One standardisation of one set's functionals: UA and WA, mean ± std over folds, and each fold's."""
    from tinyser.egemaps import fit_predict
    from tinyser.metrics import scores

    per_fold = []
    for fold in folds:
        train = np.r_[fold.train, fold.val]
        s = scores(y[fold.test], fit_predict(x, y, g, train, fold.test, standardisation, feature_set=feature_set),
                   classes)
        per_fold.append({"ua": s["ua"], "wa": s["wa"], "f1": s["f1"], "test": sorted(set(g[fold.test].tolist()))})
    return {"ua": float(np.mean([f["ua"] for f in per_fold])), "ua_std": float(np.std([f["ua"] for f in per_fold])),
            "wa": float(np.mean([f["wa"] for f in per_fold])), "folds": per_fold}


@contextlib.contextmanager
def _linear_c(c: float):
    """``tinyser.egemaps.LINEAR``'s C set to ``c`` for a while (the teacher's candidates)."""
    from tinyser import egemaps

    kept = egemaps.LINEAR["C"]
    egemaps.LINEAR["C"] = c
    try:
        yield
    finally:
        egemaps.LINEAR["C"] = kept


def teacher_quality(x, y, g, folds, classes, feature_set: str = "egemaps", splits=TEACHER_SPLITS) -> dict:
    """UA of the SVM teacher's out-of-fold labels (``tinyser.egemaps.teacher_proba``, per-speaker
    standardisation; another set's classifier with ``feature_set``) on each fold's training clips, as
    distillation uses them, overall and by corpus, for each way of holding clips out (``splits``; mean over
    folds)."""
    from tinyser.egemaps import teacher_proba
    from tinyser.metrics import scores
    from tinyser.protocols import corpus_of

    out = {}
    for split in splits:
        overall, by_corpus = [], {}
        for fold in folds:
            t = fold.train
            pred = teacher_proba(x, y, g, t, len(classes), "speaker", seed=fold.index, split=split,
                                 feature_set=feature_set).argmax(1)
            overall.append(scores(y[t], pred, classes)["ua"])
            corpora = corpus_of(g[t])
            for c in np.unique(corpora):
                by_corpus.setdefault(str(c), []).append(scores(y[t][corpora == c], pred[corpora == c], classes)["ua"])
        out[split] = {"ua": float(np.mean(overall)), "by_corpus": {c: float(np.mean(v)) for c, v in by_corpus.items()}}
    return out


def markdown(results: dict, data: Path) -> str:
    lines = ["## The reference: eGeMAPS v02 + RBF SVM (`benchmarks/baseline.py`)", "",
             f"Reproduce: `python benchmarks/baseline.py --data {data}` on {_report.machine()}. openSMILE's eGeMAPS "
             "v02 functionals (88 per clip, Eyben et al. 2016) of every clip at 16 kHz and an RBF SVM "
             "(scikit-learn's defaults, C = 1, classes weighted by frequency; nothing tuned, so it trains on each "
             "fold's training and validation parts), on the models' own folds (seed 0). **global**: standardised "
             "with the training clips' statistics; **per speaker**: every speaker on their own clips, test "
             "speakers included (per corpus when a corpus is left out): what adaptive normalisation can be worth. "
             "UA %, mean ± std over folds; the guide's figures for the same setups beside them. Beside the "
             "reference, a larger classic set: openSMILE's ComParE 2016 functionals (6,373 per clip; Schuller et al., "
             "Interspeech 2016) and a linear model, as that challenge's baselines have it (logistic regression, "
             f"C = {LINEAR['C']:g}, classes weighted by frequency; C chosen on training clips alone, below).", "",
             "| corpora | classes | protocol | clips | UA % global | UA % per speaker (corpus) | WA % global / own | "
             "guide (global / own) | ComParE + linear: UA % global / own |",
             "|---|---|---|---:|---:|---:|---:|---|---:|"]
    for name, r in results.items():
        guide = SETUPS[name][3]
        compare = r.get("compare")
        lines.append(f"| {' + '.join(r['corpora'])} | {r['labels']} ({len(r['classes'])}) | {r['protocol']} | "
                     f"{r['clips']:,} | {100 * r['global']['ua']:.1f} ± {100 * r['global']['ua_std']:.1f} | "
                     f"{100 * r['own']['ua']:.1f} ± {100 * r['own']['ua_std']:.1f} | "
                     f"{100 * r['global']['wa']:.1f} / {100 * r['own']['wa']:.1f} | "
                     + (f"{guide[0]} / {guide[1]}" if guide else "–") + " | "
                     + (f"{100 * compare['global']['ua']:.1f} / {100 * compare['own']['ua']:.1f}" if compare else "–")
                     + " |")
    loco = results.get("four-corpora-loco")
    if loco:
        lines += ["", "Left-out corpora (global / per corpus): " + "; ".join(
            f"{g['test'][0].split(':')[0]} {100 * g['ua']:.1f} / {100 * o['ua']:.1f}"
            for g, o in zip(loco["global"]["folds"], loco["own"]["folds"])) + "."]
    taught = {name: r["teacher"] for name, r in results.items() if r.get("teacher")}
    if taught:
        lines += ["", "The SVM as a teacher (`train.distill: {\"egemaps\": \"speaker\"}`): UA % of its out-of-fold "
                  "labels of each fold's training clips (mean over folds), each clip labelled by SVMs trained on the "
                  "fold's other training speakers (held out **by speaker**, the default) or on its other training "
                  "clips, its speaker's among them (**by clip**, `\"split\": \"clip\"`); per corpus in brackets.", "",
                  "| setup | " + " | ".join(f"by {s}" for s in TEACHER_SPLITS) + " |", "|---" * (1 + len(TEACHER_SPLITS))
                  + "|"]
        lines += [f"| {name} | " + " | ".join(_teacher_cell(t[s]) for s in TEACHER_SPLITS) + " |"
                  for name, t in taught.items()]
        lines += [f"| {name}, ComParE + linear (`\"functionals\": \"compare\"`) | "
                  + " | ".join(_teacher_cell(r["compare"]["teacher"][s]) for s in TEACHER_SPLITS) + " |"
                  for name, r in results.items() if r.get("compare", {}).get("teacher")]
        grid = {name: r["compare"]["teacher_c"] for name, r in results.items() if r.get("compare", {}).get("teacher_c")}
        if grid:
            cs = list(next(iter(grid.values())))
            means = {c: float(np.mean([g[c][TEACHER_SPLITS[0]]["ua"] for g in grid.values()])) for c in cs}
            lines += ["", "The ComParE teacher's C, chosen on each fold's training clips alone (out-of-fold UA %, held "
                      "out by speaker; no validation or test clip is heard): the mean over the setups picks "
                      f"C = {max(means, key=means.get)} (`tinyser.egemaps.LINEAR` has {LINEAR['C']:g}).", "",
                      "| C | " + " | ".join(grid) + " | mean |", "|---" * (len(grid) + 2) + "|"]
            lines += [f"| {c} | " + " | ".join(f"{100 * g[c][TEACHER_SPLITS[0]]['ua']:.1f}" for g in grid.values())
                      + f" | {100 * means[c]:.1f} |" for c in cs]
    return "\n".join(lines)


def _teacher_cell(split: dict) -> str:
    """A teacher's UA for one split, its corpora's in brackets where it has several (:func:`teacher_quality`).

    >>> _teacher_cell({"ua": 0.5, "by_corpus": {"a": 0.4, "b": 0.6}}), _teacher_cell({"ua": 0.5, "by_corpus": {"a": 0.5}})
    ('50.0 (a 40.0, b 60.0)', '50.0')
    """
    corpora = split["by_corpus"]
    each = " (" + ", ".join(f"{c} {100 * v:.1f}" for c, v in corpora.items()) + ")" if len(corpora) > 1 else ""
    return f"{100 * split['ua']:.1f}{each}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    _report.add_data_argument(ap)
    ap.add_argument("--only", help="comma-separated setups (default: all)")
    args = ap.parse_args()
    names = args.only.split(",") if args.only else list(SETUPS)
    unknown = sorted(set(names) - set(SETUPS))
    if unknown:
        ap.error(f"unknown setup(s) {', '.join(unknown)}; choose from {', '.join(SETUPS)}")
    committed = _report.DOCS / "baseline.json"
    kept = json.loads(committed.read_text())["setups"] if args.only and committed.exists() else {}
    made = {name: evaluate(name, args.data) for name in names}
    results = {name: made.get(name, kept.get(name)) for name in SETUPS if name in made or name in kept}
    _report.write("baseline", {"setups": results}, markdown(results, Path("../shared/data")), page="results.md",
                  data=args.data)


if __name__ == "__main__":
    main()
