"""Write one benchmark's results into docs/: its JSON file and its own
section of a shared Markdown page (other sections are kept)."""
from __future__ import annotations

import json
import os
import platform
import re
import sys
from pathlib import Path

DOCS = Path(__file__).resolve().parents[1] / "docs"


def machine() -> str:
    return f"{platform.machine()}, {os.cpu_count()} cores, Python {sys.version.split()[0]}"


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
