"""Optional dependencies: which extra of ``pip install tinyser[...]`` provides a module.

The core install reads audio, computes the features, runs LiteRT models and
generates device code; training, TFLite Micro, ONNX, live audio and the web
app are extras. :func:`need` imports a module of an extra or raises one line
saying what to install.
"""
from __future__ import annotations

import importlib
from types import ModuleType

from .errors import TinyserError

#: importable module -> the extra that installs it
EXTRA_OF: dict[str, str] = {
    "tensorflow": "train", "keras": "train", "sklearn": "train", "librosa": "train",
    "audiomentations": "train", "pyroomacoustics": "train", "scipy": "train",
    "cmsisdsp": "dsp",
    "tflite_micro": "micro",
    "tf2onnx": "onnx", "onnx": "onnx", "onnxruntime": "onnx",
    "sounddevice": "live",
    "matplotlib": "plot",
    "opensmile": "baseline",
    "ray": "scale", "pyarrow": "scale",
    "starlette": "web", "uvicorn": "web", "python_multipart": "web", "websockets": "web",
}


class MissingExtra(TinyserError):
    """A feature needs an optional dependency that is not installed."""


def need(module: str, what: str = "this command") -> ModuleType:
    """Import ``module`` or raise :class:`MissingExtra` naming the extra to install.

    >>> need("json").__name__
    'json'
    >>> need("not_a_module_here", "training")
    Traceback (most recent call last):
    ...
    tinyser.extras.MissingExtra: training needs not_a_module_here, which is not installed: pip install not_a_module_here
    """
    try:
        return importlib.import_module(module)
    except ImportError:
        top = module.split(".")[0]
        extra = EXTRA_OF.get(top)
        how = f"pip install 'tinyser[{extra}]'" if extra else f"pip install {top}"
        raise MissingExtra(f"{what} needs {top}, which is not installed: {how}") from None
