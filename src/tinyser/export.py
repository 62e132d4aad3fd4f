"""Exporting a trained fold of a run folder: self-describing ``.tflite`` files
in float32, float16, dynamic-range and full-int8 form (metadata:
:class:`tinyser.tflite.ModelMetadata`), the C arrays of the int8 model for
TFLite Micro (:func:`tinyser.deploy.model_data.write_c_arrays`) and the float
model as ONNX. Training side: needs the ``train`` extra (and ``onnx`` for ONNX).
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Sequence

import numpy as np

from .cache import atomic_write, check_outputs
from .errors import ConfigError, TinyserError
from .experiment import FoldModel, default_export_dir, load_fold
from .tflite import METADATA_NAME

__all__ = ["ensure_exported", "export_fold", "export_onnx", "export_run"]


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


def export_fold(fold_data: FoldModel, quants: Sequence[str], out: str | os.PathLike | None = None,
                overwrite: bool = False, onnx: bool = False) -> list[Path]:
    """:func:`export_run` for a fold already loaded with :func:`load_fold`."""
    from .deploy.model_data import write_c_arrays
    from .tflite import QUANT_MODES, convert, embed_metadata

    bad = [q for q in quants if q not in QUANT_MODES]
    if bad:
        raise ConfigError(f"unknown quantisation {', '.join(bad)}; choose from {', '.join(QUANT_MODES)}")
    out = Path(out) if out else default_export_dir(fold_data.run_dir, fold_data.fold)
    targets = {q: out / f"{fold_data.config.model}-{q}.tflite" for q in quants}
    onnx_path = out / f"{fold_data.config.model}-float32.onnx"
    check_outputs([*targets.values(), *([onnx_path] if onnx else [])], overwrite)
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


def export_onnx(fold_data: FoldModel, path: Path, atol: float = 1e-4) -> Path:
    """The float model as ONNX (tf2onnx), metadata ``tinyser`` in its
    metadata_props; refused unless onnxruntime reproduces Keras' outputs."""
    from .extras import need

    ort = need("onnxruntime", "ONNX export")
    tf = need("tensorflow", "ONNX export")
    tf2onnx = need("tf2onnx", "ONNX export")

    model = fold_data.model
    spec = (tf.TensorSpec((None, *model.input_shape[1:]), tf.float32, name="features"),)

    @tf.autograph.experimental.do_not_convert
    def forward(x):
        return model(x, training=False)

    proto, _ = tf2onnx.convert.from_function(tf.function(forward), input_signature=spec, opset=17)
    entry = proto.metadata_props.add()
    entry.key, entry.value = METADATA_NAME, fold_data.metadata("float32", None).to_json()
    blob = proto.SerializeToString()
    x = fold_data.representative(16)
    session = ort.InferenceSession(blob, providers=["CPUExecutionProvider"])
    diff = float(np.max(np.abs(session.run(None, {session.get_inputs()[0].name: x})[0] -
                                np.asarray(model(x, training=False)))))
    if diff > atol:
        raise TinyserError(f"{path}: ONNX outputs differ from Keras by {diff:.2g} (> {atol})")
    atomic_write(path, lambda f: f.write(blob))
    return path


def ensure_exported(fm: FoldModel, quants: Sequence[str]) -> dict[str, Path]:
    """The fold's ``.tflite`` per quantisation in its default export folder,
    exporting those that are not there yet."""
    out = default_export_dir(fm.run_dir, fm.fold)
    paths = {q: out / f"{fm.config.model}-{q}.tflite" for q in quants}
    missing = [q for q, p in paths.items() if not p.exists()]
    if missing:
        export_fold(fm, missing, out)
    return paths
