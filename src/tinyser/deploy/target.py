"""What the C frontend needs to know about a model, read from its own
metadata and checked: the ``cmsis_mfcc`` (f32) frontend (with or without its
prosody channels), its standardisation (fixed, or adaptive: the frontend
dict's ``"adaptive"``), tiled padding (``"tile"``), the voice-activity rule (metadata ``"voice"``, the
defaults when absent), the int8 input and output quantisation, the labels and
the window length; and the C tables generated from it (``tinyser_tables.h/.c``).
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from .. import __version__
from ..audio import SegmentConfig
from ..errors import ConfigError
from ..features import CmsisMfccConfig
from ..tflite.metadata import ModelMetadata, read_model
from .templates import render

if TYPE_CHECKING:
    from ..features.adaptive import AdaptiveConfig
    from ..features.tile import TileConfig
    from ..vad import VoiceConfig


@dataclass(frozen=True)
class Target:
    """A full-int8 tinyser model on the ``cmsis_mfcc`` frontend, ready to be deployed."""

    path: Path
    blob: bytes
    metadata: ModelMetadata
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
    adaptive: AdaptiveConfig | None = None  # adaptive standardisation (None: fixed)
    voice: VoiceConfig | None = None        # voice activity (None: the defaults)
    tile: TileConfig | None = None          # tiled padding (None: windows as they are)

    @property
    def n_features(self) -> int:
        """Values per frame: the MFCCs, then the prosody channels if the model has them."""
        return self.config.n_features

    @property
    def frame_seconds(self) -> float:
        """Seconds between two feature frames (the frontend's hop).

        >>> from tinyser.inference import DEFAULT_MODEL
        >>> load_target(DEFAULT_MODEL).frame_seconds
        0.016
        """
        return self.config.hop_length / self.config.sample_rate

    def hop_frames(self, hop: float | None = None) -> int:
        """Frames between two inferences: ``hop`` seconds (default: half the
        model's window, as ``tinyser predict`` and ``listen``), rounded to whole frames.

        >>> from tinyser.inference import DEFAULT_MODEL
        >>> load_target(DEFAULT_MODEL).hop_frames(1.0)
        62
        """
        from ..inference import check_hop  # the one hop rule of predict, listen and the device

        seconds = check_hop(hop if hop is not None else self.segments.window / 2, self.frame_seconds,
                            self.segments.window)
        return max(1, int(round(seconds / self.frame_seconds)))


def load_target(model_path: str | os.PathLike) -> Target:
    """Read and check a model for the C frontend; one-line errors name the file.

    >>> from tinyser.inference import DEFAULT_MODEL
    >>> load_target(DEFAULT_MODEL).n_frames
    122
    """
    path = Path(model_path)
    blob, meta = read_model(path)
    reason = meta.deployable()
    if reason:
        raise ConfigError(f"{path}: {reason}")
    frontend, segments, cfg = meta.frontend, meta.segments, meta.frontend.config
    quant = (meta.input.scale, meta.input.zero_point, meta.output.scale, meta.output.zero_point)
    window_samples = int(round(segments.window * cfg.sample_rate))
    if window_samples < cfg.frame_length:
        raise ConfigError(f"{path}: the model's {segments.window} s window is shorter than one "
                          f"{cfg.frame_length}-sample frame")
    n_frames = cfg.n_frames(window_samples)
    if int(np.prod(meta.input.shape)) != n_frames * cfg.n_features:
        raise ConfigError(f"{path}: input shape {list(meta.input.shape)} does not hold the {n_frames} frames x "
                          f"{cfg.n_features} features of its frontend")
    std = frontend.standardizer
    mean = np.asarray(std.mean if std else np.zeros(cfg.n_features), np.float32)
    scale = np.asarray(std.std if std else np.ones(cfg.n_features), np.float32)
    adaptive = frontend.adaptive if std is not None else None
    labels, voice = meta.labels, meta.voice
    return Target(path, blob, meta, cfg, mean, scale, segments, labels, *quant, n_frames, adaptive, voice,
                  frontend.tile)


def table_arrays(t: Target) -> dict[str, np.ndarray]:
    """The constant arrays the C frontend reads, as the C code declares them
    (``float`` and ``uint32_t``); ``twiddle`` is the portable FFT's table
    (cos, sin of 2πk/N for k < N/2, interleaved).

    >>> from tinyser.inference import DEFAULT_MODEL
    >>> target = load_target(DEFAULT_MODEL)
    >>> {k: v.size for k, v in table_arrays(target).items()}["dct"]
    1600
    """
    from ..features.cmsis import cmsis_tables
    from ..features.prosody import prosody_tables

    cfg = t.config
    tables, prosody = cmsis_tables(cfg), prosody_tables(_analysis_config(cfg))
    angle = 2.0 * np.pi * np.arange(cfg.frame_length // 2) / cfg.frame_length
    arrays = {
        "window_coefs": tables["window_f32"], "filter_pos": tables["filter_pos"],
        "filter_len": tables["filter_len"], "filter_coefs": tables["filter_coefs_f32"],
        "dct": tables["dct_f32"].ravel(), "mean": t.mean, "std": t.std,
        "twiddle": np.stack([np.cos(angle), np.sin(angle)], axis=1).ravel().astype(np.float32),
        "lag_corr": prosody["lag_corr"], "p_cos": prosody["cos"],
    }
    norm = _adaptive_norm(t)
    if norm is not None:
        arrays["adapt_alpha"], arrays["adapt_floor"] = norm.alpha, norm.floor
    return arrays


def _analysis_config(cfg: CmsisMfccConfig) -> CmsisMfccConfig:
    """The config whose prosody analysis (channels and voice activity) the C frontend runs."""
    return cfg if cfg.prosody else cfg.replace(prosody=True)


def _adaptive_norm(t: Target):
    """A fresh Python AdaptiveNorm for the model (None when it standardises with fixed statistics):
    the C tables hold its alpha and floor."""
    if t.adaptive is None:
        return None
    from ..features.adaptive import AdaptiveNorm
    from ..features.base import Standardizer

    return AdaptiveNorm(t.adaptive, Standardizer(tuple(map(float, t.mean)), tuple(map(float, t.std))),
                        t.frame_seconds, t.n_frames)


def frontend_macros(t: Target) -> dict[str, str | int]:
    """The scalar constants of the prosody analysis, voice activity, adaptive
    standardisation and tiled padding, as ``tinyser_tables.h`` defines them (``TINYSER_`` + key).

    >>> from tinyser.inference import DEFAULT_MODEL
    >>> target = load_target(DEFAULT_MODEL)
    >>> frontend_macros(target)["VAD_MIN_FRAMES"]
    7
    """
    import math

    from ..features import prosody as pr
    from ..vad import VoiceConfig

    p = pr.prosody_tables(_analysis_config(t.config))
    v = t.voice or VoiceConfig()
    hop_s = t.frame_seconds
    macros: dict[str, str | int] = {
        "P_K_LO": p["k_lo"], "P_K_HI": p["k_hi"], "P_Q": p["q"], "P_M_LO": p["m_lo"], "P_M_HI": p["m_hi"],
        "P_LAG0": p["lag0"],
        "P_LOUD_SCALE": _c_float(p["loud_scale"]), "P_LOUDNESS_FLOOR": _c_float(pr.LOUDNESS_FLOOR),
        "P_DB_SCALE": _c_float(p["db_scale"]), "P_ST_K": _c_float(p["st_k"]), "P_ST_SCALE": _c_float(p["st_scale"]),
        "P_OCTAVE_RATIO": _c_float(pr.OCTAVE_RATIO), "P_VOICING_THRESHOLD": _c_float(pr.VOICING_THRESHOLD),
        "P_MIN_LEVEL_DB": _c_float(pr.MIN_LEVEL_DB),
        "VAD_MARGIN_DB": _c_float(v.margin_db), "VAD_RISE_DB": _c_float(np.float32(v.rise_db_per_second * hop_s)),
        "VAD_MIN_VOICING": _c_float(v.min_voicing), "VAD_MIN_LEVEL_DB": _c_float(v.min_level_db),
        "VAD_LOWEST_DB": _c_float(np.float32(np.float32(v.min_level_db) - np.float32(v.margin_db))),
        "VAD_MIN_FRAMES": max(1, math.ceil(v.min_speech_seconds / hop_s - 1e-9)),
        "ADAPTIVE": int(t.adaptive is not None), "TILE": int(t.tile is not None),
    }
    if t.adaptive is not None:
        macros["ADAPT_GATE"] = _c_float(np.float32(t.adaptive.gate))
    if t.tile is not None:
        macros["TILE_GATE"] = _c_float(np.float32(t.tile.gate))
    return {k: f"({v})" if isinstance(v, str) and v.startswith("-") else v for k, v in macros.items()}


def tables_bytes(t: Target) -> int:
    """Flash bytes of the generated tables (arrays and label strings).

    >>> from tinyser.inference import DEFAULT_MODEL
    >>> target = load_target(DEFAULT_MODEL)
    >>> tables_bytes(target)
    24744
    """
    labels = sum(len(s.encode()) + 1 + 4 for s in t.labels)  # strings + pointers (32-bit)
    return sum(a.size * 4 for a in table_arrays(t).values()) + labels


_SIZES = {"window_coefs": "TINYSER_FRAME_LENGTH", "filter_pos": "TINYSER_N_MELS", "filter_len": "TINYSER_N_MELS",
          "filter_coefs": "TINYSER_N_FILTER_COEFS", "dct": "TINYSER_N_MFCC * TINYSER_N_MELS",
          "mean": "TINYSER_N_FEATURES", "std": "TINYSER_N_FEATURES", "twiddle": "TINYSER_FRAME_LENGTH",
          "lag_corr": "2 * TINYSER_P_M_HI + 3 - TINYSER_P_LAG0",
          "p_cos": "TINYSER_FRAME_LENGTH", "adapt_alpha": "TINYSER_N_FRAMES + 1",
          "adapt_floor": "TINYSER_N_FEATURES"}
_NOTES = {"window_coefs": "analysis window", "filter_pos": "first FFT bin of each mel filter",
          "filter_len": "bins in each mel filter", "filter_coefs": "the mel filters' weights, packed",
          "dct": "DCT-II, n_mfcc x n_mels, row-major", "mean": "standardisation: mean per coefficient",
          "std": "standardisation: standard deviation per coefficient",
          "twiddle": "portable FFT: cos, sin of 2 pi k / FRAME_LENGTH, k < FRAME_LENGTH / 2",
          "lag_corr": "prosody: window correction Rw[0] / Rw[lag], lags P_LAG0 .. 2 P_M_HI + 2",
          "p_cos": "prosody: cos(2 pi i / FRAME_LENGTH), i < FRAME_LENGTH",
          "adapt_alpha": "adaptive standardisation: alpha[n] for n new voiced frames",
          "adapt_floor": "adaptive standardisation: variance floor per feature"}


def tables_sources(t: Target) -> tuple[str, str]:
    """The text of ``tinyser_tables.h`` (sizes, quantisation, declarations) and
    ``tinyser_tables.c`` (the arrays and labels), generated from the model.

    >>> from tinyser.inference import DEFAULT_MODEL
    >>> target = load_target(DEFAULT_MODEL)
    >>> header, source = tables_sources(target)
    >>> "#define TINYSER_N_FRAMES 122" in header, "tinyser_labels" in source
    (True, True)
    """
    cfg, arrays = t.config, table_arrays(t)
    origin = f"Generated by tinyser {__version__} from {t.path.name}"
    macros = {"SAMPLE_RATE": cfg.sample_rate, "FRAME_LENGTH": cfg.frame_length, "HOP_LENGTH": cfg.hop_length,
              "N_MELS": cfg.n_mels, "N_MFCC": cfg.n_mfcc, "N_PROSODY": 3 if cfg.prosody else 0,
              "PROSODY_DELTAS": int(cfg.prosody_deltas),
              "N_FEATURES": cfg.n_features, "N_FILTER_COEFS": arrays["filter_coefs"].size,
              "N_FRAMES": t.n_frames, "N_CLASSES": len(t.labels),
              "INPUT_SCALE": _c_float(t.input_scale), "INPUT_ZERO_POINT": f"({t.input_zero_point})",
              "OUTPUT_SCALE": _c_float(t.output_scale), "OUTPUT_ZERO_POINT": f"({t.output_zero_point})",
              **frontend_macros(t)}
    decls = [f"extern const {_c_type(a)} tinyser_{name}[{_SIZES[name]}]; /* {_NOTES[name]} */"
             for name, a in arrays.items()]
    header = render("tinyser_tables.h", origin=origin, window=cfg.window, fmin=f"{cfg.fmin:g}",
                    fmax=f"{cfg.fmax:g}", prosody=", prosody channels" if cfg.prosody else "",
                    standardisation="adaptive" if t.adaptive else "fixed",
                    macros="\n".join(f"#define TINYSER_{k} {v}" for k, v in macros.items()),
                    declarations="\n".join(decls))
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
