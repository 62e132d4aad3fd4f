"""The model file's schema: :class:`ModelMetadata`, everything needed to run a
tinyser model (labels, the full frontend with its standardisation, segment
length, voice-activity rule, input and output quantisation, training summary,
optional evaluation and licences), stored as JSON in the flatbuffer's metadata
under the name ``tinyser``, with a format version and the file's SHA-256.

One writer (:func:`embed_metadata`) and one reader (:func:`read_metadata`,
:func:`read_model` for a file) know the JSON layout, through
:meth:`ModelMetadata.to_dict` and :meth:`ModelMetadata.from_dict`. A file of
another format (older, newer or unknown), a ``.tflite`` without tinyser
metadata, or damaged metadata is refused in one line naming the file and what
to do. Everything here runs without TensorFlow (the flatbuffer schema ships
with LiteRT).
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import stat
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .. import __version__
from ..audio import SegmentConfig
from ..errors import TinyserError
from ..features import Frontend
from ..vad import VoiceConfig

METADATA_NAME = "tinyser"
#: The layout :meth:`ModelMetadata.to_dict` writes. 1: tinyser 0.1.0 before ModelMetadata
#: (``sample_rate`` stored beside the frontend's); 2: ModelMetadata (the sample rate only in the frontend).
METADATA_FORMAT = 2
#: Metadata key of the flatbuffer's SHA-256, taken with this key's own value as 64 zeros
CHECKSUM_KEY = "sha256"
_ZEROS = "0" * 64
#: Larger files are not models tinyser made (the biggest is a few MB)
MAX_MODEL_BYTES = 256 << 20
#: The longest window a model may have (seconds)
MAX_WINDOW = 60


class MetadataError(TinyserError):
    """A model's metadata is missing, of another format, or damaged (one line, naming the file)."""


class _Bad(ValueError):
    """A damaged entry, in words (shown without the exception's name)."""


@dataclass(frozen=True)
class TensorSpec:
    """A model input or output tensor: shape (batch first), dtype and int8 quantisation
    (``scale`` 0 for float tensors).

    >>> TensorSpec((1, 122, 40), "int8", 0.062, 32).quantized
    True
    """

    shape: tuple[int, ...]
    dtype: str
    scale: float = 0.0
    zero_point: int = 0

    @property
    def quantized(self) -> bool:
        return self.dtype in ("int8", "uint8", "int16") and self.scale > 0

    def to_dict(self) -> dict[str, Any]:
        return {"shape": list(self.shape), "dtype": self.dtype, "scale": self.scale, "zero_point": self.zero_point}

    @classmethod
    def from_dict(cls, d: Any, what: str = "tensor") -> TensorSpec:
        if not isinstance(d, dict):
            raise _Bad(f"'{what}' is not a JSON object")
        shape = d.get("shape")
        if not isinstance(shape, list) or not shape or \
                not all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in shape):
            raise _Bad(f"'{what}' has no valid shape")
        if not isinstance(d.get("dtype"), str) or not _number(d.get("scale")) or not _integer(d.get("zero_point")):
            raise _Bad(f"'{what}' needs a dtype, scale and zero_point")
        _no_extra(d, {"shape", "dtype", "scale", "zero_point"}, what)
        return cls(tuple(shape), d["dtype"], float(d["scale"]), int(d["zero_point"]))

    @classmethod
    def from_details(cls, d: dict) -> TensorSpec:
        """From LiteRT's ``get_input_details()``/``get_output_details()`` entry."""
        scale, zero = d.get("quantization", (0.0, 0))
        return cls(tuple(int(v) for v in d["shape"]), np.dtype(d["dtype"]).name, float(scale), int(zero))


@dataclass(frozen=True)
class TrainingSummary:
    """What a model was trained on: corpora, label scheme, protocol, fold, the
    fold's speakers and its scores (``note``: anything else, e.g. untrained weights)."""

    data: tuple[str, ...] = ()
    label_scheme: str | None = None
    protocol: str | None = None
    fold: int | None = None
    speakers: dict[str, list[str]] = field(default_factory=dict)
    fold_scores: dict[str, float] = field(default_factory=dict)
    run_scores: dict[str, float] = field(default_factory=dict)
    note: str | None = None

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["data"] = list(self.data)
        return d

    @classmethod
    def from_dict(cls, d: Any) -> TrainingSummary:
        if not isinstance(d, dict):
            raise _Bad("'training' is not a JSON object")
        _no_extra(d, {f.name for f in dataclasses.fields(cls)}, "training")
        d = dict(d)
        if not isinstance(d.get("data", []), list) or not all(isinstance(v, str) for v in d.get("data", [])):
            raise _Bad("'training.data' must be a list of paths")
        for key in ("speakers", "fold_scores", "run_scores"):
            if not isinstance(d.get(key, {}), dict):
                raise _Bad(f"'training.{key}' is not a JSON object")
        d["data"] = tuple(d.get("data", ()))
        return cls(**d)


@dataclass(frozen=True)
class Evaluation:
    """The cross-validated scores a shipped model carries (fractions, not percent)."""

    protocol: str
    ua: float
    ua_std: float
    wa: float
    f1: float
    wa_std: float | None = None
    f1_std: float | None = None
    per_class: dict[str, dict[str, float]] = field(default_factory=dict)
    per_corpus_ua: dict[str, float] = field(default_factory=dict)
    leave_one_corpus_out_ua: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: Any) -> Evaluation:
        if not isinstance(d, dict):
            raise _Bad("'evaluation' is not a JSON object")
        if not (all(_number(d.get(k)) for k in ("ua", "ua_std", "wa", "f1")) and isinstance(d.get("protocol"), str)):
            raise _Bad("'evaluation' needs ua, ua_std, wa, f1 and protocol")
        _no_extra(d, {f.name for f in dataclasses.fields(cls)}, "evaluation")
        for key in ("per_class", "per_corpus_ua", "leave_one_corpus_out_ua"):
            if not isinstance(d.get(key, {}), dict):
                raise _Bad(f"'evaluation.{key}' is not a JSON object")
        return cls(**d)


@dataclass(frozen=True)
class ModelMetadata:
    """Everything a tinyser model file says about itself.

    >>> from tinyser.inference import DEFAULT_MODEL
    >>> _, meta = read_model(DEFAULT_MODEL)
    >>> meta.labels[:2], meta.sample_rate, meta.segments.window, meta.deployable()
    (('neutral', 'happy'), 16000, 2.0, None)
    >>> ModelMetadata.from_dict(meta.to_dict()) == meta
    True
    """

    model: str                      # architecture name (tinyser.models)
    quantization: str               # float32, float16, dynamic or int8
    labels: tuple[str, ...]
    frontend: Frontend              # features, standardisation (fixed or adaptive)
    segments: SegmentConfig         # window length and padding, as in training
    input: TensorSpec
    output: TensorSpec
    voice: VoiceConfig = VoiceConfig()  # the voice-activity rule predict and the device apply
    model_params: dict[str, Any] = field(default_factory=dict)
    params: int | None = None
    macs: int | None = None         # multiply-accumulates per inference
    training: TrainingSummary = TrainingSummary()
    evaluation: Evaluation | None = None
    licences: tuple[str, ...] = ()
    name: str | None = None
    tinyser: str = __version__      # the version that wrote the file
    #: the file's checksum as read (written by :func:`embed_metadata`; not part of equality)
    sha256: str | None = field(default=None, compare=False)

    @property
    def sample_rate(self) -> int:
        """Audio samples per second the frontend expects (stored once, in the frontend)."""
        return int(self.frontend.config.sample_rate)

    @property
    def frame_seconds(self) -> float:
        """Seconds between two feature frames."""
        return self.frontend.frame_seconds

    @property
    def label_scheme(self) -> str:
        """The label scheme the model was trained with (``native`` when not recorded)."""
        return self.training.label_scheme or "native"

    def deployable(self) -> str | None:
        """Why this model cannot go to a microcontroller with tinyser's C frontend
        (None: it can). Only full-int8 models on the ``cmsis_mfcc`` (f32) frontend can:
        the C frontend reproduces exactly that frontend's features and input quantisation.

        >>> from tinyser.inference import DEFAULT_MODEL
        >>> meta = read_model(DEFAULT_MODEL)[1]
        >>> dataclasses.replace(meta, quantization="float32", input=TensorSpec((1, 122, 40), "float32")).deployable()
        'not a full-int8 model (input float32, output int8); export it with --quant int8'
        """
        cfg = self.frontend.config
        if cfg.name != "cmsis_mfcc":
            return (f"the model's frontend is {cfg.name!r}; the C frontend computes only 'cmsis_mfcc' "
                    "(train with --frontend cmsis_mfcc)")
        if cfg.dtype != "f32":
            return f"the C frontend computes cmsis_mfcc with dtype 'f32', the model's is {cfg.dtype!r}"
        if (self.input.dtype, self.output.dtype) != ("int8", "int8") or self.input.scale <= 0:
            return (f"not a full-int8 model (input {self.input.dtype}, output {self.output.dtype}); "
                    "export it with --quant int8")
        return None

    # ----------------------------------------------------------------- the JSON layout (format 2)

    def to_dict(self) -> dict[str, Any]:
        """The JSON object stored in the file (without its checksum)."""
        return {
            "format": METADATA_FORMAT, "tinyser": self.tinyser, "name": self.name,
            "model": self.model, "model_params": dict(self.model_params), "quantization": self.quantization,
            "labels": list(self.labels), "frontend": self.frontend.to_dict(), "segments": self.segments.to_dict(),
            "voice": self.voice.to_dict(), "input": self.input.to_dict(), "output": self.output.to_dict(),
            "params": self.params, "macs": self.macs, "training": self.training.to_dict(),
            "evaluation": None if self.evaluation is None else self.evaluation.to_dict(),
            "licences": list(self.licences),
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)

    @classmethod
    def from_dict(cls, d: Any, where: str = "") -> ModelMetadata:
        """Read and check the stored JSON object; :class:`MetadataError` (one line,
        prefixed with ``where``) for another format or damaged, missing or mistyped entries."""
        if not isinstance(d, dict):
            raise MetadataError(f"{where}damaged model: its tinyser metadata is not a JSON object")
        _check_format(d, where)
        try:
            return cls._from_dict(d)
        except Exception as e:  # ValueError/TypeError/KeyError/ConfigError from hand-edited or damaged entries
            raise MetadataError(f"{where}damaged model metadata: {_first_line(e)}") from None

    @classmethod
    def _from_dict(cls, d: dict) -> ModelMetadata:
        known = {f.name for f in dataclasses.fields(cls)} - {"sha256"}
        _no_extra(d, known | {"format", CHECKSUM_KEY}, "metadata")
        for key, kind in (("model", str), ("quantization", str), ("labels", list), ("frontend", dict),
                          ("segments", dict), ("input", dict), ("output", dict)):
            if not isinstance(d.get(key), kind):
                raise _Bad(f"'{key}' is missing or not a {'JSON object' if kind is dict else kind.__name__}")
        labels = d["labels"]
        if len(labels) < 2 or not all(isinstance(k, str) and k for k in labels) or len(set(labels)) != len(labels):
            raise _Bad("'labels' must be two or more distinct names")
        inp, out = TensorSpec.from_dict(d["input"], "input"), TensorSpec.from_dict(d["output"], "output")
        if out.shape[-1] != len(labels):
            raise _Bad(f"{out.shape[-1]} outputs for {len(labels)} labels")
        for key in ("params", "macs"):
            if d.get(key) is not None and not _integer(d[key]):
                raise _Bad(f"'{key}' is not an integer")
        for key, kind in (("model_params", dict), ("licences", list), ("name", str), ("tinyser", str)):
            if d.get(key) is not None and not isinstance(d[key], kind):
                raise _Bad(f"'{key}' is not a {'JSON object' if kind is dict else kind.__name__}")
        try:
            frontend, segments = Frontend.from_dict(d["frontend"]), SegmentConfig.from_dict(d["segments"])
        except Exception as e:
            raise _Bad(f"frontend or segments cannot be read ({_first_line(e)})") from None
        if not (0 < segments.window <= MAX_WINDOW):
            raise _Bad(f"a {segments.window:g} s window")
        try:
            voice = VoiceConfig.from_dict(d.get("voice"))
        except Exception as e:
            raise _Bad(f"voice cannot be read ({_first_line(e)})") from None
        return cls(
            model=d["model"], quantization=d["quantization"], labels=tuple(labels), frontend=frontend,
            segments=segments, input=inp, output=out, voice=voice, model_params=dict(d.get("model_params") or {}),
            params=d.get("params"), macs=d.get("macs"),
            training=TrainingSummary.from_dict(d["training"]) if d.get("training") is not None else TrainingSummary(),
            evaluation=Evaluation.from_dict(d["evaluation"]) if d.get("evaluation") is not None else None,
            licences=tuple(d.get("licences") or ()), name=d.get("name"), tinyser=d.get("tinyser") or "?",
            sha256=d.get(CHECKSUM_KEY))


def _check_format(d: dict, where: str) -> None:
    fmt = d.get("format")
    writer = f" (written by tinyser {d['tinyser']})" if isinstance(d.get("tinyser"), str) else ""
    reads = f"this tinyser ({__version__}) reads format {METADATA_FORMAT}"
    if _integer(fmt) and fmt == METADATA_FORMAT:
        return
    if _integer(fmt) and fmt > METADATA_FORMAT:
        raise MetadataError(f"{where}model metadata format {fmt}{writer} is newer than {reads}; "
                            "upgrade tinyser (pip install -U tinyser)")
    if _integer(fmt) and 1 <= fmt < METADATA_FORMAT:
        raise MetadataError(f"{where}old model metadata format {fmt}{writer}; {reads}: export the model again "
                            "with this tinyser (`tinyser export RUN`), or use the tinyser that wrote it")
    raise MetadataError(f"{where}unknown model metadata format {fmt!r}{writer}; {reads} "
                        "(is it a model exported by tinyser?)")


def _number(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _integer(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _no_extra(d: dict, known: set[str], what: str) -> None:
    extra = sorted(set(d) - known)
    if extra:
        raise _Bad(f"unknown entr{'ies' if len(extra) > 1 else 'y'} in '{what}': {', '.join(map(str, extra))}")


def _first_line(e: Exception) -> str:
    text = str(e).strip().splitlines()
    if isinstance(e, _Bad):
        return text[0]
    return f"{type(e).__name__}: {text[0]}" if text else type(e).__name__


def _name(n) -> str:
    return n.decode() if isinstance(n, bytes) else str(n)


# --------------------------------------------------------------------------- the writer

def embed_metadata(model_bytes: bytes, meta: ModelMetadata) -> bytes:
    """The flatbuffer with ``meta`` stored as metadata ``tinyser`` (replacing an
    earlier one) and the file's SHA-256 stamped into it. Interpreters ignore
    metadata they do not know.

    >>> from tinyser.inference import DEFAULT_MODEL
    >>> blob, meta = read_model(DEFAULT_MODEL)
    >>> read_metadata(embed_metadata(blob, dataclasses.replace(meta, name="mine"))).name
    'mine'
    """
    if not isinstance(meta, ModelMetadata):
        raise TypeError(f"embed_metadata writes a ModelMetadata, not {type(meta).__name__}")
    return embed_unchecked(model_bytes, meta.to_dict())


def embed_unchecked(model_bytes: bytes, meta: dict) -> bytes:
    """:func:`embed_metadata` for a raw JSON object, written as it is: for tests and
    tools that need files with metadata tinyser refuses (hand-edited, old formats)."""
    from ai_edge_litert import schema_py_generated as fb
    from ai_edge_litert.tools import flatbuffer_utils

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
    field_ = _checksum_field(_ZEROS)
    if blob.count(field_) != 1:
        raise TinyserError("cannot place the checksum in the model's metadata")
    return blob.replace(field_, _checksum_field(hashlib.sha256(blob).hexdigest()))


def checksum_ok(blob: bytes, digest: str) -> bool:
    """Whether ``blob`` is the flatbuffer that was stamped with ``digest`` (see :func:`embed_metadata`).

    >>> blob = _stamp(b'{"sha256": "' + b"0" * 64 + b'"}')
    >>> digest = json.loads(blob)["sha256"]
    >>> checksum_ok(blob, digest), checksum_ok(blob.replace(b"{", b"["), digest)
    (True, False)
    """
    field_ = _checksum_field(digest)
    if blob.count(field_) != 1:
        return False
    return hashlib.sha256(blob.replace(field_, _checksum_field(_ZEROS))).hexdigest() == digest


# --------------------------------------------------------------------------- the reader

def read_metadata_dict(model_bytes: bytes, path: str | os.PathLike | None = None) -> dict:
    """The raw JSON object of a flatbuffer's ``tinyser`` metadata, unchecked; one-line
    :class:`MetadataError` if it has none or it cannot be read (however the bytes are damaged)."""
    from ai_edge_litert import schema_py_generated as fb

    where = f"{path}: " if path else ""
    if len(model_bytes) < 16 or model_bytes[4:8] != b"TFL3":
        raise MetadataError(f"{where}not a TFLite model (no 'TFL3' identifier)")
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
        why = "offsets point outside the file" if type(e).__name__ in ("error", "IndexError") else type(e).__name__
        raise MetadataError(f"{where}damaged TFLite model: its structure cannot be read ({why})") from None
    if data is None:
        raise MetadataError(f"{where}a TFLite model without tinyser metadata: tinyser runs only models it exported "
                            "(`tinyser export RUN`), which carry their labels and frontend")
    try:
        meta = json.loads(data.decode())
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise MetadataError(f"{where}damaged model: its tinyser metadata is not valid JSON") from None
    if not isinstance(meta, dict):
        raise MetadataError(f"{where}damaged model: its tinyser metadata is not a JSON object")
    return meta


def read_metadata(model_bytes: bytes, path: str | os.PathLike | None = None) -> ModelMetadata:
    """The :class:`ModelMetadata` of a flatbuffer (its checksum is not verified: see :func:`read_model`)."""
    return ModelMetadata.from_dict(read_metadata_dict(model_bytes, path), f"{path}: " if path else "")


def read_model(path: str | os.PathLike, check: bool = True) -> tuple[bytes, ModelMetadata]:
    """A model file's bytes and its metadata; one-line :class:`~tinyser.errors.TinyserError`
    naming the file when it cannot be read, is not a tinyser model, is of another metadata
    format, or is damaged: its checksum (recorded at export) does not match, its metadata is
    incomplete, or (``check``) LiteRT cannot load it. Whatever the damage, the result is
    that one line, never a traceback.

    >>> from tinyser.inference import DEFAULT_MODEL
    >>> blob, meta = read_model(DEFAULT_MODEL)
    >>> meta.labels
    ('neutral', 'happy', 'sad', 'angry', 'fearful', 'disgust')
    """
    p = Path(path)
    try:
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
    raw = read_metadata_dict(blob, path)
    digest = raw.get(CHECKSUM_KEY)
    if digest is not None and not (isinstance(digest, str) and checksum_ok(blob, digest)):
        raise MetadataError(f"{path}: damaged model: its bytes do not match the checksum recorded at export "
                            "(a corrupted copy? export or download it again)")
    meta = ModelMetadata.from_dict(raw, f"{path}: ")
    if check:
        check_loads(blob, meta, path)
    return blob, meta


def check_loads(blob: bytes, meta: ModelMetadata, path) -> None:
    """Refuse a model LiteRT cannot load, or whose tensors differ from what its metadata says."""
    from .litert import LiteRTModel

    try:
        m = LiteRTModel(blob)
        shapes = [int(v) for v in m.input_details["shape"]], [int(v) for v in m.output_details["shape"]]
    except Exception as e:  # TinyserError, ValueError, RuntimeError from a damaged graph
        raise TinyserError(f"{path}: damaged model: LiteRT cannot load it ({_first_line(e)})") from None
    want = list(meta.input.shape), list(meta.output.shape)
    if shapes[0][1:] != want[0][1:] or shapes[1][1:] != want[1][1:]:
        raise TinyserError(f"{path}: damaged model: tensors {shapes[0]} -> {shapes[1]} differ from its metadata's "
                           f"{want[0]} -> {want[1]}")
