"""Fuzzing: damaged copies of real recordings and of the shipped model, run the
way a user runs them, counted by outcome.

    python benchmarks/fuzz.py [--data ../shared/data] [--audio 250] [--models 300] [--seed 14]

Audio: ``--audio`` seeded mutations (bit flips, overwritten/zeroed/inserted/
deleted/duplicated runs, truncations, WAV header fields set to edge values;
see ``tinyser.fuzz``) of each of four real clips (two RAVDESS WAVs, EMO-DB
and TESS FLACs). Models: ``--models`` mutations of the shipped
``default.tflite`` (which carries its SHA-256) and as many of the same model
before it carried one (from git history, if available). Each file goes
through ``Model.predict_file`` / ``Model(...).predict_windows`` in a worker process;
a worker that dies is a crash (the file in progress is blamed and the rest
go on), an exception other than tinyser's one-line errors is a traceback, a
file over 60 s is a hang. Then the command a user types,
``tinyser predict <all mutated audio> --json``, once, for its exit status and
stderr. Writes docs/fuzz.json and the fuzz section of docs/benchmarks.md.
"""
from __future__ import annotations

import argparse
import collections
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
import _report  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
CLIPS = ["ravdess/Actor_09/03-01-07-02-01-01-09.wav", "ravdess/Actor_01/03-01-05-02-01-01-01.wav",
         "emodb/wav/03a01Fa.flac", "tess/TESS Toronto emotional speech set data/YAF_happy/YAF_ring_happy.flac"]
LEGACY = "ec9fcc9"  # the last commit whose default.tflite has no checksum
HANG_SECONDS = 60


def worker(kind: str, listing: Path) -> None:
    """Print one JSON line per file: outcome and reason (run in a child process)."""
    import numpy as np

    from tinyser.errors import TinyserError
    from tinyser.inference import Model, load_model

    model = load_model() if kind == "audio" else None
    # two 2 s windows straight into the network: its outputs, whatever voice activity makes of them
    y = np.random.default_rng(0).standard_normal((2, 32000)).astype(np.float32) * 0.1
    reference = {}
    for line in listing.read_text().splitlines():
        path, ref = line.split("\t")
        t = time.perf_counter()
        try:
            if kind == "audio":
                r = model.predict_file(path, timeline=False)
                out = {"outcome": "predicted", "warnings": len(r["warnings"])}
            else:
                if ref not in reference:
                    reference[ref] = Model(ref).predict_windows(y)
                p = Model(path).predict_windows(y)
                out = {"outcome": "accepted_same" if np.array_equal(p, reference[ref]) else "accepted_different"}
        except TinyserError as e:
            out = {"outcome": "clean_error", "reason": getattr(e, "reason", None) or str(e).split(": ", 1)[-1]}
        except Exception as e:  # noqa: BLE001 - what the fuzzing is looking for
            out = {"outcome": "traceback", "reason": f"{type(e).__name__}: {str(e)[:200]}"}
        out.update(path=path, seconds=round(time.perf_counter() - t, 3))
        print(json.dumps(out), flush=True)


def run_all(kind: str, items: list[tuple[str, str]], tmp: Path) -> list[dict]:
    """Run ``items`` (path, reference) through workers, restarting after a crash or hang."""
    done: list[dict] = []
    todo = list(items)
    while todo:
        listing = tmp / f"{kind}-todo.txt"
        listing.write_text("\n".join(f"{p}\t{r}" for p, r in todo) + "\n")
        proc = subprocess.Popen([sys.executable, __file__, "--worker", kind, str(listing)], stdout=subprocess.PIPE,
                                stderr=subprocess.DEVNULL, text=True)
        seen = 0
        import selectors

        sel = selectors.DefaultSelector()
        sel.register(proc.stdout, selectors.EVENT_READ)
        last = time.monotonic()
        hung = False
        while True:
            if not sel.select(timeout=5):
                if time.monotonic() - last > HANG_SECONDS:
                    proc.kill()
                    hung = True
                    break
                if proc.poll() is not None:
                    break
                continue
            line = proc.stdout.readline()
            if not line:
                break
            done.append(json.loads(line))
            seen += 1
            last = time.monotonic()
        proc.wait()
        todo = todo[seen:]
        if todo:  # the worker died (or hung) on todo[0]
            done.append({"path": todo[0][0], "outcome": "hang" if hung else "crash",
                         "reason": f"worker exit status {proc.returncode}"})
            todo = todo[1:]
    return done


def tally(rows: list[dict], kinds: dict[str, str]) -> dict:
    c = collections.Counter(r["outcome"] for r in rows)
    reasons = collections.Counter(_reason_class(r.get("reason", "")) for r in rows if r["outcome"] == "clean_error")
    by_kind = collections.defaultdict(collections.Counter)
    for r in rows:
        by_kind[kinds[r["path"]].split(":")[0]][r["outcome"]] += 1
    return {"files": len(rows), **{k: c.get(k, 0) for k in
                                   ("crash", "hang", "traceback", "clean_error", "predicted", "accepted_same",
                                    "accepted_different")},
            "warned": sum(1 for r in rows if r.get("warnings")),
            "max_seconds": max((r.get("seconds", 0) for r in rows), default=0),
            "reasons": dict(reasons.most_common(12)), "by_mutation": {k: dict(v) for k, v in sorted(by_kind.items())},
            "tracebacks": [r for r in rows if r["outcome"] in ("traceback", "crash", "hang")][:20]}


def _reason_class(reason: str) -> str:
    import re

    return re.sub(r"\d[\d,.]*", "N", reason)[:70]


def main():
    ap = argparse.ArgumentParser()
    _report.add_data_argument(ap)
    ap.add_argument("--audio", type=int, default=250, help="mutations per audio clip (four clips)")
    ap.add_argument("--models", type=int, default=300, help="mutations of the model (each of two versions)")
    ap.add_argument("--seed", type=int, default=14)
    ap.add_argument("--worker", nargs=2, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        return worker(args.worker[0], Path(args.worker[1]))

    from tinyser.fuzz import mutations
    from tinyser.inference import DEFAULT_MODEL

    with tempfile.TemporaryDirectory(prefix="tinyser-fuzz-") as tmp:
        tmp = Path(tmp)
        (tmp / "audio").mkdir()
        audio, kinds = [], {}
        for c, clip in enumerate(CLIPS):
            src = args.data / clip
            for i, (kind, blob) in enumerate(mutations(src.read_bytes(), args.audio, seed=args.seed + c)):
                p = tmp / "audio" / f"{c}-{i:04d}{src.suffix}"
                p.write_bytes(blob)
                audio.append((str(p), str(src)))
                kinds[str(p)] = kind
        t = time.perf_counter()
        audio_rows = run_all("audio", audio, tmp)
        audio_s = time.perf_counter() - t
        cli = subprocess.run([sys.executable, "-m", "tinyser", "predict", str(tmp / "audio"), "--json"],
                             capture_output=True, text=True)
        out = json.loads(cli.stdout) if cli.stdout.strip() else {"results": [], "failed": []}
        cli_res = {"exit_status": cli.returncode, "results": len(out["results"]), "skipped": len(out["failed"]),
                   "tracebacks": cli.stderr.count("Traceback"),
                   "stderr_lines_not_from_tinyser": sum(1 for ln in cli.stderr.splitlines() if ln.strip() and not
                                                        ln.startswith(("skipped ", "warning: ", "error: ")) and
                                                        "files predicted" not in ln)}

        models = {"stamped": DEFAULT_MODEL}
        legacy = subprocess.run(["git", "-C", str(REPO), "show", f"{LEGACY}:src/tinyser/assets/default.tflite"],
                                capture_output=True)
        if legacy.returncode == 0:
            (tmp / "legacy.tflite").write_bytes(legacy.stdout)
            models["legacy (no checksum)"] = tmp / "legacy.tflite"
        model_res = {}
        for name, src in models.items():
            (tmp / name[:6]).mkdir()
            items, mkinds = [], {}
            for i, (kind, blob) in enumerate(mutations(Path(src).read_bytes(), args.models, seed=args.seed)):
                p = tmp / name[:6] / f"{i:04d}.tflite"
                p.write_bytes(blob)
                items.append((str(p), str(src)))
                mkinds[str(p)] = kind
            model_res[name] = tally(run_all("model", items, tmp), mkinds)

    res = {"machine": _report.machine(), "seed": args.seed, "clips": CLIPS, "audio": tally(audio_rows, kinds),
           "audio_seconds": round(audio_s, 1), "cli": cli_res, "models": model_res}
    a = res["audio"]
    rows = [f"| audio: 4 real clips × {args.audio} | {a['files']} | {a['crash']} | {a['hang']} | {a['traceback']} | "
            f"{a['clean_error']} | {a['predicted']} predicted ({a['warned']} with a warning) |"]
    for name, m in model_res.items():
        rows.append(f"| model: `default.tflite`, {name} | {m['files']} | {m['crash']} | {m['hang']} | {m['traceback']} | "
                    f"{m['clean_error']} | {m['accepted_different']} different, {m['accepted_same']} same |")
    md = "\n".join([
        "## Fuzzing (`benchmarks/fuzz.py`)", "",
        f"`python benchmarks/fuzz.py --audio {args.audio} --models {args.models} --seed {args.seed}` "
        f"({res['machine']}). Seeded mutations (`tinyser.fuzz.mutations`: bit flips, overwritten, zeroed, "
        "inserted, deleted and duplicated runs, truncations, WAV header fields set to edge values) run through "
        "`Model.predict_file` / `Model(...).predict_windows` in worker processes; a dead worker is a crash, an exception "
        f"other than tinyser's one-line errors a traceback, a file over {HANG_SECONDS} s a hang. "
        "*Accepted* models loaded and predicted: the same probabilities as the undamaged model, or different "
        "ones (silently wrong). Predicted audio is damage the decoder cannot tell from sound (sample bytes).", "",
        "| input | files | crashes | hangs | tracebacks | clean one-line errors | accepted |",
        "|---|---:|---:|---:|---:|---:|---|", *rows, "",
        f"The slowest file took {a['max_seconds']:.2f} s (audio) and "
        f"{max(m['max_seconds'] for m in model_res.values()):.2f} s (models). The user's command over all "
        f"{a['files']} damaged clips, `tinyser predict DIR --json`: exit status {cli_res['exit_status']}, "
        f"{cli_res['results']} predicted, {cli_res['skipped']} skipped with a reason, {cli_res['tracebacks']} "
        f"tracebacks, {cli_res['stderr_lines_not_from_tinyser']} stderr lines from other libraries.", "",
        "Most common reasons (audio): " + "; ".join(f"{k} ({v})" for k, v in list(a["reasons"].items())[:6]) + ".",
    ])
    _report.write("fuzz", res, md)
    print(md)


if __name__ == "__main__":
    main()
