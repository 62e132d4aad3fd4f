"""Tiled padding: a window's sound repeated to fill it, so that a short
utterance looks like a long one instead of speech in a sea of silence.

A clip shorter than the model's window is zero-padded (``predict``), and a
phrase between pauses on a stream sits among quiet frames (``listen``, the
device). A model that pools over time then sees an average of speech and
silence whose mix depends on the utterance's length: a one-second phrase is a
different input from the same phrase spoken for two seconds (issue 15).

With tiling, each model window is rearranged after standardisation: its
*sound span* runs from its first to its last frame whose first coefficient
(c0, the frame's log level) is at least ``gate`` (the adaptive
standardisation's voiced-frame gate, white noise at -70 dBFS by default), and the window's
rows become that span repeated from its start::

    span   = rows first..last with c0 >= gate       (raw, unstandardised c0)
    out[r] = in[first + r mod (last - first + 1)]   for r = 0..frames-1

A window whose frames are all sound is unchanged; one with no sound is left as
it is (voice activity does not score it). Training applies the same step to
every window, cropped or not, so padding carries no class information and the
model never sees a padded window. The C frontend does the same row copies
(``tinyser_window_copy`` in ``deploy/c/tinyser_frontend.c``), so the device's
int8 inputs are identical.

>>> raw = np.array([[[-9.0], [1.0], [2.0], [-9.0]]], np.float32)
>>> tile(raw * 10, raw, TileConfig(gate=0.0))[0, :, 0].tolist()
[10.0, 20.0, 10.0, 20.0]
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..errors import ConfigError


@dataclass(frozen=True)
class TileConfig:
    """``gate``: the c0 threshold of a sound frame, in the frontend's own units
    (:func:`tinyser.features.adaptive.gate_for_level` turns dBFS into it).

    >>> TileConfig.from_dict(TileConfig(gate=-3.5).to_dict()).gate
    -3.5
    """

    gate: float = 0.0

    def __post_init__(self):
        if not isinstance(self.gate, (int, float)) or not np.isfinite(self.gate):
            raise ConfigError(f"tiled padding: gate must be a finite number, not {self.gate!r}")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> TileConfig:
        if not isinstance(d, dict) or set(d) != {"gate"}:
            raise ConfigError(f"tiled padding: expected the key gate, got {d!r}")
        return cls(float(d["gate"]))


def sound_spans(raw: np.ndarray, gate: float) -> tuple[np.ndarray, np.ndarray]:
    """First frame and length of each window's sound span (raw windows
    ``(n, frames, coeffs)``: from the first to the last frame whose c0 is at
    least ``gate``); a window without sound has length 0.

    >>> sound_spans(np.array([[[-1.0], [5.0], [-1.0], [5.0], [-1.0]]], np.float32), 0.0)
    (array([1]), array([3]))
    """
    sound = np.asarray(raw)[..., 0] >= np.float32(gate)
    frames = sound.shape[1]
    any_sound = sound.any(axis=1)
    first = np.where(any_sound, sound.argmax(axis=1), 0)
    last = frames - 1 - sound[:, ::-1].argmax(axis=1)
    return first, np.where(any_sound, last - first + 1, 0)


def tile(inputs: np.ndarray, raw: np.ndarray, config: TileConfig) -> np.ndarray:
    """``inputs`` (standardised windows ``(n, frames, coeffs)``) with each
    window's rows replaced by its sound span, found on ``raw``, repeated from
    its start (see the module docstring)."""
    inputs = np.asarray(inputs)
    first, length = sound_spans(raw, config.gate)
    length = np.where(length == 0, inputs.shape[1], length)  # no sound: the window as it is
    rows = first[:, None] + np.arange(inputs.shape[1])[None, :] % length[:, None]
    return np.take_along_axis(inputs, rows[:, :, None], axis=1)
