"""Audio loading, resampling, segmentation and every kind of bad input."""
from __future__ import annotations

import builtins

import numpy as np
import pytest
import soundfile as sf
from conftest import tone, write_tone

from tinyser import audio
from tinyser.errors import AudioError, ConfigError


@pytest.mark.parametrize("fmt,sr,channels,subtype", [
    ("wav", 44100, 2, "PCM_16"), ("wav", 8000, 1, "PCM_24"), ("flac", 22050, 1, None),
    ("ogg", 48000, 2, None), ("mp3", 44100, 1, None), ("wav", 16000, 6, "FLOAT"),
])
def test_any_format_rate_and_channels_become_mono_float32_at_target(tmp_path, fmt, sr, channels, subtype):
    path = write_tone(tmp_path / f"x.{fmt}", 1.0, sr, channels, subtype=subtype)
    y = audio.load(path, 16000)
    assert y.dtype == np.float32 and y.ndim == 1
    assert abs(len(y) - 16000) <= 2
    spectrum = np.abs(np.fft.rfft(y))
    assert abs(np.argmax(spectrum) - 220) <= 2  # the 220 Hz tone survives resampling (1 Hz bins)


def test_load_equals_one_shot_resampling(tmp_path):
    path = write_tone(tmp_path / "x.wav", 2.0, 44100, subtype="FLOAT")
    ref = audio.resample(sf.read(path, dtype="float32")[0], 44100, 16000)
    y = audio.load(path, 16000)
    assert y.shape == ref.shape
    np.testing.assert_allclose(y, ref, atol=1e-3)


def test_long_file_is_streamed_in_blocks(tmp_path):
    path = write_tone(tmp_path / "long.wav", 25.0, 16000)
    blocks = list(audio.stream(path, 16000, block_seconds=4.0))
    assert len(blocks) == 7 and max(len(b) for b in blocks) == 64000
    segs = list(audio.iter_segments(path, 16000, window=3.0, hop=1.5))
    starts = [s for s, _ in segs]
    assert starts[:3] == [0.0, 1.5, 3.0] and len(segs) == 16
    np.testing.assert_array_equal(np.stack([w for _, w in segs]),
                                  audio.segment(audio.load(path, 16000), 16000, 3.0, 1.5))


def test_normalize_and_trim():
    y = tone(1.0) * 0.1
    assert np.max(np.abs(audio.normalize(y, "peak"))) == pytest.approx(1.0, abs=1e-6)
    rms = np.sqrt(np.mean(audio.normalize(y, "rms", -20.0) ** 2))
    assert 20 * np.log10(rms) == pytest.approx(-20.0, abs=0.01)
    padded = np.r_[np.zeros(8000, np.float32), y, np.zeros(8000, np.float32)]
    assert 0 <= len(audio.trim(padded, 40)) - len(y) <= 2048 + 512  # librosa trims by whole frames
    with pytest.raises(ConfigError):
        audio.normalize(y, "loud")


@pytest.mark.parametrize("n,pad,expected", [
    (16000 * 5, "zero", 3), (16000 * 5, "drop", 2), (16000 * 4, "drop", 2), (1600, "drop", 1),
    (1600, "zero", 1), (16000 * 6, "zero", 3),
])
def test_segment_counts(n, pad, expected):
    assert audio.segment(np.ones(n, np.float32), 16000, 2.0, pad=pad).shape == (expected, 32000)


def test_segment_padding_policies():
    y = np.arange(1, 1601, dtype=np.float32)  # 0.1 s, shorter than one window
    zero = audio.segment(y, 16000, 0.25)[0]
    assert np.all(zero[1600:] == 0) and np.array_equal(zero[:1600], y)
    rep = audio.segment(y, 16000, 0.25, pad="repeat")[0]
    assert np.array_equal(rep[1600:3200], y)
    with pytest.raises(ConfigError):
        audio.segment(y, 16000, 0.25, pad="mirror")
    with pytest.raises(ConfigError):
        audio.segment(y, 16000, -1.0)


def test_segmenter_streaming_equals_batch():
    y = tone(7.3)
    seg = audio.Segmenter(16000, 4000)
    pieces = []
    for block in np.array_split(y, 37):
        pieces += seg.push(block)
    pieces += seg.finish()
    np.testing.assert_array_equal(np.stack([w for _, w in pieces]), audio.segment(y, 16000, 1.0, 0.25))


# --- bad input: each kind gives AudioError naming the file and the reason -----------------------

def _bad(tmp_path, kind):
    p = tmp_path / f"{kind}.wav"
    if kind == "empty":
        p.write_bytes(b"")
    elif kind == "truncated_header":
        write_tone(tmp_path / "ok.wav")
        p.write_bytes((tmp_path / "ok.wav").read_bytes()[:30])
    elif kind == "truncated_data":
        write_tone(tmp_path / "ok.wav", 1.0)
        p.write_bytes((tmp_path / "ok.wav").read_bytes()[:10000])
    elif kind == "text":
        p.write_text("this is not audio, just some text\n")
    elif kind == "binary_garbage":
        p.write_bytes(np.random.default_rng(0).integers(128, 256, 4096, dtype=np.uint8).tobytes())
    elif kind in ("nan", "inf"):
        y = tone(0.5)
        y[100] = np.nan if kind == "nan" else np.inf
        sf.write(p, y, 16000, subtype="FLOAT")
    elif kind == "zeros":
        sf.write(p, np.zeros(16000, np.float32), 16000)
    elif kind == "one_sample":
        sf.write(p, np.full(1, 0.5, np.float32), 16000)
    elif kind == "directory":
        p.mkdir()
    elif kind == "broken_link":
        p.symlink_to(tmp_path / "nowhere.wav")
    return p


@pytest.mark.parametrize("kind,reason", [
    ("empty", "empty"), ("truncated_header", "corrupt or truncated WAV header"),
    ("truncated_data", "truncated"), ("text", "not an audio file"), ("binary_garbage", "not a readable audio"),
    ("nan", "NaN or infinite"), ("inf", "NaN or infinite"), ("zeros", "silent"),
    ("one_sample", "too short: 1 sample"), ("directory", "directory"), ("broken_link", "broken link"),
])
def test_bad_input_raises_audio_error_naming_file_and_reason(tmp_path, kind, reason):
    p = _bad(tmp_path, kind)
    with pytest.raises(AudioError) as e:
        audio.load(p)
    assert str(p) in str(e.value) and reason in e.value.reason
    assert "\n" not in str(e.value)


def test_unreadable_file(tmp_path, monkeypatch):
    p = write_tone(tmp_path / "locked.wav")
    real_open = builtins.open

    def deny(file, *a, **kw):
        if str(file) == str(p):
            raise PermissionError(13, "Permission denied")
        return real_open(file, *a, **kw)
    monkeypatch.setattr(builtins, "open", deny)
    with pytest.raises(AudioError, match="cannot read file \\(Permission denied\\)"):
        audio.probe(p)


def test_short_clip_of_a_tenth_second_is_fine(tmp_path):
    y = audio.load(write_tone(tmp_path / "short.wav", 0.1, 44100), 16000)
    assert len(y) == 1600
