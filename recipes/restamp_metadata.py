"""Rewrite the metadata of a format-1 tinyser model (tinyser 0.1.0 before
``ModelMetadata``) in the current format, without touching its weights: the
flatbuffer's graph and tensors stay byte for byte, only the ``tinyser``
metadata (and so the file's SHA-256) changes.

    python recipes/restamp_metadata.py src/tinyser/assets/default.tflite

Format 1 -> 2: ``sample_rate`` is dropped (it is the frontend's, which must agree).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from tinyser.cache import atomic_write
from tinyser.tflite import LiteRTModel, ModelMetadata, checksum_ok, embed_metadata, read_metadata_dict


def upgrade(raw: dict) -> dict:
    """A format-1 metadata object as format 2."""
    if raw.get("format") != 1:
        raise SystemExit(f"expected metadata format 1, found {raw.get('format')!r}")
    d = {k: v for k, v in raw.items() if k not in ("sample_rate", "sha256", "format")}
    if raw.get("sample_rate") != raw["frontend"].get("sample_rate"):
        raise SystemExit(f"sample_rate {raw.get('sample_rate')} differs from the frontend's")
    return {**d, "format": 2}


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("model", type=Path)
    args = ap.parse_args(argv)
    blob = args.model.read_bytes()
    raw = read_metadata_dict(blob, args.model)
    if raw.get("sha256") and not checksum_ok(blob, raw["sha256"]):
        raise SystemExit(f"{args.model}: its checksum does not match; not rewriting a damaged file")
    meta = ModelMetadata.from_dict(upgrade(raw), f"{args.model}: ")
    new = embed_metadata(blob, meta)
    before, after = LiteRTModel(blob), LiteRTModel(new)
    x = np.random.default_rng(0).standard_normal((8, *before.input_shape)).astype(np.float32)
    if not np.array_equal(before.predict(x), after.predict(x)):  # same graph and weights: same outputs
        raise SystemExit(f"{args.model}: the rewritten model's outputs differ; nothing written")
    atomic_write(args.model, lambda f: f.write(new))
    print(f"{args.model}: metadata format 1 -> 2, sha256 {raw.get('sha256')} -> {read_metadata_dict(new)['sha256']}",
          file=sys.stderr)


if __name__ == "__main__":
    main()
