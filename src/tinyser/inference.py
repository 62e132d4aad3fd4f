"""Running an exported model on audio: files, arrays and live streams.

The frontend is rebuilt from the model's own metadata, so audio always becomes
exactly the features the model was trained on (features made by another
frontend are refused). Audio is cut into windows of the model's length every
``hop`` seconds; each window gets class probabilities and a voiced/silent
flag, and a file's label is the mean over its voiced windows. Files, arrays
and the microphone all go through one :class:`Stream`, so ``tinyser listen
--input X.wav`` and ``tinyser predict X.wav`` give the same windows.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

import numpy as np

from .audio import SegmentConfig, Segmenter, resample, stream
from .errors import ConfigError, TinyserError
from .export import read_model
from .features import Frontend

#: The model shipped inside the package (see docs/model-card.md and recipes/default_model.py).
DEFAULT_MODEL = Path(__file__).parent / "assets" / "default.tflite"


@dataclass(frozen=True)
class VoiceConfig:
    """Energy voice-activity rule for one window: it is *voiced* when at least
    ``min_fraction`` of its 32 ms frames have an RMS level of ``threshold_db``
    dBFS or more. It looks at the window alone, so streaming and whole-file
    prediction agree.

    >>> VoiceConfig().is_voiced(np.zeros(48000, np.float32))
    False
    """

    threshold_db: float = -45.0
    min_fraction: float = 0.1
    frame: int = 512

    def is_voiced(self, window: np.ndarray) -> bool:
        n = len(window) // self.frame * self.frame
        if n == 0:
            return False
        frames = window[:n].reshape(-1, self.frame).astype(np.float64)
        level = 10 * np.log10(np.mean(frames ** 2, axis=1) + 1e-12)
        return bool(np.mean(level >= self.threshold_db) >= self.min_fraction)


class Model:
    """A self-describing tinyser ``.tflite`` model.

    >>> m = load_model("default")
    >>> m.frontend.config.name, len(m.labels)
    ('cmsis_mfcc', 6)
    """

    def __init__(self, path: str | os.PathLike):
        from .tflite import LiteRTModel

        self.path = Path(path)
        self.bytes, self.metadata = read_model(path)
        self.labels: list[str] = list(self.metadata["labels"])
        self.frontend = Frontend.from_dict(self.metadata["frontend"])
        self.segments = SegmentConfig.from_dict(self.metadata["segments"])  # as in training
        self.window = self.segments.window
        self.sample_rate = int(self.metadata["sample_rate"])
        self.runtime = LiteRTModel(self.bytes)

    def __repr__(self) -> str:
        return f"Model({str(self.path)!r}, labels={self.labels})"

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

    def predict_windows(self, windows: np.ndarray) -> np.ndarray:
        """Class probabilities of audio windows ``(n, samples)`` at the model's rate; windows
        shorter than the model's input are zero-padded at the end.

        >>> load_model().predict_windows(np.zeros((2, 32000), np.float32)).shape
        (2, 6)
        """
        n = int(round(self.window * self.sample_rate))
        windows = np.atleast_2d(np.asarray(windows, np.float32))
        if windows.shape[1] > n:
            raise ConfigError(f"windows of {windows.shape[1] / self.sample_rate:g} s are longer than this "
                              f"model's {self.window:g} s input")
        padded = np.zeros((len(windows), n), np.float32)
        padded[:, :windows.shape[1]] = windows
        return self.predict_features(self.frontend.features(padded))

    def stream(self, window: float | None = None, hop: float | None = None,
               voice: VoiceConfig = VoiceConfig()) -> "Stream":
        """A :class:`Stream` for audio at the model's sample rate.

        >>> load_model().stream(hop=0.5).hop
        0.5
        """
        return Stream(self, window, hop, voice)

    def predict(self, audio: np.ndarray, sample_rate: int, window: float | None = None,
                hop: float | None = None) -> dict:
        """Label, probabilities and window timeline of a signal ``(samples,)`` or
        ``(samples, channels)`` at any rate.

        >>> r = load_model("default").predict(y, 44100)      # doctest: +SKIP
        >>> r["label"], r["windows"][0]["start"]               # doctest: +SKIP
        ('anger', 0.0)
        """
        y = np.asarray(audio)
        if y.dtype.kind in "iu":  # integer PCM: to [-1, 1) as audio files are read
            info = np.iinfo(y.dtype)
            mid = (info.max + 1 + info.min) / 2  # 0 for signed types, 128 for uint8
            y = (y.astype(np.float64) - mid) / (info.max + 1 - mid)
        y = y.astype(np.float32)
        if y.ndim == 2 and y.shape[1] > y.shape[0]:
            raise ConfigError(f"audio of shape {y.shape} looks channels-first; pass (samples, channels), e.g. y.T")
        if y.ndim == 2:
            y = y.mean(axis=1)
        if y.ndim != 1 or y.size == 0:
            raise ConfigError(f"audio must be a non-empty (samples,) or (samples, channels) array, got {y.shape}")
        if not np.all(np.isfinite(y)):
            raise ConfigError("audio contains NaN or infinite samples")
        y = resample(y, int(sample_rate), self.sample_rate)
        return self.stream(window, hop).run([y])

    def predict_file(self, path: str | os.PathLike, window: float | None = None, hop: float | None = None) -> dict:
        """:meth:`predict` on an audio file of any format, rate, channel count and length
        (read block by block). Unusable files raise AudioError naming the file.

        >>> load_model().predict_file("talk.flac")["windows"][-1]["end"]   # doctest: +SKIP
        12.37
        """
        return {"path": str(path), **self.stream(window, hop).run(stream(path, self.sample_rate))}


class Stream:
    """Windows of ``window`` seconds (default: the model's) every ``hop`` seconds
    (default: half a window) over audio pushed in blocks of any size.

    >>> s = load_model().stream(hop=1.0)
    >>> rows = s.push(np.zeros(16000 * 4, np.float32)) + s.finish()
    >>> [(r["start"], r["end"], r["voiced"]) for r in rows]
    [(0.0, 2.0, False), (1.0, 3.0, False), (2.0, 4.0, False)]
    """

    def __init__(self, model: Model, window: float | None = None, hop: float | None = None,
                 voice: VoiceConfig = VoiceConfig()):
        self.model, self.voice = model, voice
        self.window = model.window if window is None else float(window)
        self.hop = self.window / 2 if hop is None else float(hop)
        if not 0 < self.window <= model.window or not 0 < self.hop <= self.window:  # also refuses NaN
            raise ConfigError(f"need 0 < window <= {model.window:g} s (the model's input) and 0 < hop <= window "
                              f"(a longer hop leaves audio unscored); got window {self.window:g}, hop {self.hop:g}")
        sr = model.sample_rate
        self._segmenter = Segmenter(int(round(self.window * sr)), max(1, int(round(self.hop * sr))), pad="zero")
        self._samples = 0

    def push(self, samples: np.ndarray) -> list[dict]:
        """Add mono samples at the model's rate; returns the windows completed.

        >>> len(load_model().stream().push(np.zeros(48000, np.float32)))   # 3 s: 2 s windows at 0 and 1 s
        2
        """
        samples = np.asarray(samples, np.float32)
        self._samples += len(samples)
        return self._score(self._segmenter.push(samples))

    def finish(self) -> list[dict]:
        """The last, zero-padded window (if the tail is not covered yet).

        >>> s = load_model().stream(); _ = s.push(np.zeros(40000, np.float32)); s.finish()[0]["end"]
        2.5
        """
        return self._score(self._segmenter.finish())

    def run(self, blocks: Iterable[np.ndarray]) -> dict:
        """Push every block, finish, and summarise (see :func:`summarize`).

        >>> load_model().stream().run([np.zeros(8000, np.float32)] * 4)["duration"]
        2.0
        """
        windows = [w for b in blocks for w in self.push(b)] + self.finish()
        return summarize(windows, self.model.labels, self._samples / self.model.sample_rate)

    def _score(self, found: list[tuple[int, np.ndarray]]) -> list[dict]:
        if not found:
            return []
        sr, labels = self.model.sample_rate, self.model.labels
        proba = self.model.predict_windows(np.stack([w for _, w in found]))
        rows = []
        for (start, w), p in zip(found, proba):
            n = min(len(w), self._samples - start)  # the tail window's zero padding is not audio
            rows.append({"start": round(start / sr, 4), "end": round((start + n) / sr, 4),
                         "label": labels[int(p.argmax())], "confidence": round(float(p.max()), 6),
                         "voiced": self.voice.is_voiced(w[:n]), "probabilities": _named(labels, p)})
        return rows


def summarize(windows: list[dict], labels: list[str], duration: float) -> dict:
    """A file's result: the mean probabilities of its voiced windows (of all windows
    when none is voiced; ``voiced`` then says so), its label, and the timeline.

    >>> summarize([{"voiced": True, "probabilities": {"a": .2, "b": .8}}], ["a", "b"], 3.0)["label"]
    'b'
    """
    voiced = [w for w in windows if w["voiced"]]
    used = voiced or windows
    mean = np.mean([[w["probabilities"][k] for k in labels] for w in used], axis=0)
    return {"label": labels[int(mean.argmax())], "confidence": round(float(mean.max()), 6),
            "probabilities": _named(labels, mean), "duration": round(duration, 4),
            "voiced": bool(voiced), "voiced_windows": len(voiced), "windows": windows}


def _named(labels: list[str], p: np.ndarray) -> dict[str, float]:
    return {k: round(float(v), 6) for k, v in zip(labels, p)}


def load_model(path: str | os.PathLike = "default") -> Model:
    """Load a model exported by ``tinyser export``, or ``"default"``: the model shipped
    with tinyser (full-int8 ``tiny`` on ``cmsis_mfcc``, six ``common6`` emotions).

    >>> load_model().labels
    ['neutral', 'happy', 'sad', 'angry', 'fearful', 'disgust']
    """
    return Model(model_path(path))


def model_path(path: str | os.PathLike = "default") -> Path:
    """``path`` as a Path, with ``"default"`` meaning the shipped model.

    >>> model_path("default").name
    'default.tflite'
    """
    if str(path) != "default":
        return Path(path)
    if not DEFAULT_MODEL.exists():
        raise TinyserError(f"{DEFAULT_MODEL}: the default model is missing from this installation "
                           "(rebuild it with recipes/default_model.py)")
    return DEFAULT_MODEL


def audio_inputs(paths: Iterable[str | os.PathLike]) -> tuple[list[Path], list[dict]]:
    """The audio files named by ``paths`` (folders searched recursively for audio
    extensions; files taken as given), and ``{"path", "reason"}`` for paths that do not exist.

    >>> audio_inputs(["talks/"])   # doctest: +SKIP
    ([PosixPath('talks/a.wav'), PosixPath('talks/b/c.flac')], [])
    """
    from .corpora import iter_audio

    files, missing = [], []
    for p in map(Path, paths):
        if p.is_dir():
            found = list(iter_audio(p))
            files += found
            if not found:
                missing.append({"path": str(p), "reason": "folder holds no audio files"})
        elif p.exists():
            files.append(p)
        else:
            missing.append({"path": str(p), "reason": "no such file or folder"})
    return files, missing


def predict_files(model: Model, paths: Iterable[str | os.PathLike], window: float | None = None,
                  hop: float | None = None, progress: bool = True) -> dict:
    """:meth:`Model.predict_file` over files and folders; files that cannot be used are
    listed under ``failed`` with the reason, and the others go on.

    >>> r = predict_files(load_model(), ["Actor_01/"], progress=False)   # doctest: +SKIP
    >>> len(r["results"]), r["failed"]                                    # doctest: +SKIP
    (60, [])
    """
    from .progress import track

    files, failed = audio_inputs(paths)
    Stream(model, window, hop)  # a bad window/hop fails once, before any file is read
    results = []
    for path in track(files, description="predict", enabled=progress and len(files) > 1):
        try:
            results.append(model.predict_file(path, window, hop))
        except TinyserError as e:
            failed.append({"path": str(path), "reason": getattr(e, "reason", None) or str(e)})
    return {"model": str(model.path), "labels": model.labels, "results": results, "failed": failed}


def to_csv(prediction: dict) -> str:
    """:func:`predict_files`' results as CSV: one ``file`` row per file (its label and
    mean probabilities) followed by one ``window`` row per window.

    >>> to_csv({"labels": ["a"], "results": []}).splitlines()[0]
    'path,scope,start,end,label,confidence,voiced,p_a'
    """
    import csv
    import io

    labels = prediction["labels"]
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["path", "scope", "start", "end", "label", "confidence", "voiced", *(f"p_{k}" for k in labels)])
    for r in prediction["results"]:
        w.writerow([r["path"], "file", 0.0, r["duration"], r["label"], r["confidence"], r["voiced"],
                    *(r["probabilities"][k] for k in labels)])
        for x in r["windows"]:
            w.writerow([r["path"], "window", x["start"], x["end"], x["label"], x["confidence"], x["voiced"],
                        *(x["probabilities"][k] for k in labels)])
    return buf.getvalue()
