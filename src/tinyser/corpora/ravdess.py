"""RAVDESS: ``Actor_01/03-01-05-01-02-01-01.wav``.

Seven two-digit fields: modality, vocal channel, emotion, intensity,
statement, repetition, actor (odd male, even female). Speech and song are both
accepted.
"""
from __future__ import annotations

import re
from pathlib import Path

from ._common import Parsed, scan_named

NAME, TITLE = "ravdess", "RAVDESS"
EXPECTED = ("e.g. 03-01-05-01-02-01-01.wav: modality 01-03, channel 01-02, emotion 01-08, "
            "intensity 01-02, statement 01-02, repetition 01-02, actor 01-24")
EMOTIONS = {"01": "neutral", "02": "calm", "03": "happy", "04": "sad",
            "05": "angry", "06": "fearful", "07": "disgust", "08": "surprised"}
MODALITIES = {"01": "full-AV", "02": "video-only", "03": "audio-only"}
_NAME = re.compile(r"(?P<modality>0[1-3])-(?P<channel>0[12])-(?P<emotion>0[1-8])-(?P<intensity>0[12])"
                   r"-(?P<statement>0[12])-(?P<repetition>0[12])-(?P<actor>0[1-9]|1\d|2[0-4])")


def parse(path: Path) -> Parsed | None:
    """Label, speaker (actor) and extra fields from a RAVDESS file name, or ``None``.

    >>> parse(Path("Actor_01/03-01-05-02-01-02-01.wav"))[:2]
    ('angry', '01')
    """
    m = _NAME.fullmatch(path.stem)
    if not m:
        return None
    extra = {
        "modality": MODALITIES[m["modality"]],
        "channel": "speech" if m["channel"] == "01" else "song",
        "intensity": "normal" if m["intensity"] == "01" else "strong",
        "statement": int(m["statement"]),
        "repetition": int(m["repetition"]),
        "gender": "male" if int(m["actor"]) % 2 else "female",
    }
    return EMOTIONS[m["emotion"]], m["actor"], extra


def scan(root: Path, check_audio: bool = True):
    """Records and skipped files of a RAVDESS tree (see :func:`tinyser.corpora.scan`)."""
    return scan_named(root, NAME, parse, TITLE, EXPECTED, check_audio)
