"""What ``tinyser predict`` makes of a corpus it never heard (issue 10): each fold of a finished
leave-one-corpus-out run, exported full-int8 as ``tinyser export`` does, labels the left-out corpus's
files through ``predict``'s own path (LiteRT, windows every half window, the file's label the mean of
its voiced windows), each file alone and as one batch with ``--one-stream`` (the files in a seeded
random order, one running state of the adaptive statistics whoever speaks).

    python benchmarks/unseen.py [RUN ...] [--data ../shared/data]

A file with no speech window gets no label and counts as wrong. UA per left-out corpus, and its mean
over the corpora (the goal of issue 10: 40). The run's own evaluation (float model, each test speaker
one stream, windows without overlap) is beside it. Writes docs/unseen.json and the unseen section
of docs/results.md.
"""
from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
import _report  # noqa: E402

#: the leave-one-corpus-out runs measured by default: the ablation rows' earlier pick, the shipped default
#: model's recipe (in its searched shape; ``recipes/default_model.py``'s folder) and the one shipped before it,
#: the fixed-statistics twins of that row and of the earlier shipped recipe (in its shape), the row trained with
#: every clip starting its statistics afresh (as ``predict`` scores a file), the row distilled from the
#: eGeMAPS + SVM baseline and the ablation rows' pick (distilled from it with temperature 1)
RUNS = ("runs/default/corpus-adaptive-tile-g70-crops-avg",
        "runs/default/corpus-adaptive-tile-g70-short-avg-egemaps-w0.25-p2x1-d4-k11.9-parallel-mean-c40-h256-2s",
        "runs/default/corpus-adaptive-tile-g70-short-avg-w0.25-p2x1-d4-k11.9-parallel-mean-c40-h256-2s",
        "runs/default/corpus-balanced-tile-g70-crops-avg",
        "runs/default/corpus-balanced-tile-g70-short-avg-w0.25-p2x1-d4-k11.9-parallel-mean-c40-h256-2s",
        "runs/default/corpus-adaptive-tile-g70-crops-avg-restart1",
        "runs/default/corpus-adaptive-tile-g70-crops-avg-egemaps",
        "runs/default/corpus-adaptive-tile-g70-crops-avg-egemaps-clip-t1")
#: how the files are given to ``predict``: each alone, or all as one stream (``--one-stream``)
WAYS = ("per file", "one stream")
#: the same, each file then balanced by the files before it (``--balance``)
BALANCED = tuple(f"{way}, balanced" for way in WAYS)


def clip_paths(run: Path, data: Path) -> dict[str, str]:
    """Each clip id's file, as the run's own corpora list it (its config's ``data`` and ``corpus``; a folder
    not on this machine is looked for as ``DATA/<its name>``)."""
    from tinyser.corpora import load_dataset

    cfg = json.loads((run / "config.json").read_text())
    roots = [root if Path(root).is_dir() else data / Path(root).name for root in cfg["data"]]
    return {r.clip_id: r.path for r in load_dataset(roots, cfg.get("corpus", "auto"), check_audio=False).records}


def fold_scores(run: Path, fold: int, labels: list[str], files: dict[str, str]) -> dict:
    """One fold's int8 export on its test corpus's files (``files``: :func:`clip_paths`), per file and as
    one stream (the same pass for a model with fixed statistics, where both are alike)."""
    from tinyser.export import export_run
    from tinyser.inference import balance_files, load_model, predict_files
    from tinyser.metrics import DEFAULT_BALANCE_CLIPS, scores
    from tinyser.protocols import corpus_of

    res = json.loads((run / f"fold_{fold:02d}" / "result.json").read_text())
    clips = res["test_predictions"]["clip"]
    truth = dict(zip(clips, res["test_predictions"]["true"]))
    order = np.random.default_rng([0, fold]).permutation(len(clips))  # the batch's order for one stream
    paths = {files[c]: c for c in (clips[i] for i in order)}
    with tempfile.TemporaryDirectory() as tmp:
        (path, *_) = export_run(run, ["int8"], fold=fold, out=tmp)
        model = load_model(path)
        out = {"corpus": str(corpus_of(clips[:1])[0]), "n": len(clips)}
        for way, balanced in zip(WAYS, BALANCED):
            if way == "one stream" and model.adaptive_state() is None:
                for w in (way, balanced, f"{way} unlabelled"):
                    out[w] = out[w.replace("one stream", "per file")]
                continue
            r = predict_files(model, list(paths), progress=False, timeline=False, one_stream=way == "one stream")
            if r["failed"]:
                raise SystemExit(f"{r['failed'][0]['path']}: {r['failed'][0]['reason']}")
            for name in (way, balanced):
                if name == balanced:  # in place, once the model's own labels are scored
                    balance_files(model.labels, r["results"], DEFAULT_BALANCE_CLIPS)
                got = {paths[x["path"]]: x["label"] for x in r["results"]}
                pred = [-1 if v is None else labels.index(v) for v in got.values()]  # no label: wrong
                out[name] = scores([truth[c] for c in got], pred, labels)["ua"]
            out[f"{way} unlabelled"] = pred.count(-1) / len(pred)
    out["as evaluated"] = res["ua"]
    return out


def run_scores(run: Path, data: Path) -> dict:
    """:func:`fold_scores` for every fold of ``run``, cached in ``RUN/unseen.json``."""
    def compute() -> dict:
        report = json.loads((run / "report.json").read_text())
        files = clip_paths(run, data)
        folds = [fold_scores(run, f["fold"], report["labels"], files) for f in report["folds"]]
        return {"run": str(run), "adaptive": json.loads((run / "config.json").read_text()).get("adaptive"),
                "folds": folds}

    return _report.cached_in_run(run, "unseen.json", compute,
                                 lambda r: all(w in r["folds"][0] for w in (*WAYS, *BALANCED)))


def markdown(results: list[dict], cmd: str) -> str:
    cols = ("as evaluated", *WAYS, *BALANCED)
    lines = ["## `predict` on a corpus it never heard (`benchmarks/unseen.py`)", "",
             f"Reproduce: `{cmd}` on {_report.machine()}. Each fold of a leave-one-corpus-out run (trained on three "
             "corpora, validation speakers carved from them), exported full-int8, labels the fourth corpus's files "
             "with `tinyser predict`'s path: LiteRT, 2 s windows every 1 s, a file's label the mean of its voiced "
             "windows (a file with none counts as wrong). **per file**: each file alone, as `predict` scores it by "
             "default; **one stream**: the corpus's files as one batch in a random order with `--one-stream`, the "
             "adaptive statistics going on from file to file whoever speaks (the same as per file for a model with "
             "fixed statistics); **balanced**: then each file's probabilities divided by the running mean of the "
             "files before it in the batch, whoever speaks (`--balance`: a corpus that voices the emotions about "
             "evenly, as these do). **as evaluated**: the run's own "
             "scoring (float model, each test speaker one stream). UA %; goal (issue 10): mean ≥ 40; the eGeMAPS + "
             f"SVM baseline's mean: {_report.baseline('four-corpora-loco')} (global / per-corpus standardisation; "
             "`benchmarks/baseline.py`).", "",
             "| run | left-out corpus | files | " + " | ".join(cols) + " | unlabelled (per file / one stream) |",
             "|---|---|---:|" + "---:|" * len(cols) + "---:|"]
    for r in results:
        for f in r["folds"]:
            lines.append(f"| `{r['run']}`{_report.mark(r)} | {f['corpus']} | {f['n']:,} | "
                         + " | ".join(f"{100 * f[c]:.1f}" if c in f else "–" for c in cols)
                         + f" | {100 * f['per file unlabelled']:.1f} % / {100 * f['one stream unlabelled']:.1f} % |")
        means = [float(np.mean([f[c] for f in r["folds"]])) if c in r["folds"][0] else None for c in cols]
        lines.append(f"| `{r['run']}`{_report.mark(r)} | **mean** | {sum(f['n'] for f in r['folds']):,} | "
                     + " | ".join("–" if m is None else f"**{100 * m:.1f}**" for m in means) + " | |")
    lines += _report.carried_note(results)
    return "\n".join(lines)


def main() -> None:
    _report.tabulate_runs("unseen", __doc__, RUNS, run_scores, markdown)


if __name__ == "__main__":
    main()
