"""What the web app does, without the web stack: limits, uploads decoded from
memory, live PCM streams and the model card. Everything runs through
:mod:`tinyser.inference` (the API of ``tinyser predict`` and ``tinyser listen``).

Errors a client can fix are :class:`WebError`: an HTTP status (413 too large,
415 not audio, 422 bad parameters or unusable audio) and one line, the same
reason ``tinyser predict`` gives for the same file.
"""
from __future__ import annotations

import contextlib
import os
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import numpy as np

from ..audio import MAX_SAMPLE_RATE, MIN_SAMPLE_RATE, probe
from ..errors import AudioError, TinyserError
from ..inference import Model, load_model, prediction  # noqa: F401  (load_model: the doctests)


@dataclass(frozen=True)
class Limits:
    """What one client may ask of the server.

    ``max_bytes`` and ``max_seconds``: one upload; ``max_streams``: live streams at
    once; ``max_chunk_seconds``: audio in one WebSocket message; ``stream_lead``:
    how far (seconds of audio) a stream may run ahead of real time before the
    server stops reading it (the client is throttled, nothing piles up); None:
    as fast as inference goes (benchmarks, tests).
    """

    max_bytes: int = 64 * 2**20
    max_seconds: float = 1200.0
    max_streams: int = 4
    max_chunk_seconds: float = 2.0
    stream_lead: float | None = 2.0


class WebError(TinyserError):
    """A request the server refuses: an HTTP ``status`` and a one-line message.

    >>> e = WebError(415, "x.txt: not an audio file (looks like text)"); e.status, str(e)
    (415, 'x.txt: not an audio file (looks like text)')
    """

    def __init__(self, status: int, message: str):
        self.status = status
        super().__init__(message)


#: reasons of :class:`~tinyser.errors.AudioError` that mean "this is not audio we can decode" (415)
UNSUPPORTED = ("not an audio file", "not a readable audio file")
#: Content-Types an upload may declare (besides none and multipart/form-data)
AUDIO_TYPES = ("audio/", "application/octet-stream", "video/ogg", "video/webm")


def status_of(err: AudioError) -> int:
    """415 for a file that is not audio tinyser can decode, 422 for audio it cannot use.

    >>> status_of(AudioError("a", "not an audio file (looks like text)")), status_of(AudioError("a", "too short"))
    (415, 422)
    """
    return 415 if (err.reason or "").startswith(UNSUPPORTED) else 422


def check_content_type(content_type: str | None) -> None:
    """Refuse an upload whose declared type is not audio (or unspecified bytes).

    >>> check_content_type("audio/wav; codecs=1"); check_content_type(None)
    >>> check_content_type("application/json")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    tinyser.web.core.WebError: unsupported Content-Type application/json: send an audio file ...
    """
    base = (content_type or "").split(";")[0].strip().lower()
    if base and not base.startswith(AUDIO_TYPES):
        raise WebError(415, f"unsupported Content-Type {base}: send an audio file (audio/*, "
                            "application/octet-stream) or multipart/form-data")


def clean_name(name: str | None) -> str:
    """An uploaded file's name as shown in results and messages: its last part, one line.

    >>> clean_name("../../etc/x\\nwav"), clean_name(None)
    ('x wav', 'upload')
    """
    name = (name or "").replace("\\", "/").split("/")[-1]
    name = " ".join(name.split())[:200]
    return name or "upload"


@contextlib.contextmanager
def in_memory_file(data: bytes) -> Iterator[str]:
    """A path that reads ``data``: an anonymous in-memory file (Linux memfd), so an
    upload never touches the disk; elsewhere a temporary file deleted at once."""
    if hasattr(os, "memfd_create") and os.path.isdir("/proc/self/fd"):
        fd = os.memfd_create("tinyser-upload")
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view):]
            yield f"/proc/self/fd/{fd}"
        finally:
            os.close(fd)
        return
    with tempfile.TemporaryDirectory(prefix="tinyser-upload-") as d:
        path = Path(d) / "upload"
        path.write_bytes(data)
        yield str(path)


def check_params(model: Model, window: float | None, hop: float | None, allow_short: bool) -> None:
    """Refuse a bad window or hop (422) before any audio is read."""
    try:
        model.stream(window, hop, allow_short=allow_short)
    except TinyserError as e:
        raise WebError(422, str(e)) from None


def predict_upload(model: Model, data: bytes, name: str = "upload", limits: Limits = Limits(),
                   window: float | None = None, hop: float | None = None, allow_short: bool = False) -> dict:
    """``tinyser predict --json`` for one uploaded file, decoded from memory: the same
    document (see :func:`tinyser.inference.prediction`) with the upload's name as path.

    >>> predict_upload(load_model(), open("talk.wav", "rb").read(), "talk.wav")["results"][0]["label"]  # doctest: +SKIP
    'neutral'
    """
    name = clean_name(name)
    check_params(model, window, hop, allow_short)
    if not data:
        raise WebError(422, f"{name}: empty upload (0 bytes); send an audio file")
    if len(data) > limits.max_bytes:
        raise WebError(413, f"{name}: {len(data):,} bytes; at most {limits.max_bytes:,} bytes per upload")
    with in_memory_file(data) as path:
        try:
            info = probe(path)
            if info.duration > limits.max_seconds:
                raise WebError(413, f"{name}: {info.duration:.0f} s of audio; at most {limits.max_seconds:g} s "
                                    "per upload")
            r = model.predict_file(path, window, hop, allow_short=allow_short)
        except AudioError as e:
            raise WebError(status_of(e), f"{name}: {e.reason}") from None
        except WebError:
            raise
        except TinyserError as e:
            raise WebError(422, f"{name}: {e}") from None
    r["path"] = name
    return prediction(model, [r], [])


class LiveStream:
    """16-bit little-endian PCM at any rate in, the rows of ``tinyser listen --log`` out.

    The samples go through the same resampler and :class:`~tinyser.inference.Stream`
    as ``listen --input FILE``; memory is bounded (one window of audio, a chunk).

    >>> s = LiveStream(load_model(), 16000)
    >>> pcm = np.zeros(16000 * 3, "<i2").tobytes()   # 3 s, sent in 1-s chunks
    >>> rows = [r for i in range(0, len(pcm), 32000) for r in s.push(pcm[i:i + 32000])] + s.finish()
    >>> [(r["start"], r["end"], r["voiced"]) for r in rows]
    [(0.0, 2.0, False), (1.0, 3.0, False)]
    """

    def __init__(self, model: Model, sample_rate, channels=1, window: float | None = None,
                 hop: float | None = None, allow_short: bool = False, limits: Limits = Limits()):
        import soxr

        if isinstance(sample_rate, bool) or not isinstance(sample_rate, int) or \
                not MIN_SAMPLE_RATE <= sample_rate <= MAX_SAMPLE_RATE:
            raise WebError(422, f"sample_rate must be a whole number of Hz in {MIN_SAMPLE_RATE}-{MAX_SAMPLE_RATE}, "
                                f"not {sample_rate!r}")
        if isinstance(channels, bool) or not isinstance(channels, int) or not 1 <= channels <= 8:
            raise WebError(422, f"channels must be 1 to 8, not {channels!r}")
        check_params(model, window, hop, allow_short)
        self.model, self.sample_rate, self.channels = model, sample_rate, channels
        self.stream = model.stream(window, hop, allow_short=allow_short)
        self.max_bytes = 2 * channels * max(1, int(limits.max_chunk_seconds * sample_rate))
        self.max_chunk_seconds = limits.max_chunk_seconds
        self.seconds = 0.0  # audio received
        self._carry = b""  # part of a sample frame split across two messages
        self._resampler = None
        if sample_rate != model.sample_rate:
            self._resampler = soxr.ResampleStream(sample_rate, model.sample_rate, 1, dtype="float32", quality="HQ")

    def push(self, chunk: bytes) -> list[dict]:
        """Add a chunk of PCM; returns the rows of the windows it completes."""
        if len(chunk) > self.max_bytes:
            raise WebError(413, f"a chunk of {len(chunk):,} bytes is over {self.max_chunk_seconds:g} s of audio "
                                f"({self.max_bytes:,} bytes); send smaller chunks")
        data = self._carry + bytes(chunk)
        frame = 2 * self.channels
        n = len(data) // frame * frame
        self._carry = data[n:]
        x = np.frombuffer(data[:n], "<i2").astype(np.float32) / np.float32(32768)  # as soundfile reads PCM_16
        if self.channels > 1:
            x = x.reshape(-1, self.channels).mean(axis=1, dtype=np.float32)
        self.seconds += len(x) / self.sample_rate
        if self._resampler is not None:
            x = self._resampler.resample_chunk(x)
        return self._rows(self.stream.push(x)) if len(x) else []

    def finish(self) -> list[dict]:
        """The end of the audio: the resampler's tail and the last, zero-padded window."""
        rows = []
        if self._resampler is not None:
            tail = self._resampler.resample_chunk(np.zeros(0, np.float32), last=True)
            rows += self.stream.push(tail) if len(tail) else []
        return self._rows(rows + self.stream.finish())

    def warnings(self) -> list[str]:
        """What the model cannot see in this audio (see :meth:`tinyser.inference.Stream.warnings`)."""
        return self.stream.warnings(self.sample_rate)

    @staticmethod
    def _rows(rows: list[dict]) -> list[dict]:
        t = time.time()
        return [{"time": t, **r} for r in rows]  # as listen --log writes them


def model_card(model: Model) -> dict:
    """What ``GET /api/model`` answers: labels, window, size and how the model was trained.

    >>> card = model_card(load_model()); card["labels"][0], card["window"], card["sample_rate"]
    ('neutral', 2.0, 16000)
    """
    from .. import __version__

    m = model.metadata
    t, ev = m.training, m.evaluation
    return {
        "name": model.path.name, "model": m.model, "model_params": m.model_params, "quantization": m.quantization,
        "labels": list(m.labels), "sample_rate": model.sample_rate, "window": model.window,
        "hop": model.window / 2, "frame_seconds": model.frame_seconds, "size_bytes": len(model.bytes),
        "params": m.params, "macs": m.macs, "frontend": m.frontend.config.name,
        "training": {"data": [Path(d).name for d in t.data], "label_scheme": t.label_scheme,
                     "protocol": t.protocol, "fold": t.fold, "scores": dict(t.fold_scores)},
        "evaluation": None if ev is None else {"protocol": ev.protocol, "ua": ev.ua, "ua_std": ev.ua_std,
                                               "wa": ev.wa, "f1": ev.f1},
        "tinyser": m.tinyser, "server": __version__,
    }


def parse_float(value: str | None, name: str) -> float | None:
    """A number from a query parameter (422 when it is not one).

    >>> parse_float("0.5", "hop"), parse_float(None, "hop")
    (0.5, None)
    """
    if value in (None, ""):
        return None
    try:
        return float(value)
    except ValueError:
        raise WebError(422, f"{name} must be a number of seconds, not {value!r}") from None


def parse_bool(value: str | None) -> bool:
    return str(value).lower() in ("1", "true", "yes", "on")

