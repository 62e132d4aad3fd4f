"""What the C frontend needs to know about a model, read from its own
metadata and checked: the ``cmsis_mfcc`` (f32) frontend, its standardisation,
the int8 input and output quantisation, the labels and the window length;
and the C tables generated from it (``tinyser_tables.h/.c``).
"""
from __future__ import annotations

import math

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .. import __version__
from ..audio import SegmentConfig
from ..errors import ConfigError, TinyserError
from ..export import read_model
from ..features import CmsisMfccConfig, Frontend


@dataclass(frozen=True)
class Target:
    """A full-int8 tinyser model on the ``cmsis_mfcc`` frontend, ready to be deployed."""

    path: Path
    blob: bytes
    metadata: dict
    config: CmsisMfccConfig
    mean: np.ndarray  # float32, per coefficient
    std: np.ndarray   # float32, per coefficient
    segments: SegmentConfig
    labels: tuple[str, ...]
    input_scale: float
    input_zero_point: int
    output_scale: float
    output_zero_point: int
    n_frames: int     # frames in one model input

    @property
    def frame_seconds(self) -> float:
        """Seconds between two feature frames (the frontend's hop).

        >>> load_target("tiny-int8.tflite").frame_seconds    # doctest: +SKIP
        0.016
        """
        return self.config.hop_length / self.config.sample_rate

    def hop_frames(self, hop: float | None = None) -> int:
        """Frames between two inferences: ``hop`` seconds (default: half the
        model's window, as ``tinyser predict`` and ``listen``), rounded to whole frames.

        >>> load_target("tiny-int8.tflite").hop_frames(1.0)    # doctest: +SKIP
        62
        """
        seconds = hop if hop is not None else self.segments.window / 2
        if not math.isfinite(seconds) or seconds <= 0:
            raise ConfigError(f"inference hop must be positive, not {seconds} s")
        return max(1, int(round(seconds / self.frame_seconds)))


def load_target(model_path: str | os.PathLike) -> Target:
    """Read and check a model for the C frontend; one-line errors name the file.

    >>> load_target("runs/emodb-tiny/export/fold_00/tiny-int8.tflite").n_frames   # doctest: +SKIP
    184
    """
    path = Path(model_path)
    blob, meta = read_model(path)
    try:
        frontend = Frontend.from_dict(meta["frontend"])
        segments = SegmentConfig.from_dict(meta["segments"])
        labels = tuple(str(label) for label in meta["labels"])
        inp, out = meta["input"], meta["output"]
        quant = (float(inp["scale"]), int(inp["zero_point"]), float(out["scale"]), int(out["zero_point"]))
        shape, dtypes = [int(d) for d in inp["shape"]], (inp["dtype"], out["dtype"])
    except ConfigError as e:
        raise ConfigError(f"{path}: {e}") from None
    except (KeyError, TypeError, ValueError) as e:
        raise TinyserError(f"{path}: incomplete tinyser metadata ({type(e).__name__}: {e})") from None
    cfg = frontend.config
    if cfg.name != "cmsis_mfcc":
        raise ConfigError(f"{path}: the model's frontend is {cfg.name!r}; the C frontend computes only "
                          "'cmsis_mfcc' (train with --frontend cmsis_mfcc)")
    if cfg.dtype != "f32":
        raise ConfigError(f"{path}: the C frontend computes cmsis_mfcc with dtype 'f32', the model's is {cfg.dtype!r}")
    if dtypes != ("int8", "int8") or quant[0] <= 0:
        raise ConfigError(f"{path}: not a full-int8 model (input {dtypes[0]}, output {dtypes[1]}); "
                          "export it with --quant int8")
    window_samples = int(round(segments.window * cfg.sample_rate))
    if window_samples < cfg.frame_length:
        raise ConfigError(f"{path}: the model's {segments.window} s window is shorter than one "
                          f"{cfg.frame_length}-sample frame")
    n_frames = cfg.n_frames(window_samples)
    if int(np.prod(shape)) != n_frames * cfg.n_mfcc:
        raise ConfigError(f"{path}: input shape {shape} does not hold the {n_frames} frames x {cfg.n_mfcc} "
                          "coefficients of its frontend")
    std = frontend.standardizer
    mean = np.asarray(std.mean if std else np.zeros(cfg.n_mfcc), np.float32)
    scale = np.asarray(std.std if std else np.ones(cfg.n_mfcc), np.float32)
    return Target(path, blob, meta, cfg, mean, scale, segments, labels, *quant, n_frames)


def table_arrays(t: Target) -> dict[str, np.ndarray]:
    """The constant arrays the C frontend reads, as the C code declares them
    (``float`` and ``uint32_t``); ``twiddle`` is the portable FFT's table
    (cos, sin of 2πk/N for k < N/2, interleaved).

    >>> {k: v.size for k, v in table_arrays(target).items()}["dct"]   # doctest: +SKIP
    1600
    """
    from ..features.cmsis import cmsis_tables

    cfg = t.config
    tables = cmsis_tables(cfg)
    angle = 2.0 * np.pi * np.arange(cfg.frame_length // 2) / cfg.frame_length
    return {
        "window_coefs": tables["window_f32"], "filter_pos": tables["filter_pos"],
        "filter_len": tables["filter_len"], "filter_coefs": tables["filter_coefs_f32"],
        "dct": tables["dct_f32"].ravel(), "mean": t.mean, "std": t.std,
        "twiddle": np.stack([np.cos(angle), np.sin(angle)], axis=1).ravel().astype(np.float32),
    }


def tables_bytes(t: Target) -> int:
    """Flash bytes of the generated tables (arrays and label strings).

    >>> tables_bytes(target)                                   # doctest: +SKIP
    19049
    """
    labels = sum(len(s.encode()) + 1 + 4 for s in t.labels)  # strings + pointers (32-bit)
    return sum(a.size * 4 for a in table_arrays(t).values()) + labels


_SIZES = {"window_coefs": "TINYSER_FRAME_LENGTH", "filter_pos": "TINYSER_N_MELS", "filter_len": "TINYSER_N_MELS",
          "filter_coefs": "TINYSER_N_FILTER_COEFS", "dct": "TINYSER_N_MFCC * TINYSER_N_MELS",
          "mean": "TINYSER_N_MFCC", "std": "TINYSER_N_MFCC", "twiddle": "TINYSER_FRAME_LENGTH"}
_NOTES = {"window_coefs": "analysis window", "filter_pos": "first FFT bin of each mel filter",
          "filter_len": "bins in each mel filter", "filter_coefs": "the mel filters' weights, packed",
          "dct": "DCT-II, n_mfcc x n_mels, row-major", "mean": "standardisation: mean per coefficient",
          "std": "standardisation: standard deviation per coefficient",
          "twiddle": "portable FFT: cos, sin of 2 pi k / FRAME_LENGTH, k < FRAME_LENGTH / 2"}


def tables_sources(t: Target) -> tuple[str, str]:
    """The text of ``tinyser_tables.h`` (sizes, quantisation, declarations) and
    ``tinyser_tables.c`` (the arrays and labels), generated from the model.

    >>> header, source = tables_sources(target)                # doctest: +SKIP
    """
    cfg, arrays = t.config, table_arrays(t)
    origin = f"Generated by tinyser {__version__} from {t.path.name}"
    macros = {"SAMPLE_RATE": cfg.sample_rate, "FRAME_LENGTH": cfg.frame_length, "HOP_LENGTH": cfg.hop_length,
              "N_MELS": cfg.n_mels, "N_MFCC": cfg.n_mfcc, "N_FILTER_COEFS": arrays["filter_coefs"].size,
              "N_FRAMES": t.n_frames, "N_CLASSES": len(t.labels),
              "INPUT_SCALE": _c_float(t.input_scale), "INPUT_ZERO_POINT": f"({t.input_zero_point})",
              "OUTPUT_SCALE": _c_float(t.output_scale), "OUTPUT_ZERO_POINT": f"({t.output_zero_point})"}
    decls = [f"extern const {_c_type(a)} tinyser_{name}[{_SIZES[name]}]; /* {_NOTES[name]} */"
             for name, a in arrays.items()]
    header = "\n".join([
        f"/* {origin}: the constants of its cmsis_mfcc frontend ({cfg.window} window, HTK mel filters",
        f" * {cfg.fmin:g}-{cfg.fmax:g} Hz), standardisation, int8 quantisation and labels. Do not edit:",
        " * run `tinyser deploy` again for another model. */",
        "#ifndef TINYSER_TABLES_H", "#define TINYSER_TABLES_H", "", "#include <stdint.h>", "",
        *(f"#define TINYSER_{k} {v}" for k, v in macros.items()), "",
        "#ifdef __cplusplus", 'extern "C" {', "#endif", "",
        *decls, "extern const char *const tinyser_labels[TINYSER_N_CLASSES];", "",
        "#ifdef __cplusplus", "}", "#endif", "", "#endif /* TINYSER_TABLES_H */", ""])
    body = [f"/* {origin}. Do not edit. */", '#include "tinyser_config.h"', '#include "tinyser_tables.h"', ""]
    for name, a in arrays.items():
        guard = name == "twiddle"
        body += (["#if !defined(TINYSER_USE_CMSIS_DSP)"] if guard else []) + [
            f"const {_c_type(a)} tinyser_{name}[{_SIZES[name]}] = {{", _c_rows(a), "};"] + \
            (["#endif"] if guard else []) + [""]
    body += ["const char *const tinyser_labels[TINYSER_N_CLASSES] = {",
             "  " + ", ".join(_c_string(s) for s in t.labels), "};", ""]
    return header, "\n".join(body)


def _c_type(a: np.ndarray) -> str:
    return "uint32_t" if a.dtype.kind == "u" else "float"


def _c_float(v: float) -> str:
    """A C float literal that reads back as exactly ``float32(v)``.

    >>> _c_float(0.1), _c_float(2.0), _c_float(1e-06)
    ('0.10000000149011612f', '2.0f', '9.999999974752427e-07f')
    """
    x = float(np.float32(v))
    if not np.isfinite(x):
        raise ConfigError(f"cannot write {v} as a C float")
    return f"{x!r}f"


def _c_rows(a: np.ndarray, per_row: int = 8) -> str:
    items = [str(int(v)) + "u" for v in a] if a.dtype.kind == "u" else [_c_float(v) for v in a]
    return ",\n".join("  " + ", ".join(items[i:i + per_row]) for i in range(0, len(items), per_row))


def _c_string(s: str) -> str:
    """A C string literal of ``s`` (UTF-8; anything but letters, digits and a
    few safe marks as octal escapes, so no quote or trigraph can break it).

    >>> _c_string('a"b?')
    '"a\\\\042b\\\\077"'
    """
    safe = set(b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 _-.,:;/+()")
    return '"' + "".join(chr(b) if b in safe else f"\\{b:03o}" for b in s.encode()) + '"'
