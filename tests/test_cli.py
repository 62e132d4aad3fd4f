"""The command line: help, scans with bad files, features with the cache, one-line errors."""
from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
from conftest import write_tone
from typer.testing import CliRunner

from tinyser.cli import app
from tinyser.features import FeatureSet

runner = CliRunner()


def run(*args):
    return runner.invoke(app, [str(a) for a in args])


@pytest.mark.parametrize("cmd", [[], ["datasets"], ["datasets", "scan"], ["features"]])
def test_help(cmd):
    r = run(*cmd, "--help")
    assert r.exit_code == 0 and "Usage" in r.output


@pytest.fixture
def messy_folder(tmp_path):
    """Good files (stereo 44.1 kHz, mono 8 kHz) beside an empty file, a text file named .wav
    and a truncated wav, in a folder-per-label tree."""
    root = tmp_path / "mine"
    write_tone(root / "happy" / "stereo44k.wav", 1.0, 44100, channels=2)
    write_tone(root / "sad" / "mono8k.wav", 1.0, 8000)
    write_tone(root / "sad" / "other.wav", 0.5, 16000)
    (root / "happy" / "empty.wav").write_bytes(b"")
    (root / "sad" / "notes.wav").write_text("remember to record more\n")
    good = (root / "sad" / "mono8k.wav").read_bytes()
    (root / "happy" / "cut.wav").write_bytes(good[: len(good) // 2])
    return root


def test_scan_lists_good_files_and_names_bad_ones(messy_folder):
    r = run("datasets", "scan", messy_folder, "--json")
    assert r.exit_code == 0, r.output
    s = json.loads(r.stdout)
    assert s["corpus"] == "folders" and s["n_files"] == 3 and s["classes"] == {"sad": 2, "happy": 1}
    reasons = {p.rsplit("/", 1)[-1]: why for p, why in ((k["path"], k["reason"]) for k in s["skipped"])}
    assert set(reasons) == {"empty.wav", "notes.wav", "cut.wav"}
    assert "empty" in reasons["empty.wav"] and "text" in reasons["notes.wav"]
    assert "truncated" in reasons["cut.wav"]
    table = run("datasets", "scan", messy_folder)
    assert table.exit_code == 0 and "notes.wav" in table.output and "skipped" in table.output


def test_features_go_on_past_bad_files_and_refuse_to_overwrite(messy_folder, tmp_path):
    out = tmp_path / "f.npz"
    r = run("features", messy_folder, "--frontend", "logmel", "--window", "1.0", "--out", out)
    assert r.exit_code == 0, r.output
    fs = FeatureSet.load(out)
    assert len(fs.clip_ids) == 3 and fs.features.shape[1:] == (63, 40)
    assert "skipped" in r.stderr and "cut.wav" in r.stderr
    again = run("features", messy_folder, "--out", out)
    assert again.exit_code == 1 and "already exists" in again.stderr
    assert run("features", messy_folder, "--out", out, "--force", "-p", "n_mfcc=13").exit_code == 0
    assert FeatureSet.load(out).features.shape[-1] == 13


def test_errors_are_one_line_without_traceback(tmp_path):
    for args in (["datasets", "scan", tmp_path / "missing"],
                 ["datasets", "scan", tmp_path, "--labels", "nonsense"],
                 ["features", tmp_path, "--out", tmp_path / "x.npz", "--frontend", "nope"]):
        p = subprocess.run([sys.executable, "-m", "tinyser", *map(str, args)], capture_output=True, text=True)
        assert p.returncode == 1, p.stderr
        assert "Traceback" not in p.stderr and len(p.stderr.strip().splitlines()) == 1, p.stderr


@pytest.mark.corpus
def test_emodb_scan_counts(emodb_dir):
    s = json.loads(run("datasets", "scan", emodb_dir, "--json").stdout)
    assert (s["corpus"], s["n_files"], len(s["speakers"])) == ("emodb", 535, 10)
    assert s["classes"] == {"anger": 127, "boredom": 81, "neutral": 79, "happiness": 71, "fear": 69,
                            "sadness": 62, "disgust": 46}


@pytest.mark.corpus
def test_ravdess_scan_common6(ravdess_dir):
    native = json.loads(run("datasets", "scan", ravdess_dir, "--json").stdout)
    assert (native["corpus"], native["n_files"], len(native["classes"]), len(native["speakers"])) == \
        ("ravdess", 1194, 8, 20)
    c6 = json.loads(run("datasets", "scan", ravdess_dir, "--labels", "common6", "--json").stdout)
    assert len(c6["classes"]) == 6
    assert c6["classes"]["neutral"] == native["classes"]["neutral"] + native["classes"]["calm"]


@pytest.mark.corpus
def test_emodb_features_then_cache(emodb_dir, tmp_path, monkeypatch):
    monkeypatch.setenv("TINYSER_CACHE", str(tmp_path / "cache"))
    r = run("features", emodb_dir, "--frontend", "mfcc", "--out", tmp_path / "a.npz")
    assert r.exit_code == 0, r.output
    entries = sorted((tmp_path / "cache").rglob("*.npy"))
    assert len(entries) == 535
    mtimes = [e.stat().st_mtime_ns for e in entries]
    assert run("features", emodb_dir, "--frontend", "mfcc", "--out", tmp_path / "b.npz").exit_code == 0
    assert [e.stat().st_mtime_ns for e in entries] == mtimes   # nothing recomputed
    a, b = FeatureSet.load(tmp_path / "a.npz"), FeatureSet.load(tmp_path / "b.npz")
    # the original EMO-DB: 535 clips of 1.2-9.0 s, so some give more than one 3 s window
    assert a.features.shape[1:] == (188, 40) and len(np.unique(a.clip_index)) == 535 < a.features.shape[0]
    assert len(set(a.groups.tolist())) == 10
    np.testing.assert_array_equal(a.features, b.features)
    assert sorted(set(a.labels.tolist())) == sorted(a.classes) and len(a.classes) == 7
