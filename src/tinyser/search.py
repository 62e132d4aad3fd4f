"""Hardware-aware model search: the best `tiny` that fits a board, found with Ray Tune.

A candidate is a point of :data:`SPACE`: the `tiny` family's knobs (width,
depth, first-layer kernels and design, input pooling, statistics pooling) and
the frontend's (MFCC coefficients, hop) and the model's input window. Every candidate's cost
is measured **before** it is trained: the full-int8 flatbuffer's size, the
TFLite Micro arena (measured by the interpreter), MACs, RAM, and the latency on
a Cortex-M4F estimated from the per-op instruction counts measured on the
emulated device for the shipped model (:func:`op_rates`). What does not fit the
board's :class:`Limits` is reported and never trained.

The candidates that fit are trained as Ray Tune trials on a base recipe (a
:class:`~tinyser.experiment.RunConfig`) under protocol ``final``: every speaker
trains except the validation speakers, whose UA is the only score the search
sees (there is no test set). ASHA stops weak trials early, comparing the best
validation UA so far at 6, 12, 24... epochs. Ray runs locally on the machine's
cores by default, or on a cluster (``address``).

Resumable: each trial trains in its own run folder (``OUT/trials/NAME``, with
the usual per-epoch checkpoints); a search started again over the same folder
re-uses finished trials, continues interrupted ones and re-measures nothing.

>>> Candidate().name
'w0.375-p2x1-d4-k11.9-parallel-mean-c40-h256-2s'
>>> Candidate.from_dict(Candidate(width=0.25).to_dict()) == Candidate(width=0.25)
True
"""
from __future__ import annotations

import dataclasses
import functools
import io
import itertools
import json
import math
import os
import types
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from .cache import atomic_write
from .errors import ConfigError, TinyserError
from .experiment import RunConfig

#: the search space: knob -> choices (the first choice of each is the shipped default model's)
SPACE: dict[str, tuple] = {
    "width": (0.375, 0.25, 0.5),
    "input_pool": ((2, 1), (2, 2), None),
    "depth": (4, 3),
    "kernels": ("11x1,1x9,3x3", "7x1,1x5,3x3"),
    "first": ("parallel", "channels"),
    "pooling": ("mean", "meanmax"),
    "n_mfcc": (40, 20),
    "hop_length": (256, 512),
    "window": (2.0, 1.5),
}


@dataclass(frozen=True)
class Candidate:
    """One point of :data:`SPACE` (defaults: the shipped default model's shape)."""

    width: float = 0.375
    input_pool: tuple[int, int] | None = (2, 1)
    depth: int = 4
    kernels: str = "11x1,1x9,3x3"
    first: str = "parallel"
    pooling: str = "mean"
    n_mfcc: int = 40
    hop_length: int = 256
    window: float = 2.0

    def __post_init__(self):
        if self.input_pool is not None:
            object.__setattr__(self, "input_pool", tuple(int(v) for v in self.input_pool))
        for knob, choices in SPACE.items():
            if getattr(self, knob) not in choices:
                raise ConfigError(f"search: {knob} must be one of {', '.join(map(str, choices))}, "
                                  f"not {getattr(self, knob)!r}")

    @property
    def name(self) -> str:
        pool = "none" if self.input_pool is None else "x".join(map(str, self.input_pool))
        k = ".".join(str(max(int(v) for v in s.split("x"))) for s in self.kernels.split(",")[:2])
        return (f"w{self.width:g}-p{pool}-d{self.depth}-k{k}-{self.first}-{self.pooling}"
                f"-c{self.n_mfcc}-h{self.hop_length}-{self.window:g}s")

    def model_params(self) -> dict:
        kernels = [[int(v) for v in s.split("x")] for s in self.kernels.split(",")]
        return {"width": self.width, "input_pool": None if self.input_pool is None else list(self.input_pool),
                "depth": self.depth, "kernels": kernels, "first": self.first, "pooling": self.pooling}

    def frontend(self, base):
        """``base`` (a frontend config) with this candidate's frontend knobs."""
        return base.replace(n_mfcc=self.n_mfcc, hop_length=self.hop_length)

    def run_config(self, base: RunConfig) -> RunConfig:
        """``base`` with this candidate's model, frontend and window, under protocol ``final``."""
        return dataclasses.replace(base, model="tiny", model_params=self.model_params(),
                                   frontend=self.frontend(base.frontend), protocol="final",
                                   segments=dataclasses.replace(base.segments, window=self.window))

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d["input_pool"] = None if self.input_pool is None else list(self.input_pool)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> Candidate:
        return cls(**d)


#: the hand-written grid of ``benchmarks/frontier.py`` (width x input pooling); its third
#: point is the shipped default model's shape
HAND_GRID: tuple[Candidate, ...] = tuple(
    Candidate(width=w, input_pool=p) for w, p in
    ((0.25, (2, 1)), (0.25, (2, 2)), (0.375, (2, 1)), (0.375, (2, 2)), (0.5, (2, 2)), (0.25, None)))


@dataclass(frozen=True)
class Limits:
    """What a candidate may cost on a board; ``None`` = no limit. RAM counts the
    arena (measured, plus the deploy margin), the feature window, the frontend's
    buffers and the audio ring; the real-time factor is the estimated share of the
    CPU taken by the frontend plus one inference every half window (below 1: the
    device keeps up with the stream); MACs per second of audio are one window's
    MACs over its length, as ``benchmarks/frontier.py`` counts them."""

    arena_bytes: int | None = 64 * 1024
    model_bytes: int | None = 128 * 1024
    ram_bytes: int | None = 256 * 1024
    real_time_factor: float | None = 1.0
    macs_per_second: float | None = 8e6

    def problems(self, cost: dict) -> list[str]:
        """Why ``cost`` does not fit (empty when it does)."""
        checks = (("arena_bytes", "arena", _kb), ("model_bytes", "model", _kb), ("ram_bytes", "RAM", _kb),
                  ("real_time_factor", "real-time factor", lambda v: f"{v:.2f}"),
                  ("macs_per_second", "MACs/s", lambda v: f"{v / 1e6:.1f} M"))
        return [f"{what} {fmt(cost[key])} > {fmt(limit)}" for key, what, fmt in checks
                if (limit := getattr(self, key)) is not None and cost[key] > limit]


#: board -> limits (the Nano 33 BLE Sense: 256 KB RAM, of which the project budgets 64 KB
#: for the arena; 1 MB flash, of which 128 KB for the model; 8 M MACs per second of audio)
BOARDS: dict[str, Limits] = {"nano33ble": Limits(), "generic": Limits(None, None, None, 1.0, None)}
CLOCK_HZ = 64e6


def board_limits(board: str, **overrides) -> Limits:
    """``board``'s :class:`Limits`, with the given fields replaced (``None`` keeps the board's).

    >>> board_limits("nano33ble", arena_bytes=32768).arena_bytes
    32768
    """
    if board not in BOARDS:
        raise ConfigError(f"unknown board {board!r}; choose one of {', '.join(BOARDS)}")
    return dataclasses.replace(BOARDS[board], **{k: v for k, v in overrides.items() if v is not None})


def _kb(n: float) -> str:
    return f"{n / 1024:.1f} KB"


def sample(n: int | None, seed: int = 0, exclude: tuple[Candidate, ...] = ()) -> list[Candidate]:
    """``n`` distinct candidates drawn uniformly from :data:`SPACE` (seeded), none in
    ``exclude``; ``None``: the whole space in a seeded random order.

    >>> [c.name for c in sample(2, seed=1)] == [c.name for c in sample(2, seed=1)]
    True
    """
    points = list(itertools.product(*SPACE.values()))
    excluded = set(exclude)
    drawn = (Candidate(**dict(zip(SPACE, points[i]))) for i in np.random.default_rng(seed).permutation(len(points)))
    out = [c for c in drawn if c not in excluded]
    return out if n is None else out[:n]


# --- cost, measured before training -------------------------------------------------------------

def op_work(blob: bytes) -> list[tuple[str, str, int]]:
    """Each op of a flatbuffer as (op name, cost kind, work): MACs for convolutions
    (kind ``CONV_2D/1ch`` when the input has one channel) and fully connected
    layers, input elements for pooling and means, output elements otherwise."""
    from .tflite.litert import LiteRTModel

    it = LiteRTModel(blob)._interp
    shapes = {t["index"]: tuple(int(v) for v in t["shape"]) for t in it.get_tensor_details()}
    out = []
    for op in it._get_ops_details():
        name, ins, outs = op["op_name"], list(op["inputs"]), list(op["outputs"])
        o = math.prod(shapes[outs[0]]) if outs else 0
        if name in ("CONV_2D", "DEPTHWISE_CONV_2D"):
            k = shapes[ins[1]]  # (out, kh, kw, in) / (1, kh, kw, out)
            cin = shapes[ins[0]][-1]
            work = o * k[1] * k[2] * (cin if name == "CONV_2D" else 1)
            kind = f"{name}/1ch" if cin == 1 else name
        elif name == "FULLY_CONNECTED":
            work, kind = math.prod(shapes[ins[1]]), name
        elif name in ("AVERAGE_POOL_2D", "MAX_POOL_2D", "MEAN", "REDUCE_MAX", "SUM"):
            work, kind = math.prod(shapes[ins[0]]), "POOL"
        else:
            work, kind = o, name
        out.append((name, kind, work))
    return out


def op_rates(reference: bytes | None = None) -> dict[str, float]:
    """Instructions per unit of work by cost kind, measured on the emulated
    Cortex-M4F (``benchmarks/device.py``, TFLite Micro + CMSIS-NN) for the
    reference flatbuffer (default: the shipped model); ``*`` is the rate of all
    non-convolution ops together, used for kinds the reference lacks.

    >>> r = op_rates()
    >>> r["CONV_2D/1ch"] > 5 * r["CONV_2D"]
    True
    """
    from .deploy.firmware import find_measurement
    from .inference import DEFAULT_MODEL

    blob = reference if reference is not None else DEFAULT_MODEL.read_bytes()
    m = find_measurement(blob)
    if m is None:
        raise TinyserError("search: no device measurement of the reference model (run benchmarks/device.py)")
    measured = m["instructions"]["per_op"]
    work = op_work(blob)
    if [w[0] for w in work] != [p["op"] for p in measured]:
        raise TinyserError("search: the measured ops do not match the reference model's")
    ins: dict[str, float] = {}
    units: dict[str, float] = {}
    for (_, kind, w), p in zip(work, measured):
        for k in (kind, "*") if not kind.startswith("CONV") else (kind,):
            ins[k] = ins.get(k, 0.0) + p["instructions"]
            units[k] = units.get(k, 0.0) + w
    return {k: ins[k] / max(units[k], 1.0) for k in ins}


def estimate_instructions(blob: bytes, rates: dict[str, float]) -> float:
    """Instructions of one inference: each op's work times its kind's measured rate (an estimate)."""
    conv = rates.get("CONV_2D", 2.0)
    return float(sum(w * rates.get(kind, conv if kind.startswith(("CONV", "DEPTHWISE", "FULLY")) else rates["*"])
                     for _, kind, w in op_work(blob)))


def _frontend_cycles_per_second(cfg) -> float:
    from .deploy.budget import frontend_cycles_per_frame, frontend_ops

    return frontend_cycles_per_frame(frontend_ops(types.SimpleNamespace(config=cfg))) * cfg.sample_rate / cfg.hop_length


@functools.lru_cache(maxsize=1)
def _frontend_reference() -> tuple[float, float]:
    """The shipped model's measured frontend instructions per second of audio, and its estimated cycles."""
    from .deploy.firmware import find_measurement
    from .inference import DEFAULT_MODEL, load_model

    measured = find_measurement(DEFAULT_MODEL.read_bytes())["instructions"]["frontend_per_audio_second"]
    return measured, _frontend_cycles_per_second(load_model(DEFAULT_MODEL).metadata.frontend.config)


def frontend_instructions_per_second(cfg) -> float:
    """Frontend instructions per second of audio: the shipped model's measured
    figure, scaled by the ratio of counted float operations (an estimate)."""
    measured, cycles = _frontend_reference()
    return measured * _frontend_cycles_per_second(cfg) / cycles


def measure(candidate: Candidate, base: RunConfig, n_classes: int, rates: dict[str, float]) -> dict:
    """The device cost of ``candidate`` (weights untrained: size, arena, MACs and
    latency do not depend on them), with ``base``'s frontend otherwise."""
    from .deploy.budget import ram_budget
    from .models import build_model, count_macs, count_params
    from .tflite import convert, find_arena_size

    cfg = candidate.frontend(base.frontend)
    window = candidate.window
    frames = cfg.n_frames(int(round(window * cfg.sample_rate)))
    shape = (frames, cfg.n_features)
    model = build_model("tiny", shape, n_classes, **candidate.model_params())
    blob = convert(model, "int8", np.random.default_rng(0).standard_normal((16, *shape)).astype(np.float32))
    arena = find_arena_size(blob)
    instructions = estimate_instructions(blob, rates)
    inference_s = instructions / CLOCK_HZ
    hop_s = window / 2  # the deployed sketch infers every half window
    frontend_s = frontend_instructions_per_second(cfg) / CLOCK_HZ
    ram = ram_budget(types.SimpleNamespace(config=cfg, n_frames=frames, adaptive=base.adaptive), arena,
                     inference_s).total
    macs = count_macs(model)
    return {"params": count_params(model), "macs": macs, "macs_per_second": macs / window,
            "model_bytes": len(blob), "arena_bytes": arena, "ram_bytes": ram,
            "instructions": instructions, "latency_ms": 1e3 * inference_s,
            "frontend_ms_per_second": 1e3 * frontend_s, "real_time_factor": inference_s / hop_s + frontend_s}


# --- the search -----------------------------------------------------------------------------------

def search(base: RunConfig, out: str | os.PathLike, *, board: str = "nano33ble", limits: Limits | None = None,
           trials: int = 12, include: tuple[Candidate, ...] = HAND_GRID, seed: int = 0,
           address: str | None = None, cpus_per_trial: int = 1, grace_epochs: int = 6,
           score: Callable[[Path], float] | None = None, score_name: str = "validation UA",
           progress: bool = True) -> dict:
    """Search for the best `tiny` within ``limits`` (default: ``board``'s).

    ``include`` (the hand-written grid by default) is trained beside ``trials``
    candidates drawn from :data:`SPACE` that fit; candidates that do not fit are
    drawn too, reported and skipped. Returns (and writes to ``out/search.json``)
    every candidate with its cost, status and validation UA, the Pareto frontier
    (validation UA against latency, RAM and flash) and the chosen candidate: the
    trial that finished (was not stopped early) with the best ``score`` of its run
    folder (default: its validation UA; a recipe may weigh, say, short clips too,
    as long as it reads validation data only), exported full-int8 to ``out/best/``.

    >>> search(RunConfig(("data/emodb",), frontend={"frontend": "cmsis_mfcc"}), "runs/search")  # doctest: +SKIP
    """
    from .corpora import load_dataset
    from .progress import track

    limits = limits or board_limits(board)
    if base.frontend.name != "cmsis_mfcc":
        raise ConfigError(f"search: the frontend must be cmsis_mfcc (the device's), not {base.frontend.name}")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    # trials run in Ray workers whose working folder is not this one
    base = dataclasses.replace(base, data=tuple(str(Path(d).resolve()) for d in base.data))
    n_classes = len(load_dataset(list(base.data), corpus=base.corpus, labels=base.labels).labels)
    costs_file = out / "costs.json"
    costs: dict[str, dict] = json.loads(costs_file.read_text()) if costs_file.exists() else {}
    rates = op_rates()

    def cost(c: Candidate) -> dict:
        if c.name not in costs:
            costs[c.name] = measure(c, base, n_classes, rates)
            atomic_write(costs_file, lambda f: f.write(json.dumps(costs, indent=1).encode()))
        return costs[c.name]

    rows, fitting, drawn_fitting = [], [], 0
    pool = [(c, "grid") for c in include] + [(c, "search") for c in sample(None, seed, exclude=tuple(include))]
    for c, origin in track(pool, total=len(include) + trials, description="measuring candidates", enabled=progress):
        if origin == "search" and drawn_fitting >= trials:
            break
        problems = limits.problems(cost(c))
        row = {"name": c.name, "origin": origin, "candidate": c.to_dict(), **costs[c.name],
               "fits": not problems, "skipped": "; ".join(problems) or None}
        rows.append(row)
        if not problems:
            fitting.append(row)
            drawn_fitting += origin == "search"
    errors = _tune(base, out, [Candidate.from_dict(r["candidate"]) for r in fitting], address, cpus_per_trial,
                   grace_epochs, progress)
    for r in rows:
        r.update(trial_scores(out / "trials" / r["name"]) if r["fits"] else {})
        if r["name"] in errors and not r.get("finished"):
            r["error"] = errors[r["name"]]
    trained = [r for r in rows if r.get("val_ua") is not None]
    finished = [r for r in trained if r["finished"]]
    if not finished:
        raise TinyserError(f"{out}: no trial finished" + (f"; first error: {next(iter(errors.values()))}"
                                                          if errors else ""))
    for r in finished:
        r["score"] = float(score(out / "trials" / r["name"])) if score else r["val_ua"]
    front = pareto(trained)
    chosen = max(finished, key=lambda r: (r["score"], -r["latency_ms"]))
    for r in rows:
        r["pareto"] = r["name"] in front
    result = {"board": board, "limits": dataclasses.asdict(limits), "trials": trials, "seed": seed,
              "base": base.to_dict(), "protocol": "final (validation speakers only; no test set)",
              "grace_epochs": grace_epochs, "rows": rows, "frontier": front, "chosen": chosen["name"],
              "score": score_name,
              "exported": [str(p) for p in _export_best(out, chosen["name"])]}
    atomic_write(out / "search.json", lambda f: f.write(json.dumps(result, indent=1).encode()))
    return result


def pareto(rows: list[dict]) -> list[str]:
    """Names of the rows no other row beats on validation UA, latency, RAM and flash at once.

    >>> pareto([{"name": "a", "val_ua": .5, "latency_ms": 1, "ram_bytes": 1, "model_bytes": 1},
    ...         {"name": "b", "val_ua": .4, "latency_ms": 2, "ram_bytes": 1, "model_bytes": 1}])
    ['a']
    """
    def key(r):
        return (-r["val_ua"], r["latency_ms"], r["ram_bytes"], r["model_bytes"])

    def beats(a, b):
        ka, kb = key(a), key(b)
        return all(x <= y for x, y in zip(ka, kb)) and ka != kb

    return [r["name"] for r in rows if not any(beats(o, r) for o in rows if o is not r)]


def _result(folder: Path) -> Path:
    """A trial's finished-run marker (its fold's ``result.json``; protocol ``final`` has one fold)."""
    return folder / "fold_00" / "result.json"


def trial_scores(folder: Path) -> dict:
    """A trial's validation UA (best epoch so far), epochs run and whether it finished
    (a trial ASHA stopped keeps its checkpoint state at the epoch it stopped)."""
    result, state = _result(folder), folder / "fold_00" / "state.json"
    if result.exists():
        r = json.loads(result.read_text())
        return {"val_ua": r["val_ua"], "best_epoch": r["best_epoch"] + 1, "epochs": r["epochs_run"],
                "finished": True}
    if state.exists():
        s = json.loads(state.read_text())
        return {"val_ua": s["best_score"] if s["history"] else None, "best_epoch": s["best_epoch"] + 1,
                "epochs": s["epoch"], "finished": False}
    return {"val_ua": None, "epochs": 0, "finished": False}


def _tune(base: RunConfig, out: Path, candidates: list[Candidate], address: str | None, cpus_per_trial: int,
          grace_epochs: int, progress: bool) -> dict[str, str]:
    """Train ``candidates`` as Ray Tune trials with ASHA early stopping (resumed when ``out/tune``
    exists); returns the last line of each failed trial's error, by candidate name."""
    from ._ray import ray_init
    from .experiment import run_features
    from .extras import need

    need("ray", "tinyser search")
    todo = [c for c in candidates if not _result(out / "trials" / c.name).exists()]
    for cfg in {c.run_config(base).frontend: c.run_config(base) for c in todo}.values():
        run_features(cfg, progress)  # every frontend's features, once, before trials share the cache
    ray, started = ray_init(address or "local", None, "tinyser search")
    try:
        return _fit(base, out, candidates, cpus_per_trial, grace_epochs, progress)
    finally:
        if started:
            ray.shutdown()


def _fit(base: RunConfig, out: Path, candidates: list[Candidate], cpus_per_trial: int, grace_epochs: int,
         progress: bool) -> dict[str, str]:
    from ray import tune
    from ray.tune.schedulers import ASHAScheduler

    from .progress import Bar

    epochs = base.train.epochs
    trainable = tune.with_resources(
        tune.with_parameters(_trial, root=str(out.resolve()), base=base.to_dict(),
                             candidates={c.name: c.to_dict() for c in candidates}, cpus=cpus_per_trial),
        {"cpu": cpus_per_trial})
    # max_t one past the last epoch: ASHA must not stop a trial at its last epoch's report, before
    # the run has evaluated and saved its model
    scheduler = ASHAScheduler(time_attr="training_iteration", metric="val_ua", mode="max", max_t=epochs + 1,
                              grace_period=min(grace_epochs, epochs), reduction_factor=2)
    with Bar(len(candidates) * epochs, "search trials (epochs)", enabled=progress) as bar:
        callbacks = [_progress_callback(bar)]
        path = out.resolve() / "tune"
        names = sorted(c.name for c in candidates)
        if tune.Tuner.can_restore(str(path)) and json.loads((out / "tune-trials.json").read_text()) == names:
            tuner = tune.Tuner.restore(str(path), trainable=trainable, resume_unfinished=True, resume_errored=True)
        else:
            atomic_write(out / "tune-trials.json", lambda f: f.write(json.dumps(names).encode()))
            tuner = tune.Tuner(trainable, param_space={"candidate": tune.grid_search(names)},
                               tune_config=tune.TuneConfig(scheduler=scheduler),
                               run_config=tune.RunConfig(name="tune", storage_path=str(out.resolve()), verbose=0,
                                                         callbacks=callbacks))
        results = tuner.fit()
    errors = {}
    for r in results:
        if r.error is not None:
            errors[r.config["candidate"]] = str(r.error).strip().splitlines()[-1]
    return errors


def _progress_callback(bar):
    """A Ray Tune callback that advances a tinyser progress bar per reported epoch."""
    from ray.tune import Callback

    class Progress(Callback):
        def on_trial_result(self, iteration, trials, trial, result, **info):
            bar.advance(1, f"{trial.config['candidate']} epoch {result['training_iteration']}")

    return Progress()


def _trial(config: dict, *, root: str, base: dict, candidates: dict, cpus: int) -> None:
    """One Ray Tune trial: train a candidate in ``root/trials/NAME``, reporting the
    best validation UA so far after every epoch (replaying the epochs a previous,
    interrupted attempt already ran)."""
    os.environ.setdefault("TF_NUM_INTRAOP_THREADS", str(cpus))
    os.environ.setdefault("TF_NUM_INTEROP_THREADS", "1")
    from ray import tune

    from .experiment import run_training

    cand = Candidate.from_dict(candidates[config["candidate"]])
    cfg = cand.run_config(RunConfig.from_dict(base))
    folder = Path(root) / "trials" / cand.name
    best = -1.0

    def report(record: dict) -> None:
        nonlocal best
        if "val_ua" not in record:  # a refit's epochs: nothing validated
            return
        best = max(best, float(record["val_ua"]))
        tune.report({"val_ua": best, "epoch_val_ua": float(record["val_ua"]), "epoch": int(record["epoch"]) + 1})

    done, state = _result(folder), folder / "fold_00" / "state.json"
    if done.exists() or state.exists():
        for record in json.loads((done if done.exists() else state).read_text())["history"]:
            report(record)
    if not done.exists():
        run_training(cfg, folder, resume=(folder / "config.json").exists(), progress=False,
                     on_epoch=lambda fold, epoch, record: report(record))


def _export_best(out: Path, name: str) -> list[Path]:
    from .export import export_run

    dest = out / "best" / name
    if (dest / "tiny-int8.tflite").exists():
        return [dest / "tiny-int8.tflite"]
    return export_run(out / "trials" / name, ["int8"], out=dest)


def markdown(result: dict) -> str:
    """The search's table: every candidate with cost, status and validation UA."""
    own = result.get("score", "validation UA") != "validation UA"  # a score column of its own
    lines = ["| candidate | from | params | MACs / s | int8 model | arena | RAM | est. latency | est. RTF "
             "| val UA % | " + (f"{result['score']} % | " if own else "") + "epochs | status |",
             "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|" + ("---:|" if own else "") + "---:|---|"]
    for r in sorted(result["rows"], key=lambda r: (r.get("val_ua") is None, r.get("score") is None,
                                                   -(r.get("score") or 0), -(r.get("val_ua") or 0))):
        mark = (" **(chosen)**" if r["name"] == result["chosen"] else "") + (" (Pareto)" if r.get("pareto") else "")
        status = (f"skipped: {r['skipped']}" if not r["fits"] else "finished" if r.get("finished") else
                  f"failed: {r['error']}" if r.get("error") else f"stopped early (ASHA) at epoch {r.get('epochs', 0)}")
        val = f"{100 * r['val_ua']:.1f}" if r.get("val_ua") is not None else "–"
        if own:
            val += f" | {100 * r['score']:.1f}" if r.get("score") is not None else " | –"
        lines.append(f"| `{r['name']}`{mark} | {r['origin']} | {r['params']:,} | {r['macs_per_second'] / 1e6:.1f} M "
                     f"| {_kb(r['model_bytes'])} | {_kb(r['arena_bytes'])} | {_kb(r['ram_bytes'])} "
                     f"| {r['latency_ms']:.0f} ms | {r['real_time_factor']:.2f} | {val} "
                     f"| {r.get('epochs', '–') if r['fits'] else '–'} | {status} |")
    return "\n".join(lines)


def plot(result: dict, path: str | os.PathLike) -> None:
    """Validation UA against estimated latency, one point per trained candidate
    (marker area ~ RAM), the hand-written grid and the Pareto frontier marked."""
    from .extras import need

    need("matplotlib", "the search plot")
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [r for r in result["rows"] if r.get("val_ua") is not None]
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for origin, marker, label in (("grid", "s", "hand-written grid"), ("search", "o", "search")):
        rs = [r for r in rows if r["origin"] == origin]
        ax.scatter([r["latency_ms"] for r in rs], [100 * r["val_ua"] for r in rs], marker=marker,
                   s=[r["ram_bytes"] / 1024 for r in rs], alpha=0.6, label=label)
    front, top = [], -1.0  # the UA-vs-latency front (the table's Pareto mark also weighs RAM and flash)
    for r in sorted(rows, key=lambda r: (r["latency_ms"], -r["val_ua"])):
        if r["val_ua"] > top:
            front.append(r)
            top = r["val_ua"]
    ax.plot([r["latency_ms"] for r in front], [100 * r["val_ua"] for r in front], "k--", lw=1,
            label="best UA at this latency or less")
    best = next(r for r in rows if r["name"] == result["chosen"])
    ax.annotate("chosen", (best["latency_ms"], 100 * best["val_ua"]), textcoords="offset points", xytext=(6, 6))
    ax.set_xlabel("estimated latency per inference on a 64 MHz Cortex-M4F (ms)")
    ax.set_ylabel("validation UA (%)")
    ax.set_title(f"tinyser search: {result['board']} (marker area ~ RAM)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110)
    plt.close(fig)
    atomic_write(Path(path), lambda f: f.write(buf.getvalue()))


def load_result(out: str | os.PathLike) -> dict:
    """The ``search.json`` of a finished search."""
    path = Path(out) / "search.json"
    if not path.exists():
        raise TinyserError(f"{out}: no search.json (run tinyser search first)")
    return json.loads(path.read_text())


def chosen(out: str | os.PathLike) -> Candidate:
    """The candidate a finished search chose."""
    r = load_result(out)
    return Candidate.from_dict(next(x["candidate"] for x in r["rows"] if x["name"] == r["chosen"]))

