"""Write one benchmark's results into docs/: its JSON file and its own
section of a shared Markdown page (other sections are kept)."""
from __future__ import annotations

import json
import os
import platform
import re
import sys
import time
from pathlib import Path

DOCS = Path(__file__).resolve().parents[1] / "docs"


def machine() -> str:
    return f"{platform.machine()}, {os.cpu_count()} cores, Python {sys.version.split()[0]}"


def add_data_argument(ap) -> None:
    """``--data``: the folder holding the corpora (default $TINYSER_DATA or ../shared/data)."""
    ap.add_argument("--data", type=Path, default=Path(os.environ.get("TINYSER_DATA", "../shared/data")))


def write(name: str, results: dict, markdown: str, page: str = "benchmarks.md") -> None:
    DOCS.mkdir(exist_ok=True)
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


def wall_seconds(run: Path) -> float:
    """Training wall time of a run made by :func:`timed_training`."""
    return json.loads((Path(run) / "wall.json").read_text())["seconds"]
