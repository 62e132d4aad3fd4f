"""Archive-scale predict: one row per file into a JSON lines or Parquet file,
written as files finish, resumable, on one process, a local process pool or Ray.

:func:`predict_archive` walks the folders lazily (sorted, so every run lists
the same files in the same order), sends files in batches of ``batch_files`` to
an engine and appends each batch's rows to a journal as it comes back:

- ``OUT.jsonl``: the output is its own journal, one JSON object per file,
  flushed per batch;
- ``OUT.parquet``: rows go to ``OUT.parquet.partial.jsonl`` while the run lasts;
  the Parquet file is written atomically from it at the end and the journal removed.

Beside the journal, ``<journal>.run.json`` records what the rows were made with
(the model's SHA-256, labels, window, hop); a re-run with the same settings skips
the files already in the journal (the Parquet file keeps the same record in its
schema metadata, so a finished Parquet run resumes too), a run with other
settings is refused, and ``restart=True`` (``--force``) starts over. A line torn
by a kill is dropped and its file scored again.

Every file is scored exactly as :func:`tinyser.inference.predict_files` scores it
(each file is its own stream: its own voice-activity floor and adaptive
standardisation), so results do not depend on the engine, the batch or the order.
A file that cannot be used gets a row with ``error`` (predict's one-line reason)
and the run goes on. The model's input has a fixed batch of one window (LiteRT
runs one window per invoke), so windows are not merged across files: a batch is
a unit of work sent to a worker, which amortises the cost of sending it.

Engines: ``workers=1`` scores in this process; ``workers=N`` on one machine uses
N spawned processes that each load the model once; ``address`` runs Ray Data
(``map_batches`` with an actor per worker, each loading the model once) on a
local Ray (``"local"``) or an existing cluster (``"auto"``, ``"host:port"``,
``"ray://host:port"``); the paths must then be readable on every node.
"""
from __future__ import annotations

import hashlib
import itertools
import json
import os
import time
from pathlib import Path
from typing import Iterable, Iterator, Sequence

from ._ray import ray_init
from .cache import atomic_write, output_target
from .errors import ConfigError, TinyserError
from .inference import Model, check_window_hop, iter_inputs, skipped

#: Output suffixes of archive mode (``tinyser predict DIR --out results.jsonl``).
SUFFIXES = (".jsonl", ".parquet")
#: Files sent to a worker at once: big enough to amortise sending them, small enough that a
#: kill loses little and the progress bar moves.
BATCH_FILES = 16
#: Ray: paths handed to one Ray Data dataset (the listing stays lazy between chunks).
RAY_CHUNK_FILES = 20_000
#: Parquet: journal rows converted per row group (memory stays bounded).
PARQUET_ROWS = 50_000
_FORMAT = "tinyser-predict-rows/1"


def is_archive_output(path: str | os.PathLike | None) -> bool:
    """Whether ``predict --out PATH`` means archive mode (one row per file, resumable).

    >>> is_archive_output("r.jsonl"), is_archive_output("r.PARQUET"), is_archive_output("r.json")
    (True, True, False)
    """
    return path is not None and Path(path).suffix.lower() in SUFFIXES


def journal_path(out: str | os.PathLike) -> Path:
    """Where rows go while a run lasts: the ``.jsonl`` output itself, or
    ``OUT.partial.jsonl`` beside a ``.parquet`` output.

    >>> journal_path("r.jsonl").name, journal_path("r.parquet").name
    ('r.jsonl', 'r.parquet.partial.jsonl')
    """
    out = Path(out)
    return out if out.suffix.lower() == ".jsonl" else out.with_name(out.name + ".partial.jsonl")


def settings_path(out: str | os.PathLike) -> Path:
    """The record of what a journal's rows were made with: ``<journal>.run.json``.

    >>> settings_path("r.jsonl").name
    'r.jsonl.run.json'
    """
    j = journal_path(out)
    return j.with_name(j.name + ".run.json")


def run_settings(model: Model, window: float | None = None, hop: float | None = None,
                 allow_short: bool = False) -> dict:
    """What makes two runs' rows comparable: the model's bytes and labels, the window
    and the hop actually used (defaults resolved). ConfigError for a bad window or hop."""
    w, h = check_window_hop(model, window, hop, allow_short)
    return {"format": _FORMAT, "model": str(model.path), "model_sha256": hashlib.sha256(model.bytes).hexdigest(),
            "labels": list(model.labels), "window": w, "hop": h}


def columns(labels: Sequence[str]) -> list[str]:
    """The columns of a row, in order.

    >>> columns(["a", "b"])
    ['path', 'label', 'confidence', 'p_a', 'p_b', 'duration', 'voiced_windows', 'n_windows', 'reason', \
'warnings', 'error']
    """
    return ["path", "label", "confidence", *(f"p_{k}" for k in labels), "duration", "voiced_windows",
            "n_windows", "reason", "warnings", "error"]


def result_row(path: str, result: dict | None, labels: Sequence[str], error: str | None = None) -> dict:
    """One output row: ``result`` of :meth:`Model.predict_file` flattened (a probability
    column ``p_<label>`` per class), or for a file that could not be used, its
    ``error`` (predict's one-line reason) and nulls."""
    r = result or {}
    probs = r.get("probabilities") or {}
    return {"path": path, "label": r.get("label"), "confidence": r.get("confidence"),
            **{f"p_{k}": probs.get(k) for k in labels}, "duration": r.get("duration"),
            "voiced_windows": r.get("voiced_windows"), "n_windows": r.get("n_windows"),
            "reason": r.get("reason"), "warnings": list(r.get("warnings", [])), "error": error}


def score_batch(model: Model, items: Sequence[tuple[str, str]], window: float | None, hop: float | None,
                allow_short: bool = False) -> list[dict]:
    """Rows for ``(path as listed, path to read)`` pairs: the one function every engine runs.
    A file that cannot be used gets its ``error``; nothing stops the batch."""
    rows = []
    for listed, path in items:
        try:
            r = model.predict_file(path, window, hop, allow_short=allow_short, timeline=False)
        except TinyserError as e:
            rows.append(result_row(listed, None, model.labels, skipped(listed, e)["reason"]))
        except Exception as e:  # noqa: BLE001  a bug must not lose hours of archive: reported in the row
            rows.append(result_row(listed, None, model.labels, f"internal error ({type(e).__name__}: {e})"))
        else:
            rows.append(result_row(listed, r, model.labels))
    return rows


class Journal:
    """The rows written so far: appended one batch at a time (flushed), and locked
    against a second run writing the same output while it is open."""

    def __init__(self, path: Path):
        self.path = path
        self.done: set[str] = set()
        self.bad = 0

    def __enter__(self) -> Journal:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._file = open(self.path, "a+b")
        try:
            import fcntl
        except ImportError:  # Windows: no advisory locks; one run per output is up to the user
            return self
        try:
            fcntl.flock(self._file.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            self._file.close()
            raise TinyserError(f"{self.path}: another tinyser predict is writing it") from None
        return self

    def __exit__(self, *exc) -> None:
        self._file.close()

    def load(self) -> None:
        """Read the paths already scored; a last line torn by a kill is cut off (its file
        is scored again)."""
        f = self._file
        f.seek(0)
        end, i = 0, 0
        for i, line in enumerate(f, 1):
            if not line.endswith(b"\n"):
                break  # torn
            try:
                row = json.loads(line)
                self._count(row["path"], row)
            except (ValueError, TypeError, KeyError):
                raise TinyserError(f"{self.path}: line {i} is not a row of tinyser predict; pass --force to "
                                   "start over") from None
            end += len(line)
        f.truncate(end)

    def clear(self) -> None:
        self._file.truncate(0)
        self.done.clear()
        self.bad = 0

    def _count(self, path: str, row: dict) -> None:
        if path not in self.done:
            self.done.add(path)
            self.bad += row.get("error") is not None

    def append(self, rows: Iterable[dict]) -> None:
        rows = list(rows)
        self._file.write(b"".join(json.dumps(r).encode() + b"\n" for r in rows))
        self._file.flush()
        for r in rows:
            self._count(r["path"], r)

    def rows(self) -> Iterator[dict]:
        with open(self.path, "rb") as f:
            for line in f:
                yield json.loads(line)


def predict_archive(model: Model, paths: Iterable[str | os.PathLike], out: str | os.PathLike,
                    workers: int | None = None, address: str | None = None, window: float | None = None,
                    hop: float | None = None, allow_short: bool = False, batch_files: int = BATCH_FILES,
                    progress: bool = True, restart: bool = False) -> dict:
    """Score every audio file under ``paths`` into ``out`` (``.jsonl`` or ``.parquet``):
    one row per file (:func:`columns`), resumable (see the module's docstring).

    ``workers``: processes on this machine (default 1), or with ``address`` the Ray
    workers (default: every CPU of the cluster). ``address``: ``"local"`` (a Ray
    started here with ``workers`` CPUs), ``"auto"``, ``"host:port"`` or
    ``"ray://host:port"``. ``restart``: forget the rows of an earlier run
    (regular files only are replaced).

    Returns counts: ``predicted`` and ``bad`` (this run), ``already_done`` (skipped,
    in the output from an earlier run), ``rows``, ``bad_rows`` (the whole output),
    ``audio_seconds`` and ``seconds`` (this run), ``engine`` and ``workers``.

    >>> s = predict_archive(load_model(), ["calls/"], "calls.parquet", workers=2)   # doctest: +SKIP
    >>> s["predicted"], s["bad"], s["already_done"]                                   # doctest: +SKIP
    (1998, 2, 0)
    """
    out, paths = Path(out), list(paths)  # the folders are walked twice: to count, then to score
    if not is_archive_output(out):
        raise ConfigError(f"{out}: archive predict writes .jsonl or .parquet, not {out.suffix or 'no suffix'}")
    if workers is not None and workers < 1:
        raise ConfigError(f"workers must be 1 or more, not {workers}")
    if batch_files < 1:
        raise ConfigError(f"batch_files must be 1 or more, not {batch_files}")
    parquet = out.suffix.lower() == ".parquet"
    from .extras import need

    if parquet:
        need("pyarrow", f"writing {out.name}")
    if address is not None:
        need("ray", "--address (Ray)")
    settings = run_settings(model, window, hop, allow_short)
    engine = "ray" if address is not None else "process" if (workers or 1) == 1 else "pool"
    start, audio = time.perf_counter(), 0.0
    from .progress import Bar

    for path in (out, journal_path(out), settings_path(out)):
        output_target(path)  # only regular files (or links to them) are ever written or replaced
    existed = journal_path(out).exists()
    with Journal(journal_path(out)) as journal:
        try:
            seeded = _resume(journal, out, settings, parquet, restart)
        except TinyserError:
            if not existed:  # refused before any row: leave nothing behind
                journal.path.unlink(missing_ok=True)
            raise
        already, total = _count(paths, journal.done)
        rows_before, bad_before = len(journal.done), journal.bad
        n_workers = workers or 1
        with Bar(total, "predict", enabled=progress) as bar:
            batches = _batches(paths, journal, batch_files, settings["labels"], bar)
            if engine == "process":
                results = (score_batch(model, b, settings["window"], settings["hop"], allow_short)
                           for b in batches)
            elif engine == "pool":
                results = _pool(model, batches, n_workers, settings, allow_short)
            else:
                ray, started = ray_init(address, workers)
                n_workers = workers or max(1, int(ray.cluster_resources().get("CPU", 1)))
                results = _ray_rows(ray, started, model, batches, n_workers, settings, allow_short, batch_files)
            for rows in results:
                journal.append(rows)
                audio += sum(r["duration"] or 0.0 for r in rows)
                bar.advance(len(rows))
        bad = journal.bad - bad_before
        predicted = len(journal.done) - rows_before - bad
        if parquet and not (seeded and len(journal.done) == rows_before):
            _write_parquet(journal, out, settings)
    if parquet:  # the Parquet file holds everything now
        journal.path.unlink(missing_ok=True)
        settings_path(out).unlink(missing_ok=True)
    return {"out": str(out), "predicted": predicted, "bad": bad, "already_done": already,
            "rows": len(journal.done), "bad_rows": journal.bad, "audio_seconds": round(audio, 3),
            "seconds": round(time.perf_counter() - start, 3), "engine": engine, "workers": n_workers}


def _resume(journal: Journal, out: Path, settings: dict, parquet: bool, restart: bool) -> bool:
    """Load the rows of an earlier run of ``out`` with the same settings into the (locked)
    journal, or start afresh (``restart``, or nothing earlier); the settings are recorded
    before any row is written. True when the rows come from a finished Parquet file."""
    spath = settings_path(out)
    seeded = False
    journal._file.seek(0, os.SEEK_END)
    if restart:
        journal.clear()
    elif journal._file.tell() > 0 or spath.exists():
        _check_same(out, _read_settings(spath, journal.path), settings)
        journal.load()
        return False
    elif parquet and out.exists():
        _check_same(out, _parquet_settings(out), settings)
        seeded = True
    atomic_write(spath, lambda f: f.write(json.dumps(settings, indent=1).encode()))
    if seeded:
        _seed_from_parquet(out, journal)
    return seeded


def _read_settings(spath: Path, jpath: Path) -> dict:
    try:
        s = json.loads(spath.read_text())
        if s.get("format") != _FORMAT:
            raise ValueError
        return s
    except FileNotFoundError:
        raise TinyserError(f"{jpath}: already exists and is not the output of tinyser predict (no {spath.name} "
                           "beside it); pass --force to overwrite") from None
    except (OSError, ValueError, AttributeError):
        raise TinyserError(f"{spath}: damaged; pass --force to start over") from None


def _check_same(out: Path, earlier: dict, now: dict) -> None:
    """Refuse to add rows made with other settings to an output."""
    for key, what in (("model_sha256", "model"), ("labels", "labels"), ("window", "window"), ("hop", "hop")):
        if earlier.get(key) != now[key]:
            was, is_ = (earlier.get("model"), now["model"]) if key == "model_sha256" else (earlier.get(key), now[key])
            raise TinyserError(f"{out}: was started with another {what} ({was}, now {is_}); pass --force to start "
                               "over, or choose another --out")


def _listed(x: Path | dict) -> str:
    return str(x["path"] if isinstance(x, dict) else x)


def _count(paths, done: set[str]) -> tuple[int, int]:
    """Files already in the output, and files still to score: a first, cheap walk (the
    progress bar's total); nothing is kept but the counts."""
    already = total = 0
    for x in iter_inputs(paths):
        if _listed(x) in done:
            already += 1
        else:
            total += 1
    return already, total


def _batches(paths, journal: Journal, size: int, labels: Sequence[str], bar) -> Iterator[list[tuple[str, str]]]:
    """Batches of ``(path as listed, absolute path)`` not scored yet, listed lazily; a path
    that names no audio file gets its row at once."""
    batch: list[tuple[str, str]] = []
    sent: set[str] = set()  # listed twice (overlapping folders): scored once
    for x in iter_inputs(paths):
        listed = _listed(x)
        if listed in journal.done or listed in sent:
            continue
        sent.add(listed)
        if isinstance(x, dict):
            journal.append([result_row(listed, None, labels, x["reason"])])
            bar.advance()
            continue
        batch.append((listed, os.path.abspath(listed)))
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


def _pool(model: Model, batches: Iterator[list], workers: int, settings: dict, allow_short: bool,
          score=None) -> Iterator[list[dict]]:
    """Rows of each batch, in order of completion, from ``workers`` spawned processes
    (each loads the model once); at most two batches per worker are in flight. A file
    that kills its worker (a crash in a decoder) gets an error row: the batches in
    flight then are scored again one file at a time in a fresh pool to find it.
    ``score``: the per-batch function run in the workers (tests replace it)."""
    import multiprocessing
    from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
    from concurrent.futures.process import BrokenProcessPool

    score = score or _worker_score
    ctx = multiprocessing.get_context("spawn")  # no fork of a process holding interpreter threads
    args = (str(model.path), settings["window"], settings["hop"], allow_short)
    new = lambda: ProcessPoolExecutor(workers, mp_context=ctx, initializer=_worker_init, initargs=args)
    pool = new()
    pending: dict = {}
    suspects: list[tuple[str, str]] = []  # files in flight when a worker died: scored one at a time
    try:
        while True:
            while len(pending) < (1 if suspects else 2 * workers):
                batch = [suspects.pop(0)] if suspects else next(batches, None)
                if batch is None:
                    break
                pending[pool.submit(score, batch)] = batch
            if not pending:
                return
            finished, _ = wait(pending, return_when=FIRST_COMPLETED)
            broken = False
            for f in finished:
                batch = pending.pop(f)
                try:
                    yield f.result()
                except BrokenProcessPool:
                    broken = True
                    if len(batch) == 1 and len(finished) == 1 and not pending:  # alone in flight: the culprit
                        yield [result_row(batch[0][0], None, model.labels,
                                          "the process reading it crashed (damaged file?)")]
                    else:
                        suspects += batch
            if broken:  # every future of a broken pool fails: all in flight become suspects
                for batch in pending.values():
                    suspects += batch
                pending.clear()
                pool.shutdown(wait=False, cancel_futures=True)
                pool = new()
                try:
                    pool.submit(_worker_ping).result()
                except BrokenProcessPool:
                    raise TinyserError(f"--workers {workers}: the worker processes die as they start; run with "
                                       "--workers 1 to see why (a script calling predict_archive with workers needs "
                                       "`if __name__ == \"__main__\":`)") from None
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def _worker_ping() -> bool:
    return True


_WORKER: dict = {}


def _worker_init(model_path: str, window: float, hop: float, allow_short: bool) -> None:
    import multiprocessing
    import threading
    from multiprocessing.connection import wait

    from .inference import Model

    parent = multiprocessing.parent_process()
    if parent is not None:  # a killed run leaves no workers behind (they would wait for work for ever)
        def orphaned():
            wait([parent.sentinel])
            os._exit(1)
        threading.Thread(target=orphaned, daemon=True).start()
    _WORKER.update(model=Model(model_path), window=window, hop=hop, allow_short=allow_short)


def _worker_score(batch: list[tuple[str, str]]) -> list[dict]:
    w = _WORKER
    return score_batch(w["model"], batch, w["window"], w["hop"], w["allow_short"])


class _RayScorer:
    """A Ray Data actor: loads the model once, then scores batches of paths."""

    def __init__(self, model_ref, model_name: str, window: float, hop: float, allow_short: bool):
        import tempfile

        import ray

        from .inference import Model

        with tempfile.TemporaryDirectory() as tmp:  # the model travels as bytes: nodes need not share files
            path = Path(tmp, model_name)
            path.write_bytes(ray.get(model_ref[0]))
            self.model = Model(path)
        self.args = (window, hop, allow_short)

    def __call__(self, batch: dict) -> dict:
        import numpy as np

        rows = score_batch(self.model, list(zip(batch["listed"].tolist(), batch["path"].tolist())), *self.args)
        return {"row": np.array([json.dumps(r) for r in rows], dtype=object)}


def _ray_rows(ray, started: bool, model: Model, batches: Iterator[list], n: int, settings: dict,
              allow_short: bool, batch_files: int) -> Iterator[list[dict]]:
    """Rows of each batch from Ray Data, in order of completion: ``map_batches`` with a
    pool of ``n`` :class:`_RayScorer` actors over datasets of up to
    :data:`RAY_CHUNK_FILES` paths (the listing stays lazy between datasets)."""
    import logging

    import ray.data

    ctx = ray.data.DataContext.get_current()
    ctx.enable_progress_bars = False  # tinyser's bar counts files
    ctx.print_on_execution_start = False
    logging.getLogger("ray.data").setLevel(logging.ERROR)
    model_ref = [ray.put(model.bytes)]  # in a list: the actors fetch it, Ray does not inline it as an argument
    try:
        chunk: list[tuple[str, str]] = []
        for batch in itertools.chain(batches, [None]):
            chunk += batch or []
            if chunk and (batch is None or len(chunk) >= RAY_CHUNK_FILES):
                items = [{"listed": a, "path": b} for a, b in chunk]
                ds = ray.data.from_items(items, override_num_blocks=max(1, -(-len(items) // batch_files)))
                kw = dict(batch_size=batch_files, batch_format="numpy", num_cpus=1,
                          compute=ray.data.ActorPoolStrategy(size=n),
                          fn_constructor_args=(model_ref, model.path.name, settings["window"], settings["hop"],
                                               allow_short))
                scored = _bounded_retries(ds.map_batches, _RayScorer, **kw)
                try:
                    for out in scored.iter_batches(batch_size=None, batch_format="numpy"):
                        yield [json.loads(r) for r in out["row"]]
                except ray.exceptions.RayError as e:
                    msg = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
                    raise TinyserError(f"Ray: the run failed ({msg}); the rows so far are kept, run the same "
                                       "command again to resume") from None
                chunk = []
    finally:
        if started:
            ray.shutdown()


def _bounded_retries(map_batches, fn, **kw):
    """``map_batches`` with actors restarted and tasks retried twice at most: Ray Data's
    default retries for ever, so a file that crashes its worker would stall the run.
    (Ray 2.60 marks these arguments deprecated without a replacement; a Ray without
    them gets its default.)"""
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        try:
            return map_batches(fn, max_restarts=2, max_task_retries=2, **kw)
        except TypeError:
            return map_batches(fn, **kw)


def _parquet_schema(labels: Sequence[str], settings: dict):
    import pyarrow as pa

    f64, i64, s = pa.float64(), pa.int64(), pa.string()
    fields = [("path", s), ("label", s), ("confidence", f64), *((f"p_{k}", f64) for k in labels),
              ("duration", f64), ("voiced_windows", i64), ("n_windows", i64), ("reason", s),
              ("warnings", pa.list_(s)), ("error", s)]
    return pa.schema(fields, metadata={"tinyser": json.dumps(settings)})


def _write_parquet(journal: Journal, out: Path, settings: dict) -> None:
    """The journal's rows as Parquet, written atomically, :data:`PARQUET_ROWS` per row group."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    schema = _parquet_schema(settings["labels"], settings)

    def write(f):
        with pq.ParquetWriter(f, schema) as w:
            group = []
            for row in journal.rows():
                group.append(row)
                if len(group) == PARQUET_ROWS:
                    w.write_table(pa.Table.from_pylist(group, schema=schema))
                    group = []
            if group or not journal.done:
                w.write_table(pa.Table.from_pylist(group, schema=schema))

    atomic_write(out, write)


def _parquet_settings(out: Path) -> dict:
    import pyarrow.parquet as pq

    try:
        meta = pq.read_schema(out).metadata or {}
        return json.loads(meta[b"tinyser"])
    except (OSError, ValueError, KeyError, TypeError):
        raise TinyserError(f"{out}: already exists and is not the output of tinyser predict; pass --force to "
                           "overwrite") from None


def _seed_from_parquet(out: Path, journal: Journal) -> None:
    """A finished Parquet run's rows back into its (empty) journal, so new files are added to them."""
    import pyarrow.parquet as pq

    for group in pq.ParquetFile(out).iter_batches(batch_size=PARQUET_ROWS):
        journal.append(group.to_pylist())


def read_rows(out: str | os.PathLike) -> list[dict]:
    """The rows of an archive output (``.jsonl`` or ``.parquet``), as dicts.

    >>> read_rows("calls.parquet")[0]["label"]   # doctest: +SKIP
    'neutral'
    """
    out = Path(out)
    if out.suffix.lower() == ".parquet":
        import pyarrow.parquet as pq

        return pq.read_table(out).to_pylist()
    with open(out, "rb") as f:
        return [json.loads(line) for line in f if line.endswith(b"\n")]


def summary_line(s: dict) -> str:
    """``predict``'s last line in archive mode.

    >>> summary_line({"predicted": 3, "bad": 1, "already_done": 2, "out": "r.jsonl"})
    '3 files predicted, 1 bad (listed in r.jsonl), 2 already done'
    """
    return f"{s['predicted']} files predicted, {s['bad']} bad (listed in {s['out']}), {s['already_done']} already done"

