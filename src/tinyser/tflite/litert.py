"""Running a TFLite flatbuffer in the LiteRT interpreter (``ai_edge_litert``,
part of the core install): float features in, float probabilities out,
quantising int8 inputs and dequantising int8 outputs from the tensors'
parameters. Models with state (LSTM variable tensors) are reset before every
example; ``predict`` loops over a batch.
"""
from __future__ import annotations

import threading

import numpy as np

from ..errors import ConfigError, TinyserError
from ._fds import _last_line, _quiet_fds
from .flatbuffer import _full_int8, _parse


def _quantise(x: np.ndarray, detail: dict) -> np.ndarray:
    dtype = np.dtype(detail["dtype"])
    if dtype.kind == "f":
        return x.astype(dtype)
    scale, zero = detail["quantization"]
    if not scale:
        raise ConfigError(f"input tensor of type {dtype} has no quantisation parameters")
    info = np.iinfo(dtype)
    return np.clip(np.round(x / scale + zero), info.min, info.max).astype(dtype)


def _dequantise(y: np.ndarray, detail: dict) -> np.ndarray:
    if np.dtype(detail["dtype"]).kind == "f":
        return y.astype(np.float32)
    scale, zero = detail["quantization"]
    return ((y.astype(np.float32) - zero) * scale).astype(np.float32)


def _batch(x, shape: tuple[int, ...]) -> tuple[np.ndarray, bool]:
    x = np.asarray(x)
    if x.shape == shape:
        return x[None], True
    if x.shape[1:] != shape:
        raise ConfigError(f"input has shape {x.shape}, the model expects {shape} or (n, *{shape})")
    return x, False


class _Runner:
    """What both interpreters share: float in, float probabilities out, via the
    subclass's ``predict_raw`` and ``input_details``/``output_details``."""

    input_details: dict
    output_details: dict
    input_shape: tuple[int, ...]

    def quantise(self, x) -> np.ndarray:
        """Float input(s) in the input tensor's dtype (int8 models: ``round(x / scale) + zero_point``).

        >>> from tinyser.inference import DEFAULT_MODEL
        >>> blob = DEFAULT_MODEL.read_bytes()
        >>> LiteRTModel(blob).quantise(np.zeros((122, 40))).dtype
        dtype('int8')
        """
        return _quantise(np.asarray(x, np.float32), self.input_details)

    def predict_raw(self, x):
        raise NotImplementedError

    def predict(self, x) -> np.ndarray:
        """Float probabilities for one input ``shape`` -> ``(n_classes,)`` or a batch -> ``(n, n_classes)``.

        >>> from tinyser.inference import DEFAULT_MODEL
        >>> blob = DEFAULT_MODEL.read_bytes()
        >>> LiteRTModel(blob).predict(np.zeros((2, 122, 40))).shape
        (2, 6)
        """
        batch, single = _batch(x, self.input_shape)
        out = np.stack([_dequantise(self.predict_raw(self.quantise(row[None])), self.output_details)[0]
                        for row in batch])
        return out[0] if single else out


class LiteRTModel(_Runner):
    """A TFLite flatbuffer in the LiteRT interpreter.

    ``reference=True`` uses LiteRT's reference kernels (``BUILTIN_REF``), the
    yardstick for TFLite Micro's (also reference) kernels; ``None`` (the default)
    uses them for full-int8 models, so that ``predict`` gives the scores a device
    running TFLite Micro gives (LiteRT's optimised kernels round differently:
    with the shipped model they match TFLite Micro on 38 of 70 windows, up to 23
    LSB apart, the reference kernels on 70 of 70, at 3.0 instead of 5.3 files/s:
    docs/results.md, ``benchmarks/predict_kernels.py``).

    >>> from tinyser.inference import DEFAULT_MODEL
    >>> blob = DEFAULT_MODEL.read_bytes()
    >>> m = LiteRTModel(blob)
    >>> m.predict(np.zeros((4, *m.input_shape), np.float32)).shape
    (4, 6)
    """

    def __init__(self, model_bytes: bytes, num_threads: int = 1, *, reference: bool | None = None):
        from ai_edge_litert.interpreter import Interpreter, OpResolverType

        parsed = _parse(model_bytes)
        if reference is None:
            reference = _full_int8(parsed)
        self._bytes = bytes(model_bytes)
        self._lock = threading.Lock()
        resolver = OpResolverType.BUILTIN_REF if reference else OpResolverType.AUTO
        try:
            with _quiet_fds():
                self._interp = Interpreter(model_content=self._bytes, num_threads=int(num_threads),
                                           experimental_op_resolver_type=resolver)
                self._interp.allocate_tensors()
        except ValueError as err:
            raise TinyserError(f"LiteRT cannot load the model: {_last_line(str(err))}") from err
        ins, outs = self._interp.get_input_details(), self._interp.get_output_details()
        if len(ins) != 1 or len(outs) != 1:
            raise ConfigError(f"expected one input and one output, got {len(ins)} and {len(outs)}")
        self.input_details, self.output_details = ins[0], outs[0]
        self.input_shape = tuple(int(d) for d in self.input_details["shape"][1:])

    def predict_raw(self, x: np.ndarray) -> np.ndarray:
        """Run one batch-of-one input already in the input tensor's dtype; the raw output tensor.

        >>> from tinyser.inference import DEFAULT_MODEL
        >>> blob = DEFAULT_MODEL.read_bytes()
        >>> out = LiteRTModel(blob).predict_raw(np.zeros((1, 122, 40), np.int8))
        >>> out.shape, out.dtype   # softmax of the 6 classes, int8 (scale 1/256, zero point -128)
        ((1, 6), dtype('int8'))
        >>> abs(int((out.astype(int) + 128).sum()) - 256) <= 6   # the probabilities sum to 1
        True
        """
        x = np.asarray(x, self.input_details["dtype"])
        with self._lock:  # one interpreter, one tensor arena: threads (tinyser serve) take turns
            self._interp.reset_all_variables()
            self._interp.set_tensor(self.input_details["index"], x)
            self._interp.invoke()
            return self._interp.get_tensor(self.output_details["index"]).copy()


