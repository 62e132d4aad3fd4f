"""``tiny``: tinyser's own family for microcontrollers (a DS-CNN over MFCC frames).

``(frames, coeffs)`` -> reshape ``(frames, coeffs, 1)`` -> stem Conv2D
(16 x width, 5x3, stride 2) + BN + ReLU -> ``depth`` depthwise-separable blocks
(DepthwiseConv2D 5x3 + BN + ReLU, 1x1 Conv2D + BN + ReLU) in three stages of
40, 80 and 128 channels (x width); stages 1 and 2 open by halving time and
frequency (AveragePooling2D by default, or a strided depthwise conv), stage 3
only widens -> global average pooling -> Dropout -> softmax Dense. At
(188, 40) the maps are 94x20 (stem), 47x10, 24x5, 24x5; the receptive field
(>230 frames) covers a whole 3 s clip.
Every op is one TFLite Micro supports in int8 (CONV_2D, DEPTHWISE_CONV_2D,
AVERAGE_POOL_2D, MEAN, FULLY_CONNECTED, SOFTMAX, RESHAPE); BN folds into the
convolutions.

Defaults (``width=1.0, depth=10``: stages of 4, 4 and 2 blocks) at a 3 s input
of (188, 40), 7 classes: 70,471 parameters (incl. BN), 10.7 M MACs (3.6 M
per second of audio; budget 8 M), full-int8 flatbuffer 121,768 bytes with
trained (non-trivial) batch-norm folded in (budget 128 KB; ~35 KB of it is
per-channel quantisation metadata, and an untrained model converts ~10 KB
smaller because its all-zero folded biases are deduplicated), TFLite Micro
arena 55,584 bytes measured on the 64-bit host build (budget 64 KB).
``tests/test_models.py`` re-measures all three. What binds is flash
(parameters of the 80/128-channel stages) and the arena (stage-1 maps of
47x10x40 = 18.4 KB in and out of each op); MACs are the slack, so stage 3
keeps the 24x5 resolution instead of striding again (MACs, no parameters).
"""
from __future__ import annotations

import keras
from keras import layers

from ..errors import ConfigError

STEM_CHANNELS = 16
STAGES = ((40, (2, 2)), (80, (2, 2)), (128, (1, 1)))


def _channels(base: int, width: float) -> int:
    """``base * width`` rounded to a multiple of 8 (CMSIS-NN's SIMD-friendly), at least 8."""
    return max(8, int(round(base * width / 8.0)) * 8)


def stage_depths(depth: int) -> tuple[int, int, int]:
    """How ``depth`` blocks split over the three stages.

    >>> stage_depths(10)
    (4, 4, 2)
    """
    depth = int(depth)
    if depth < 3:
        raise ConfigError(f"tiny: depth must be >= 3 (one block per stage), got {depth}")
    last = max(1, depth // 5)
    middle = max(1, (depth - last) // 2)
    return depth - middle - last, middle, last


def _dw_init():
    """He init for a depthwise kernel: Keras counts its fan-in as kh*kw*channels, its
    fan-out (kh*kw*multiplier) is the real fan-in of each output. With the default
    glorot init activations shrink ~sqrt(channels) per block, and an untrained deep
    model's logits can become so small that TFLite Micro's SOFTMAX aborts."""
    return keras.initializers.VarianceScaling(2.0, mode="fan_out", distribution="truncated_normal")


def _conv_bn_relu(x, layer, name):
    x = layer(x)
    x = layers.BatchNormalization(name=f"{name}_bn")(x)
    return layers.ReLU(name=f"{name}_relu")(x)


def ds_block(x, filters: int, strides, kernel, name: str):
    """Depthwise-separable block: DepthwiseConv2D + BN + ReLU, then 1x1 Conv2D + BN + ReLU.

    >>> inp = keras.Input((16, 8, 4))
    >>> tuple(ds_block(inp, 12, (2, 2), (3, 3), "b").shape)
    (None, 8, 4, 12)
    """
    x = _conv_bn_relu(x, layers.DepthwiseConv2D(kernel, strides=strides, padding="same", use_bias=False,
                                                depthwise_initializer=_dw_init(), name=f"{name}_dw"), f"{name}_dw")
    return _conv_bn_relu(x, layers.Conv2D(filters, 1, use_bias=False, kernel_initializer="he_normal",
                                          name=f"{name}_pw"), f"{name}_pw")


def build(input_shape, n_classes: int, *, width: float = 1.0, depth: int = 10, dropout: float = 0.2,
          kernel=(5, 3), downsample: str = "pool") -> keras.Model:
    """A ``tiny`` model for ``input_shape = (frames, coeffs)``.

    ``width`` multiplies every channel count, ``depth`` is the number of
    depthwise-separable blocks (>= 3), ``kernel`` the depthwise (time, freq)
    kernel; ``downsample`` is ``"pool"`` (AveragePooling2D before a stage's
    first block) or ``"stride"`` (that block's depthwise conv strides). Same
    MACs and parameters; pooling scored ~6 points better in a quick 5-fold
    speaker-independent EmoDB check (aliasing of strided depthwise convs).

    >>> m = build((188, 40), 7)
    >>> m.output_shape
    (None, 7)
    """
    if not float(width) > 0:
        raise ConfigError(f"tiny: width must be > 0, got {width!r}")
    if downsample not in ("pool", "stride"):
        raise ConfigError(f"tiny: downsample must be 'pool' or 'stride', got {downsample!r}")
    frames, coeffs = input_shape
    kernel = tuple(int(k) for k in kernel)
    inp = keras.Input((frames, coeffs), name="features")
    x = layers.Reshape((frames, coeffs, 1), name="to_image")(inp)
    x = _conv_bn_relu(x, layers.Conv2D(_channels(STEM_CHANNELS, width), (5, 3), strides=(2, 2), padding="same",
                                       use_bias=False, kernel_initializer="he_normal", name="stem"), "stem")
    block = 0
    for (base, strides), n_blocks in zip(STAGES, stage_depths(depth)):
        for i in range(n_blocks):
            s = strides if i == 0 else (1, 1)
            if downsample == "pool" and s != (1, 1):
                x = layers.AveragePooling2D(s, padding="same", name=f"block{block}_pool")(x)
                s = (1, 1)
            x = ds_block(x, _channels(base, width), s, kernel, f"block{block}")
            block += 1
    x = layers.GlobalAveragePooling2D(name="gap")(x)
    x = layers.Dropout(dropout, name="dropout")(x)
    out = layers.Dense(n_classes, activation="softmax", name="probabilities")(x)
    return keras.Model(inp, out, name="tiny")
