"""Pieces shared by the corpus readers: the record types, the file walk and
the name-scheme driver used by every corpus that encodes labels in file names."""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping

from ..audio import probe
from ..errors import AudioError
from ..labels import canonical as _canonical

AUDIO_EXTENSIONS = frozenset({".wav", ".flac", ".ogg", ".mp3", ".aif", ".aiff", ".au", ".opus"})


@dataclass(frozen=True)
class Record:
    """One labelled clip.

    ``label`` is the corpus's native label until a scheme is applied;
    ``native`` keeps the native label and ``canonical`` the corpus-independent
    one. ``rel`` is the path relative to the scanned corpus root (``/``-separated).

    >>> r = Record("/d/emodb/wav/03a01Fa.wav", "happiness", "03", "emodb", rel="wav/03a01Fa.wav")
    >>> r.canonical, r.group, r.clip_id
    ('happy', 'emodb:03', 'emodb:wav/03a01Fa.wav')
    """

    path: str
    label: str
    speaker: str | None
    corpus: str
    extra: Mapping[str, Any] = field(default_factory=dict, compare=False, hash=False)
    rel: str = ""
    native: str = ""
    canonical: str = ""

    def __post_init__(self):
        if not self.rel:
            object.__setattr__(self, "rel", Path(self.path).name)
        if not self.native:
            object.__setattr__(self, "native", self.label)
        if not self.canonical:
            object.__setattr__(self, "canonical", _canonical(self.native))

    @property
    def group(self) -> str:
        """Speaker group ``corpus:speaker``; a clip of unknown speaker is its own group."""
        return f"{self.corpus}:{self.speaker}" if self.speaker is not None else self.clip_id

    @property
    def clip_id(self) -> str:
        """Stable id ``corpus:path relative to the corpus root``."""
        return f"{self.corpus}:{self.rel}"


@dataclass
class Skipped:
    """A file left out of a dataset, and why."""

    path: str
    reason: str


Parsed = tuple[str, str | None, dict]  # label, speaker, extra
Parser = Callable[[Path], "Parsed | None"]


def iter_audio(root: Path, per_dir: int | None = None) -> Iterator[Path]:
    """Audio files under ``root`` (recursive, sorted, hidden files and folders
    ignored, symlinked folders followed once). ``per_dir`` caps files per folder."""
    seen: set[str] = set()
    for d, dirs, files in os.walk(root, followlinks=True):
        real = os.path.realpath(d)
        if real in seen:
            dirs[:] = []
            continue
        seen.add(real)
        dirs[:] = sorted(x for x in dirs if not x.startswith("."))
        names = [f for f in sorted(files) if is_audio_name(f)]
        for f in names[:per_dir]:
            yield Path(d, f)


def is_audio_name(name: str) -> bool:
    """Whether a file name has an audio extension (case-insensitive), hidden files excluded."""
    return not name.startswith(".") and os.path.splitext(name)[1].lower() in AUDIO_EXTENSIONS


def rel_path(path: Path, root: Path) -> str:
    """``path`` relative to ``root`` with ``/`` separators (absolute if outside it)."""
    try:
        return path.relative_to(root).as_posix()
    except ValueError:
        return path.as_posix()


def audio_problem(path: Path) -> str | None:
    """The reason a file cannot be used as audio, or ``None`` when it is fine."""
    try:
        probe(path)
    except AudioError as e:
        return e.reason
    return None


def scan_named(root: Path, corpus: str, parse: Parser, title: str, expected: str,
               check_audio: bool) -> tuple[list[Record], list[Skipped]]:
    """Scan a tree whose file names carry the labels: every audio file is parsed
    by ``parse`` and, with ``check_audio``, probed."""
    records, skipped = [], []
    reason = f"name does not follow the {title} naming scheme ({expected})"
    for p in iter_audio(root):
        parsed = parse(p)
        problem = reason if parsed is None else (audio_problem(p) if check_audio else None)
        if problem:
            skipped.append(Skipped(str(p), problem))
            continue
        label, speaker, extra = parsed
        records.append(Record(str(p), label, speaker, corpus, extra, rel_path(p, root)))
    return records, skipped
