"""`tinyser search` on the four shared corpora for the Arduino Nano 33 BLE Sense (issue 13).

    python benchmarks/search.py [--data ../shared/data] [--out runs/search] [--trials 14] [--cross-validate] [--table-only]

Base recipe: the ablation's ``crops`` row (the default model's when the search ran; it is now made
from row ``tile`` in the shape this search chose): `tiny`
on EMO-DB, RAVDESS actors 1-20, TESS and SAVEE under ``common6``, adaptive
normalisation, crops, SpecAugment, mixup, label smoothing; ``cmsis_mfcc``),
under protocol ``final``: every speaker trains except the validation speakers,
whose UA is the only score (no test set is touched). The hand-written grid of
``benchmarks/frontier.py`` (six width x input-pooling points, among them the
shipped shape) is trained in the same search, under the same protocol, epochs
and ASHA early stopping, beside ``--trials`` candidates drawn from
:data:`tinyser.search.SPACE` that fit the board. Writes docs/search.json,
docs/search-frontier.png and the search section of docs/results.md.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "recipes"))
import _report  # noqa: E402
import ablation  # noqa: E402
import default_model  # noqa: E402
import lengths  # noqa: E402

from tinyser.experiment import load_report  # noqa: E402
from tinyser.search import HAND_GRID, Candidate, load_result, markdown, plot, search  # noqa: E402

RECIPE = "crops"  # the ablation row the search ran with (the default model's at the time)
SHIPPED = Candidate()  # the hand-written grid's choice, the previous default model's shape


SCORE = "recipe score"


def recipe_score(run: Path) -> float:
    """What ``recipes/default_model.py`` ranks by: the mean of the validation speakers' UA on
    whole clips and on the same clips cut to their loudest 1.0 s (``benchmarks/lengths.py``)."""
    return ablation.recipe_score(ablation.val_scores(run))


def run(data: Path, out: Path, trials: int) -> dict:
    base = ablation.run_config(data, ablation.ROWS[RECIPE][1], protocol="final")
    return search(base, out, board="nano33ble", trials=trials, include=HAND_GRID, seed=0, score=recipe_score,
                  score_name=SCORE)


def cv_run(runs: Path, row: dict) -> Path:
    """Where the chosen shape is cross-validated (speaker:5): the run ``recipes/default_model.py`` makes."""
    return runs / "default" / default_model.run_name("cv", RECIPE, Candidate.from_dict(row["candidate"]))


def cross_validate(data: Path, runs: Path, result: dict) -> None:
    """Train the chosen shape under the ablation's protocol, as the recipe would (resumable)."""
    row = next(r for r in result["rows"] if r["name"] == result["chosen"])
    if row["name"] != SHIPPED.name and not (cv_run(runs, row) / "report.json").exists():
        cfg = default_model.row_config(data, RECIPE, ablation.PROTOCOL, Candidate.from_dict(row["candidate"]))
        _report.timed_training(cfg, cv_run(runs, row))


def comparison(result: dict, runs: Path) -> str:
    rows = {r["name"]: r for r in result["rows"]}
    best, hand = rows[result["chosen"]], rows[SHIPPED.name]
    grid = [r for r in result["rows"] if r["origin"] == "grid" and r.get("val_ua") is not None]
    grid_best = max((r for r in grid if r.get("finished")), key=lambda r: r["score"], default=None)

    def cheaper(a, b):
        return all(a[k] <= b[k] for k in ("latency_ms", "ram_bytes", "model_bytes", "arena_bytes"))

    hand_val = "–" if hand.get("val_ua") is None else f"{100 * hand['val_ua']:.1f}"
    hand_val += f", {SCORE} {100 * hand['score']:.1f}" if hand.get("score") is not None else ""
    hand_status = "finished" if hand.get("finished") else f"stopped by ASHA at epoch {hand.get('epochs')}"
    lines = [f"- Chosen (the best {SCORE} among the trials that finished): `{best['name']}`, validation UA "
             f"{100 * best['val_ua']:.1f}, {SCORE} **{100 * best['score']:.1f}**, estimated "
             f"{best['latency_ms']:.0f} ms per inference, {best['ram_bytes'] / 1024:.1f} KB RAM, "
             f"{best['model_bytes'] / 1024:.1f} KB model.",
             f"- The hand choice (the previous default model's shape, `{hand['name']}`): validation UA {hand_val} ({hand_status}), "
             f"{hand['latency_ms']:.0f} ms, {hand['ram_bytes'] / 1024:.1f} KB RAM, {hand['model_bytes'] / 1024:.1f} KB "
             "model.",
             f"- Chosen vs hand choice: {100 * (best['val_ua'] - (hand.get('val_ua') or 0)):+.1f} points of validation "
             f"UA" + (f", {100 * (best['score'] - hand['score']):+.1f} of {SCORE}" if hand.get("score") is not None
                      else "") + f", at {'equal or lower' if cheaper(best, hand) else '**higher**'} cost (latency, RAM, "
             "flash, arena)."]
    earlier = runs / "default" / default_model.run_name("final", RECIPE, None)
    if (earlier / "report.json").exists():  # the same configuration, trained before under the same protocol
        v = load_report(earlier)["folds"][0]["val_ua"]
        lines.append(f"- The same configuration as the hand choice, trained earlier under the same protocol "
                     f"(`{earlier}`, the previous default model's final run) reached {100 * v:.1f}: "
                     "differences of a few points between these candidates are run-to-run noise.")
    cv, shipped_cv = cv_run(runs, best), runs / "ablation" / RECIPE
    if best["name"] != SHIPPED.name and (cv / "report.json").exists() and (shipped_cv / "report.json").exists():
        c, h = load_report(cv), load_report(shipped_cv)
        gap = c["ua"] - h["ua"]
        verdict = ("within the folds' spread" if abs(gap) <= max(c["ua_std"], h["ua_std"])
                   else f"{100 * gap:+.1f} points")
        one_s = [lengths.run_scores(r)["rows"]["1.0"]["ua_mean_over_folds"] for r in (cv, shipped_cv)]
        lines.append(f"- Cross-validated under the ablation's protocol (speaker:5 over the four corpora, test speakers "
                     f"never seen; `{cv}`, as `recipes/default_model.py` runs it; `--cross-validate`): the chosen "
                     f"shape reaches test UA **{100 * c['ua']:.1f} ± {100 * c['ua_std']:.1f}** against the hand "
                     f"choice's {100 * h['ua']:.1f} ± {100 * h['ua_std']:.1f} (ablation row `{RECIPE}`), {verdict}, at "
                     f"{best['latency_ms'] / hand['latency_ms']:.0%} of the latency and "
                     f"{best['model_bytes'] / hand['model_bytes']:.0%} of the flash; on test clips cut to their loudest "
                     f"1.0 s it reaches {100 * one_s[0]:.1f} against {100 * one_s[1]:.1f} (`benchmarks/lengths.py`).")
    if best["name"] != SHIPPED.name:
        from tinyser.inference import DEFAULT_MODEL
        from tinyser.tflite import read_metadata

        made = read_metadata(DEFAULT_MODEL.read_bytes()).model_params == Candidate.from_dict(best["candidate"]).model_params()
        lines.append("- The shipped default model is made in the chosen shape: `recipes/default_model.py` takes its "
                     "shape from this search and cross-validates it first (with the recipe it picks; docs/model-card.md)."
                     if made else "- The shipped default model has not been re-made in the chosen shape; "
                     "`recipes/default_model.py` takes its shape from this search and cross-validates it first.")
    if grid_best:
        lines.append(f"- Best point of the hand-written grid under the same search: `{grid_best['name']}`, "
                     f"{SCORE} {100 * grid_best['score']:.1f}.")
    return "\n".join(lines)


def section(result: dict, data: Path, trials: int, runs: Path) -> str:
    n_fit = sum(r["fits"] for r in result["rows"])
    n_skip = len(result["rows"]) - n_fit
    return "\n".join([
        "## Hardware-aware search (`benchmarks/search.py`, `tinyser search`)", "",
        f"Reproduce: `python benchmarks/search.py --data {data} --trials {trials} --cross-validate` on {_report.machine()} "
        "(Ray Tune on a local Ray, two trials at a time, one core each). Board: Arduino Nano 33 BLE Sense "
        "limits (arena ≤ 64 KB, int8 model ≤ 128 KB, RAM ≤ 256 KB, estimated real-time factor < 1, ≤ 8 M "
        "MACs per second of audio). Every candidate's cost is measured before training: int8 flatbuffer, TFLite "
        "Micro arena (interpreter), MACs; latency and real-time factor are **estimates** from the per-op "
        "instruction counts measured for the default model of the time (width 0.375) on the emulated Cortex-M4F (one-input-channel "
        "convolutions ~11.5 instructions per MAC, the others ~1.9; 1 cycle per instruction at 64 MHz, the "
        "frontend scaled from its measured cost). Candidates that do not fit are listed and never trained.", "",
        f"Protocol: the recipe of ablation row `{RECIPE}` (the default model's when the search ran) on the four corpora under `common6`, "
        "protocol `final` (every speaker trains except ~15 % validation speakers, whose UA is the only score; no "
        f"test set), at most {result['base']['train']['epochs']} epochs (patience "
        f"{result['base']['train']['patience']}); ASHA stops weak trials at {result['grace_epochs']}, "
        f"{2 * result['grace_epochs']} and {4 * result['grace_epochs']} epochs (best validation UA so far, "
        "reduction factor 2). The chosen candidate is the finished trial with the best recipe score: the mean of the "
        "validation speakers' UA on whole clips and on the same clips cut to their loudest 1.0 s, which is how "
        "`recipes/default_model.py` ranks recipes (users speak in short bursts as well as long ones). Trial budget: the six points of the hand-written grid (`benchmarks/frontier.py`) "
        f"plus {trials} candidates drawn at random (seed {result['seed']}) from the space that fit the board; "
        f"{n_fit} trained, {n_skip} skipped over budget. The validation set is 5 speakers: differences of a few "
        "points are within its noise, and the best of many trials is optimistic (the winner's curse).", "",
        comparison(result, runs), "",
        "![search frontier](search-frontier.png)", "",
        markdown(result)])


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    _report.add_data_argument(ap)
    ap.add_argument("--out", type=Path, default=Path("runs/search"))
    ap.add_argument("--trials", type=int, default=14)
    ap.add_argument("--cross-validate", action="store_true",
                    help="also train the chosen shape under speaker:5, as recipes/default_model.py does")
    ap.add_argument("--table-only", action="store_true", help="tabulate a finished search without training")
    args = ap.parse_args()
    runs = args.out.parent  # beside runs/ablation and runs/default
    result = load_result(args.out) if args.table_only else run(args.data, args.out, args.trials)
    if args.cross_validate and not args.table_only:
        cross_validate(args.data, runs, result)
    plot(result, _report.DOCS / "search-frontier.png")
    _report.write("search", result, section(result, args.data, args.trials, runs), page="results.md")
    print("wrote docs/search.json, docs/search-frontier.png and the search section of docs/results.md")


if __name__ == "__main__":
    main()
