"""Write one benchmark's results into docs/: its JSON file and its own
section of a shared Markdown page (other sections are kept).

Every JSON file gets a ``provenance`` key: the git commit (``+dirty`` when
tracked files differ from it), the versions of tinyser and of the packages it
depends on, and a checksum of the data folder the benchmark read (given by
``--data``, see :func:`add_data_argument`; null when it read none).
"""
from __future__ import annotations

import hashlib
import json
import os
import platform
import re
import subprocess
import sys
import time
from functools import cache
from importlib import metadata
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
#: the data folders the benchmark's arguments named (set by add_data_argument's parser)
_DATA_USED: list[Path] = []


def machine() -> str:
    return f"{platform.machine()}, {os.cpu_count()} cores, Python {sys.version.split()[0]}"


def _data_path(text: str) -> Path:
    path = Path(text)
    _DATA_USED.append(path)
    return path


def add_data_argument(ap) -> None:
    """``--data``: the folder holding the corpora (default $TINYSER_DATA or ../shared/data).
    The folder given is recorded in the provenance of what :func:`write` writes."""
    ap.add_argument("--data", type=_data_path, default=os.environ.get("TINYSER_DATA", "../shared/data"))


def git_commit(where: Path = ROOT) -> str | None:
    """HEAD's hash, with ``+dirty`` when tracked files differ from it; None outside git."""
    try:
        head = subprocess.run(["git", "-C", str(where), "rev-parse", "HEAD"], capture_output=True, text=True,
                              check=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(where), "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return None
    return head + ("+dirty" if dirty else "")


def package_versions() -> dict[str, str]:
    """Python, tinyser and every installed package tinyser depends on (any extra)."""
    versions = {"python": platform.python_version()}
    try:
        versions["tinyser"] = metadata.version("tinyser")
        requires = metadata.requires("tinyser") or []
    except metadata.PackageNotFoundError:
        return versions
    for req in requires:
        name = re.split(r"[\s;<>=!~\[(]", req, maxsplit=1)[0]
        if name and name != "tinyser":
            try:
                versions[name] = metadata.version(name)
            except metadata.PackageNotFoundError:
                pass
    return dict(sorted(versions.items()))


def data_checksum(folder: Path) -> dict | None:
    """A cheap, stable digest of a data folder: SHA-256 over every file's relative
    path and size (not the contents), cached per folder in $TINYSER_CACHE (or
    ~/.cache/tinyser) until a directory in it changes."""
    folder = Path(folder).resolve()
    if not folder.is_dir():
        return None
    dirs = sorted((str(Path(r).relative_to(folder)), os.stat(r).st_mtime_ns) for r, _, _ in os.walk(folder))
    signature = hashlib.sha256(json.dumps(dirs).encode()).hexdigest()
    cache_dir = Path(os.environ.get("TINYSER_CACHE") or Path.home() / ".cache" / "tinyser")
    cache = cache_dir / f"data-checksum-{hashlib.sha256(str(folder).encode()).hexdigest()[:16]}.json"
    try:
        cached = json.loads(cache.read_text())
        if cached.get("signature") == signature:
            return cached["checksum"]
    except (OSError, ValueError, KeyError):
        pass
    return _store_checksum(folder, signature, cache)


def _store_checksum(folder: Path, signature: str, cache: Path) -> dict:
    h, n, size = hashlib.sha256(), 0, 0
    for root, dirs, files in os.walk(folder):
        dirs.sort()
        for f in sorted(files):
            p = Path(root, f)
            st = p.stat()
            rel = p.relative_to(folder).as_posix()
            h.update(f"{rel}\t{st.st_size}\n".encode())
            n, size = n + 1, size + st.st_size
    checksum = {"path": str(folder), "files": n, "bytes": size, "sha256_names_sizes": h.hexdigest()}
    try:
        cache.parent.mkdir(parents=True, exist_ok=True)
        cache.write_text(json.dumps({"signature": signature, "checksum": checksum}))
    except OSError:
        pass
    return checksum


@cache
def _checksum_once(folder: str) -> dict | None:
    return data_checksum(Path(folder))


def provenance(data: Path | list[Path] | None = None) -> dict:
    """What a result was made with: commit, package versions, data checksum(s)."""
    folders = [data] if isinstance(data, (str, Path)) else list(data if data is not None else _DATA_USED)
    sums = [_checksum_once(str(Path(f).resolve())) for f in dict.fromkeys(folders)]
    return {"commit": git_commit(), "packages": package_versions(),
            "data": (sums[0] if len(sums) == 1 else sums) if sums else None}


def add_device_arguments(ap) -> None:
    """``--tflm`` (the third-party sources: TFLite Micro, CMSIS-NN, ...), ``--clips`` and ``--jobs``
    of the benchmarks that run firmware on the emulated Cortex-M4."""
    ap.add_argument("--tflm", type=Path, default=Path(os.environ.get("TINYSER_THIRD_PARTY", "../shared/third_party")))
    ap.add_argument("--clips", type=int, default=30)
    ap.add_argument("--jobs", type=int, default=2)


def write(name: str, results: dict, markdown: str, page: str = "benchmarks.md",
          data: Path | list[Path] | None = None) -> None:
    """Write docs/NAME.json (``results`` plus ``provenance``) and NAME's section of docs/PAGE.
    ``data``: the folder(s) read, when not given by ``--data`` (:func:`add_data_argument`)."""
    DOCS.mkdir(exist_ok=True)
    results = {**results, "provenance": provenance(data)}
    (DOCS / f"{name}.json").write_text(json.dumps(results, indent=2) + "\n")
    md = DOCS / page
    text = md.read_text() if md.exists() else f"# {page[:-3].capitalize()}\n"
    start, end = f"<!-- {name}:start -->", f"<!-- {name}:end -->"
    block = f"{start}\n{markdown.strip()}\n{end}"
    pattern = re.compile(re.escape(start) + ".*?" + re.escape(end), re.S)
    text = pattern.sub(lambda _: block, text) if pattern.search(text) else text.rstrip() + "\n\n" + block + "\n"
    md.write_text(text)


def timed_training(cfg, out: Path) -> dict:
    """Train (resuming if interrupted); wall time is summed over all sessions of the run,
    kept per epoch in elapsed.json (a kill loses at most the epoch in progress)."""
    elapsed = out / "elapsed.json"
    prior = json.loads(elapsed.read_text())["seconds"] if elapsed.exists() else 0.0
    start = time.perf_counter()

    def tick(fold, epoch, record):
        elapsed.write_text(json.dumps({"seconds": prior + time.perf_counter() - start}))

    from tinyser.experiment import run_training

    report = run_training(cfg, out, resume=(out / "config.json").exists(), on_epoch=tick)
    (out / "wall.json").write_text(json.dumps({"seconds": prior + time.perf_counter() - start}))
    return report


def finished_run(cfg, out: Path, train: bool) -> dict | None:
    """A training run's table fields: trained (or resumed) first when ``train``; None when
    it is not finished and ``train`` is off. Scores are mean ± std over folds."""
    import numpy as np

    from tinyser.experiment import load_report

    if not (out / "report.json").exists():
        if not train:
            return None
        timed_training(cfg, out)
    rep = load_report(out)
    return {"run": str(out), "config": cfg.to_dict(), "classes": rep["labels"],
            **{k: rep[k] for k in ("ua", "ua_std", "wa", "wa_std", "f1", "f1_std", "n_clips")},
            "val_ua": float(np.mean([f["val_ua"] for f in rep["folds"]])),
            "fold_ua": [f["ua"] for f in rep["folds"]],
            "best_epochs": [f["best_epoch"] + 1 for f in rep["folds"]],
            "epochs_run": [f["epochs_run"] for f in rep["folds"]], "wall_s": wall_seconds(out),
            "per_corpus": per_corpus_ua(out, rep), **({"before_refit": rep["before_refit"]}
                                                      if "before_refit" in rep else {}),
            **({"teachers_vote_ua": vote} if (vote := teachers_vote(cfg)) else {})}


def teachers_vote(cfg) -> list[float] | None:
    """Fold by fold, the test UA of a majority vote over the clip labels of the finished runs ``cfg`` distils
    from (two or more; ties go to the first teacher's label where it is tied, else to the first class): the
    ensemble a student learns from, as it scores on its own. None without such teachers."""
    import numpy as np

    from tinyser.metrics import scores

    teachers = (cfg.train.distill or {}).get("teacher") or []
    runs = [Path(t) for t in ([teachers] if isinstance(teachers, str) else teachers)]
    if len(runs) < 2 or not all((r / "report.json").exists() for r in runs):
        return None
    first = json.loads((runs[0] / "report.json").read_text())
    labels, out = first["labels"], []
    for preds in zip(*(fold_predictions(r, first) for r in runs)):  # fold by fold, every teacher's
        if any(p["clip"] != preds[0]["clip"] for p in preds):
            return None  # not the same test clips: not one protocol's folds
        one_hot = [np.eye(len(labels))[p["pred"]] for p in preds]
        votes = sum(one_hot) + 0.25 * one_hot[0]  # a tie-break, never more than one vote
        out.append(scores(preds[0]["true"], votes.argmax(1), labels)["ua"])
    return out


def cached_in_run(run: Path, name: str, compute, valid=lambda result: True) -> dict:
    """``compute()``'s JSON result, kept in ``RUN/name`` (written atomically) and reused while the
    run's report is no newer and ``valid(result)`` holds; a result that names its run (``"run"``) names
    it as given, wherever the folder was when the result was computed."""
    from tinyser.cache import atomic_write

    saved = Path(run) / name
    if saved.exists() and saved.stat().st_mtime >= (Path(run) / "report.json").stat().st_mtime:
        result = json.loads(saved.read_text())
        if valid(result):
            return result | {"run": str(run)} if "run" in result else result
    result = compute()
    atomic_write(saved, lambda f: f.write(json.dumps(result, indent=1).encode()))
    return result


def evaluated_folds(run: Path):
    """Each fold of a finished run, loaded to score again: yields ``(fold, x, val, test)``, its
    ``tinyser.experiment.FoldModel`` (the run's features read once for all folds), every window standardised
    as the run's evaluation standardised it, and the rows of its validation and test clips' windows."""
    from tinyser.experiment import FoldModel, load_report

    fs = None
    for entry in load_report(run)["folds"]:
        fold = FoldModel(Path(run), entry["fold"], fs)
        fs = fold.features()
        x, va, te = fold.evaluated()
        yield fold, x, va, te


def fold_predictions(run: Path, report: dict) -> list[dict]:
    """Each fold's test predictions (``clip``, ``true``, ``pred``) of a finished run with report ``report``."""
    return [json.loads((Path(run) / f"fold_{f['fold']:02d}" / "result.json").read_text())["test_predictions"]
            for f in report["folds"]]


def per_corpus_ua(run: Path, report: dict) -> dict[str, float]:
    """UA of a run's test predictions pooled over its folds (``fold_NN/result.json``), per corpus
    (the part of a clip id before ":")."""
    import numpy as np

    from tinyser.metrics import scores
    from tinyser.protocols import corpus_of

    folds = fold_predictions(run, report)
    clips = [c for f in folds for c in f["clip"]]
    true, pred = (np.array([v for f in folds for v in f[k]]) for k in ("true", "pred"))
    corpus = corpus_of(clips)
    return {name: scores(true[corpus == name], pred[corpus == name], report["labels"])["ua"]
            for name in sorted(set(corpus.tolist()))}


def wall_seconds(run: Path) -> float:
    """Training wall time of a run made by :func:`timed_training`."""
    return json.loads((Path(run) / "wall.json").read_text())["seconds"]


#: how a table marks a result carried over from the committed JSON (:func:`committed`)
CARRIED = "†"
CARRIED_NOTE = (f"{CARRIED}: no finished run on this machine; kept from the committed JSON until the run is "
                "made again here. Training repeats exactly on one machine but not "
                "on another (its CPU's kernels differ), so a row marked so and a row made here differ by the "
                "run-to-run spread as well as by their recipes.")


def carried_note(entries) -> list[str]:
    """The lines a table adds under itself when any of ``entries`` was carried over."""
    return ["", CARRIED_NOTE] if any(e and e.get("carried") for e in entries) else []


def committed(name: str, part: str, field: str, settings=None) -> dict[str, dict]:
    """docs/NAME.json's ``part`` entries by their ``field``, each marked ``carried``. A table keeps them
    while their runs are not finished on this machine (run folders are not committed, so a fresh
    checkout would otherwise drop every row it has not retrained). ``settings(entry)``: the RunConfig
    the entry's run would have now; an entry that records other settings (its ``config``) is stale
    (its recipe changed in place) and left out, with a line saying so."""
    path = DOCS / f"{name}.json"
    if not path.exists():
        return {}
    out = {}
    for r in json.loads(path.read_text()).get(part, []):
        if settings is not None and "config" in r and not same_settings(r["config"], settings(r)):
            print(f"docs/{name}.json: {r[field]} was made with other settings than it has now; not carried",
                  file=sys.stderr)
            continue
        out[r[field]] = {**r, "carried": True}
    return out


def same_settings(stored: dict, current) -> bool:
    """Whether a committed entry's run settings (its ``config``) are ``current``'s (a RunConfig), the
    data folders and the distillation teachers' run folders aside (they differ between checkouts).

    >>> from tinyser.experiment import RunConfig
    >>> cfg = RunConfig(("a/emodb",))
    >>> same_settings(RunConfig(("/x/emodb",)).to_dict(), cfg), same_settings(RunConfig(("a/emodb",), model="lstm").to_dict(), cfg)
    (True, False)
    >>> from tinyser.training import TrainConfig
    >>> svm = RunConfig(("a/emodb",), train=TrainConfig(distill={"egemaps": "speaker"}))
    >>> same_settings(svm.to_dict(), svm), same_settings(svm.to_dict(), cfg)
    (True, False)
    """
    from tinyser.experiment import RunConfig

    def norm(c: dict) -> dict:
        c = RunConfig.from_dict(c).to_dict()
        c.pop("data")
        distill = c["train"].get("distill")
        if distill and distill.get("teacher"):  # teacher runs by name: where the runs folder is may differ
            c["train"]["distill"] = {**distill, "teacher": [Path(t).name for t in distill["teacher"]]}
        return c

    return current is not None and norm(stored) == norm(current.to_dict())


def finished_or(run: Path, compute, kept: dict | None) -> dict | None:
    """``compute(run)`` where the run is finished on this machine, else ``kept`` (a committed entry, or None)."""
    return compute(run) if (Path(run) / "report.json").exists() else kept


def run_or_carried(name: str, run: Path, compute) -> dict:
    """``compute(run)`` where the run is finished on this machine, else its entry in docs/NAME.json's
    "runs" (:func:`committed`); a clear error when it is in neither."""
    result = finished_or(run, compute, committed(name, "runs", "run").get(str(run)))
    if result is None:
        raise SystemExit(f"{run}: no finished run on this machine and none in docs/{name}.json")
    return result


def tabulate_runs(name: str, doc: str, default_runs, compute, markdown) -> None:
    """The command line of a table over finished run folders (``RUN ...``, default ``default_runs``;
    ``--data``): ``compute(run, data)`` per run (:func:`run_or_carried`), ``markdown(results, cmd)``
    its section of docs/results.md, written with docs/NAME.json."""
    import argparse

    ap = argparse.ArgumentParser(description=doc.splitlines()[0])
    ap.add_argument("runs", nargs="*", type=Path, default=[Path(r) for r in default_runs])
    add_data_argument(ap)
    args = ap.parse_args()
    results = [run_or_carried(name, r, lambda run: compute(run, args.data)) for r in args.runs]
    cmd = f"python benchmarks/{name}.py" + ("" if [str(r) for r in args.runs] == list(default_runs)
                                            else " " + " ".join(map(str, args.runs))) + f" --data {args.data}"
    write(name, {"runs": results}, markdown(results, cmd), page="results.md", data=args.data)


def baseline(setup: str) -> str:
    """The eGeMAPS + RBF SVM baseline's UA % on one of ``benchmarks/baseline.py``'s setups, as
    measured there (docs/baseline.json): "global / per speaker (per corpus when a corpus is left out)".

    >>> baseline("four-corpora")   # doctest: +SKIP
    '50.6 / 64.5'
    """
    try:
        s = json.loads((DOCS / "baseline.json").read_text())["setups"][setup]
    except (OSError, ValueError, KeyError):
        return "not measured (benchmarks/baseline.py)"
    return f"{100 * s['global']['ua']:.1f} / {100 * s['own']['ua']:.1f}"


def loco_ua(report: dict) -> dict[str, float]:
    """A leave-one-corpus-out run's UA by left-out corpus (the corpus of each fold's test speakers)."""
    from tinyser.protocols import corpus_of

    return {corpus_of(f["speakers"]["test"])[0]: f["ua"] for f in report["folds"]}


def mark(entry: dict) -> str:
    """:data:`CARRIED` after a name whose result was carried over, else nothing."""
    return f" {CARRIED}" if entry.get("carried") else ""


def train_and_tabulate(name: str, doc: str, keys, result, markdown, default_runs: str, more=None,
                       extra=None, settings=None) -> None:
    """The command line of a benchmark made of resumable training runs: train the
    ``--only`` keys in the order given (all by default), then tabulate every finished
    one into docs/<name>.json and its section of docs/results.md; a key whose run is not
    on this machine keeps its committed row (:func:`committed`).
    ``result(key, data, runs, train)`` gives a row or None; ``markdown(rows, data, **extra(args))``
    the section. ``more``: (add its arguments to the parser, train what they ask for given the parsed
    arguments); ``extra(args)``: more of the JSON's parts, which ``markdown`` gets as keywords;
    ``settings(key)``: a key's run settings now, to leave out committed rows made otherwise."""
    import argparse

    ap = argparse.ArgumentParser(description=doc.split("\n")[0])
    add_data_argument(ap)
    ap.add_argument("--runs", type=Path, default=Path(default_runs))
    ap.add_argument("--only", "--rows", default=",".join(keys), help="runs to train, comma-separated, in this order")
    ap.add_argument("--table-only", action="store_true", help="tabulate finished runs, train nothing")
    if more:
        more[0](ap)
    args = ap.parse_args()
    wanted = [k.strip() for k in args.only.split(",") if k.strip()]
    unknown = [k for k in wanted if k not in keys]
    if unknown:
        raise SystemExit(f"unknown run(s) {', '.join(unknown)}; choose from {', '.join(keys)}")
    if not args.table_only:
        for k in wanted:
            result(k, args.data, args.runs, train=True)
        if more:
            more[1](args)
    kept = committed(name, "rows", "key", settings and (lambda r: settings(r["key"])))
    rows = [result(k, args.data, args.runs, train=False) or kept.get(k) for k in keys]
    parts = extra(args) if extra else {}
    write(name, {"rows": [r for r in rows if r], **parts}, markdown(rows, args.data, **parts), page="results.md")

