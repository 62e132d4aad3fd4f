"""Size and compute of a Keras model: parameters and multiply-accumulates (MACs).

What :func:`count_macs` counts, per inference (batch of one):

* ``Dense``: ``positions x in_features x units`` (``positions`` is 1 for a
  vector input, the number of frames for a sequence input);
* ``Conv1D`` / ``Conv2D``: ``output positions x kernel area x in_channels/groups
  x filters``;
* ``DepthwiseConv1D`` / ``DepthwiseConv2D``: ``output positions x kernel area x
  in_channels x depth_multiplier``; ``SeparableConv*`` = depthwise + pointwise;
* ``LSTM`` / ``GRU`` / ``SimpleRNN`` (and tinyser's ``FusedLSTM``): the gate
  matrix products, ``steps x gates x units x (in_features + units)`` with 4, 3
  and 1 gates.

Not counted: biases, batch normalisation (folded into the preceding
convolution by the TFLite converter), activations, element-wise gate
arithmetic of recurrent cells, pooling, global pooling and softmax. A layer
with weights that is none of the above raises :class:`~tinyser.errors.ConfigError`
rather than being silently counted as free.
"""
from __future__ import annotations

import math

from ..errors import ConfigError

# Layers with weights that cost no MACs at inference (folded or lookups).
_FREE_WEIGHTED = {"BatchNormalization", "LayerNormalization", "Normalization", "Embedding"}
_RNN_GATES = {"LSTM": 4, "FusedLSTM": 4, "GRU": 3, "SimpleRNN": 1}


def count_params(model) -> int:
    """All parameters of ``model``, trainable and not (batch-norm statistics included).

    >>> import keras
    >>> m = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3)])
    >>> count_params(m)
    15
    """
    return int(model.count_params())


def _shape(tensor) -> tuple:
    return tuple(tensor.shape)


def _prod(dims) -> int:
    return int(math.prod(int(d) for d in dims))


def _layers(model):
    """Leaf layers of ``model``, descending into nested models."""
    for layer in model.layers:
        if hasattr(layer, "layers") and layer.__class__.__name__ in ("Functional", "Sequential", "Model"):
            yield from _layers(layer)
        else:
            yield layer


def _layer_macs(layer) -> int:
    kind = layer.__class__.__name__
    if not layer.weights:
        return 0
    if kind in _FREE_WEIGHTED:
        return 0
    in_shape, out_shape = _shape(layer.input), _shape(layer.output)
    if kind in ("Dense",):
        return _prod(out_shape[1:-1]) * int(in_shape[-1]) * int(layer.units)
    if kind in ("Conv1D", "Conv2D", "Conv3D"):
        cin = int(in_shape[-1]) if layer.data_format == "channels_last" else int(in_shape[1])
        spatial = out_shape[1:-1] if layer.data_format == "channels_last" else out_shape[2:]
        return _prod(spatial) * _prod(layer.kernel_size) * (cin // layer.groups) * int(layer.filters)
    if kind in ("DepthwiseConv1D", "DepthwiseConv2D"):
        cin = int(in_shape[-1]) if layer.data_format == "channels_last" else int(in_shape[1])
        spatial = out_shape[1:-1] if layer.data_format == "channels_last" else out_shape[2:]
        return _prod(spatial) * _prod(layer.kernel_size) * cin * int(layer.depth_multiplier)
    if kind in ("SeparableConv1D", "SeparableConv2D"):
        cin = int(in_shape[-1]) if layer.data_format == "channels_last" else int(in_shape[1])
        spatial = out_shape[1:-1] if layer.data_format == "channels_last" else out_shape[2:]
        mid = cin * int(layer.depth_multiplier)
        return _prod(spatial) * (_prod(layer.kernel_size) * mid + mid * int(layer.filters))
    if kind in _RNN_GATES:
        steps, features = int(in_shape[1]), int(in_shape[2])
        units = int(layer.units)
        return steps * _RNN_GATES[kind] * units * (features + units)
    raise ConfigError(f"count_macs: layer {layer.name!r} of type {kind} has weights but no MAC rule")


def count_macs(model) -> int:
    """Multiply-accumulates for one inference of ``model`` (see the module docstring).

    >>> import keras
    >>> m = keras.Sequential([keras.Input((8, 8, 1)),
    ...                       keras.layers.Conv2D(4, 3, padding="same"),
    ...                       keras.layers.GlobalAveragePooling2D(), keras.layers.Dense(2)])
    >>> count_macs(m)  # 8*8*9*1*4 + 4*2
    2312
    """
    return int(sum(_layer_macs(layer) for layer in _layers(model)))


def macs_per_second(model, seconds_of_audio: float) -> float:
    """MACs per second of audio when one inference covers ``seconds_of_audio``.

    >>> import keras
    >>> m = keras.Sequential([keras.Input((10,)), keras.layers.Dense(3)])
    >>> macs_per_second(m, 2.0)
    15.0
    """
    if not seconds_of_audio or seconds_of_audio <= 0:
        raise ConfigError(f"seconds_of_audio must be > 0, got {seconds_of_audio!r}")
    return count_macs(model) / float(seconds_of_audio)
