"""Frontends against their references, on synthesised audio (tones + noise).

Tolerances (float32 pipelines against librosa's float32 pipelines):
* spectrogram power: max abs diff <= 1e-5 x the clip's peak power; in dB <= 0.01 dB
* logmel: <= 1e-3 dB; mfcc: <= 1e-3 absolute (coefficients reach ~400)
* stats: zcr <= 1e-6, chroma <= 1e-5, mfcc means <= 1e-3, rms / mel relative <= 1e-5
* cmsis_mfcc f32: bit-exact against arm_mfcc_f32 called per frame; <= 1e-4 against a
  float64 numpy reimplementation (measured 1.1e-5)
* cmsis_mfcc's NumPy kernel (the core install, without cmsisdsp) against cmsisdsp's C kernel, on
  audio with a noise floor: <= 1e-4 absolute per coefficient and prosody channel (measured 2.3e-5
  over 20 RAVDESS and EMO-DB clips, 2.3e-5 on synthetic noise, speech-like, quiet and silent input);
  a constant or pure-tone signal whose bands fall below float32 rounding can differ by more
* cmsis_mfcc q15 vs f32 on the same int16 samples (-20 dBFS speech-like signal): mean abs
  diff <= 0.03, max <= 0.5 (measured 0.009 and 0.17; the max is on c0, which q15 biases
  by about -0.14 through its truncating shifts; c1.. within 0.05)
"""
from __future__ import annotations

import dataclasses
import json
import sys

import numpy as np
import pytest
import scipy.fft

from tinyser.errors import ConfigError
from tinyser.features import (
    FRONTENDS,
    CmsisMfccConfig,
    Frontend,
    Standardizer,
    StatsConfig,
    config_from_dict,
    get_config,
)
from tinyser.features.cmsis import cmsis_tables, frames, quantize_q15

librosa = pytest.importorskip("librosa")
dsp = pytest.importorskip("cmsisdsp")


def tones(n: int, sr: int, seed: int = 0, level: float = 0.3, silence: int = 0) -> np.ndarray:
    """Two tones plus white noise, with optional leading silence."""
    rng = np.random.default_rng(seed)
    t = np.arange(n) / sr
    f = 180.0 + 40 * seed
    y = level * (np.sin(2 * np.pi * f * t) + 0.4 * np.sin(2 * np.pi * 3.7 * f * t)) + 0.02 * rng.standard_normal(n)
    y[:silence] = 0
    return y.astype(np.float32)


def voiced(n: int, sr: int, seed: int, level_db: float) -> np.ndarray:
    """Harmonic-rich, amplitude-modulated signal plus noise at ``level_db`` dBFS RMS."""
    rng = np.random.default_rng(seed)
    t = np.arange(n) / sr
    f0 = 110.0 + 25 * seed
    y = sum(np.sin(2 * np.pi * f0 * k * t) / k for k in range(1, 20)) * (1 + 0.5 * np.sin(2 * np.pi * 3 * t))
    y = y + 0.3 * rng.standard_normal(n)
    return (y / np.sqrt(np.mean(y ** 2)) * 10 ** (level_db / 20)).astype(np.float32)


@pytest.fixture(scope="module")
def clip16k():
    return tones(int(1.3 * 16000), 16000, silence=3000)


# ---------------------------------------------------------------- spectral frontends vs librosa

STFT = dict(n_fft=1024, hop_length=256)
MEL = dict(sr=16000, n_mels=40, fmin=40.0, fmax=7600.0, **STFT)


def test_spectrogram_matches_librosa(clip16k):
    power = get_config("spectrogram", log="none").compute(clip16k)
    ref = (np.abs(librosa.stft(clip16k, **STFT)) ** 2).T
    assert power.shape == ref.shape == (1 + clip16k.size // 256, 513)
    assert np.abs(power - ref).max() <= 1e-5 * ref.max()
    db = get_config("spectrogram").compute(clip16k)
    assert np.abs(db - librosa.power_to_db(ref.T, top_db=80.0).T).max() <= 0.01


def test_logmel_matches_librosa(clip16k):
    ref = librosa.power_to_db(librosa.feature.melspectrogram(y=clip16k, **MEL), top_db=80.0).T
    assert np.abs(get_config("logmel").compute(clip16k) - ref).max() <= 1e-3


def test_mfcc_matches_librosa(clip16k):
    ref = librosa.feature.mfcc(y=clip16k, n_mfcc=40, **MEL).T
    out = get_config("mfcc").compute(clip16k)
    assert out.shape == ref.shape and out.dtype == np.float32
    assert np.abs(out - ref).max() <= 1e-3


@pytest.mark.parametrize("name, params", [
    ("spectrogram", {}), ("logmel", {}), ("mfcc", {}), ("stats", {"sample_rate": 16000}),
    ("cmsis_mfcc", {}), ("cmsis_mfcc", {"dtype": "q15"}),
])
def test_batched_equals_per_clip(name, params):
    cfg = get_config(name, **params)
    batch = np.stack([tones(9000, 16000, seed=s) for s in range(4)]).reshape(2, 2, 9000)
    out = cfg.compute(batch)
    assert out.shape[:2] == (2, 2) and out.shape[-1] == cfg.n_features and out.dtype == np.float32
    for i in range(2):
        for j in range(2):
            np.testing.assert_allclose(out[i, j], cfg.compute(batch[i, j]), rtol=1e-5, atol=1e-4)


# ---------------------------------------------------------------- config contract

@pytest.mark.parametrize("name", sorted(FRONTENDS))
def test_config_json_round_trip(name):
    cfg = get_config(name)
    again = config_from_dict(json.loads(json.dumps(cfg.to_dict())))
    assert again == cfg and type(again) is type(cfg)
    fe = Frontend(cfg, Standardizer((0.0,) * cfg.n_features, (1.0,) * cfg.n_features))
    assert Frontend.from_json(fe.to_json()) == fe


def test_new_frontends_registered():
    assert FRONTENDS["cmsis_mfcc"] is CmsisMfccConfig and FRONTENDS["stats"] is StatsConfig
    assert get_config("stats").n_features == 162
    assert get_config("cmsis_mfcc", n_mfcc=13).n_features == 13


@pytest.mark.parametrize("name, params", [
    ("no_such_frontend", {}),
    ("mfcc", {"no_such_param": 1}),
    ("cmsis_mfcc", {"frame_length": 1000}),
    ("cmsis_mfcc", {"frame_length": 8192}),
    ("cmsis_mfcc", {"dtype": "q7"}),
    ("cmsis_mfcc", {"window": "no_such_window"}),
    ("cmsis_mfcc", {"n_mfcc": 41}),
    ("cmsis_mfcc", {"fmax": 9000.0}),
    ("cmsis_mfcc", {"frame_length": 64, "n_mels": 40}),  # bands narrower than a bin
    ("cmsis_mfcc", {"hop_length": 0}),
    ("stats", {"tuning": 0.7}),
    ("stats", {"n_mfcc": 200}),
])
def test_bad_config_raises(name, params):
    with pytest.raises(ConfigError) as err:
        get_config(name, **params)
    assert "\n" not in str(err.value)


def test_standardizer_fit_apply():
    rng = np.random.default_rng(0)
    x = rng.normal([1.0, -5.0, 3.0], [2.0, 0.5, 0.0], size=(4, 50, 3)).astype(np.float32)
    s = Standardizer.fit(x)
    z = s.apply(x)
    assert z.dtype == np.float32 and z.shape == x.shape
    np.testing.assert_allclose(z[..., :2].reshape(-1, 2).mean(0), 0, atol=1e-5)
    np.testing.assert_allclose(z[..., :2].reshape(-1, 2).std(0), 1, atol=1e-4)
    assert s.std[2] == pytest.approx(1e-5)  # constant feature: std floored, no division by zero
    assert Standardizer.from_dict(json.loads(json.dumps(s.to_dict()))) == s
    with pytest.raises(ConfigError):
        s.apply(np.zeros((5, 4), np.float32))


def test_frontend_check_same():
    fe = Frontend(get_config("cmsis_mfcc"))
    fitted = fe.fitted(fe.features(np.stack([tones(4000, 16000, seed=s) for s in range(2)])))
    fe.check_same(fitted)  # standardisation does not change the features
    fe.check_same(fitted.to_dict())
    with pytest.raises(ConfigError, match="dtype"):
        fe.check_same(Frontend(get_config("cmsis_mfcc", dtype="q15")))
    with pytest.raises(ConfigError):
        fe.check_same(Frontend(get_config("mfcc")))


def test_tiled_padding_repeats_each_windows_sound():
    """A short clip zero-padded in its window becomes its sound repeated; a window that is
    all sound is unchanged; the setting travels with the frontend's metadata."""
    from tinyser.features.adaptive import gate_for_level
    from tinyser.features.tile import TileConfig, sound_spans

    cfg = get_config("cmsis_mfcc")
    plain = Frontend(cfg).fitted(cfg.compute(np.stack([tones(32000, 16000, seed=s) for s in range(2)])))
    tiled = dataclasses.replace(plain, tile=TileConfig(gate_for_level(cfg, -50.0)))
    short = np.zeros((2, 32000), np.float32)
    short[0, :8000] = tones(8000, 16000, seed=3)               # 0.5 s of sound, then silence
    short[1] = tones(32000, 16000, seed=4)                     # sound throughout
    raw = cfg.compute(short)
    first, length = sound_spans(raw, tiled.tile.gate)
    assert first[0] == 0 and 25 <= length[0] <= 40 and length[1] == raw.shape[1]
    x, ref = tiled.standardize(raw), plain.standardize(raw)
    np.testing.assert_array_equal(x[1], ref[1])
    rows = np.arange(raw.shape[1]) % length[0]
    np.testing.assert_array_equal(x[0], ref[0][rows])         # the half second, over and over
    np.testing.assert_array_equal(tiled.standardize(raw[0]), x[0])  # one window alone: the same
    assert x[0, length[0]:].min() > ref[0, length[0]:].min()  # no silence rows left
    again = Frontend.from_dict(tiled.to_dict())
    assert again == tiled and Frontend.from_dict(plain.to_dict()).tile is None and "tile" not in plain.to_dict()
    tiled.check_same(plain)                                    # the same features, only arranged differently
    with pytest.raises(ConfigError, match="gate"):
        TileConfig.from_dict({"gate": 1.0, "x": 2})


# ---------------------------------------------------------------- stats vs the librosa recipe

def stats_reference(y: np.ndarray, sr: int) -> np.ndarray:
    """The cAInvas / Kaggle recipe, with the chroma tuning fixed at 0."""
    return np.hstack([
        np.mean(librosa.feature.zero_crossing_rate(y).T, axis=0),
        np.mean(librosa.feature.chroma_stft(S=np.abs(librosa.stft(y)), sr=sr, tuning=0.0).T, axis=0),
        np.mean(librosa.feature.mfcc(y=y, sr=sr).T, axis=0),
        np.mean(librosa.feature.rms(y=y).T, axis=0),
        np.mean(librosa.feature.melspectrogram(y=y, sr=sr).T, axis=0),
    ])


@pytest.mark.filterwarnings("ignore:n_fft=.*is too large")
@pytest.mark.parametrize("n", [1500, 22050 + 777])
def test_stats_matches_librosa_recipe(n):
    sr = 22050
    ys = np.stack([tones(n, sr, seed=s, silence=n // 4) for s in range(2)])
    out = StatsConfig().compute(ys)
    assert out.shape == (2, 162) and out.dtype == np.float32
    ref = np.stack([stats_reference(y, sr) for y in ys])
    d = np.abs(out - ref)
    rel = d / np.maximum(np.abs(ref), 1e-20)
    assert d[:, 0].max() <= 1e-6          # zero-crossing rate
    assert d[:, 1:13].max() <= 1e-5       # chroma
    assert d[:, 13:33].max() <= 1e-3      # mfcc (values up to a few hundred)
    assert rel[:, 33].max() <= 1e-5       # rms
    assert rel[:, 34:].max() <= 1e-5      # mel power


# ---------------------------------------------------------------- cmsis_mfcc

def reference_engine(dtype: str, n: int = 1024, n_mels: int = 40, n_mfcc: int = 40):
    """arm_mfcc set up independently, with the tables built by cmsisdsp's own helper script."""
    import cmsisdsp.datatype as dt
    import cmsisdsp.mfcc as mf
    import scipy.signal

    d = dt.F32 if dtype == "f32" else dt.Q15
    lengths, pos, coefs = mf.melFilterMatrix(d, 40.0, 7600.0, n_mels, 16000, n)
    dct = mf.dctMatrix(d, n_mfcc, n_mels)
    win = scipy.signal.get_window("hann", n, fftbins=True)
    if dtype == "f32":
        inst = dsp.arm_mfcc_instance_f32()
        assert dsp.arm_mfcc_init_f32(inst, n, n_mels, n_mfcc, dct, pos, lengths, coefs, win.astype(np.float32)) == 0
        return lambda x: dsp.arm_mfcc_f32(inst, x, np.zeros(2 * n, np.float32))
    inst = dsp.arm_mfcc_instance_q15()
    assert dsp.arm_mfcc_init_q15(inst, n, n_mels, n_mfcc, dct, pos, lengths, coefs, dt.convert(win, d)) == 0
    return lambda x: dsp.arm_mfcc_q15(inst, x, np.zeros(2 * n, np.int32))[1]


def test_cmsis_tables_match_cmsisdsp_scripts():
    import cmsisdsp.datatype as dt
    import cmsisdsp.mfcc as mf

    t = cmsis_tables(CmsisMfccConfig())
    lengths, pos, coefs = mf.melFilterMatrix(dt.F64, 40.0, 7600.0, 40, 16000, 1024)
    assert t["filter_len"].tolist() == list(lengths) and t["filter_pos"].tolist() == list(pos)
    np.testing.assert_array_equal(t["filter_coefs"], coefs)
    np.testing.assert_array_equal(t["filter_coefs_q15"], mf.melFilterMatrix(dt.Q15, 40.0, 7600.0, 40, 16000, 1024)[2])
    np.testing.assert_array_equal(t["dct_f32"].ravel(), mf.dctMatrix(dt.F32, 40, 40))
    np.testing.assert_array_equal(t["dct_q15"].ravel(), mf.dctMatrix(dt.Q15, 40, 40))
    assert t["window_q15"].dtype == np.int16 and t["window_q15"].max() == 32767
    assert not t["window"].flags.writeable


def test_cmsis_f32_equals_arm_mfcc_f32_per_frame(clip16k):
    cfg = CmsisMfccConfig()
    out = cfg.compute(clip16k)
    run = reference_engine("f32")
    ref = np.stack([run(np.ascontiguousarray(f)) for f in frames(clip16k, cfg)])
    np.testing.assert_array_equal(out, ref)
    assert np.isfinite(out).all()
    # leading silence: an all-zero frame gives ln(1e-6) in every band (no NaN from the 1/max)
    np.testing.assert_allclose(out[0], [np.sqrt(2 * 40) * np.log(1e-6)] + [0.0] * 39, atol=1e-3)


def test_cmsis_q15_equals_arm_mfcc_q15_per_frame(clip16k):
    cfg = CmsisMfccConfig(dtype="q15")
    out = cfg.compute(clip16k)
    run = reference_engine("q15")
    pcm = quantize_q15(clip16k)
    ref = np.stack([run(np.ascontiguousarray(f)) for f in frames(pcm, cfg)]) / 128.0
    np.testing.assert_array_equal(out, ref)
    np.testing.assert_array_equal(cfg.compute(pcm), out)  # int16 PCM is taken as is


def test_cmsis_f32_matches_float64_math(clip16k):
    cfg = CmsisMfccConfig()
    t = cmsis_tables(cfg)
    x = frames(clip16k, cfg).astype(np.float64)
    mag = np.abs(scipy.fft.rfft(x * t["window"], axis=-1))     # magnitude, not power
    ref = np.log(mag @ t["mel_matrix"].T + 1e-6) @ t["dct"].T  # natural log, offset 1e-6
    assert np.abs(cfg.compute(clip16k) - ref).max() <= 1e-4


@pytest.fixture
def numpy_kernel(monkeypatch):
    """cmsis_mfcc as the core install computes it: cmsisdsp hidden, caches cleared around."""
    import tinyser.features.cmsis as cm
    import tinyser.features.prosody as pr

    def clear():
        cm._engine.cache_clear()
        pr._rfft.cache_clear()

    clear()
    monkeypatch.setitem(sys.modules, "cmsisdsp", None)  # import cmsisdsp now fails
    yield cm
    clear()


@pytest.mark.parametrize("cfg", [CmsisMfccConfig(), CmsisMfccConfig(prosody=True, prosody_deltas=True),
                                 CmsisMfccConfig(frame_length=512, hop_length=160, n_mels=32, n_mfcc=13)],
                         ids=["default", "prosody", "small"])
def test_cmsis_numpy_kernel_matches_cmsisdsp(cfg, numpy_kernel, clip16k):
    rng = np.random.default_rng(3)
    clips = {"tones": clip16k, "voiced": voiced(3 * 16000, 16000, seed=1, level_db=-26.0),
             "quiet": (1e-4 * rng.standard_normal(16000)).astype(np.float32),
             "silent": np.zeros(5000, np.float32), "short": (0.3 * rng.standard_normal(700)).astype(np.float32)}
    numpy_out = {k: cfg.compute(x) for k, x in clips.items()}
    assert numpy_kernel.kernel() == "numpy"
    numpy_kernel._engine.cache_clear()
    with pytest.MonkeyPatch.context() as mp:
        mp.setitem(sys.modules, "cmsisdsp", dsp)
        import tinyser.features.prosody as pr

        pr._rfft.cache_clear()
        assert numpy_kernel.kernel() == "cmsisdsp"
        for k, x in clips.items():
            c_out = cfg.compute(x)
            assert c_out.shape == numpy_out[k].shape and c_out.dtype == numpy_out[k].dtype
            assert np.abs(c_out - numpy_out[k]).max() <= 1e-4, k
        numpy_kernel._engine.cache_clear()
        pr._rfft.cache_clear()


@pytest.mark.corpus
def test_cmsis_numpy_kernel_matches_cmsisdsp_on_speech(numpy_kernel, emodb_dir, ravdess_dir):
    from tinyser.audio import load

    files = sorted(emodb_dir.rglob("*.wav"))[::100][:4] + sorted(ravdess_dir.rglob("*.wav"))[::300][:4]
    clips = [load(f, 16000) for f in files]
    cfg = CmsisMfccConfig()
    numpy_out = [cfg.compute(x) for x in clips]
    numpy_kernel._engine.cache_clear()
    with pytest.MonkeyPatch.context() as mp:
        mp.setitem(sys.modules, "cmsisdsp", dsp)
        for x, ref in zip(clips, numpy_out):
            assert np.abs(cfg.compute(x) - ref).max() <= 1e-4
        numpy_kernel._engine.cache_clear()


@pytest.mark.parametrize("name", ["hann", "hamming", "blackman"])
def test_windows_without_scipy_are_scipys(name):
    import scipy.signal

    from tinyser.features.windows import get_window

    for n in (1, 2, 3, 31, 400, 512, 1000, 1024, 4096):
        np.testing.assert_array_equal(get_window(name, n), scipy.signal.get_window(name, n, fftbins=True))


def test_cmsis_q15_without_cmsisdsp_names_the_extra(numpy_kernel):
    from tinyser.extras import MissingExtra

    with pytest.raises(MissingExtra, match=r"cmsis_mfcc with dtype 'q15' needs cmsisdsp.*tinyser\[dsp\]"):
        CmsisMfccConfig(dtype="q15").compute(np.zeros(2000, np.float32))


def test_cmsis_q15_close_to_f32():
    n = 2 * 16000
    audio = np.stack([voiced(n, 16000, seed=s, level_db=-20.0) for s in range(3)])
    f32 = CmsisMfccConfig().compute(quantize_q15(audio) / 32768.0)  # same input samples
    q15 = CmsisMfccConfig(dtype="q15").compute(audio)
    d = np.abs(q15 - f32)
    assert d.mean() <= 0.03 and d.max() <= 0.5
    assert d[..., 1:].max() <= 0.2  # the largest errors are on c0 (the sum of all 40 log energies)
    assert -0.3 <= (q15 - f32)[..., 0].mean() <= 0  # q15's truncations bias c0 low


@pytest.mark.parametrize("n", [1024, 1025, 1279, 1280, 5000, 16000])
def test_cmsis_frame_count(n):
    cfg = CmsisMfccConfig()
    y = tones(n, 16000)
    expected = 1 + (n - 1024) // 256
    assert cfg.n_frames(n) == expected
    fr = frames(y, cfg)
    assert fr.shape == (expected, 1024)
    np.testing.assert_array_equal(fr[-1], y[(expected - 1) * 256:(expected - 1) * 256 + 1024])
    assert cfg.compute(y).shape == (expected, 40)


def test_cmsis_short_input_is_zero_padded():
    y = tones(500, 16000)
    for dtype in ("f32", "q15"):
        cfg = CmsisMfccConfig(dtype=dtype)
        out = cfg.compute(y)
        assert out.shape == (1, 40)
        np.testing.assert_array_equal(out, cfg.compute(np.pad(y, (0, 524))))


def test_quantize_q15_rule():
    x = np.array([0.0, 0.5, -1.0, 1.0, 2.0, -2.0, 1.5 / 32768, 2.5 / 32768, -1e-6])
    assert quantize_q15(x).tolist() == [0, 16384, -32768, 32767, 32767, -32768, 2, 2, 0]
    pcm = np.arange(-32768, 32768, 7, dtype=np.int16)
    np.testing.assert_array_equal(quantize_q15(pcm / 32768.0), pcm)  # round trip of int16 PCM


# ---------------------------------------------------------------- cmsis_mfcc prosody channels

def harmonic(f0, seconds: float = 1.5, sr: int = 16000, n_harmonics: int = 8, level: float = 0.3) -> np.ndarray:
    """A harmonic signal with instantaneous F0 ``f0`` (Hz, scalar or per sample), amplitudes 1/k."""
    n = int(seconds * sr)
    f = np.broadcast_to(np.asarray(f0, np.float64), (n,))
    phase = 2 * np.pi * np.cumsum(f) / sr
    y = sum(np.sin(k * phase) / k for k in range(1, n_harmonics + 1))
    return (level * y / np.abs(y).max()).astype(np.float32)


def frame_f0(f0, cfg, n_frames: int, n: int) -> np.ndarray:
    f = np.broadcast_to(np.asarray(f0, np.float64), (n,))
    return f[np.arange(n_frames) * cfg.hop_length + cfg.frame_length // 2]


@pytest.mark.parametrize("f0", [62.0, 90.0, 133.0, 210.0, 320.0, 480.0])
def test_prosody_f0_of_tones_within_1_percent(f0):
    from tinyser.features.prosody import REF_HZ, analyse

    cfg = get_config("cmsis_mfcc", prosody=True)
    y = harmonic(f0)
    p = analyse(y, cfg)
    assert p["voiced"].all()
    assert np.max(np.abs(p["f0"] / f0 - 1)) <= 0.01
    out = cfg.compute(y)
    assert out.shape == (cfg.n_frames(y.size), 43) and cfg.n_features == 43
    np.testing.assert_array_equal(out[:, :40], CmsisMfccConfig().compute(y))  # MFCCs first, unchanged
    np.testing.assert_allclose(out[:, 40], 12 * np.log2(f0 / REF_HZ), atol=0.18)  # 1 % = 0.17 semitones
    assert np.all(out[:, 41] > 0.9) and np.all(out[:, 42] > -20)


@pytest.mark.parametrize("start, end", [(80.0, 400.0), (450.0, 70.0), (150.0, 190.0)])
def test_prosody_f0_of_glides_within_1_percent(start, end):
    from tinyser.features.prosody import analyse

    cfg = get_config("cmsis_mfcc", prosody=True)
    n = int(1.5 * 16000)
    f0 = np.geomspace(start, end, n)
    p = analyse(harmonic(f0), cfg)
    truth = frame_f0(f0, cfg, len(p["f0"]), n)
    assert p["voiced"].mean() >= 0.95
    assert np.max(np.abs(p["f0"][p["voiced"]] / truth[p["voiced"]] - 1)) <= 0.01


def test_prosody_noise_and_silence_are_unvoiced():
    from tinyser.features.prosody import analyse

    cfg = get_config("cmsis_mfcc", prosody=True)
    rng = np.random.default_rng(0)
    n = 2 * 16000
    spec = np.fft.rfft(rng.standard_normal(n))
    spec[1:] /= np.sqrt(np.fft.rfftfreq(n, 1 / 16000)[1:])
    spec[0] = 0
    pink = np.fft.irfft(spec, n)
    signals = {"white": 0.1 * rng.standard_normal(n), "pink": 0.1 * pink / pink.std(), "silence": np.zeros(n),
               "dc": np.full(n, 0.5), "quiet tone": 1e-5 * harmonic(200.0, 2.0)}
    for name, y in signals.items():
        p = analyse(y.astype(np.float32), cfg)
        assert p["voiced"].mean() <= 0.03, name
        out = cfg.compute(y.astype(np.float32))
        assert np.all(np.isfinite(out)), name
        assert np.all(out[~p["voiced"], 40] == 0), name  # unvoiced frames: 0 semitones
    silent = cfg.compute(np.zeros(n, np.float32))
    assert np.all(silent[:, 41] == 0) and np.all(silent[:, 42] == pytest.approx(-100.0, abs=0.01))
    loud = analyse(np.sin(2 * np.pi * 1000 * np.arange(n) / 16000).astype(np.float32), cfg)["loudness"]
    assert loud == pytest.approx(-3.01, abs=0.05)  # a full-scale sine in the band: -3 dB


def test_prosody_autocorrelation_from_a_quarter_length_transform():
    """The even lags from the DCT-I through a real FFT of N/4 points, and the odd lags summed
    directly, equal the band power's cosine sums in float64 (to float32 rounding)."""
    from tinyser.features import prosody as pr

    t = pr.prosody_tables(get_config("cmsis_mfcc", prosody=True))
    p = np.zeros((4, t["q"] + 1), np.float32)
    p[:, t["k_lo"]:t["k_hi"] + 1] = np.random.default_rng(0).random((4, t["k_hi"] - t["k_lo"] + 1)) ** 4
    k = np.arange(t["q"] + 1)

    def exact(lag: int) -> np.ndarray:
        return p.astype(np.float64) @ np.cos(2 * np.pi * k * lag / 1024)

    scale = exact(0)[:, None]
    even = pr._even_lags(p, t, t["m_hi"] + 1)
    want = np.stack([exact(2 * m) for m in range(t["m_hi"] + 2)], 1)
    assert np.abs(even - want).max() < 1e-5 * scale.max()
    for tau in (t["lag0"] + 2, 102, 2 * t["m_hi"]):
        below, above = pr._odd_lags(p, t, np.full(4, tau))
        np.testing.assert_allclose(below, exact(tau - 1), atol=1e-5 * scale.max())
        np.testing.assert_allclose(above, exact(tau + 1), atol=1e-5 * scale.max())


def test_prosody_config_and_arithmetic():
    """The option round-trips through the frontend dict (absent when off, so older
    models keep theirs), refuses q15, and the channels are the documented float32
    steps (steps 1-8 of tinyser.features.prosody, recomputed here from cmsisdsp)."""
    from tinyser.features import prosody as pr

    cfg = get_config("cmsis_mfcc", prosody=True)
    assert config_from_dict(json.loads(json.dumps(cfg.to_dict()))) == cfg
    assert "prosody" not in get_config("cmsis_mfcc").to_dict()
    with pytest.raises(ConfigError, match="prosody"):
        get_config("cmsis_mfcc", prosody=True, dtype="q15")
    with pytest.raises(ConfigError, match="prosody"):
        get_config("cmsis_mfcc", prosody="yes")
    with pytest.raises(ConfigError, match="prosody_deltas"):
        get_config("cmsis_mfcc", prosody_deltas=True)  # deltas of nothing
    d = get_config("cmsis_mfcc", prosody=True, prosody_deltas=True)
    assert d.n_features == 46 and config_from_dict(d.to_dict()) == d and "prosody_deltas" not in cfg.to_dict()
    with pytest.raises(ConfigError):
        get_config("cmsis_mfcc", prosody=True, frame_length=256)  # too short for 60 Hz
    y = harmonic(150.0, 0.5) + 0.01 * np.random.default_rng(1).standard_normal(8000).astype(np.float32)
    fr = np.ascontiguousarray(frames(y, cfg))
    t = cmsis_tables(cfg)
    inst = dsp.arm_rfft_fast_instance_f32()
    dsp.arm_rfft_fast_init_f32(inst, 1024)
    mags = []
    for x in fr:  # step 1, as arm_mfcc_f32 does it
        m = np.max(np.abs(x))
        x = x * (np.float32(1) / m) * t["window_f32"]
        s = dsp.arm_rfft_fast_f32(inst, x, 0)
        re = np.concatenate([[s[0]], s[2::2], [s[1]]]).astype(np.float32)
        im = np.concatenate([[0], s[3::2], [0]]).astype(np.float32)
        mags.append(np.sqrt(re * re + im * im) * m)
    np.testing.assert_array_equal(pr.magnitudes(fr, t["window_f32"]), np.array(mags))
    p = pr.from_magnitudes(np.array(mags), pr.prosody_tables(cfg))
    np.testing.assert_array_equal(cfg.compute(y)[:, 40:], np.stack([p["semitones"], p["strength"], p["loudness"]], 1))


def test_prosody_deltas_are_within_the_window():
    cfg = get_config("cmsis_mfcc", prosody=True, prosody_deltas=True)
    y = harmonic(np.geomspace(100.0, 300.0, 24000), 1.5)
    x = cfg.compute(y)
    np.testing.assert_array_equal(x[:, :43], get_config("cmsis_mfcc", prosody=True).compute(y))
    assert np.all(x[0, 43:] == 0)
    np.testing.assert_array_equal(x[1:, 43:], x[1:, 40:43] - x[:-1, 40:43])
    assert np.median(x[1:, 43]) > 0  # a rising glide: the semitone delta is positive


def test_feature_caches_are_keyed_by_the_prosody_analysis():
    """A change to the prosody analysis (its version) must not reuse cached channels; configs
    without prosody keep their caches."""
    from tinyser.features import prosody as pr
    from tinyser.features.pipeline import code_key

    assert code_key(get_config("cmsis_mfcc")) == {} and code_key(get_config("mfcc")) == {}
    assert code_key(get_config("cmsis_mfcc", prosody=True)) == {"prosody_analysis": pr.ANALYSIS_VERSION}
