"""The ``tinyser`` command: a thin layer over the Python API.

Errors a user can fix are printed as one line on stderr (exit status 1),
never as a traceback.
"""
from __future__ import annotations

import dataclasses
import functools
import io
import itertools
import json
import sys
from pathlib import Path
from typing import List, Optional

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from .audio import PAD_POLICIES, SegmentConfig
from .cache import check_output
from .corpora import CORPORA
from .errors import TinyserError
from .features import FRONTENDS
from .features.adaptive import DEFAULT_GATE_DB
from .labels import SCHEMES
from .metrics import DEFAULT_BALANCE_CLIPS
from .models import MODELS
from .protocols import PROTOCOLS
from .tflite.convert import QUANT_MODES
from .training import BALANCE, LOSSES, TrainConfig

app = typer.Typer(help="Speech emotion recognition that runs on microcontrollers.",
                  no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False)
datasets_app = typer.Typer(help="Inspect emotional-speech corpora.", no_args_is_help=True)
app.add_typer(datasets_app, name="datasets")

out = Console(soft_wrap=True)
err = Console(stderr=True, soft_wrap=True)



def _default(cls, name: str):
    """A config dataclass field's default: the CLI restates none of them."""
    return next(f.default for f in dataclasses.fields(cls) if f.name == name)


_CORPUS_HELP = f"Corpus reader: auto (detected), or one of: {', '.join(CORPORA)}."
_LABELS_HELP = f"Label scheme: {', '.join(SCHEMES)}, or a JSON/YAML mapping file."
_PAD_HELP = f"Tail padding: {', '.join(PAD_POLICIES)}."
_FRONTEND_HELP = f"Feature frontend: {', '.join(sorted(FRONTENDS))}."

def _quiet_tensorflow(needed: bool = True) -> None:
    """Import TensorFlow with file descriptor 2 silenced: its C++ start-up lines
    (absl's "All log messages before absl::InitializeLog()", oneDNN's notice)
    ignore TF_CPP_MIN_LOG_LEVEL. Later imports reuse the module, quietly.
    ``needed=False``: only when it is installed (the command works without it)."""
    import importlib.util

    from .audio import quiet_stderr
    from .extras import need

    if not needed and importlib.util.find_spec("tensorflow") is None:
        return
    with quiet_stderr():
        need("tensorflow", "this command")


#: ``predict --strict``: the exit status when some inputs were skipped
EXIT_SKIPPED = 3


def friendly(fn):
    """Turn tinyser's errors into one line on stderr and exit status 1."""
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except TinyserError as e:
            err.print(f"[red]error:[/red] {escape(str(e))}", highlight=False, soft_wrap=True)
            raise typer.Exit(1) from None
        except KeyboardInterrupt:
            err.print("interrupted")
            raise typer.Exit(130) from None
        except OSError as e:  # a path the system refuses (a folder, no permission, disk full)
            where = f"{e.filename}: " if e.filename else ""
            err.print(f"[red]error:[/red] {escape(f'{where}{e.strerror or e}')}", highlight=False, soft_wrap=True)
            raise typer.Exit(1) from None
    return wrapper


@datasets_app.command("scan")
@friendly
def datasets_scan(
    path: List[Path] = typer.Argument(..., help="Corpus folder(s) or CSV manifest(s); several are combined."),
    corpus: str = typer.Option("auto", help=_CORPUS_HELP),
    labels: str = typer.Option("native", help=_LABELS_HELP),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object instead of tables."),
    decode: bool = typer.Option(True, help="Decode every file, so NaN, all-zero and undecodable audio is "
                                           "counted as skipped (--no-decode: headers only, faster)."),
):
    """Count files per class and per speaker, and list the files that cannot be used."""
    from .corpora import load_dataset

    ds = load_dataset(path, corpus=corpus, labels=labels)
    if decode:
        ds = _decoded(ds)
    summary = ds.summary()
    if as_json:
        print(json.dumps(summary, indent=2))
        return
    out.print(f"[bold]{summary['corpus']}[/bold]: {summary['n_files']} files, "
              f"{len(summary['classes'])} classes, {len(summary['speakers'])} speakers, "
              f"{summary['n_skipped']} skipped (labels: {summary.get('scheme', labels)})")
    out.print(_count_table("class", summary["classes"]))
    out.print(_count_table("speaker", summary["speakers"]))
    if summary.get("dropped"):
        out.print(_count_table("dropped by label scheme", summary["dropped"]))
    if summary["skipped"]:
        out.print(f"[bold]skipped[/bold] ({summary['n_skipped']}):")
        for s in summary["skipped"]:
            out.print(f"  {s['path']}: {s['reason']}", highlight=False, markup=False)


def _decoded(ds):
    """The dataset without the files whose samples cannot be used (moved to ``skipped``)."""
    import dataclasses

    from .audio import probe, stream
    from .corpora._common import Skipped
    from .errors import AudioError
    from .progress import track

    kept, skipped = [], list(ds.skipped)
    for r in track(ds.records, description="decode"):
        try:
            for _ in stream(r.path, probe(r.path).sample_rate):  # the file's own rate: no resampling
                pass
            kept.append(r)
        except AudioError as e:
            skipped.append(Skipped(r.path, e.reason))
    return dataclasses.replace(ds, records=kept, skipped=sorted(skipped, key=lambda s: s.path))


def _count_table(what: str, counts: dict) -> Table:
    t = Table(what, "files")
    for k, v in counts.items():
        t.add_row(str(k), str(v))
    return t


@app.command("features")
@friendly
def features_cmd(
    path: List[Path] = typer.Argument(..., help="Corpus folder(s) or CSV manifest(s)."),
    out_file: Path = typer.Option(..., "--out", "-o", help="Output .npz (features, labels, speakers)."),
    frontend: str = typer.Option("mfcc", help=_FRONTEND_HELP),
    param: List[str] = typer.Option([], "--param", "-p", help="Frontend parameter, e.g. -p n_mfcc=20."),
    corpus: str = typer.Option("auto", help=_CORPUS_HELP),
    labels: str = typer.Option("native", help=_LABELS_HELP),
    window: float = typer.Option(_default(SegmentConfig, "window"), help="Segment length in seconds."),
    hop: Optional[float] = typer.Option(None, help="Segment hop in seconds (default: the window)."),
    pad: str = typer.Option(_default(SegmentConfig, "pad"), help=_PAD_HELP),
    cache: bool = typer.Option(True, help="Reuse and store per-file features in the cache."),
    cache_dir: Optional[Path] = typer.Option(None, help="Cache folder (default $TINYSER_CACHE or ~/.cache/tinyser)."),
    force: bool = typer.Option(False, "--force", help="Overwrite --out if it exists."),
):
    """Compute features for every file of a corpus and save them with labels and speakers."""
    from .audio import SegmentConfig
    from .corpora import load_dataset
    from .features import extract, get_config

    check_output(out_file, force)
    cfg = get_config(frontend, **_parse_params(param))
    ds = load_dataset(path, corpus=corpus, labels=labels)
    fs = extract(ds.records, cfg, SegmentConfig(window, hop, pad), classes=ds.labels,
                 cache_dir=cache_dir, use_cache=cache, progress=True)
    fs.save(out_file)
    for f in ds.skipped + fs.failed:
        err.print(f"skipped {f.path}: {f.reason}", highlight=False, soft_wrap=True)
    out.print(f"{out_file}: {fs.features.shape[0]} segments from {len(fs.clip_ids)} files, "
              f"features {tuple(fs.features.shape[1:])}, {len(fs.classes)} classes; "
              f"{len(ds.skipped) + len(fs.failed)} files skipped", highlight=False)


@app.command("train")
@friendly
def train_cmd(
    out_dir: Path = typer.Option(..., "--out", "-o", help="Run folder (must be new, unless --resume)."),
    data: List[Path] = typer.Option([], "--data", "-d", help="Corpus folder or CSV manifest; repeat to combine."),
    model: str = typer.Option("tiny", help=f"Model: {', '.join(MODELS)}."),
    model_param: List[str] = typer.Option([], "--model-param", "-m", help="Model parameter, e.g. -m width=2."),
    frontend: str = typer.Option("mfcc", help=_FRONTEND_HELP),
    param: List[str] = typer.Option([], "--param", "-p", help="Frontend parameter, e.g. -p n_mfcc=20."),
    labels: str = typer.Option("native", help=_LABELS_HELP),
    corpus: str = typer.Option("auto", help=_CORPUS_HELP),
    cv: str = typer.Option("speaker:5", help=f"Protocol: {', '.join(PROTOCOLS)} (corpus: leave one corpus "
                          "out; final: train the model to ship, no test part)."),
    epochs: int = typer.Option(_default(TrainConfig, "epochs"), help="Maximum epochs per fold."),
    patience: int = typer.Option(_default(TrainConfig, "patience"),
                                 help="Stop after this many epochs without a better validation UA."),
    batch_size: int = typer.Option(_default(TrainConfig, "batch_size")),
    lr: float = typer.Option(_default(TrainConfig, "learning_rate"),
                             help="Adam learning rate (cosine decay over --epochs)."),
    loss: str = typer.Option(_default(TrainConfig, "loss"), help=f"Loss: {', '.join(LOSSES)}."),
    gamma: float = typer.Option(_default(TrainConfig, "focal_gamma"), help="Focal loss gamma."),
    augment: bool = typer.Option(False, help="On-the-fly waveform augmentation (noise, stretch, pitch, shift, gain)."),
    window: float = typer.Option(_default(SegmentConfig, "window"), help="Segment length in seconds."),
    pad: str = typer.Option(_default(SegmentConfig, "pad"), help=_PAD_HELP),
    seed: int = typer.Option(_default(TrainConfig, "seed")),
    adaptive: float = typer.Option(0.0, help="Adaptive standardisation: time constant in seconds of voiced audio "
                                   "(0: fixed training statistics)."),
    gate_db: float = typer.Option(DEFAULT_GATE_DB,
                                  help="Frames at least as loud as white noise at this level (dBFS) update the "
                                  "adaptive statistics and, with --tile, bound a window's sound (speech has a lower "
                                  "c0 than white noise of its level: -70 keeps speech down to about -60 dBFS)."),
    tile: bool = typer.Option(False, "--tile", help="Tiled padding: each window's sound (first to last frame "
                              "at least --gate-db loud) repeated to fill it, in training, predict, listen and "
                              "on the device, instead of silence around short utterances."),
    train_param: List[str] = typer.Option([], "--train-param", "-t", help="Any training setting of "
                                          f"tinyser.training.TrainConfig, e.g. -t balance={BALANCE[-1]} -t crop=0.5 "
                                          "-t mixup=0.2 -t label_smoothing=0.1 -t augment_copies=3."),
    train_only: List[str] = typer.Option([], "--train-only", help="A corpus (its name in speaker ids, e.g. tess) "
                                         "whose clips train in every fold and are never validated or tested on; "
                                         "repeat for more. Classes only these corpora have are dropped."),
    speaker_balanced: bool = typer.Option(False, "--speaker-balanced", help="Choose the epoch and score the test "
                                          "with each speaker's predictions balanced over the classes (assumes a "
                                          "speaker's clips cover the emotions evenly, as in acted corpora; an "
                                          "evaluation, not what predict does)."),
    running_balance: Optional[float] = typer.Option(None, "--running-balance", metavar="CLIPS", help="The same, "
                                                    "causally: each clip balanced by the running mean of its "
                                                    "speaker's clips heard before it, with this time constant in "
                                                    f"clips (e.g. {DEFAULT_BALANCE_CLIPS:g})."),
    resume: bool = typer.Option(False, "--resume", help="Continue an interrupted run in --out."),
):
    """Train and evaluate a model with cross-validation; writes report.json, report.md and plots."""
    from .experiment import RunConfig, run_training
    from .features import get_config
    from .training import TrainConfig

    _quiet_tensorflow()
    cfg = None
    if not resume:
        if not data:
            raise TinyserError("give at least one --data PATH")
        aug = None
        if augment:
            from .augment import AugmentConfig
            aug = AugmentConfig()
        train = TrainConfig(**{"epochs": epochs, "batch_size": batch_size, "learning_rate": lr, "loss": loss,
                               "focal_gamma": gamma, "patience": patience, "seed": seed, "augment": aug,
                               **_parse_params(train_param)})
        cfg = RunConfig(tuple(str(d) for d in data), model=model, model_params=_parse_params(model_param),
                        frontend=get_config(frontend, **_parse_params(param)),
                        segments=SegmentConfig(window=window, pad=pad), labels=labels, corpus=corpus,
                        protocol=cv, train=train,
                        adaptive={"time_constant": adaptive, "gate_db": gate_db} if adaptive else None,
                        tile={"gate_db": gate_db} if tile else None, train_only=train_only,
                        speaker_balanced=speaker_balanced, running_balance=running_balance)
    report = run_training(cfg, out_dir, resume=resume)
    _print_report(report)
    out.print(f"report: {out_dir / 'report.md'}", highlight=False)


@app.command("search")
@friendly
def search_cmd(
    out_dir: Path = typer.Option(..., "--out", "-o", help="Search folder (continued when it exists)."),
    data: List[Path] = typer.Option([], "--data", "-d", help="Corpus folder or CSV manifest; repeat to combine."),
    recipe: Optional[Path] = typer.Option(None, help="Base recipe: a run folder or its config.json (its data, "
                                                     "labels, training and normalisation settings)."),
    labels: str = typer.Option("common6", help=_LABELS_HELP),
    board: str = typer.Option("nano33ble", help="Board whose limits candidates must fit (an unknown name lists "
                                                "the boards)."),
    arena_kb: Optional[float] = typer.Option(None, "--arena-kb", help="Override the board's arena limit (KB)."),
    flash_kb: Optional[float] = typer.Option(None, "--flash-kb", help="Override the board's model-size limit (KB)."),
    ram_kb: Optional[float] = typer.Option(None, "--ram-kb", help="Override the board's RAM limit (KB)."),
    rtf: Optional[float] = typer.Option(None, "--rtf", help="Override the board's real-time-factor limit."),
    trials: int = typer.Option(12, help="Candidates drawn from the space that fit, trained beside the "
                                         "hand-written grid."),
    no_grid: bool = typer.Option(False, "--no-grid", help="Do not train the hand-written grid."),
    epochs: int = typer.Option(_default(TrainConfig, "epochs"), help="Maximum epochs per trial (no --recipe)."),
    seed: int = typer.Option(0, help="Seed of the random draw of candidates."),
    address: Optional[str] = typer.Option(None, help="Ray cluster address (default: a local Ray on this "
                                                     "machine's cores)."),
    cpus_per_trial: int = typer.Option(1, help="CPU cores per trial."),
):
    """Hardware-aware search: the best `tiny` that fits a board, trained with Ray Tune (ASHA) on validation UA."""
    from .experiment import RunConfig
    from .search import HAND_GRID, board_limits, markdown, plot, search

    _quiet_tensorflow()
    if recipe is not None:
        path = recipe / "config.json" if recipe.is_dir() else recipe
        try:
            base = RunConfig.from_dict(json.loads(path.read_text()))
        except (OSError, ValueError, TypeError, KeyError) as e:
            raise TinyserError(f"{path}: not a tinyser run configuration ({e})") from None
        if data:
            base = dataclasses.replace(base, data=tuple(str(d) for d in data))
    elif not data:
        raise TinyserError("give at least one --data PATH (or --recipe RUN)")
    else:
        from .features import get_config

        base = RunConfig(tuple(str(d) for d in data), frontend=get_config("cmsis_mfcc"), labels=labels,
                         train=TrainConfig(epochs=epochs))
    limits = board_limits(board, arena_bytes=arena_kb and int(arena_kb * 1024),
                          model_bytes=flash_kb and int(flash_kb * 1024), ram_bytes=ram_kb and int(ram_kb * 1024),
                          real_time_factor=rtf)
    result = search(base, out_dir, board=board, limits=limits, trials=trials, include=() if no_grid else HAND_GRID,
                    seed=seed, address=address, cpus_per_trial=cpus_per_trial)
    md = markdown(result)
    from .cache import atomic_write

    atomic_write(out_dir / "search.md", lambda f: f.write((md + "\n").encode()))
    try:
        plot(result, out_dir / "frontier.png")
    except TinyserError as e:  # no matplotlib: the table is enough
        err.print(f"no plot: {e}", highlight=False)
    out.print(md, highlight=False)
    out.print(f"chosen: {result['chosen']} -> {result['exported'][0]}; table {out_dir / 'search.md'}", highlight=False)


@app.command("evaluate")
@friendly
def evaluate_cmd(run_dir: Path = typer.Argument(..., help="A finished run folder.")):
    """Print a run's scores: UA, WA, macro-F1 per fold and mean ± std."""
    from .experiment import load_report

    _print_report(load_report(run_dir))


@app.command("export")
@friendly
def export_cmd(
    run_dir: Path = typer.Argument(..., help="A finished run folder."),
    quant: str = typer.Option(",".join(QUANT_MODES), help=f"Comma-separated: {', '.join(QUANT_MODES)}."),
    fold: int = typer.Option(0, help="Which fold's model to export."),
    out_dir: Optional[Path] = typer.Option(None, "--out", "-o", help="Output folder (default RUN_DIR/export/fold_NN)."),
    force: bool = typer.Option(False, "--force", help="Overwrite existing files."),
    onnx: bool = typer.Option(True, help="Also write the float model as ONNX (checked with onnxruntime)."),
):
    """Export a trained model as self-describing .tflite files (+ C arrays for int8, + ONNX)."""
    from .export import export_run

    _quiet_tensorflow()
    quants = [q.strip() for q in quant.split(",") if q.strip()]
    for path in export_run(run_dir, quants, fold, out_dir, force, onnx=onnx):
        out.print(f"wrote {path} ({path.stat().st_size:,} bytes)", highlight=False)


@app.command("info")
@friendly
def info_cmd(model: Path = typer.Argument(..., help="A .tflite exported by tinyser, or 'default'.")):
    """Show what a model expects and was trained on: labels, frontend, input quantisation."""
    from .inference import model_path
    from .tflite import read_model

    model = model_path(model)
    blob, m = read_model(model)
    version = m.tinyser + (f" (checksum sha256 {m.sha256[:12]}… verified)" if m.sha256 else "")
    fe = {k: v for k, v in m.frontend.config.to_dict().items() if k != "frontend"}
    if m.frontend.adaptive is not None:
        fe["adaptive"] = m.frontend.adaptive.to_dict()
    if m.frontend.tile is not None:
        fe["tile"] = m.frontend.tile.to_dict()
    t, seg = m.training, m.segments
    rows = [("model", f"{m.model} {m.model_params or ''}".strip()),
            ("quantization", m.quantization), ("size", f"{len(blob):,} bytes"),
            ("labels", ", ".join(m.labels)),
            ("frontend", f"{m.frontend.config.name} " + ", ".join(f"{k}={v}" for k, v in fe.items())),
            ("standardisation", "per-coefficient mean/std of the training data"
             if m.frontend.standardizer is not None else "none"),
            ("windows", f"{seg.window} s, every {seg.window / 2:g} s in predict and listen "
                        f"(--hop); training cut clips every {seg.hop or seg.window} s"),
            ("input", f"{list(m.input.shape)} {m.input.dtype} scale={m.input.scale:.6g} "
                      f"zero_point={m.input.zero_point}"),
            ("output", f"{list(m.output.shape)} {m.output.dtype}"),
            ("MACs / params", f"{m.macs or 0:,} / {m.params or 0:,}"),
            ("trained on", f"{', '.join(t.data)} ({t.label_scheme}), protocol {t.protocol}, fold {t.fold}"),
            ("fold test scores" if t.protocol != "final" else "validation scores (optimistic)",
             ", ".join(f"{k.upper()} {100 * v:.1f}" for k, v in t.fold_scores.items())),
            ("tinyser", version)]
    if m.evaluation is not None:  # the cross-validated scores a shipped model carries
        ev = m.evaluation
        rows.insert(-1, ("evaluation", f"UA {100 * ev.ua:.1f} ± {100 * ev.ua_std:.1f}, "
                                       f"WA {100 * ev.wa:.1f}, F1 {100 * ev.f1:.1f}: {ev.protocol}"))
    table = Table(show_header=False, title=str(model))
    for k, v in rows:
        table.add_row(k, str(v))
    out.print(table)


@app.command("benchmark")
@friendly
def benchmark_cmd(
    targets: List[Path] = typer.Argument(..., help="Run folder(s), or exported .tflite files (with --data)."),
    data: List[Path] = typer.Option([], "--data", "-d", help="Corpus to score loose .tflite files on."),
    fold: int = typer.Option(0, help="For run folders: which fold's model (scored on that fold's test clips)."),
):
    """Compare float32 / float16 / dynamic / full-int8: size, UA/WA/F1, agreement, latency, TFLite Micro arena."""
    from .benchmark import benchmark_files, benchmark_run, markdown, write_benchmark
    from .experiment import default_export_dir
    from .tflite import read_model

    _quiet_tensorflow()

    runs, files = [t for t in targets if t.is_dir()], [t for t in targets if not t.is_dir()]
    if files and not data:
        raise TinyserError(f"{files[0]}: scoring .tflite files needs --data PATH (or give the run folder)")
    for f in files:  # a damaged model is refused before any feature is computed
        read_model(f)
    results = [(benchmark_run(r, fold), default_export_dir(r, fold)) for r in runs]
    if files:
        results.append((benchmark_files(files, data), files[0].parent))
    for result, folder in results:
        json_path, md_path = write_benchmark(result, folder)
        out.print(markdown(result), highlight=False)
        out.print(f"wrote {json_path} and {md_path}", highlight=False)


MODEL_HELP = "A .tflite exported by tinyser, or 'default' (the shipped model)."


@app.command("predict")
@friendly
def predict_cmd(
    paths: List[Path] = typer.Argument(..., help="Audio files or folders (searched recursively)."),
    model: str = typer.Option("default", "--model", "-m", help=MODEL_HELP),
    as_json: bool = typer.Option(False, "--json", help="Write JSON: per file label, probabilities, windows."),
    as_csv: bool = typer.Option(False, "--csv", help="Write CSV: a file row, then a row per window."),
    window: Optional[float] = typer.Option(None, help="Window in seconds: the model's input length (default); "
                                                      "shorter only with --allow-short-window."),
    hop: Optional[float] = typer.Option(None, help="Hop in seconds, from one feature frame to the window "
                                                   "(default: half a window)."),
    allow_short: bool = typer.Option(False, "--allow-short-window",
                                     help="Accept a --window shorter than the model's input (zero-padded)."),
    one_stream: bool = typer.Option(False, "--one-stream", help="Adaptive models: carry the running standardisation "
                                    "from file to file in the order listed (folders sorted), as a device that keeps "
                                    "listening does; for files of one speaker or one microphone. Default: each file "
                                    "starts afresh from the training statistics."),
    balance: bool = typer.Option(False, "--balance", help="Balance each file's label and probabilities over the "
                                 "classes by the files listed before it (a running mean, time constant "
                                 f"{DEFAULT_BALANCE_CLIPS:g} files): for many files of one speaker who voices the "
                                 "emotions about evenly; a mostly neutral speaker would be pushed away from neutral. "
                                 "JSON keeps the model's own as model_probabilities; windows are not balanced."),
    out_file: Optional[Path] = typer.Option(None, "--out", "-o", help="Write the JSON/CSV/table here, not stdout; "
                                            "a .jsonl or .parquet file: one row per file, written as files finish "
                                            "and resumed by the same command (archive mode)."),
    plot_dir: Optional[Path] = typer.Option(None, "--plot", help="Also save one PNG per file in this folder."),
    force: bool = typer.Option(False, "--force", help="Overwrite --out / plot files that exist (regular files only); "
                                                      "archive mode: start over instead of resuming."),
    strict: bool = typer.Option(False, "--strict", help=f"Exit with status {EXIT_SKIPPED} when any input was "
                                                        "skipped (without it: 0 if at least one file was predicted)."),
    workers: Optional[int] = typer.Option(None, "--workers", min=1, help="Archive mode: processes on this machine "
                                          "(default 1), or Ray workers with --address (default: the cluster's CPUs)."),
    address: Optional[str] = typer.Option(None, "--address", help="Archive mode on Ray (the scale extra): 'local' (a "
                                          "Ray started here), 'auto' (the cluster this machine belongs to), "
                                          "HOST:PORT or ray://HOST:PORT."),
):
    """Recognise the emotion in recordings of any length, rate, channel count and format.

    Exit status: 0 done; 1 an error, or no file could be predicted; 3 with --strict, some inputs skipped.
    """
    from .archive import is_archive_output
    from .inference import audio_inputs, load_model, predict_files, to_csv

    if is_archive_output(out_file):
        if as_json or as_csv or plot_dir is not None:
            raise TinyserError(f"--out {out_file.name} writes one row per file; --json, --csv and --plot do not "
                               "apply (use another --out for them)")
        if one_stream or balance:
            raise TinyserError(f"--out {out_file.name} scores files independently (in parallel, resumable); "
                               f"{'--one-stream' if one_stream else '--balance'} needs them in order: use --json, "
                               "--csv or a table")
        return _predict_archive(paths, model, out_file, window, hop, allow_short, force, strict, workers, address)
    if workers is not None or address is not None:
        raise TinyserError("--workers and --address need --out FILE.jsonl or FILE.parquet (archive mode)")
    if as_json and as_csv:
        raise TinyserError("choose one of --json and --csv")
    check_output(out_file, force)
    m = load_model(model)
    if one_stream and m.adaptive_state() is None:
        err.print(f"note: --one-stream changes nothing for {model}: it standardises with fixed statistics, so "
                  "every file is scored alike", highlight=False, soft_wrap=True, markup=False)
    timeline = as_json or as_csv or plot_dir is not None or len(audio_inputs(paths)[0]) <= 1
    result = predict_files(m, paths, window, hop, progress=True, allow_short=allow_short, timeline=timeline,
                           one_stream=one_stream, balance=DEFAULT_BALANCE_CLIPS if balance else None)
    for f in result["failed"]:
        err.print(f"skipped {f['path']}: {f['reason']}", highlight=False, soft_wrap=True, markup=False)
    for r in result["results"]:
        for w in r.get("warnings", []):
            err.print(f"[yellow]warning:[/yellow] {r['path']}: {w}", highlight=False, soft_wrap=True)
    if as_json:
        _emit(json.dumps(result, indent=1) + "\n", out_file)
    elif as_csv:
        _emit(to_csv(result), out_file)
    elif result["results"]:  # no empty table: the reasons above say why nothing was predicted
        _emit(_predict_table(result), out_file)
    if plot_dir is not None:
        _plot_all(m, result["results"], plot_dir, force)
    if result["failed"]:
        err.print(f"{len(result['results'])} files predicted, {len(result['failed'])} skipped", highlight=False)
    if not result["results"]:
        raise typer.Exit(1)
    if strict and result["failed"]:
        raise typer.Exit(EXIT_SKIPPED)


def _predict_archive(paths, model, out_file, window, hop, allow_short, force, strict, workers, address) -> None:
    """``predict --out X.jsonl|X.parquet``: one row per file, resumable, on processes or Ray."""
    from .archive import predict_archive, summary_line
    from .inference import load_model

    m = load_model(model)
    s = predict_archive(m, paths, out_file, workers=workers, address=address, window=window, hop=hop,
                        allow_short=allow_short, progress=True, restart=force)
    err.print(summary_line(s), highlight=False, markup=False)
    err.print(f"wrote {out_file}", highlight=False, markup=False)
    if s["rows"] == s["bad_rows"]:  # nothing in the output could be predicted
        raise typer.Exit(1)
    if strict and s["bad_rows"]:
        raise typer.Exit(EXIT_SKIPPED)


def _predict_table(result: dict) -> str:
    t = Table("file", "label", "confidence", "voiced windows", "duration", title=f"model: {result['model']}")
    for r in result["results"]:
        n = r.get("n_windows", len(r["windows"]))
        label = r["label"] if r["label"] is not None else f"- ({r.get('reason', 'no label')})"
        t.add_row(r["path"], label + (" (!)" if r.get("warnings") else ""),
                  "-" if r["confidence"] is None else f"{r['confidence']:.2f}",
                  f"{r['voiced_windows']}/{n}", f"{r['duration']:.1f} s")
    c = Console(width=140, record=True, file=io.StringIO())
    c.print(t)
    if len(result["results"]) == 1:  # one file: its timeline too
        from .live import format_row

        for w in result["results"][0]["windows"]:
            c.print(format_row(w), highlight=False)
    return c.export_text()


def _check_new(path: Optional[Path], force: bool) -> None:

    check_output(path, force)


def _emit(text: str, path: Optional[Path]) -> None:
    if path is None:
        sys.stdout.write(text)
        return
    from .cache import atomic_write

    atomic_write(path, lambda f: f.write(text.encode()))
    err.print(f"wrote {path}", highlight=False)


def _plot_all(m, results: list, folder: Path, force: bool) -> None:
    from .plot import plot_file

    if folder.exists() and not folder.is_dir():
        raise TinyserError(f"{folder}: --plot needs a folder, and this is a file")
    folder.mkdir(parents=True, exist_ok=True)
    used: set[str] = set()
    for r in results:
        stem = Path(r["path"]).stem
        name = next(n for n in (stem if k == 1 else f"{stem}-{k}" for k in itertools.count(1)) if n not in used)
        used.add(name)  # a/x.wav and b/x.wav become x.png and x-2.png
        png = folder / f"{name}.png"
        if (png.exists() or png.is_symlink()) and not force:
            err.print(f"kept {png} (exists; --force overwrites)", highlight=False)
            continue
        try:
            plot_file(r["path"], m.sample_rate, r, png,
                      title=f"{r['path']}: {r['label'] if r['label'] is not None else r.get('reason', 'no label')}")
        except TinyserError as e:  # one plot that cannot be written does not stop the others
            err.print(f"[red]error:[/red] {escape(str(e))}", highlight=False, soft_wrap=True)
            continue
        err.print(f"wrote {png}", highlight=False)


@app.command("plot")
@friendly
def plot_cmd(
    path: Path = typer.Argument(..., help="An audio file."),
    model: str = typer.Option("default", "--model", "-m", help=MODEL_HELP),
    out_png: Optional[Path] = typer.Option(None, "--out", "-o", help="PNG to write (default: FILE's name .png here)."),
    window: Optional[float] = typer.Option(None, help="Window in seconds (default: the model's)."),
    hop: Optional[float] = typer.Option(None, help="Hop in seconds (default: half a window)."),
    allow_short: bool = typer.Option(False, "--allow-short-window",
                                     help="Accept a --window shorter than the model's input (zero-padded)."),
    force: bool = typer.Option(False, "--force", help="Overwrite the PNG if it exists (regular files only)."),
):
    """Waveform, spectrogram and emotion timeline of one recording in one picture."""
    from .inference import load_model
    from .plot import plot_file

    out_png = out_png or Path(path.stem + ".png")
    _check_new(out_png, force)
    m = load_model(model)
    r = m.predict_file(path, window, hop, allow_short=allow_short)  # streamed: any length in bounded memory
    for w in r["warnings"]:
        err.print(f"[yellow]warning:[/yellow] {path}: {w}", highlight=False, soft_wrap=True)
    verdict = f"{r['label']} ({r['confidence']:.2f})" if r["label"] is not None else r.get("reason", "no label")
    plot_file(path, m.sample_rate, r, out_png, title=f"{path}: {verdict}")
    out.print(f"wrote {out_png}: {verdict}", highlight=False)


@app.command("listen")
@friendly
def listen_cmd(
    model: str = typer.Option("default", "--model", "-m", help=MODEL_HELP),
    device: Optional[str] = typer.Option(None, help="Input device number or name (default: the system's)."),
    input_file: Optional[Path] = typer.Option(None, "--input", "-i",
                                              help="Stream this file through the live path instead of a microphone."),
    realtime: bool = typer.Option(False, "--realtime", help="With --input: play it at real-time speed."),
    window: Optional[float] = typer.Option(None, help="Window in seconds (default: the model's)."),
    hop: Optional[float] = typer.Option(None, help="Hop in seconds (default: half a window)."),
    log: Optional[Path] = typer.Option(None, help="Append one JSON line per window to this file."),
    seconds: Optional[float] = typer.Option(None, help="Stop after this many seconds of audio."),
    allow_short: bool = typer.Option(False, "--allow-short-window",
                                     help="Accept a --window shorter than the model's input (zero-padded)."),
):
    """Live emotion recognition from the microphone: one line per hop with label and confidence."""
    import math

    from .inference import check_window_hop, load_model
    from .live import check_microphone, format_row, listen, log_path_ok

    if seconds is not None and not (math.isfinite(seconds) and seconds > 0):
        raise TinyserError(f"--seconds must be a positive number of seconds, not {seconds:g}")
    log_path_ok(log)
    m = load_model(model)
    check_window_hop(m, window, hop, allow_short)
    dev = int(device) if device is not None and device.isdigit() else device
    if input_file is None:
        check_microphone()  # no [live] extra or no PortAudio: one line, before "listening"
        err.print("listening… Ctrl-C stops", highlight=False)
    listen(m, input=input_file, device=dev, window=window, hop=hop, realtime=realtime, log=log, seconds=seconds,
           allow_short=allow_short, keep=False,
           on_window=lambda row: out.print(format_row(row), highlight=False),
           on_warning=lambda text: err.print(f"[yellow]warning:[/yellow] {text}", highlight=False))


@app.command("serve")
@friendly
def serve_cmd(
    model: str = typer.Option("default", "--model", "-m", help=MODEL_HELP),
    host: str = typer.Option("127.0.0.1", help="Address to listen on (any but 127.0.0.1 lets other machines "
                                                "in, and there is no authentication)."),
    port: int = typer.Option(8000, help="TCP port."),
    max_upload_mb: float = typer.Option(64.0, "--max-upload-mb", help="Largest upload (MiB)."),
    max_seconds: float = typer.Option(1200.0, "--max-seconds", help="Longest upload (seconds of audio)."),
    max_streams: int = typer.Option(4, "--max-streams", help="Live streams at once."),
):
    """A local web page and HTTP API: record or drop audio in a browser, watch the emotion timeline live."""
    from .web.core import Limits

    if not (max_upload_mb > 0 and max_seconds > 0 and max_streams > 0):
        raise TinyserError("--max-upload-mb, --max-seconds and --max-streams must be positive")
    from .extras import need
    from .inference import load_model
    from .web.server import serve

    for module in ("starlette", "uvicorn"):  # a missing [web] extra: one line, before "open http://…"
        need(module, "tinyser serve")
    if not 0 < port < 65536:
        raise TinyserError(f"--port must be 1-65535, not {port}")
    m = load_model(model)  # a bad model: one line, before "open http://…"
    limits = Limits(max_bytes=int(max_upload_mb * 2**20), max_seconds=max_seconds, max_streams=max_streams)
    err.print(f"tinyser serve: open http://{'[' + host + ']' if ':' in host else host}:{port}/ (Ctrl-C stops)",
              highlight=False)
    serve(m, host, port, limits,
          warn=lambda text: err.print(f"[yellow]warning:[/yellow] {escape(text)}", highlight=False))


deploy_app = typer.Typer(help="Generate code that runs a model on a microcontroller.", no_args_is_help=True)
app.add_typer(deploy_app, name="deploy")


@deploy_app.command("arduino")
@friendly
def deploy_arduino_cmd(
    model: str = typer.Argument("default", help="A full-int8 .tflite on the cmsis_mfcc frontend exported by "
                                                 "tinyser, or 'default' (the shipped model)."),
    board: str = typer.Option("nano33ble", help="nano33ble (an Arduino sketch folder) or generic (a C/C++ library)."),
    out_dir: Path = typer.Option(..., "--out", "-o", help="Output folder (for nano33ble, the sketch's name)."),
    hop: Optional[float] = typer.Option(None, help="Seconds between inferences (default: half the model's window)."),
    force: bool = typer.Option(False, "--force", help="Write into an existing non-empty folder."),
):
    """Write the C frontend, TFLite Micro runtime and sketch or library for a model, with its memory budget."""
    from .deploy import budget, budget_markdown, deploy_arduino, load_target
    from .inference import model_path
    from .tflite import read_model

    _quiet_tensorflow(needed=False)  # code generation needs no TensorFlow
    model = model_path(model)
    _, meta = read_model(model)  # what predict cannot load is not deployed either
    if hop is not None:
        try:
            load_target(model).hop_frames(hop)  # the one hop rule (inference.check_hop)
        except TinyserError as e:  # name the option, as the other CLI errors do
            raise TinyserError(f"--hop: {e}") from None
    b = budget(model, board=board, hop=hop)
    if b.fits is False:
        out.print(budget_markdown(b), highlight=False)
        raise TinyserError(f"{model}: does not fit the {board} board (see the budget above); nothing written. "
                           "Try a longer --hop, a smaller model or --board generic")
    for path in deploy_arduino(model, out_dir, board=board, hop=hop, overwrite=force):
        out.print(f"wrote {path}", highlight=False)
    out.print(budget_markdown(b), highlight=False)



TFLM_HELP = ("TensorFlow Lite Micro sources laid out as ../shared/third_party (tflite-micro/, cmsis_nn/, "
             "flatbuffers/, gemmlowp/, ruy/, cmsis/); default: $TINYSER_THIRD_PARTY.")


@deploy_app.command("firmware")
@friendly
def deploy_firmware_cmd(
    model: str = typer.Argument("default", help="A full-int8 .tflite on the cmsis_mfcc frontend, or 'default'."),
    out_dir: Path = typer.Option(..., "--out", "-o", help="Output folder (the project, its build/ and run/)."),
    tflm: Optional[Path] = typer.Option(None, "--tflm", help=TFLM_HELP),
    board: str = typer.Option("nano33ble", help="nano33ble (link within its 1 MB flash and 256 KB RAM) or none "
                                                "(the emulator's memory: to measure a model that does not fit)."),
    opt: str = typer.Option("-O2", help="Optimisation: -O2 (speed) or -Os (size)."),
    jobs: int = typer.Option(2, help="Parallel compiler jobs."),
    hop: Optional[float] = typer.Option(None, help="Seconds between inferences (default: half the model's window)."),
    force: bool = typer.Option(False, "--force", help="Write into an existing non-empty folder."),
    allow_arduino: bool = typer.Option(False, "--allow-arduino", help="Accept the Arduino_TensorFlowLite library "
                                                                       "(known to compute other scores)."),
    cmsis_dsp: bool = typer.Option(False, "--cmsis-dsp", help="Frontend on CMSIS-DSP's arm_mfcc_f32 "
                                                              "(TINYSER_USE_CMSIS_DSP; sources from cmsis_dsp/)."),
):
    """Build a Cortex-M4F firmware (C frontend, runtime, model, TFLite Micro + CMSIS-NN) for QEMU mps2-an386."""
    from .deploy.firmware import build_firmware, footprint

    fw = build_firmware(model, out_dir, tflm=tflm, board=None if board == "none" else board, opt=opt, jobs=jobs,
                        hop=hop, overwrite=force, allow_arduino=allow_arduino, cmsis_dsp=cmsis_dsp,
                        log=lambda s: err.print(s, highlight=False))
    fp = footprint(fw.map)
    out.print(f"wrote {fw.elf} ({fw.tree.flavour} TFLite Micro {fw.tree.version}; library {fw.library})",
              highlight=False)
    out.print("flash by component: " + ", ".join(f"{k} {v:,}" for k, v in fp["flash"].items()), highlight=False)
    out.print("RAM by component: " + ", ".join(f"{k} {v:,}" for k, v in fp["ram"].items()), highlight=False)


@deploy_app.command("verify")
@friendly
def deploy_verify_cmd(
    model: str = typer.Argument("default", help="A full-int8 .tflite on the cmsis_mfcc frontend, or 'default'."),
    clip: Optional[list[Path]] = typer.Option(None, "--clip", help="An audio file (repeatable; default: --clips "
                                                                   "files spread over the corpora in --data)."),
    clips: int = typer.Option(30, "--clips", help="How many clips when no --clip is given."),
    data: Optional[Path] = typer.Option(None, help="Corpora folder (default: $TINYSER_DATA or ../shared/data)."),
    tflm: Optional[Path] = typer.Option(None, "--tflm", help=TFLM_HELP),
    out_dir: Optional[Path] = typer.Option(None, "--out", "-o", help="Firmware folder (default: a temporary one)."),
    opt: str = typer.Option("-O2", help="Optimisation: -O2 (speed) or -Os (size)."),
    jobs: int = typer.Option(2, help="Parallel compiler jobs."),
    json_out: Optional[Path] = typer.Option(None, "--json", help="Also write the full report as JSON here."),
    allow_arduino: bool = typer.Option(False, "--allow-arduino", help="Accept the Arduino_TensorFlowLite library "
                                                                       "(known to compute other scores)."),
    cmsis_dsp: bool = typer.Option(False, "--cmsis-dsp", help="Frontend on CMSIS-DSP's arm_mfcc_f32 "
                                                              "(TINYSER_USE_CMSIS_DSP; sources from cmsis_dsp/)."),
):
    """Run the firmware in QEMU on real clips: outputs vs the host bit for bit, footprint, instructions,
    real-time factor."""
    import json

    from .deploy.firmware import save_measurement, verify, verify_markdown

    _quiet_tensorflow()
    r = verify(model, clips=clip or None, n_clips=clips, data=data, tflm=tflm, out=out_dir, opt=opt, jobs=jobs,
               allow_arduino=allow_arduino, cmsis_dsp=cmsis_dsp, log=lambda s: err.print(s, highlight=False))
    if r["tflm"]["flavour"] == "upstream":
        save_measurement(r)
    if json_out is not None:
        _emit(json.dumps(r, indent=1) + "\n", json_out)
    out.print(verify_markdown(r), highlight=False)
    p = r["pipeline"]
    out.print(f"outputs equal {p['equal']}/{p['inferences']}", highlight=False)
    if p["equal"] != p["inferences"] or r["model_parity"]["equal"] != r["model_parity"]["inputs"]:
        raise TinyserError(f"{model}: the device's outputs differ from the host's on "
                           f"{p['inferences'] - p['equal']} of {p['inferences']} inferences")

def _print_report(r: dict) -> None:
    p = r["protocol"]
    kind = ("final model: scores on its validation speakers, optimistic" if "scores_on" in p else
            "speaker-independent" if p["speaker_independent"] else "random clips (speakers shared)")
    t = Table("fold", "test speakers", "UA", "WA", "F1", "best epoch",
              title=f"{r['model']} · {', '.join(r['data'])} · {p['name']} ({kind})")
    one_corpus = len(r["data"]) == 1  # then "emodb:03" reads better as "03"
    for f in r["folds"]:
        ids = [s.split(":", 1)[-1] if one_corpus else s for s in f["speakers"]["test"]]
        spk = ",".join(ids) if p["speaker_independent"] else "-"
        t.add_row(str(f["fold"]), spk, *(f"{100 * f[k]:.1f}" for k in ("ua", "wa", "f1")), str(f["best_epoch"] + 1))
    t.add_row("mean ± std", "", *(f"{100 * r[k]:.1f} ± {100 * r[k + '_std']:.1f}" for k in ("ua", "wa", "f1")), "",
              style="bold")
    out.print(t)


def _parse_params(items: List[str]) -> dict:
    params = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep:
            raise TinyserError(f"--param {item!r}: expected NAME=VALUE")
        try:
            params[key.strip()] = json.loads(value)
        except json.JSONDecodeError:
            params[key.strip()] = value
    return params


def main() -> None:  # pragma: no cover - console entry point
    sys.exit(app())
