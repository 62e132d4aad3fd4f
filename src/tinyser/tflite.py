"""Keras -> TFLite conversion, and running the result in LiteRT and in TFLite Micro.

* :func:`convert` makes a float32, float16, dynamic-range or FULL-int8
  flatbuffer (int8 input and output, ``TFLITE_BUILTINS_INT8`` only).
* :class:`LiteRTModel` runs it with the LiteRT (TFLite) interpreter,
  :class:`TFLMModel` with the real TFLite Micro interpreter (``tflite_micro``);
  both ``predict`` float features -> float probabilities, quantising int8
  inputs and dequantising int8 outputs from the tensors' parameters.
* :func:`find_arena_size`, :func:`is_tflm_compatible` and :func:`model_ops`
  answer the deployment questions for a microcontroller.

Conversion always exports the model with a batch of one (static shapes
everywhere, as TFLite Micro needs); ``predict`` loops over a batch. Models
with state (LSTM variable tensors) are reset before every example.
"""
from __future__ import annotations

import contextlib
import os
import tempfile
import warnings
from typing import Iterator

import numpy as np

from .errors import ConfigError, TinyserError

QUANT_MODES = ("float32", "float16", "dynamic", "int8")
#: at most this many representative rows are used for int8 calibration
MAX_REPRESENTATIVE = 300
#: find_arena_size gives up above this many bytes
ARENA_LIMIT = 64 << 20
DYNAMIC_RANGE_REASON = "dynamic-range quantisation is not supported by TFLite Micro"


@contextlib.contextmanager
def _quiet_fds(capture: list | None = None) -> Iterator[None]:
    """Silence C/C++ writes to stdout and stderr (fd 1 and 2), optionally capturing stderr text."""
    import sys

    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    saved = [os.dup(1), os.dup(2)]
    with tempfile.TemporaryFile() as err, open(os.devnull, "wb") as null:
        try:
            os.dup2(null.fileno(), 1)
            os.dup2(err.fileno(), 2)
            with contextlib.redirect_stdout(open(os.devnull, "w")) as quiet:
                try:
                    yield
                finally:
                    quiet.close()
        finally:
            for stream in (sys.stdout, sys.stderr):
                with contextlib.suppress(Exception):
                    stream.flush()
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            for fd in saved:
                os.close(fd)
            if capture is not None:
                err.seek(0)
                capture.append(err.read().decode("utf-8", "replace"))


def _last_line(text: str) -> str:
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    return lines[-1] if lines else ""


# --------------------------------------------------------------------------- conversion

def _input_shape(model) -> tuple[int, ...]:
    inputs = model.inputs
    if len(inputs) != 1:
        raise ConfigError(f"convert: only single-input models are supported, got {len(inputs)} inputs")
    return tuple(int(d) for d in inputs[0].shape[1:])


def _representative(representative, shape) -> np.ndarray:
    if representative is None:
        raise ConfigError("convert: int8 quantisation needs a representative set of inputs")
    rep = np.asarray(representative, dtype=np.float32)
    if rep.ndim == len(shape):
        rep = rep[None]
    if rep.shape[1:] != shape or rep.shape[0] < 1:
        raise ConfigError(f"convert: representative inputs have shape {rep.shape[1:]}, the model expects {shape}")
    if not np.all(np.isfinite(rep)):
        raise ConfigError("convert: representative inputs contain NaN or inf")
    if rep.shape[0] > MAX_REPRESENTATIVE:
        rep = rep[np.linspace(0, rep.shape[0] - 1, MAX_REPRESENTATIVE).round().astype(int)]
    return rep


def convert(model, quant: str = "int8", representative: np.ndarray | None = None) -> bytes:
    """Convert a single-input Keras model to a TFLite flatbuffer.

    ``quant``: ``"float32"``; ``"float16"`` (float16 weights); ``"dynamic"``
    (int8 weights, float activations; LiteRT only); ``"int8"`` (FULL integer:
    int8 input/output, ``TFLITE_BUILTINS_INT8`` ops only, calibrated on
    ``representative``, an array of model inputs of which at most
    ``MAX_REPRESENTATIVE`` evenly spaced rows are used). The converter's chatter
    is kept off stdout and stderr; a failure raises ``TinyserError`` naming its
    last message.

    >>> import numpy as np
    >>> from tinyser.models import build_model
    >>> m = build_model("tiny", (32, 40), 3)
    >>> blob = convert(m, "int8", np.random.randn(16, 32, 40).astype("float32"))
    >>> blob[4:8]
    b'TFL3'
    """
    if quant not in QUANT_MODES:
        raise ConfigError(f"convert: quant must be one of {', '.join(QUANT_MODES)}, got {quant!r}")
    shape = _input_shape(model)
    rep = _representative(representative, shape) if quant == "int8" else None

    import keras
    import tensorflow as tf

    log: list[str] = []
    try:
        with tempfile.TemporaryDirectory(prefix="tinyser-tflite-") as tmp, _quiet_fds(log), \
                warnings.catch_warnings():
            warnings.simplefilter("ignore")
            archive = keras.export.ExportArchive()
            archive.track(model)
            archive.add_endpoint("serve", lambda x: model(x, training=False),
                                 input_signature=[tf.TensorSpec((1,) + shape, tf.float32)])
            archive.write_out(tmp)
            converter = tf.lite.TFLiteConverter.from_saved_model(tmp)
            if quant == "float16":
                converter.optimizations = [tf.lite.Optimize.DEFAULT]
                converter.target_spec.supported_types = [tf.float16]
            elif quant == "dynamic":
                converter.optimizations = [tf.lite.Optimize.DEFAULT]
            elif quant == "int8":
                converter.optimizations = [tf.lite.Optimize.DEFAULT]
                converter.representative_dataset = lambda: ([row[None]] for row in rep)
                converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
                converter.inference_input_type = tf.int8
                converter.inference_output_type = tf.int8
            return bytes(converter.convert())
    except TinyserError:
        raise
    except Exception as err:  # the converter raises many types; report one line
        detail = _last_line(str(err)) or _last_line(log[0] if log else "") or type(err).__name__
        raise TinyserError(f"TFLite conversion ({quant}) failed: {detail}") from err


# --------------------------------------------------------------------------- flatbuffer inspection

def _schema():
    from tflite_micro.tensorflow.lite.micro.python import schema_py_generated as fb
    return fb


def _parse(model_bytes: bytes):
    fb = _schema()
    if not isinstance(model_bytes, (bytes, bytearray)) or len(model_bytes) < 8 or model_bytes[4:8] != b"TFL3":
        raise ConfigError("not a TFLite flatbuffer (missing 'TFL3' identifier)")
    return fb.ModelT.InitFromObj(fb.Model.GetRootAsModel(bytearray(model_bytes), 0))


def _builtin_names() -> dict[int, str]:
    fb = _schema()
    return {v: k for k, v in vars(fb.BuiltinOperator).items() if not k.startswith("_")}


def _op_code(opcode) -> int:
    return max(int(opcode.builtinCode), int(opcode.deprecatedBuiltinCode))


def model_ops(model_bytes: bytes) -> list[str]:
    """Sorted builtin op names the flatbuffer uses, i.e. what a MicroMutableOpResolver must add.

    Custom ops come back as ``"CUSTOM:<code>"``.

    >>> model_ops(blob)                                   # doctest: +SKIP
    ['CONV_2D', 'DEPTHWISE_CONV_2D', 'FULLY_CONNECTED', 'MEAN', 'RESHAPE', 'SOFTMAX']
    """
    return _ops_of(_parse(model_bytes))


def _ops_of(model) -> list[str]:
    names = _builtin_names()
    ops = set()
    for sub in model.subgraphs or []:
        for op in sub.operators or []:
            code = model.operatorCodes[op.opcodeIndex]
            name = names.get(_op_code(code), f"BUILTIN_{_op_code(code)}")
            if name == "CUSTOM":
                custom = code.customCode.decode() if isinstance(code.customCode, bytes) else code.customCode
                name = f"CUSTOM:{custom}"
            ops.add(name)
    return sorted(ops)


def _tensor_kinds(model) -> tuple[bool, bool]:
    """(has dynamic-range ops, has float16 weights) from the tensors feeding each op of a parsed model."""
    fb = _schema()
    hybrid = fp16 = False
    for sub in model.subgraphs or []:
        tensors = sub.tensors or []

        def is_const(t):
            buf = model.buffers[t.buffer] if t.buffer < len(model.buffers) else None
            return buf is not None and ((buf.data is not None and len(buf.data) > 0) or (buf.size or 0) > 0)

        for op in sub.operators or []:
            ins = [tensors[i] for i in (op.inputs if op.inputs is not None else []) if i >= 0]
            consts = [t for t in ins if is_const(t)]
            acts = [t for t in ins if not is_const(t) and not t.isVariable]
            if any(t.type == fb.TensorType.FLOAT16 for t in consts):
                fp16 = True
            if any(t.type in (fb.TensorType.INT8, fb.TensorType.UINT8) for t in consts) and \
                    any(t.type == fb.TensorType.FLOAT32 for t in acts):
                hybrid = True
    return hybrid, fp16


def _full_int8(model) -> bool:
    """Whether a parsed model takes and gives int8 tensors (a full-int8 export)."""
    fb = _schema()
    try:
        sub = model.subgraphs[0]
        ends = [sub.tensors[i] for i in list(sub.inputs) + list(sub.outputs)]
    except (IndexError, TypeError):
        return False
    return bool(ends) and all(t.type == fb.TensorType.INT8 for t in ends)


# --------------------------------------------------------------------------- LiteRT

def _quantise(x: np.ndarray, detail: dict) -> np.ndarray:
    dtype = np.dtype(detail["dtype"])
    if dtype.kind == "f":
        return x.astype(dtype)
    scale, zero = detail["quantization"]
    if not scale:
        raise ConfigError(f"input tensor of type {dtype} has no quantisation parameters")
    info = np.iinfo(dtype)
    return np.clip(np.round(x / scale + zero), info.min, info.max).astype(dtype)


def _dequantise(y: np.ndarray, detail: dict) -> np.ndarray:
    if np.dtype(detail["dtype"]).kind == "f":
        return y.astype(np.float32)
    scale, zero = detail["quantization"]
    return ((y.astype(np.float32) - zero) * scale).astype(np.float32)


def _batch(x, shape: tuple[int, ...]) -> tuple[np.ndarray, bool]:
    x = np.asarray(x)
    if x.shape == shape:
        return x[None], True
    if x.shape[1:] != shape:
        raise ConfigError(f"input has shape {x.shape}, the model expects {shape} or (n, *{shape})")
    return x, False


class _Runner:
    """What both interpreters share: float in, float probabilities out, via the
    subclass's ``predict_raw`` and ``input_details``/``output_details``."""

    input_details: dict
    output_details: dict
    input_shape: tuple[int, ...]

    def quantise(self, x) -> np.ndarray:
        """Float input(s) in the input tensor's dtype (int8 models: ``round(x / scale) + zero_point``).

        >>> LiteRTModel(blob).quantise(np.zeros((32, 40))).dtype           # doctest: +SKIP
        dtype('int8')
        """
        return _quantise(np.asarray(x, np.float32), self.input_details)

    def predict_raw(self, x):
        raise NotImplementedError

    def predict(self, x) -> np.ndarray:
        """Float probabilities for one input ``shape`` -> ``(n_classes,)`` or a batch -> ``(n, n_classes)``.

        >>> LiteRTModel(blob).predict(np.zeros((2, 32, 40))).shape         # doctest: +SKIP
        (2, 3)
        """
        batch, single = _batch(x, self.input_shape)
        out = np.stack([_dequantise(self.predict_raw(self.quantise(row[None])), self.output_details)[0]
                        for row in batch])
        return out[0] if single else out


class LiteRTModel(_Runner):
    """A TFLite flatbuffer in the LiteRT interpreter.

    ``reference=True`` uses LiteRT's reference kernels (``BUILTIN_REF``), the
    yardstick for TFLite Micro's (also reference) kernels; ``None`` (the default)
    uses them for full-int8 models, so that ``predict`` gives the scores a device
    running TFLite Micro gives (LiteRT's optimised kernels round differently:
    with the shipped model they match TFLite Micro on 38 of 70 windows, up to 23
    LSB apart, the reference kernels on 70 of 70, at 3.0 instead of 5.3 files/s:
    docs/results.md, ``benchmarks/predict_kernels.py``).

    >>> m = LiteRTModel(blob)                             # doctest: +SKIP
    >>> m.predict(features).shape                         # doctest: +SKIP
    (4, 7)
    """

    def __init__(self, model_bytes: bytes, num_threads: int = 1, *, reference: bool | None = None):
        from ai_edge_litert.interpreter import Interpreter, OpResolverType

        parsed = _parse(model_bytes)
        if reference is None:
            reference = _full_int8(parsed)
        self._bytes = bytes(model_bytes)
        resolver = OpResolverType.BUILTIN_REF if reference else OpResolverType.AUTO
        try:
            with _quiet_fds():
                self._interp = Interpreter(model_content=self._bytes, num_threads=int(num_threads),
                                           experimental_op_resolver_type=resolver)
                self._interp.allocate_tensors()
        except ValueError as err:
            raise TinyserError(f"LiteRT cannot load the model: {_last_line(str(err))}") from err
        ins, outs = self._interp.get_input_details(), self._interp.get_output_details()
        if len(ins) != 1 or len(outs) != 1:
            raise ConfigError(f"expected one input and one output, got {len(ins)} and {len(outs)}")
        self.input_details, self.output_details = ins[0], outs[0]
        self.input_shape = tuple(int(d) for d in self.input_details["shape"][1:])

    def predict_raw(self, x: np.ndarray) -> np.ndarray:
        """Run one batch-of-one input already in the input tensor's dtype; the raw output tensor.

        >>> LiteRTModel(blob).predict_raw(np.zeros((1, 32, 40), np.int8))   # doctest: +SKIP
        array([[-86, -85, -85]], dtype=int8)
        """
        self._interp.reset_all_variables()
        self._interp.set_tensor(self.input_details["index"], np.asarray(x, self.input_details["dtype"]))
        self._interp.invoke()
        return self._interp.get_tensor(self.output_details["index"]).copy()


# --------------------------------------------------------------------------- TFLite Micro

def _tflm_interpreter(model_bytes: bytes, arena_size: int, log: list | None = None):
    from tflite_micro.python.tflite_micro import runtime

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
        src = str(Path(__file__).resolve().parents[1])
        env["PYTHONPATH"] = src + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
        code = "import sys; from tinyser.tflite import _probe_main; _probe_main(sys.argv[1], sys.argv[2])"
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

    >>> find_arena_size(blob)                             # doctest: +SKIP
    56288
    """
    result = _probe_isolated(model_bytes, "arena")
    if not result["ok"]:
        raise ConfigError(result["reason"])
    return int(result["arena"])


def arena_fits(model_bytes: bytes, arena_size: int) -> bool:
    """Whether the model loads and invokes in a TFLite Micro arena of ``arena_size`` bytes.

    Runs in a child process; a TFLite Micro crash counts as not fitting.

    >>> arena_fits(blob, find_arena_size(blob) - 16)      # doctest: +SKIP
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

    >>> m = TFLMModel(blob)                               # doctest: +SKIP
    >>> m.predict(features).shape                         # doctest: +SKIP
    (4, 7)
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

        >>> TFLMModel(blob, arena_size=200_000).arena_used()              # doctest: +SKIP
        56288
        """
        self.predict_raw(None)
        total = _recorded_total(self._interp)
        if total is None:
            raise TinyserError("TFLite Micro did not report its arena usage")
        return total

    def predict_raw(self, x: np.ndarray | None) -> np.ndarray:
        """Run one batch-of-one input already in the input tensor's dtype (``None``: zeros); raw output.

        >>> TFLMModel(blob).predict_raw(np.zeros((1, 32, 40), np.int8))     # doctest: +SKIP
        array([[-86, -85, -85]], dtype=int8)
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
