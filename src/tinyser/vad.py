"""Voice activity: which windows of a stream hold speech, relative to the
recording's own noise floor, the same rule in Python and in the C frontend
(``tinyser_vad_frame`` in ``deploy/c/tinyser_frontend.c``).

Each feature frame (the ``cmsis_mfcc`` frame grid: ``frame_length`` samples
every ``hop_length`` from the start of the stream) is analysed as the prosody
channels are (:mod:`tinyser.features.prosody`): its loudness ``L`` (dB, the
50-4000 Hz band's mean square) and voicing strength ``s`` (window-corrected
normalised autocorrelation peak, 60-500 Hz). A noise floor ``f`` (dB) follows
the stream, falling at once and rising slowly (float32, in this order)::

    first frame:  f = max(L - margin_db, lowest)      lowest = min_level_db - margin_db
    then:         f = max(L, lowest)                   if L < f
                  f = min(f + rise, L)       otherwise   (rise = rise_db_per_second * hop seconds)
    speech frame: L >= f + margin_db  and  s >= min_voicing  and  L >= min_level_db

A *window* is speech when at least ``min_frames = ceil(min_speech_seconds / hop
seconds)`` of the frames that lie wholly inside it are speech frames.

So DC (removed below 50 Hz) and silence are never speech; stationary noise
(white, pink) has no periodicity and a level the floor reaches; hum is
periodic but stationary, so the floor sits on it; speech rises and falls by
tens of dB between syllables and is voiced. Quiet speech counts as long as it
stands out from its own recording's floor.

Measured (``benchmarks/vad.py``, docs/benchmarks.md): RAVDESS clips with no
speech window 98 of 1,194 under the old fixed -45 dBFS rule, 0 with this one
(EMO-DB, TESS, SAVEE: 0 and 0); windows of generated white and pink noise, DC,
50/60 Hz hum with harmonics and steady tones called speech: all before, none
after. Hum that starts after digital silence counts until the floor has risen
to it (about 2.5 s at -20 dBFS).

The configuration travels in a model's metadata under ``"voice"``
(:meth:`VoiceConfig.to_dict`); models without it get the defaults.

>>> import numpy as np
>>> VoiceConfig().is_voiced(np.zeros(32000, np.float32))
False
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from .errors import ConfigError


@dataclass(frozen=True)
class VoiceConfig:
    """The voice-activity rule (see the module docstring). ``is_voiced`` judges
    one window alone (its first frame starts the floor); a :class:`VoiceActivity`
    from :meth:`tracker` follows a whole stream, as ``Stream`` and the device do.

    >>> VoiceConfig.from_dict(VoiceConfig(margin_db=6.0).to_dict()).margin_db
    6.0
    """

    margin_db: float = 9.0
    rise_db_per_second: float = 15.0
    min_voicing: float = 0.5
    min_level_db: float = -60.0
    min_speech_seconds: float = 0.1

    def __post_init__(self):
        for f in dataclasses.fields(self):
            v = getattr(self, f.name)
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
                raise ConfigError(f"voice activity: {f.name} must be a finite number, not {v!r}")
        if self.margin_db < 0 or self.rise_db_per_second <= 0 or self.min_speech_seconds < 0:
            raise ConfigError("voice activity: margin_db and min_speech_seconds must be >= 0, "
                              "rise_db_per_second > 0")
        if not 0 <= self.min_voicing <= 1:
            raise ConfigError("voice activity: min_voicing must be in [0, 1]")

    def to_dict(self) -> dict[str, float]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any] | None) -> VoiceConfig:
        """The config of a model's metadata entry; the defaults when ``d`` is None."""
        if d is None:
            return cls()
        known = {f.name for f in dataclasses.fields(cls)}
        if not isinstance(d, dict) or set(d) - known:
            raise ConfigError(f"voice activity: expected keys among {', '.join(sorted(known))}, got {d!r}")
        try:
            return cls(**{k: float(v) for k, v in d.items()})
        except (TypeError, ValueError):
            raise ConfigError(f"voice activity: values must be numbers, got {d!r}") from None

    def tracker(self, sample_rate: int = 16000, frontend=None) -> VoiceActivity:
        """A streaming :class:`VoiceActivity` on ``frontend``'s frame grid (a
        ``cmsis_mfcc`` config) or, for other frontends, 64 ms frames every 16 ms."""
        return VoiceActivity(self, analysis_config(sample_rate, frontend))

    def is_voiced(self, window: np.ndarray, sample_rate: int = 16000, frontend=None) -> bool:
        """Whether one window alone holds speech (a fresh floor starts at its first frame)."""
        t = self.tracker(sample_rate, frontend)
        t.add(np.asarray(window, np.float32))
        return t.window_speech(0, len(window))


def analysis_config(sample_rate: int, frontend=None):
    """The ``cmsis_mfcc`` config whose frames the voice activity analyses."""
    from .features.cmsis import CmsisMfccConfig

    if getattr(frontend, "name", None) == "cmsis_mfcc" and frontend.dtype == "f32":
        return CmsisMfccConfig(sample_rate=frontend.sample_rate, frame_length=frontend.frame_length,
                               hop_length=frontend.hop_length, window=frontend.window, prosody=True)
    n = 1 << max(5, int(round(math.log2(0.064 * sample_rate))))
    try:
        return CmsisMfccConfig(sample_rate=sample_rate, frame_length=n, hop_length=max(1, n // 4),
                               fmin=min(40.0, sample_rate / 8), fmax=min(7600.0, 0.45 * sample_rate),
                               n_mels=min(40, n // 16), n_mfcc=min(40, n // 16), prosody=True)
    except ConfigError as e:
        raise ConfigError(f"voice activity cannot analyse {sample_rate} Hz audio ({e})") from None


class VoiceActivity:
    """The voice-activity state of one stream: push samples with :meth:`add`,
    ask :meth:`window_speech` about windows whose samples have been added."""

    def __init__(self, config: VoiceConfig, analysis):
        from .features.cmsis import cmsis_tables
        from .features.prosody import prosody_tables

        self.config, self.analysis = config, analysis
        self.n, self.hop = analysis.frame_length, analysis.hop_length
        self._window = cmsis_tables(analysis)["window_f32"]
        self._tables = prosody_tables(analysis)
        hop_s = self.hop / analysis.sample_rate
        self.rise = np.float32(config.rise_db_per_second * hop_s)
        self.margin = np.float32(config.margin_db)
        self.min_voicing = np.float32(config.min_voicing)
        self.min_level = np.float32(config.min_level_db)
        self.lowest = np.float32(self.min_level - self.margin)  # a lower floor would change nothing
        self.min_frames = max(1, math.ceil(config.min_speech_seconds / hop_s - 1e-9))
        self.floor: np.float32 | None = None
        self._buf = np.zeros(0, np.float32)
        self._buf_start = 0   # stream index of _buf[0]
        self._next_frame = 0  # index of the next frame to analyse
        self._flags = bytearray()
        self._flags_start = 0  # frame index of _flags[0]
        self.loudness: list[float] = []  # of the frames analysed, kept only with keep_levels
        self.keep_levels = False

    def add(self, samples: np.ndarray) -> None:
        """Add samples and analyse the frames they complete."""
        from .features.prosody import from_magnitudes, magnitudes

        self._buf = np.concatenate([self._buf, np.asarray(samples, np.float32)])
        end = self._buf_start + len(self._buf)
        count = max(0, (end - self._next_frame * self.hop - self.n) // self.hop + 1)
        if count:
            first = self._next_frame * self.hop - self._buf_start
            fr = np.lib.stride_tricks.sliding_window_view(self._buf[first:], self.n)[::self.hop][:count]
            p = from_magnitudes(magnitudes(np.ascontiguousarray(fr), self._window), self._tables)
            for level, strength in zip(p["loudness"], p["strength"]):
                self._flags.append(self._frame(np.float32(level), np.float32(strength)))
            if self.keep_levels:
                self.loudness += p["loudness"].tolist()
            self._next_frame += count
        drop = min(self._next_frame * self.hop - self._buf_start, len(self._buf))
        self._buf, self._buf_start = self._buf[drop:], self._buf_start + drop

    def _frame(self, level: np.float32, strength: np.float32) -> bool:
        if self.floor is None:
            self.floor = max(np.float32(level - self.margin), self.lowest)
        elif level < self.floor:
            self.floor = max(level, self.lowest)
        else:
            self.floor = min(np.float32(self.floor + self.rise), level)
        return bool(level >= np.float32(self.floor + self.margin) and strength >= self.min_voicing
                    and level >= self.min_level)

    def window_speech(self, start: int, length: int) -> bool:
        """Whether the window of ``length`` samples from stream sample ``start`` is speech:
        at least ``min_frames`` speech frames among the frames wholly inside it."""
        first = -(-start // self.hop)                   # first frame starting at or after start
        last = (start + length - self.n) // self.hop    # last frame ending within the window
        lo, hi = max(first, self._flags_start), min(last + 1, self._flags_start + len(self._flags))
        if hi <= lo:
            return False
        return sum(self._flags[lo - self._flags_start:hi - self._flags_start]) >= self.min_frames

    def forget_before(self, sample: int) -> None:
        """Drop the flags of frames starting before stream sample ``sample`` (bounded memory)."""
        k = min(sample // self.hop - self._flags_start, len(self._flags))
        if k > 0:
            del self._flags[:k]
            self._flags_start += k
