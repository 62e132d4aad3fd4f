"""TFLite Micro on the host (``tflite_micro``, the ``micro`` extra): whether a
model runs there, the smallest tensor arena it needs, and :class:`TFLMModel`,
the real TFLite Micro interpreter. Probes run in a child process, so that a
TFLite Micro abort cannot take the caller down.
"""
from __future__ import annotations

import os
import tempfile

import numpy as np

from ..errors import ConfigError, TinyserError
from ..extras import need
from ._fds import _last_line, _quiet_fds
from .flatbuffer import _op_code, _ops_of, _parse, _schema, _tensor_kinds
from .litert import _Runner

#: find_arena_size gives up above this many bytes
ARENA_LIMIT = 64 << 20
DYNAMIC_RANGE_REASON = "dynamic-range quantisation is not supported by TFLite Micro"


def _tflm_interpreter(model_bytes: bytes, arena_size: int, log: list | None = None):
    runtime = need("tflite_micro.python.tflite_micro.runtime", "TFLite Micro")

    with _quiet_fds(log):
        return runtime.Interpreter.from_bytes(model_bytes, arena_size=int(arena_size))


def _static_problem(model_bytes: bytes) -> str | None:
    """Why TFLite Micro cannot take this model, judged from the flatbuffer alone (None: no reason found)."""
    fb = _schema()
    try:
        model = _parse(model_bytes)
    except ConfigError as err:
        return str(err)
    ops = _ops_of(model)
    hybrid, fp16 = _tensor_kinds(model)
    custom = [op for op in ops if op.startswith("CUSTOM:")]
    if custom:
        return f"custom ops are not in TFLite Micro's builtin resolver: {', '.join(custom)}"
    if hybrid:
        return DYNAMIC_RANGE_REASON
    if fp16:
        return "float16 weights are not supported by TFLite Micro (convert to int8 or float32)"
    for sub in model.subgraphs or []:
        for op in sub.operators or []:
            if _op_code(model.operatorCodes[op.opcodeIndex]) != fb.BuiltinOperator.SOFTMAX:
                continue
            t = sub.tensors[op.inputs[0]]
            q = t.quantization
            if t.type == fb.TensorType.INT8 and q is not None and q.scale is not None and len(q.scale):
                # TFLite Micro's int8 SOFTMAX needs input_scale * 2**26 > 1, else it aborts the process.
                if float(q.scale[0]) * 2.0 ** 26 <= 1.0:
                    return (f"SOFTMAX input scale {float(q.scale[0]):.3g} is below 2^-26, which TFLite Micro "
                            f"cannot handle (untrained or degenerate model?)")
    return None


def _tflm_log_reason(log: list[str]) -> str:
    lines = [ln.strip() for text in log for ln in text.splitlines() if ln.strip()]
    useful = [ln for ln in lines if "find op" in ln or "registration" in ln.lower() or "not supported" in ln]
    picked = list(dict.fromkeys(useful or lines[-2:]))
    return "; ".join(picked[:2])


def _recorded_total(interp) -> int | None:
    """Arena bytes in use per TFLite Micro's RecordingMicroAllocator (the Python runtime only prints it)."""
    import re

    log: list[str] = []
    with _quiet_fds(log):
        interp.print_allocations()
    found = re.search(r"Arena allocation total (\d+) bytes", log[0] if log else "")
    return int(found.group(1)) if found else None


def _runs(model_bytes: bytes, arena_size: int) -> bool:
    """Whether the model loads (AllocateTensors) and invokes on zeros in ``arena_size`` bytes."""
    try:
        interp = _tflm_interpreter(model_bytes, arena_size, [])
        with _quiet_fds():
            interp.set_input(_zeros_input(interp), 0)
            interp.invoke()
        return True
    except RuntimeError:
        return False


def _probe(model_bytes: bytes, task: str) -> dict:
    """Run TFLite Micro on the model in this process.

    ``task``: "check" (load and invoke in a generous arena), "arena" (the
    smallest arena, see :func:`find_arena_size`) or "fits:<bytes>".
    """
    if task.startswith("fits:"):
        return {"ok": True, "fits": _runs(model_bytes, int(task[5:]))}
    log: list[str] = []
    generous = max(1 << 20, 16 * len(model_bytes))
    while True:
        try:
            interp = _tflm_interpreter(model_bytes, generous, log)
            with _quiet_fds(log):
                interp.set_input(_zeros_input(interp), 0)
                interp.invoke()
            break
        except Exception as err:
            if "allocate" in " ".join(log).lower() and generous * 2 <= ARENA_LIMIT:
                generous, log = generous * 2, []
                continue
            return {"ok": False, "reason": f"TFLite Micro cannot run the model: {_tflm_log_reason(log) or err}"}
    if task != "arena":
        return {"ok": True}
    recorded = _recorded_total(interp)
    if recorded is None:
        return {"ok": False, "reason": "TFLite Micro did not report its arena usage"}
    size = -(-recorded // 16) * 16
    if _runs(model_bytes, size):
        return {"ok": True, "arena": size}
    # Not expected; search upwards only (some too-small arenas crash TFLite Micro, see find_arena_size).
    lo, hi = size, size + max(256, size // 16)
    while not _runs(model_bytes, hi):
        lo, hi = hi, hi * 2
        if hi > ARENA_LIMIT:
            return {"ok": False, "reason": f"model does not fit a TFLite Micro arena of {ARENA_LIMIT} bytes"}
    while hi - lo > 16:
        mid = (lo + hi) // 2 // 16 * 16
        lo, hi = (lo, mid) if _runs(model_bytes, mid) else (mid, hi)
    return {"ok": True, "arena": hi}


def _probe_main(path: str, task: str) -> None:
    """Entry point of the probing subprocess: prints one JSON line."""
    import json

    with open(path, "rb") as f:
        result = _probe(f.read(), task)
    print(json.dumps(result), flush=True)


def _probe_isolated(model_bytes: bytes, task: str) -> dict:
    """:func:`_probe` in a child process, so that a TFLite Micro abort cannot take this process down."""
    import json
    import signal
    import subprocess
    import sys
    from pathlib import Path

    problem = _static_problem(model_bytes)
    if problem:
        return {"ok": False, "reason": problem}
    with tempfile.TemporaryDirectory(prefix="tinyser-tflm-") as tmp:
        path = os.path.join(tmp, "model.tflite")
        with open(path, "wb") as f:
            f.write(model_bytes)
        env = dict(os.environ)
        src = str(Path(__file__).resolve().parents[2])
        env["PYTHONPATH"] = src + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
        code = "import sys; from tinyser.tflite.micro import _probe_main; _probe_main(sys.argv[1], sys.argv[2])"
        proc = subprocess.run([sys.executable, "-c", code, path, task], capture_output=True, text=True, env=env)
    if proc.returncode != 0:
        if proc.returncode < 0:
            detail = f"killed by {signal.Signals(-proc.returncode).name}"
        else:
            detail = _last_line(proc.stderr) or f"exit status {proc.returncode}"
        return {"ok": False, "reason": f"TFLite Micro crashed preparing the model ({detail})"}
    try:
        return json.loads(proc.stdout.strip().splitlines()[-1])
    except (ValueError, IndexError):
        return {"ok": False, "reason": f"TFLite Micro probe gave no result: {_last_line(proc.stderr)}"}


def _zeros_input(interp) -> np.ndarray:
    d = interp.get_input_details(0)
    return np.zeros(d["shape"], d["dtype"])


def is_tflm_compatible(model_bytes: bytes) -> tuple[bool, str]:
    """Whether TFLite Micro can load and run this flatbuffer, and why not.

    Dynamic-range and float16-weight models, custom ops and a degenerate
    softmax scale are recognised from the flatbuffer alone; otherwise the
    model is loaded in a generous arena and invoked once on zeros, in a child
    process so that a TFLite Micro abort cannot crash the caller.

    >>> is_tflm_compatible(dynamic_blob)                  # doctest: +SKIP
    (False, 'dynamic-range quantisation is not supported by TFLite Micro')
    """
    result = _probe_isolated(model_bytes, "check")
    return (True, "ok") if result["ok"] else (False, result["reason"])


def find_arena_size(model_bytes: bytes) -> int:
    """Smallest TFLite Micro arena (bytes, a multiple of 16) in which the model loads and runs.

    Measured as TFLite Micro's own count: the RecordingMicroAllocator's
    "Arena allocation total" (planned activations + persistent buffers +
    kernel scratch) after one invoke in a generous arena, which the Python
    runtime only prints to stderr, so this parses it. The figure is then
    confirmed by loading and invoking the model in an arena of exactly that
    size. (A binary search from below is not used: for some too-small arenas
    TFLite Micro's DEPTHWISE_CONV_2D Prepare segfaults instead of failing.)
    All of it runs in a child process (see :func:`is_tflm_compatible`).

    The host runtime is a 64-bit build: its bookkeeping structs are larger
    than a 32-bit Cortex-M's, while CMSIS-NN kernels on the device may ask for
    small extra scratch buffers; treat the figure as the device's within a
    few KB. Raises ``ConfigError`` if TFLite Micro cannot run the model.

    >>> from tinyser.inference import DEFAULT_MODEL
    >>> blob = DEFAULT_MODEL.read_bytes()
    >>> find_arena_size(blob)
    41088
    """
    result = _probe_isolated(model_bytes, "arena")
    if not result["ok"]:
        raise ConfigError(result["reason"])
    return int(result["arena"])


def arena_fits(model_bytes: bytes, arena_size: int) -> bool:
    """Whether the model loads and invokes in a TFLite Micro arena of ``arena_size`` bytes.

    Runs in a child process; a TFLite Micro crash counts as not fitting.

    >>> from tinyser.inference import DEFAULT_MODEL
    >>> blob = DEFAULT_MODEL.read_bytes()
    >>> arena_fits(blob, find_arena_size(blob) - 16)
    False
    """
    result = _probe_isolated(model_bytes, f"fits:{int(arena_size)}")
    if not result["ok"] and result["reason"].startswith("TFLite Micro crashed"):
        return False
    if not result["ok"]:
        raise ConfigError(result["reason"])
    return bool(result["fits"])


class TFLMModel(_Runner):
    """A TFLite flatbuffer in the real TFLite Micro interpreter (host build, reference kernels).

    ``arena_size=None`` measures the smallest working arena with :func:`find_arena_size`
    (which also vets the model in a child process); with an explicit size only
    the flatbuffer-level checks run before TFLite Micro loads the model here.

    >>> from tinyser.inference import DEFAULT_MODEL
    >>> blob = DEFAULT_MODEL.read_bytes()
    >>> m = TFLMModel(blob)
    >>> m.predict(np.zeros((4, *m.input_shape), np.float32)).shape
    (4, 6)
    """

    def __init__(self, model_bytes: bytes, arena_size: int | None = None):
        _parse(model_bytes)
        self._bytes = bytes(model_bytes)
        problem = _static_problem(self._bytes)
        if problem:
            raise ConfigError(problem)
        self.arena_size = int(arena_size) if arena_size is not None else find_arena_size(self._bytes)
        log: list[str] = []
        try:
            self._interp = _tflm_interpreter(self._bytes, self.arena_size, log)
        except RuntimeError as err:
            if "find op" in _tflm_log_reason(log) or "registration" in _tflm_log_reason(log):
                raise ConfigError(f"TFLite Micro cannot run the model: {_tflm_log_reason(log)}") from err
            raise ConfigError(f"TFLite Micro arena of {self.arena_size} bytes is too small for this model "
                              f"(find_arena_size() measures what it needs)") from err
        # TFLite Micro's details, plus LiteRT's ``quantization = (scale, zero_point)`` key.
        self.input_details = self._with_quantization(self._interp.get_input_details(0))
        self.output_details = self._with_quantization(self._interp.get_output_details(0))
        self.input_shape = tuple(int(d) for d in self.input_details["shape"][1:])

    @staticmethod
    def _with_quantization(detail: dict) -> dict:
        q = detail.get("quantization_parameters") or {}
        scales, zeros = q.get("scales"), q.get("zero_points")
        quant = (float(scales[0]), int(zeros[0])) if scales is not None and len(scales) else (0.0, 0)
        return {**detail, "quantization": quant}

    def arena_used(self) -> int:
        """Arena bytes in use as reported by TFLite Micro's RecordingMicroAllocator (after one invoke).

        Equals :func:`find_arena_size` for the same model; only readable from the
        allocator's stderr report, which this parses.

        >>> from tinyser.inference import DEFAULT_MODEL
        >>> blob = DEFAULT_MODEL.read_bytes()
        >>> TFLMModel(blob, arena_size=200_000).arena_used()
        41088
        """
        self.predict_raw(None)
        total = _recorded_total(self._interp)
        if total is None:
            raise TinyserError("TFLite Micro did not report its arena usage")
        return total

    def predict_raw(self, x: np.ndarray | None) -> np.ndarray:
        """Run one batch-of-one input already in the input tensor's dtype (``None``: zeros); raw output.

        >>> from tinyser.inference import DEFAULT_MODEL
        >>> blob = DEFAULT_MODEL.read_bytes()
        >>> from tinyser.tflite.litert import LiteRTModel
        >>> x = np.zeros((1, 122, 40), np.int8)
        >>> out = TFLMModel(blob, arena_size=200_000).predict_raw(x)
        >>> out.shape, out.dtype, bool((out == LiteRTModel(blob).predict_raw(x)).all())
        ((1, 6), dtype('int8'), True)
        """
        d = self.input_details
        x = np.zeros(d["shape"], d["dtype"]) if x is None else np.asarray(x, d["dtype"]).reshape(d["shape"])
        try:
            self._interp.set_input(x, 0)
            self._interp.invoke()
            out = np.array(self._interp.get_output(0), copy=True)
        finally:
            self._interp.reset()
        return out
