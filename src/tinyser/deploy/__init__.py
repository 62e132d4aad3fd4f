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

from .. import __version__
from ..cache import atomic_write
from ..errors import ConfigError, TinyserError
from .budget import BOARDS, CYCLES_PER_MAC, budget, budget_markdown, get_board, target_budget
from .target import Target, load_target, tables_sources

__all__ = ["BOARDS", "CYCLES_PER_MAC", "budget", "budget_markdown", "deploy_arduino", "load_target",
           "write_frontend"]

FRONTEND_FILES = ("tinyser_frontend.h", "tinyser_frontend.c")
#: What the generated README says of the Arduino_TensorFlowLite library, as measured in the emulator
#: (benchmarks/device.py --arduino; tinyser deploy verify --tflm <its folder> --allow-arduino).
ARDUINO_LIBRARY_NOTE = (
    "Not **Arduino_TensorFlowLite** (tflite-micro-arduino-examples 7948b85, library version 2.4.0-ALPHA, the "
    "library Arduino tutorials install; its TFLite Micro was last synced on 2023-02-27): it averages MEAN in float "
    "and computes per-channel-quantised FULLY_CONNECTED as per-tensor, so its scores differ from the PC's "
    "(measured in an emulated Cortex-M4 with the default model of tinyser 0.1.0 on 30 real clips: its scores "
    "equal the PC's on 17 of 45 windows, up to 58 of 255 steps apart, another top class on 1; docs/results.md). "
    "The sketch stops with one `#error` line when built against it; define "
    "`TINYSER_ALLOW_OLD_TFLM` to build anyway. With the Arduino IDE, use a current tflite-micro packaged as a "
    "library (arduino-cli 0.35 / IDE 2.2 or later compile its `.cc` files; tflite-micro's "
    "`tensorflow/lite/micro/tools/project_generation/create_tflm_tree.py` exports the sources; not tested here), "
    "or build with `tinyser deploy firmware MODEL --tflm DIR` (arm-none-eabi-gcc, tested in QEMU).")
RUNTIME_FILES = ("tinyser_runtime.h", "tinyser_runtime.cpp")
# Arduino: the folder and the .ino must share a name of letters, digits, _ . - (63 at most)
_SKETCH_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,62}$")


def write_frontend(model_path: str | os.PathLike, folder: str | os.PathLike, board: str = "generic",
                   hop: float | None = None, overwrite: bool = False) -> list[Path]:
    """Write the C feature frontend for a model into ``folder``: the sources,
    the model's tables and the deployment settings. Existing files of those
    names are refused unless ``overwrite``.

    >>> write_frontend("tiny-int8.tflite", "build/frontend")   # doctest: +SKIP
    [PosixPath('build/frontend/tinyser_frontend.h'), ..., PosixPath('build/frontend/tinyser_config.h')]
    """
    t = load_target(model_path)
    folder = Path(folder)
    names = [*FRONTEND_FILES, "tinyser_tables.h", "tinyser_tables.c", "tinyser_config.h"]
    existing = [folder / n for n in names if (folder / n).exists()]
    if existing and not overwrite:
        raise TinyserError(f"{existing[0]}: already exists; pass --force to overwrite")
    return _write_frontend(t, folder, target_budget(t, board, hop))


def _write_frontend(t: Target, folder: Path, b: dict) -> list[Path]:
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

    >>> deploy_arduino("tiny-int8.tflite", "tinyser_emotion")   # doctest: +SKIP
    [PosixPath('tinyser_emotion/tinyser_frontend.h'), ..., PosixPath('tinyser_emotion/README.md')]
    """
    from ..export import write_c_arrays

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


def _config_header(t: Target, b: dict) -> str:
    ring = b["audio_ring_samples"]
    lines = [
        f"/* Generated by tinyser {__version__} for {t.path.name}: deployment settings (edit to taste;",
        " * a -D compiler flag overrides each). */",
        "#ifndef TINYSER_CONFIG_H", "#define TINYSER_CONFIG_H", "",
        "/* Compute feature frames with CMSIS-DSP's arm_mfcc_f32 instead of the portable C code (see README.md",
        " * for the CMSIS-DSP it needs): uncomment. */",
        "/* #define TINYSER_USE_CMSIS_DSP 1 */", "",
        "/* Voice activity (tinyser.vad): the model runs only on windows with speech; 0 scores every window. */",
        "#ifndef TINYSER_VAD\n#define TINYSER_VAD 1\n#endif", "",
        f"/* TFLite Micro tensor arena: {b['arena_measured']} bytes measured on the host, + 10 % + 2 KB. */",
        f"#ifndef TINYSER_ARENA_SIZE\n#define TINYSER_ARENA_SIZE {b['ram']['arena']}\n#endif", "",
        f"/* Run the model every this many frames ({b['inference_hop_seconds']:.3f} s). */",
        f"#ifndef TINYSER_INFERENCE_HOP_FRAMES\n#define TINYSER_INFERENCE_HOP_FRAMES {b['inference_hop_frames']}\n"
        "#endif", "",
        f"/* Audio ring buffer of the Arduino sketch, samples (a power of two): "
        f"{1e3 * ring / t.config.sample_rate:.0f} ms. */",
        f"#ifndef TINYSER_AUDIO_RING_SAMPLES\n#define TINYSER_AUDIO_RING_SAMPLES {ring}\n#endif", "",
        "#endif /* TINYSER_CONFIG_H */", ""]
    return "\n".join(lines)


def _readme(t: Target, b: dict, name: str, files: list[str]) -> str:
    from ..tflite import model_ops

    meta = t.metadata
    ops = ", ".join(model_ops(t.blob))
    arduino = b["board"] == "nano33ble"
    covered = (t.config.frame_length + (t.n_frames - 1) * t.config.hop_length) / t.config.sample_rate
    shown = ",".join(f"{label}:{p}" for label, p in zip(t.labels, ("0.712", "0.104")))
    example = f"label={t.labels[0]} scores={shown},... compute_ms={b['inference_ms']:.0f}"
    if arduino:
        intro = (f"An Arduino sketch for the {b['board_name']}: the PDM microphone at 16 kHz feeds the streaming "
                 f"feature frontend; every {b['inference_hop_seconds']:.3f} s the model classifies the last "
                 f"{t.n_frames} frames ({covered:.3f} s of audio) and the serial port (115200 baud) prints one "
                 f"line:\n\n    {example}\n\n"
                 "(`compute_ms`: that hop's feature frame plus the model, the real latency to compare with the "
                 "estimate below). An `audio overrun` line means inference is slower than the ring buffer allows: "
                 "raise `TINYSER_AUDIO_RING_SAMPLES` or the hop in `tinyser_config.h`.")
        install = [
            "1. Board package **Arduino Mbed OS Nano Boards** (`arduino:mbed_nano`, Boards Manager); it provides "
            "the `PDM` library.",
            "2. **A current TensorFlow Lite Micro with Arm's CMSIS-NN kernels** (tflite-micro of September 2024 or "
            "later: integer MEAN, per-channel FULLY_CONNECTED). " + ARDUINO_LIBRARY_NOTE,
            f"3. Open `{name}/{name}.ino`, select the board, upload, open the serial monitor at 115200 baud.",
            "",
            f"    arduino-cli compile --fqbn arduino:mbed_nano:nano33ble {name}",
        ]
    else:
        intro = ("A plain C/C++ library: the streaming frontend, the model, its op resolver and a small runtime "
                 "(`tinyser_runtime.h`: `tinyser_begin()`, then `tinyser_push()` with each block of 16-bit "
                 f"samples at {t.config.sample_rate} Hz). `example_main.cpp` classifies raw PCM from stdin.")
        install = [
            "Build with TensorFlow Lite Micro (https://github.com/tensorflow/tflite-micro) for your target, "
            "ideally with its CMSIS-NN kernels (`OPTIMIZED_KERNEL_DIR=cmsis_nn`) on Cortex-M: compile "
            "`tinyser_frontend.c`, `tinyser_tables.c` (C99) and `tinyser_runtime.cpp`, `model_data.cpp`, "
            "`example_main.cpp` (C++17) against it; link with the math library (`-lm`). Checked: `tinyser deploy "
            "verify MODEL --tflm DIR` builds this library with tflite-micro + CMSIS-NN for a Cortex-M4F "
            "(arm-none-eabi-gcc) and runs it in QEMU on real clips: model outputs bit-identical to the PC's "
            "TFLite Micro, footprint and instructions measured. " + ARDUINO_LIBRARY_NOTE]
    rows = [f"| `{f}` | {_FILE_NOTES.get(f, 'the sketch' if f.endswith('.ino') else '')} |" for f in files]
    lines = [
        f"# {name}: speech emotion recognition on a microcontroller",
        "",
        f"Generated by tinyser {__version__} from `{t.path.name}` ({meta.get('model', '?')}, "
        f"{meta.get('quantization', '?')}; classes: {', '.join(t.labels)}).",
        "",
        intro,
        "",
        "## Install" if arduino else "## Build",
        "",
        *install,
        "",
        "## Budget",
        "",
        budget_markdown(b),
        "",
        f"Assumptions: {b['cycles_per_mac_source']}; the frontend at 2 cycles per float add/multiply, 14 per "
        "square root or division (Cortex-M4 VSQRT/VDIV), 100 per `logf`. The arena is TFLite Micro's own count "
        "on the host plus 10 % + 2 KB; RAM leaves out the Arduino core, drivers and the interpreter object "
        "(a few KB), flash leaves out code (TFLite Micro and the model's kernels, typically tens of KB).",
        "",
        "## What runs",
        "",
        f"* Frontend (`tinyser_frontend.c`): tinyser's `cmsis_mfcc` in C99 without malloc: a frame of "
        f"{t.config.frame_length} samples every {t.config.hop_length} ({1e3 * t.frame_seconds:g} ms), "
        f"{t.config.n_mels} mel bands {t.config.fmin:g}-{t.config.fmax:g} Hz, {t.config.n_mfcc} coefficients"
        + (", then 3 prosody channels (F0 in semitones, voicing strength, loudness in dB)" if t.config.prosody
           else "") + (" and their deltas within the window" if t.config.prosody_deltas else "") + ", "
        + ("standardised adaptively (a running mean and variance over the stream's voiced frames, started from "
           "the training statistics, time constant "
           f"{t.adaptive.time_constant:g} s)" if t.adaptive is not None else
           "standardised with the training data's mean and standard deviation")
        + " and quantised to the model's int8 "
        f"input (scale {t.input_scale:.6g}, zero point {t.input_zero_point}, round half to even); "
        f"{t.n_frames} frames make one input. Voice activity (`TINYSER_VAD`, on by default): the model runs only "
        "on windows with speech (level above the stream's own noise floor, and voiced), so silence, DC, hum and "
        "steady noise are not classified.",
        "* By default the frontend is portable C (its own real FFT). Defining `TINYSER_USE_CMSIS_DSP` "
        "(`tinyser_config.h`) computes frames with CMSIS-DSP's `arm_mfcc_f32` instead; that needs a CMSIS-DSP "
        "whose `arm_mfcc_f32` restores the frame's scale after normalising it (as CMSIS-DSP 1.16 does, which "
        "tinyser's Python features are computed with; older releases such as 1.10 skip it and give other "
        "features), built for the board (Arduino_TensorFlowLite carries CMSIS-DSP headers but not its "
        "sources). Both paths are checked against tinyser's Python pipeline on an emulated Cortex-M4F "
        "(`tinyser deploy verify MODEL --tflm DIR [--cmsis-dsp]`, CMSIS-DSP built from its sources without fused "
        "multiply-adds): the CMSIS-DSP path gave the PC's scores bit for bit on 45 of 45 windows of 30 real clips, "
        "the portable path on 44 of 45 (its own FFT rounds a few int8 inputs 1 LSB apart; docs/results.md).",
        f"* Model: TensorFlow Lite Micro with a `MicroMutableOpResolver` holding exactly the model's ops "
        f"(`model_ops.h`): {ops}.",
        "",
        "## Files",
        "",
        "| file | what |",
        "|---|---|",
        *rows,
        "",
    ]
    return "\n".join(lines)


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
