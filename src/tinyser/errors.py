"""Exceptions whose message is one line a user can act on.

Every error raised at tinyser's boundary derives from :class:`TinyserError`;
the CLI prints ``str(err)`` and exits non-zero, never a traceback.
"""
from __future__ import annotations

import os


class TinyserError(Exception):
    """Base class: the message is a single line naming what went wrong."""


class AudioError(TinyserError):
    """An audio file cannot be used. ``str(err)`` is ``"<path>: <reason>"``.

    >>> str(AudioError("clip.wav", "file is empty (0 bytes)"))
    'clip.wav: file is empty (0 bytes)'
    """

    def __init__(self, path: str | os.PathLike | None, reason: str):
        self.path = None if path is None else os.fspath(path)
        self.reason = reason
        super().__init__(f"{self.path}: {reason}" if self.path else reason)


class CorpusError(TinyserError):
    """A folder, manifest or label mapping cannot be read as a dataset."""


class ConfigError(TinyserError):
    """A configuration value is invalid or does not match the model."""
