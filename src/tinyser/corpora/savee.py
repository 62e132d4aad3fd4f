"""SAVEE (Surrey Audio-Visual Expressed Emotion): ``ALL/DC_a01.wav`` or ``DC/a01.wav``.

Speakers DC, JE, JK, KL; emotion codes a, d, f, h, n, sa, su and two digits.
"""
from __future__ import annotations

import re
from pathlib import Path

from ._common import Parsed, scan_named

NAME, TITLE = "savee", "SAVEE"
EXPECTED = "ALL/DC_a01.wav or DC/a01.wav: speaker DC/JE/JK/KL, emotion a/d/f/h/n/sa/su, 2 digits"
EMOTIONS = {"a": "anger", "d": "disgust", "f": "fear", "h": "happiness",
            "n": "neutral", "sa": "sadness", "su": "surprise"}
_SPEAKERS = "DC|JE|JK|KL"
_CODE = r"(?P<emotion>sa|su|a|d|f|h|n)(?P<number>\d\d)"
_FLAT = re.compile(rf"(?P<speaker>{_SPEAKERS})_{_CODE}")
_NESTED = re.compile(_CODE)
_SPEAKER_DIR = re.compile(_SPEAKERS)


def parse(path: Path) -> Parsed | None:
    """Label, speaker and extra fields from a SAVEE path, or ``None``.

    >>> parse(Path("ALL/JK_sa03.wav")), parse(Path("DC/su15.wav"))
    (('sadness', 'JK', {'number': 3}), ('surprise', 'DC', {'number': 15}))
    """
    m = _FLAT.fullmatch(path.stem)
    speaker = m["speaker"] if m else path.parent.name
    if not m:
        m = _NESTED.fullmatch(path.stem) if _SPEAKER_DIR.fullmatch(speaker) else None
    if not m:
        return None
    return EMOTIONS[m["emotion"]], speaker, {"number": int(m["number"])}


def scan(root: Path, check_audio: bool = True):
    """Records and skipped files of a SAVEE tree (see :func:`tinyser.corpora.scan`)."""
    return scan_named(root, NAME, parse, TITLE, EXPECTED, check_audio)
