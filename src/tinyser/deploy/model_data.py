"""The model for TFLite Micro as C/C++ source: the flatbuffer as a 16-byte
aligned array (``model_data.h/.cc``) and a ``MicroMutableOpResolver`` holding
exactly the model's ops (``model_ops.h``).
"""
from __future__ import annotations

import os
from pathlib import Path

from ..cache import atomic_write
from .templates import render


def write_c_arrays(model_bytes: bytes, folder: str | os.PathLike, name: str = "g_model",
                   source_suffix: str = ".cc") -> list[Path]:
    """``model_data.h/.cc`` (16-byte aligned array) and ``model_ops.h`` (a
    MicroMutableOpResolver holding exactly the model's ops) for TFLite Micro.
    ``source_suffix=".cpp"`` names the source ``model_data.cpp`` (Arduino
    compiles ``.cpp``, not ``.cc``).

    >>> import tempfile
    >>> from tinyser.inference import DEFAULT_MODEL
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     [p.name for p in write_c_arrays(DEFAULT_MODEL.read_bytes(), tmp)]
    ['model_data.h', 'model_data.cc', 'model_ops.h']
    """
    from ..tflite import model_ops

    folder = Path(folder)
    ops = model_ops(model_bytes)
    rows = [", ".join(f"0x{b:02x}" for b in model_bytes[i:i + 16]) for i in range(0, len(model_bytes), 16)]
    header = render("model_data.h", ops=", ".join(ops), name=name)
    source = render("model_data.cc", name=name, rows=",\n  ".join(rows), length=len(model_bytes))
    adds = "\n".join(f"  if (resolver.Add{resolver_method(op)}() != kTfLiteOk) return kTfLiteError;" for op in ops)
    resolver = render("model_ops.h", count=len(ops), adds=adds)
    paths = [folder / "model_data.h", folder / f"model_data{source_suffix}", folder / "model_ops.h"]
    for path, text in zip(paths, (header, source, resolver)):
        atomic_write(path, lambda f, t=text: f.write(t.encode()))
    return paths


# MicroMutableOpResolver method names that are not the CamelCase of the op name
_RESOLVER_EXCEPTIONS = {"CONV_2D": "Conv2D", "DEPTHWISE_CONV_2D": "DepthwiseConv2D",
                        "AVERAGE_POOL_2D": "AveragePool2D", "MAX_POOL_2D": "MaxPool2D",
                        "UNIDIRECTIONAL_SEQUENCE_LSTM": "UnidirectionalSequenceLSTM"}


def resolver_method(op: str) -> str:
    """The MicroMutableOpResolver method that adds ``op``, without its ``Add``.

    >>> resolver_method("FULLY_CONNECTED"), resolver_method("CONV_2D")
    ('FullyConnected', 'Conv2D')
    """
    return _RESOLVER_EXCEPTIONS.get(op) or "".join(w.capitalize() for w in op.split("_"))
