"""Firmware for a Cortex-M4F (Arduino Nano 33 BLE Sense class) built from the
generated C frontend and runtime, the model and TensorFlow Lite Micro with
CMSIS-NN, and run in QEMU (``mps2-an386``, a Cortex-M4 with FPU) to check it
against the host and measure it.

* :func:`build_firmware`: writes a project (the generated library, a harness,
  a linker script with the board's 1 MB flash and 256 KB RAM, a Makefile) and
  builds it with ``arm-none-eabi-gcc``; a model that does not fit the board
  fails to link (:class:`DoesNotFit`). TFLite Micro + CMSIS-NN are compiled
  once into a static library cached under ``$TINYSER_CACHE/firmware``, keyed
  by the sources' bytes, the flags and the compiler.
* :func:`verify`: real clips as 16-bit PCM through the firmware in QEMU (C
  frontend -> window -> TFLite Micro + CMSIS-NN, exactly what
  ``tinyser_push`` runs on a board) and through the host pipeline (Python
  frontend -> ``tflite_micro`` interpreter), compared bit for bit; plus the
  footprint by component from the linker map, instructions per inference, per
  op and per second of audio, and the real-time factor at 64 MHz.

Sources are never copied into the project: ``tflm`` (or ``$TINYSER_THIRD_PARTY``)
names a folder laid out as tinyser's ``../shared/third_party``:
``tflite-micro/``, ``cmsis_nn/``, ``flatbuffers/``, ``gemmlowp/``, ``ruy/``,
``cmsis/CMSIS/Core/Include``.

Instruction counts: QEMU runs with ``-icount shift=0`` (one guest instruction
per nanosecond of virtual time) and the firmware reads the board's 25 MHz
CMSDK timer, so one tick is 40 instructions (each reading is +-40). QEMU has
no pipeline model: cycles are at least the instructions (``CYCLES_PER_INSTRUCTION``
= 1 is the stated assumption of the real-time factor; a Cortex-M4 needs more
for loads, taken branches, VDIV/VSQRT and flash wait states).
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import shutil
import struct
import subprocess
import tempfile
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

import numpy as np

from .. import __version__
from ..cache import atomic_write, default_cache_dir
from ..errors import ConfigError, TinyserError

THIRD_PARTY_ENV = "TINYSER_THIRD_PARTY"
ARCH_FLAGS = ("-mcpu=cortex-m4", "-mthumb", "-mfpu=fpv4-sp-d16", "-mfloat-abi=hard")
DEFINES = ("-DTF_LITE_STATIC_MEMORY", "-DTF_LITE_MCU_DEBUG_LOG", "-DCMSIS_NN")
TICK_INSTRUCTIONS = 40  # 25 MHz timer, 1 ns per instruction under -icount shift=0
CYCLES_PER_INSTRUCTION = 1.0
CLOCK_HZ = 64e6
QEMU_COMMAND = ("qemu-system-arm", "-M", "mps2-an386", "-cpu", "cortex-m4", "-nographic", "-monitor", "none",
                "-serial", "none", "-semihosting-config", "enable=on,target=native", "-icount", "shift=0")
STACK_BYTES = 8 * 1024  # reserved for the product's stack within the board's RAM
BOARD_LIMITS = {"nano33ble": (1024 * 1024, 256 * 1024)}  # flash, RAM
# Ops the firmware's TFLite Micro library carries (CMSIS-NN kernels where CMSIS-NN has them).
SUPPORTED_OPS = ("ADD", "AVERAGE_POOL_2D", "CONCATENATION", "CONV_2D", "DEPTHWISE_CONV_2D", "DEQUANTIZE",
                 "FULLY_CONNECTED", "LOGISTIC", "MAX_POOL_2D", "MEAN", "MUL", "QUANTIZE", "RELU", "RELU6",
                 "RESHAPE", "SOFTMAX")
_KERNELS = ("kernel_util", "micro_tensor_utils", "conv_common", "cmsis_nn/conv", "depthwise_conv_common",
            "cmsis_nn/depthwise_conv", "fully_connected_common", "cmsis_nn/fully_connected", "pooling_common",
            "cmsis_nn/pooling", "softmax_common", "cmsis_nn/softmax", "add_common", "cmsis_nn/add", "mul_common",
            "cmsis_nn/mul", "concatenation", "reduce", "reduce_common", "reshape", "reshape_common", "activations",
            "activations_common", "logistic", "logistic_common", "quantize", "quantize_common", "dequantize",
            "dequantize_common")
_CMSIS_NN_DIRS = ("ActivationFunctions", "BasicMathFunctions", "ConcatenationFunctions", "ConvolutionFunctions",
                  "FullyConnectedFunctions", "NNSupportFunctions", "PoolingFunctions", "SoftmaxFunctions")
_NOT_IN_LIBRARY = ("test_helpers", "test_helper_custom_ops", "fake_micro_context", "mock_micro_graph")


class ToolchainMissing(TinyserError):
    """arm-none-eabi-gcc, make or qemu-system-arm is not installed."""


class DoesNotFit(TinyserError):
    """The firmware does not fit the board's flash or RAM (the link failed)."""

    def __init__(self, message: str, overflow: dict[str, int]):
        super().__init__(message)
        self.overflow = overflow


# --------------------------------------------------------------------------- sources and toolchain

@dataclass(frozen=True)
class Tree:
    """A TensorFlow Lite Micro source tree: ``upstream`` (tflite-micro with CMSIS-NN
    and its pinned dependencies beside it) or ``arduino`` (the Arduino_TensorFlowLite
    library, TFLite Micro of February 2023)."""

    root: Path
    flavour: str
    version: str
    includes: tuple[str, ...]   # relative to root
    tflm: tuple[str, ...]       # library sources relative to root
    cmsis_nn: tuple[str, ...]


def find_tree(tflm: str | os.PathLike | None = None) -> Tree:
    """The TFLite Micro tree at ``tflm``, else ``$TINYSER_THIRD_PARTY``; a one-line
    error names the folder and what is missing.

    >>> find_tree("../shared/third_party").flavour              # doctest: +SKIP
    'upstream'
    """
    if tflm is None:
        tflm = os.environ.get(THIRD_PARTY_ENV)
        if not tflm:
            raise ConfigError(f"no TFLite Micro sources: pass --tflm DIR or set {THIRD_PARTY_ENV} (a folder with "
                              "tflite-micro/, cmsis_nn/, flatbuffers/, gemmlowp/, ruy/, cmsis/)")
    root = Path(tflm).expanduser().resolve()
    if not root.is_dir():
        raise ConfigError(f"{tflm}: TFLite Micro sources not found (no such folder)")
    props = root / "library.properties"
    if props.is_file() and "name=Arduino_TensorFlowLite" in props.read_text(errors="replace"):
        return _arduino_tree(root)
    missing = [d for d in ("tflite-micro/tensorflow/lite/micro", "cmsis_nn/Source", "flatbuffers/include",
                           "gemmlowp", "ruy", "cmsis/CMSIS/Core/Include") if not (root / d).is_dir()]
    if missing:
        raise ConfigError(f"{tflm}: not a TFLite Micro source tree (missing {missing[0]}/; expected tflite-micro/, "
                          "cmsis_nn/, flatbuffers/, gemmlowp/, ruy/, cmsis/ as in ../shared/third_party)")
    t = "tflite-micro/tensorflow/lite"
    core = [p for p in _glob(root, f"{t}/micro", "*.cc") + _glob(root, f"{t}/micro/arena_allocator", "*.cc")
            + _glob(root, f"{t}/micro/memory_planner", "*.cc") + _glob(root, f"{t}/micro/tflite_bridge", "*.cc")
            + _glob(root, f"{t}/kernels/internal", "*.cc") if not _excluded(p)]
    core += [f"{t}/core/c/common.cc", f"{t}/core/api/flatbuffer_conversions.cc", f"{t}/core/api/tensor_utils.cc",
             f"{t}/kernels/internal/reference/portable_tensor_utils.cc", f"{t}/kernels/kernel_util.cc",
             "tflite-micro/tensorflow/compiler/mlir/lite/schema/schema_utils.cc",
             "tflite-micro/tensorflow/compiler/mlir/lite/core/api/error_reporter.cc"]
    core += [f"{t}/micro/kernels/{k}.cc" for k in _KERNELS]
    cmsis = [p for d in _CMSIS_NN_DIRS for p in _glob(root, f"cmsis_nn/Source/{d}", "*.c")
             if not p.endswith(("_f16.c", "_f32.c"))]
    absent = [p for p in core if not (root / p).is_file()]
    if absent:
        raise ConfigError(f"{tflm}: TFLite Micro source {absent[0]} not found (a different tflite-micro version?)")
    return Tree(root, "upstream", _git_note(root, "tflite-micro"),
                ("tflite-micro", "flatbuffers/include", "gemmlowp", "ruy", "cmsis_nn", "cmsis_nn/Include",
                 "cmsis/CMSIS/Core/Include"), tuple(core), tuple(cmsis))


def _arduino_tree(root: Path) -> Tree:
    props = dict(line.split("=", 1) for line in (root / "library.properties").read_text().splitlines() if "=" in line)
    src = "src/tensorflow/lite"
    # left out: what needs the Arduino core or its peripherals (timing, board set-up) and the harness's own
    skip = _NOT_IN_LIBRARY + ("all_ops_resolver", "recording_micro_allocator", "micro_time", "system_setup",
                              "micro_profiler", "debug_log")
    core = [p for p in _glob(root, f"{src}/micro", "*.cpp") + _glob(root, f"{src}/micro/arena_allocator", "*.cpp")
            + _glob(root, f"{src}/micro/memory_planner", "*.cpp") + _glob(root, f"{src}/micro/tflite_bridge", "*.cpp")
            + _glob(root, f"{src}/kernels/internal", "*.cpp") + _glob(root, f"{src}/core/c", "*.cpp")
            + _glob(root, f"{src}/core/api", "*.cpp") + _glob(root, f"{src}/schema", "*.cpp")
            + _glob(root, f"{src}/kernels", "*.cpp")
            if Path(p).stem not in skip]
    core += [p for p in _glob(root, f"{src}/kernels/internal/reference", "*.cpp")]
    kernels = [f"{src}/micro/kernels/{k}.cpp" for k in _KERNELS
               if (root / f"{src}/micro/kernels/{k}.cpp").is_file()]  # some *_common live in the kernel's file
    missing = [k for k in _KERNELS if k.startswith("cmsis_nn/") and f"{src}/micro/kernels/{k}.cpp" not in kernels]
    if missing:
        raise ConfigError(f"{root}: Arduino_TensorFlowLite lacks kernel {missing[0]}")
    cmsis = [p for d in _CMSIS_NN_DIRS for p in _glob(root, f"src/third_party/cmsis_nn/Source/{d}", "*.c")
             if not p.endswith(("_f16.c", "_f32.c"))]
    return Tree(root, "arduino", f"Arduino_TensorFlowLite {props.get('version', '?')} ({_git_note(root.parent, root.name)})",
                ("src", "src/third_party/flatbuffers/include", "src/third_party/gemmlowp", "src/third_party/ruy",
                 "src/third_party/cmsis_nn", "src/third_party/cmsis_nn/Include", "src/third_party/cmsis/CMSIS/Core/Include"),
                tuple(dict.fromkeys(core + kernels)), tuple(cmsis))


def _glob(root: Path, folder: str, pattern: str) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in (root / folder).glob(pattern) if p.is_file())


def _excluded(rel: str) -> bool:
    stem = Path(rel).stem
    return stem.endswith("_test") or stem in _NOT_IN_LIBRARY


def _git_note(root: Path, sub: str) -> str:
    """The pinned commit from a README beside the tree, when it says one."""
    readme = root / "README.md"
    if readme.is_file():
        m = re.search(rf"`{re.escape(sub.rstrip('/'))}/`[^|]*\|[^|]*\|\s*([0-9a-f]{{40}})", readme.read_text())
        if m:
            return m.group(1)[:12]
    return "unknown commit"


def toolchain() -> dict[str, str]:
    """Versions of the cross compiler and the emulator; :class:`ToolchainMissing` names
    what is absent and how to install it.

    >>> toolchain()["gcc"]                                        # doctest: +SKIP
    'arm-none-eabi-gcc (15:12.2.rel1-1) 12.2.1 20221205'
    """
    need = {"gcc": "arm-none-eabi-gcc", "g++": "arm-none-eabi-g++", "make": "make", "qemu": "qemu-system-arm"}
    missing = [exe for exe in need.values() if shutil.which(exe) is None]
    if missing:
        raise ToolchainMissing(f"{missing[0]}: not installed (Debian: apt-get install gcc-arm-none-eabi "
                               "libnewlib-arm-none-eabi libstdc++-arm-none-eabi-newlib qemu-system-arm make)")
    out = {}
    for key in ("gcc", "qemu"):
        proc = subprocess.run([need[key], "--version"], capture_output=True, text=True)
        out[key] = proc.stdout.splitlines()[0].strip() if proc.stdout else "?"
    return out


# --------------------------------------------------------------------------- build

def _flags(opt: str, flavour: str = "upstream") -> dict[str, str]:
    arch = " ".join(ARCH_FLAGS)
    defines = DEFINES + (("-DARDUINO",) if flavour == "arduino" else ())  # that tree is configured for it
    common = f"{arch} {opt} -ffunction-sections -fdata-sections"
    return {
        "CFLAGS": common,
        "CXXFLAGS": f"{common} -std=c++17 -fno-rtti -fno-exceptions -fno-threadsafe-statics -fno-unwind-tables "
                    "-fno-asynchronous-unwind-tables -fno-use-cxa-atexit",
        "DEFS": " ".join(defines),
        "LDFLAGS": f"{arch} -nostartfiles --specs=nano.specs --specs=rdimon.specs -Wl,--gc-sections",
    }


def _obj_name(rel: str) -> str:
    return rel.replace("/", "__").replace("..", "_") + ".o"


def _library_makefile(tree: Tree, opt: str) -> str:
    f = _flags(opt, tree.flavour)
    inc = " ".join(f"-I$(TFLM)/{d}" for d in tree.includes)
    lines = [f"# TensorFlow Lite Micro + CMSIS-NN for a Cortex-M4F ({tree.flavour}: {tree.version}); generated by",
             f"# tinyser {__version__}. make -f library.mk TFLM=<sources> LIBDIR=<output folder> -j2",
             "TFLM ?= $(TINYSER_THIRD_PARTY)", "LIBDIR ?= lib",
             "CC := arm-none-eabi-gcc", "CXX := arm-none-eabi-g++", "AR := arm-none-eabi-ar",
             f"CFLAGS := {f['CFLAGS']} -w", f"CXXFLAGS := {f['CXXFLAGS']} -w", f"DEFS := {f['DEFS']}",
             f"INC := {inc}", "",
             "all: $(LIBDIR)/libtflm.a $(LIBDIR)/libcmsisnn.a", ""]
    for name, srcs in (("libtflm", tree.tflm), ("libcmsisnn", tree.cmsis_nn)):
        objs = " \\\n  ".join(f"$(LIBDIR)/obj/{_obj_name(s)}" for s in srcs)
        lines += [f"{name.upper()}_OBJS := \\\n  {objs}", "",
                  f"$(LIBDIR)/{name}.a: $({name.upper()}_OBJS)", "\t@rm -f $@", "\t$(AR) rcs $@ $^", ""]
    for s in tree.tflm + tree.cmsis_nn:
        compiler = "$(CC) $(CFLAGS) -std=gnu11" if s.endswith(".c") else "$(CXX) $(CXXFLAGS)"
        lines += [f"$(LIBDIR)/obj/{_obj_name(s)}: $(TFLM)/{s}", "\t@mkdir -p $(dir $@)",
                  f"\t{compiler} $(DEFS) $(INC) -c $< -o $@"]
    return "\n".join(lines) + "\n"


_DSP_PARTS = ("TransformFunctions", "CommonTables", "FastMathFunctions", "BasicMathFunctions", "StatisticsFunctions",
              "ComplexMathFunctions", "MatrixFunctions", "SupportFunctions")


def _app_makefile(tree: Tree, opt: str, cmsis_dsp: str | None = None) -> str:
    f = _flags(opt, tree.flavour)
    inc = " ".join(f"-I$(TFLM)/{d}" for d in tree.includes)
    dsp = ""
    if cmsis_dsp:  # the frontend on CMSIS-DSP's arm_mfcc_f32 (TINYSER_USE_CMSIS_DSP), no fused multiply-adds
        objs = " ".join(f"$(BUILD)/dsp_{part}.o" for part in _DSP_PARTS)
        dsp = "\n".join([
            ".DEFAULT_GOAL := all", f"DSP := {cmsis_dsp}", "DSP_INC := -I$(DSP)/Include -I$(DSP)/PrivateInclude",
            "FRONTEND_DEFS := -DTINYSER_USE_CMSIS_DSP $(DSP_INC) -ffp-contract=off", f"DSP_OBJS := {objs}",
            *(f"$(BUILD)/dsp_{part}.o: $(DSP)/Source/{part}/{part}.c\n\t@mkdir -p $(BUILD)\n"
              "\t$(CC) $(CFLAGS) -std=gnu11 -ffp-contract=off -w $(DSP_INC) $(INC) -c $< -o $@" for part in _DSP_PARTS),
            ""])
    return dsp + f"""# tinyser firmware for a Cortex-M4F, run in QEMU mps2-an386 (see README.md); generated by tinyser {__version__}.
#   make TFLM=<TFLite Micro sources> LIBDIR=<folder of libtflm.a, libcmsisnn.a>
#   make lib TFLM=... LIBDIR=...      builds the library first ({tree.flavour}: {tree.version})
TFLM ?= $(TINYSER_THIRD_PARTY)
LIBDIR ?= lib
BUILD ?= build
CC := arm-none-eabi-gcc
CXX := arm-none-eabi-g++
CFLAGS := {f['CFLAGS']} -Wall
CXXFLAGS := {f['CXXFLAGS']} -Wall -Wno-unused-parameter
DEFS := {f['DEFS']}
INC := -I. {inc}
LDFLAGS := {f['LDFLAGS']} -T firmware.ld -Wl,-Map=$(BUILD)/tinyser.map
OBJS := $(BUILD)/tinyser_frontend.o $(BUILD)/tinyser_tables.o $(BUILD)/tinyser_runtime.o $(BUILD)/model_data.o \\
        $(BUILD)/firmware_verify.o $(BUILD)/firmware_startup.o $(patsubst %.cpp,$(BUILD)/%.o,$(wildcard firmware_debug_log.cpp))

all: $(BUILD)/tinyser.elf
lib:
\t$(MAKE) -f library.mk TFLM=$(TFLM) LIBDIR=$(LIBDIR)
$(BUILD)/tinyser_%.o: tinyser_%.c tinyser_tables.h tinyser_config.h tinyser_frontend.h
\t@mkdir -p $(BUILD)
\t$(CC) $(CFLAGS) -std=c99 -pedantic -Wextra -Wdouble-promotion $(FRONTEND_DEFS) $(INC) -c $< -o $@
$(BUILD)/%.o: %.cpp tinyser_tables.h tinyser_config.h model_ops.h
\t@mkdir -p $(BUILD)
\t$(CXX) $(CXXFLAGS) $(DEFS) -DTINYSER_INPUT_HOOK=tinyser_harness_input $(FRONTEND_DEFS) $(INC) -c $< -o $@
$(BUILD)/firmware_startup.o: firmware_startup.c
\t@mkdir -p $(BUILD)
\t$(CC) $(CFLAGS) -std=gnu11 -c $< -o $@
$(BUILD)/tinyser.elf: $(OBJS) $(DSP_OBJS) firmware.ld $(LIBDIR)/libtflm.a $(LIBDIR)/libcmsisnn.a
\t$(CXX) $(LDFLAGS) -o $@ $(OBJS) $(DSP_OBJS) $(LIBDIR)/libtflm.a $(LIBDIR)/libcmsisnn.a -lm
"""


def _linker_script(board: str | None) -> str:
    flash, ram = BOARD_LIMITS[board] if board else (4 * 1024 * 1024, 2 * 1024 * 1024)
    text = (resources.files(__package__) / "c" / "firmware.ld").read_text()
    name = {"nano33ble": "Arduino Nano 33 BLE Sense, nRF52840"}.get(board or "", "none: the emulator's memory")
    for key, value in (("@FLASH@", f"{flash // 1024}K"), ("@RAM@", f"{ram // 1024}K"), ("@STACK@", str(STACK_BYTES)),
                       ("@BOARD@", name), ("@VERSION@", __version__)):
        text = text.replace(key, value)
    return text


def library_key(tree: Tree, opt: str, gcc: str) -> str:
    """Cache key of the static library: the bytes of every source and header it is
    built from, the Makefile (flags, file list) and the compiler's version.

    >>> len(library_key(find_tree(), "-O2", "gcc 12"))             # doctest: +SKIP
    16
    """
    h = hashlib.blake2b(digest_size=8)
    h.update(_library_makefile(tree, opt).encode())
    h.update(gcc.encode())
    files = set(tree.tflm + tree.cmsis_nn)
    for inc in tree.includes:
        base = tree.root / inc
        for dirpath, _, names in os.walk(base):
            files.update(str(Path(dirpath, n).relative_to(tree.root)) for n in names
                         if n.endswith((".h", ".hpp", ".inc")))
    for rel in sorted(files):
        h.update(rel.encode())
        h.update((tree.root / rel).read_bytes())
    return h.hexdigest()


def build_library(tree: Tree, opt: str = "-O2", jobs: int = 2, cache: str | os.PathLike | None = None,
                  log=None) -> Path:
    """The folder holding ``libtflm.a`` and ``libcmsisnn.a`` for ``tree`` built with
    ``opt``: reused from the cache when its key matches, else built (``make -j
    jobs``) into a temporary folder and renamed into place. A second process that
    needs the same library meanwhile waits for that build instead of compiling it too.

    >>> build_library(find_tree(), "-O2")                            # doctest: +SKIP
    PosixPath('/root/.cache/tinyser/firmware/upstream-O2-3f0c...')
    """
    gcc = toolchain()["gcc"]
    key = library_key(tree, opt, gcc)
    base = Path(cache) if cache else default_cache_dir() / "firmware"
    final = base / f"{tree.flavour}{opt}-{key}"

    def built() -> bool:
        return (final / "libtflm.a").is_file() and (final / "libcmsisnn.a").is_file()

    if built():
        return final
    base.mkdir(parents=True, exist_ok=True)
    with _waiting_lock(base / f".{final.name}.lock"):
        if built():  # built by the process that held the lock
            return final
        _build_library(tree, opt, jobs, final, log)
    return final


@contextlib.contextmanager
def _waiting_lock(path: Path):
    """An exclusive advisory lock on ``path``, waited for and held for the ``with`` block (none on Windows)."""
    try:
        import fcntl
    except ImportError:
        yield
        return
    with open(path, "a") as f:
        fcntl.flock(f.fileno(), fcntl.LOCK_EX)
        yield


def _build_library(tree: Tree, opt: str, jobs: int, final: Path, log) -> None:
    base = final.parent
    work = Path(tempfile.mkdtemp(prefix=f".{final.name}.", dir=base))
    try:
        (work / "library.mk").write_text(_library_makefile(tree, opt))
        if log:
            log(f"building TensorFlow Lite Micro + CMSIS-NN ({len(tree.tflm) + len(tree.cmsis_nn)} sources, "
                f"{opt}, -j{jobs}) into {final} (once)")
        proc = subprocess.run(["make", "-f", "library.mk", f"-j{max(1, jobs)}", f"TFLM={tree.root}", "LIBDIR=."],
                              cwd=work, capture_output=True, text=True)
        if proc.returncode != 0:
            raise TinyserError(f"{tree.root}: building TensorFlow Lite Micro failed: {_first_error(proc.stderr)}")
        shutil.rmtree(work / "obj", ignore_errors=True)
        try:
            os.replace(work, final)
        except OSError:  # another process got there first
            if not (final / "libtflm.a").is_file():
                raise
    finally:
        if work.exists():
            shutil.rmtree(work, ignore_errors=True)


def _first_error(stderr: str) -> str:
    lines = [ln.strip() for ln in stderr.splitlines() if ln.strip()]
    for ln in lines:
        if "error" in ln.lower():
            return ln[:300]
    return (lines[-1] if lines else "no output")[:300]


@dataclass
class Firmware:
    """A built firmware: its folder, ELF image, linker map and the TFLite Micro tree."""

    folder: Path
    elf: Path
    map: Path
    tree: Tree
    board: str | None
    opt: str
    library: Path
    tools: dict = field(default_factory=dict)


FIRMWARE_FILES = ("firmware_verify.cpp", "firmware_startup.c")


def build_firmware(model_path: str | os.PathLike, out: str | os.PathLike, tflm: str | os.PathLike | None = None,
                   board: str | None = "nano33ble", opt: str = "-O2", jobs: int = 2, hop: float | None = None,
                   overwrite: bool = False, allow_arduino: bool = False, cache: str | os.PathLike | None = None,
                   log=None, cmsis_dsp: bool = False, vad: bool = True) -> Firmware:
    """Generate and build the firmware of ``model_path`` in ``out``.

    ``board="nano33ble"`` links with the Nano 33 BLE Sense's 1 MB flash and 256 KB
    RAM (:class:`DoesNotFit` when it does not fit); ``board=None`` with the
    emulator's memory, to measure a model that does not fit. ``tflm``: the
    TFLite Micro sources (see :func:`find_tree`). The Arduino_TensorFlowLite
    library is refused unless ``allow_arduino``: its TFLite Micro (February 2023)
    computes MEAN and per-channel FULLY_CONNECTED differently. ``vad=False`` builds
    with ``TINYSER_VAD 0`` (every window scored; without prosody channels the
    frontend then skips the per-frame pitch and loudness analysis).

    >>> fw = build_firmware("default", "build/firmware", tflm="../shared/third_party")   # doctest: +SKIP
    >>> fw.elf.name   # doctest: +SKIP
    'tinyser.elf'
    """
    from ..tflite import model_ops
    from . import _check_out, _copy_static, _write_text, deploy_arduino, load_target

    tools = toolchain()
    tree = find_tree(tflm)
    if tree.flavour == "arduino" and not allow_arduino:
        raise ConfigError(f"{tree.root}: {arduino_warning(tree)}; pass a current tflite-micro tree "
                          "(or --allow-arduino to measure it anyway)")
    if opt not in ("-O2", "-Os", "-O3", "-O1"):
        raise ConfigError(f"optimisation {opt!r}: choose -O2, -Os, -O3 or -O1")
    t = load_target(_model_path(model_path))
    unsupported = [op for op in model_ops(t.blob) if op not in SUPPORTED_OPS]
    if unsupported:
        raise ConfigError(f"{t.path}: op {unsupported[0]} is not in the firmware's kernel set "
                          f"({', '.join(SUPPORTED_OPS)})")
    out = Path(out)
    _check_out(out, overwrite)
    if out.is_dir() and overwrite:
        for stale in ("build", "run"):
            shutil.rmtree(out / stale, ignore_errors=True)
    deploy_arduino(t.path, out, board="generic", hop=hop, overwrite=True)
    (out / "example_main.cpp").unlink(missing_ok=True)  # the harness has the main()
    if not vad:
        config = (out / "tinyser_config.h").read_text()
        if "#define TINYSER_VAD 1" not in config:
            raise TinyserError(f"{out / 'tinyser_config.h'}: no TINYSER_VAD setting to turn off")
        _write_text(out / "tinyser_config.h", config.replace("#define TINYSER_VAD 1", "#define TINYSER_VAD 0"))
    for name in FIRMWARE_FILES:
        _copy_static(name, out / name)
    if tree.flavour == "arduino":  # its DebugLog lives in the Arduino core: print through semihosting
        _write_text(out / "firmware_debug_log.cpp", '#include <stdio.h>\nextern "C" void DebugLog(const char *s) '
                    '{ fputs(s, stderr); }\n')
    else:
        (out / "firmware_debug_log.cpp").unlink(missing_ok=True)
    _write_text(out / "firmware.ld", _linker_script(board))
    dsp = None
    if cmsis_dsp:
        dsp = tree.root / "cmsis_dsp"
        if tree.flavour != "upstream" or not (dsp / "Source" / "TransformFunctions").is_dir():
            raise ConfigError(f"{tree.root}: no CMSIS-DSP sources (cmsis_dsp/) for the CMSIS-DSP frontend")
    _write_text(out / "Makefile", _app_makefile(tree, opt, str(dsp) if dsp else None))
    _write_text(out / "library.mk", _library_makefile(tree, opt))
    library = build_library(tree, opt, jobs, cache, log)
    proc = subprocess.run(["make", f"-j{max(1, jobs)}", f"TFLM={tree.root}", f"LIBDIR={library}"], cwd=out,
                          capture_output=True, text=True)
    if proc.returncode != 0:
        overflow = {m.group(1): int(m.group(2)) for m in
                    re.finditer(r"region `(\w+)' overflowed by (\d+) bytes", proc.stderr)}
        if overflow:
            what = ", ".join(f"{region} overflowed by {n:,} bytes" for region, n in overflow.items())
            raise DoesNotFit(f"{t.path}: does not fit the {board} ({what}; the board has "
                             f"{BOARD_LIMITS[board][0] // 1024} KB flash, {BOARD_LIMITS[board][1] // 1024} KB RAM)",
                             overflow)
        raise TinyserError(f"{out}: firmware build failed: {_first_error(proc.stderr)}")
    if not (out / "build" / "tinyser.elf").is_file():
        raise TinyserError(f"{out}: the firmware build made no build/tinyser.elf")
    return Firmware(out, out / "build" / "tinyser.elf", out / "build" / "tinyser.map", tree, board, opt, library,
                    tools)


def _model_path(model) -> Path:
    if str(model) == "default":
        from ..inference import DEFAULT_MODEL

        return DEFAULT_MODEL
    return Path(model)


def arduino_warning(tree: Tree | None = None) -> str:
    """The one line said about the Arduino_TensorFlowLite library.

    >>> arduino_warning().startswith("Arduino_TensorFlowLite")
    True
    """
    version = f" ({tree.version})" if tree else ""
    return (f"Arduino_TensorFlowLite{version} carries TFLite Micro of February 2023, which averages MEAN in float "
            "and computes per-channel-quantised FULLY_CONNECTED as per-tensor: its scores differ from the PC's")


# --------------------------------------------------------------------------- footprint

_FLASH_SECTIONS = (".vectors", ".text", ".rodata", ".ARM.extab", ".ARM.exidx", ".preinit_array", ".init_array",
                   ".fini_array", ".data")
_RAM_SECTIONS = (".data", ".bss", ".stack")


def _component(source: str, section: str) -> str:
    name = source.rsplit("/", 1)[-1]
    if "libtflm.a(" in source:
        return "tflm_kernels" if "__kernels__" in name and "kernels__internal" not in name else "tflm_interpreter"
    if "libcmsisnn.a(" in source:
        return "cmsis_nn"
    if name.startswith("model_data"):
        return "model"
    if name.startswith("tinyser_tables"):
        return "frontend_tables"
    if name.startswith("tinyser_frontend"):
        return "frontend_state" if section.startswith(".bss") else "frontend_code"
    if name.startswith("tinyser_runtime"):
        if "tensor_arena" in section:
            return "arena"
        if re.search(r"frontend", section):
            return "frontend_state"
        if re.search(r"window|frame", section):
            return "buffers"
        return "runtime"
    if name.startswith("dsp_"):
        return "cmsis_dsp"
    if name.startswith(("firmware_verify", "firmware_startup")):
        return "harness"
    if section.startswith(".stack") or "linker stubs" in source:
        return "stack" if section.startswith(".stack") else "libc"
    return "libc"  # newlib, libm, libstdc++, libgcc, librdimon (semihosting)


def footprint(map_path: str | os.PathLike) -> dict:
    """Flash and RAM bytes by component from a GNU ld map of the firmware: flash
    ``model``, ``frontend_tables``, ``frontend_code``, ``runtime``, ``tflm_interpreter``,
    ``tflm_kernels``, ``cmsis_nn``, ``libc`` (toolchain libraries), ``harness``
    (emulator only); RAM ``arena``, ``frontend_state``, ``buffers`` (input window,
    frame), ``runtime`` (interpreter, resolver), ``tflm_*``, ``libc``, ``stack``
    (reserved). ``product`` totals leave the harness out.

    >>> footprint("build/firmware/build/tinyser.map")["flash"]["model"]   # doctest: +SKIP
    90936
    """
    text = Path(map_path).read_text(errors="replace")
    start = text.find("Linker script and memory map")
    lines = text[start:].splitlines() if start >= 0 else []
    flash: dict[str, int] = {}
    ram: dict[str, int] = {}
    out_section, pending = "", None
    sizes: dict[str, int] = {}      # output section -> its size
    entries: list[tuple[str, str, str, int]] = []
    entry = re.compile(r"^ (\S+)\s+0x([0-9a-f]+)\s+0x([0-9a-f]+)\s+(\S.*)$")
    wrapped = re.compile(r"^\s+0x([0-9a-f]+)\s+0x([0-9a-f]+)\s+(\S.*)$")
    for line in lines:
        m = re.match(r"^(\.[\w.]+)(?:\s+0x[0-9a-f]+\s+0x([0-9a-f]+))?", line)
        if m:
            out_section, pending = m.group(1), None
            if m.group(2):
                sizes[out_section] = int(m.group(2), 16)
            continue
        m = entry.match(line)
        if m:
            section, size, source = m.group(1), int(m.group(3), 16), m.group(4)
        elif pending and (m := wrapped.match(line)):
            section, size, source = pending, int(m.group(2), 16), m.group(3)
        else:
            pending = line.strip() if re.match(r"^ \S+$", line) and not line.strip().startswith("*") else None
            continue
        pending = None
        if size and not section.startswith("*fill*"):
            entries.append((out_section, section, _component(source, section), size))
    # merged string sections (.rodata.str*) are listed at their size before merging: scale them to the output
    for name in set(e[0] for e in entries):
        listed = sum(e[3] for e in entries if e[0] == name)
        strings = sum(e[3] for e in entries if e[0] == name and ".str" in e[1])
        excess = listed - sizes.get(name, listed)
        if excess > 0 and strings:
            keep = max(0.0, 1 - excess / strings)
            entries = [(o, sec, c, int(round(n * keep)) if o == name and ".str" in sec else n)
                       for o, sec, c, n in entries]
    for out_section, _, comp, size in entries:
        if out_section in _FLASH_SECTIONS:
            flash[comp] = flash.get(comp, 0) + size
        if out_section in _RAM_SECTIONS:
            ram[comp] = ram.get(comp, 0) + size
    if ".stack" in sizes:  # reserved by the linker script, no input section
        ram["stack"] = sizes[".stack"]
    for d in (flash, ram):
        d["product"] = sum(v for k, v in d.items() if k != "harness")
    return {"flash": flash, "ram": ram}


# --------------------------------------------------------------------------- run

def _clip_pcm(path: Path, sample_rate: int, max_seconds: float) -> np.ndarray:
    from ..audio import load

    x = load(path, sample_rate)[: int(max_seconds * sample_rate)]
    return np.clip(np.round(np.asarray(x, np.float64) * 32768.0), -32768, 32767).astype(np.int16)


def default_clips(n: int, data: str | os.PathLike | None = None) -> list[Path]:
    """``n`` real clips, spread evenly over the sorted audio files of each corpus
    under ``data`` (default ``$TINYSER_DATA``, else ``../shared/data``), alternating
    between corpora: a fixed, reproducible choice.

    >>> [p.name for p in default_clips(2)]                           # doctest: +SKIP
    ['03a01Fa.flac', '03-01-01-01-01-01-01.wav']
    """
    root = Path(data or os.environ.get("TINYSER_DATA") or "../shared/data")
    if not root.is_dir():
        raise ConfigError(f"{root}: no audio folder (pass --data or set TINYSER_DATA)")
    corpora = [root] if any(root.glob("*.wav")) or any(root.glob("*.flac")) else sorted(
        p for p in root.iterdir() if p.is_dir())
    lists = [sorted(q for q in c.rglob("*") if q.suffix.lower() in (".wav", ".flac")) for c in corpora]
    lists = [files for files in lists if files]
    if not lists:
        raise ConfigError(f"{root}: no .wav or .flac files")
    per = [n // len(lists) + (1 if i < n % len(lists) else 0) for i in range(len(lists))]
    chosen = []
    for files, k in zip(lists, per):
        idx = np.linspace(0, len(files) - 1, min(k, len(files))).astype(int) if k else []
        chosen.append([files[i] for i in idx])
    out = [c for group in zip(*[g + [None] * (max(per) - len(g)) for g in chosen]) for c in group if c is not None]
    return out[:n]


def host_pipeline(model_path: str | os.PathLike, pcm: np.ndarray, hop: float | None = None) -> tuple[
        np.ndarray, np.ndarray, list[int]]:
    """What the device computes for one clip of 16-bit PCM, computed on the host:
    the model inputs (Python frontend, standardisation over the clip as one
    stream, quantisation) of every window ``tinyser_push`` considers (the first
    once the window is full, then every hop; the device scores those its voice
    activity accepts), the int8 outputs of the ``tflite_micro`` interpreter on
    them, and the number of frames heard at each.
    Returns ``(inputs int8 (k, frames, features), outputs int8 (k, classes), frames)``.

    >>> x, y, frames = host_pipeline("default", np.zeros(48000, np.int16))    # doctest: +SKIP
    >>> y.shape, frames   # doctest: +SKIP
    ((2, 6), [125, 187])
    """
    from ..inference import load_model
    from . import load_target

    t = load_target(_model_path(model_path))
    key = ("model", hashlib.blake2b(t.blob, digest_size=8).hexdigest())
    if key not in _MODELS:
        _MODELS.clear()
        _MODELS[key] = load_model(t.path)
    model = _MODELS[key]
    cfg, n_frames, hop_frames = t.config, t.n_frames, t.hop_frames(hop)
    total = 0 if len(pcm) < cfg.frame_length else (len(pcm) - cfg.frame_length) // cfg.hop_length + 1
    first = max(n_frames, hop_frames)
    ends = list(range(first, total + 1, hop_frames))
    span = (n_frames - 1) * cfg.hop_length + cfg.frame_length
    audio = pcm.astype(np.float32) / np.float32(32768.0)
    width = int(np.prod(model.runtime.input_shape)) // n_frames
    if not ends:
        return np.zeros((0, n_frames, width), np.int8), np.zeros((0, len(t.labels)), np.int8), []
    segments = np.stack([audio[(e - n_frames) * cfg.hop_length:(e - n_frames) * cfg.hop_length + span]
                         for e in ends])
    raw = model.frontend.features(segments)
    # the device updates its adaptive statistics once per window from the frames new since the previous one
    fresh = np.diff([0, *ends]).clip(max=n_frames)
    x = model.runtime.quantise(model.frontend.standardize_streams(raw, [list(range(len(ends)))], fresh))
    return x.reshape(len(ends), n_frames, width), _tflm_outputs(t.blob, x), ends


_TFLM_CACHE: dict = {}
_MODELS: dict = {}


def _tflm_outputs(blob: bytes, x: np.ndarray) -> np.ndarray:
    from ..tflite import TFLMModel

    key = hashlib.blake2b(blob, digest_size=8).hexdigest()
    if key not in _TFLM_CACHE:
        _TFLM_CACHE.clear()
        _TFLM_CACHE[key] = TFLMModel(blob)
    micro = _TFLM_CACHE[key]
    shape = tuple(micro.input_details["shape"][1:])
    return np.stack([micro.predict_raw(row.reshape(1, *shape))[0] for row in x]).astype(np.int8)


def run_firmware(fw: Firmware, windows: np.ndarray, clips: list[np.ndarray], timeout: float = 900) -> list[str]:
    """Run ``fw`` in QEMU on model inputs ``windows`` (int8) and clips of 16-bit
    PCM; the lines it printed. The run folder is ``fw.folder / "run"``."""
    run = fw.folder / "run"
    run.mkdir(parents=True, exist_ok=True)
    head = b"TSIN" + struct.pack("<II", len(windows), len(clips))

    def write(f):
        f.write(head)
        f.write(np.ascontiguousarray(windows, np.int8).tobytes())
        for c in clips:
            f.write(struct.pack("<I", len(c)))
            f.write(np.ascontiguousarray(c, "<i2").tobytes())

    atomic_write(run / "tinyser_in.bin", write)
    cmd = [*QEMU_COMMAND, "-kernel", str(fw.elf.resolve())]
    try:
        proc = subprocess.run(cmd, cwd=run, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        raise TinyserError(f"{fw.elf}: QEMU did not finish within {timeout:.0f} s") from None
    lines = proc.stdout.splitlines()
    (run / "qemu.log").write_text(proc.stdout + proc.stderr)
    errors = [ln for ln in lines if ln.startswith(("ERROR", "FAULT"))]
    if errors or "DONE" not in lines:
        why = errors[0] if errors else (proc.stderr.strip().splitlines() or ["no DONE line"])[-1]
        raise TinyserError(f"{fw.elf}: the firmware failed in QEMU: {why} (log: {run / 'qemu.log'})")
    return lines


def _parse(lines: list[str]) -> dict:
    out: dict = {"windows": {}, "ops": [], "clips": {}, "results": {}, "inputs": {}}
    for line in lines:
        p = line.split()
        if not p:
            continue
        if p[0] == "BEGIN":
            out["begin_ticks"] = int(p[1])
        elif p[0] == "ARENA":
            out["arena_used"], out["arena_size"] = int(p[1]), int(p[2])
        elif p[0] == "W":
            out["windows"][int(p[1])] = (int(p[2]), [int(v) for v in p[3:]])
        elif p[0] == "OP":
            out["ops"].append((p[2], int(p[3])))
        elif p[0] == "CLIP":
            out["clips"][int(p[1])] = dict(zip(("samples", "ticks", "inferences", "stack", "plain_pushes",
                                                "plain_samples", "plain_ticks", "scored_ticks"), map(int, p[2:])))
        elif p[0] == "R":  # R clip k frames label scores... input-hex
            out["results"].setdefault(int(p[1]), []).append(
                {"frames": int(p[3]), "label": int(p[4]), "bits": [int(v, 16) for v in p[5:-1]],
                 "input": np.frombuffer(bytes.fromhex(p[-1]), np.int8)})
        elif p[0] == "STACK":
            out["stack"] = int(p[1])
    return out


def _score_bits(outputs: np.ndarray, scale: float, zero_point: int) -> np.ndarray:
    """The float32 bits of ``(q - zero_point) * scale`` as tinyser_runtime.cpp computes them."""
    f = (outputs.astype(np.int32) - zero_point).astype(np.float32) * np.float32(scale)
    return f.view(np.uint32)


def op_macs(blob: bytes) -> list[tuple[str, int]]:
    """(op name, MACs) of every op of a flatbuffer in execution order (CONV_2D,
    DEPTHWISE_CONV_2D, FULLY_CONNECTED count multiply-accumulates; others 0).

    >>> sum(m for _, m in op_macs(Path("default.tflite").read_bytes()))   # doctest: +SKIP
    8130240
    """
    from ai_edge_litert.interpreter import Interpreter

    interp = Interpreter(model_content=blob)
    tensors = {d["index"]: d for d in interp.get_tensor_details()}
    out = []
    for op in interp._get_ops_details():
        name = op["op_name"]
        macs = 0
        if name in ("CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED"):
            weights = tensors[op["inputs"][1]]["shape"]
            outputs = int(np.prod(tensors[op["outputs"][0]]["shape"]))
            if name == "CONV_2D":
                macs = outputs * int(np.prod(weights[1:]))
            elif name == "DEPTHWISE_CONV_2D":
                macs = outputs * int(weights[1] * weights[2])
            else:
                macs = outputs * int(weights[-1])
        out.append((name, macs))
    return out


def verify(model_path: str | os.PathLike = "default", clips: list[str | os.PathLike] | None = None, n_clips: int = 30,
           data: str | os.PathLike | None = None, tflm: str | os.PathLike | None = None, out: str | os.PathLike | None = None,
           board: str | None = "nano33ble", opt: str = "-O2", jobs: int = 2, hop: float | None = None,
           max_seconds: float = 30.0, allow_arduino: bool = False, cache: str | os.PathLike | None = None,
           log=None, cmsis_dsp: bool = False, vad: bool = True) -> dict:
    """Build the firmware of ``model_path``, run it in QEMU on real clips (``clips``,
    else ``n_clips`` from :func:`default_clips`, each cut to ``max_seconds``) and
    compare it with the host; returns a JSON-able report (see :func:`verify_markdown`).
    ``cmsis_dsp``, ``vad``: the frontend's build options (see :func:`build_firmware`).

    * ``pipeline``: raw audio -> C frontend -> TFLite Micro + CMSIS-NN on the M4
      (``tinyser_push``) vs Python frontend -> ``tflite_micro``: the scores of every
      inference, compared bit for bit (``equal`` of ``inferences``).
    * ``model``: the host's int8 inputs through the M4's interpreter vs ``tflite_micro``.
    * ``footprint``, ``instructions``, ``real_time_factor``, ``stack_bytes``, ``arena``.

    >>> r = verify("default", n_clips=30, tflm="../shared/third_party")   # doctest: +SKIP
    >>> r["pipeline"]["equal"] == r["pipeline"]["inferences"]   # doctest: +SKIP
    True
    """
    import time

    from . import load_target

    t = load_target(_model_path(model_path))
    started = time.time()
    folder = Path(out) if out else Path(tempfile.mkdtemp(prefix="tinyser-firmware-"))
    fw = build_firmware(t.path, folder, tflm=tflm, board=board, opt=opt, jobs=jobs, hop=hop, overwrite=True,
                        allow_arduino=allow_arduino, cache=cache, log=log, cmsis_dsp=cmsis_dsp, vad=vad)
    built = time.time()
    paths = [Path(c) for c in clips] if clips else default_clips(n_clips, data)
    if log:
        log(f"{len(paths)} clips through the host pipeline")
    pcm = [_clip_pcm(p, t.config.sample_rate, max_seconds) for p in paths]
    host = [host_pipeline(t.path, c, hop) for c in pcm]
    width = host[0][0].shape[-1] if host else t.config.n_mfcc
    windows = np.concatenate([h[0] for h in host]) if host else np.zeros((0, t.n_frames, width), np.int8)
    if log:
        log(f"QEMU mps2-an386: {len(windows)} model inputs, {len(pcm)} clips of raw audio")
    hosted = time.time()
    lines = run_firmware(fw, windows, pcm)
    emulated = time.time()
    dev = _parse(lines)
    want = np.concatenate([h[1] for h in host]) if host else np.zeros((0, len(t.labels)), np.int8)
    got_model = np.array([dev["windows"][i][1] for i in range(len(windows))], np.int8).reshape(want.shape)
    model_equal = int(np.sum(np.all(got_model == want, axis=1)))
    pipe_equal = pipe_total = inputs_equal = bytes_differ = reproduced = max_diff = unexplained = 0
    mismatched = []
    for c, (host_x, outputs, ends) in enumerate(host):
        bits = _score_bits(outputs, t.output_scale, t.output_zero_point)
        for r in dev["results"].get(c, []):
            pipe_total += 1
            if r["frames"] not in ends:
                mismatched.append(f"{paths[c].name}: the device scored after {r['frames']} frames, off the host's "
                                  "schedule")
                continue
            h = ends.index(r["frames"])
            same = r["bits"] == [int(b) for b in bits[h]] and r["label"] == int(np.argmax(outputs[h]))
            pipe_equal += int(same)
            diff = np.abs(r["input"].astype(int) - host_x[h].reshape(-1).astype(int))
            inputs_equal += int(not diff.any())
            bytes_differ += int(np.count_nonzero(diff))
            max_diff = max(max_diff, int(diff.max()))
            # the device's own input through the host's tflite_micro gives the device's scores?
            y = _tflm_outputs(t.blob, r["input"][None])
            reproduced += int([int(b) for b in _score_bits(y, t.output_scale, t.output_zero_point)[0]] == r["bits"])
            unexplained += int(not same and not diff.any())
            if not same:
                mismatched.append(f"{paths[c].name} after {r['frames']} frames: the device's input differs from "
                                  f"Python's in {int(np.count_nonzero(diff))} of {diff.size} values, by at most "
                                  f"{int(diff.max())}")
    scheduled = sum(len(h[2]) for h in host)
    fp = footprint(fw.map)
    invoke = [dev["windows"][i][0] * TICK_INSTRUCTIONS for i in range(len(windows))]
    per_inference = float(np.median(invoke)) if invoke else float("nan")
    clips_dev = dev["clips"].values()
    plain_samples = sum(c["plain_samples"] for c in clips_dev)
    plain_ticks = sum(c["plain_ticks"] for c in clips_dev)
    plain_pushes = sum(c["plain_pushes"] for c in clips_dev)
    scored = sum(c["inferences"] for c in clips_dev)
    frontend_per_second = (plain_ticks * TICK_INSTRUCTIONS * t.config.sample_rate / plain_samples
                           if plain_samples else float("nan"))
    scored_push = (sum(c["scored_ticks"] for c in clips_dev) / scored - plain_ticks / plain_pushes
                   if scored and plain_pushes else float("nan")) * TICK_INSTRUCTIONS
    audio_seconds = sum(c["samples"] for c in clips_dev) / t.config.sample_rate
    pipeline_per_second = sum(c["ticks"] for c in clips_dev) * TICK_INSTRUCTIONS / audio_seconds
    hop_seconds = t.hop_frames(hop) * t.frame_seconds
    macs = op_macs(t.blob)
    ops = []
    for (tag, ticks), (_name, m) in zip(dev["ops"], macs):
        ops.append({"op": tag, "instructions": ticks * TICK_INSTRUCTIONS, "macs": m,
                    "instructions_per_mac": ticks * TICK_INSTRUCTIONS / m if m else None})
    total_macs = sum(m for _, m in macs)
    rtf = (per_inference / hop_seconds + frontend_per_second) * CYCLES_PER_INSTRUCTION / CLOCK_HZ
    report = {
        "model": t.path.name, "model_sha256": hashlib.sha256(t.blob).hexdigest(),
        "model_bytes": len(t.blob), "macs_per_inference": total_macs,
        "board": board, "fits": True if board else None,
        "tflm": {"flavour": fw.tree.flavour, "version": fw.tree.version, "root": str(fw.tree.root)},
        "toolchain": fw.tools, "opt": opt, "flags": " ".join(ARCH_FLAGS),
        "frontend": "CMSIS-DSP arm_mfcc_f32 (TINYSER_USE_CMSIS_DSP)" if cmsis_dsp else "portable C",
        "vad": vad, "n_features": int(width),
        "qemu_command": " ".join(QEMU_COMMAND) + " -kernel tinyser.elf",
        "clips": [str(p) for p in paths], "audio_seconds": audio_seconds,
        "pipeline": {"inferences": pipe_total, "equal": pipe_equal, "mismatched": mismatched[:20],
                     "windows_scheduled": scheduled, "skipped_by_voice_activity": scheduled - pipe_total,
                     "inputs_equal": inputs_equal, "input_bytes": int(pipe_total * t.n_frames * width),
                     "input_bytes_differing": bytes_differ, "input_max_diff": max_diff,
                     "device_outputs_reproduced_from_device_inputs": reproduced,
                     "unequal_with_equal_inputs": unexplained},
        "model_parity": {"inputs": len(windows), "equal": model_equal,
                         "max_lsb_diff": int(np.max(np.abs(got_model.astype(int) - want.astype(int))))
                         if len(want) else 0,
                         "classes_equal": int(np.sum(got_model.argmax(axis=1) == want.argmax(axis=1)))},
        "footprint": fp,
        "arena": {"used_on_device": dev.get("arena_used"), "allocated": dev.get("arena_size")},
        "stack_bytes": dev.get("stack"),
        "instructions": {
            "per_inference": per_inference, "per_mac": per_inference / total_macs if total_macs else None,
            "begin": dev.get("begin_ticks", 0) * TICK_INSTRUCTIONS,
            "frontend_per_audio_second": frontend_per_second,
            "pipeline_per_audio_second": pipeline_per_second,
            "scored_push_extra": scored_push,
            "per_op": ops,
        },
        "hop_seconds": hop_seconds, "clock_hz": CLOCK_HZ, "cycles_per_instruction": CYCLES_PER_INSTRUCTION,
        "inference_ms": 1e3 * per_inference * CYCLES_PER_INSTRUCTION / CLOCK_HZ,
        "frontend_ms_per_second": 1e3 * frontend_per_second * CYCLES_PER_INSTRUCTION / CLOCK_HZ,
        "real_time_factor": rtf,
        "tick_instructions": TICK_INSTRUCTIONS,
        "seconds": {"build": built - started, "host": hosted - built, "qemu": emulated - hosted,
                    "total": time.time() - started},
    }
    return report


def measure_fit(model_path: str | os.PathLike, tflm=None, board: str = "nano33ble", opt: str = "-O2",
                jobs: int = 2, cache=None, log=None) -> dict:
    """Whether the firmware of ``model_path`` links within ``board``'s memory:
    ``{"fits": bool, "overflow": {region: bytes}, "message": str}``.

    >>> measure_fit("light_sernet-int8.tflite")["fits"]              # doctest: +SKIP
    False
    """
    with tempfile.TemporaryDirectory(prefix="tinyser-fit-") as tmp:
        try:
            build_firmware(model_path, Path(tmp) / "fw", tflm=tflm, board=board, opt=opt, jobs=jobs, cache=cache,
                           log=log)
        except DoesNotFit as e:
            return {"fits": False, "overflow": e.overflow, "message": str(e)}
    return {"fits": True, "overflow": {}, "message": "links within the board's flash and RAM"}


def verify_markdown(r: dict) -> str:
    """A verify report as Markdown: parity, footprint, instructions, real-time factor."""
    def kb(n):
        return f"{n / 1024:.1f} KB"

    fl, ram, ins, p = r["footprint"]["flash"], r["footprint"]["ram"], r["instructions"], r["pipeline"]
    g = fl.get
    lines = [
        f"Model `{r['model']}` on an emulated Cortex-M4F (QEMU mps2-an386, {r['tflm']['flavour']} TFLite Micro "
        f"{r['tflm']['version']} + CMSIS-NN, {r['opt']}; frontend: {r.get('frontend', 'portable C')}):", "",
        "| | |", "|---|---|",
        f"| outputs equal (raw audio -> C frontend -> M4 vs Python frontend -> host tflite_micro) | "
        f"**{r['pipeline']['equal']}/{r['pipeline']['inferences']}** inferences of {len(r['clips'])} clips "
        f"({r['audio_seconds']:.1f} s of audio) |",
        f"| windows scored / considered (voice activity on the device) | {p['inferences']} / "
        f"{p.get('windows_scheduled', p['inferences'])} |",
        f"| model inputs equal (C frontend on the M4 vs Python frontend) | {p['inputs_equal']}/{p['inferences']} "
        f"windows; {p['input_bytes_differing']} of {p['input_bytes']:,} int8 values differ, by at most "
        f"{p['input_max_diff']} |",
        f"| model outputs equal (the host's int8 inputs through the M4's TFLite Micro) | "
        f"{r['model_parity']['equal']}/{r['model_parity']['inputs']}; the device's own inputs through the host's "
        f"tflite_micro give the device's scores {p['device_outputs_reproduced_from_device_inputs']}/{p['inferences']} |",
        f"| flash (product) | {kb(fl['product'])}: model {kb(g('model', 0))}, frontend tables "
        f"{kb(g('frontend_tables', 0))}, frontend code {kb(g('frontend_code', 0))}, runtime {kb(g('runtime', 0))}, "
        f"TFLite Micro {kb(g('tflm_interpreter', 0) + g('tflm_kernels', 0))} (interpreter "
        f"{kb(g('tflm_interpreter', 0))} + kernels {kb(g('tflm_kernels', 0))}), CMSIS-NN {kb(g('cmsis_nn', 0))}, "
        f"libc/libm/libstdc++ {kb(g('libc', 0))}" + (f", CMSIS-DSP {kb(g('cmsis_dsp'))}" if g("cmsis_dsp") else "")
        + " |",
        f"| RAM (product) | {kb(ram['product'])}: arena {kb(ram.get('arena', 0))} (used on the M4: "
        f"{r['arena']['used_on_device']:,} B), frontend state {kb(ram.get('frontend_state', 0))}, buffers "
        f"{kb(ram.get('buffers', 0))}, runtime {kb(ram.get('runtime', 0))}, TFLite Micro "
        f"{kb(ram.get('tflm_interpreter', 0) + ram.get('tflm_kernels', 0))}, libc {kb(ram.get('libc', 0))}, stack "
        f"reserve {kb(ram.get('stack', 0))} (high-water mark {r['stack_bytes']:,} B) |",
        f"| instructions per inference | {ins['per_inference'] / 1e6:.2f} M ({ins['per_mac']:.2f} per MAC) |",
        f"| frontend instructions per second of audio | {ins['frontend_per_audio_second'] / 1e6:.2f} M |",
        f"| streaming these clips through tinyser_push (inference every {r['hop_seconds']:.3f} s once a window "
        f"is full) | {ins['pipeline_per_audio_second'] / 1e6:.2f} M instructions per second of audio |",
        f"| latency at {r['clock_hz'] / 1e6:.0f} MHz, {r['cycles_per_instruction']:g} cycle per instruction (a lower "
        f"bound) | inference {r['inference_ms']:.0f} ms; frontend {r['frontend_ms_per_second']:.0f} ms per second "
        "of audio |",
        f"| real-time factor | {r['real_time_factor']:.2f} (>= this: a Cortex-M4 takes more than one cycle for "
        "some instructions) |",
    ]
    return "\n".join(lines)


#: measurements of the shipped model(s), written by benchmarks/device.py
_SHIPPED = Path(__file__).resolve().parents[1] / "assets" / "device.json"


def save_measurement(report: dict, cache: str | os.PathLike | None = None) -> Path:
    """Remember a verify report for its model (by the flatbuffer's SHA-256) so that
    :func:`tinyser.deploy.budget` shows measured figures for it."""
    path = (Path(cache) if cache else default_cache_dir() / "firmware") / "measured" / f"{report['model_sha256']}.json"
    atomic_write(path, lambda f: f.write(json.dumps(report, indent=1).encode()))
    return path


def find_measurement(blob: bytes) -> dict | None:
    """The measured device figures of a flatbuffer: the shipped ``assets/device.json``
    (written by ``benchmarks/device.py``) when it is of these bytes, else one saved
    by ``tinyser deploy verify`` in the cache; None when never measured."""
    digest = hashlib.sha256(blob).hexdigest()
    candidates = [_SHIPPED, default_cache_dir() / "firmware" / "measured" / f"{digest}.json"]
    for c in candidates:
        try:
            data = json.loads(c.read_text())
        except (OSError, ValueError):
            continue
        for r in data.get("models", [data]) if isinstance(data, dict) else []:
            if r.get("model_sha256") == digest and "instructions" in r:
                return r
    return None
