"""Running an exported model: the frontend is rebuilt from the model's own
metadata, so audio always becomes exactly the features the model was trained
on, and features made by another frontend are refused.
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from .audio import SegmentConfig, load, resample
from .errors import ConfigError, TinyserError
from .export import read_metadata
from .features import Frontend


class Model:
    """A self-describing tinyser ``.tflite`` model.

    >>> m = load_model("runs/emodb-tiny/export/tiny-int8.tflite")   # doctest: +SKIP
    >>> m.labels, m.frontend.config.name                              # doctest: +SKIP
    (['anger', 'boredom', ...], 'mfcc')
    """

    def __init__(self, path: str | os.PathLike):
        from .tflite import LiteRTModel

        self.path = Path(path)
        try:
            self.bytes = self.path.read_bytes()
        except OSError as e:
            raise TinyserError(f"{path}: cannot read model ({e.strerror or e})") from None
        self.metadata = read_metadata(self.bytes, path)
        self.labels: list[str] = list(self.metadata["labels"])
        self.frontend = Frontend.from_dict(self.metadata["frontend"])
        self.segments = SegmentConfig.from_dict(self.metadata["segments"])
        self.sample_rate = int(self.metadata["sample_rate"])
        self.runtime = LiteRTModel(self.bytes)

    def predict_features(self, features: np.ndarray, frontend: Frontend | dict | None = None) -> np.ndarray:
        """Class probabilities for raw (unstandardised) features ``(n, frames, coeffs)``.

        Pass the ``frontend`` that computed them: a different one raises ConfigError.
        """
        if frontend is not None:
            self.frontend.check_same(frontend)
        x = np.asarray(features, np.float32)
        want = tuple(self.runtime.input_shape)
        if x.shape[1:] != want:
            raise ConfigError(f"features of shape {x.shape[1:]} do not fit this model, which expects {want} "
                              f"from the {self.frontend.config.name} frontend")
        return self.runtime.predict(self.frontend.standardize(x))

    def predict(self, audio: np.ndarray, sample_rate: int) -> dict:
        """Label and probabilities of a mono signal (segment probabilities averaged).

        >>> load_model("m.tflite").predict(y, 16000)["label"]   # doctest: +SKIP
        'anger'
        """
        y = resample(np.asarray(audio, np.float32), sample_rate, self.sample_rate)
        segments = self.segments.split(y, self.sample_rate)
        proba = self.predict_features(self.frontend.features(segments))
        mean = proba.mean(axis=0)
        return {"label": self.labels[int(mean.argmax())],
                "probabilities": dict(zip(self.labels, map(float, mean)))}

    def predict_file(self, path: str | os.PathLike) -> dict:
        """:meth:`predict` on an audio file of any format, rate and channel count."""
        return {"path": str(path), **self.predict(load(path, self.sample_rate), self.sample_rate)}


def load_model(path: str | os.PathLike) -> Model:
    """Load a model exported by ``tinyser export``."""
    return Model(path)
