"""Voice activity (tinyser.vad): speech relative to the recording's own noise floor
and voiced; silence, DC, hum, steady tones and stationary noise are not speech
(the fixed -45 dBFS rule called DC and noise voiced and missed quiet speech).
The C frontend's copy is checked in tests/test_deploy.py."""
from __future__ import annotations

import numpy as np
import pytest
from conftest import speechlike

from tinyser.audio import Segmenter
from tinyser.errors import ConfigError
from tinyser.features import get_config
from tinyser.vad import VoiceConfig

SR = 16000


def stream_windows(y: np.ndarray, config: VoiceConfig = VoiceConfig(), window: int = 2 * SR,
                   hop: int = SR) -> list[bool]:
    """Speech flag of each window, streamed in blocks as tinyser's Stream does."""
    seg, vad = Segmenter(window, hop, pad="zero"), config.tracker(SR, get_config("cmsis_mfcc"))
    found = []
    for i in range(0, len(y), 4000):
        vad.add(y[i:i + 4000])
        found += seg.push(y[i:i + 4000])
    found += seg.finish()
    return [vad.window_speech(s, min(len(w), len(y) - s)) for s, w in found]


def noises(seconds: float = 10.0) -> dict[str, np.ndarray]:
    n, rng = int(seconds * SR), np.random.default_rng(0)
    t = np.arange(n) / SR
    spec = np.fft.rfft(rng.standard_normal(n))
    spec[1:] /= np.sqrt(np.fft.rfftfreq(n, 1 / SR)[1:])
    spec[0] = 0
    pink = np.fft.irfft(spec, n)
    return {"silence": np.zeros(n), "dc": np.full(n, 0.5), "dc + noise": 0.5 + 0.01 * rng.standard_normal(n),
            "white": 0.1 * rng.standard_normal(n), "pink": 0.1 * pink / pink.std(),
            "hum 50 Hz": sum(0.2 / k * np.sin(2 * np.pi * 50 * k * t) for k in range(1, 7)),
            "hum 60 Hz": sum(0.2 / k * np.sin(2 * np.pi * 60 * k * t + k) for k in range(1, 7)),
            "steady tone": 0.3 * np.sin(2 * np.pi * 220 * t) + 0.1 * np.sin(2 * np.pi * 550 * t)}


@pytest.mark.parametrize("name", list(noises(1.0)))
def test_noise_dc_hum_and_silence_are_not_speech(name):
    flags = stream_windows(noises()[name].astype(np.float32))
    assert len(flags) == 9 and not any(flags), name


@pytest.mark.parametrize("level_db", [-10.0, -30.0, -50.0])
def test_speech_is_found_at_any_level_and_over_hum_or_noise(level_db):
    y = speechlike(6.0) * np.float32(10 ** (level_db / 20) / 0.25)
    assert all(stream_windows(y))
    hum = noises(6.0)["hum 60 Hz"].astype(np.float32) * np.float32(10 ** ((level_db - 15) / 20))
    assert all(stream_windows(y + hum)[1:])  # over a hum 15 dB down (the floor settles in the first second)


def test_pauses_between_utterances_are_not_speech():
    y = np.concatenate([speechlike(2.0), 0.001 * np.random.default_rng(1).standard_normal(6 * SR).astype(np.float32),
                        speechlike(2.0)])
    assert stream_windows(y, window=2 * SR, hop=2 * SR) == [True, False, False, False, True]


def test_config_round_trip_defaults_and_errors():
    assert VoiceConfig.from_dict(None) == VoiceConfig()
    assert VoiceConfig.from_dict(VoiceConfig(margin_db=6.0).to_dict()).margin_db == 6.0
    for bad in ({"margin_db": float("nan")}, {"margin_db": -1.0}, {"min_voicing": 2.0}, {"nope": 1.0},
                {"margin_db": "x"}, "text"):
        with pytest.raises(ConfigError) as err:
            VoiceConfig.from_dict(bad)
        assert "\n" not in str(err.value)


def test_other_rates_and_frontends_get_a_tracker():
    for sr in (8000, 22050, 44100):
        t = VoiceConfig().tracker(sr, get_config("mfcc"))
        assert t.n >= 0.04 * sr and t.hop == t.n // 4  # frames of 40-64 ms, hop a quarter
    assert VoiceConfig().is_voiced(speechlike(1.0, 22050), 22050)
