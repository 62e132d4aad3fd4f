"""CSV manifests: a header ``path,label[,speaker]`` and one row per clip.

Paths are absolute or relative to the CSV's folder. Further columns are kept
in ``Record.extra``.
"""
from __future__ import annotations

import csv
import os
from pathlib import Path

from ..errors import CorpusError
from ._common import Record, Skipped, audio_problem, rel_path

NAME, TITLE = "manifest", "CSV manifest"
REQUIRED = ("path", "label")


def read_rows(csv_path: Path) -> list[dict[str, str]]:
    """Rows of a manifest with lower-cased, stripped column names; raises
    :class:`CorpusError` for an unreadable file or missing columns.

    >>> read_rows(Path("train.csv"))[0]   # doctest: +SKIP
    {'path': 'clips/a.wav', 'label': 'angry', 'speaker': 'spk1'}
    """
    try:
        with open(csv_path, newline="", encoding="utf-8-sig") as f:
            reader = csv.DictReader(f)
            header = [(h or "").strip().lower() for h in reader.fieldnames or []]
            missing = [c for c in REQUIRED if c not in header]
            if missing:
                raise CorpusError(f"{csv_path}: manifest lacks column(s) {', '.join(missing)}; "
                                  "expected a header path,label[,speaker]")
            reader.fieldnames = header
            return [{k: (v or "").strip() for k, v in row.items() if k} for row in reader]
    except (OSError, UnicodeDecodeError, csv.Error) as e:
        raise CorpusError(f"{csv_path}: cannot read manifest ({getattr(e, 'strerror', None) or e})") from None


def scan(csv_path: Path, check_audio: bool = True) -> tuple[list[Record], list[Skipped]]:
    """Records and skipped rows of a manifest (see :func:`tinyser.corpora.scan`)."""
    root = csv_path.parent
    records, skipped, seen = [], [], set()
    for n, row in enumerate(read_rows(csv_path), start=2):
        if not row.get("path"):
            skipped.append(Skipped(f"{csv_path}:{n}", "manifest row has no path"))
            continue
        p = Path(os.path.normpath(root / Path(row["path"]).expanduser()))
        problem = _problem(p, row, n, seen, check_audio)
        seen.add(p)
        if problem:
            skipped.append(Skipped(str(p), problem))
            continue
        extra = {k: v for k, v in row.items() if k not in ("path", "label", "speaker")}
        records.append(Record(str(p), row["label"], row.get("speaker") or None, NAME, extra, rel_path(p, root)))
    return records, skipped


def _problem(p: Path, row: dict, n: int, seen: set, check_audio: bool) -> str | None:
    if not row.get("label"):
        return f"manifest row {n} has no label"
    if p in seen:
        return f"listed again in manifest row {n}"
    if not p.is_file():
        return "file not found" if not p.exists() else "not a file"
    return audio_problem(p) if check_audio else None
