"""Keras 3 model zoo: ``build_model(name, input_shape, n_classes, **params)``.

Frame-based models (``light_sernet``, ``lstm``, ``tiny``) take time-major MFCC
``(frames, n_features)``, e.g. (188, 40) for 3 s at 16 kHz with hop 256;
``cnn1d`` takes the clip-level ``stats`` vector ``(162,)``.

>>> from tinyser.models import build_model
>>> build_model("tiny", (188, 40), 7).output_shape
(None, 7)
"""
from __future__ import annotations

import importlib
import inspect
from typing import Callable

from ..errors import ConfigError
from .profile import count_macs, count_params, macs_per_second

#: model names; each is the module ``tinyser.models.<name>`` whose ``build(input_shape,
#: n_classes, **params)`` returns a keras.Model (imported on first use: Keras is the ``train`` extra)
MODELS: tuple[str, ...] = ("light_sernet", "lstm", "cnn1d", "tiny")
_INPUT_RANK = {"light_sernet": 2, "lstm": 2, "cnn1d": 1, "tiny": 2}


def builder(name: str) -> Callable:
    """The ``build`` function of model ``name``.

    >>> builder("tiny").__module__
    'tinyser.models.tiny'
    """
    if name not in MODELS:
        raise ConfigError(f"unknown model {name!r}; choose from {', '.join(sorted(MODELS))}")
    from ..extras import need

    need("keras", "building a model")
    return importlib.import_module(f"{__name__}.{name}").build


def model_params(name: str) -> dict:
    """The tunable parameters of model ``name`` with their defaults.

    >>> model_params("tiny")["width"]
    0.25
    """
    sig = inspect.signature(builder(name))
    return {p.name: p.default for p in sig.parameters.values() if p.kind is p.KEYWORD_ONLY}


#: Keras' default BatchNormalization momentum (0.99) needs thousands of steps;
#: SER corpora give ~15 steps an epoch, and with 0.99 the moving statistics were
#: still far from the batch statistics after 10 epochs (seen while developing on
#: EMO-DB: inference-mode accuracy near chance while training-mode accuracy was
#: ~0.7). 0.9 converges in ~30 steps.
BN_MOMENTUM = 0.9


def _with_bn_momentum(model):
    import keras

    for layer in model._flatten_layers():
        if isinstance(layer, keras.layers.BatchNormalization):
            layer.momentum = BN_MOMENTUM
    return model


def build_model(name: str, input_shape, n_classes: int, **params):
    """Build model ``name`` for inputs of ``input_shape`` (no batch axis) and ``n_classes`` outputs.

    Unknown names, unknown parameters and input shapes of the wrong rank raise
    :class:`~tinyser.errors.ConfigError`.

    >>> m = build_model("cnn1d", (162,), 4)
    >>> m.output_shape
    (None, 4)
    """
    known = model_params(name)
    unknown = sorted(set(params) - set(known))
    if unknown:
        raise ConfigError(f"model {name!r} has no parameter {', '.join(map(repr, unknown))}; "
                          f"known: {', '.join(sorted(known))}")
    try:
        shape = tuple(int(d) for d in input_shape)
    except (TypeError, ValueError):
        raise ConfigError(f"input_shape must be a tuple of ints, got {input_shape!r}") from None
    if len(shape) != _INPUT_RANK[name] or min(shape) < 1:
        want = "(frames, n_features)" if _INPUT_RANK[name] == 2 else "(n_values,)"
        raise ConfigError(f"model {name!r} expects input_shape {want}, got {shape}")
    if int(n_classes) < 2:
        raise ConfigError(f"n_classes must be >= 2, got {n_classes!r}")
    try:
        return _with_bn_momentum(builder(name)(shape, int(n_classes), **params))
    except ConfigError:
        raise
    except (TypeError, ValueError) as err:
        msg = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise ConfigError(f"model {name!r}: invalid parameters {params!r}: {msg}") from None


__all__ = ["MODELS", "build_model", "model_params", "count_params", "count_macs", "macs_per_second"]
