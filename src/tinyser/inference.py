"""Running an exported model on audio: files, arrays and live streams.

The frontend is rebuilt from the model's own metadata, so audio always becomes
exactly the features the model was trained on (features made by another
frontend are refused). Audio is cut into windows of the model's length every
``hop`` seconds; each window gets class probabilities and a voiced/silent
flag (voice activity, :mod:`tinyser.vad`), and a file's label is the mean over
its voiced windows (none: no label, "no speech found"). Files, arrays
and the microphone all go through one :class:`Stream`, so ``tinyser listen
--input X.wav`` and ``tinyser predict X.wav`` give the same windows.
"""
from __future__ import annotations

import copy
import itertools
import os
from pathlib import Path
from typing import Iterable, Iterator

import numpy as np

from .audio import Segmenter, resample, stream
from .errors import ConfigError, TinyserError
from .features import Frontend
from .tflite.metadata import ModelMetadata, read_model
from .vad import VoiceConfig  # noqa: F401  (the voice-activity rule: tinyser.vad)

#: The model shipped inside the package (see docs/model-card.md and recipes/default_model.py).
DEFAULT_MODEL = Path(__file__).parent / "assets" / "default.tflite"
#: Windows one input may have (its duration over the hop): more is a typo in the hop, and the
#: timeline of so many would not fit in memory.
MAX_WINDOWS = 100_000
#: Windows scored together: the audio of windows in flight stays bounded whatever the hop.
BATCH_WINDOWS = 32
#: The shortest window accepted with ``allow_short`` (seconds).
MIN_SHORT_WINDOW = 0.25


class Model:
    """A self-describing tinyser ``.tflite`` model.

    >>> m = load_model("default")
    >>> m.frontend.config.name, len(m.labels)
    ('cmsis_mfcc', 6)
    """

    def __init__(self, path: str | os.PathLike):
        from .tflite.litert import LiteRTModel

        self.path = Path(path)
        self.bytes, self.metadata = read_model(path)
        meta: ModelMetadata = self.metadata
        self.labels: list[str] = list(meta.labels)
        self.frontend = meta.frontend
        self.segments = meta.segments  # as in training
        self.window = self.segments.window
        self.sample_rate = meta.sample_rate
        self.voice = meta.voice  # the voice-activity rule the model was exported with
        try:
            self.runtime = LiteRTModel(self.bytes)
        except Exception as e:  # read_model has loaded it once already; this is belt and braces
            raise TinyserError(f"{self.path}: damaged model: LiteRT cannot load it ({e})") from None

    def __repr__(self) -> str:
        return f"Model({str(self.path)!r}, labels={self.labels})"

    def predict_features(self, features: np.ndarray, frontend: Frontend | dict | None = None,
                         standardize=None) -> np.ndarray:
        """Class probabilities for raw (unstandardised) features ``(n, frames, coeffs)``.

        Pass the ``frontend`` that computed them: a different one raises ConfigError.
        ``standardize(raw) -> inputs`` replaces the fixed standardisation (a
        stream's adaptive state, see :meth:`Stream`); tiled padding follows either.
        """
        if frontend is not None:
            self.frontend.check_same(frontend)
        x = np.asarray(features, np.float32)
        want = tuple(self.runtime.input_shape)
        if x.shape[1:] != want:
            raise ConfigError(f"features of shape {x.shape[1:]} do not fit this model, which expects {want} "
                              f"from the {self.frontend.config.name} frontend")
        try:
            inputs = self.frontend.standardize(x) if standardize is None else self.frontend.fill(x, standardize(x))
            return self.runtime.predict(inputs)
        except (RuntimeError, ValueError) as e:  # a damaged model that loads but cannot run (no checksum)
            raise TinyserError(f"{self.path}: damaged model: it fails to run "
                               f"({str(e).strip().splitlines()[-1] if str(e).strip() else type(e).__name__})") from None

    def predict_windows(self, windows: np.ndarray, standardize=None) -> np.ndarray:
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
        return self.predict_features(self.frontend.features(padded), standardize=standardize)

    def stream(self, window: float | None = None, hop: float | None = None,
               voice: VoiceConfig | None = None, allow_short: bool = False, state=None) -> Stream:
        """A :class:`Stream` for audio at the model's sample rate (``state``: see :meth:`adaptive_state`).

        >>> load_model().stream(hop=0.5).hop
        0.5
        """
        return Stream(self, window, hop, voice, allow_short=allow_short, state=state)

    def adaptive_state(self):
        """A fresh running state of the model's adaptive standardisation, started from the
        training statistics, to carry from file to file (``predict_file(..., state=s)``): the
        files are then standardised as one stream, as a device that keeps listening hears them,
        instead of each starting afresh. None for a model with fixed statistics.

        >>> m = load_model(); s = m.adaptive_state()
        >>> results = [m.predict_file(f, state=s) for f in ("a.wav", "b.wav")]   # doctest: +SKIP
        """
        return self.frontend.adaptive_state(int(self.runtime.input_shape[0]))

    @property
    def frame_seconds(self) -> float:
        """Seconds between two feature frames: the shortest useful hop.

        >>> load_model().frame_seconds
        0.016
        """
        return getattr(self.frontend.config, "hop_length", 1) / self.sample_rate

    @property
    def max_frequency(self) -> float:
        """The highest frequency the model's features use (Hz)."""
        cfg = self.frontend.config
        return float(getattr(cfg, "fmax", None) or self.sample_rate / 2)

    def predict(self, audio: np.ndarray, sample_rate: int, window: float | None = None,
                hop: float | None = None, allow_short: bool = False, timeline: bool = True) -> dict:
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
        from .audio import MAX_SAMPLE_RATE, MIN_SAMPLE_RATE

        if not MIN_SAMPLE_RATE <= sample_rate <= MAX_SAMPLE_RATE:  # also refuses NaN
            raise ConfigError(f"sample rate {sample_rate} Hz is outside {MIN_SAMPLE_RATE}-{MAX_SAMPLE_RATE} Hz")
        s = self.stream(window, hop, allow_short=allow_short)
        s.check_length(len(y) / sample_rate)
        y = resample(y, int(sample_rate), self.sample_rate)
        return {**s.run([y], timeline=timeline), "warnings": s.warnings(int(sample_rate))}

    def predict_file(self, path: str | os.PathLike, window: float | None = None, hop: float | None = None,
                     allow_short: bool = False, timeline: bool = True, state=None) -> dict:
        """:meth:`predict` on an audio file of any format, rate, channel count and length
        (read block by block). Unusable files raise AudioError naming the file.
        ``timeline=False`` keeps only the file's summary (``windows`` is empty),
        so memory stays bounded whatever the file's length. ``state``
        (:meth:`adaptive_state`) carries adaptive standardisation over from earlier files.

        >>> load_model().predict_file("talk.flac")["windows"][-1]["end"]   # doctest: +SKIP
        12.37
        """
        from .audio import probe
        from .errors import AudioError

        info = probe(path)
        s = self.stream(window, hop, allow_short=allow_short, state=state)
        try:
            s.check_length(info.duration)
        except ConfigError as e:
            raise AudioError(path, str(e)) from None
        result = s.run(stream(path, self.sample_rate), timeline=timeline)
        return {"path": str(path), **result, "warnings": s.warnings(info.sample_rate)}


class Stream:
    """Windows of ``window`` seconds (default: the model's) every ``hop`` seconds
    (default: half a window) over audio pushed in blocks of any size.

    >>> s = load_model().stream(hop=1.0)
    >>> rows = s.push(np.zeros(16000 * 4, np.float32)) + s.finish()
    >>> [(r["start"], r["end"], r["voiced"]) for r in rows]
    [(0.0, 2.0, False), (1.0, 3.0, False), (2.0, 4.0, False)]
    """

    def __init__(self, model: Model, window: float | None = None, hop: float | None = None,
                 voice: VoiceConfig | None = None, allow_short: bool = False, state=None):
        self.model, self.voice = model, voice or getattr(model, "voice", None) or VoiceConfig()
        self.window, self.hop = check_window_hop(model, window, hop, allow_short)
        sr = model.sample_rate
        self._segmenter = Segmenter(int(round(self.window * sr)), max(1, int(round(self.hop * sr))), pad="zero")
        self._samples = 0
        self._spectrum = _Spectrum(sr)
        self._vad = self.voice.tracker(sr, model.frontend.config)  # one noise floor for the whole stream
        # adaptive standardisation: one running state for the whole stream (or carried in from
        # earlier streams: Model.adaptive_state), updated once per window from the frames that are
        # new since the previous window (as the C frontend does)
        fe = model.frontend
        n_frames = int(model.runtime.input_shape[0])
        self._norm = fe.adaptive_state(n_frames) if state is None else state
        self._new_frames = n_frames  # the first window is all new
        self._hop_frames = max(1, int(round(self.hop / fe.frame_seconds)))

    def push(self, samples: np.ndarray) -> list[dict]:
        """Add mono samples at the model's rate; returns the windows completed.

        >>> len(load_model().stream().push(np.zeros(48000, np.float32)))   # 3 s: 2 s windows at 0 and 1 s
        2
        """
        samples = np.asarray(samples, np.float32)
        self._spectrum.add(samples)
        rows = []
        step = self._segmenter.hop * BATCH_WINDOWS  # at most this many windows of audio in flight
        for i in range(0, len(samples), step):
            part = samples[i:i + step]
            self._samples += len(part)
            self._vad.add(part)
            rows += self._score(self._segmenter.push(part))
            self._vad.forget_before(self._samples - self._segmenter.window)  # windows still to come start later
        return rows

    def finish(self) -> list[dict]:
        """The last, zero-padded window (if the tail is not covered yet).

        >>> s = load_model().stream(); _ = s.push(np.zeros(40000, np.float32)); s.finish()[0]["end"]
        2.5
        """
        return self._score(self._segmenter.finish())

    def run(self, blocks: Iterable[np.ndarray], timeline: bool = True) -> dict:
        """Push every block, finish, and summarise (see :func:`summarize`).
        ``timeline=False``: windows are scored, counted and released as they
        stream, so memory does not grow with the input (``windows`` is empty).

        >>> load_model().stream().run([np.zeros(8000, np.float32)] * 4)["duration"]
        2.0
        """
        labels = self.model.labels
        if timeline:
            windows = [w for b in blocks for w in self.push(b)] + self.finish()
            return summarize(windows, labels, self._samples / self.model.sample_rate)
        n, voiced = 0, 0
        sums = {True: np.zeros(len(labels)), False: np.zeros(len(labels))}
        for rows in itertools.chain((self.push(b) for b in blocks), (self.finish() for _ in [0])):
            for w in rows:
                n, voiced = n + 1, voiced + w["voiced"]
                sums[w["voiced"]] += [w["probabilities"][k] for k in labels]
        return {**_verdict(labels, sums[True] / voiced if voiced else None),
                "duration": round(self._samples / self.model.sample_rate, 4),
                "voiced": bool(voiced), "voiced_windows": voiced, "n_windows": n, "windows": []}

    def check_length(self, seconds: float) -> None:
        """Refuse an input of ``seconds`` that would make more than :data:`MAX_WINDOWS` windows."""
        n = int(max(0.0, seconds - self.window) / self.hop) + 2
        if n > MAX_WINDOWS:
            raise ConfigError(f"{seconds:.0f} s every {self.hop:g} s would make {n:,} windows (at most "
                              f"{MAX_WINDOWS:,}); use a longer --hop")

    def warnings(self, source_rate: int | None = None) -> list[str]:
        """What the model cannot see in the audio pushed so far: a recording rate
        (``source_rate``) or a measured bandwidth below the frequencies its features use."""
        fmax = self.model.max_frequency
        if source_rate is not None and source_rate / 2 < 0.9 * fmax:
            return [f"recorded at {source_rate} Hz: nothing above {source_rate / 2:g} Hz, but the model's features "
                    f"use up to {fmax:g} Hz; its answer may be unreliable"]
        band = self._spectrum.bandwidth(fmax)
        if band is not None:
            return [f"the audio holds nothing above about {band:.0f} Hz (telephone or low-pass audio?), but the "
                    f"model's features use up to {fmax:g} Hz; its answer may be unreliable"]
        return []

    def _score(self, found: list[tuple[int, np.ndarray]]) -> list[dict]:
        if not found:
            return []
        sr, labels = self.model.sample_rate, self.model.labels
        proba = self.model.predict_windows(np.stack([w for _, w in found]),
                                           None if self._norm is None else self._adapt)
        rows = []
        for (start, w), p in zip(found, proba):
            n = min(len(w), self._samples - start)  # the tail window's zero padding is not audio
            rows.append({"start": round(start / sr, 4), "end": round((start + n) / sr, 4),
                         "label": labels[int(p.argmax())], "confidence": round(float(p.max()), 6),
                         "voiced": self._vad.window_speech(start, n), "probabilities": _named(labels, p)})
        return rows

    def _adapt(self, raw: np.ndarray) -> np.ndarray:
        out = np.empty_like(raw, dtype=np.float32)
        for i, window in enumerate(raw):
            out[i] = self._norm.window(window, self._new_frames)
            self._new_frames = self._hop_frames
        return out


def check_window_hop(model: Model, window: float | None, hop: float | None,
                     allow_short: bool = False) -> tuple[float, float]:
    """The window and hop (seconds) a stream of ``model`` will use, or ConfigError:
    the window is the model's input (shorter only with ``allow_short``, and never
    below :data:`MIN_SHORT_WINDOW`); the hop lies between one feature frame and the window.

    >>> check_window_hop(load_model(), None, None)
    (2.0, 1.0)
    """
    try:
        w = model.window if window is None else float(window)
        h = w / 2 if hop is None else float(hop)
    except (TypeError, ValueError):
        raise ConfigError(f"window and hop must be numbers of seconds, not {window!r}, {hop!r}") from None
    frame = model.frame_seconds
    if not (np.isfinite(w) and np.isfinite(h)):
        raise ConfigError(f"window and hop must be finite seconds; got window {w:g}, hop {h:g}")
    if w > model.window:
        raise ConfigError(f"window {w:g} s is longer than this model's {model.window:g} s input")
    if w < model.window and not allow_short:
        raise ConfigError(f"window {w:g} s is shorter than this model's {model.window:g} s input: it would score "
                          "mostly zero padding; pass --allow-short-window to accept that")
    if w < max(MIN_SHORT_WINDOW, frame):
        raise ConfigError(f"window {w:g} s is too short; the shortest is {max(MIN_SHORT_WINDOW, frame):g} s")
    return w, check_hop(h, frame, w)


def check_hop(hop: float, frame: float, window: float) -> float:
    """``hop`` (seconds between two inferences) if it lies between one feature
    frame and the window, else ConfigError: the one rule for ``predict``,
    ``listen`` and the device.

    >>> check_hop(1.0, 0.016, 2.0)
    1.0
    >>> check_hop(3.0, 0.016, 2.0)
    Traceback (most recent call last):
    ...
    tinyser.errors.ConfigError: hop 3 s is longer than the 2 s window: audio between windows would go unscored
    """
    if not np.isfinite(hop) or hop < frame - 1e-9:
        raise ConfigError(f"hop {hop:g} s is shorter than one feature frame ({frame:g} s)")
    if hop > window:
        raise ConfigError(f"hop {hop:g} s is longer than the {window:g} s window: audio between windows would go "
                          "unscored")
    return float(hop)


class _Spectrum:
    """Long-term power spectrum of a stream, from one 512-sample frame every
    quarter second (cheap), to tell how much bandwidth the audio really has."""

    FRAME, EVERY = 512, 0.25

    def __init__(self, sample_rate: int):
        self.sr, self.every = sample_rate, max(self.FRAME, int(self.EVERY * sample_rate))
        self.power = np.zeros(self.FRAME // 2 + 1)
        self._pos = 0  # position of the next analysed frame, relative to the next sample pushed
        self._window = np.hanning(self.FRAME)

    def add(self, x: np.ndarray) -> None:
        starts = np.arange(self._pos, len(x) - self.FRAME + 1, self.every)
        if len(starts):
            frames = x[starts[:, None] + np.arange(self.FRAME)] * self._window
            self.power += np.sum(np.abs(np.fft.rfft(frames, axis=1)) ** 2, axis=0)
            self._pos = max(0, int(starts[-1] + self.every - len(x)))
        else:
            self._pos = max(0, self._pos - len(x))

    def bandwidth(self, fmax: float) -> float | None:
        """Where the audio's spectrum ends below ``fmax``: the lowest frequency (from
        2 kHz) past which every 250 Hz band lies 25 dB or more under the two bands
        before it, on a flat floor (a low-pass cliff, as in 8 kHz audio resampled);
        None when there is no such cliff (speech's gradual roll-off) or no audio."""
        bins = 250 * self.FRAME // self.sr or 1
        n = min(int(fmax * self.FRAME / self.sr), len(self.power)) // bins
        if not self.power.max() > 0 or n < 4:
            return None
        db = 10 * np.log10(self.power[:n * bins].reshape(n, bins).mean(axis=1) / self.power.max() + 1e-30)
        for k in range(max(2, int(2000 / 250)), int(0.75 * n)):
            above = db[k + 1:]
            if db[k - 2:k].mean() - above.max() >= 25 and (np.ptp(above) <= 12 or above.max() < -100):
                return k * 250.0
        return None


def summarize(windows: list[dict], labels: list[str], duration: float) -> dict:
    """A file's result: the mean probabilities of its voiced windows, its label, and
    the timeline. Windows without speech are not scored as an emotion: a file with
    no voiced window gets no label (``label``, ``confidence`` and the probabilities
    None, ``reason`` "no speech found").

    >>> summarize([{"voiced": True, "probabilities": {"a": .2, "b": .8}}], ["a", "b"], 3.0)["label"]
    'b'
    >>> r = summarize([{"voiced": False, "probabilities": {"a": .2, "b": .8}}], ["a", "b"], 3.0)
    >>> r["label"], r["reason"]
    (None, 'no speech found')
    """
    voiced = [w for w in windows if w["voiced"]]
    mean = np.mean([[w["probabilities"][k] for k in labels] for w in voiced], axis=0) if voiced else None
    return {**_verdict(labels, mean), "duration": round(duration, 4),
            "voiced": bool(voiced), "voiced_windows": len(voiced), "windows": windows}


#: Why a file has no label.
NO_SPEECH = "no speech found"


def _verdict(labels: list[str], mean: np.ndarray | None) -> dict:
    """Label, confidence and probabilities from the mean over voiced windows (None: no speech)."""
    if mean is None:
        return {"label": None, "confidence": None, "probabilities": {k: None for k in labels}, "reason": NO_SPEECH}
    return {"label": labels[int(mean.argmax())], "confidence": round(float(mean.max()), 6),
            "probabilities": _named(labels, mean)}


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
        p = Path(path)
        if not p.exists() and p.suffix.lower() != ".tflite" and p.parent == Path("."):
            raise TinyserError(f"{path}: no such model; give 'default' (the shipped model) or the path of a "
                               ".tflite exported by `tinyser export`")
        return p
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
    files, missing = [], []
    for x in iter_inputs(paths):
        (missing if isinstance(x, dict) else files).append(x)
    return files, missing


def iter_inputs(paths: Iterable[str | os.PathLike]) -> Iterator[Path | dict]:
    """:func:`audio_inputs` one at a time, as the folders are walked (sorted, so the order
    is the same on every run): an audio file's Path, or ``{"path", "reason"}`` for a path
    that names none. Nothing is read but the folder listings.

    >>> next(iter_inputs(["no/such.wav"]))
    {'path': 'no/such.wav', 'reason': 'no such file or folder'}
    """
    from .corpora import iter_audio

    for p in map(Path, paths):
        if p.is_dir():
            found = False
            for f in iter_audio(p):
                found = True
                yield f
            if not found:
                yield {"path": str(p), "reason": "folder holds no audio files"}
        elif p.exists():
            yield p
        else:
            yield {"path": str(p), "reason": "no such file or folder"}


def skipped(path: str | os.PathLike, error: TinyserError) -> dict:
    """A file predict could not use: ``{"path", "reason"}``, the reason in one line
    (an AudioError's reason without the path it already names).

    >>> from .errors import AudioError
    >>> skipped("a.wav", AudioError("a.wav", "file is empty (0 bytes)"))
    {'path': 'a.wav', 'reason': 'file is empty (0 bytes)'}
    """
    return {"path": str(path), "reason": getattr(error, "reason", None) or str(error)}


def predict_files(model: Model, paths: Iterable[str | os.PathLike], window: float | None = None,
                  hop: float | None = None, progress: bool = True, allow_short: bool = False,
                  timeline: bool = True, one_stream: bool = False, balance: float | None = None) -> dict:
    """:meth:`Model.predict_file` over files and folders; files that cannot be used are
    listed under ``failed`` with the reason, and the others go on. ``one_stream``: an
    adaptive model carries its running statistics from file to file in the order listed
    (:meth:`Model.adaptive_state`), as for a batch from one speaker or one microphone; a
    file skipped part-way leaves them as they were before it. ``balance``: each file's
    probabilities balanced by those of the files before it (:func:`balance_files`).

    >>> r = predict_files(load_model(), ["Actor_01/"], progress=False)   # doctest: +SKIP
    >>> len(r["results"]), r["failed"]                                    # doctest: +SKIP
    (60, [])
    """
    from .progress import track

    files, failed = audio_inputs(paths)
    Stream(model, window, hop, allow_short=allow_short)  # a bad window/hop fails once, before any file is read
    results, state = [], model.adaptive_state() if one_stream else None
    for path in track(files, description="predict", enabled=progress and len(files) > 1):
        before = copy.deepcopy(state)  # a file that fails part-way leaves the statistics as they were
        try:
            results.append(model.predict_file(path, window, hop, allow_short=allow_short, timeline=timeline,
                                              state=state))
        except TinyserError as e:
            failed.append(skipped(path, e))
            state = before
    return prediction(model, balance_files(model.labels, results, balance) if balance else results, failed)


def balance_files(labels: list[str], results: list[dict], time_constant: float) -> list[dict]:
    """Results of :meth:`Model.predict_file`, in the order heard, with each file's label, confidence and
    probabilities balanced over the classes by the files before it (``tinyser.metrics.RunningBalance``, time
    constant in files): for files of one speaker who, over a few dozen of them, voices the emotions about
    evenly (an acted corpus, an elicitation session), it removes the lean the model has for that voice; for a
    speaker who is mostly neutral it would push them away from neutral. The model's own probabilities are kept
    as ``model_probabilities``; a file without speech is passed over.

    >>> r = [{"label": "a", "confidence": p, "probabilities": {"a": p, "b": 1 - p}} for p in (.6, .52)]
    >>> [x["label"] for x in balance_files(["a", "b"], r, 50.0)], r[1]["model_probabilities"]
    (['a', 'b'], {'a': 0.52, 'b': 0.48})
    """
    from .metrics import RunningBalance

    state = RunningBalance(len(labels), time_constant)
    for r in results:
        if r.get("label") is None:
            continue
        own = r["probabilities"]
        r.update(_verdict(labels, state.clip(np.array([own[k] for k in labels]))), model_probabilities=own)
    return results


def prediction(model: Model, results: list[dict], failed: list[dict]) -> dict:
    """The document ``tinyser predict --json`` writes (and ``POST /api/predict`` answers):
    the model, its labels, one :meth:`Model.predict_file` result per file, and the files
    skipped with their reasons.

    >>> prediction(load_model(), [], [])["labels"][:2]
    ['neutral', 'happy']
    """
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
