"""Archive-scale predict: throughput of one process, `--workers 2` and Ray with 2 workers
on a generated archive, and a run killed midway then resumed.

    python benchmarks/archive.py [--files 2000] [--folder DIR] [--generate-only]

Generates (once; kept in --folder, default a temporary folder) FILES speech-like clips
of 1.5-4.5 s (benchmarks/speechlike.py: several pitches, 16/22.05/44.1 kHz) plus an
empty file and a text file named .wav, then runs the user's command,
`tinyser predict DIR --out X.jsonl`, as a subprocess per engine (start-up included):
one process, `--workers 2`, `--address local --workers 2` (Ray Data). Each engine is
also timed on one batch (16 files) to separate its start-up from its throughput.
Then `--workers 2 --out X.parquet` is killed (SIGKILL) once half the rows are in its
journal and run again; its rows must equal the uninterrupted run's. The rows of the
three engines must be identical too. Writes docs/archive.json and the archive section
of docs/benchmarks.md.
"""
from __future__ import annotations

import argparse
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import soundfile as sf

sys.path.insert(0, str(Path(__file__).parent))
import _report  # noqa: E402
from speechlike import speechlike  # noqa: E402

from tinyser.archive import journal_path, read_rows  # noqa: E402

ENGINES = {"one process": [], "process pool, 2 workers": ["--workers", "2"],
           "Ray Data, 2 workers (local Ray)": ["--address", "local", "--workers", "2"]}


def generate(folder: Path, n: int) -> float:
    """``n`` clips in 20 subfolders (written only when missing) and two bad files; their seconds of audio."""
    total = 0.0
    for i in range(n):
        seconds = 1.5 + (i * 37 % 31) / 10  # 1.5-4.5 s
        rate = (16000, 22050, 44100)[i % 3]
        path = folder / f"batch{i % 20:02d}" / f"call{i:05d}.wav"
        total += round(seconds * rate) / rate
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            y = speechlike(seconds, rate, freq=100 + (i * 13) % 160, seed=i)
            sf.write(path, y, rate, subtype="PCM_16")
    (folder / "empty.wav").write_bytes(b"")
    (folder / "notes.wav").write_text("not audio\n")
    return total


def predict(folder: Path, out: Path, extra: list[str]) -> tuple[float, str]:
    cmd = [sys.executable, "-m", "tinyser", "predict", str(folder), "--out", str(out), *extra]
    t = time.perf_counter()
    done = subprocess.run(cmd, capture_output=True, text=True)
    wall = time.perf_counter() - t
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed ({done.returncode}): {done.stderr.strip()[-2000:]}")
    return wall, summary_line(done.stderr)


def summary_line(stderr: str) -> str:
    return next(line for line in reversed(stderr.splitlines()) if "files predicted" in line)


def by_path(rows: list[dict]) -> dict[str, dict]:
    out = {r["path"]: r for r in rows}
    if len(out) != len(rows):
        raise SystemExit("a file has more than one row")
    return out


def kill_and_resume(folder: Path, out: Path, n_rows: int) -> dict:
    """Kill `--workers 2 --out X.parquet` at half the rows, run it again."""
    cmd = [sys.executable, "-m", "tinyser", "predict", str(folder), "--out", str(out), "--workers", "2"]
    journal = journal_path(out)
    run = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    while run.poll() is None:
        if journal.exists() and journal.read_bytes().count(b"\n") >= n_rows // 2:
            break
        time.sleep(0.02)
    run.send_signal(signal.SIGKILL)
    run.wait()
    at_kill = journal.read_bytes().count(b"\n")
    torn = not journal.read_bytes().endswith(b"\n")
    t = time.perf_counter()
    done = subprocess.run(cmd, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"resume failed: {done.stderr.strip()[-2000:]}")
    return {"killed_at_rows": at_kill, "torn_last_line": torn, "resume_seconds": time.perf_counter() - t,
            "resume_summary": summary_line(done.stderr), "journal_left": journal.exists()}


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--files", type=int, default=2000)
    ap.add_argument("--folder", type=Path, help="where the generated archive is kept (default: a temporary folder)")
    ap.add_argument("--generate-only", action="store_true")
    args = ap.parse_args()
    folder = args.folder or Path(tempfile.mkdtemp(prefix="tinyser-archive-"))
    audio = generate(folder, args.files)
    n_rows = args.files + 2
    print(f"{folder}: {args.files} clips ({audio / 3600:.2f} h) and 2 bad files", flush=True)
    if args.generate_only:
        return
    small = folder.parent / f"{folder.name}-one-batch"
    shutil.rmtree(small, ignore_errors=True)
    shutil.copytree(folder / "batch00", small, ignore=lambda d, names: sorted(names)[16:])
    work = Path(tempfile.mkdtemp(prefix="tinyser-archive-out-"))
    rows, res = {}, {"machine": _report.machine(), "load_average_at_start": os.getloadavg()[0], "files": n_rows,
                     "clips": args.files, "audio_seconds": round(audio, 1), "engines": []}
    for name, extra in ENGINES.items():
        tag = name.split()[0].strip(",").lower()
        start_wall, _ = predict(small, work / f"{tag}-small.jsonl", extra)
        wall, summary = predict(folder, work / f"{tag}.jsonl", extra)
        rows[name] = by_path(read_rows(work / f"{tag}.jsonl"))
        steady = (args.files - 16) / (wall - start_wall)
        res["engines"].append({"engine": name, "args": extra, "wall_seconds": round(wall, 2),
                               "one_batch_seconds": round(start_wall, 2), "files_per_second": round(n_rows / wall, 2),
                               "audio_seconds_per_second": round(audio / wall, 1),
                               "steady_files_per_second": round(steady, 2), "summary": summary})
        print(res["engines"][-1], flush=True)
    first = next(iter(rows.values()))
    res["engines_identical"] = all(r == first for r in rows.values()) and len(first) == n_rows
    res["bad_rows"] = sum(r["error"] is not None for r in first.values())
    check = kill_and_resume(folder, work / "killed.parquet", n_rows)
    resumed = by_path(read_rows(work / "killed.parquet"))
    check["rows"] = len(resumed)
    check["identical_to_uninterrupted"] = resumed == rows["process pool, 2 workers"]
    res["kill_and_resume"] = check
    print(check, flush=True)
    shutil.rmtree(work)
    shutil.rmtree(small)
    _report.write("archive", res, markdown(res))
    print(markdown(res))
    if not (res["engines_identical"] and check["identical_to_uninterrupted"]):
        raise SystemExit("rows differ: see docs/archive.json")


def markdown(res: dict) -> str:
    one = res["engines"][0]
    lines = [
        "## Archive-scale predict (`benchmarks/archive.py`)", "",
        f"Reproduce: `python benchmarks/archive.py --files {res['clips']}` on {res['machine']} (the background "
        f"training paused; load average {res['load_average_at_start']:.2f} at the start). A generated archive of "
        f"{res['clips']:,} speech-like clips of 1.5-4.5 s ({res['audio_seconds'] / 3600:.2f} h at 16, 22.05 and "
        f"44.1 kHz, in 20 folders) plus 2 bad files, scored by `tinyser predict DIR --out X.jsonl` with the default "
        "model (wall time of the whole command, start-up included). \"One batch\" is the same command on 16 of the "
        "files: the start-up; \"steady\" is the rate once started.", "",
        "| engine | options | wall | files / s | s of audio / s | speed-up | one batch (start-up) | steady files / s |",
        "|---|---|---:|---:|---:|---:|---:|---:|"]
    for e in res["engines"]:
        lines.append(f"| {e['engine']} | {' '.join(f'`{a}`' for a in [' '.join(e['args'])] if a) or '-'} | "
                     f"{e['wall_seconds']:.1f} s | "
                     f"{e['files_per_second']:.1f} | {e['audio_seconds_per_second']:.0f} | "
                     f"{one['wall_seconds'] / e['wall_seconds']:.2f}x | {e['one_batch_seconds']:.1f} s | "
                     f"{e['steady_files_per_second']:.1f} |")
    k = res["kill_and_resume"]
    lines += [
        "", f"Rows identical across the three engines: {'yes' if res['engines_identical'] else 'NO'} "
        f"({res['files']:,} rows, {res['bad_rows']} with an error: the empty file and the text file).", "",
        f"Kill and resume: `tinyser predict DIR --out X.parquet --workers 2` killed (SIGKILL) with {k['killed_at_rows']:,} "
        f"of {res['files']:,} rows in its journal{' (last line torn)' if k['torn_last_line'] else ''}, then run again: "
        f"\"{re.sub(r'listed in [^)]*', 'listed in X.parquet', k['resume_summary'])}\" in "
        f"{k['resume_seconds']:.1f} s; {k['rows']:,} rows, identical to the "
        f"uninterrupted run: {'yes' if k['identical_to_uninterrupted'] else 'NO'}."]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
