"""Deploy a tinyser model to a microcontroller: the C99 streaming frontend,
TFLite Micro runtime and Arduino sketch or plain C/C++ library, generated
from the model's own metadata.

* :func:`write_frontend`: the feature frontend alone (``tinyser_frontend.h/.c``,
  the model's ``tinyser_tables.h/.c`` and ``tinyser_config.h``).
* :func:`deploy_arduino`: a complete Arduino sketch (``board="nano33ble"``) or
  C/C++ library (``board="generic"``) with a README stating what to install and
  the memory and compute budget.
* :func:`budget`: flash, RAM, MACs per second of audio, estimated latency and
  real-time factor on a Cortex-M4F.

Only full-int8 models on the ``cmsis_mfcc`` (f32) frontend are deployable: the
C frontend reproduces that frontend's features, standardisation and input
quantisation exactly (``tests/test_deploy.py`` measures it on EMO-DB).
"""
from __future__ import annotations

import os
import re
from importlib import resources
from pathlib import Path

from ..cache import atomic_write, check_outputs
from ..errors import ConfigError, TinyserError
from .budget import BOARDS, CYCLES_PER_MAC, Budget, budget, budget_markdown, get_board, target_budget
from .model_data import write_c_arrays
from .target import Target, load_target, tables_sources
from .templates import render

__all__ = ["BOARDS", "CYCLES_PER_MAC", "Budget", "budget", "budget_markdown", "deploy_arduino", "load_target",
           "write_c_arrays", "write_frontend"]

FRONTEND_FILES = ("tinyser_frontend.h", "tinyser_frontend.c")
#: What the generated README says of the Arduino_TensorFlowLite library, as measured in the emulator
#: (benchmarks/device.py --arduino; tinyser deploy verify --tflm <its folder> --allow-arduino).
ARDUINO_LIBRARY_NOTE = render("arduino_library_note.md").strip()
RUNTIME_FILES = ("tinyser_runtime.h", "tinyser_runtime.cpp")
# Arduino: the folder and the .ino must share a name of letters, digits, _ . - (63 at most)
_SKETCH_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,62}$")


def write_frontend(model_path: str | os.PathLike, folder: str | os.PathLike, board: str = "generic",
                   hop: float | None = None, overwrite: bool = False) -> list[Path]:
    """Write the C feature frontend for a model into ``folder``: the sources,
    the model's tables and the deployment settings. Existing files of those
    names are refused unless ``overwrite``.

    >>> import tempfile
    >>> from tinyser.inference import DEFAULT_MODEL
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     [p.name for p in write_frontend(DEFAULT_MODEL, tmp)]
    ['tinyser_frontend.h', 'tinyser_frontend.c', 'tinyser_tables.h', 'tinyser_tables.c', 'tinyser_config.h']
    """
    t = load_target(model_path)
    folder = Path(folder)
    names = [*FRONTEND_FILES, "tinyser_tables.h", "tinyser_tables.c", "tinyser_config.h"]
    check_outputs([folder / n for n in names], overwrite)
    return _write_frontend(t, folder, target_budget(t, board, hop))


def _write_frontend(t: Target, folder: Path, b: Budget) -> list[Path]:
    header, source = tables_sources(t)
    written = [_copy_static(name, folder / name) for name in FRONTEND_FILES]
    written += [_write_text(folder / "tinyser_tables.h", header), _write_text(folder / "tinyser_tables.c", source),
                _write_text(folder / "tinyser_config.h", _config_header(t, b))]
    return written


def deploy_arduino(model_path: str | os.PathLike, out: str | os.PathLike, board: str = "nano33ble",
                   hop: float | None = None, overwrite: bool = False) -> list[Path]:
    """Generate everything that runs ``model_path`` on a microcontroller into ``out``.

    ``board="nano33ble"``: ``out`` becomes an Arduino sketch folder (``out/<name>.ino``
    capturing the PDM microphone at 16 kHz, printing the label and scores of every
    inference on the serial port). ``board="generic"``: a plain C/C++ library with
    an example ``main``. Both hold the frontend, the model (``model_data``), its op
    resolver (``model_ops.h``), the runtime and a README with the budget. ``hop``:
    seconds between inferences (default: half the model's window).
    An existing non-empty ``out`` is refused unless ``overwrite``.

    >>> import tempfile
    >>> from tinyser.inference import DEFAULT_MODEL
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     names = [p.name for p in deploy_arduino(DEFAULT_MODEL, Path(tmp) / "emotion")]
    >>> names[0], names[-2:]
    ('tinyser_frontend.h', ['emotion.ino', 'README.md'])
    """
    t = load_target(model_path)
    get_board(board)  # an unknown board is refused before anything is written
    out = Path(out)
    name = out.resolve().name
    if board == "nano33ble":
        if t.config.sample_rate != 16000:
            raise ConfigError(f"{t.path}: the Nano 33 BLE Sense microphone is used at 16000 Hz, "
                              f"the model expects {t.config.sample_rate} Hz")
        if not _SKETCH_NAME.match(name) or name.endswith("."):
            raise ConfigError(f"{out}: an Arduino sketch folder needs a name of letters, digits, _ . - "
                              "(at most 63, not ending in a dot)")
    _check_out(out, overwrite)
    b = target_budget(t, board, hop)
    written = _write_frontend(t, out, b)
    written += [_copy_static(f, out / f) for f in RUNTIME_FILES]
    written += write_c_arrays(t.blob, out, source_suffix=".cpp")
    if board == "nano33ble":
        written.append(_copy_static("tinyser_sketch.ino", out / f"{name}.ino"))
    else:
        written.append(_copy_static("example_main.cpp", out / "example_main.cpp"))
    written.append(_write_text(out / "README.md", _readme(t, b, name, [p.name for p in written] + ["README.md"])))
    return written


def _check_out(out: Path, overwrite: bool) -> None:
    if out.exists() and not out.is_dir():
        raise TinyserError(f"{out}: exists and is not a folder")
    if out.is_dir() and any(out.iterdir()) and not overwrite:
        raise TinyserError(f"{out}: already exists and is not empty; pass --force to overwrite")


def _copy_static(name: str, dest: Path) -> Path:
    data = (resources.files(__name__) / "c" / name).read_bytes()
    atomic_write(dest, lambda f: f.write(data))
    return dest


def _write_text(dest: Path, text: str) -> Path:
    atomic_write(dest, lambda f: f.write(text.encode()))
    return dest


def _config_header(t: Target, b: Budget) -> str:
    return render("tinyser_config.h", model_file=t.path.name, arena_measured=b.arena_measured, arena=b.ram.arena,
                  hop_seconds=f"{b.inference_hop_seconds:.3f}", hop_frames=b.inference_hop_frames,
                  ring_ms=f"{1e3 * b.audio_ring_samples / t.config.sample_rate:.0f}", ring=b.audio_ring_samples)


def _fragment(file: str, /, **values) -> str:
    return render(file, **values).rstrip("\n")


def _readme(t: Target, b: Budget, name: str, files: list[str]) -> str:
    from ..tflite import model_ops

    cfg = t.config
    arduino = b.board == "nano33ble"
    covered = (cfg.frame_length + (t.n_frames - 1) * cfg.hop_length) / cfg.sample_rate
    shown = ",".join(f"{label}:{p}" for label, p in zip(t.labels, ("0.712", "0.104")))
    example = f"label={t.labels[0]} scores={shown},... compute_ms={b.inference_ms:.0f}"
    if arduino:
        intro = _fragment("readme_intro_arduino.md", board_name=b.board_name,
                          hop_seconds=f"{b.inference_hop_seconds:.3f}", n_frames=t.n_frames, covered=f"{covered:.3f}",
                          example=example)
        install = _fragment("readme_install_arduino.md", library_note=ARDUINO_LIBRARY_NOTE, name=name)
    else:
        intro = _fragment("readme_intro_generic.md", sample_rate=cfg.sample_rate)
        install = _fragment("readme_build_generic.md", library_note=ARDUINO_LIBRARY_NOTE)
    if t.adaptive is not None:
        standardisation = ("standardised adaptively (a running mean and variance over the stream's voiced frames, "
                           f"started from the training statistics, time constant {t.adaptive.time_constant:g} s)")
    else:
        standardisation = "standardised with the training data's mean and standard deviation"
    if t.tile is not None:
        standardisation += (", then tiled: the window's sound (its first to last frame above the gate) repeated "
                            "to fill it, as in training")
    prosody = (", then 3 prosody channels (F0 in semitones, voicing strength, loudness in dB)" if cfg.prosody else "") \
        + (" and their deltas within the window" if cfg.prosody_deltas else "")
    rows = [f"| `{f}` | {_FILE_NOTES.get(f, 'the sketch' if f.endswith('.ino') else '')} |" for f in files]
    return render(
        "README.md", name=name, model_file=t.path.name, model=t.metadata.model, quantization=t.metadata.quantization,
        classes=", ".join(t.labels), intro=intro, install_heading="Install" if arduino else "Build", install=install,
        budget=budget_markdown(b), cycles_per_mac_source=b.cycles_per_mac_source,
        frame_length=cfg.frame_length, hop_length=cfg.hop_length, hop_ms=f"{1e3 * t.frame_seconds:g}",
        n_mels=cfg.n_mels, fmin=f"{cfg.fmin:g}", fmax=f"{cfg.fmax:g}", n_mfcc=cfg.n_mfcc, prosody=prosody,
        standardisation=standardisation, input_scale=f"{t.input_scale:.6g}", input_zero_point=t.input_zero_point,
        n_frames=t.n_frames, ops=", ".join(model_ops(t.blob)), files="\n".join(rows))


_FILE_NOTES = {
    "tinyser_frontend.h": "streaming frontend API", "tinyser_frontend.c": "streaming frontend (C99)",
    "tinyser_tables.h": "the model's frontend constants and sizes",
    "tinyser_tables.c": "window, mel filters, DCT, standardisation, FFT twiddles, labels",
    "tinyser_config.h": "deployment settings: arena, inference hop, audio ring, CMSIS-DSP switch",
    "tinyser_runtime.h": "runtime API: audio in, classification out",
    "tinyser_runtime.cpp": "runtime: frontend, input window, TFLite Micro interpreter",
    "model_data.h": "the model flatbuffer (declaration)", "model_data.cpp": "the model flatbuffer, 16-byte aligned",
    "model_ops.h": "`RegisterTinyserOps`: exactly the model's ops", "example_main.cpp": "example: PCM on stdin",
    "README.md": "this file",
}
