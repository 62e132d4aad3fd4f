"""Light-SERNet V1 (Aftab et al., ICASSP 2022) over time-major MFCC frames.

Input ``(frames, coeffs)`` is reshaped to ``(frames, coeffs, 1)``. Three
parallel Conv2D(32) paths with kernels (11, 1) (time), (1, 9) (frequency) and
(3, 3), each with BN + ReLU + AveragePooling2D(2, same), are concatenated into
96 channels; then Conv 3x3 blocks of 64, 96, 128, 160 filters (BN + ReLU +
average pooling (2,2), (2,2), (2,1), (2,1)), a 1x1 Conv(320) + BN + ReLU,
global average pooling, Dropout(0.3) and a softmax Dense. Every kernel has an
L2(1e-6) penalty.

For 3 s of MFCC at (188, 40) and 7 classes this has 463,335 parameters
(the issue's "about 463k"); the count does not depend on the number of frames
(convolutions and global pooling only). At (188, 40) it costs 163 M MACs, its
full-int8 flatbuffer is ~497 KB and TFLite Micro needs a ~433 KB arena (the
three 188x40x32 path outputs before pooling; both measured in docs/results.md),
so it does not fit the Nano
33 BLE Sense's 256 KB of RAM: it is a reference, not a deployment target.
"""
from __future__ import annotations

import keras
from keras import layers

from ..errors import ConfigError

PATHS = ((11, 1), (1, 9), (3, 3))
BLOCKS = ((64, (2, 2)), (96, (2, 2)), (128, (2, 1)), (160, (2, 1)))


def _conv_bn_relu(x, filters, kernel, reg, name):
    x = layers.Conv2D(filters, kernel, padding="same", use_bias=False,
                      kernel_regularizer=keras.regularizers.L2(reg), name=f"{name}_conv")(x)
    x = layers.BatchNormalization(name=f"{name}_bn")(x)
    return layers.ReLU(name=f"{name}_relu")(x)


POOLING = ("mean", "meanmax")
FIRST = ("parallel", "channels")


def build(input_shape, n_classes: int, *, width: float = 1.0, input_pool=None, dropout: float = 0.3,
          l2: float = 1e-6, pooling: str = "mean", depth: int = len(BLOCKS), kernels=PATHS,
          first: str = "parallel", name: str = "light_sernet") -> keras.Model:
    """Light-SERNet for ``input_shape = (frames, coeffs)``.

    ``width`` scales every layer's filters (1.0: the paper's 32-filter paths);
    ``input_pool`` (e.g. ``(2, 2)``) average-pools the MFCC image first, which
    divides the MACs and the activation memory by its area. Both exist for the
    microcontroller-sized ``tiny`` variant. ``pooling="meanmax"`` concatenates the
    global mean and the global maximum of the last feature maps (statistics
    pooling that TFLite Micro runs in int8: MEAN and MAX_POOL_2D), so that a
    short burst of emotional speech is not averaged away by a long quiet rest.

    The search space of ``tinyser search``: ``depth`` keeps the first 1-4 of the
    3x3 blocks; ``kernels`` are the first layer's kernel shapes (one parallel path
    each); ``first="channels"`` replaces the parallel one-input-channel paths by
    one convolution over time with the coefficients as input channels (kernel
    ``kernels[0]``'s time extent), which CMSIS-NN runs at its multi-channel rate
    (the one-channel paths measured ~11.5 instructions per MAC on a Cortex-M4,
    the multi-channel convolutions ~2; docs/results.md).

    >>> m = build((188, 40), 7)
    >>> m.output_shape, m.count_params()
    ((None, 7), 463335)
    """
    if not float(width) > 0:
        raise ConfigError(f"{name}: width must be > 0, got {width!r}")
    if pooling not in POOLING:
        raise ConfigError(f"{name}: pooling must be one of {', '.join(POOLING)}, not {pooling!r}")
    if first not in FIRST:
        raise ConfigError(f"{name}: first must be one of {', '.join(FIRST)}, not {first!r}")
    if not 1 <= int(depth) <= len(BLOCKS):
        raise ConfigError(f"{name}: depth must be 1-{len(BLOCKS)}, not {depth!r}")
    kernels = tuple(tuple(int(v) for v in k) for k in kernels)
    if not kernels or any(len(k) != 2 or min(k) < 1 for k in kernels):
        raise ConfigError(f"{name}: kernels must be (time, frequency) pairs of positive sizes, not {kernels!r}")
    frames, coeffs = input_shape
    inp = keras.Input((frames, coeffs), name="features")
    if first == "channels":  # coefficients as input channels: (frames, 1, coeffs)
        x = layers.Reshape((frames, 1, coeffs), name="to_channels")(inp)
        if input_pool:
            x = layers.AveragePooling2D((tuple(input_pool)[0], 1), padding="same", name="input_pool")(x)
        x = _conv_bn_relu(x, _scaled(32, width) * len(kernels), (kernels[0][0], 1), l2, "path0")
        x = layers.AveragePooling2D(2, padding="same", name="path0_pool")(x)
    else:
        x = layers.Reshape((frames, coeffs, 1), name="to_image")(inp)
        if input_pool:
            x = layers.AveragePooling2D(tuple(input_pool), padding="same", name="input_pool")(x)
        paths = []
        for i, kernel in enumerate(kernels):
            p = _conv_bn_relu(x, _scaled(32, width), kernel, l2, f"path{i}")
            paths.append(layers.AveragePooling2D(2, padding="same", name=f"path{i}_pool")(p))
        x = layers.Concatenate(name="paths")(paths) if len(paths) > 1 else paths[0]
    for i, (filters, pool) in enumerate(BLOCKS[:int(depth)]):
        x = _conv_bn_relu(x, _scaled(filters, width), (3, 3), l2, f"block{i}")
        x = layers.AveragePooling2D(pool, padding="same", name=f"block{i}_pool")(x)
    x = _conv_bn_relu(x, _scaled(320, width), (1, 1), l2, "head")
    if pooling == "meanmax":
        x = layers.Concatenate(name="stats")([layers.GlobalAveragePooling2D(name="gap")(x),
                                              layers.GlobalMaxPooling2D(name="gmp")(x)])
    else:
        x = layers.GlobalAveragePooling2D(name="gap")(x)
    x = layers.Dropout(dropout, name="dropout")(x)
    out = layers.Dense(n_classes, activation="softmax", kernel_regularizer=keras.regularizers.L2(l2),
                       name="probabilities")(x)
    return keras.Model(inp, out, name=name)


def _scaled(filters: int, width: float) -> int:
    """``filters * width``, at least 4 (multiples of 4 suit CMSIS-NN's int8 SIMD)."""
    return max(4, int(round(filters * width / 4)) * 4)
