"""Dataset-wide feature extraction: cache hits, atomic entries, bad files reported."""
from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
from conftest import write_tone

from tinyser import cache as cache_mod
from tinyser.audio import SegmentConfig
from tinyser.features import FeatureSet, extract, get_config
from tinyser.features import pipeline as extract_mod


def _records(tmp_path, n=4, bad=False):
    recs = []
    for i in range(n):
        p = write_tone(tmp_path / f"c{i}.wav", 1.0 + 0.5 * i, 16000, freq=150 + 40 * i)
        recs.append(SimpleNamespace(path=str(p), label="ab"[i % 2], group=f"t:{i % 2}", clip_id=f"t:c{i}"))
    if bad:
        p = tmp_path / "bad.wav"
        p.write_text("not audio")
        recs.insert(1, SimpleNamespace(path=str(p), label="a", group="t:9", clip_id="t:bad"))
    return recs


def test_extract_segments_labels_and_bad_files(tmp_path):
    cfg = get_config("mfcc")
    fs = extract(_records(tmp_path, bad=True), cfg, SegmentConfig(window=1.0), cache_dir=tmp_path / "c")
    assert [f.reason for f in fs.failed] == ["not an audio file (looks like text)"]
    # clips of 1.0, 1.5, 2.0, 2.5 s in 1 s windows, tails zero-padded: 1 + 2 + 2 + 3
    assert fs.features.shape == (8, cfg.n_frames(16000), 40)
    assert fs.clip_index.tolist() == [0, 1, 1, 2, 2, 3, 3, 3]
    assert fs.labels.tolist() == ["a", "b", "b", "a", "a", "b", "b", "b"]
    assert fs.y.tolist() == [0, 1, 1, 0, 0, 1, 1, 1] and fs.classes == ["a", "b"]


def test_second_run_reads_the_cache(tmp_path, monkeypatch):
    recs, cfg = _records(tmp_path), get_config("logmel")
    first = extract(recs, cfg, cache_dir=tmp_path / "c")
    calls = []
    real = extract_mod.file_features
    monkeypatch.setattr(extract_mod, "file_features", lambda *a: calls.append(a) or real(*a))
    second = extract(recs, cfg, cache_dir=tmp_path / "c")
    assert calls == []
    np.testing.assert_array_equal(first.features, second.features)
    extract(recs, cfg.replace(n_mels=32), cache_dir=tmp_path / "c")   # another config: recomputed
    assert len(calls) == len(recs)
    write_tone(tmp_path / "c0.wav", 1.0, 16000, freq=999)             # new content: recomputed
    extract(recs, cfg, cache_dir=tmp_path / "c")
    assert len(calls) == len(recs) + 1


def test_interrupted_write_leaves_no_entry(tmp_path, monkeypatch):
    cache = cache_mod.FeatureCache(tmp_path, {"frontend": "x"})
    cache.put("warm", np.zeros(1))   # config.json written

    def killed(f, *a, **kw):
        f.write(b"\x93NUMPY partial")
        raise KeyboardInterrupt
    monkeypatch.setattr(np, "save", killed)
    with pytest.raises(KeyboardInterrupt):
        cache.put("abcd", np.ones(10))
    monkeypatch.undo()
    assert cache.get("abcd") is None
    assert not [p for p in tmp_path.rglob("*") if p.name.endswith(".tmp")]
    cache.put("abcd", np.ones(10))
    assert cache.get("abcd").sum() == 10


def test_damaged_entry_is_a_miss(tmp_path):
    cache = cache_mod.FeatureCache(tmp_path, {"frontend": "x"})
    cache.put("k1", np.ones(3))
    cache._path("k1").write_bytes(b"garbage")
    assert cache.get("k1") is None


def test_feature_set_round_trip(tmp_path):
    fs = extract(_records(tmp_path, 2), get_config("mfcc", n_mfcc=13), use_cache=False)
    fs.save(tmp_path / "f.npz")
    back = FeatureSet.load(tmp_path / "f.npz")
    np.testing.assert_array_equal(back.features, fs.features)
    assert back.frontend == fs.frontend and back.clip_ids == fs.clip_ids
    assert back.groups.tolist() == fs.groups.tolist()


def test_whole_set_cache_hit_equals_first_run(tmp_path, monkeypatch):
    recs, cfg = _records(tmp_path, bad=True), get_config("mfcc", n_mfcc=13)
    first = extract(recs, cfg, SegmentConfig(window=1.0), cache_dir=tmp_path / "c")
    assert len(list((tmp_path / "c").rglob("sets/*.npz"))) == 1
    monkeypatch.setattr(cache_mod.FeatureCache, "get", lambda *a: pytest.fail("per-file read on a set hit"))
    second = extract(recs, cfg, SegmentConfig(window=1.0), cache_dir=tmp_path / "c")
    np.testing.assert_array_equal(first.features, second.features)
    assert second.clip_index.tolist() == first.clip_index.tolist() and second.failed == first.failed
