"""The cAInvas / Kaggle Conv1D stack over the 162-value clip-level ``stats`` vector.

Input ``(162,)`` is reshaped to ``(162, 1)``; four Conv1D(5, same, relu)
layers of 256, 256, 128, 64 filters, each followed by MaxPool1D(5, strides 2,
same) (Dropout(0.2) before the fourth conv), Flatten, Dense(32, relu),
Dropout(0.3), softmax Dense.
"""
from __future__ import annotations

import keras
from keras import layers

_FILTERS = (256, 256, 128, 64)


def build(input_shape, n_classes: int, *, dropout: float = 0.3, conv_dropout: float = 0.2) -> keras.Model:
    """The Conv1D baseline for ``input_shape = (n_values,)``.

    >>> m = build((162,), 7)
    >>> m.output_shape
    (None, 7)
    """
    (n_values,) = input_shape
    inp = keras.Input((n_values,), name="features")
    x = layers.Reshape((n_values, 1), name="to_sequence")(inp)
    for i, f in enumerate(_FILTERS):
        if i == 3:
            x = layers.Dropout(conv_dropout, name="conv_dropout")(x)
        x = layers.Conv1D(int(f), 5, padding="same", activation="relu", name=f"conv{i}")(x)
        x = layers.MaxPooling1D(5, strides=2, padding="same", name=f"pool{i}")(x)
    x = layers.Flatten(name="flatten")(x)
    x = layers.Dense(32, activation="relu", name="hidden")(x)
    x = layers.Dropout(dropout, name="dropout")(x)
    out = layers.Dense(n_classes, activation="softmax", name="probabilities")(x)
    return keras.Model(inp, out, name="cnn1d")
