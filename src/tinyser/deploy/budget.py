"""The device budget of a deployed model: flash, RAM, compute per second of
audio, and an estimate of latency and real-time factor on a Cortex-M4F.

The estimate is arithmetic, not a measurement; the generated sketch prints
the real time of every inference (``compute_ms``) to check it against.

Assumptions (all stated in the returned dict and the deploy README):

* Model: ``CYCLES_PER_MAC`` = 2 cycles per int8 multiply-accumulate with
  TFLite Micro's CMSIS-NN kernels on a Cortex-M4. The M4's SMLAD does two
  16-bit MACs per cycle; CMSIS-NN widens int8 operands to 16 bits and feeds
  SMLAD (Lai, Suda & Chandra, "CMSIS-NN: Efficient Neural Network Kernels for
  Arm Cortex-M CPUs", arXiv:1801.06601, 2018), so its inner loops approach
  1 cycle/MAC; im2col, requantisation, the interpreter and this model's
  narrow layers (single-channel first convolutions) are taken to double it.
  TFLite Micro's reference (non-CMSIS-NN) kernels are roughly ten times slower.
* Frontend: single-precision FPU, counted per float add/multiply at
  ``CYCLES_PER_FLOP`` = 2 (operand loads and loop overhead included), 14
  cycles per VSQRT/VDIV (Cortex-M4 Technical Reference Manual) and
  ``CYCLES_PER_LOG`` = 100 per ``logf`` (a software routine).
* RAM counts the tensor arena (measured by TFLite Micro on the host, plus
  ``ARENA_MARGIN``), the audio ring buffer (Arduino sketch only), the
  model-input feature window and the frontend's buffers; not the Arduino
  core, the serial/PDM drivers or TFLite Micro's interpreter object (a few KB).
* Flash counts the model flatbuffer and the frontend tables; not code (TFLite
  Micro with the model's kernels, typically tens of KB).
"""
from __future__ import annotations

import dataclasses
import math
import os
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from ..errors import ConfigError
from .target import Target, load_target, tables_bytes

CYCLES_PER_MAC = 2.0
CYCLES_PER_FLOP = 2.0
CYCLES_PER_SQRT_OR_DIV = 14.0
CYCLES_PER_LOG = 100.0
CYCLES_PER_MAC_SOURCE = (
    "assumed 2 cycles per int8 MAC with CMSIS-NN kernels on a Cortex-M4: SMLAD gives 2 16-bit MACs per cycle "
    "and CMSIS-NN's int8 kernels widen operands to feed it (Lai et al., arXiv:1801.06601), ~1 cycle/MAC in "
    "inner loops, doubled for im2col, requantisation, interpreter overhead and narrow layers")


def arena_margin(measured: int) -> int:
    """Arena bytes to allocate for a measured need: +10 % + 2 KB, rounded up to 16.
    The host's 64-bit TFLite Micro measures it; the device's 32-bit structs are
    smaller, but CMSIS-NN kernels may ask for scratch buffers the reference
    kernels do not.

    >>> arena_margin(56288)
    63968
    """
    return int(math.ceil((measured * 1.10 + 2048) / 16) * 16)


@dataclass(frozen=True)
class Board:
    """What the estimate assumes about a board."""

    name: str
    clock_hz: float
    ram_bytes: int | None
    flash_bytes: int | None
    has_audio_ring: bool


BOARDS = {
    "nano33ble": Board("Arduino Nano 33 BLE Sense (nRF52840, Cortex-M4F)", 64e6, 256 * 1024, 1024 * 1024, True),
    "generic": Board("generic Cortex-M4F (estimated at 64 MHz)", 64e6, None, None, False),
}


def get_board(board: str) -> Board:
    """The :class:`Board` called ``board``; ConfigError naming the choices otherwise.

    >>> get_board("nano33ble").clock_hz
    64000000.0
    """
    if board not in BOARDS:
        raise ConfigError(f"unknown board {board!r}; choose one of {', '.join(BOARDS)}")
    return BOARDS[board]


@lru_cache(maxsize=8)
def measured_arena(blob: bytes) -> int:
    """TFLite Micro's arena need for a flatbuffer (cached: the measurement runs
    the model in a child process).

    >>> from tinyser.inference import DEFAULT_MODEL
    >>> measured_arena(DEFAULT_MODEL.read_bytes())
    41088
    """
    from ..tflite import find_arena_size

    return find_arena_size(blob)


def frontend_ops(t: Target) -> dict[str, int]:
    """Floating-point work of one feature frame, by kind: ``flops`` (adds and
    multiplies), ``sqrt_div`` (square roots and divisions) and ``log``.

    >>> from tinyser.inference import DEFAULT_MODEL
    >>> target = load_target(DEFAULT_MODEL)
    >>> frontend_ops(target)["log"]
    42
    """
    cfg = t.config
    n, half = cfg.frame_length, cfg.frame_length // 2
    fft = 5 * half * int(math.log2(half))           # radix-2 complex FFT of N/2 points: 10 flops a butterfly
    split = 16 * (half - 1)                         # N/2 complex points -> N/2+1 real-FFT bins
    mel = 2 * int(sum(int(v) for v in _filter_len(cfg)))
    flops = 3 * n + fft + split + 4 * (half + 1) + mel + cfg.n_mels + 2 * cfg.n_mfcc * cfg.n_mels + 3 * cfg.n_mfcc
    # prosody analysis (channels and voice activity, on by default): band power, the even lags' DCT-I
    # (pre-processing, a real FFT of N/4 points, the first odd output summed), normalised even lags,
    # two peak scans with parabolic heights, two odd lags summed, interpolation, VAD
    from ..features.prosody import prosody_tables

    p = prosody_tables(cfg if getattr(cfg, "prosody", False) else cfg.replace(prosody=True))
    q, band, lags = p["q"], p["k_hi"] - p["k_lo"] + 1, p["m_hi"] - p["m_lo"] + 3
    fft_q = 5 * (q // 2) * int(math.log2(q // 2)) + 16 * (q // 2 - 1)
    flops += band + 5 * q + fft_q + 2 * band + 3 * lags + 2 * 12 * lags + 2 * 2 * band + 20 + 3 * cfg.n_features
    return {"flops": flops, "sqrt_div": (half + 1) + 2 * cfg.n_mfcc + 1 + 4 + cfg.n_features, "log": cfg.n_mels + 2}


def _filter_len(cfg):
    from ..features.cmsis import cmsis_tables

    return cmsis_tables(cfg)["filter_len"]


def frontend_state_bytes(t: Target) -> int:
    """``sizeof(tinyser_frontend_t)`` of the portable build: sample ring, frame,
    scratch (FRAME_LENGTH + 2 floats), one frame of features, the prosody of the
    last frame, the voice-activity floor, four counters.

    >>> from tinyser.inference import DEFAULT_MODEL
    >>> target = load_target(DEFAULT_MODEL)
    >>> frontend_state_bytes(target)
    12488
    """
    n = t.config.frame_length
    return 4 * (n + n + (n + 2) + t.config.n_features + 3 + 1) + 16


def window_bytes(t: Target) -> int:
    """``sizeof(tinyser_window_t)``: the model input's frames as raw floats, a speech
    flag per frame, three counters, and the adaptive state (two floats per feature).

    >>> from tinyser.inference import DEFAULT_MODEL
    >>> target = load_target(DEFAULT_MODEL)
    >>> window_bytes(target)
    19976
    """
    flags = -(-t.n_frames // 4) * 4  # uint8 per frame, padded to the next field's alignment
    adaptive = 2 * 4 * t.config.n_features if t.adaptive is not None else 0
    return 4 * t.n_frames * t.config.n_features + flags + 12 + adaptive


def audio_ring_samples(inference_seconds: float, t: Target) -> int:
    """Ring-buffer samples (a power of two, at least 2048) holding twice the
    audio that arrives during one estimated inference, plus two hops.

    >>> from tinyser.inference import DEFAULT_MODEL
    >>> target = load_target(DEFAULT_MODEL)
    >>> audio_ring_samples(0.18, target)
    8192
    """
    need = 2 * inference_seconds * t.config.sample_rate + 2 * t.config.hop_length
    return max(2048, 1 << int(math.ceil(math.log2(max(need, 1)))))


@dataclass(frozen=True)
class Flash:
    """Flash bytes: the model flatbuffer and the frontend tables (code not counted)."""

    model: int
    frontend_tables: int
    total: int


@dataclass(frozen=True)
class Ram:
    """RAM bytes: TFLite Micro's arena (with margin), the audio ring, the feature window, the frontend."""

    arena: int
    audio_ring: int
    feature_window: int
    frontend: int
    total: int


@dataclass(frozen=True)
class FrontendOps:
    """Floating-point work of one feature frame, by kind."""

    flops: int      # adds and multiplies
    sqrt_div: int   # square roots and divisions
    log: int


@dataclass(frozen=True)
class MeasuredBudget:
    """What an emulated Cortex-M4F measured for this very flatbuffer (``tinyser deploy verify``).
    ``flash`` and ``ram``: bytes by component of the linked firmware."""

    source: str
    instructions_per_inference: float
    instructions_per_mac: float
    frontend_instructions_per_audio_second: float
    cycles_per_instruction: float
    inference_ms: float
    frontend_ms_per_second: float
    real_time_factor: float
    flash: dict[str, int]
    ram: dict[str, int]
    flash_total: int
    ram_total: int
    audio_ring: int
    stack_high_water: int
    arena_used_on_device: int | None
    outputs_equal: str


@dataclass(frozen=True)
class Budget:
    """Flash, RAM, compute and latency of a model deployed on a board (see the module
    docstring for every assumption). ``fits``: None for the ``generic`` board."""

    board: str
    board_name: str
    clock_hz: float
    board_ram_bytes: int | None
    board_flash_bytes: int | None
    flash: Flash
    ram: Ram
    arena_measured: int
    audio_ring_samples: int
    fits: bool | None
    window_seconds: float
    inference_hop_frames: int
    inference_hop_seconds: float
    macs_per_inference: int
    model_macs_per_second: float
    macs_per_audio_second: float
    frontend_frames_per_second: float
    frontend_ops_per_frame: FrontendOps
    frontend_flops_per_second: float
    cycles_per_mac: float
    cycles_per_mac_source: str
    frontend_cycles_per_frame: float
    inference_ms: float
    frontend_ms_per_second: float
    real_time_factor: float
    measured: MeasuredBudget | None = None

    def to_dict(self) -> dict[str, Any]:
        """As JSON (benchmark files)."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Budget:
        """Back from :meth:`to_dict`.

        >>> b = Budget.from_dict(_EXAMPLE)
        >>> Budget.from_dict(b.to_dict()) == b, b.ram.total
        (True, 100)
        """
        d = dict(d)
        d["flash"], d["ram"] = Flash(**d["flash"]), Ram(**d["ram"])
        d["frontend_ops_per_frame"] = FrontendOps(**d["frontend_ops_per_frame"])
        d["measured"] = None if d.get("measured") is None else MeasuredBudget(**d["measured"])
        return cls(**d)


_EXAMPLE = {"board": "generic", "board_name": "x", "clock_hz": 64e6, "board_ram_bytes": None,
            "board_flash_bytes": None, "flash": {"model": 1, "frontend_tables": 2, "total": 3},
            "ram": {"arena": 40, "audio_ring": 0, "feature_window": 50, "frontend": 10, "total": 100},
            "arena_measured": 30, "audio_ring_samples": 2048, "fits": None, "window_seconds": 2.0,
            "inference_hop_frames": 62, "inference_hop_seconds": 0.992, "macs_per_inference": 1000,
            "model_macs_per_second": 1008.0, "macs_per_audio_second": 500.0, "frontend_frames_per_second": 62.5,
            "frontend_ops_per_frame": {"flops": 1, "sqrt_div": 1, "log": 1}, "frontend_flops_per_second": 62.5,
            "cycles_per_mac": 2.0, "cycles_per_mac_source": "assumed", "frontend_cycles_per_frame": 116.0,
            "inference_ms": 0.03, "frontend_ms_per_second": 0.1, "real_time_factor": 0.001}


def budget(model_path: str | os.PathLike, board: str = "nano33ble", hop: float | None = None,
           cycles_per_mac: float = CYCLES_PER_MAC) -> Budget:
    """Flash, RAM, compute and estimated latency of a model deployed with
    ``tinyser deploy arduino`` (see the module docstring for every assumption).

    ``hop``: seconds between inferences (default: half the
    model's window). Flash and RAM are in bytes; ``fits`` compares them with the
    board's memory (``None`` for ``generic``).

    >>> from tinyser.inference import DEFAULT_MODEL
    >>> b = budget(DEFAULT_MODEL)
    >>> b.ram.total < 256 * 1024, round(b.real_time_factor, 2)
    (True, 0.24)
    """
    return target_budget(load_target(model_path), board, hop, cycles_per_mac)


def frontend_cycles_per_frame(ops: dict[str, int]) -> float:
    """Estimated Cortex-M4F cycles of one frame's :func:`frontend_ops`."""
    return ops["flops"] * CYCLES_PER_FLOP + ops["sqrt_div"] * CYCLES_PER_SQRT_OR_DIV + ops["log"] * CYCLES_PER_LOG


def ram_budget(t: Target, arena: int, inference_seconds: float, audio_ring: bool = True) -> Ram:
    """RAM of a deployed model: the measured ``arena`` with the deploy margin, the audio
    ring (boards that buffer audio during an inference of ``inference_seconds``), the
    feature window and the frontend's state. ``t`` needs ``config``, ``n_frames`` and
    ``adaptive`` (an untrained candidate's stand-in will do)."""
    ring = 2 * audio_ring_samples(inference_seconds, t) if audio_ring else 0
    parts = (arena_margin(arena), ring, window_bytes(t), frontend_state_bytes(t))
    return Ram(*parts, sum(parts))


def target_budget(t: Target, board: str = "nano33ble", hop: float | None = None,
                  cycles_per_mac: float = CYCLES_PER_MAC) -> Budget:
    """:func:`budget` for an already loaded :class:`~tinyser.deploy.target.Target`.

    >>> from tinyser.inference import DEFAULT_MODEL
    >>> target_budget(load_target(DEFAULT_MODEL), "generic").fits is None
    True
    """
    spec = get_board(board)
    if cycles_per_mac <= 0:
        raise ConfigError(f"cycles_per_mac must be positive, not {cycles_per_mac}")
    arena = measured_arena(t.blob)
    hop_frames = t.hop_frames(hop)
    hop_seconds = hop_frames * t.frame_seconds
    macs = int(t.metadata.macs or 0)
    if macs <= 0:
        raise ConfigError(f"{t.path}: the metadata gives no MAC count")
    inference_s = macs * cycles_per_mac / spec.clock_hz
    ops = frontend_ops(t)
    frame_cycles = frontend_cycles_per_frame(ops)
    frames_per_second = 1.0 / t.frame_seconds
    frontend_s = frame_cycles * frames_per_second / spec.clock_hz  # per second of audio
    ring = audio_ring_samples(inference_s, t)
    flash = Flash(len(t.blob), tables_bytes(t), len(t.blob) + tables_bytes(t))
    ram = ram_budget(t, arena, inference_s, spec.has_audio_ring)
    real_time_factor = inference_s / hop_seconds + frontend_s
    fits = None if spec.ram_bytes is None else bool(ram.total <= spec.ram_bytes and
                                                     flash.total <= spec.flash_bytes and real_time_factor < 1)
    measured = measured_budget(t, spec, hop_seconds, 2 * ring if spec.has_audio_ring else 0)
    if fits is not None and measured is not None:
        fits = bool(measured.ram_total <= spec.ram_bytes and measured.flash_total <= spec.flash_bytes
                    and measured.real_time_factor < 1)
    return Budget(
        measured=measured,
        board=board, board_name=spec.name, clock_hz=spec.clock_hz,
        board_ram_bytes=spec.ram_bytes, board_flash_bytes=spec.flash_bytes,
        flash=flash, ram=ram, arena_measured=arena, audio_ring_samples=ring, fits=fits,
        window_seconds=t.segments.window, inference_hop_frames=hop_frames, inference_hop_seconds=hop_seconds,
        macs_per_inference=macs, model_macs_per_second=macs / hop_seconds,
        macs_per_audio_second=macs / t.segments.window,
        frontend_frames_per_second=frames_per_second, frontend_ops_per_frame=FrontendOps(**ops),
        frontend_flops_per_second=ops["flops"] * frames_per_second,
        cycles_per_mac=cycles_per_mac, cycles_per_mac_source=CYCLES_PER_MAC_SOURCE,
        frontend_cycles_per_frame=frame_cycles,
        inference_ms=1e3 * inference_s, frontend_ms_per_second=1e3 * frontend_s,
        real_time_factor=real_time_factor,
    )


def measured_budget(t: Target, spec: Board, hop_seconds: float, audio_ring_bytes: int) -> MeasuredBudget | None:
    """The figures measured on an emulated Cortex-M4F for this very flatbuffer
    (``tinyser deploy verify``, ``benchmarks/device.py``), at this hop and board;
    None when it was never measured."""
    from .firmware import find_measurement

    m = find_measurement(t.blob)
    if m is None:
        return None
    ins = m["instructions"]
    cpi = m["cycles_per_instruction"]
    inference_s = ins["per_inference"] * cpi / spec.clock_hz
    frontend_s = ins["frontend_per_audio_second"] * cpi / spec.clock_hz
    flash, ram = m["footprint"]["flash"], m["footprint"]["ram"]
    return MeasuredBudget(
        source=f"QEMU mps2-an386 (Cortex-M4F), {m['tflm']['flavour']} TFLite Micro {m['tflm']['version']} + "
               f"CMSIS-NN, {m['opt']}; instructions counted, {cpi:g} cycle per instruction assumed (a lower bound)",
        instructions_per_inference=ins["per_inference"], instructions_per_mac=ins["per_mac"],
        frontend_instructions_per_audio_second=ins["frontend_per_audio_second"],
        cycles_per_instruction=cpi, inference_ms=1e3 * inference_s, frontend_ms_per_second=1e3 * frontend_s,
        real_time_factor=inference_s / hop_seconds + frontend_s,
        flash=flash, ram=ram, flash_total=flash["product"],
        ram_total=ram["product"] + audio_ring_bytes, audio_ring=audio_ring_bytes,
        stack_high_water=m["stack_bytes"], arena_used_on_device=m["arena"]["used_on_device"],
        outputs_equal=f"{m['pipeline']['equal']}/{m['pipeline']['inferences']}",
    )


def budget_markdown(b: Budget) -> str:
    """The budget as a Markdown table (for the deploy README and benchmarks).

    >>> print(budget_markdown(Budget.from_dict(_EXAMPLE)).splitlines()[2])
    | flash | 0.0 KB: model 0.0 KB + frontend tables 0.0 KB (code not counted) |
    """
    def kb(n):
        return f"{n / 1024:.1f} KB"

    of = (lambda n, total: f"{kb(n)} of {kb(total)}") if b.board_ram_bytes else (lambda n, total: kb(n))
    ram, flash, ops = b.ram, b.flash, b.frontend_ops_per_frame
    rows = [
        ("flash", f"{of(flash.total, b.board_flash_bytes)}: model {kb(flash.model)} + frontend tables "
                  f"{kb(flash.frontend_tables)} (code not counted)"),
        ("RAM", f"{of(ram.total, b.board_ram_bytes)}: arena {kb(ram.arena)} (measured "
                f"{kb(b.arena_measured)} + margin) + audio ring {kb(ram.audio_ring)} + feature window "
                f"{kb(ram.feature_window)} + frontend {kb(ram.frontend)}"),
        ("model", f"{b.macs_per_inference / 1e6:.2f} M MACs per inference, one every "
                  f"{b.inference_hop_seconds:.3f} s ({b.inference_hop_frames} frames): "
                  f"{b.model_macs_per_second / 1e6:.2f} M MACs per second (one {b.window_seconds:g} s window "
                  f"per {b.window_seconds:g} s of audio, without overlap: "
                  f"{b.macs_per_audio_second / 1e6:.2f} M)"),
        ("frontend", f"{ops.flops:,} flops + {ops.sqrt_div} sqrt/div + {ops.log} log per frame, "
                     f"{b.frontend_frames_per_second:.1f} frames/s: "
                     f"{b.frontend_flops_per_second / 1e6:.2f} M flops per second of audio"),
        ("latency (estimate)", f"{b.inference_ms:.0f} ms per inference at {b.clock_hz / 1e6:.0f} MHz, "
                               f"{b.cycles_per_mac:g} cycles/MAC; frontend "
                               f"{b.frontend_ms_per_second:.0f} ms per second of audio"),
        ("real-time factor (estimate)", f"{b.real_time_factor:.2f} (compute time per second of audio)"),
    ]
    m = b.measured
    if m is not None:
        code = sum(m.flash.get(k, 0) for k in ("frontend_code", "runtime", "tflm_interpreter", "tflm_kernels",
                                                "cmsis_nn", "libc"))
        ring = f" + audio ring {kb(m.audio_ring)}" if m.audio_ring else ""
        rows += [
            ("flash (measured)", f"{of(m.flash_total, b.board_flash_bytes)}: model {kb(m.flash.get('model', 0))}"
                                 f" + frontend tables {kb(m.flash.get('frontend_tables', 0))} + code {kb(code)} "
                                 f"(TFLite Micro "
                                 f"{kb(m.flash.get('tflm_interpreter', 0) + m.flash.get('tflm_kernels', 0))}"
                                 f", CMSIS-NN {kb(m.flash.get('cmsis_nn', 0))})"),
            ("RAM (measured)", f"{of(m.ram_total, b.board_ram_bytes)}: firmware {kb(m.ram['product'])} "
                               f"(arena {kb(m.ram.get('arena', 0))}, stack reserve {kb(m.ram.get('stack', 0))}, "
                               f"stack used {m.stack_high_water:,} B){ring}"),
            ("latency (measured)", f"{m.instructions_per_inference / 1e6:.2f} M instructions per inference "
                                   f"({m.instructions_per_mac:.2f} per MAC): >= {m.inference_ms:.0f} ms at "
                                   f"{b.clock_hz / 1e6:.0f} MHz; frontend "
                                   f"{m.frontend_instructions_per_audio_second / 1e6:.2f} M per second of audio: "
                                   f">= {m.frontend_ms_per_second:.0f} ms"),
            ("real-time factor (measured)", f">= {m.real_time_factor:.2f} ({m.source}; outputs equal to the "
                                            f"host {m.outputs_equal})"),
        ]
    if b.fits is not None:
        rows.append(("fits the board", "yes" if b.fits else "NO"))
    return "\n".join(["| | |", "|---|---|", *(f"| {k} | {v} |" for k, v in rows)])
