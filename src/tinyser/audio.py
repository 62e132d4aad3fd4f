"""Audio input: any file libsndfile reads, at any rate, depth or channel count,
becomes mono float32 at the rate the features need.

Files are decoded block by block and resampled with a streaming soxr
resampler, so an hours-long recording never sits whole in memory when it is
consumed through :func:`stream` or :func:`iter_segments`; :func:`load` uses the
same path and therefore gives the very same samples.
"""
from __future__ import annotations

import contextlib
import itertools
import math
import os
import stat
import string
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import numpy as np

from .errors import AudioError, ConfigError

DEFAULT_SAMPLE_RATE = 16000
MIN_DURATION = 0.05  # seconds; shorter clips carry no usable frame of speech
BLOCK_SECONDS = 10.0
PAD_POLICIES = ("zero", "repeat", "drop")
#: Sample rates outside this range are refused: a header claiming 1 Hz is damage, not audio
MIN_SAMPLE_RATE, MAX_SAMPLE_RATE = 4000, 384000
#: More channels than this is a damaged header (libsndfile itself stops at 1024)
MAX_CHANNELS = 64


@dataclass(frozen=True)
class AudioInfo:
    """What a file's header says about it."""

    path: str
    sample_rate: int
    channels: int
    frames: int
    format: str
    subtype: str

    @property
    def duration(self) -> float:
        return self.frames / self.sample_rate


def probe(path: str | os.PathLike) -> AudioInfo:
    """Read a file's header and check it can be decoded, without decoding it.

    Raises :class:`AudioError` naming the file and the reason: missing, a
    directory, empty, unreadable, not audio, a corrupt or truncated WAV, no
    samples, or shorter than ``MIN_DURATION``.

    >>> probe("speech.wav").duration          # doctest: +SKIP
    2.0
    """
    p = Path(path)
    if not p.exists():
        raise AudioError(p, "broken link" if p.is_symlink() else "file not found")
    if p.is_dir():
        raise AudioError(p, "is a directory, not an audio file")
    st = p.stat()
    if not stat.S_ISREG(st.st_mode):
        raise AudioError(p, f"is {_file_kind(st.st_mode)}, not an audio file")
    size = st.st_size
    if size == 0:
        raise AudioError(p, "file is empty (0 bytes)")
    try:
        with open(p, "rb") as f:
            head = f.read(64)
    except OSError as e:
        raise AudioError(p, f"cannot read file ({e.strerror or e})") from None
    wav = _wav_header(p, size) if head[:4] == b"RIFF" and head[8:12] == b"WAVE" else None
    info = _plain_wav_info(p, wav) if wav else None
    if info is None:  # anything but a plain PCM/float WAV: ask libsndfile
        import soundfile as sf

        try:
            with quiet_stderr():  # libmpg123 prints "Note: Illegal Audio-MPEG-Header" lines
                i = sf.info(str(p))
        except Exception as e:  # libsndfile raises several types for bad files
            raise AudioError(p, _undecodable_reason(head, e)) from None
        info = AudioInfo(str(p), int(i.samplerate), int(i.channels), int(i.frames), i.format, i.subtype)
    _check_limits(p, info.sample_rate, info.channels)
    if info.frames <= 0:
        raise AudioError(p, "no audio samples")
    if info.duration < MIN_DURATION:
        n = info.frames
        raise AudioError(p, f"too short: {n} sample{'s' if n != 1 else ''} "
                            f"({info.duration:.4f} s); need at least {MIN_DURATION} s")
    return info


def _file_kind(mode: int) -> str:
    if stat.S_ISFIFO(mode):
        return "a named pipe (FIFO)"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "not a regular file"


def _check_limits(p, rate: int, channels: int) -> None:
    """Refuse header fields no recording has: they mean damage, and decoding them
    would take unbounded time (1 Hz: one second per sample) or give garbage."""
    if not MIN_SAMPLE_RATE <= rate <= MAX_SAMPLE_RATE:
        raise AudioError(p, f"sample rate {rate} Hz in the header is outside "
                            f"{MIN_SAMPLE_RATE}-{MAX_SAMPLE_RATE} Hz (damaged header?)")
    if not 1 <= channels <= MAX_CHANNELS:
        raise AudioError(p, f"{channels} channels in the header; at most {MAX_CHANNELS} are read (damaged header?)")


@contextlib.contextmanager
def quiet_stderr():
    """Silence what C libraries write straight to file descriptor 2 (the MP3
    decoder's "Note: ..." lines) for the duration of the block."""
    try:
        saved = os.dup(2)
    except OSError:  # no stderr at all
        yield
        return
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        try:
            os.dup2(devnull, 2)
        finally:
            os.close(devnull)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def _undecodable_reason(head: bytes, err: Exception) -> str:
    detail = str(err).split(":")[-1].strip().rstrip(".") or type(err).__name__
    if "possibly a pipe" in detail or "not recognised" in detail.lower():
        detail = "unknown format"
    if head[:4] in (b"RIFF", b"RIFX", b"RF64"):
        return f"corrupt or truncated WAV header ({detail})"
    printable = set(string.printable.encode())
    if head and all(b in printable for b in head):
        return "not an audio file (looks like text)"
    return f"not a readable audio file ({detail})"


_WAV_SUBTYPES = {(1, 8): "PCM_U8", (1, 16): "PCM_16", (1, 24): "PCM_24", (1, 32): "PCM_32",
                 (3, 32): "FLOAT", (3, 64): "DOUBLE"}


def _wav_header(p: Path, size: int) -> dict:
    """Walk a RIFF/WAVE file's chunks: the 'fmt ' fields and the data size.

    libsndfile quietly reads a WAV whose data was cut short; we refuse it,
    because a cut recording is usually a failed copy the user wants to know about.
    """
    out: dict = {}
    with open(p, "rb") as f:
        f.seek(12)
        while len(hdr := f.read(8)) == 8:
            cid, csize = struct.unpack("<4sI", hdr)
            if cid == b"fmt " and csize >= 16:
                body = f.read(csize)
                if len(body) < csize:
                    return {}
                tag, channels, rate, _, block_align, bits = struct.unpack("<HHIIHH", body[:16])
                if tag == 0xFFFE and csize >= 26:  # WAVE_FORMAT_EXTENSIBLE: the real tag opens the GUID
                    tag = struct.unpack("<H", body[24:26])[0]
                _check_wav_fmt(p, tag, channels, rate, block_align, bits)
                out.update(tag=tag, channels=channels, rate=rate, block_align=block_align, bits=bits)
                f.seek(csize & 1, 1)
                continue
            if cid == b"data":
                have = size - f.tell()
                # 0 and 0xFFFFFFFF mark streamed WAVs whose size was never filled in
                if csize not in (0, 0xFFFFFFFF) and have < csize:
                    raise AudioError(p, f"truncated: header declares {csize} bytes of audio, "
                                        f"file holds {have}")
                out["data"] = csize
                return out
            f.seek(csize + (csize & 1), 1)
    return {}


def _check_wav_fmt(p: Path, tag: int, channels: int, rate: int, block_align: int, bits: int) -> None:
    """Cross-check a WAV's 'fmt ' fields: libsndfile decodes inconsistent ones into noise."""
    _check_limits(p, rate, channels)
    if tag in (1, 3):  # PCM, IEEE float: the fields must agree with one another
        if not (8 <= bits <= 32 if tag == 1 else bits in (32, 64)):
            raise AudioError(p, f"{bits} bits per sample in a {'PCM' if tag == 1 else 'float'} WAV header; "
                                f"expected {'8 to 32' if tag == 1 else '32 or 64'} (damaged header?)")
        if block_align != channels * -(-bits // 8):  # e.g. 20-bit samples in 3-byte containers
            raise AudioError(p, f"WAV header is inconsistent: block size {block_align} bytes for {channels} "
                                f"channel{'s' if channels != 1 else ''} of {bits} bits (damaged header?)")


def _plain_wav_info(p: Path, h: dict) -> AudioInfo | None:
    """Header facts of a plain PCM or IEEE-float WAV, read without libsndfile (None otherwise)."""
    subtype = _WAV_SUBTYPES.get((h.get("tag"), h.get("bits")))
    if not subtype or not h.get("channels") or not h.get("rate") or not h.get("block_align") or \
            h.get("data") in (None, 0, 0xFFFFFFFF):
        return None
    return AudioInfo(str(p), h["rate"], h["channels"], h["data"] // h["block_align"], "WAV", subtype)


def _check_samples(path, y: np.ndarray) -> None:
    if not np.all(np.isfinite(y)):
        bad = int(np.count_nonzero(~np.isfinite(y)))
        raise AudioError(path, f"contains {bad} NaN or infinite sample{'s' if bad != 1 else ''}")


def stream(path: str | os.PathLike, sample_rate: int = DEFAULT_SAMPLE_RATE,
           block_seconds: float = BLOCK_SECONDS) -> Iterator[np.ndarray]:
    """Yield mono float32 blocks of a file at ``sample_rate``.

    Decoding and resampling run block by block, so memory stays bounded for
    any file length. Raises :class:`AudioError` for unusable files, for NaN or
    infinite samples, and (after the last block) for all-zero audio.

    >>> sum(len(b) for b in stream("long.flac", 16000))   # doctest: +SKIP
    57600000
    """
    import soundfile as sf  # imported on first decode: a cached re-run never needs it
    import soxr

    info = probe(path)
    block = max(1, int(block_seconds * info.sample_rate))
    resampler = None
    if info.sample_rate != sample_rate:
        resampler = soxr.ResampleStream(info.sample_rate, sample_rate, 1, dtype="float32", quality="HQ")
    peak = 0.0
    try:
        with quiet_stderr():
            f = sf.SoundFile(info.path)
        with f:
            if (f.samplerate, f.channels) != (info.sample_rate, info.channels):
                raise AudioError(path, f"header says {info.sample_rate} Hz, {info.channels} channels but the decoder "
                                       f"reads {f.samplerate} Hz, {f.channels} channels (damaged header?)")
            while True:
                with quiet_stderr():
                    x = f.read(block, dtype="float32", always_2d=True)
                last = len(x) < block
                y = x.mean(axis=1, dtype=np.float32) if x.shape[1] > 1 else x[:, 0]
                _check_samples(path, y)
                if len(y):
                    peak = max(peak, float(np.max(np.abs(y))))
                if resampler is not None:
                    y = resampler.resample_chunk(y, last=last)
                if len(y):
                    yield np.ascontiguousarray(y, dtype=np.float32)
                if last:
                    break
    except AudioError:
        raise
    except Exception as e:  # decoding errors surface here for damaged payloads
        raise AudioError(path, f"cannot decode audio ({str(e).strip() or type(e).__name__})") from None
    if peak == 0.0:
        raise AudioError(path, "audio is silent (all samples are zero)")


def load(path: str | os.PathLike, sample_rate: int = DEFAULT_SAMPLE_RATE, *,
         normalize: str | None = None, trim_db: float | None = None) -> np.ndarray:
    """Load a file as mono float32 at ``sample_rate``.

    ``normalize`` is ``None``, ``"peak"`` or ``"rms"`` (see :func:`normalize`);
    ``trim_db`` trims leading and trailing audio quieter than that many dB
    below the peak.

    >>> y = load("clip_44k_stereo.wav", 16000)   # doctest: +SKIP
    >>> y.dtype, y.ndim                           # doctest: +SKIP
    (dtype('float32'), 1)
    """
    blocks = list(stream(path, sample_rate))
    y = np.concatenate(blocks) if blocks else np.zeros(0, np.float32)
    if trim_db is not None:
        y = trim(y, trim_db)
    if normalize is not None:
        y = _normalize(y, normalize)
    return y


def resample(y: np.ndarray, orig_sr: int, target_sr: int) -> np.ndarray:
    """Resample a float signal with soxr (high quality).

    >>> resample(np.zeros(44100, np.float32), 44100, 16000).shape
    (16000,)
    """
    import soxr

    if orig_sr == target_sr:
        return np.asarray(y, dtype=np.float32)
    return soxr.resample(np.asarray(y, dtype=np.float32), orig_sr, target_sr, quality="HQ")


def normalize(y: np.ndarray, mode: str = "peak", target_db: float | None = None) -> np.ndarray:
    """Scale a signal to a peak (default 0 dBFS) or RMS level (default -20 dBFS).

    >>> float(np.max(np.abs(normalize(np.array([0.1, -0.5], np.float32)))))
    1.0
    """
    if mode == "peak":
        level = float(np.max(np.abs(y)))
        target = 10 ** ((0.0 if target_db is None else target_db) / 20)
    elif mode == "rms":
        level = float(np.sqrt(np.mean(np.square(y, dtype=np.float64))))
        target = 10 ** ((-20.0 if target_db is None else target_db) / 20)
    else:
        raise ConfigError(f"normalize must be 'peak' or 'rms', not {mode!r}")
    return (y * (target / level)).astype(np.float32) if level > 0 else y


_normalize = normalize  # load() has a parameter of the same name


def trim(y: np.ndarray, top_db: float = 40.0) -> np.ndarray:
    """Cut leading and trailing parts quieter than ``top_db`` below the peak
    (librosa's trim), keeping at least one sample.

    >>> trim(np.r_[np.zeros(4000), np.ones(100), np.zeros(4000)].astype(np.float32)).size < 8100
    True
    """
    from .extras import need

    librosa = need("librosa", "trimming silence")
    out, _ = librosa.effects.trim(y, top_db=top_db)
    return out if out.size else y[:1]


class Segmenter:
    """Cut a stream of samples into fixed-length windows.

    ``pad`` says what happens to the tail that does not fill a window, and to
    clips shorter than one window: ``"zero"`` pads with zeros, ``"repeat"``
    loops the tail, ``"drop"`` drops the tail. Every input yields at least one
    window: a clip shorter than the window is zero-padded even under
    ``"drop"``. The same object serves arrays, files read in blocks and live
    microphone input.
    """

    def __init__(self, window: int, hop: int | None = None, pad: str = "zero"):
        if window < 1 or (hop is not None and hop < 1):
            raise ConfigError("segment window and hop must be at least one sample")
        if pad not in PAD_POLICIES:
            raise ConfigError(f"pad must be one of {', '.join(PAD_POLICIES)}, not {pad!r}")
        self.window, self.hop, self.pad = window, hop or window, pad
        self._buf = np.zeros(0, np.float32)
        self._start = 0      # absolute index of _buf[0]
        self._next = 0       # absolute start of the next window
        self._emitted = 0

    def push(self, samples: np.ndarray) -> list[tuple[int, np.ndarray]]:
        """Add samples; return the windows completed, as (start sample, window)."""
        self._buf = np.concatenate([self._buf, np.asarray(samples, np.float32)])
        out = []
        while self._next + self.window <= self._start + len(self._buf):
            i = self._next - self._start
            out.append((self._next, self._buf[i:i + self.window].copy()))
            self._next += self.hop
            self._emitted += 1
        drop = min(self._next - self._start, len(self._buf))
        self._buf, self._start = self._buf[drop:], self._start + drop
        return out

    def finish(self) -> list[tuple[int, np.ndarray]]:
        """Flush the tail according to the padding policy."""
        end = self._start + len(self._buf)
        covered = (self._next - self.hop + self.window) if self._emitted else 0
        i = self._next - self._start
        tail = self._buf[i:] if 0 <= i < len(self._buf) else np.zeros(0, np.float32)
        self._buf = np.zeros(0, np.float32)
        if end <= covered or tail.size == 0:
            return []
        if self.pad == "drop" and self._emitted:
            return []
        if self.pad == "repeat":
            win = np.resize(tail, self.window).astype(np.float32)
        else:
            win = np.zeros(self.window, np.float32)
            win[:tail.size] = tail
        self._emitted += 1
        return [(self._next, win)]


def segment(y: np.ndarray, sample_rate: int, window: float, hop: float | None = None,
            pad: str = "zero") -> np.ndarray:
    """Cut a signal into windows of ``window`` seconds every ``hop`` seconds.

    Returns an array of shape ``(n_windows, window_samples)``.

    >>> segment(np.ones(16000 * 5, np.float32), 16000, window=2.0, hop=1.0).shape
    (4, 32000)
    """
    seg = Segmenter(*_window_samples(sample_rate, window, hop), pad=pad)
    wins = [w for _, w in seg.push(y) + seg.finish()]
    return np.stack(wins)


def iter_segments(path: str | os.PathLike, sample_rate: int, window: float,
                  hop: float | None = None, pad: str = "zero") -> Iterator[tuple[float, np.ndarray]]:
    """Yield ``(start_seconds, window)`` over a file of any length, reading it in blocks.

    >>> next(iter_segments("talk.wav", 16000, 3.0))[1].shape   # doctest: +SKIP
    (48000,)
    """
    seg = Segmenter(*_window_samples(sample_rate, window, hop), pad=pad)
    for block in itertools.chain(stream(path, sample_rate), [None]):
        for start, w in (seg.push(block) if block is not None else seg.finish()):
            yield start / sample_rate, w


def _window_samples(sample_rate: int, window: float, hop: float | None) -> tuple[int, int | None]:
    if not _positive(window) or (hop is not None and not _positive(hop)):  # also refuses NaN and inf
        raise ConfigError(f"segment window and hop must be positive, finite seconds; got window {window}, hop {hop}")
    if window > MAX_WINDOW_SECONDS:
        raise ConfigError(f"segment window {window:g} s is longer than {MAX_WINDOW_SECONDS:g} s")
    return int(round(window * sample_rate)), (None if hop is None else int(round(hop * sample_rate)))


def _positive(x) -> bool:
    try:
        return math.isfinite(x) and x > 0
    except TypeError:
        return False


#: No model input is longer than this; a longer window is a typo (and would not fit in memory)
MAX_WINDOW_SECONDS = 60.0


@dataclass(frozen=True)
class SegmentConfig:
    """How clips become fixed-length model inputs: ``window`` seconds every
    ``hop`` seconds (``None``: hop = window), tails padded per ``pad``.
    Light-SERNet's 3 s input is the default.

    >>> SegmentConfig(window=2.0).split(np.ones(16000 * 5, np.float32), 16000).shape
    (3, 32000)
    """

    window: float = 3.0
    hop: float | None = None
    pad: str = "zero"

    def __post_init__(self):
        Segmenter(*_window_samples(1000, self.window, self.hop), pad=self.pad)  # validates

    def split(self, y: np.ndarray, sample_rate: int) -> np.ndarray:
        return segment(y, sample_rate, self.window, self.hop, self.pad)

    def segmenter(self, sample_rate: int) -> Segmenter:
        return Segmenter(*_window_samples(sample_rate, self.window, self.hop), pad=self.pad)

    def to_dict(self) -> dict:
        return {"window": self.window, "hop": self.hop, "pad": self.pad}

    @classmethod
    def from_dict(cls, d: dict) -> SegmentConfig:
        return cls(**d)
