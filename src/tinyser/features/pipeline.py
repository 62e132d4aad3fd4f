"""Features for a whole dataset: audio → segments → frontend, per file,
cached on disk, with bad files reported rather than fatal."""
from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from typing import Sequence

import numpy as np

from .. import __version__
from ..audio import SegmentConfig, load
from ..cache import FeatureCache, atomic_write, config_digest
from ..errors import AudioError, TinyserError
from ..progress import track
from .base import FrontendConfig

# bump when a change to the code alters the features a config produces
FEATURES_VERSION = 1


def code_key(frontend: FrontendConfig) -> dict:
    """What, besides its config, decides a frontend's features: the prosody analysis's version
    for a config with prosody channels (empty otherwise, so other caches stay valid)."""
    from .prosody import ANALYSIS_VERSION

    return {"prosody_analysis": ANALYSIS_VERSION} if getattr(frontend, "prosody", False) else {}


@dataclass
class Failure:
    path: str
    reason: str


@dataclass
class FeatureSet:
    """Features of every segment of every clip, with labels and speaker groups.

    ``features`` holds raw (unstandardised) features ``(n, frames, n_features)``;
    ``clip_index[i]`` says which clip (row of ``clip_ids``/``paths``) segment i came from.
    """

    features: np.ndarray
    labels: np.ndarray
    groups: np.ndarray
    clip_index: np.ndarray
    clip_ids: list[str]
    paths: list[str]
    classes: list[str]
    frontend: dict
    segments: dict
    failed: list[Failure] = field(default_factory=list)

    @property
    def y(self) -> np.ndarray:
        """Class indices into ``classes``."""
        lookup = {c: i for i, c in enumerate(self.classes)}
        return np.array([lookup[label] for label in self.labels], dtype=np.int64)

    def save(self, path: str | os.PathLike) -> None:
        """Write an ``.npz`` atomically (features, labels, speakers, configs)."""
        meta = {"frontend": self.frontend, "segments": self.segments, "classes": self.classes,
                "clip_ids": self.clip_ids, "paths": self.paths,
                "failed": [f.__dict__ for f in self.failed], "tinyser": __version__}
        arrays = {"features": self.features, "labels": self.labels.astype(str), "y": self.y,
                  "speakers": self.groups.astype(str), "clip_index": self.clip_index,
                  "meta": np.array(json.dumps(meta))}

        atomic_write(path, lambda f: np.savez(f, **arrays))

    @classmethod
    def load(cls, path: str | os.PathLike) -> FeatureSet:
        try:
            with np.load(path, allow_pickle=False) as z:
                meta = json.loads(str(z["meta"]))
                return cls(z["features"], z["labels"], z["speakers"], z["clip_index"], meta["clip_ids"],
                           meta["paths"], meta["classes"], meta["frontend"], meta["segments"],
                           [Failure(**f) for f in meta["failed"]])
        except (OSError, KeyError, ValueError) as e:
            raise TinyserError(f"{path}: not a tinyser feature file ({e})") from None


def file_features(path: str | os.PathLike, frontend: FrontendConfig,
                  segments: SegmentConfig = SegmentConfig()) -> np.ndarray:
    """Raw features of every segment of one file: ``(n_segments, frames, n_features)``.

    >>> file_features("clip.wav", get_config("mfcc")).shape   # doctest: +SKIP
    (1, 188, 40)
    """
    y = load(path, frontend.sample_rate)
    return frontend.compute(segments.split(y, frontend.sample_rate))


def extract(records: Sequence, frontend: FrontendConfig, segments: SegmentConfig = SegmentConfig(), *,
            classes: Sequence[str] | None = None, cache_dir: str | os.PathLike | None = None,
            use_cache: bool = True, progress: bool = False) -> FeatureSet:
    """Features for dataset records (objects with ``path``, ``label``, ``group``, ``clip_id``).

    Files that cannot be used are listed in ``FeatureSet.failed`` with the
    reason; the rest go on. With the cache on, a re-run reads finished files
    from disk instead of decoding them, and a re-run over the very same files
    reads one entry for the whole set.

    >>> fs = extract(load_dataset("emodb").records, get_config("mfcc"))   # doctest: +SKIP
    """
    key_config = {"frontend": frontend.to_dict(), "segments": segments.to_dict(),
                  "features_version": FEATURES_VERSION, **code_key(frontend)}
    cache = FeatureCache(cache_dir, key_config) if use_cache else None
    set_key = _set_key(cache, records)
    per_record = cache.get_set(set_key) if set_key else None
    if per_record is None:
        per_record = [_record_features(rec.path, frontend, segments, cache)
                      for rec in track(records, len(records), "features", enabled=progress)]
        if set_key:
            cache.put_set(set_key, per_record)
    if cache is not None:
        cache.digests.save()
    return _assemble(records, per_record, frontend, segments, classes)


def _set_key(cache: FeatureCache | None, records: Sequence) -> str | None:
    if cache is None:
        return None
    try:
        return config_digest([cache.key(r.path) for r in records])
    except OSError:  # a missing file: no set entry; the per-file pass reports it
        return None


def _record_features(path, frontend, segments, cache) -> np.ndarray | str:
    """The features of one file, or the reason it cannot be used."""
    try:
        return _cached_features(path, frontend, segments, cache)
    except AudioError as e:
        return e.reason
    except OSError as e:
        return f"cannot read file ({e.strerror or e})"


def _assemble(records, per_record, frontend, segments, classes) -> FeatureSet:
    feats, labels, groups, clip_index, clip_ids, paths, failed = [], [], [], [], [], [], []
    for rec, x in zip(records, per_record):
        if isinstance(x, str):
            failed.append(Failure(str(rec.path), x))
            continue
        feats.append(x)
        n = len(x)
        labels += [rec.label] * n
        groups += [rec.group] * n
        clip_index += [len(clip_ids)] * n
        clip_ids.append(rec.clip_id)
        paths.append(str(rec.path))
    if classes is None:
        classes = sorted(set(labels))
    shape = (0, 0, frontend.n_features)
    return FeatureSet(np.concatenate(feats) if feats else np.zeros(shape, np.float32),
                      np.array(labels, dtype=str), np.array(groups, dtype=str),
                      np.array(clip_index, dtype=np.int64), clip_ids, paths, list(classes),
                      frontend.to_dict(), segments.to_dict(), failed)


def _cached_features(path, frontend, segments, cache: FeatureCache | None) -> np.ndarray:
    if cache is None:
        return file_features(path, frontend, segments)
    key = cache.key(path)
    x = cache.get(key)
    if x is None:
        x = file_features(path, frontend, segments)
        cache.put(key, x)
    return x
