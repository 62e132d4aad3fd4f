"""IEMOCAP: labels come from ``Session1/dialog/EmoEvaluation/<dialog>.txt``.

Each utterance line reads ``[6.2901 - 8.2357]<TAB>Ses01F_impro01_F000<TAB>neu<TAB>[2.5, 2.5, 2.5]``;
its audio is ``Session1/sentences/wav/<dialog>/<utterance>.wav``. Utterances
labelled ``xxx`` (no agreement) or ``oth`` (other) are skipped.
"""
from __future__ import annotations

import re
from pathlib import Path

from ._common import Record, Skipped, audio_problem, rel_path

NAME, TITLE = "iemocap", "IEMOCAP"
LABELS = ("neu", "hap", "sad", "ang", "exc", "fru", "fea", "sur", "dis")
NO_LABEL = {"xxx": "no agreed label ('xxx')", "oth": "no agreed label ('oth', other)"}
_LINE = re.compile(r"\[(?P<start>[\d.]+) - (?P<end>[\d.]+)\]\s+(?P<utt>(?P<ses>Ses\d\d)[FM]_\w+_[FM]\d+)"
                   r"\s+(?P<label>\w+)\s+\[")


def eval_dirs(root: Path) -> list[Path]:
    """The ``EmoEvaluation`` folders under a corpus root or a single session folder.

    >>> eval_dirs(Path("IEMOCAP_full_release"))   # doctest: +SKIP
    [PosixPath('IEMOCAP_full_release/Session1/dialog/EmoEvaluation'), ...]
    """
    dirs = sorted(d for d in root.glob("Session*/dialog/EmoEvaluation") if d.is_dir())
    own = root / "dialog" / "EmoEvaluation"
    return dirs or ([own] if own.is_dir() else [])


def parse_line(line: str) -> dict | None:
    """Fields of one utterance line of an evaluation file, or ``None`` for other lines.

    >>> parse_line("[6.2901 - 8.2357]\\tSes01F_impro01_F000\\tneu\\t[2.5000, 2.5000, 2.5000]")["speaker"]
    'Ses01F'
    """
    m = _LINE.match(line.strip())
    if not m:
        return None
    utt = m["utt"]
    return {"utterance": utt, "dialog": utt.rsplit("_", 1)[0], "label": m["label"],
            "speaker": m["ses"] + utt.rsplit("_", 1)[1][0], "session": int(m["ses"][3:]),
            "start": float(m["start"]), "end": float(m["end"])}


def scan(root: Path, check_audio: bool = True) -> tuple[list[Record], list[Skipped]]:
    """Records and skipped utterances of an IEMOCAP tree (see :func:`tinyser.corpora.scan`)."""
    records, skipped = [], []
    for d in eval_dirs(root):
        for txt in sorted(d.glob("*.txt")):
            if not txt.name.startswith("."):
                _scan_eval_file(root, txt, check_audio, records, skipped)
    return records, skipped


def _scan_eval_file(root: Path, txt: Path, check_audio: bool, records: list, skipped: list) -> None:
    wav_dir = txt.parents[2] / "sentences" / "wav"
    for line in txt.read_text(encoding="utf-8", errors="replace").splitlines():
        u = parse_line(line)
        if u is None:
            continue
        wav = wav_dir / u["dialog"] / f"{u['utterance']}.wav"
        problem = _problem(u["label"], wav, txt, check_audio)
        if problem:
            skipped.append(Skipped(str(wav), problem))
            continue
        extra = {k: u[k] for k in ("session", "start", "end", "dialog")}
        records.append(Record(str(wav), u["label"], u["speaker"], NAME, extra, rel_path(wav, root)))


def _problem(label: str, wav: Path, txt: Path, check_audio: bool) -> str | None:
    if label in NO_LABEL:
        return NO_LABEL[label]
    if label not in LABELS:
        return f"unknown IEMOCAP label {label!r} in {txt.name}"
    if not wav.is_file():
        return f"audio file not found (listed in {txt.name})"
    return audio_problem(wav) if check_audio else None
