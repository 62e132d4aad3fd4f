"""Self-describing TFLite models: export a trained fold in float32, float16,
dynamic-range and full-int8 form, with everything needed to run it (labels,
the full frontend with its standardisation, segment length, input
quantisation, training summary) stored in the flatbuffer's metadata under
the name ``tinyser``; and C arrays of a model for TFLite Micro.
"""
from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Sequence

import numpy as np

from . import __version__
from .cache import atomic_write
from .errors import ConfigError, TinyserError

METADATA_NAME = "tinyser"
METADATA_FORMAT = 1
#: Metadata key of the flatbuffer's SHA-256, taken with this key's own value as 64 zeros
CHECKSUM_KEY = "sha256"
_ZEROS = "0" * 64
#: Larger files are not models tinyser made (the biggest is a few MB)
MAX_MODEL_BYTES = 256 << 20


def embed_metadata(model_bytes: bytes, meta: dict) -> bytes:
    """Return the flatbuffer with ``meta`` (JSON) stored as metadata ``tinyser``
    (replacing an earlier one). Interpreters ignore metadata they do not know.

    >>> read_metadata(embed_metadata(blob, {"labels": ["a"]}))["labels"]   # doctest: +SKIP
    ['a']
    """
    from tensorflow.lite.python import schema_py_generated as fb
    from tensorflow.lite.tools import flatbuffer_utils

    model = flatbuffer_utils.convert_bytearray_to_object(bytearray(model_bytes))
    model.metadata = [m for m in (model.metadata or []) if _name(m.name) != METADATA_NAME]
    # buffers nothing refers to (earlier metadata) are emptied, not kept: indices stay, bytes go
    used = {t.buffer for g in model.subgraphs or [] for t in g.tensors or []} | {m.buffer for m in model.metadata}
    for i, b in enumerate(model.buffers):
        if i not in used and b.data is not None and len(b.data):
            b.data = None
    buf = fb.BufferT()
    meta = {**meta, CHECKSUM_KEY: _ZEROS}
    buf.data = np.frombuffer(json.dumps(meta, sort_keys=True).encode(), np.uint8).tolist()
    model.buffers.append(buf)
    entry = fb.MetadataT()
    entry.name, entry.buffer = METADATA_NAME, len(model.buffers) - 1
    model.metadata.append(entry)
    return _stamp(bytes(flatbuffer_utils.convert_object_to_bytearray(model)))


def _checksum_field(digest: str) -> bytes:
    return json.dumps({CHECKSUM_KEY: digest})[1:-1].encode()  # '"sha256": "…"' as json.dumps writes it


def _stamp(blob: bytes) -> bytes:
    """Write the SHA-256 of ``blob`` (taken with the checksum field still zeros) into that field.
    The field keeps its length, so the flatbuffer's layout does not change."""
    field = _checksum_field(_ZEROS)
    if blob.count(field) != 1:
        raise TinyserError("cannot place the checksum in the model's metadata")
    return blob.replace(field, _checksum_field(hashlib.sha256(blob).hexdigest()))


def checksum_ok(blob: bytes, digest: str) -> bool:
    """Whether ``blob`` is the flatbuffer that was stamped with ``digest`` (see :func:`embed_metadata`).

    >>> blob = _stamp(b'{"sha256": "' + b"0" * 64 + b'"}')
    >>> digest = json.loads(blob)["sha256"]
    >>> checksum_ok(blob, digest), checksum_ok(blob.replace(b"{", b"["), digest)
    (True, False)
    """
    field = _checksum_field(digest)
    if blob.count(field) != 1:
        return False
    return hashlib.sha256(blob.replace(field, _checksum_field(_ZEROS))).hexdigest() == digest


def read_metadata(model_bytes: bytes, path: str | os.PathLike | None = None) -> dict:
    """The ``tinyser`` metadata of a flatbuffer; one-line TinyserError if it has
    none or it cannot be read (however the bytes are damaged)."""
    from tflite_micro.tensorflow.lite.micro.python import schema_py_generated as fb

    where = f"{path}: " if path else ""
    if len(model_bytes) < 16 or model_bytes[4:8] != b"TFL3":
        raise TinyserError(f"{where}not a TFLite model (no 'TFL3' identifier)")
    try:  # offsets in a damaged flatbuffer point anywhere: struct.error, IndexError, ...
        model = fb.Model.GetRootAs(model_bytes, 0)
        n, n_buffers = model.MetadataLength(), model.BuffersLength()
        if not 0 <= n <= 1024 or not 0 <= n_buffers <= len(model_bytes):
            raise ValueError("impossible table sizes")
        data = None
        for i in range(n):
            m = model.Metadata(i)
            if _name(m.Name()) == METADATA_NAME:
                if not 0 <= m.Buffer() < n_buffers:
                    raise ValueError("metadata points past the buffers")
                data = bytes(model.Buffers(m.Buffer()).DataAsNumpy())
                break
    except Exception as e:
        raise TinyserError(f"{where}damaged TFLite model: its structure cannot be read "
                           f"({'offsets point outside the file' if type(e).__name__ in ('error', 'IndexError') else type(e).__name__})") from None
    if data is None:
        raise TinyserError(f"{where}no tinyser metadata (export models with `tinyser export`)")
    try:
        meta = json.loads(data.decode())
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise TinyserError(f"{where}damaged model: its tinyser metadata is not valid JSON") from None
    if not isinstance(meta, dict):
        raise TinyserError(f"{where}damaged model: its tinyser metadata is not a JSON object")
    return meta


#: What every tinyser model's metadata holds, and the type of each entry
_REQUIRED = {"labels": list, "frontend": dict, "segments": dict, "sample_rate": int, "input": dict,
             "output": dict, "quantization": str, "model": str}


def check_metadata(meta: dict, where: str = "") -> None:
    """Refuse metadata that a damaged or hand-edited model carries: missing or
    mistyped entries, fewer than two labels, an unreadable frontend or window."""
    from .audio import SegmentConfig
    from .features import Frontend

    def bad(reason):
        return TinyserError(f"{where}damaged model metadata: {reason}")

    for key, kind in _REQUIRED.items():
        if not isinstance(meta.get(key), kind) or isinstance(meta.get(key), bool):
            raise bad(f"'{key}' is missing or not a {kind.__name__}")
    labels = meta["labels"]
    if len(labels) < 2 or not all(isinstance(k, str) and k for k in labels) or len(set(labels)) != len(labels):
        raise bad("'labels' must be two or more distinct names")
    for key in ("input", "output"):
        t = meta[key]
        shape = t.get("shape")
        if not isinstance(shape, list) or not all(isinstance(v, int) and v > 0 for v in shape):
            raise bad(f"'{key}' has no valid shape")
        if not isinstance(t.get("dtype"), str) or not isinstance(t.get("scale"), (int, float)) or \
                not isinstance(t.get("zero_point"), int):
            raise bad(f"'{key}' needs a dtype, scale and zero_point")
    for key in ("training", "evaluation", "model_params"):
        if key in meta and meta[key] is not None and not isinstance(meta[key], dict):
            raise bad(f"'{key}' is not a JSON object")
    ev = meta.get("evaluation")
    if ev and not (all(isinstance(ev.get(k), (int, float)) for k in ("ua", "ua_std", "wa", "f1")) and
                   isinstance(ev.get("protocol"), str)):
        raise bad("'evaluation' needs ua, ua_std, wa, f1 and protocol")
    if meta["output"]["shape"][-1] != len(labels):
        raise bad(f"{meta['output']['shape'][-1]} outputs for {len(labels)} labels")
    try:
        fe = Frontend.from_dict(meta["frontend"])
        seg = SegmentConfig.from_dict(meta["segments"])
    except Exception as e:  # TypeError/KeyError/ConfigError from hand-edited or damaged entries
        raise bad(f"frontend or segments cannot be read ({_first_line(e)})") from None
    if meta.get("voice") is not None:  # the voice-activity rule (tinyser.vad); older models have none
        from .vad import VoiceConfig

        try:
            VoiceConfig.from_dict(meta["voice"])
        except Exception as e:
            raise bad(f"voice cannot be read ({_first_line(e)})") from None
    if fe.config.sample_rate != meta["sample_rate"]:
        raise bad(f"sample_rate {meta['sample_rate']} differs from the frontend's {fe.config.sample_rate}")
    if seg.window > 60:
        raise bad(f"a {seg.window:g} s window")


def _first_line(e: Exception) -> str:
    text = str(e).strip().splitlines()
    return f"{type(e).__name__}: {text[0]}" if text else type(e).__name__


def read_model(path: str | os.PathLike, check: bool = True) -> tuple[bytes, dict]:
    """A model file's bytes and its ``tinyser`` metadata; one-line TinyserError
    naming the file when it cannot be read, is not a tinyser model, or is
    damaged: its checksum (recorded at export) does not match, its metadata is
    incomplete, or (``check``) LiteRT cannot load it. Whatever the damage, the
    result is that one line, never a traceback.

    >>> blob, meta = read_model("tiny-int8.tflite")   # doctest: +SKIP
    >>> meta["labels"]                                 # doctest: +SKIP
    ['neutral', 'happy', ...]
    """
    p = Path(path)
    try:
        import stat

        st = p.stat()
        if stat.S_ISDIR(st.st_mode):
            raise TinyserError(f"{path}: is a folder, not a model file")
        if not stat.S_ISREG(st.st_mode):
            raise TinyserError(f"{path}: not a regular file (a device or pipe?), not a model file")
        if st.st_size > MAX_MODEL_BYTES:
            raise TinyserError(f"{path}: {st.st_size:,} bytes is too large for a tinyser model")
        blob = p.read_bytes()
    except OSError as e:
        raise TinyserError(f"{path}: cannot read model ({e.strerror or e})") from None
    meta = read_metadata(blob, path)
    digest = meta.get(CHECKSUM_KEY)
    if digest is not None and not (isinstance(digest, str) and checksum_ok(blob, digest)):
        raise TinyserError(f"{path}: damaged model: its bytes do not match the checksum recorded at export "
                           "(a corrupted copy? export or download it again)")
    check_metadata(meta, f"{path}: ")
    if check:
        check_loads(blob, meta, path)
    return blob, meta


def check_loads(blob: bytes, meta: dict, path) -> None:
    """Refuse a model LiteRT cannot load, or whose tensors differ from what its metadata says."""
    from .tflite import LiteRTModel

    try:
        m = LiteRTModel(blob)
        shapes = [int(v) for v in m.input_details["shape"]], [int(v) for v in m.output_details["shape"]]
    except Exception as e:  # TinyserError, ValueError, RuntimeError from a damaged graph
        raise TinyserError(f"{path}: damaged model: LiteRT cannot load it ({_first_line(e)})") from None
    want = meta["input"]["shape"], meta["output"]["shape"]
    if shapes[0][1:] != want[0][1:] or shapes[1][1:] != want[1][1:]:
        raise TinyserError(f"{path}: damaged model: tensors {shapes[0]} -> {shapes[1]} differ from its metadata's "
                           f"{want[0]} -> {want[1]}")


def _name(n) -> str:
    return n.decode() if isinstance(n, bytes) else str(n)


def export_run(run_dir: str | os.PathLike, quants: Sequence[str] = ("float32", "float16", "dynamic", "int8"),
               fold: int = 0, out: str | os.PathLike | None = None, overwrite: bool = False,
               onnx: bool = False) -> list[Path]:
    """Export one fold's model of a finished run as ``.tflite`` files (one per
    quantisation) plus, for int8, ``model_data.h/.cc`` and the op list, and
    with ``onnx`` the float model as ONNX (checked against onnxruntime).

    Full-int8 is calibrated on the fold's own training clips, standardised by
    the fold's frontend. Existing files are kept unless ``overwrite``.

    >>> export_run("runs/emodb-tiny", ["int8"])   # doctest: +SKIP
    [PosixPath('runs/emodb-tiny/export/fold_00/tiny-int8.tflite')]
    """
    return export_fold(load_fold(run_dir, fold), quants, out, overwrite, onnx)


def export_fold(fold_data: "FoldModel", quants: Sequence[str], out: str | os.PathLike | None = None,
                overwrite: bool = False, onnx: bool = False) -> list[Path]:
    """:func:`export_run` for a fold already loaded with :func:`load_fold`."""
    from .tflite import QUANT_MODES, convert

    bad = [q for q in quants if q not in QUANT_MODES]
    if bad:
        raise ConfigError(f"unknown quantisation {', '.join(bad)}; choose from {', '.join(QUANT_MODES)}")
    out = Path(out) if out else default_export_dir(fold_data.run_dir, fold_data.fold)
    targets = {q: out / f"{fold_data.config.model}-{q}.tflite" for q in quants}
    onnx_path = out / f"{fold_data.config.model}-float32.onnx"
    existing = [str(p) for p in [*targets.values(), *([onnx_path] if onnx else [])] if p.exists()]
    if existing and not overwrite:
        raise TinyserError(f"{existing[0]}: already exists; pass --force to overwrite")
    written = []
    for quant, path in targets.items():
        blob = convert(fold_data.model, quant, fold_data.representative() if quant == "int8" else None)
        blob = embed_metadata(blob, fold_data.metadata(quant, blob))
        atomic_write(path, lambda f, data=blob: f.write(data))
        written.append(path)
        if quant == "int8":
            written += write_c_arrays(blob, out / "c")
    if onnx:
        written.append(export_onnx(fold_data, onnx_path))
    return written


def export_onnx(fold_data: "FoldModel", path: Path, atol: float = 1e-4) -> Path:
    """The float model as ONNX (tf2onnx), metadata ``tinyser`` in its
    metadata_props; refused unless onnxruntime reproduces Keras' outputs."""
    import onnxruntime as ort
    import tensorflow as tf
    import tf2onnx

    model = fold_data.model
    spec = (tf.TensorSpec((None, *model.input_shape[1:]), tf.float32, name="features"),)

    @tf.autograph.experimental.do_not_convert
    def forward(x):
        return model(x, training=False)

    proto, _ = tf2onnx.convert.from_function(tf.function(forward), input_signature=spec, opset=17)
    entry = proto.metadata_props.add()
    entry.key, entry.value = METADATA_NAME, json.dumps(fold_data.metadata("float32", None), sort_keys=True)
    blob = proto.SerializeToString()
    x = fold_data.representative(16)
    session = ort.InferenceSession(blob, providers=["CPUExecutionProvider"])
    diff = float(np.max(np.abs(session.run(None, {session.get_inputs()[0].name: x})[0] -
                                np.asarray(model(x, training=False)))))
    if diff > atol:
        raise TinyserError(f"{path}: ONNX outputs differ from Keras by {diff:.2g} (> {atol})")
    atomic_write(path, lambda f: f.write(blob))
    return path


class FoldModel:
    """A trained fold of a run: its Keras model, frontend, data split and config."""

    def __init__(self, run_dir: Path, fold: int):
        import keras

        from .experiment import RunConfig, load_report
        from .features import Frontend

        self.run_dir, self.fold = run_dir, fold
        folder = run_dir / f"fold_{fold:02d}"
        if not (folder / "model.keras").exists():
            raise TinyserError(f"{run_dir}: fold {fold} has no trained model (is the run finished?)")
        self.report = load_report(run_dir)
        self.config = RunConfig.from_dict(json.loads((run_dir / "config.json").read_text()))
        self.frontend = Frontend.from_json((folder / "frontend.json").read_text())
        self.model = keras.models.load_model(folder / "model.keras", compile=False)
        self.split = next(f for f in self.report["folds"] if f["fold"] == fold)
        self._features = None

    def features(self):
        """The run's feature set (from the feature cache)."""
        if self._features is None:
            from .experiment import run_features
            self._features = run_features(self.config)
        return self._features

    def part(self, name: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Standardised inputs, class indices and clip indices of this fold's train/val/test part."""
        fs = self.features()
        wanted = {c: i for i, c in enumerate(fs.clip_ids)}
        clips = np.array([wanted[c] for c in self.split["clips"][name] if c in wanted], dtype=np.int64)
        seg = np.flatnonzero(np.isin(fs.clip_index, clips))
        from .experiment import speaker_streams

        x = self.frontend.standardize_streams(fs.features, speaker_streams(
            fs, seg, np.random.default_rng([self.config.train.seed, self.fold])))
        return x[seg], fs.y[seg], fs.clip_index[seg]

    def representative(self, n: int = 300) -> np.ndarray:
        x, _, _ = self.part("train")
        return x[np.linspace(0, len(x) - 1, min(n, len(x))).astype(int)]

    def metadata(self, quant: str, blob: bytes | None) -> dict:
        """What the exported file must say about itself (``blob``: the .tflite, for its tensors)."""
        from .models import count_macs, count_params
        from .tflite import LiteRTModel
        from .vad import VoiceConfig

        seg = self.config.segments
        if blob is None:  # ONNX: float input and output
            shape = [1, *self.model.input_shape[1:]]
            tensors = {"input": {"shape": shape, "dtype": "float32", "scale": 0.0, "zero_point": 0},
                       "output": {"shape": [1, len(self.report["labels"])], "dtype": "float32", "scale": 0.0,
                                  "zero_point": 0}}
        else:
            m = LiteRTModel(blob)
            tensors = {"input": _tensor_meta(m.input_details), "output": _tensor_meta(m.output_details)}
        return {
            "format": METADATA_FORMAT, "tinyser": __version__, "model": self.config.model,
            "model_params": self.config.model_params, "quantization": quant,
            "labels": self.report["labels"], "frontend": self.frontend.to_dict(), "segments": seg,
            "voice": VoiceConfig().to_dict(),  # the voice-activity rule predict and the device apply
            "sample_rate": self.frontend.config.sample_rate,
            **tensors,
            "params": count_params(self.model), "macs": count_macs(self.model),
            "training": {"data": list(self.config.data), "label_scheme": self.config.labels,
                         "protocol": self.config.protocol, "fold": self.fold,
                         "speakers": self.split["speakers"],
                         "fold_scores": {k: self.split[k] for k in ("ua", "wa", "f1")},
                         "run_scores": {k: self.report[k] for k in ("ua", "wa", "f1")}},
        }


def ensure_exported(fm: "FoldModel", quants: Sequence[str]) -> dict[str, Path]:
    """The fold's ``.tflite`` per quantisation in its default export folder,
    exporting those that are not there yet."""
    out = default_export_dir(fm.run_dir, fm.fold)
    paths = {q: out / f"{fm.config.model}-{q}.tflite" for q in quants}
    missing = [q for q, p in paths.items() if not p.exists()]
    if missing:
        export_fold(fm, missing, out)
    return paths


def default_export_dir(run_dir: str | os.PathLike, fold: int) -> Path:
    """Where a fold's exported files go unless told otherwise: ``RUN/export/fold_NN``."""
    return Path(run_dir) / "export" / f"fold_{fold:02d}"


def load_fold(run_dir: str | os.PathLike, fold: int = 0) -> FoldModel:
    """Load a trained fold of a run folder."""
    run_dir = Path(run_dir)
    if not (run_dir / "config.json").exists():
        raise TinyserError(f"{run_dir}: not a tinyser run folder (no config.json)")
    return FoldModel(run_dir, fold)


def _tensor_meta(d: dict) -> dict:
    scale, zero = d.get("quantization", (0.0, 0))
    return {"shape": [int(v) for v in d["shape"]], "dtype": np.dtype(d["dtype"]).name,
            "scale": float(scale), "zero_point": int(zero)}


def write_c_arrays(model_bytes: bytes, folder: str | os.PathLike, name: str = "g_model",
                   source_suffix: str = ".cc") -> list[Path]:
    """``model_data.h/.cc`` (16-byte aligned array) and ``model_ops.h`` (a
    MicroMutableOpResolver holding exactly the model's ops) for TFLite Micro.
    ``source_suffix=".cpp"`` names the source ``model_data.cpp`` (Arduino
    compiles ``.cpp``, not ``.cc``).

    >>> write_c_arrays(blob, "out/c")   # doctest: +SKIP
    [PosixPath('out/c/model_data.h'), PosixPath('out/c/model_data.cc'), PosixPath('out/c/model_ops.h')]
    """
    from .tflite import model_ops

    folder = Path(folder)
    ops = model_ops(model_bytes)
    rows = [", ".join(f"0x{b:02x}" for b in model_bytes[i:i + 16]) for i in range(0, len(model_bytes), 16)]
    header = (f"// Generated by tinyser {__version__}. The model's ops: {', '.join(ops)}.\n"
              "#pragma once\n#include <cstdint>\n\n"
              f"extern const unsigned char {name}[];\nextern const unsigned int {name}_len;\n")
    source = (f"// Generated by tinyser {__version__}.\n#include \"model_data.h\"\n\n"
              f"alignas(16) const unsigned char {name}[] = {{\n  " + ",\n  ".join(rows) + "\n};\n"
              f"const unsigned int {name}_len = {len(model_bytes)};\n")
    adds = "\n".join(f"  if (resolver.Add{_resolver_method(op)}() != kTfLiteOk) return kTfLiteError;" for op in ops)
    resolver = (f"// Generated by tinyser {__version__}: exactly the ops the model uses.\n#pragma once\n"
                "#include \"tensorflow/lite/micro/micro_mutable_op_resolver.h\"\n\n"
                f"constexpr int kTinyserOpCount = {len(ops)};\n"
                "using TinyserOpResolver = tflite::MicroMutableOpResolver<kTinyserOpCount>;\n\n"
                "inline TfLiteStatus RegisterTinyserOps(TinyserOpResolver& resolver) {\n"
                f"{adds}\n  return kTfLiteOk;\n}}\n")
    paths = [folder / "model_data.h", folder / f"model_data{source_suffix}", folder / "model_ops.h"]
    for path, text in zip(paths, (header, source, resolver)):
        atomic_write(path, lambda f, t=text: f.write(t.encode()))
    return paths


# MicroMutableOpResolver method names that are not the CamelCase of the op name
_RESOLVER_EXCEPTIONS = {"CONV_2D": "Conv2D", "DEPTHWISE_CONV_2D": "DepthwiseConv2D",
                        "AVERAGE_POOL_2D": "AveragePool2D", "MAX_POOL_2D": "MaxPool2D",
                        "UNIDIRECTIONAL_SEQUENCE_LSTM": "UnidirectionalSequenceLSTM"}


def _resolver_method(op: str) -> str:
    """``FULLY_CONNECTED`` -> ``FullyConnected`` (MicroMutableOpResolver::AddFullyConnected)."""
    return _RESOLVER_EXCEPTIONS.get(op) or "".join(w.capitalize() for w in op.split("_"))
