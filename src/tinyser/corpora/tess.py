"""TESS (Toronto emotional speech set): ``OAF_angry/OAF_back_angry.wav``.

The speaker is OAF (older) or YAF (younger); the last part of the name is the
emotion. ``ps``, ``pleasant_surprise`` and ``pleasant_surprised`` are all
read as the native label ``ps``.
"""
from __future__ import annotations

import re
from pathlib import Path

from ._common import Parsed, scan_named

NAME, TITLE = "tess", "TESS"
EXPECTED = "e.g. OAF_back_angry.wav: OAF or YAF, word, angry/disgust/fear/happy/neutral/ps/sad"
_NAME = re.compile(r"(?P<speaker>[OY]AF)_(?P<word>[a-z]+)_(?P<emotion>angry|disgust|fear|happy|neutral|sad"
                   r"|ps|pleasant_surprised?|surprised?)", re.IGNORECASE)


def parse(path: Path) -> Parsed | None:
    """Label, speaker and extra fields from a TESS file name, or ``None``.

    >>> parse(Path("YAF_pleasant_surprised/YAF_back_ps.wav"))
    ('ps', 'YAF', {'word': 'back'})
    """
    m = _NAME.fullmatch(path.stem)
    if not m:
        return None
    emotion = m["emotion"].lower()
    label = "ps" if "surprise" in emotion else emotion
    return label, m["speaker"].upper(), {"word": m["word"].lower()}


def scan(root: Path, check_audio: bool = True):
    """Records and skipped files of a TESS tree (see :func:`tinyser.corpora.scan`)."""
    return scan_named(root, NAME, parse, TITLE, EXPECTED, check_audio)
