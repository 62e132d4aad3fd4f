"""The `tiny` frontier: accuracy against MCU cost for candidate `tiny` shapes,
with `light_sernet` as the reference, on the data and features of the shipped
default model (EMO-DB + RAVDESS actors 1-20, `common6`, `cmsis_mfcc`, 2 s windows).

    python benchmarks/frontier.py [--data ../shared/data] [--runs runs/frontier] [--no-reference]

Every candidate's full-int8 size, TFLite Micro arena and MACs are measured
first (an untrained copy is enough: they do not depend on the weights).
Candidates within the Nano 33 BLE Sense budget (arena <= 64 KB, model <= 128 KB,
<= 8 M MACs per second of audio) are trained under speaker:5 cross-validation
(speaker-independent; resumable runs in --runs). The default model's shape is
chosen by mean *validation* UA (speakers carved from each fold's training
part), never by test UA. Writes docs/frontier.json and the frontier section of
docs/results.md.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
import _report  # noqa: E402

from tinyser.experiment import RunConfig, load_report  # noqa: E402
from tinyser.features import get_config  # noqa: E402
from tinyser.search import BOARDS, HAND_GRID  # noqa: E402
from tinyser.training import TrainConfig  # noqa: E402

CORPORA = ("emodb", "ravdess")
LABELS = "common6"
FRONTEND = get_config("cmsis_mfcc").to_dict()
SEGMENTS = {"window": 2.0, "hop": None, "pad": "drop"}  # the clips here are 2.0 s (EMO-DB) and 2.4 s (RAVDESS)
PROTOCOL = "speaker:5"
_LIMITS = BOARDS["nano33ble"]  # the board's limits have one owner: tinyser.search
BUDGET = {"arena": _LIMITS.arena_bytes, "model": _LIMITS.model_bytes, "macs_per_second": _LIMITS.macs_per_second}
EPOCHS = {"tiny": (80, 20), "light_sernet": (80, 20)}  # max epochs, patience (2 CPU cores)

#: name -> (model, model_params): the hand-written grid (width x input pooling), owned by
#: tinyser.search, which trains the same points beside its own candidates
CANDIDATES = {
    f"tiny-w{c.width:g}-" + ("none" if c.input_pool is None else "p{}x{}".format(*c.input_pool)):
        ("tiny", {"width": c.width, "input_pool": None if c.input_pool is None else list(c.input_pool)})
    for c in HAND_GRID}
REFERENCE = {"light_sernet": ("light_sernet", {})}


def run_config(data: Path, model: str, params: dict, protocol: str = PROTOCOL) -> RunConfig:
    epochs, patience = EPOCHS[model]
    return RunConfig(tuple(str(data / c) for c in CORPORA), model=model, model_params=params,
                     frontend=FRONTEND, segments=SEGMENTS, labels=LABELS, protocol=protocol,
                     train=TrainConfig(epochs=epochs, patience=patience))


def input_shape() -> tuple[int, int]:
    cfg = get_config("cmsis_mfcc")
    return cfg.n_frames(int(SEGMENTS["window"] * cfg.sample_rate)), cfg.n_features


def measure(model: str, params: dict, n_classes: int = 6) -> dict:
    """Size, arena and MACs of a full-int8 copy of the model (weights untrained)."""
    from tinyser.models import build_model, count_macs, count_params
    from tinyser.tflite import convert, find_arena_size

    m = build_model(model, input_shape(), n_classes, **params)
    rng = np.random.default_rng(0)
    blob = convert(m, "int8", rng.standard_normal((32, *input_shape())).astype(np.float32))
    macs = count_macs(m)
    return {"params": count_params(m), "macs": macs, "macs_per_second": macs / SEGMENTS["window"],
            "int8_bytes": len(blob), "arena_bytes": find_arena_size(blob)}


def fits(cost: dict) -> bool:
    return (cost["arena_bytes"] <= BUDGET["arena"] and cost["int8_bytes"] <= BUDGET["model"]
            and cost["macs_per_second"] <= BUDGET["macs_per_second"])


def costed(name: str, model: str, params: dict) -> dict:
    cost = measure(model, params)
    return {"name": name, "model": model, "model_params": params, **cost, "fits": fits(cost)}


def trained(row: dict, data: Path, runs: Path) -> dict:
    """``row`` with the scores of its speaker:5 run (trained, or resumed, if needed)."""
    out = runs / row["name"]
    report = load_report(out) if (out / "report.json").exists() else \
        _report.timed_training(run_config(data, row["model"], row["model_params"]), out)
    return {**row, **{k: report[k] for k in ("ua", "ua_std", "wa", "wa_std", "f1", "f1_std")},
            "val_ua": float(np.mean([f["val_ua"] for f in report["folds"]])),
            "wall_s": _report.wall_seconds(out), "run": str(out)}


def choose(rows: list[dict]) -> dict:
    """The fitting, trained candidate with the best mean validation UA."""
    ok = [r for r in rows if r["fits"] and "val_ua" in r and r["model"] == "tiny"]
    if not ok:
        raise SystemExit("no trained candidate fits the budget")
    return max(ok, key=lambda r: r["val_ua"])


def run_candidates(data: Path, runs: Path, reference: bool = True) -> list[dict]:
    rows = [costed(n, *spec) for n, spec in CANDIDATES.items()]
    rows = [trained(r, data, runs) if r["fits"] else r for r in rows]
    if reference:
        rows += [trained(costed(n, *spec), data, runs) for n, spec in REFERENCE.items()]
    return rows


def markdown(rows: list[dict], chosen: dict, data: Path) -> str:
    lines = ["## The `tiny` frontier (`benchmarks/frontier.py`)", "",
             f"Reproduce: `python benchmarks/frontier.py --data {data}` on {_report.machine()}. Data: EMO-DB + "
             "RAVDESS actors 1-20 under `common6` (neutral incl. RAVDESS calm, happy, sad, angry, fearful, disgust), "
             "features `cmsis_mfcc` (the device's features), 2 s windows (this EMO-DB copy's clips are cut or "
             "zero-padded to exactly 2.0 s; RAVDESS clips are 2.4 s, whose last 0.4 s is dropped). Protocol speaker:5 (five folds grouped "
             "by speaker, speaker-independent), best epoch by validation UA on speakers carved from each fold's "
             f"training part; tiny {EPOCHS['tiny'][0]} epochs max (patience {EPOCHS['tiny'][1]}), light_sernet "
             f"{EPOCHS['light_sernet'][0]} (patience {EPOCHS['light_sernet'][1]}). Sizes and arenas are of the "
             "full-int8 flatbuffer (without tinyser metadata) measured with the TFLite Micro interpreter. "
             "Budget: arena ≤ 64 KB, model ≤ 128 KB, ≤ 8 M MACs per second of audio; only candidates within "
             "it are trained. The default model's shape is the fitting candidate with the best mean "
             "**validation** UA (the test UA is reported, not used to choose).", "",
             "MACs per second of audio are one window's MACs over its length (non-overlapping windows); the "
             "deployed sketch infers every half window, which doubles them (budget table below).", "",
             "| candidate | params | MACs / s audio | int8 model | TFLM arena | fits | val UA % | test UA % "
             "| WA % | macro-F1 % | wall |", "|---|---:|---:|---:|---:|---|---:|---:|---:|---:|---:|"]
    for r in rows:
        trained = "ua" in r
        mark = " (default)" if r["name"] == chosen["name"] else ""
        lines.append(
            f"| `{r['name']}`{mark} | {r['params']:,} | {r['macs_per_second'] / 1e6:.1f} M "
            f"| {r['int8_bytes'] / 1024:.1f} KB | {r['arena_bytes'] / 1024:.1f} KB | {'yes' if r['fits'] else 'no'} "
            + (f"| {100 * r['val_ua']:.1f} | {100 * r['ua']:.1f} ± {100 * r['ua_std']:.1f} "
               f"| {100 * r['wa']:.1f} ± {100 * r['wa_std']:.1f} | {100 * r['f1']:.1f} ± {100 * r['f1_std']:.1f} "
               f"| {r['wall_s'] / 60:.0f} min |" if trained else "| – | – | – | – | – |"))
    ref = next((r for r in rows if r["model"] == "light_sernet" and "ua" in r), None)
    if ref:
        lines += ["", f"Chosen `{chosen['name']}`: test UA {100 * chosen['ua']:.1f} against light_sernet's "
                  f"{100 * ref['ua']:.1f} ({100 * (chosen['ua'] - ref['ua']):+.1f} points{_epochs_note()}) at "
                  f"{chosen['macs'] / ref['macs']:.3f}× its MACs, {chosen['arena_bytes'] / ref['arena_bytes']:.2f}× "
                  "its arena."]
    return "\n".join(lines)


def budgets(rows: list[dict]) -> dict:
    """Nano 33 BLE Sense budgets of the shipped default model and of light_sernet
    (fold 0 of its reference run, exported full-int8), one inference per half window."""
    from tinyser.deploy import budget
    from tinyser.experiment import load_fold
    from tinyser.export import ensure_exported
    from tinyser.inference import DEFAULT_MODEL

    out = {"default (tiny)": budget(DEFAULT_MODEL)} if DEFAULT_MODEL.exists() else {}
    ref = next((r for r in rows if r["model"] == "light_sernet" and "run" in r), None)
    if ref:
        out["light_sernet"] = budget(ensure_exported(load_fold(ref["run"], 0), ["int8"])["int8"])
    return out


def budget_table(b: dict) -> str:
    """The budgets (name -> :class:`tinyser.deploy.Budget`) as Markdown."""
    def kb(n):
        return f"{n / 1024:.1f} KB"

    first = next(iter(b.values()))
    lines = ["## Device budget: `tiny` vs `light_sernet` (`benchmarks/frontier.py`)", "",
             f"Arduino Nano 33 BLE Sense ({kb(first.board_ram_bytes)} RAM, {kb(first.board_flash_bytes)} "
             "flash, Cortex-M4F at 64 MHz), as `tinyser deploy arduino` builds it: one inference every half "
             "window. Arena measured by the TFLite Micro interpreter, plus the deploy margin (+10 % + 2 KB). "
             "Latency is an estimate: " + first.cycles_per_mac_source + "; frontend at 2 cycles per float "
             "operation, 14 per sqrt/div, 100 per logf. Code size (TFLite Micro, kernels) is not counted. "
             "\"Fits\" means RAM and flash within the board and a real-time factor below 1. The sketch "
             "allocates the measured arena plus its margin; against the issue's 64 KB arena budget the "
             "measured arena is what counts (the frontier table above).", "",
             "| model | flash (model + tables) | RAM (arena + audio + features + frontend) | arena measured "
             "| MACs / inference | model MACs / s (one inference per hop) | est. latency / inference | frontend / s audio "
             "| real-time factor | fits |", "|---|---:|---:|---:|---:|---:|---:|---:|---:|---|"]
    for name, x in b.items():
        lines.append(f"| `{name}` | {kb(x.flash.total)} | {kb(x.ram.total)} | {kb(x.arena_measured)} "
                     f"| {x.macs_per_inference / 1e6:.1f} M | {x.model_macs_per_second / 1e6:.1f} M "
                     f"| {x.inference_ms:.0f} ms | {x.frontend_ms_per_second:.0f} ms "
                     f"| {x.real_time_factor:.2f} | {'yes' if x.fits else '**no**'} |")
    return "\n".join(lines)


def _epochs_note() -> str:
    (t, _), (ls, _) = EPOCHS["tiny"], EPOCHS["light_sernet"]
    return "" if t == ls else f"; light_sernet trained for at most {ls} epochs against tiny's {t}, for time"


def main():
    ap = argparse.ArgumentParser()
    _report.add_data_argument(ap)
    ap.add_argument("--runs", type=Path, default=Path("runs/frontier"))
    ap.add_argument("--no-reference", action="store_true", help="skip training light_sernet")
    args = ap.parse_args()
    rows = run_candidates(args.data, args.runs, reference=not args.no_reference)
    chosen = choose(rows)
    text = markdown(rows, chosen, args.data)
    b = budgets(rows)
    if b:
        text += "\n\n" + budget_table(b)
    _report.write("frontier", {"machine": _report.machine(), "chosen": chosen["name"], "candidates": rows,
                               "budgets": b}, text, page="results.md")
    print(text)


if __name__ == "__main__":
    main()
