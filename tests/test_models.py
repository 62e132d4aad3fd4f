"""Model zoo, MAC counting, TFLite conversion, and LiteRT / TFLite Micro agreement.

Small inputs ((32, 40) frames, 3 classes) and untrained weights keep this fast;
only the ``tiny`` budget test builds the real 3 s (188, 40) input.
"""
from __future__ import annotations

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import pytest  # noqa: E402

keras = pytest.importorskip("keras")

from tinyser import tflite  # noqa: E402
from tinyser.errors import ConfigError, TinyserError  # noqa: E402
from tinyser.models import MODELS, build_model, count_macs, count_params, macs_per_second  # noqa: E402
from tinyser.models.lstm import FusedLSTM  # noqa: E402

FRAMES = (32, 40)
SHAPES = {"light_sernet": FRAMES, "lstm": FRAMES, "tiny": FRAMES, "cnn1d": (162,)}
N_CLASSES = 3
KB = 1024
#: 3 s at 16 kHz, hop 256, centred frames
FULL = (188, 40)
TFLM_INT8_OPS = {"CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED", "MEAN", "RESHAPE", "SOFTMAX",
                 "AVERAGE_POOL_2D", "MAX_POOL_2D", "REDUCE_MAX", "CONCATENATION", "STRIDED_SLICE",
                 "UNIDIRECTIONAL_SEQUENCE_LSTM"}


def _inputs(shape, n, seed=0):
    return np.random.default_rng(seed).standard_normal((n,) + tuple(shape)).astype(np.float32)


def _model(name, seed=0, **params):
    keras.utils.set_random_seed(seed)
    return build_model(name, SHAPES[name], N_CLASSES, **params)


def _trained_like(model, seed=0):
    """Give batch norm non-trivial statistics, as training would: an untrained model's folded
    biases are all zero, which the converter deduplicates, so its flatbuffer is ~10 KB smaller."""
    rng = np.random.default_rng(seed)
    for layer in model.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            n = layer.gamma.shape[0]
            layer.set_weights([rng.uniform(0.5, 1.5, n), rng.normal(0, 0.1, n), rng.normal(0, 0.1, n),
                               rng.uniform(0.5, 1.5, n)])
    return model


@pytest.fixture(scope="module")
def int8_models():
    """name -> (keras model, representative inputs, full-int8 flatbuffer), converted once."""
    out = {}
    for name in MODELS:
        model = _trained_like(_model(name))
        rep = _inputs(SHAPES[name], 32, seed=1)
        out[name] = (model, rep, tflite.convert(model, "int8", rep))
    return out


# ----------------------------------------------------------------------------- zoo

@pytest.mark.filterwarnings("ignore:__array__ implementation:DeprecationWarning")  # inside Keras' save
@pytest.mark.parametrize("name", sorted(MODELS))
def test_builds_predicts_and_keras_roundtrip(name, tmp_path):
    model = _model(name)
    x = _inputs(SHAPES[name], 2)
    y = model.predict(x, verbose=0)
    assert model.output_shape == (None, N_CLASSES)
    assert y.shape == (2, N_CLASSES) and np.allclose(y.sum(axis=1), 1.0, atol=1e-5)
    path = tmp_path / f"{name}.keras"
    model.save(path)
    loaded = keras.models.load_model(path)
    np.testing.assert_allclose(loaded.predict(x, verbose=0), y, atol=1e-6)
    assert count_params(loaded) == count_params(model)


def test_build_model_rejects_bad_configs():
    for call in (lambda: build_model("resnet", FRAMES, 3),
                 lambda: build_model("tiny", FRAMES, 3, widht=2.0),
                 lambda: build_model("tiny", (162,), 3),
                 lambda: build_model("cnn1d", FRAMES, 3),
                 lambda: build_model("tiny", FRAMES, 3, width=0),
                 lambda: build_model("lstm", FRAMES, 1),
                 lambda: build_model("lstm", FRAMES, 3, pooling="max")):
        with pytest.raises(ConfigError) as err:
            call()
        assert "\n" not in str(err.value)
    assert "widht" in str(pytest.raises(ConfigError, build_model, "tiny", FRAMES, 3, widht=2.0).value)


def test_light_sernet_parameter_count():
    # The issue says "about 463k parameters"; the count does not depend on the number of frames.
    model = build_model("light_sernet", FRAMES, 7)
    assert 455_000 <= count_params(model) <= 470_000
    assert count_params(model) == 463_335


def test_lstm_trains_and_runs_any_batch_size():
    model = _model("lstm", units=(16, 8), hidden=8)
    x = _inputs(FRAMES, 4)
    model.compile("adam", "sparse_categorical_crossentropy")
    model.fit(x, np.array([0, 1, 2, 0]), epochs=1, batch_size=4, verbose=0)
    # Several batch sizes in a row: each traced shape gets its own fusable function.
    for n in (4, 1, 3):
        assert model.predict(x[:n], verbose=0).shape == (n, N_CLASSES)


# ----------------------------------------------------------------------------- MACs

def test_count_macs_matches_hand_computation():
    L = keras.layers
    inp = keras.Input((10, 8))
    x = L.Reshape((10, 8, 1))(inp)
    x = L.Conv2D(4, (3, 3), padding="same")(x)                 # 10*8 * 9*1*4     = 2880
    x = L.BatchNormalization()(x)                              # folded: 0
    x = L.DepthwiseConv2D((3, 3), strides=2, padding="same")(x)  # 5*4 * 9*4      = 720
    x = L.Conv2D(6, 1)(x)                                      # 5*4 * 1*4*6      = 480
    x = L.AveragePooling2D(2)(x)                               # 0
    x = L.GlobalAveragePooling2D()(x)
    out = L.Dense(5)(x)                                        # 6*5              = 30
    model = keras.Model(inp, out)
    assert count_macs(model) == 2880 + 720 + 480 + 30
    assert macs_per_second(model, 2.0) == (2880 + 720 + 480 + 30) / 2

    seq = keras.Input((7, 3))
    h = L.Conv1D(5, 3, padding="same")(seq)                    # 7 * 3*3*5        = 315
    h = L.LSTM(4, return_sequences=True)(h)                    # 7 * 4*4*(5+4)    = 1008
    h = FusedLSTM(2)(h)                                        # 7 * 4*2*(4+2)    = 336
    h = L.Dense(3)(h)                                          # 2*3              = 6
    assert count_macs(keras.Model(seq, h)) == 315 + 1008 + 336 + 6


def test_count_macs_refuses_unknown_weighted_layers():
    inp = keras.Input((6, 6, 2))
    model = keras.Model(inp, keras.layers.Conv2DTranspose(2, 3)(inp))
    with pytest.raises(ConfigError):
        count_macs(model)


# ----------------------------------------------------------------------------- tiny budgets

def test_tiny_defaults_meet_microcontroller_budgets():
    keras.utils.set_random_seed(0)
    model = _trained_like(build_model("tiny", FULL, 7))
    macs = count_macs(model)
    assert macs <= 24_000_000 and macs_per_second(model, 3.0) <= 8_000_000
    blob = tflite.convert(model, "int8", _inputs(FULL, 16))
    assert len(blob) <= 128 * KB
    assert set(tflite.model_ops(blob)) <= TFLM_INT8_OPS
    arena = tflite.find_arena_size(blob)
    assert arena <= 64 * KB
    # Uses the arena budget (the binding one) rather than being needlessly tiny.
    assert macs >= 3_000_000 and arena >= 40 * KB

    # The measured arena is the smallest that works: it runs there, and not 16 bytes lower.
    assert tflite.arena_fits(blob, arena) and not tflite.arena_fits(blob, arena - 16)
    assert not tflite.arena_fits(blob, 1024)  # far too small; must not take pytest down either
    assert tflite.TFLMModel(blob, arena_size=2 * arena).arena_used() == arena
    micro = tflite.TFLMModel(blob, arena_size=arena)
    assert micro.predict(_inputs(FULL, 1)[0]).shape == (7,)


@pytest.mark.parametrize("params", [{"first": "channels"}, {"depth": 2, "kernels": [[7, 1], [1, 5]]},
                                    {"first": "channels", "pooling": "meanmax", "input_pool": None}])
def test_tiny_search_knobs_build_full_int8_models_tflm_runs(params):
    """The knobs `tinyser search` turns give models TFLite Micro runs in int8 like the reference kernels;
    coefficients-as-channels leaves no one-input-channel convolution (CMSIS-NN's slow case)."""
    from tinyser.search import op_work

    keras.utils.set_random_seed(0)
    shape = (122, 40)
    model = _trained_like(build_model("tiny", shape, 6, width=0.375, **params))
    blob = tflite.convert(model, "int8", _inputs(shape, 16))
    assert tflite.is_tflm_compatible(blob) == (True, "ok") and set(tflite.model_ops(blob)) <= TFLM_INT8_OPS
    one_channel = [w for _, kind, w in op_work(blob) if kind == "CONV_2D/1ch"]
    assert (not one_channel) == (params.get("first") == "channels")
    q = tflite.LiteRTModel(blob, reference=True).quantise(_inputs(shape, 1))
    micro, ref = tflite.TFLMModel(blob), tflite.LiteRTModel(blob, reference=True)
    assert np.abs(micro.predict_raw(q).astype(int) - ref.predict_raw(q).astype(int)).max() <= 1


# ----------------------------------------------------------------------------- int8 in TFLite Micro

@pytest.mark.parametrize("name", sorted(MODELS))
def test_int8_runs_in_tflm_like_litert_reference(name, int8_models):
    model, rep, blob = int8_models[name]
    assert tflite.is_tflm_compatible(blob) == (True, "ok")
    ops = tflite.model_ops(blob)
    assert set(ops) <= TFLM_INT8_OPS
    if name == "lstm":
        assert "UNIDIRECTIONAL_SEQUENCE_LSTM" in ops and "WHILE" not in ops

    micro = tflite.TFLMModel(blob)
    ref = tflite.LiteRTModel(blob, reference=True)
    assert micro.input_details["dtype"] == np.int8 and ref.output_details["dtype"] == np.int8
    x = rep[:4]
    for row in x:
        q = ref.quantise(row[None])
        assert np.array_equal(q, micro.quantise(row[None]))
        diff = np.abs(micro.predict_raw(q).astype(int) - ref.predict_raw(q).astype(int))
        assert diff.max() <= 1, f"{name}: TFLite Micro and LiteRT reference differ by {diff.max()} LSB"

    probs = micro.predict(x)
    assert probs.shape == (4, N_CLASSES) and probs.dtype == np.float32
    np.testing.assert_allclose(probs, model.predict(x, verbose=0), atol=0.05)
    np.testing.assert_allclose(micro.predict(x[0]), probs[0])  # one example, no batch axis
    np.testing.assert_allclose(tflite.LiteRTModel(blob).predict(x), probs, atol=2 / 256)


@pytest.mark.parametrize("pooling", ["last", "mean"])
def test_lstm_frame_stride_runs_in_tflm_like_keras(pooling):
    # Judged against Keras, not LiteRT: with pooled frames LiteRT's reference int8 LSTM kernel
    # drifts by several LSB while TFLite Micro stays within ~0.002 of the float model.
    model = _model("lstm", frame_stride=4, units=(32, 16), hidden=16, pooling=pooling)
    rep = _inputs(FRAMES, 32, seed=2)
    blob = tflite.convert(model, "int8", rep)
    ops = set(tflite.model_ops(blob))
    assert {"AVERAGE_POOL_2D", "UNIDIRECTIONAL_SEQUENCE_LSTM"} <= ops
    assert ("MEAN" in ops) == (pooling == "mean")
    np.testing.assert_allclose(tflite.TFLMModel(blob).predict(rep[:3]), model.predict(rep[:3], verbose=0),
                               atol=0.02)


def test_dynamic_range_and_float16_are_not_tflm_compatible(int8_models):
    model = int8_models["tiny"][0]
    dynamic = tflite.convert(model, "dynamic")
    assert tflite.is_tflm_compatible(dynamic) == (False, tflite.DYNAMIC_RANGE_REASON)
    assert tflite.DYNAMIC_RANGE_REASON == "dynamic-range quantisation is not supported by TFLite Micro"
    with pytest.raises(ConfigError, match="dynamic-range"):
        tflite.TFLMModel(dynamic)
    with pytest.raises(ConfigError, match="dynamic-range"):
        tflite.find_arena_size(dynamic)
    ok, reason = tflite.is_tflm_compatible(tflite.convert(model, "float16"))
    assert not ok and "float16" in reason


@pytest.mark.parametrize("name", ["tiny", "lstm"])
def test_float_models_match_keras_in_litert(name, int8_models, capfd):
    model = int8_models[name][0]
    x = _inputs(SHAPES[name], 3, seed=5)
    expected = model.predict(x, verbose=0)
    capfd.readouterr()
    f32 = tflite.convert(model, "float32")
    f16 = tflite.convert(model, "float16")
    assert capfd.readouterr().out == ""  # converter chatter stays off stdout
    np.testing.assert_allclose(tflite.LiteRTModel(f32).predict(x), expected, atol=1e-5)
    np.testing.assert_allclose(tflite.LiteRTModel(f16).predict(x), expected, atol=2e-3)
    if name == "lstm":
        assert "UNIDIRECTIONAL_SEQUENCE_LSTM" in tflite.model_ops(f32)


def test_convert_and_run_reject_bad_arguments(int8_models):
    model, rep, blob = int8_models["tiny"]
    with pytest.raises(ConfigError, match="representative"):
        tflite.convert(model, "int8", None)
    with pytest.raises(ConfigError, match="quant"):
        tflite.convert(model, "int4", rep)
    with pytest.raises(ConfigError, match="shape"):
        tflite.convert(model, "int8", rep[:, :10])
    with pytest.raises(ConfigError, match="TFLite"):
        tflite.model_ops(b"not a model at all")
    with pytest.raises(ConfigError, match="shape"):
        tflite.LiteRTModel(blob).predict(rep[:, :10])
    assert isinstance(ConfigError("x"), TinyserError)
