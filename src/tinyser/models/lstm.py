"""Two-layer LSTM baseline over MFCC frames, built to become a fused int8 TFLite LSTM.

``LSTM(128, return_sequences) -> LSTM(64) -> Dense(64, relu) -> Dropout(0.3) ->
Dense(softmax)``.

Why a custom layer instead of ``keras.layers.LSTM``: under Keras 3 the stock
LSTM lowers to a TF ``While`` loop. The TFLite converter keeps that as a
``WHILE`` op (no ``UNIDIRECTIONAL_SEQUENCE_LSTM``), and full-int8 calibration
of that graph crashes the converter (segfault, TF 2.21). ``unroll=True``
converts, but every time step becomes ~13 ops: at 47 steps the int8 file is
655 KB and TFLite Micro needs ~800 KB of arena just for per-op bookkeeping,
far beyond the Nano's 256 KB RAM.

:class:`FusedLSTM` computes the same LSTM (Keras gate order i, f, c, o,
``unit_forget_bias``) inside a ``tf.function`` tagged the way Keras 2 tagged
its LSTM (``api_implements="lstm_<uuid>"``, ``time_major``/``go_backwards``
attributes). The TFLite converter recognises the tag and replaces the whole
function by one ``UNIDIRECTIONAL_SEQUENCE_LSTM`` op, which quantises to full
int8 (int16 cell state) and runs in TFLite Micro (reference and CMSIS-NN
kernels): one op per layer, a model size that does not grow with the number
of frames, and a small arena. Differences from the Keras layer at inference:
the converter clips the cell state to +-10. The layer needs the TensorFlow
backend; it supports neither masking, dropout nor ``go_backwards``.

Checking an int8 LSTM: TFLite Micro's kernel tracks the Keras float model
(~0.002 on probabilities). LiteRT's reference int8 LSTM kernel agrees with it
to 1 LSB for the default model, but drifts by several LSB in some
configurations (``frame_stride=4``; a stack with all-zero gate biases), so
judge TFLite Micro against Keras rather than LiteRT there.
"""
from __future__ import annotations

import uuid

import keras
from keras import layers

from ..errors import ConfigError


def _lstm_sequence(inputs, init_h, init_c, kernel, recurrent_kernel, bias):
    """Standard LSTM over batch-major ``inputs``; signature and 5 outputs as the converter expects."""
    import tensorflow as tf

    xs = tf.transpose(inputs, [1, 0, 2])
    xz = tf.einsum("tbi,ij->tbj", xs, kernel) + bias

    def step(carry, z):
        h, c = carry
        z = z + tf.matmul(h, recurrent_kernel)
        i, f, g, o = tf.split(z, 4, axis=-1)
        c = tf.sigmoid(f) * c + tf.sigmoid(i) * tf.tanh(g)
        h = tf.sigmoid(o) * tf.tanh(c)
        return h, c

    hs, cs = tf.scan(step, xz, initializer=(init_h, init_c))
    outputs = tf.transpose(hs, [1, 0, 2])
    return hs[-1], outputs, hs[-1], cs[-1], tf.constant(1.0)


@keras.saving.register_keras_serializable(package="tinyser")
class FusedLSTM(layers.Layer):
    """An LSTM layer that the TFLite converter fuses into ``UNIDIRECTIONAL_SEQUENCE_LSTM``.

    Weights have the same layout as ``keras.layers.LSTM`` (``kernel``,
    ``recurrent_kernel``, ``bias``), so they can be copied between the two.

    >>> import numpy as np
    >>> layer = FusedLSTM(8, return_sequences=True)
    >>> layer(np.zeros((2, 5, 3), "float32")).shape
    TensorShape([2, 5, 8])
    """

    def __init__(self, units: int, return_sequences: bool = False, kernel_regularizer=None, **kwargs):
        super().__init__(**kwargs)
        if keras.backend.backend() != "tensorflow":
            raise ConfigError("FusedLSTM needs the TensorFlow Keras backend (KERAS_BACKEND=tensorflow)")
        self.units = int(units)
        self.return_sequences = bool(return_sequences)
        self.kernel_regularizer = keras.regularizers.get(kernel_regularizer)
        self.input_spec = layers.InputSpec(ndim=3)
        # One tagged tf.function per input shape, each with its own ``api_implements`` tag:
        # Grappler's implementation selector swaps functions that share a tag, so two traces
        # of one tagged function (say batch 4 and batch 1) can end up running the wrong one.
        # The converter needs static shapes to fuse, so the tag cannot sit on one
        # batch-polymorphic trace either.
        object.__setattr__(self, "_sequence_fns", {})

    def _sequence_fn(self, shape):
        import tensorflow as tf

        key = tuple(shape)
        if key not in self._sequence_fns:
            attributes = {"api_implements": f"lstm_{uuid.uuid4()}", "api_preferred_device": "CPU",
                          "time_major": False, "go_backwards": False}
            self._sequence_fns[key] = tf.function(_lstm_sequence, experimental_attributes=attributes,
                                                  autograph=False)
        return self._sequence_fns[key]

    def build(self, input_shape):
        features = int(input_shape[-1])
        u = self.units

        def bias_init(shape, dtype=None):
            import tensorflow as tf
            return tf.concat([tf.zeros((u,)), tf.ones((u,)), tf.zeros((2 * u,))], 0)

        self.kernel = self.add_weight(shape=(features, 4 * u), initializer="glorot_uniform",
                                      regularizer=self.kernel_regularizer, name="kernel")
        self.recurrent_kernel = self.add_weight(shape=(u, 4 * u), initializer="orthogonal",
                                                name="recurrent_kernel")
        self.bias = self.add_weight(shape=(4 * u,), initializer=bias_init, name="bias")

    def call(self, inputs):
        import tensorflow as tf

        inputs = tf.convert_to_tensor(inputs, self.compute_dtype)
        batch = tf.shape(inputs)[0]
        zeros = tf.zeros((batch, self.units), self.compute_dtype)
        last, sequence, _, _, _ = self._sequence_fn(inputs.shape)(
            inputs, zeros, zeros, tf.convert_to_tensor(self.kernel), tf.convert_to_tensor(self.recurrent_kernel),
            tf.convert_to_tensor(self.bias))
        return sequence if self.return_sequences else last

    def compute_output_shape(self, input_shape):
        if self.return_sequences:
            return (input_shape[0], input_shape[1], self.units)
        return (input_shape[0], self.units)

    def get_config(self):
        config = super().get_config()
        config.update(units=self.units, return_sequences=self.return_sequences,
                      kernel_regularizer=keras.regularizers.serialize(self.kernel_regularizer))
        return config


POOLING = ("last", "mean")


def build(input_shape, n_classes: int, *, units=(128, 64), hidden: int = 64, dropout: float = 0.3,
          frame_stride: int = 1, pooling: str = "last") -> keras.Model:
    """The LSTM baseline for ``input_shape = (frames, coeffs)``.

    ``units`` lists the stacked LSTM sizes (all but the last return sequences).
    ``frame_stride > 1`` averages non-overlapping groups of frames first
    (AveragePooling1D), cutting MACs and arena by that factor.
    ``pooling`` summarises the last layer over time: ``"last"`` keeps its final
    state, ``"mean"`` averages its states over every frame (a MEAN op in int8),
    so that each part of a window counts alike.

    >>> m = build((188, 40), 7)
    >>> m.output_shape, m.count_params()
    ((None, 7), 140551)
    """
    frames, coeffs = input_shape
    units = tuple(int(u) for u in units)
    if not units or min(units) < 1:
        raise ConfigError(f"lstm: units must be a non-empty list of positive sizes, got {units!r}")
    if int(frame_stride) < 1:
        raise ConfigError(f"lstm: frame_stride must be >= 1, got {frame_stride!r}")
    if pooling not in POOLING:
        raise ConfigError(f"lstm: pooling must be one of {', '.join(POOLING)}, not {pooling!r}")
    inp = keras.Input((frames, coeffs), name="features")
    x = inp
    if int(frame_stride) > 1:
        x = layers.AveragePooling1D(int(frame_stride), padding="same", name="frame_pool")(x)
    for i, u in enumerate(units):
        x = FusedLSTM(u, return_sequences=i < len(units) - 1 or pooling == "mean", name=f"lstm{i}")(x)
    if pooling == "mean":
        x = layers.GlobalAveragePooling1D(name="time_mean")(x)
    x = layers.Dense(int(hidden), activation="relu", name="hidden")(x)
    x = layers.Dropout(dropout, name="dropout")(x)
    out = layers.Dense(n_classes, activation="softmax", name="probabilities")(x)
    return keras.Model(inp, out, name="lstm")
