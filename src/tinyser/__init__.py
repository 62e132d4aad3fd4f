"""tinyser: speech emotion recognition that runs on microcontrollers."""
import os

__version__ = "0.1.0"

# TensorFlow's C++ start-up chatter is noise for users of a command-line tool
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


def __getattr__(name):
    """``tinyser.load_model`` without importing TensorFlow at ``import tinyser``."""
    if name == "load_model":
        from .inference import load_model
        return load_model
    raise AttributeError(f"module 'tinyser' has no attribute {name!r}")
