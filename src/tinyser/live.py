"""Live emotion recognition: microphone (or a file played as if it were one)
→ ring buffer → :class:`~tinyser.inference.Stream` → one line per hop.

The microphone callback only copies samples into a fixed-size ring buffer;
the main thread drains it into the model's stream, so a slow inference never
blocks the audio driver (an overrun is counted and reported instead). A file
given with ``input`` is written into the same ring buffer block by block,
paced in real time or as fast as possible.
"""
from __future__ import annotations

import json
import os
import threading
import time
from pathlib import Path
from typing import Callable, Iterator

import numpy as np

from .audio import stream as file_blocks
from .errors import TinyserError
from .extras import need
from .inference import Model

BLOCK_SECONDS = 0.1


class RingBuffer:
    """A single-producer, single-consumer float32 ring buffer of fixed capacity.
    Writing more than fits drops the oldest samples and counts them in ``overruns``.

    >>> rb = RingBuffer(4)
    >>> rb.write(np.arange(6, dtype=np.float32)); rb.read().tolist(), rb.overruns
    ([2.0, 3.0, 4.0, 5.0], 2)
    """

    def __init__(self, capacity: int):
        self._buf = np.zeros(int(capacity), np.float32)
        self._written = 0  # total samples ever written
        self._read = 0     # total samples ever read
        self.overruns = 0
        self._lock = threading.Lock()

    def write(self, samples: np.ndarray) -> None:
        """Append samples (from the producer: the audio callback or a file reader)."""
        x = np.asarray(samples, np.float32).ravel()
        cap = len(self._buf)
        with self._lock:
            n = len(x)
            x = x[-cap:]  # of a block larger than the buffer only the newest samples can stay
            i = (self._written + n - len(x)) % cap
            first = min(len(x), cap - i)
            self._buf[i:i + first] = x[:first]
            self._buf[:len(x) - first] = x[first:]
            self._written += n
            lost = self._written - self._read - cap
            if lost > 0:
                self.overruns += lost
                self._read += lost

    def read(self) -> np.ndarray:
        """Everything written since the last read, oldest first (the consumer side).

        >>> rb = RingBuffer(3); rb.write(np.ones(2, np.float32)); rb.read().tolist(), rb.read().tolist()
        ([1.0, 1.0], [])
        """
        cap = len(self._buf)
        with self._lock:
            n = self._written - self._read
            idx = (self._read + np.arange(n)) % cap
            self._read = self._written
            return self._buf[idx].copy()


def listen(model: Model, *, input: str | os.PathLike | None = None, device: int | str | None = None,
           window: float | None = None, hop: float | None = None, realtime: bool = False,
           log: str | os.PathLike | None = None, on_window: Callable[[dict], None] | None = None,
           seconds: float | None = None, on_warning: Callable[[str], None] | None = None,
           allow_short: bool = False, keep: bool = True) -> list[dict]:
    """Run the model on live audio; ``on_window`` is called with each window's
    result (see :class:`~tinyser.inference.Stream`) as soon as it is complete.

    ``input``: a file sent through the same path instead of the microphone
    (``realtime`` paces it at 1×). ``log``: append JSON lines. ``seconds``:
    stop after that much audio (default: the file's end, or Ctrl-C); the
    audio heard is flushed as at the end of a file (it must be positive).
    ``on_warning`` hears of audio dropped because inference fell behind, when
    it happens, and of a file's rate or bandwidth the model cannot use.
    ``allow_short``: accept a ``window`` shorter than the model's input.
    ``keep=False`` returns nothing and keeps nothing, so memory stays bounded
    however long it listens (the ``tinyser listen`` command).
    Returns every window's result.

    >>> rows = listen(load_model(), input="talk.wav")   # doctest: +SKIP
    """
    import math

    if seconds is not None and not (isinstance(seconds, (int, float)) and math.isfinite(seconds) and seconds > 0):
        raise TinyserError(f"seconds must be a positive number, not {seconds!r}")
    sr = model.sample_rate
    s = model.stream(window, hop, allow_short=allow_short)
    ring = RingBuffer(int(sr * max(10.0, 4 * s.hop)))
    source = _file_source(input, sr, realtime) if input is not None else _mic_source(device, sr)
    rows: list[dict] = []
    logf = _open_log(log)
    try:
        heard, dropped = 0, 0
        for block in source(ring):
            stop = block is not None and seconds is not None and heard + len(block) >= seconds * sr
            if block is not None:
                block = block[:int(seconds * sr) - heard] if stop else block
                heard += len(block)
            found = s.finish() if block is None else s.push(block) + (s.finish() if stop else [])
            for row in found:
                if keep:
                    rows.append(row)
                if logf:
                    logf.write(json.dumps({"time": time.time(), **row}) + "\n")
                    logf.flush()
                if on_window:
                    on_window(row)
            if ring.overruns > dropped and on_warning:
                on_warning(f"{(ring.overruns - dropped) / sr:.2f} s of audio dropped: inference fell behind "
                           "(use a longer --hop)")
            dropped = ring.overruns
            if stop:
                break
    finally:
        if logf:
            logf.close()
    if input is not None and on_warning:
        from .audio import probe

        for text in s.warnings(probe(input).sample_rate):
            on_warning(f"{input}: {text}")
    return rows


def _open_log(path):
    if path is None:
        return None
    try:
        return open(path, "a", encoding="utf-8")
    except OSError as e:
        raise TinyserError(f"{path}: cannot write the log ({e.strerror or e})") from None


def _file_source(path, sr: int, realtime: bool):
    def blocks(ring: RingBuffer) -> Iterator[np.ndarray | None]:
        start, fed = time.monotonic(), 0
        step = int(sr * BLOCK_SECONDS)
        for big in file_blocks(path, sr):
            for i in range(0, len(big), step):  # microphone-sized blocks through the ring buffer
                ring.write(big[i:i + step])
                fed += len(big[i:i + step])
                if realtime:
                    time.sleep(max(0.0, start + fed / sr - time.monotonic()))
                yield ring.read()
        yield None  # end of input: flush the last window
    return blocks


def _mic_source(device, sr: int):
    sd = _sounddevice()
    try:
        info = sd.query_devices(device, "input")
    except Exception as e:  # sounddevice raises ValueError/PortAudioError with a message
        raise TinyserError(f"no audio input device{'' if device is None else f' {device!r}'}: "
                           f"{str(e).strip() or type(e).__name__} (list them with `python -m sounddevice`; "
                           "or pass --input FILE)") from None

    def blocks(ring: RingBuffer) -> Iterator[np.ndarray]:
        def callback(indata, frames, t, status):
            ring.write(indata[:, 0])

        try:
            with sd.InputStream(samplerate=sr, channels=1, dtype="float32", device=device,
                                blocksize=int(sr * BLOCK_SECONDS), callback=callback):
                while True:
                    time.sleep(BLOCK_SECONDS)
                    yield ring.read()
        except sd.PortAudioError as e:
            raise TinyserError(f"audio input {info['name']!r}: {e}") from None
    return blocks


def check_microphone() -> None:
    """Raise one line now if live input cannot work: no ``[live]`` extra, or no PortAudio."""
    _sounddevice()


def _sounddevice():
    try:
        return need("sounddevice", "live microphone input (or pass --input FILE)")
    except OSError as e:  # the PortAudio shared library is missing
        raise TinyserError(f"no audio input: {e} (install PortAudio, e.g. `apt install libportaudio2`; "
                           "or pass --input FILE)") from None


def format_row(row: dict, width: int = 20) -> str:
    """One rolling line for a window: time span, label, confidence bar.

    >>> format_row({"start": 0.0, "end": 3.0, "label": "sad", "confidence": 0.5, "voiced": True}, 10)
    '   0.0–   3.0 s  sad       0.50 █████     '
    """
    if not row["voiced"]:
        return f"{row['start']:6.1f}–{row['end']:6.1f} s  (silence)"
    bar = "█" * int(round(row["confidence"] * width))
    return f"{row['start']:6.1f}–{row['end']:6.1f} s  {row['label']:<9} {row['confidence']:.2f} {bar:<{width}}"


def log_path_ok(path: Path | None) -> None:
    """Refuse an unusable log path before listening starts.

    >>> log_path_ok(Path("/no/such/folder/live.jsonl"))
    Traceback (most recent call last):
    tinyser.errors.TinyserError: /no/such/folder/live.jsonl: folder /no/such/folder does not exist
    """
    if path is None:
        return
    path = Path(path)
    if path.is_dir():
        raise TinyserError(f"{path}: is a folder; give a file for the log")
    if not path.parent.is_dir():
        raise TinyserError(f"{path}: folder {path.parent} does not exist")
    if not os.access(path if path.exists() else path.parent, os.W_OK):
        raise TinyserError(f"{path}: not writable")
