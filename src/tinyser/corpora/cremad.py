"""CREMA-D: ``AudioWAV/1001_DFA_ANG_XX.wav``.

Actor 1001-1091, sentence code, emotion code and emotion level (LO, MD, HI,
or XX for unspecified).
"""
from __future__ import annotations

import re
from pathlib import Path

from ._common import Parsed, scan_named

NAME, TITLE = "cremad", "CREMA-D"
SENTENCES = ("IEO", "TIE", "IOM", "IWW", "TAI", "MTI", "IWL", "ITH", "DFA", "ITS", "TSI", "WSI")
EMOTIONS = {"ANG": "anger", "DIS": "disgust", "FEA": "fear", "HAP": "happy", "NEU": "neutral", "SAD": "sad"}
LEVELS = {"LO": "low", "MD": "medium", "HI": "high", "XX": "unspecified"}
EXPECTED = "e.g. 1001_DFA_ANG_XX.wav: actor 1001-1091, sentence, emotion ANG/DIS/FEA/HAP/NEU/SAD, level LO/MD/HI/XX"
_NAME = re.compile(rf"(?P<actor>10[0-8]\d|109[01])_(?P<sentence>{'|'.join(SENTENCES)})"
                   rf"_(?P<emotion>{'|'.join(EMOTIONS)})_(?P<level>{'|'.join(LEVELS)})")


def parse(path: Path) -> Parsed | None:
    """Label, speaker (actor) and extra fields from a CREMA-D file name, or ``None``.

    >>> parse(Path("AudioWAV/1001_DFA_ANG_XX.wav"))
    ('anger', '1001', {'sentence': 'DFA', 'level': 'unspecified'})
    """
    m = _NAME.fullmatch(path.stem)
    if not m or m["actor"] == "1000":
        return None
    return EMOTIONS[m["emotion"]], m["actor"], {"sentence": m["sentence"], "level": LEVELS[m["level"]]}


def scan(root: Path, check_audio: bool = True):
    """Records and skipped files of a CREMA-D tree (see :func:`tinyser.corpora.scan`)."""
    return scan_named(root, NAME, parse, TITLE, EXPECTED, check_audio)
