"""TESS (Toronto emotional speech set): ``OAF_angry/OAF_back_angry.wav``.

The speaker is OAF (older) or YAF (younger); the last part of the name is the
emotion. ``ps``, ``pleasant_surprise`` and ``pleasant_surprised`` are all
read as the native label ``ps``. A file whose name breaks the scheme (the
release has ``OAF_neutral/OA_bite_neutral.wav``) is read from its folder,
which names speaker and emotion, when the name still ends in that emotion.
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
    >>> parse(Path("OAF_neutral/OA_bite_neutral.flac"))
    ('neutral', 'OAF', {'word': 'bite'})
    """
    m = _NAME.fullmatch(path.stem)
    if not m:
        folder = re.fullmatch(r"(?P<speaker>[OY]AF)_(?P<emotion>[a-z_]+)", path.parent.name, re.IGNORECASE)
        word = re.fullmatch(r"[OY]A_?(?P<word>[a-z]+)_(?P<emotion>[a-z_]+)", path.stem, re.IGNORECASE)
        if not (folder and word and folder["emotion"].lower() == word["emotion"].lower()):
            return None
        m = _NAME.fullmatch(f"{folder['speaker']}_{word['word']}_{folder['emotion']}")
        if not m:
            return None
    emotion = m["emotion"].lower()
    label = "ps" if "surprise" in emotion else emotion
    return label, m["speaker"].upper(), {"word": m["word"].lower()}


def scan(root: Path, check_audio: bool = True):
    """Records and skipped files of a TESS tree (see :func:`tinyser.corpora.scan`)."""
    return scan_named(root, NAME, parse, TITLE, EXPECTED, check_audio)
