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
    check_length_dtype_and_input(t, n)


def check_length_dtype_and_input(t, n):
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
    lambda: transform_from_dict({"type": "flanger"}),
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


# === recording conditions: speed, coloured noise, babble, reverb, band, EQ, clipping ===

from scipy.signal import sosfreqz  # noqa: E402

from tinyser.augment import (  # noqa: E402
    TRANSFORMS,
    BabbleNoise,
    BandLimit,
    Clipping,
    ColouredNoise,
    RandomEQ,
    Reverb,
    SpeedPerturb,
)
from tinyser.augment.eq import biquad  # noqa: E402


def talker_pool(n: int = 6, seconds: float = 0.7) -> list[np.ndarray]:
    """Stand-ins for other talkers: speech-like clips of varied length and pitch."""
    return [np.roll(speechish(seconds + 0.1 * i, seed=100 + i), 37 * i) for i in range(n)]


POOL = talker_pool()

NEW_ALWAYS = [
    SpeedPerturb(min_factor=0.9, max_factor=1.1, p=1.0),
    ColouredNoise(min_snr_db=5, max_snr_db=30, p=1.0),
    BabbleNoise(min_snr_db=5, max_snr_db=20, p=1.0, pool=POOL),
    Reverb(p=1.0),
    BandLimit(p_8k=0.0, p=1.0),
    BandLimit(p_8k=1.0, p=1.0),
    RandomEQ(p=1.0),
    Clipping(p=1.0),
]
NEW_IDS = ["speed", "coloured", "babble", "reverb", "band", "band_8k", "eq", "clipping"]


def with_pool_if_babble(t):
    return t.with_pool(POOL) if isinstance(t, BabbleNoise) else t


def rebuilt(t, **changes):
    return with_pool_if_babble(type(t).from_dict({**t.to_dict(), **changes}))


def schroeder_rt60(h: np.ndarray, sr: int = SR) -> float:
    """RT60 from the -15..-45 dB slope of the backward-integrated energy (the late decay)."""
    edc = np.cumsum(np.square(h[::-1]))[::-1]
    db = 10 * np.log10(edc / edc[0] + 1e-30)
    i15, i45 = int(np.argmax(db <= -15)), int(np.argmax(db <= -45))
    return 2.0 * (i45 - i15) / sr


def band_db(x: np.ndarray, lo: float, hi: float, sr: int = SR) -> float:
    spec = np.abs(np.fft.rfft(x * np.hanning(x.size))) ** 2
    f = np.fft.rfftfreq(x.size, 1 / sr)
    return float(10 * np.log10(spec[(f >= lo) & (f < hi)].sum() + 1e-30))


def test_new_transforms_are_registered():
    for t in NEW_ALWAYS:
        assert TRANSFORMS[t.name] is type(t)
    assert {"speed", "coloured_noise", "babble", "reverb", "bandlimit", "eq", "clipping"} <= set(TRANSFORMS)


@pytest.mark.parametrize("t", NEW_ALWAYS, ids=NEW_IDS)
@pytest.mark.parametrize("n", [0, 1, 37, 8000])
def test_new_transform_keeps_length_dtype_and_input(t, n):
    check_length_dtype_and_input(t, n)


@pytest.mark.parametrize("t", NEW_ALWAYS, ids=NEW_IDS)
def test_new_transform_float64_and_other_rates(t):
    for sr in (8000, 22050, 44100):
        y = t(speechish(0.25).astype(np.float64), sr, np.random.default_rng(0))
        assert y.dtype == np.float32 and y.shape == (SR // 4,) and np.isfinite(y).all()


@pytest.mark.parametrize("t", NEW_ALWAYS, ids=NEW_IDS)
def test_new_transform_p_zero_identity_p_one_changes(t):
    x = speechish(0.5)
    off = rebuilt(t, p=0.0)
    assert np.array_equal(off(x, SR, np.random.default_rng(0)), x)
    assert not np.array_equal(t(x, SR, np.random.default_rng(0)), x)


@pytest.mark.parametrize("t", NEW_ALWAYS, ids=NEW_IDS)
def test_new_transform_is_seeded(t):
    x = speechish(0.5)
    a = t(x, SR, np.random.default_rng(11))
    random.seed(1)
    np.random.seed(2)
    np.random.standard_normal(5)
    b = t(x, SR, np.random.default_rng(11))
    c = t(x, SR, np.random.default_rng(12))
    assert a.tobytes() == b.tobytes()
    assert not np.array_equal(a, c)
    # an int seed is the same as default_rng(seed)
    assert t(x, SR, 11).tobytes() == a.tobytes()


@pytest.mark.parametrize("t", NEW_ALWAYS, ids=NEW_IDS)
def test_new_transform_leaves_global_random_untouched(t):
    x = speechish(0.5)
    random.seed(5)
    np.random.seed(6)
    py_before = random.getstate()
    np_before = np.random.get_state()
    for seed in range(3):
        t(x, SR, np.random.default_rng(seed))
    assert random.getstate() == py_before
    np_after = np.random.get_state()
    assert np_after[0] == np_before[0] and np.array_equal(np_after[1], np_before[1])
    assert np_after[2:] == np_before[2:]


@pytest.mark.parametrize("t", NEW_ALWAYS, ids=NEW_IDS)
def test_new_transform_json_round_trip(t):
    d = t.to_dict()
    assert "pool" not in d
    text = json.dumps(d)
    back = transform_from_dict(json.loads(text))
    assert back == t and back.to_dict() == d
    x = speechish(0.25)
    back = with_pool_if_babble(back)
    assert back(x, SR, np.random.default_rng(5)).tobytes() == t(x, SR, np.random.default_rng(5)).tobytes()


# --- speed perturbation ------------------------------------------------------------

@pytest.mark.parametrize("factor", [0.9, 0.95, 1.05, 1.1])
def test_speed_changes_pitch_and_tempo_together(factor):
    x = tone(400.0, 1.0)
    y = SpeedPerturb(min_factor=factor, max_factor=factor, p=1.0)(x, SR, np.random.default_rng(0))
    assert peak_hz(y[:8000]) == pytest.approx(400.0 * factor, rel=0.005)
    burst = np.zeros(SR, np.float32)
    burst[:8000] = tone(300.0, 0.5)
    z = SpeedPerturb(min_factor=factor, max_factor=factor, p=1.0)(burst, SR, np.random.default_rng(0))
    loud = np.flatnonzero(np.abs(z) > 0.1)
    assert loud[-1] == pytest.approx(8000 / factor, abs=40)


def test_speed_faster_pads_slower_crops():
    x = tone(300.0, 1.0)
    fast = SpeedPerturb(min_factor=1.1, max_factor=1.1, p=1.0)(x, SR, np.random.default_rng(0))
    slow = SpeedPerturb(min_factor=0.9, max_factor=0.9, p=1.0)(x, SR, np.random.default_rng(0))
    assert np.all(fast[-1400:] == 0) and rms(fast[:14000]) > 0.9 * rms(x)
    assert rms(slow[-2000:]) > 0.9 * rms(x)


# --- coloured noise --------------------------------------------------------------------

@pytest.mark.parametrize("beta", [0.0, 1.0, 2.0])
@pytest.mark.parametrize("snr", [0.0, 12.5, 30.0])
def test_coloured_noise_reaches_snr(beta, snr):
    x = speechish(1.0, seed=3)
    t = ColouredNoise(min_snr_db=snr, max_snr_db=snr, min_beta=beta, max_beta=beta, p=1.0)
    y = t(x, SR, np.random.default_rng(int(beta * 10 + snr)))
    assert 20 * np.log10(rms(x) / rms(y - x)) == pytest.approx(snr, abs=1.0)


@pytest.mark.parametrize("beta", [0.0, 1.0, 2.0])
def test_coloured_noise_has_the_drawn_slope(beta):
    x = np.full(4 * SR, 0.1, np.float32)  # DC only: the noise is what is left after removing the mean
    t = ColouredNoise(min_snr_db=0, max_snr_db=0, min_beta=beta, max_beta=beta, p=1.0)
    noise = (t(x, SR, np.random.default_rng(0)) - x).astype(np.float64)
    power = np.abs(np.fft.rfft(noise)) ** 2
    f = np.fft.rfftfreq(noise.size, 1 / SR)
    centres = np.geomspace(100, 6000, 12)
    levels = [np.log10(power[(f >= c / 1.2) & (f < c * 1.2)].mean()) for c in centres]
    slope = np.polyfit(np.log10(centres), levels, 1)[0]
    assert slope == pytest.approx(-beta, abs=0.2)
    assert power[(f > 0) & (f < 15)].sum() < 1e-6 * power.sum()  # nothing below 20 Hz


def test_coloured_noise_draws_beta_and_snr_in_range():
    x = speechish(0.5)
    t = ColouredNoise(min_snr_db=10, max_snr_db=20, p=1.0)
    rng = np.random.default_rng(0)
    snrs = [20 * np.log10(rms(x) / rms(t(x, SR, rng) - x)) for _ in range(30)]
    assert 9.9 < min(snrs) and max(snrs) < 20.1 and max(snrs) - min(snrs) > 4


def test_coloured_noise_leaves_silence_silent():
    x = np.zeros(1000, np.float32)
    assert np.array_equal(ColouredNoise(p=1.0)(x, SR, np.random.default_rng(0)), x)


# --- babble ----------------------------------------------------------------------------------

@pytest.mark.parametrize("snr", [5.0, 12.0, 20.0])
def test_babble_reaches_snr(snr):
    x = speechish(1.0, seed=4)
    t = BabbleNoise(min_snr_db=snr, max_snr_db=snr, p=1.0, pool=POOL)
    for seed in range(3):
        y = t(x, SR, np.random.default_rng(seed))
        assert 20 * np.log10(rms(x) / rms(y - x)) == pytest.approx(snr, abs=1.0)


def test_babble_is_made_of_the_pool():
    """A pool of 3 kHz tones gives babble whose energy is at 3 kHz."""
    pool = [tone(3000.0, 0.3 + 0.1 * i, amp=0.1 * (i + 1)) for i in range(4)]
    x = tone(200.0, 1.0)
    y = BabbleNoise(min_snr_db=10, max_snr_db=10, p=1.0, pool=pool)(x, SR, np.random.default_rng(0))
    assert peak_hz(y - x) == pytest.approx(3000.0, rel=0.01)


def test_babble_pool_is_not_a_parameter():
    t = BabbleNoise(p=1.0, pool=POOL)
    assert len(t.pool) == len(POOL)
    assert t == BabbleNoise(p=1.0) and "pool" not in repr(t) and "pool" not in t.to_dict()
    assert t.pool[0] is POOL[0], "float32 pool clips are kept by reference"
    assert BabbleNoise.from_dict(t.to_dict()).pool == ()
    assert len(BabbleNoise(p=1.0).with_pool(np.stack([POOL[0][:5000]] * 3)).pool) == 3
    with pytest.raises(ConfigError):
        BabbleNoise.from_dict({"type": "babble", "pool": []})


def test_babble_without_pool_says_how_to_supply_it():
    with pytest.raises(ConfigError, match="with_babble_pool") as e:
        BabbleNoise(p=1.0)(speechish(0.25), SR, np.random.default_rng(0))
    assert "\n" not in str(e.value)
    x = speechish(0.25)  # p=0: never fires, so no pool needed
    assert np.array_equal(BabbleNoise(p=0.0)(x, SR, np.random.default_rng(0)), x)


@pytest.mark.parametrize("bad", [[np.zeros((2, 3), np.float32)], [np.zeros(5, np.int16)],
                                 [np.array([0.0, np.nan])], "speech", 3])
def test_babble_bad_pool_raises_config_error(bad):
    with pytest.raises(ConfigError):
        BabbleNoise(pool=bad)


def test_babble_short_pool_clips_loop():
    pool = [speechish(0.05, seed=s) for s in range(3)]  # 800 samples each, for a 1 s clip
    x = speechish(1.0)
    y = BabbleNoise(min_snr_db=10, max_snr_db=10, p=1.0, pool=pool)(x, SR, np.random.default_rng(0))
    assert rms((y - x)[-4000:]) > 0.5 * rms((y - x)[:4000])


# --- reverb ------------------------------------------------------------------------------------

def test_reverb_uses_pyroomacoustics():
    pytest.importorskip("pyroomacoustics")


@pytest.mark.parametrize("rt60", [0.2, 0.5, 0.8])
def test_reverb_rir_has_the_drawn_rt60(rt60):
    t = Reverb(min_rt60=rt60, max_rt60=rt60, max_rir_seconds=2.0, p=1.0)
    for seed in range(3):
        h = t.room_impulse_response(SR, np.random.default_rng(seed))
        assert int(np.argmax(np.abs(h))) == 0, "direct path first: speech is not delayed"
        assert schroeder_rt60(h) == pytest.approx(rt60, rel=0.15)


def test_reverb_lengthens_the_decay():
    x = np.zeros(SR, np.float32)
    x[2000:2400] = tone(500.0, 0.025)
    short = Reverb(min_rt60=0.2, max_rt60=0.2, p=1.0)(x, SR, np.random.default_rng(0))
    long = Reverb(min_rt60=0.8, max_rt60=0.8, p=1.0)(x, SR, np.random.default_rng(0))
    after = slice(2400 + 1600, 2400 + 4800)  # 100-300 ms after the burst ends
    assert not x[after].any()
    assert rms(short[after]) > 0 and rms(long[after]) > 3 * rms(short[after])
    assert rms(long) == pytest.approx(rms(x), rel=1e-3)  # level kept
    loud = np.abs(long) > 0.1 * np.abs(long).max()
    assert np.flatnonzero(loud)[0] >= 1990  # nothing before the burst


def test_reverb_keeps_rms_and_silence():
    x = speechish(1.0)
    y = Reverb(p=1.0)(x, SR, np.random.default_rng(3))
    assert rms(y) == pytest.approx(rms(x), rel=1e-3)
    z = np.zeros(500, np.float32)
    assert np.array_equal(Reverb(p=1.0)(z, SR, np.random.default_rng(0)), z)


def test_reverb_rir_is_capped():
    h = Reverb(min_rt60=0.8, max_rt60=0.8, max_rir_seconds=0.25).room_impulse_response(SR, np.random.default_rng(0))
    assert h.shape == (SR // 4,)


# --- telephone band, EQ, clipping ---------------------------------------------------------

@pytest.mark.parametrize("p_8k", [0.0, 1.0])
def test_bandlimit_removes_energy_outside_the_band(p_8k):
    x = (tone(100.0, 1.0) + tone(1000.0, 1.0) + tone(6000.0, 1.0)).astype(np.float32)
    t = BandLimit(min_low_hz=300, max_low_hz=400, min_high_hz=3000, max_high_hz=3400, p_8k=p_8k, p=1.0)
    y = t(x, SR, np.random.default_rng(0))[2000:]
    x = x[2000:]
    assert band_db(y, 50, 150) < band_db(x, 50, 150) - 30      # below the low cut: gone
    assert band_db(y, 5500, 6500) < band_db(x, 5500, 6500) - 30  # above the high cut: gone
    assert band_db(y, 900, 1100) == pytest.approx(band_db(x, 900, 1100), abs=1.5)


def test_bandlimit_edges_validated():
    with pytest.raises(ConfigError):
        BandLimit(max_low_hz=3500, min_high_hz=3000)


def test_biquads_follow_the_cookbook():
    for kind, at_dc, at_f0, at_nyq in [("low_shelf", 6, 3, 0), ("high_shelf", 0, 3, 6), ("peak", 0, 6, 0)]:
        _, h = sosfreqz(biquad(kind, 1000.0, 6.0, 1.0, SR)[None], worN=[0.0, 1000.0, 7999.0], fs=SR)
        assert 20 * np.log10(np.abs(h)) == pytest.approx([at_dc, at_f0, at_nyq], abs=0.05)


def test_eq_gain_stays_within_bands_times_range():
    x = np.random.default_rng(0).standard_normal(SR).astype(np.float32) * 0.1
    t = RandomEQ(min_bands=1, max_bands=1, min_gain_db=-6, max_gain_db=6, p=1.0)
    for seed in range(10):
        y = t(x, SR, np.random.default_rng(seed))
        for lo, hi in [(50, 150), (400, 600), (1800, 2200), (5000, 7000)]:
            assert abs(band_db(y, lo, hi) - band_db(x, lo, hi)) < 6.5
    assert any(abs(band_db(t(x, SR, np.random.default_rng(s)), 50, 7000) - band_db(x, 50, 7000)) > 0.5
               for s in range(5))


@pytest.mark.parametrize("fraction", [0.01, 0.05, 0.1])
def test_clipping_caps_the_peak(fraction):
    x = speechish(1.0)
    y = Clipping(min_fraction=fraction, max_fraction=fraction, p=1.0)(x, SR, np.random.default_rng(0))
    peak = np.abs(y).max()
    assert peak < np.abs(x).max()
    clipped = np.abs(x) > peak
    assert clipped.mean() == pytest.approx(fraction, abs=0.002)
    assert np.array_equal(y[~clipped], x[~clipped])          # the rest untouched
    assert np.all(np.abs(y[clipped]) == pytest.approx(peak))  # flat tops


def test_clipping_leaves_sparse_clips_alone():
    x = np.zeros(1000, np.float32)
    x[10] = 0.5
    assert np.array_equal(Clipping(p=1.0)(x, SR, np.random.default_rng(0)), x)


NEW_BAD = [
    lambda: SpeedPerturb(min_factor=0.2),
    lambda: SpeedPerturb(min_factor=1.1, max_factor=0.9),
    lambda: ColouredNoise(min_beta=3),
    lambda: ColouredNoise(min_snr_db=20, max_snr_db=10),
    lambda: BabbleNoise(min_speakers=0),
    lambda: BabbleNoise(min_speakers=4, max_speakers=3),
    lambda: BabbleNoise(max_speakers=2.5),
    lambda: BabbleNoise(max_speakers=True),
    lambda: Reverb(min_rt60=0.9, max_rt60=0.8),
    lambda: Reverb(max_order=-1),
    lambda: Reverb(max_order=1.5),
    lambda: Reverb(min_room_m=1.0),
    lambda: BandLimit(min_low_hz=10),
    lambda: BandLimit(p_8k=2),
    lambda: RandomEQ(max_bands=9),
    lambda: RandomEQ(min_gain_db=-30),
    lambda: Clipping(max_fraction=0.6),
    lambda: Clipping(min_fraction=0.2, max_fraction=0.1),
    lambda: transform_from_dict({"type": "reverb", "rt60": 0.5}),
]


@pytest.mark.parametrize("make", NEW_BAD)
def test_new_bad_config_raises_one_line_config_error(make):
    with pytest.raises(ConfigError) as e:
        make()
    assert str(e.value) and "\n" not in str(e.value)


# --- the realistic recipe ----------------------------------------------------------------------

def test_realistic_recipe_contents():
    cfg = AugmentConfig.realistic()
    assert [t.name for t in cfg.transforms] == [
        "speed", "babble", "reverb", "coloured_noise", "eq", "bandlimit", "gain", "clipping"]
    p = {t.name: t.p for t in cfg.transforms}
    assert p == {"speed": 0.3, "babble": 0.2, "reverb": 0.3, "coloured_noise": 0.25, "eq": 0.3,
                 "bandlimit": 0.15, "gain": 0.5, "clipping": 0.1}
    assert 1 - (1 - p["babble"]) * (1 - p["coloured_noise"]) == pytest.approx(0.4)
    assert AugmentConfig.realistic() != AugmentConfig()


def test_realistic_json_round_trip_and_pool():
    cfg = AugmentConfig.realistic(babble_pool=POOL)
    back = AugmentConfig.from_json(cfg.to_json(indent=2))
    assert back == cfg == AugmentConfig.realistic()
    babble = [t for t in back.transforms if isinstance(t, BabbleNoise)]
    assert babble and babble[0].pool == ()  # the pool is supplied again after reading
    again = back.with_babble_pool(POOL)
    batch = np.stack([speechish(0.5, s) for s in range(6)])
    assert (Augmenter(again, seed=2).augment_batch(batch, SR).tobytes()
            == Augmenter(cfg, seed=2).augment_batch(batch, SR).tobytes())


def test_realistic_changes_a_batch_deterministically():
    batch = np.stack([speechish(0.5, s) for s in range(24)])
    cfg = AugmentConfig.realistic(babble_pool=POOL)
    random.seed(0)
    np.random.seed(0)
    py_before, np_before = random.getstate(), np.random.get_state()
    a = augment_batch(batch, SR, np.random.default_rng(7), cfg)
    b = augment_batch(batch, SR, 7, cfg)
    assert random.getstate() == py_before and np.array_equal(np.random.get_state()[1], np_before[1])
    assert a.shape == batch.shape and a.dtype == np.float32 and np.isfinite(a).all()
    assert a.tobytes() == b.tobytes()
    changed = [not np.array_equal(a[i], batch[i]) for i in range(len(batch))]
    assert sum(changed) >= 18  # P(no transform fires) = 0.7*0.8*0.7*0.75*0.7*0.85*0.5*0.9 ~ 4 %
    assert not np.array_equal(a, augment_batch(batch, SR, 8, cfg))


def test_realistic_without_pool_fails_loudly_when_babble_fires():
    batch = np.stack([speechish(0.25, s) for s in range(40)])
    with pytest.raises(ConfigError, match="pool"):
        augment_batch(batch, SR, 0, AugmentConfig.realistic())
