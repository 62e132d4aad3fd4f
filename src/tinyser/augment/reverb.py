"""Reverberation: convolution with a synthetic room impulse response."""
from __future__ import annotations

import math
import numbers
from dataclasses import dataclass

import numpy as np
from scipy.signal import fftconvolve

from ..errors import ConfigError
from ._base import Transform, _isolated_global_random

SPEED_OF_SOUND = 343.0  # m/s
WALL_MARGIN = 0.5       # m: source and microphone stay this far from every wall
MIN_DISTANCE = 0.3      # m: closest source-microphone distance


def _positions(dims: np.ndarray, max_distance: float, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """A microphone and a talker inside the room, ``MIN_DISTANCE``..``max_distance`` apart.

    Heights: microphone 0.7-1.5 m (desk, hand, lapel), talker's mouth 1.1-1.8 m.
    32 candidate talker positions are drawn at once and the first that fits is
    used, so the number of draws from ``rng`` is fixed.
    """
    lo = np.array([WALL_MARGIN, WALL_MARGIN, 0.7])
    hi = np.array([dims[0] - WALL_MARGIN, dims[1] - WALL_MARGIN, min(1.5, dims[2] - WALL_MARGIN)])
    mic = rng.uniform(lo, hi)
    lo_s = np.array([WALL_MARGIN, WALL_MARGIN, 1.1])
    hi_s = np.array([dims[0] - WALL_MARGIN, dims[1] - WALL_MARGIN, min(1.8, dims[2] - WALL_MARGIN)])
    candidates = rng.uniform(lo_s, hi_s, size=(32, 3))
    d = np.linalg.norm(candidates - mic, axis=1)
    ok = np.flatnonzero((d >= MIN_DISTANCE) & (d <= max_distance))
    if ok.size:
        return mic, candidates[ok[0]]
    # Practically never (a tiny max_distance): the candidate nearest the wanted band.
    return mic, candidates[int(np.argmin(np.abs(d - np.clip(d, MIN_DISTANCE, max_distance))))]


@dataclass(frozen=True)
class Reverb(Transform):
    """Convolve with the impulse response of a random shoebox room.

    Each call draws a room (length and width uniform in ``[min_room_m,
    max_room_m]``, height 2.4-4 m), a reverberation time RT60 uniform in
    ``[min_rt60, max_rt60]`` seconds, a microphone and a talker
    (``0.3``..``max_distance_m`` apart, at least 0.5 m from the walls).  The
    impulse response is built in two parts, cheap enough for training:

    * **early part, pyroomacoustics' image-source method** (``ShoeBox``, walls
      of one energy absorption that Sabine's formula gives for the drawn RT60,
      reflections up to ``max_order``): the direct path and the early
      reflections that carry the room's geometry;
    * **late tail, a documented statistical model**: from the time by which
      every reflection of order ``max_order`` has arrived (``(max_order - 1) x
      shortest room side / c``), Gaussian noise drawn from ``rng`` decaying by
      60 dB per RT60, whose level continues the image-source energy there.  A
      capped image-source method alone stops the decay far short of the RT60
      (order 10 in a 5 x 4 x 3 m room measures 0.15 s for a 0.8 s room, order
      45 still 0.67 s); raising the order until it does costs 10-100 ms per
      call.  With the tail the response's measured RT60 is the drawn one
      within about 10 %.

    The response is cut at ``max_rir_seconds`` and starts at the direct path,
    so the speech is not delayed; the result is ``fftconvolve(x, rir)`` cut to
    the input's length and rescaled to the input's RMS.  About 5-10 ms per
    call for a 3 s clip at 16 kHz.  pyroomacoustics runs with the global
    random generators seeded from ``rng`` and restored (it draws nothing in
    this mode; it is a guard).  Limits: RT60 0.05-3 s, room sides 2-50 m,
    talker distance 0.3-20 m, max_order 0-30, max_rir_seconds 0.05-3.

    >>> import numpy as np
    >>> x = np.zeros(16000, np.float32); x[1000] = 1.0
    >>> y = Reverb(min_rt60=0.5, max_rt60=0.5, p=1.0)(x, 16000, np.random.default_rng(0))
    >>> int(np.argmax(np.abs(y))), bool(np.abs(y[1000 + 4000:1000 + 4800]).max() > 0)
    (1000, True)
    """

    min_rt60: float = 0.2
    max_rt60: float = 0.8
    min_room_m: float = 3.0
    max_room_m: float = 10.0
    max_distance_m: float = 3.0
    max_order: int = 8
    max_rir_seconds: float = 0.5
    p: float = 0.3

    name = "reverb"
    _bounds = {"min_rt60": (0.05, 3.0), "max_rt60": (0.05, 3.0), "min_room_m": (2.0, 50.0),
               "max_room_m": (2.0, 50.0), "max_distance_m": (MIN_DISTANCE, 20.0),
               "max_rir_seconds": (0.05, 3.0)}
    _ranges = (("min_rt60", "max_rt60"), ("min_room_m", "max_room_m"))

    def __post_init__(self) -> None:
        v = self.max_order
        if isinstance(v, bool) or not isinstance(v, numbers.Real) or v != int(v) or not 0 <= v <= 30:
            raise ConfigError(f"{self.name}: max_order must be an integer within [0, 30], got {v!r}")
        object.__setattr__(self, "max_order", int(v))
        super().__post_init__()

    def room_impulse_response(self, sample_rate: int, rng: np.random.Generator) -> np.ndarray:
        """Draw a room and return its impulse response (float64, direct path at index 0).

        >>> import numpy as np
        >>> h = Reverb(min_rt60=0.3, max_rt60=0.3).room_impulse_response(16000, np.random.default_rng(0))
        >>> int(np.argmax(np.abs(h))), h.shape[0] <= 8000
        (0, True)
        """
        from ..extras import need

        pra = need("pyroomacoustics", "the reverb augmentation")  # heavy import (about 2 s), deferred

        rt60 = float(rng.uniform(self.min_rt60, self.max_rt60))
        dims = np.array([rng.uniform(self.min_room_m, self.max_room_m),
                         rng.uniform(self.min_room_m, self.max_room_m),
                         rng.uniform(2.4, 4.0)])
        mic, src = _positions(dims, self.max_distance_m, rng)
        volume = float(np.prod(dims))
        surface = 2.0 * float(dims[0] * dims[1] + dims[0] * dims[2] + dims[1] * dims[2])
        # Sabine: RT60 = 24 ln(10) V / (c S a)  ->  the walls' energy absorption a.
        absorption = float(np.clip(24.0 * math.log(10.0) * volume / (SPEED_OF_SOUND * surface * rt60), 0.01, 0.99))
        with _isolated_global_random(rng):
            room = pra.ShoeBox(dims, fs=sample_rate, materials=pra.Material(absorption),
                               max_order=self.max_order, air_absorption=False, ray_tracing=False)
            room.add_source(src)
            room.add_microphone(mic)
            room.compute_rir()
            early = np.asarray(room.rir[0][0], dtype=np.float64)
        # Start at the direct path (pyroomacoustics adds a fractional-delay filter's
        # half length and the time of flight before it).
        early = early[int(np.argmax(np.abs(early))):]
        length = max(1, int(round(self.max_rir_seconds * sample_rate)))
        flight = float(np.linalg.norm(src - mic)) / SPEED_OF_SOUND
        mixing = max(self.max_order - 1, 1) * float(dims.min()) / SPEED_OF_SOUND - flight
        start = min(max(int(round(mixing * sample_rate)), 1), early.shape[0], length)
        rir = np.zeros(length)
        rir[:start] = early[:start]
        if start < length:
            # Level: the image-source energy over the last 10 ms before the tail.
            w = max(1, int(0.01 * sample_rate))
            level = float(np.sqrt(np.mean(np.square(early[max(0, start - w):start]))))
            t = np.arange(length - start) / sample_rate
            decay = np.exp(-3.0 * math.log(10.0) * t / rt60)  # amplitude: -60 dB after rt60
            rir[start:] = level * decay * rng.standard_normal(length - start)
        return rir

    def _apply(self, x: np.ndarray, sample_rate: int, rng: np.random.Generator) -> np.ndarray:
        rir = self.room_impulse_response(sample_rate, rng)
        n = x.shape[0]
        y = fftconvolve(x, rir[:n].astype(np.float32))[:n]  # single precision: half the cost
        x_rms = float(np.sqrt(np.mean(np.square(x, dtype=np.float64))))
        y_rms = float(np.sqrt(np.mean(np.square(y, dtype=np.float64))))
        if x_rms == 0.0 or y_rms == 0.0:
            return x.copy()
        return (y * (x_rms / y_rms)).astype(np.float32)
