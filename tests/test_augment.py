"""tinyser.augment on synthesised audio only: tones, clicks and noise."""
from __future__ import annotations

import dataclasses
import json
import random

import numpy as np
import pytest

from tinyser.augment import (
    AddGaussianNoise,
    AugmentConfig,
    Augmenter,
    Gain,
    PitchShift,
    TimeShift,
    TimeStretch,
    augment,
    augment_batch,
    transform_from_dict,
)
from tinyser.errors import ConfigError

SR = 16000


def tone(freq: float = 440.0, seconds: float = 1.0, amp: float = 0.5, sr: int = SR) -> np.ndarray:
    t = np.arange(int(seconds * sr)) / sr
    return (amp * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def speechish(seconds: float = 1.0, seed: int = 0) -> np.ndarray:
    """Harmonic tone with a slow envelope plus a little noise: never silent, never constant."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * SR)) / SR
    f0 = 150 + 30 * np.sin(2 * np.pi * 3 * t)
    phase = 2 * np.pi * np.cumsum(f0) / SR
    x = sum(np.sin(k * phase) / k for k in range(1, 6)) * (0.5 + 0.4 * np.sin(2 * np.pi * 2 * t))
    return (0.2 * x + 0.01 * rng.standard_normal(t.size)).astype(np.float32)


def rms(x: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.square(x, dtype=np.float64))))


def peak_hz(x: np.ndarray, sr: int = SR) -> float:
    """Spectral peak with 4x zero padding and parabolic interpolation."""
    n = 4 * x.size
    mag = np.abs(np.fft.rfft(x * np.hanning(x.size), n))
    k = int(np.argmax(mag[1:-1])) + 1
    a, b, c = np.log(mag[k - 1 : k + 2] + 1e-12)
    return (k + 0.5 * (a - c) / (a - 2 * b + c)) * sr / n


ALWAYS = [
    AddGaussianNoise(min_snr_db=10, max_snr_db=30, p=1.0),
    TimeStretch(min_rate=0.8, max_rate=1.2, p=1.0),
    PitchShift(min_semitones=-3, max_semitones=3, p=1.0),
    TimeShift(min_fraction=-0.2, max_fraction=0.2, p=1.0),
    TimeShift(min_fraction=-0.2, max_fraction=0.2, rollover=True, p=1.0),
    Gain(min_gain_db=-6, max_gain_db=6, p=1.0),
]
IDS = ["noise", "stretch", "pitch", "shift", "shift_roll", "gain"]


# --- every transform -------------------------------------------------------

@pytest.mark.parametrize("t", ALWAYS, ids=IDS)
@pytest.mark.parametrize("n", [0, 1, 37, 8000])
def test_transform_keeps_length_and_dtype(t, n):
    x = speechish(1.0)[:n]
    before = x.copy()
    y = t(x, SR, np.random.default_rng(1))
    assert y.shape == x.shape and y.dtype == np.float32
    assert np.isfinite(y).all()
    assert np.array_equal(x, before), "input must not be modified"
    assert y is not x


@pytest.mark.parametrize("t", ALWAYS, ids=IDS)
def test_float64_input_gives_float32(t):
    y = t(speechish(0.25).astype(np.float64), SR, np.random.default_rng(0))
    assert y.dtype == np.float32 and y.shape == (SR // 4,)


@pytest.mark.parametrize("t", ALWAYS, ids=IDS)
def test_p_zero_is_identity_and_p_one_changes(t):
    x = speechish(0.25)
    off = type(t).from_dict({**t.to_dict(), "p": 0.0})
    assert np.array_equal(off(x, SR, np.random.default_rng(0)), x)
    assert not np.array_equal(t(x, SR, np.random.default_rng(0)), x)


def test_probability_is_respected():
    x = speechish(0.05)
    g = Gain(min_gain_db=3, max_gain_db=3, p=0.3)
    rng = np.random.default_rng(0)
    fired = sum(not np.array_equal(g(x, SR, rng), x) for _ in range(2000))
    assert 0.25 < fired / 2000 < 0.35


# --- what each transform does -----------------------------------------------

@pytest.mark.parametrize("snr", [0.0, 10.0, 17.5, 30.0])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_noise_achieves_requested_snr(snr, seed):
    x = speechish(1.0, seed)
    y = AddGaussianNoise(min_snr_db=snr, max_snr_db=snr, p=1.0)(x, SR, np.random.default_rng(seed))
    measured = 20 * np.log10(rms(x) / rms(y - x))
    assert abs(measured - snr) < 0.5
    # white: roughly flat spectrum, zero mean
    noise = (y - x).astype(np.float64)
    assert abs(noise.mean()) < 0.1 * noise.std()


def test_noise_snr_is_drawn_within_range():
    x = speechish(0.5)
    t = AddGaussianNoise(min_snr_db=12, max_snr_db=18, p=1.0)
    rng = np.random.default_rng(3)
    snrs = [20 * np.log10(rms(x) / rms(t(x, SR, rng) - x)) for _ in range(40)]
    assert 11.9 < min(snrs) and max(snrs) < 18.1
    assert max(snrs) - min(snrs) > 3  # actually varies


def test_noise_leaves_silence_silent():
    x = np.zeros(1000, np.float32)
    assert np.array_equal(AddGaussianNoise(p=1.0)(x, SR, np.random.default_rng(0)), x)


@pytest.mark.parametrize("db", [-6.0, -1.5, 0.0, 4.0, 6.0])
def test_gain_changes_rms_by_requested_db(db):
    x = speechish(0.5)
    y = Gain(min_gain_db=db, max_gain_db=db, p=1.0)(x, SR, np.random.default_rng(0))
    assert 20 * np.log10(rms(y) / rms(x)) == pytest.approx(db, abs=1e-3)


@pytest.mark.parametrize("semitones", [-2.0, -1.0, 1.0, 2.0, 5.0])
def test_pitch_shift_moves_peak_by_ratio(semitones):
    x = tone(440.0, 0.5)
    y = PitchShift(min_semitones=semitones, max_semitones=semitones, p=1.0)(x, SR, np.random.default_rng(0))
    ratio = peak_hz(y) / peak_hz(x)
    assert peak_hz(x) == pytest.approx(440.0, rel=1e-3)
    assert ratio == pytest.approx(2 ** (semitones / 12), rel=0.02)


def test_pitch_shift_keeps_duration():
    """A burst in the middle stays in the middle."""
    x = np.zeros(SR, np.float32)
    x[6000:10000] = tone(440.0, 0.25)
    y = PitchShift(min_semitones=2, max_semitones=2, p=1.0)(x, SR, np.random.default_rng(0))
    env = np.abs(y)
    assert env[7000:9000].mean() > 10 * env[:4000].mean()
    assert env[7000:9000].mean() > 10 * env[12000:].mean()


def test_time_stretch_speed_up_pads_and_slow_down_crops():
    x = tone(300.0, 1.0)
    fast = TimeStretch(min_rate=2.0, max_rate=2.0, p=1.0)(x, SR, np.random.default_rng(0))
    slow = TimeStretch(min_rate=0.5, max_rate=0.5, p=1.0)(x, SR, np.random.default_rng(0))
    assert fast.shape == slow.shape == x.shape
    assert np.all(fast[-3000:] == 0)                       # ~0.5 s of content, then zero padding
    assert rms(fast[1000:7000]) > 0.5 * rms(x)
    assert rms(slow[-3000:]) > 0.5 * rms(x)                 # cropped: still sounding at the end
    assert peak_hz(slow[:8000]) == pytest.approx(300.0, rel=0.02)  # pitch unchanged


def test_time_stretch_moves_burst_end():
    x = np.zeros(SR, np.float32)
    x[:4000] = tone(300.0, 0.25)
    y = TimeStretch(min_rate=0.8, max_rate=0.8, p=1.0)(x, SR, np.random.default_rng(0))
    loud = np.flatnonzero(np.abs(y) > 0.1)
    assert loud[-1] == pytest.approx(4000 / 0.8, abs=400)


@pytest.mark.parametrize("rollover", [False, True])
@pytest.mark.parametrize("frac, expected", [(0.1, 2000), (-0.05, 500), (0.0, 1000)])
def test_time_shift_moves_click(rollover, frac, expected):
    x = np.zeros(10000, np.float32)
    x[1000] = 1.0
    y = TimeShift(min_fraction=frac, max_fraction=frac, rollover=rollover, p=1.0)(x, SR, np.random.default_rng(0))
    assert int(np.argmax(y)) == expected and y.sum() == 1.0


def test_time_shift_past_edge_rolls_or_drops():
    x = np.zeros(10000, np.float32)
    x[1000] = 1.0
    roll = TimeShift(min_fraction=-0.2, max_fraction=-0.2, rollover=True, p=1.0)(x, SR, np.random.default_rng(0))
    drop = TimeShift(min_fraction=-0.2, max_fraction=-0.2, rollover=False, p=1.0)(x, SR, np.random.default_rng(0))
    assert int(np.argmax(roll)) == 9000
    assert not drop.any()


# --- determinism and global state ----------------------------------------------

def everything_on() -> AugmentConfig:
    return AugmentConfig(transforms=[type(t).from_dict(t.to_dict()) for t in ALWAYS])


def test_same_seed_same_sequence_despite_global_random():
    x = speechish(0.5)
    cfg = everything_on()
    a = Augmenter(cfg, seed=123)
    first = [a(x, SR) for _ in range(4)]
    b = Augmenter(cfg, seed=123)
    second = []
    for i in range(4):
        random.seed(1000 + i)
        np.random.seed(2000 + i)
        random.random()
        np.random.standard_normal(10)
        second.append(b(x, SR))
    for u, v in zip(first, second):
        assert u.tobytes() == v.tobytes()
    assert not all(np.array_equal(first[0], f) for f in first[1:])  # the stream advances


def test_default_config_is_deterministic():
    x = speechish(0.5)
    for seed in range(5):
        assert augment(x, SR, seed=seed).tobytes() == augment(x, SR, seed=seed).tobytes()


def test_different_seeds_differ():
    x = speechish(0.5)
    outs = [Augmenter(everything_on(), seed=s)(x, SR) for s in range(4)]
    for i in range(len(outs)):
        for j in range(i + 1, len(outs)):
            assert not np.array_equal(outs[i], outs[j])


def test_reset_replays_stream():
    x = speechish(0.25)
    a = Augmenter(everything_on(), seed=9)
    y1 = a(x, SR)
    a(x, SR)
    a.reset()
    assert np.array_equal(a(x, SR), y1)


def test_global_random_state_untouched():
    x = speechish(0.5)
    random.seed(5)
    np.random.seed(6)
    py_before = random.getstate()
    np_before = np.random.get_state()
    a = Augmenter(everything_on(), seed=0)
    for _ in range(3):
        a(x, SR)
    augment_batch(np.stack([x, x]), SR, np.random.default_rng(0), everything_on())
    for t in ALWAYS:
        t(x, SR, np.random.default_rng(0))
    assert random.getstate() == py_before
    np_after = np.random.get_state()
    assert np_after[0] == np_before[0] and np.array_equal(np_after[1], np_before[1])
    assert np_after[2:] == np_before[2:]


def test_augment_batch_shape_and_determinism():
    batch = np.stack([speechish(0.25, s) for s in range(3)])
    a = augment_batch(batch, SR, np.random.default_rng(4), everything_on())
    b = augment_batch(batch, SR, 4, everything_on())  # int seed == default_rng(seed)
    assert a.shape == batch.shape and a.dtype == np.float32
    assert a.tobytes() == b.tobytes()
    assert not np.array_equal(a, batch)
    via_method = Augmenter(everything_on(), seed=4).augment_batch(batch, SR)
    assert via_method.tobytes() == a.tobytes()


def test_disabled_config_passes_through():
    x = speechish(0.25)
    cfg = AugmentConfig.disabled()
    assert not cfg.enabled
    y = augment(x, SR, cfg, seed=0)
    assert np.array_equal(y, x) and y is not x
    all_off = AugmentConfig(transforms=[Gain(p=0.0), AddGaussianNoise(p=0.0)])
    assert not all_off.enabled
    assert np.array_equal(Augmenter(all_off, seed=1)(x, SR), x)


# --- configuration ----------------------------------------------------------------

def test_default_config_matches_recipe():
    by_type = {t.name: t for t in AugmentConfig().transforms}
    assert by_type["noise"] == AddGaussianNoise(min_snr_db=10, max_snr_db=30, p=0.5)
    assert by_type["time_stretch"] == TimeStretch(min_rate=0.9, max_rate=1.1, p=0.3)
    assert by_type["pitch_shift"] == PitchShift(min_semitones=-2, max_semitones=2, p=0.3)
    assert by_type["time_shift"] == TimeShift(min_fraction=-0.1, max_fraction=0.1, p=0.5)
    assert by_type["gain"] == Gain(min_gain_db=-6, max_gain_db=6, p=0.5)


@pytest.mark.parametrize("cfg", [AugmentConfig(), AugmentConfig.disabled(), everything_on()],
                         ids=["default", "disabled", "all_on"])
def test_config_json_round_trip(cfg):
    text = cfg.to_json(indent=2)
    assert json.loads(text) == cfg.to_dict()
    back = AugmentConfig.from_json(text)
    assert back == cfg
    assert AugmentConfig.from_dict(json.loads(json.dumps(cfg.to_dict()))) == cfg
    x = speechish(0.25)
    assert np.array_equal(Augmenter(back, seed=3)(x, SR), Augmenter(cfg, seed=3)(x, SR))


def test_transform_dicts_round_trip_and_defaults():
    for t in ALWAYS:
        d = t.to_dict()
        assert json.loads(json.dumps(d)) == d
        assert transform_from_dict(d) == t
    assert AugmentConfig.from_dict({}) == AugmentConfig()
    assert Augmenter({"transforms": [{"type": "gain"}]}, seed=0).config.transforms == (Gain(),)


def test_transforms_are_frozen():
    with pytest.raises(dataclasses.FrozenInstanceError):
        Gain().p = 1.0  # type: ignore[misc]


BAD_TRANSFORMS = [
    lambda: Gain(min_gain_db=6, max_gain_db=-6),
    lambda: Gain(min_gain_db=-100),
    lambda: AddGaussianNoise(min_snr_db=30, max_snr_db=10),
    lambda: AddGaussianNoise(min_snr_db=float("nan")),
    lambda: AddGaussianNoise(max_snr_db=float("inf")),
    lambda: AddGaussianNoise(min_snr_db=-50),
    lambda: TimeStretch(min_rate=0.0),
    lambda: TimeStretch(min_rate=1.2, max_rate=1.1),
    lambda: PitchShift(min_semitones=3, max_semitones=-3),
    lambda: PitchShift(max_semitones=30),
    lambda: TimeShift(min_fraction=-1.5),
    lambda: TimeShift(min_fraction=0.2, max_fraction=0.1),
    lambda: TimeShift(rollover="yes"),
    lambda: Gain(p=1.5),
    lambda: Gain(p=-0.1),
    lambda: Gain(p=float("nan")),
    lambda: Gain(p=True),
    lambda: Gain(min_gain_db="3"),
    lambda: transform_from_dict({"type": "reverb"}),
    lambda: transform_from_dict({"min_gain_db": 1}),
    lambda: transform_from_dict({"type": "gain", "gain_db": 1}),
    lambda: Gain.from_dict({"type": "noise"}),
    lambda: AugmentConfig.from_dict({"transforms": {"type": "gain"}}),
    lambda: AugmentConfig.from_dict({"transfroms": []}),
    lambda: AugmentConfig.from_dict([]),
    lambda: AugmentConfig.from_json("{not json"),
    lambda: AugmentConfig(transforms=["gain"]),
    lambda: Augmenter(seed=-1),
    lambda: Augmenter(seed=1.5),
    lambda: Augmenter(config="default"),
]


@pytest.mark.parametrize("make", BAD_TRANSFORMS)
def test_bad_config_raises_one_line_config_error(make):
    with pytest.raises(ConfigError) as e:
        make()
    assert str(e.value) and "\n" not in str(e.value)


BAD_INPUTS = [
    (np.zeros((2, 100), np.float32), SR),
    (np.zeros((), np.float32), SR),
    (np.array([0.0, np.nan, 0.0], np.float32), SR),
    (np.array([0.0, np.inf], np.float32), SR),
    (np.zeros(100, np.int16), SR),
    (np.zeros(100, np.float32), 0),
    (np.zeros(100, np.float32), 16000.0),
]


@pytest.mark.parametrize("samples, sr", BAD_INPUTS)
def test_bad_input_raises_config_error(samples, sr):
    for call in (lambda: Gain(p=1.0)(samples, sr, np.random.default_rng(0)),
                 lambda: Augmenter(seed=0)(samples, sr),
                 lambda: augment(samples, sr, seed=0)):
        with pytest.raises(ConfigError) as e:
            call()
        assert "\n" not in str(e.value)


def test_bad_batch_and_rng_raise_config_error():
    with pytest.raises(ConfigError):
        augment_batch(np.zeros(100, np.float32), SR, np.random.default_rng(0))
    with pytest.raises(ConfigError):
        augment_batch(np.full((2, 10), np.nan, np.float32), SR, 0)
    with pytest.raises(ConfigError):
        Gain()(np.zeros(10, np.float32), SR, "seed")  # type: ignore[arg-type]
