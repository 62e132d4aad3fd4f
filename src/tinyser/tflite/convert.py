"""Keras -> TFLite conversion: float32, float16, dynamic-range or FULL-int8
(int8 input and output, ``TFLITE_BUILTINS_INT8`` only) flatbuffers, always
with a batch of one (static shapes everywhere, as TFLite Micro needs).
Needs the ``train`` extra (TensorFlow and Keras).
"""
from __future__ import annotations

import tempfile
import warnings

import numpy as np

from ..errors import ConfigError, TinyserError
from ..extras import need
from ._fds import _last_line, _quiet_fds

QUANT_MODES = ("float32", "float16", "dynamic", "int8")
#: at most this many representative rows are used for int8 calibration
MAX_REPRESENTATIVE = 300


def _input_shape(model) -> tuple[int, ...]:
    inputs = model.inputs
    if len(inputs) != 1:
        raise ConfigError(f"convert: only single-input models are supported, got {len(inputs)} inputs")
    return tuple(int(d) for d in inputs[0].shape[1:])


def _representative(representative, shape) -> np.ndarray:
    if representative is None:
        raise ConfigError("convert: int8 quantisation needs a representative set of inputs")
    rep = np.asarray(representative, dtype=np.float32)
    if rep.ndim == len(shape):
        rep = rep[None]
    if rep.shape[1:] != shape or rep.shape[0] < 1:
        raise ConfigError(f"convert: representative inputs have shape {rep.shape[1:]}, the model expects {shape}")
    if not np.all(np.isfinite(rep)):
        raise ConfigError("convert: representative inputs contain NaN or inf")
    if rep.shape[0] > MAX_REPRESENTATIVE:
        rep = rep[np.linspace(0, rep.shape[0] - 1, MAX_REPRESENTATIVE).round().astype(int)]
    return rep


def convert(model, quant: str = "int8", representative: np.ndarray | None = None) -> bytes:
    """Convert a single-input Keras model to a TFLite flatbuffer.

    ``quant``: ``"float32"``; ``"float16"`` (float16 weights); ``"dynamic"``
    (int8 weights, float activations; LiteRT only); ``"int8"`` (FULL integer:
    int8 input/output, ``TFLITE_BUILTINS_INT8`` ops only, calibrated on
    ``representative``, an array of model inputs of which at most
    ``MAX_REPRESENTATIVE`` evenly spaced rows are used). The converter's chatter
    is kept off stdout and stderr; a failure raises ``TinyserError`` naming its
    last message.

    >>> import numpy as np
    >>> from tinyser.models import build_model
    >>> m = build_model("tiny", (32, 40), 3)
    >>> blob = convert(m, "int8", np.random.randn(16, 32, 40).astype("float32"))
    >>> blob[4:8]
    b'TFL3'
    """
    if quant not in QUANT_MODES:
        raise ConfigError(f"convert: quant must be one of {', '.join(QUANT_MODES)}, got {quant!r}")
    shape = _input_shape(model)
    rep = _representative(representative, shape) if quant == "int8" else None

    keras = need("keras", "TFLite conversion")
    tf = need("tensorflow", "TFLite conversion")

    log: list[str] = []
    try:
        with tempfile.TemporaryDirectory(prefix="tinyser-tflite-") as tmp, _quiet_fds(log), \
                warnings.catch_warnings():
            warnings.simplefilter("ignore")
            archive = keras.export.ExportArchive()
            archive.track(model)
            archive.add_endpoint("serve", lambda x: model(x, training=False),
                                 input_signature=[tf.TensorSpec((1,) + shape, tf.float32)])
            archive.write_out(tmp)
            converter = tf.lite.TFLiteConverter.from_saved_model(tmp)
            if quant == "float16":
                converter.optimizations = [tf.lite.Optimize.DEFAULT]
                converter.target_spec.supported_types = [tf.float16]
            elif quant == "dynamic":
                converter.optimizations = [tf.lite.Optimize.DEFAULT]
            elif quant == "int8":
                converter.optimizations = [tf.lite.Optimize.DEFAULT]
                converter.representative_dataset = lambda: ([row[None]] for row in rep)
                converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
                converter.inference_input_type = tf.int8
                converter.inference_output_type = tf.int8
            return bytes(converter.convert())
    except TinyserError:
        raise
    except Exception as err:  # the converter raises many types; report one line
        detail = _last_line(str(err)) or _last_line(log[0] if log else "") or type(err).__name__
        raise TinyserError(f"TFLite conversion ({quant}) failed: {detail}") from err


