"""EMO-DB (Berlin Database of Emotional Speech): ``wav/03a01Fa.wav``.

Characters 1-2 are the speaker, 3-5 the text id, 6 the emotion letter and 7
the version.
"""
from __future__ import annotations

import re
from pathlib import Path

from ._common import Parsed, scan_named

NAME, TITLE = "emodb", "EMO-DB"
EXPECTED = "e.g. 03a01Fa.wav: speaker 2 digits, text id, emotion W/L/E/A/F/T/N, version letter"
EMOTIONS = {"W": "anger", "L": "boredom", "E": "disgust", "A": "fear",
            "F": "happiness", "T": "sadness", "N": "neutral"}
_NAME = re.compile(r"(?P<speaker>\d\d)(?P<text>[a-z]\d\d)(?P<emotion>[WLEAFTN])(?P<version>[a-z])")


def parse(path: Path) -> Parsed | None:
    """Label, speaker and extra fields from an EMO-DB file name, or ``None``.

    >>> parse(Path("wav/03a01Fa.wav"))
    ('happiness', '03', {'text': 'a01', 'version': 'a'})
    """
    m = _NAME.fullmatch(path.stem)
    if not m:
        return None
    return EMOTIONS[m["emotion"]], m["speaker"], {"text": m["text"], "version": m["version"]}


def scan(root: Path, check_audio: bool = True):
    """Records and skipped files of an EMO-DB tree (see :func:`tinyser.corpora.scan`)."""
    return scan_named(root, NAME, parse, TITLE, EXPECTED, check_audio)
