"""Babble: a few other talkers' speech mixed in at a random SNR."""
from __future__ import annotations

import dataclasses
import numbers
from dataclasses import InitVar, dataclass
from typing import Any, Iterable

import numpy as np

from ..errors import ConfigError
from ._base import Transform, _check_finite_float


def _as_pool(pool: Any) -> tuple[np.ndarray, ...]:
    """Validate a pool of mono clips: an iterable of 1-D float arrays or a 2-D array (rows)."""
    if pool is None:
        return ()
    if isinstance(pool, (str, bytes)) or not hasattr(pool, "__iter__"):
        raise ConfigError(f"babble: pool must be a sequence of 1-D float arrays, got {type(pool).__name__}")
    clips = []
    for i, clip in enumerate(pool):
        a = np.asarray(clip)
        if a.ndim != 1:
            raise ConfigError(f"babble: pool clip {i} must be a 1-D mono array, got shape {a.shape}")
        try:
            a = _check_finite_float(a)  # float32 without a copy when it already is
        except ConfigError as e:
            raise ConfigError(f"babble: pool clip {i}: {e}") from None
        if a.size and np.any(a):
            clips.append(a)  # silent or empty clips could never make babble
    return tuple(clips)


@dataclass(frozen=True)
class BabbleNoise(Transform):
    """Mix in babble, the sum of excerpts from other talkers, at a random SNR.

    For each call, ``k`` talkers (uniform in ``[min_speakers, max_speakers]``)
    are excerpts of clips drawn from the *pool*: a random stretch of the
    clip's length (a shorter pool clip is looped from a random start),
    each normalised to the same RMS so no single talker dominates.  The sum is
    scaled so that the clip-RMS to babble-RMS ratio is exactly an SNR drawn
    from ``[min_snr_db, max_snr_db]``.

    **The pool is not a parameter**: it is never serialised, and ``to_dict``,
    ``from_dict``, equality and ``repr`` ignore it (``from_dict`` and
    ``dataclasses.replace`` give a copy without it; ``with_pool`` keeps it).  Training supplies it at run
    time, as the audio of the *training* speakers (never validation or test
    speakers), at the sample rate the transform is called with::

        babble = BabbleNoise(p=0.2, pool=train_clips)        # or
        babble = BabbleNoise(p=0.2).with_pool(train_clips)   # or, for a whole config,
        cfg = AugmentConfig.realistic().with_babble_pool(train_clips)

    ``train_clips`` is a sequence of 1-D float arrays (or a 2-D array of
    windows); float32 arrays are kept by reference, not copied.  With many
    training speakers almost every excerpt is another speaker's voice; to
    exclude a clip's own speaker strictly, give each speaker's clips their own
    transform whose pool holds only the others.  Firing without a pool raises
    :class:`~tinyser.errors.ConfigError` rather than silently doing nothing.
    Limits: SNRs within [-30, 120] dB, 1-16 talkers.

    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> pool = [rng.standard_normal(8000).astype(np.float32) for _ in range(5)]
    >>> t = BabbleNoise(min_snr_db=10, max_snr_db=10, p=1.0, pool=pool)
    >>> t
    BabbleNoise(min_snr_db=10.0, max_snr_db=10.0, min_speakers=3, max_speakers=6, p=1.0)
    >>> x = np.sin(np.arange(16000) / 5).astype(np.float32)
    >>> y = t(x, 16000, np.random.default_rng(1))
    >>> round(float(20 * np.log10(np.std(x) / np.std(y - x))), 1)
    10.0
    >>> t.to_dict()
    {'type': 'babble', 'min_snr_db': 10.0, 'max_snr_db': 10.0, 'min_speakers': 3, 'max_speakers': 6, 'p': 1.0}
    >>> len(t.pool), len(BabbleNoise.from_dict(t.to_dict()).pool)
    (5, 0)
    """

    min_snr_db: float = 5.0
    max_snr_db: float = 20.0
    min_speakers: int = 3
    max_speakers: int = 6
    p: float = 0.2
    pool: InitVar[Iterable[np.ndarray] | None] = None

    name = "babble"
    _bounds = {"min_snr_db": (-30.0, 120.0), "max_snr_db": (-30.0, 120.0)}
    _ranges = (("min_snr_db", "max_snr_db"), ("min_speakers", "max_speakers"))

    def __post_init__(self, pool: Any = None) -> None:  # type: ignore[override]
        for key in ("min_speakers", "max_speakers"):
            v = getattr(self, key)
            if isinstance(v, bool) or not isinstance(v, numbers.Real) or v != int(v) or not 1 <= v <= 16:
                raise ConfigError(f"{self.name}: {key} must be an integer within [1, 16], got {v!r}")
            object.__setattr__(self, key, int(v))
        super().__post_init__()
        # The instance attribute ``pool`` (the clips, a tuple) shadows the
        # InitVar's class default; it is not a dataclass field.
        object.__setattr__(self, "pool", _as_pool(pool))

    def with_pool(self, pool: Iterable[np.ndarray] | None) -> BabbleNoise:
        """A copy with the same parameters drawing babble from ``pool``.

        >>> import numpy as np
        >>> len(BabbleNoise().with_pool([np.ones(10, np.float32)]).pool)
        1
        """
        fields = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        return type(self)(**fields, pool=pool)

    def _apply(self, x: np.ndarray, sample_rate: int, rng: np.random.Generator) -> np.ndarray:
        pool: tuple[np.ndarray, ...] = self.pool  # type: ignore[assignment]
        if not pool:
            raise ConfigError("babble: no speech pool; supply the training speakers' clips with "
                              "BabbleNoise(pool=...), .with_pool(...) or AugmentConfig.with_babble_pool(...)")
        n = x.shape[0]
        snr_db = rng.uniform(self.min_snr_db, self.max_snr_db)
        k = int(rng.integers(self.min_speakers, self.max_speakers + 1))
        babble = np.zeros(n, dtype=np.float64)
        for i in rng.integers(0, len(pool), size=k):
            clip = pool[i]
            if clip.shape[0] >= n:  # a random stretch of a long clip
                start = int(rng.integers(0, clip.shape[0] - n + 1))
                excerpt = clip[start:start + n].astype(np.float64)
            else:  # a short clip looped from a random point
                start = int(rng.integers(0, clip.shape[0]))
                excerpt = np.resize(np.roll(clip, -start), n).astype(np.float64)
            r = float(np.sqrt(np.mean(np.square(excerpt))))
            if r > 0:
                babble += excerpt / r
        signal_rms = float(np.sqrt(np.mean(np.square(x, dtype=np.float64))))
        babble_rms = float(np.sqrt(np.mean(np.square(babble))))
        if signal_rms == 0.0 or babble_rms == 0.0:
            return x.copy()
        babble *= signal_rms / (babble_rms * 10.0 ** (snr_db / 20.0))
        return (x + babble).astype(np.float32)
