"""Folder-per-label trees: ``root/<label>/**/*.wav``; the label is the first-level folder."""
from __future__ import annotations

from pathlib import Path

from ._common import Record, Skipped, audio_problem, iter_audio, rel_path

NAME, TITLE = "folders", "folder-per-label"


def label_dirs(root: Path) -> list[Path]:
    """First-level folders of ``root`` that hold audio at any depth.

    >>> [d.name for d in label_dirs(Path("mydata"))]   # doctest: +SKIP
    ['angry', 'happy', 'neutral']
    """
    subdirs = sorted(d for d in root.iterdir() if d.is_dir() and not d.name.startswith("."))
    return [d for d in subdirs if next(iter_audio(d), None) is not None]


def scan(root: Path, check_audio: bool = True) -> tuple[list[Record], list[Skipped]]:
    """Records and skipped files of a folder-per-label tree (see :func:`tinyser.corpora.scan`)."""
    records, skipped = [], []
    for p in iter_audio(root):
        rel = rel_path(p, root)
        if "/" not in rel:
            problem = f"not inside a label folder (expected {root.name}/<label>/{p.name})"
        else:
            problem = audio_problem(p) if check_audio else None
        if problem:
            skipped.append(Skipped(str(p), problem))
        else:
            records.append(Record(str(p), rel.split("/", 1)[0], None, NAME, {}, rel))
    return records, skipped
