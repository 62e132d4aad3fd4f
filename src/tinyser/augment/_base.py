"""What every augmentation transform shares: input checks, the Transform base
class, and running audiomentations with parameters drawn from our generator."""
from __future__ import annotations

import contextlib
import dataclasses
import math
import numbers
import random
from typing import Any, ClassVar, Iterator, Mapping

import numpy as np

from ..errors import ConfigError


def _check_samples(samples: Any, sample_rate: Any) -> np.ndarray:
    """Validate one mono clip and its rate; return it as float32 (no copy if already)."""
    x = np.asarray(samples)
    if x.ndim != 1:
        raise ConfigError(f"samples must be a 1-D mono array, got shape {x.shape}")
    _check_sample_rate(sample_rate)
    return _check_finite_float(x)


def _check_sample_rate(sample_rate: Any) -> None:
    if isinstance(sample_rate, bool) or not isinstance(sample_rate, numbers.Integral) or sample_rate <= 0:
        raise ConfigError(f"sample_rate must be a positive integer, got {sample_rate!r}")


def _check_finite_float(x: np.ndarray) -> np.ndarray:
    if x.dtype.kind != "f":
        raise ConfigError(f"samples must be floating point (float32 in [-1, 1]), got dtype {x.dtype}")
    x = x.astype(np.float32, copy=False)
    bad = x.size - int(np.count_nonzero(np.isfinite(x)))
    if bad:
        raise ConfigError(f"samples contain {bad} non-finite value(s) (NaN or inf)")
    return x


def _as_rng(rng: Any) -> np.random.Generator:
    """A Generator is used as is; an int seed (or None for fresh entropy) makes one."""
    if isinstance(rng, np.random.Generator):
        return rng
    if rng is None or (isinstance(rng, numbers.Integral) and not isinstance(rng, bool) and rng >= 0):
        return np.random.default_rng(None if rng is None else int(rng))
    raise ConfigError(f"rng must be a numpy.random.Generator or a non-negative int seed, got {rng!r}")


@contextlib.contextmanager
def _isolated_global_random(rng: np.random.Generator) -> Iterator[None]:
    """Run third-party DSP with the global generators seeded from ``rng``, then restore them.

    Whatever the wrapped code draws from :mod:`random` or :mod:`numpy.random`
    is then a function of ``rng`` alone, and callers see their own global state
    unchanged afterwards.  (Not safe against *other threads* using the global
    generators during the call.)
    """
    py_state = random.getstate()
    np_state = np.random.get_state()
    seed = int(rng.integers(0, 2**32))
    random.seed(seed)
    np.random.seed(seed)
    try:
        yield
    finally:
        random.setstate(py_state)
        np.random.set_state(np_state)


def _fit_length(y: np.ndarray, n: int) -> np.ndarray:
    """Crop or zero-pad (at the end) ``y`` to exactly ``n`` samples, as float32."""
    y = np.asarray(y, dtype=np.float32).reshape(-1)
    if y.shape[0] == n:
        return y
    out = np.zeros(n, dtype=np.float32)
    m = min(n, y.shape[0])
    out[:m] = y[:m]
    return out


class Transform:
    """Base of every waveform transform: validation, the ``p`` gate and JSON form.

    Subclasses are frozen dataclasses that set ``name`` (the ``"type"`` tag in
    JSON), ``_bounds`` (hard limits of each numeric field), ``_ranges`` (pairs
    of fields that must satisfy ``min <= max``) and implement ``_apply``.

    >>> from tinyser.augment import Gain
    >>> Gain(min_gain_db=-3, max_gain_db=3, p=1.0).to_dict()
    {'type': 'gain', 'min_gain_db': -3.0, 'max_gain_db': 3.0, 'p': 1.0}
    """

    name: ClassVar[str] = ""
    _bounds: ClassVar[dict[str, tuple[float, float]]] = {}
    _ranges: ClassVar[tuple[tuple[str, str], ...]] = ()

    # -- construction ------------------------------------------------------
    def __post_init__(self) -> None:
        bounds = {**self._bounds, "p": (0.0, 1.0)}
        for f in dataclasses.fields(self):  # type: ignore[arg-type]
            value = getattr(self, f.name)
            if f.name in bounds:
                lo, hi = bounds[f.name]
                object.__setattr__(self, f.name, self._number(f.name, value, lo, hi))
            elif isinstance(f.default, bool) and not isinstance(value, bool):
                raise ConfigError(f"{self.name}: {f.name} must be true or false, got {value!r}")
        for lo_name, hi_name in self._ranges:
            lo, hi = getattr(self, lo_name), getattr(self, hi_name)
            if lo > hi:
                raise ConfigError(f"{self.name}: {lo_name} ({lo:g}) must not exceed {hi_name} ({hi:g})")

    def _number(self, key: str, value: Any, lo: float, hi: float) -> float:
        if isinstance(value, bool) or not isinstance(value, numbers.Real):
            raise ConfigError(f"{self.name}: {key} must be a number, got {value!r}")
        v = float(value)
        if not math.isfinite(v) or not lo <= v <= hi:
            raise ConfigError(f"{self.name}: {key} must be within [{lo:g}, {hi:g}], got {v!r}")
        return v

    # -- calling -------------------------------------------------------------
    def __call__(self, samples: np.ndarray, sample_rate: int, rng: np.random.Generator) -> np.ndarray:
        """Apply with probability ``p``; always returns a new float32 array of the input's length."""
        x = _check_samples(samples, sample_rate)
        return self._maybe_apply(x, int(sample_rate), _as_rng(rng))

    def _maybe_apply(self, x: np.ndarray, sample_rate: int, rng: np.random.Generator) -> np.ndarray:
        # The gate is drawn even for empty input so the stream stays aligned.
        if not rng.random() < self.p or x.shape[0] == 0:
            return x.copy()
        y = self._apply(x, sample_rate, rng)
        if y.dtype != np.float32 or y.shape != x.shape:  # internal contract, not user error
            raise RuntimeError(f"{self.name} returned {y.dtype} {y.shape} for {x.dtype} {x.shape}")
        return y

    def _apply(self, x: np.ndarray, sample_rate: int, rng: np.random.Generator) -> np.ndarray:
        raise NotImplementedError

    # -- serialisation -------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """JSON-able dict: ``{"type": name, <field>: value, ...}``."""
        return {"type": self.name, **{f.name: getattr(self, f.name) for f in dataclasses.fields(self)}}  # type: ignore[arg-type]

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Transform:
        """Inverse of :meth:`to_dict`; missing fields take their defaults.

        >>> from tinyser.augment import Gain
        >>> Gain.from_dict({"type": "gain", "max_gain_db": 3})
        Gain(min_gain_db=-6.0, max_gain_db=3.0, p=0.5)
        """
        if not isinstance(data, Mapping):
            raise ConfigError(f"{cls.name}: expected a mapping of parameters, got {type(data).__name__}")
        kwargs = dict(data)
        tag = kwargs.pop("type", cls.name)
        if tag != cls.name:
            raise ConfigError(f"{cls.name}: 'type' is {tag!r}, expected {cls.name!r}")
        names = [f.name for f in dataclasses.fields(cls)]  # type: ignore[arg-type]
        unknown = sorted(str(k) for k in kwargs if k not in names)
        if unknown:
            raise ConfigError(f"{cls.name}: unknown parameter(s) {', '.join(unknown)}; expected {', '.join(names)}")
        return cls(**kwargs)


# The transform modules import the plumbing above from this package.


def run_frozen(transform, parameters: dict, x: np.ndarray, sample_rate: int,
               rng: np.random.Generator) -> np.ndarray:
    """Apply an audiomentations transform with ``parameters`` fixed by us (drawn
    from ``rng``), isolated from the global random state, at the input's length."""
    transform.parameters = {"should_apply": True, **parameters}
    transform.freeze_parameters()
    with _isolated_global_random(rng):
        y = transform.apply(x, sample_rate)
    return _fit_length(y, x.shape[0])

