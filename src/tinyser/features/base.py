"""The frontend contract: a frozen config dataclass per frontend that computes
features from audio, and a :class:`Frontend` that adds the per-coefficient
standardisation learnt from training data.

A frontend serialises to a plain dict (``{"frontend": name, ...}``) that
travels inside exported models, so a model is always fed the features it was
trained on.
"""
from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from ..errors import ConfigError

if TYPE_CHECKING:
    from .adaptive import AdaptiveConfig
    from .tile import TileConfig

_REGISTRY: dict[str, type[FrontendConfig]] = {}


@dataclass(frozen=True)
class FrontendConfig:
    """Base of every frontend config. Subclasses set ``name`` and implement
    :meth:`compute`, mapping audio ``(..., samples)`` to ``(..., frames, n_features)``
    (``(..., n_features)`` for clip-level frontends such as ``stats``)."""

    name: ClassVar[str] = ""
    sample_rate: int = 16000

    def __init_subclass__(cls, **kw):
        super().__init_subclass__(**kw)
        if cls.__dict__.get("name"):
            _REGISTRY[cls.name] = cls

    def __post_init__(self):
        if self.sample_rate <= 0:
            raise ConfigError(f"{self.name}: sample_rate must be positive, not {self.sample_rate}")

    def compute(self, audio: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    @property
    def n_features(self) -> int:
        """Size of the last axis of :meth:`compute`'s output."""
        raise NotImplementedError

    def to_dict(self) -> dict[str, Any]:
        return {"frontend": self.name, **dataclasses.asdict(self)}

    def replace(self, **changes) -> FrontendConfig:
        return _build(type(self), {**dataclasses.asdict(self), **changes})


FRONTENDS = _REGISTRY  # name -> config class, filled as frontend modules import


def get_config(name: str, **params) -> FrontendConfig:
    """The config of frontend ``name`` with ``params`` overriding its defaults.

    >>> get_config("mfcc", n_mfcc=13).n_features
    13
    """
    if name not in _REGISTRY:
        raise ConfigError(f"unknown frontend {name!r}; choose one of {', '.join(sorted(_REGISTRY))}")
    return _build(_REGISTRY[name], params)


def config_from_dict(d: dict[str, Any]) -> FrontendConfig:
    """Inverse of ``FrontendConfig.to_dict``.

    >>> config_from_dict(get_config("mfcc").to_dict()) == get_config("mfcc")
    True
    """
    d = dict(d)
    return get_config(d.pop("frontend", None) or "", **d)


def _build(cls: type[FrontendConfig], params: dict[str, Any]) -> FrontendConfig:
    known = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(params) - set(known))
    if unknown:
        raise ConfigError(f"frontend {cls.name!r} has no parameter {', '.join(unknown)}; "
                          f"it takes {', '.join(known)}")
    try:
        return cls(**params)
    except TypeError as e:
        raise ConfigError(f"frontend {cls.name!r}: {e}") from None


@dataclass(frozen=True)
class Standardizer:
    """Per-feature mean and standard deviation learnt from training features.

    >>> s = Standardizer.fit(np.array([[0.0, 10.0], [2.0, 30.0]]))
    >>> s.apply(np.array([[1.0, 20.0]])).tolist()
    [[0.0, 0.0]]
    """

    mean: tuple[float, ...]
    std: tuple[float, ...]

    @classmethod
    def fit(cls, features: np.ndarray, min_std: float = 1e-5) -> Standardizer:
        x = np.asarray(features, np.float64).reshape(-1, np.shape(features)[-1])
        return cls(tuple(map(float, x.mean(0))), tuple(map(float, np.maximum(x.std(0), min_std))))

    def apply(self, features: np.ndarray) -> np.ndarray:
        mean, std = np.asarray(self.mean, np.float32), np.asarray(self.std, np.float32)
        if np.shape(features)[-1] != mean.size:
            raise ConfigError(f"standardisation expects {mean.size} features per frame, "
                              f"got {np.shape(features)[-1]}")
        return ((features - mean) / std).astype(np.float32)

    def to_dict(self) -> dict[str, list[float]]:
        return {"mean": list(self.mean), "std": list(self.std)}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Standardizer:
        return cls(tuple(map(float, d["mean"])), tuple(map(float, d["std"])))


@dataclass(frozen=True)
class Frontend:
    """A frontend config plus (optionally) its standardisation: everything
    needed to turn audio into model input.

    >>> fe = Frontend(get_config("mfcc"))
    >>> fe(np.zeros((2, 16000), np.float32) + 0.1).shape
    (2, 63, 40)
    """

    config: FrontendConfig
    standardizer: Standardizer | None = None
    #: running statistics per stream (tinyser.features.adaptive), started from ``standardizer``
    adaptive: AdaptiveConfig | None = None
    #: each window's sound span repeated to fill it (tinyser.features.tile); None = windows as they are
    tile: TileConfig | None = None

    def features(self, audio: np.ndarray) -> np.ndarray:
        """Raw (unstandardised) features."""
        return self.config.compute(audio)

    def __call__(self, audio: np.ndarray) -> np.ndarray:
        return self.standardize(self.features(audio))

    def standardize(self, features: np.ndarray) -> np.ndarray:
        """Model inputs from raw windows ``(n, frames, coeffs)`` with the fixed statistics (then tiled)."""
        return self.fill(features, features if self.standardizer is None else self.standardizer.apply(features))

    def fill(self, raw: np.ndarray, inputs: np.ndarray) -> np.ndarray:
        """Standardised ``inputs`` tiled from the sound spans of their ``raw`` windows when this
        frontend tiles (:mod:`tinyser.features.tile`), else ``inputs`` unchanged."""
        if self.tile is None or np.ndim(inputs) not in (2, 3):
            return inputs
        from .tile import tile

        if np.ndim(inputs) == 2:  # one window (frames, coeffs)
            return tile(np.asarray(inputs)[None], np.asarray(raw)[None], self.tile)[0]
        return tile(inputs, raw, self.tile)

    def fitted(self, features: np.ndarray) -> Frontend:
        """A copy whose standardisation is learnt from raw ``features`` (training data only)."""
        return dataclasses.replace(self, standardizer=Standardizer.fit(features))

    @property
    def frame_seconds(self) -> float:
        """Seconds between frames (the adaptive statistics' clock)."""
        return getattr(self.config, "hop_length", self.config.sample_rate) / self.config.sample_rate

    def adaptive_state(self, n_frames: int):
        """A fresh :class:`~tinyser.features.adaptive.AdaptiveNorm` for one stream
        (None when this frontend standardises with fixed statistics)."""
        if self.adaptive is None or self.standardizer is None:
            return None
        from .adaptive import AdaptiveNorm

        return AdaptiveNorm(self.adaptive, self.standardizer, self.frame_seconds, n_frames)

    def standardize_streams(self, features: np.ndarray, streams, new_frames=None) -> np.ndarray:
        """Standardise raw windows ``(n, frames, coeffs)``; with adaptive statistics each
        stream (a list of window indices in listening order) runs its own state, and
        windows in no stream get the fixed statistics. ``new_frames[i]``: how many of
        window i's frames are new since the stream's previous window (default all:
        windows that do not overlap)."""
        if self.adaptive is None or self.standardizer is None:
            return self.standardize(features)
        from .adaptive import standardize_streams

        return self.fill(features, standardize_streams(features, streams, self.adaptive, self.standardizer,
                                                       self.frame_seconds, new_frames))

    def to_dict(self) -> dict[str, Any]:
        d = self.config.to_dict()
        d["standardize"] = None if self.standardizer is None else self.standardizer.to_dict()
        if self.adaptive is not None:
            d["adaptive"] = self.adaptive.to_dict()
        if self.tile is not None:
            d["tile"] = self.tile.to_dict()
        return d

    def to_json(self) -> str:
        return json.dumps(self.to_dict())

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Frontend:
        from .adaptive import AdaptiveConfig
        from .tile import TileConfig

        d = dict(d)
        std = d.pop("standardize", None)
        adaptive = d.pop("adaptive", None)
        tile = d.pop("tile", None)
        return cls(config_from_dict(d), None if std is None else Standardizer.from_dict(std),
                   None if adaptive is None else AdaptiveConfig.from_dict(adaptive),
                   None if tile is None else TileConfig.from_dict(tile))

    @classmethod
    def from_json(cls, s: str) -> Frontend:
        return cls.from_dict(json.loads(s))

    def check_same(self, other: Frontend | dict) -> None:
        """Raise ConfigError unless ``other`` computes the same features."""
        a = self.config.to_dict()
        b = (other if isinstance(other, dict) else other.to_dict())
        b = {k: v for k, v in b.items() if k not in ("standardize", "adaptive", "tile")}
        if a != b:
            diff = sorted(k for k in set(a) | set(b) if a.get(k) != b.get(k))
            raise ConfigError("features were computed with a different frontend than the model "
                              f"expects (differs in: {', '.join(diff)})")
