"""Install size, install time and `tinyser predict` start-up: core against full install.

    python benchmarks/install.py [--kinds core,full] [--source PATH] [--work DIR] [--repeat 5]

For each kind, in a fresh virtual environment under a temporary folder:
``pip install "SOURCE[extras]" -c constraints.txt`` (core: no extra; full: ``[all]``),
timed; the environment's size on disk (all files, pip and setuptools included)
and its largest packages; then ``tinyser predict one.wav`` on a 3 s synthetic
speech-like WAV (benchmarks/speechlike.py), wall time of the whole command
(interpreter start-up, imports, model load, features, inference, output):
the first run (byte-code not yet compiled) and the median and best of
``--repeat`` more; which heavy modules that command imported (TensorFlow must
not be one); and ``tinyser info default``. SOURCE defaults to a `git archive` of
HEAD, so the figures belong to the commit recorded in provenance.

Download time is part of the install time: pip downloads every wheel (this
machine's pip has no HTTP cache), so it depends on the network. Writes
docs/install.json and the install section of docs/benchmarks.md.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
import _report  # noqa: E402
import speechlike  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
KINDS = {"core": "", "full": "[all]"}
#: modules a core `predict` must not import (TensorFlow above all: seconds of start-up and 1 GB)
HEAVY = ("tensorflow", "keras", "sklearn", "librosa", "matplotlib", "sounddevice", "cmsisdsp", "tflite_micro",
         "onnx", "onnxruntime", "tf2onnx", "audiomentations", "pyroomacoustics", "ray")
GOAL_MB, GOAL_S = 300, 1.0

PROBE = """
import json, sys
from tinyser.cli import app
try:
    app(sys.argv[1:])
except SystemExit:
    pass
print("IMPORTED " + json.dumps(sorted(m for m in {heavy!r} if m in sys.modules)))
"""


def dir_bytes(path: Path) -> int:
    """Apparent size of every regular file under ``path``."""
    total = 0
    for root, _, files in os.walk(path):
        for f in files:
            p = Path(root, f)
            if not p.is_symlink():
                total += p.stat().st_size
    return total


def largest(site: Path, n: int = 6) -> list[dict]:
    """The ``n`` largest top-level entries of site-packages, MB."""
    sizes = {}
    for entry in site.iterdir():
        if entry.name.endswith((".dist-info", ".pth")) or entry.name == "__pycache__":
            continue
        sizes[entry.name] = dir_bytes(entry) if entry.is_dir() else entry.stat().st_size
    top = sorted(sizes.items(), key=lambda kv: -kv[1])[:n]
    return [{"name": k, "mb": round(v / 1e6, 1)} for k, v in top]


def source_tree(work: Path) -> Path:
    """A clean copy of HEAD (the commit recorded with the figures)."""
    src = work / "src"
    src.mkdir()
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", "HEAD"], check=True, capture_output=True).stdout
    subprocess.run(["tar", "-x", "-C", str(src)], input=archive, check=True)
    return src


def run(cmd: list, **kw) -> subprocess.CompletedProcess:
    done = subprocess.run(cmd, capture_output=True, text=True, **kw)
    if done.returncode:
        sys.exit(f"{' '.join(map(str, cmd))} failed ({done.returncode}):\n{done.stdout[-2000:]}{done.stderr[-4000:]}")
    return done


def cpu_seconds() -> float:
    """User + system CPU time of this process's finished children so far."""
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def measure(kind: str, source: Path, commit: str | None, work: Path, wav: Path, repeat: int) -> dict:
    venv = work / kind
    t = time.perf_counter()
    run([sys.executable, "-m", "venv", str(venv)])
    venv_s = time.perf_counter() - t
    py, exe = venv / "bin" / "python", venv / "bin" / "tinyser"
    t = time.perf_counter()
    run([str(py), "-m", "pip", "install", "--quiet", f"{source}{KINDS[kind]}", "-c", str(source / "constraints.txt")])
    install_s = time.perf_counter() - t
    site = next((venv / "lib").glob("python3*/site-packages"))
    packages = json.loads(run([str(py), "-m", "pip", "list", "--format=json"]).stdout)
    env = {k: v for k, v in os.environ.items() if not k.startswith("TINYSER_")}
    times, cpu, load = [], [], os.getloadavg()[0]
    for _ in range(repeat + 1):
        t, c = time.perf_counter(), cpu_seconds()
        done = run([str(exe), "predict", str(wav), "--json"], env=env)
        times.append(time.perf_counter() - t)
        cpu.append(cpu_seconds() - c)
    result = json.loads(done.stdout)["results"][0]
    probe = run([str(py), "-c", PROBE.format(heavy=HEAVY), "predict", str(wav)], env=env).stdout
    imported = json.loads(probe.rsplit("IMPORTED ", 1)[1])
    info = run([str(exe), "info", "default"], env=env).stdout
    return {
        "commit": commit,
        "extras": KINDS[kind] or "(none)",
        "venv_seconds": round(venv_s, 2),
        "install_seconds": round(install_s, 1),
        "size_mb": round(dir_bytes(venv) / 1e6, 1),
        "packages": len(packages),
        "versions": {p["name"]: p["version"] for p in packages},
        "largest": largest(site),
        "repeat": repeat,
        "predict_first_seconds": round(times[0], 3),
        "predict_median_seconds": round(statistics.median(times[1:]), 3),
        "predict_best_seconds": round(min(times[1:]), 3),
        "predict_median_cpu_seconds": round(statistics.median(cpu[1:]), 3),
        "load_average": round(load, 1),
        "predict_label": result.get("label"),
        "heavy_imported_by_predict": imported,
        "tensorflow_imported": "tensorflow" in imported,
        "info_ok": "labels" in info.lower() or "frontend" in info.lower(),
    }


def markdown(res: dict, cmd: str) -> str:
    rows = []
    for kind, r in res["kinds"].items():
        rows.append(f"| {kind} (`{r['extras']}`) | {r['packages']} | {r['size_mb']:.0f} MB | {r['install_seconds']:.0f} s "
                    f"| {r['predict_first_seconds']:.2f} s | {r['predict_median_seconds']:.2f} s "
                    f"| {r.get('predict_median_cpu_seconds', float('nan')):.2f} s | {r.get('load_average', '?')} "
                    f"| {', '.join(r['heavy_imported_by_predict']) or 'none'} | `{(r.get('commit') or '?')[:10]}` |")
    lines = [
        "## Install size and `predict` start-up: core against full (`benchmarks/install.py`)",
        "",
        "Fresh virtual environments, `pip install \"tinyser{extras}\" -c constraints.txt` from a clean copy of the "
        f"commit named in the table; {res['machine']}. Size: every file of the environment (pip and setuptools "
        "included). Install time: `pip install` alone, downloads included (no pip cache here). `predict`: wall "
        "time of `tinyser predict one.wav --json` on a 3 s speech-like WAV, interpreter start-up, imports, model "
        "load, features, inference and output included: the first run, then the median of the next ones (`repeat` "
        "in docs/install.json) and their median CPU time (user + system). This machine is shared with a training job (load average in "
        "the table, 2 cores), so wall times are inflated; the CPU time is what an idle machine's wall time "
        "would be close to.",
        "",
        "| install | packages | size | install time | predict, first | predict, median | CPU | load | heavy modules "
        "predict imports | commit |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---|---|",
        *rows,
        "",
    ]
    core = res["kinds"].get("core")
    if core:
        big = ", ".join(f"{p['name']} {p['mb']:.0f}" for p in core["largest"])
        size_gap = core["size_mb"] - GOAL_MB
        wall = core["predict_median_seconds"]
        cpu = core.get("predict_median_cpu_seconds", wall)
        parts = [f"size {core['size_mb']:.0f} MB: " + ("meets" if size_gap <= 0 else f"{size_gap:.0f} MB over")
                 + f" the {GOAL_MB} MB goal",
                 f"predict {wall:.2f} s wall ({cpu:.2f} s CPU): " + (
                     "meets" if wall <= GOAL_S else
                     f"{wall - GOAL_S:.2f} s over" + (" (on CPU time it meets" if cpu <= GOAL_S else
                                                      f" ({cpu - GOAL_S:.2f} s over on CPU time too") + ")")
                 + f" the {GOAL_S:.0f} s goal",
                 "TensorFlow " + ("imported (a bug)" if core["tensorflow_imported"] else "not imported")]
        lines += [f"Core: {'; '.join(parts)}. Its largest packages (MB): {big}.", ""]
    lines.append(f"Reproduce: `{cmd}`")
    return "\n".join(lines)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--kinds", default="core,full", help="comma-separated: core, full")
    ap.add_argument("--source", type=Path, help="the project to install (default: a clean copy of HEAD)")
    ap.add_argument("--work", type=Path, help="folder for the environments (default: a temporary one, removed)")
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()
    kinds = [k for k in args.kinds.split(",") if k]
    unknown = set(kinds) - set(KINDS)
    if unknown:
        ap.error(f"unknown kind(s) {', '.join(sorted(unknown))}; known: {', '.join(KINDS)}")
    work = args.work or Path(tempfile.mkdtemp(prefix="tinyser-install-"))
    work.mkdir(parents=True, exist_ok=True)
    try:
        source = args.source.resolve() if args.source else source_tree(work)
        commit = _report.git_commit(args.source) if args.source else _report.git_commit().split("+")[0]
        wav = speechlike.write(work / "one.wav")
        out_file = _report.DOCS / "install.json"
        old = json.loads(out_file.read_text()).get("kinds", {}) if out_file.exists() else {}
        res = {"machine": _report.machine(), "repeat": args.repeat, "commit": commit,
               "goal": {"core_mb": GOAL_MB, "predict_seconds": GOAL_S}, "kinds": {}}
        for kind in KINDS:  # keep the other kind's figures when only one is measured
            if kind in kinds:
                print(f"{kind}: installing and measuring ...", flush=True)
                res["kinds"][kind] = measure(kind, source, commit, work, wav, args.repeat)
                print(json.dumps(res["kinds"][kind], indent=1), flush=True)
            elif kind in old:
                res["kinds"][kind] = old[kind]
        cmd = "python benchmarks/install.py" + ("" if args.kinds == "core,full" else f" --kinds {args.kinds}")
        _report.write("install", res, markdown(res, "python benchmarks/install.py"))
        print(f"wrote docs/install.json and docs/benchmarks.md ({cmd})")
    finally:
        if not args.work:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
