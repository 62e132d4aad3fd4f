"""Bounded, honest and safe on every input (issue 14): each test first
reproduces a failure a user met (limits, damaged models, nonsense settings,
outputs that clobber, a noisy terminal, unreadable plots, training that fails
late), then checks the fix. Memory is asserted with tracemalloc, never time.
"""
from __future__ import annotations

import json
import os
import signal
import struct
import subprocess
import sys
import tracemalloc
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from conftest import DATA, tone, toy_config, write_tone
from typer.testing import CliRunner

from tinyser.cli import app
from tinyser.errors import AudioError, ConfigError, TinyserError
from tinyser.fuzz import mutations
from tinyser.inference import DEFAULT_MODEL, MAX_WINDOWS, Model, load_model, predict_files

runner = CliRunner()


def run(*args):
    return runner.invoke(app, [str(a) for a in args])


def one_line_error(r, *words):
    text = r.output.strip()
    assert r.exit_code != 0 and "Traceback" not in text, text
    assert r.exception is None or isinstance(r.exception, SystemExit), repr(r.exception)
    assert text.count("\n") == 0, text
    for w in words:
        assert w in text, text


@pytest.fixture(autouse=True)
def _alarm():
    """signal.alarm(n) in a test raises TimeoutError after n seconds: a hang fails, it does not stall."""
    def timeout(*_):
        raise TimeoutError("hang")
    old = signal.signal(signal.SIGALRM, timeout)
    yield
    signal.alarm(0)
    signal.signal(signal.SIGALRM, old)


@pytest.fixture(scope="module")
def model():
    return load_model("default")


@pytest.fixture(scope="module")
def wav(tmp_path_factory) -> Path:
    """A 2.5 s 16-bit WAV: a real RAVDESS clip when the corpus is there, a tone otherwise."""
    root = tmp_path_factory.mktemp("wav")
    clip = DATA / "ravdess" / "Actor_01" / "03-01-05-02-01-01-01.wav"
    if clip.exists():
        y, sr = sf.read(clip, dtype="float32")
        y = y[:int(2.5 * sr)] if y.ndim == 1 else y[:int(2.5 * sr)].mean(axis=1)
    else:
        y, sr = tone(2.5), 16000
    sf.write(root / "clip.wav", y, sr, subtype="PCM_16")
    return root / "clip.wav"


class peak_memory:
    """``with peak_memory() as m: ...`` then ``m.peak``: the most bytes Python held at once inside."""

    def __enter__(self):
        tracemalloc.start()
        return self

    def __exit__(self, *exc):
        self.peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()


def patched(src: Path, dst: Path, offset: int, fmt: str, value: int) -> Path:
    b = bytearray(src.read_bytes())
    struct.pack_into(fmt, b, offset, value)
    dst.write_bytes(bytes(b))
    return dst


# ----------------------------------------------------------------------------- limits, bounded memory

@pytest.mark.parametrize("rate", [1, 2, 1000, 1_000_000])
def test_absurd_header_rates_are_refused_before_decoding(wav, tmp_path, rate, model):
    bad = patched(wav, tmp_path / f"r{rate}.wav", 24, "<I", rate)  # 1 Hz was read as 136 hours, forever
    with peak_memory() as mem:
        r = predict_files(model, [bad], progress=False)
    assert not r["results"] and f"sample rate {rate} Hz" in r["failed"][0]["reason"]
    assert mem.peak < 20e6


@pytest.mark.parametrize("field,offset,fmt,value,words", [
    ("channels", 22, "<H", 513, "513 channels"),
    ("bits", 34, "<H", 7, "7 bits per sample"),
    ("block_align", 32, "<H", 3, "inconsistent"),
])
def test_header_fields_are_cross_checked(wav, tmp_path, field, offset, fmt, value, words):
    bad = patched(wav, tmp_path / f"{field}.wav", offset, fmt, value)  # was decoded into garbage and labelled
    with pytest.raises(AudioError, match=words):
        load_model().predict_file(bad)


def test_tiny_hop_is_refused_at_once(wav):
    r = run("predict", wav, "--hop", "1e-6")  # grew to 24 GB and was killed
    one_line_error(r, "hop 1e-06 s", "one feature frame (0.016 s)")


class _Fast(Model):
    """The default model with a constant classifier: Stream's own memory, measured fast."""

    def __init__(self):
        base = load_model()
        self.__dict__.update(base.__dict__)

    def predict_windows(self, windows, *args, **kwargs):
        return np.full((len(windows), len(self.labels)), 1 / len(self.labels), np.float32)


def test_windows_are_scored_and_released_as_they_stream():
    m = _Fast()
    y = np.zeros(16000 * 20, np.float32)  # one 20 s block, a window every feature frame: 1,250 windows
    with peak_memory() as mem:
        s = m.stream(hop=m.frame_seconds)
        n = len(s.push(y) + s.finish())
    assert n == 1126
    assert mem.peak < 30e6  # all 1,126 windows of 2 s at once would be 144 MB


def test_summary_without_timeline_is_bounded_whatever_the_length():
    m = _Fast()
    blocks = (np.zeros(160000, np.float32) for _ in range(60))  # 10 minutes
    with peak_memory() as mem:
        r = m.stream(hop=0.1).run(blocks, timeline=False)
    assert r["n_windows"] == 5981 and r["windows"] == [] and r["duration"] == 600.0
    assert mem.peak < 10e6


def test_listen_keeps_nothing_when_asked(tmp_path):
    from tinyser.live import listen

    long = tmp_path / "long.wav"
    with sf.SoundFile(long, "w", 16000, 1, "PCM_16") as f:
        for k in range(30):
            f.write(tone(10.0, seed=k))
    seen, m = [], _Fast()
    with peak_memory() as mem:
        rows = listen(m, input=long, keep=False, on_window=lambda r: seen.append(r["start"]))
    assert rows == [] and len(seen) == 299 and mem.peak < 20e6  # 5 minutes heard, nothing kept


def test_absurd_window_counts_and_windows_are_refused(model):
    with pytest.raises(ConfigError, match="use a longer --hop"):
        model.stream(hop=model.frame_seconds).check_length(3600 * 10)
    assert MAX_WINDOWS >= 100_000
    with pytest.raises(ConfigError, match="shorter than this model's 2 s input"):
        model.stream(window=0.01)  # gave 479 windows of fearful 0.99
    with pytest.raises(ConfigError, match="too short"):
        model.stream(window=0.01, allow_short=True)
    assert model.stream(window=1.0, allow_short=True).window == 1.0
    with pytest.raises(ConfigError):
        model.predict(np.zeros(16000, np.float32), 1)  # an array at 1 Hz


# ----------------------------------------------------------------------------- damaged models

@pytest.fixture(scope="module")
def stamped(tmp_path_factory) -> Path:
    """The shipped model (which carries its checksum)."""
    from tinyser.tflite import read_model

    assert read_model(DEFAULT_MODEL)[1].sha256
    return DEFAULT_MODEL


def test_fuzzed_models_give_one_line_errors(stamped, tmp_path, model):
    """100 damaged copies of the shipped model: no traceback, no hang, nothing silently accepted."""
    y = tone(2.5)
    clean, accepted, tracebacks = 0, 0, []
    for i, (kind, blob) in enumerate(mutations(stamped.read_bytes(), 100, seed=14)):
        p = tmp_path / f"m{i}.tflite"
        p.write_bytes(blob)
        signal.alarm(20)  # a hang fails the test instead of stalling it
        try:
            Model(p).predict(y, 16000)
            accepted += 1
        except TinyserError as e:
            clean += 1
            assert str(e).startswith(str(p)) and "\n" not in str(e)
        except Exception as e:  # noqa: BLE001 - what the test is looking for
            tracebacks.append(f"{kind}: {type(e).__name__}: {e}")
        finally:
            signal.alarm(0)
    assert tracebacks == [] and accepted == 0 and clean == 100


def test_corrupted_weights_are_caught_by_the_checksum(stamped, tmp_path):
    blob = bytearray(stamped.read_bytes())
    blob[len(blob) // 3] ^= 0x10  # inside the weights: used to give different probabilities silently
    p = tmp_path / "flip.tflite"
    p.write_bytes(bytes(blob))
    with pytest.raises(TinyserError, match="checksum"):
        Model(p)
    for cmd in (["info", p], ["predict", "x.wav", "--model", p]):
        one_line_error(run(*cmd), str(p), "checksum")


def test_embed_metadata_stamps_and_rereads(stamped):
    from dataclasses import replace

    from tinyser.tflite import checksum_ok, embed_metadata, read_metadata

    meta = read_metadata(stamped.read_bytes())
    blob = embed_metadata(stamped.read_bytes(), replace(meta, name="x"))
    again = read_metadata(blob)
    assert again.name == "x" and checksum_ok(blob, again.sha256) and len(blob) < len(stamped.read_bytes()) + 64


@pytest.mark.parametrize("edit", [
    {"labels": ["only"]}, {"labels": "abc"}, {"sample_rate": 8000}, {"segments": {"window": "x"}},
    {"frontend": {"frontend": "nope"}}, {"input": {"shape": [1, 2]}}, {"evaluation": [1, 2]},
    {"output": {"shape": [1, 3], "dtype": "int8", "scale": 0.1, "zero_point": 0}},
])
def test_hand_edited_metadata_is_one_line(stamped, tmp_path, edit):
    from tinyser.tflite import embed_unchecked, read_metadata_dict

    blob = stamped.read_bytes()
    p = tmp_path / "edited.tflite"
    p.write_bytes(embed_unchecked(blob, {**read_metadata_dict(blob), **edit}))  # a valid checksum over bad metadata
    for cmd in (["info", p], ["deploy", "arduino", p, "--out", tmp_path / "sk"]):
        one_line_error(run(*cmd), str(p), "metadata")
    assert not (tmp_path / "sk").exists()


@pytest.mark.parametrize("blob", [b"", b"TFL3", os.urandom(5000), b"\x1c\x00\x00\x00TFL3" + os.urandom(3000)])
def test_non_models_are_one_line(tmp_path, blob):
    p = tmp_path / "x.tflite"
    p.write_bytes(blob)
    one_line_error(run("info", p), str(p))


def test_benchmark_refuses_a_damaged_model_up_front(stamped, tmp_path):
    blob = bytearray(stamped.read_bytes())
    blob[100] ^= 0x40
    bad = tmp_path / "bad.tflite"
    bad.write_bytes(bytes(blob))
    one_line_error(run("benchmark", bad, "--data", tmp_path), str(bad))


def test_deploy_refuses_what_predict_cannot_load(stamped, tmp_path):
    blob = bytearray(stamped.read_bytes())
    blob[len(blob) // 2] ^= 0x01
    bad = tmp_path / "bad.tflite"
    bad.write_bytes(bytes(blob))
    out = tmp_path / "sketch"
    r = run("deploy", "arduino", bad, "--out", out)
    one_line_error(r, str(bad), "checksum")
    assert not out.exists()


def test_deploy_refuses_absurd_hops_and_boards_it_does_not_fit(tmp_path):
    out = tmp_path / "sketch"
    one_line_error(run("deploy", "arduino", "default", "--out", out, "--hop", "1e9"), "--hop")
    r = run("deploy", "arduino", "default", "--out", out, "--hop", "0.02")  # cannot keep up: "fits: NO", exit 0
    assert r.exit_code == 1 and "does not fit" in r.output and "Traceback" not in r.output
    assert not out.exists()


def test_model_names_list_what_is_valid():
    for name in ("Default", "tiny"):
        one_line_error(run("predict", "x.wav", "--model", name), "'default'", ".tflite")


# ----------------------------------------------------------------------------- honest answers

def test_8khz_audio_gets_a_warning_in_json(model, tmp_path, wav):
    from tinyser.audio import load, resample

    y = load(wav, 8000)
    sf.write(tmp_path / "phone.wav", y, 8000)
    sf.write(tmp_path / "phone16k.wav", resample(y, 8000, 16000), 16000)  # resampled: the rate hides it
    r = run("predict", tmp_path / "phone.wav", tmp_path / "phone16k.wav", wav, "--json")
    assert r.exit_code == 0
    out = json.loads(r.stdout)
    warned = {Path(x["path"]).name: x["warnings"] for x in out["results"]}
    assert "8000 Hz" in warned["phone.wav"][0] and "3750 Hz" in warned["phone16k.wav"][0]
    assert warned[wav.name] == []
    assert "warning: " in r.stderr


# ----------------------------------------------------------------------------- safe outputs

def test_force_overwrites_regular_files_only(wav, tmp_path):
    from tinyser.cache import output_target

    with pytest.raises(TinyserError, match="a device"):  # checked without writing: a regression must not
        output_target("/dev/null")                        # replace the machine's /dev/null (it once did)
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    for target, words in [(fifo, "named pipe"), (tmp_path, "a folder")]:
        one_line_error(run("predict", wav, "--json", "--out", target, "--force"), words)
    assert fifo.is_fifo()
    link = tmp_path / "link.json"
    link.symlink_to(fifo)
    one_line_error(run("predict", wav, "--json", "--out", link, "--force"), f"link to {fifo}")
    assert fifo.is_fifo()
    real = tmp_path / "real.json"
    real.write_text("old")
    link2 = tmp_path / "link2.json"
    link2.symlink_to(real)
    one_line_error(run("predict", wav, "--json", "--out", link2), "already exists")
    assert run("predict", wav, "--json", "--out", link2, "--force").exit_code == 0
    assert link2.is_symlink() and json.loads(real.read_text())["results"]  # written through the link
    dangling = tmp_path / "dangling.json"
    dangling.symlink_to(tmp_path / "nowhere" / "x.json")
    one_line_error(run("predict", wav, "--json", "--out", dangling, "--force"), "does not exist")


def test_strict_exit_status_when_inputs_were_skipped(wav, tmp_path):
    bad = tmp_path / "bad.wav"
    bad.write_bytes(os.urandom(4000))
    assert run("predict", wav, bad).exit_code == 0
    r = run("predict", wav, bad, "--strict")
    assert r.exit_code == 3 and "1 files predicted, 1 skipped" in r.stderr


# ----------------------------------------------------------------------------- clean terminal

def test_reasons_for_pipes_devices_and_random_bytes(tmp_path):
    fifo = tmp_path / "p.wav"
    os.mkfifo(fifo)
    junk = tmp_path / "junk.wav"
    junk.write_bytes(os.urandom(100_000))
    r = predict_files(load_model(), [fifo, "/dev/zero", junk], progress=False)
    reasons = {Path(f["path"]).name: f["reason"] for f in r["failed"]}
    assert reasons == {"p.wav": "is a named pipe (FIFO), not an audio file",
                       "zero": "is a device, not an audio file",
                       "junk.wav": "not a readable audio file (unknown format)"}


def test_no_empty_table_and_no_progress_among_results(wav, tmp_path):
    bad = tmp_path / "bad.wav"
    bad.write_bytes(b"not audio at all")
    r = run("predict", bad)
    assert r.exit_code == 1 and "┏" not in r.output and "skipped" in r.stderr
    r = run("predict", wav, wav)
    assert r.exit_code == 0 and "ETA" not in r.output  # not a terminal: no progress line among the results


def test_info_shows_the_hop_predict_uses():
    r = run("info", "default")
    assert r.exit_code == 0 and "every 1 s in predict" in r.stdout and "verified" in r.stdout


def test_no_third_party_lines_on_stderr(tmp_path):
    """libmpg123's "Note:" lines and TensorFlow's absl/oneDNN lines go to file descriptor 2."""
    mp3 = tmp_path / "x.mp3"
    mp3.write_bytes(bytes(5000))
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    p = subprocess.run([sys.executable, "-m", "tinyser", "predict", str(mp3)], capture_output=True, text=True,
                       env=env, timeout=120)
    assert p.returncode == 1 and "Note:" not in p.stderr and p.stderr.count("\n") == 2, p.stderr
    p = subprocess.run([sys.executable, "-m", "tinyser", "export", str(tmp_path / "norun")], capture_output=True,
                       text=True, env=env, timeout=300)
    assert p.returncode == 1 and "absl" not in p.stderr and "oneDNN" not in p.stderr, p.stderr
    assert p.stderr.strip().count("\n") == 0, p.stderr


def test_datasets_scan_decodes_nan_and_silent_files(tmp_path, wav):
    root = tmp_path / "corpus"
    for label in ("calm", "loud"):
        write_tone(root / label / "ok.wav", 0.5)
    y = tone(0.5)
    y[100] = np.nan
    sf.write(root / "calm" / "nan.wav", y, 16000, subtype="FLOAT")
    sf.write(root / "loud" / "zero.wav", np.zeros(8000, np.float32), 16000)
    r = run("datasets", "scan", root, "--json")  # both were counted as usable
    summary = json.loads(r.stdout)
    assert summary["n_files"] == 2 and summary["n_skipped"] == 2
    reasons = sorted(s["reason"] for s in summary["skipped"])
    assert "NaN" in reasons[1] and "silent" in reasons[0]


def test_listen_refuses_negative_seconds(wav):
    one_line_error(run("listen", "--input", wav, "--seconds", "-1"), "--seconds")


# ----------------------------------------------------------------------------- plots

def _result(windows: int, hop: float = 1.0, labels=("a", "b", "c")) -> dict:
    rng = np.random.default_rng(0)
    rows = []
    for i in range(windows):
        p = rng.dirichlet(np.ones(len(labels)))
        p[0] = 1.0 if i == 0 else p[0]
        p = p / p.sum()
        rows.append({"start": i * hop, "end": i * hop + 2, "label": labels[int(p.argmax())],
                     "confidence": float(p.max()), "voiced": i % 7 != 3,
                     "probabilities": dict(zip(labels, map(float, p)))})
    return {"label": "a", "confidence": 1.0, "probabilities": dict.fromkeys(labels, 1 / 3),
            "duration": (windows - 1) * hop + 2, "windows": rows}


def test_plot_reads_at_a_glance(tmp_path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from tinyser import plot

    figs = []
    orig = plt.close
    plt.close = lambda fig=None: figs.append(fig)  # keep the figure to inspect it
    try:
        plot.plot_prediction(tone(31.0), 16000, _result(30), tmp_path / "p.png")
    finally:
        plt.close = orig
    fig = figs[0]
    fig.canvas.draw()
    ax_w, ax_s, ax_p = fig.axes
    assert "Hz" in ax_s.get_ylabel()
    assert ax_p.get_ylim()[1] > 1.0  # a confidence of exactly 1.0 is not hidden by the frame
    band = [c for c in ax_p.collections if len(c.get_facecolors()) == 30]
    assert band and len({tuple(np.round(c, 3)) for c in band[0].get_facecolors()}) > 3  # per-window colours
    for ax in (ax_w, ax_p):  # legends sit outside the data
        leg = ax.get_legend().get_window_extent()
        assert leg.x0 >= ax.get_window_extent().x1
    assert any("silent" in t.get_text() for t in ax_w.get_legend().get_texts())
    plt.close(fig)


def test_ten_minute_plot_in_bounded_memory(tmp_path):
    from tinyser.plot import plot_file

    long = tmp_path / "long.wav"
    with sf.SoundFile(long, "w", 16000, 1, "PCM_16") as f:
        for k in range(60):
            f.write(tone(10.0, seed=k))
    with peak_memory() as mem:
        plot_file(long, 16000, _result(599), tmp_path / "long.png")
    assert (tmp_path / "long.png").read_bytes()[:4] == b"\x89PNG"
    assert mem.peak < 80e6  # the whole file as float32 alone would be 38 MB; the old plot took 1 GB


# ----------------------------------------------------------------------------- training checks

def test_train_refuses_nan_and_negative_settings_before_making_a_folder(toy_manifest, tmp_path):
    out = tmp_path / "run"
    for opts in (["--window", "nan"], ["--lr", "nan"], ["--lr", "-1"], ["--gamma", "-2"], ["--lr", "inf"]):
        r = run("train", "--data", toy_manifest, "--out", out, *opts)
        one_line_error(r)
        assert not out.exists()


def test_train_on_one_class_fails_early_and_leaves_nothing(toy_manifest, tmp_path):
    from tinyser.experiment import run_training

    one = tmp_path / "one.csv"
    lines = toy_manifest.read_text().splitlines()
    one.write_text("\n".join([lines[0]] + [ln.replace(ln.split(",")[0], str(toy_manifest.parent / ln.split(",")[0]))
                                          for ln in lines[1:] if ",low," in ln]) + "\n")
    out = tmp_path / "run"
    with pytest.raises(TinyserError, match="only one class"):
        run_training(toy_config(one), out, progress=False)
    assert not out.exists()


def test_too_few_speakers_suggests_random(toy_manifest, tmp_path):
    from tinyser.experiment import run_training

    few = tmp_path / "few.csv"
    lines = toy_manifest.read_text().splitlines()
    few.write_text("\n".join([lines[0]] + [ln.replace(ln.split(",")[0], str(toy_manifest.parent / ln.split(",")[0]))
                                          for ln in lines[1:] if ln.endswith(",spk0")]) + "\n")
    out = tmp_path / "run"
    with pytest.raises(TinyserError, match="use --cv random:3"):
        run_training(toy_config(few), out, progress=False)
    assert not out.exists()
    import dataclasses

    with pytest.raises(TinyserError, match="too few clips for --cv random:3"):  # was scikit-learn's traceback
        run_training(dataclasses.replace(toy_config(few), protocol="random:3"), out, progress=False)
    assert not out.exists()


# ----------------------------------------------------------------------------- fuzzing audio

def test_fuzzed_wavs_give_results_or_one_line_reasons(wav, tmp_path, model):
    """200 damaged copies of a real WAV in one batch: no traceback, no hang; each
    file is predicted or skipped with a one-line reason naming it."""
    paths = []
    for i, (_kind, blob) in enumerate(mutations(wav.read_bytes(), 200, seed=14)):
        p = tmp_path / f"f{i:03d}.wav"
        p.write_bytes(blob)
        paths.append(p)
    signal.alarm(300)
    with peak_memory() as mem:
        r = predict_files(model, paths, progress=False, timeline=False)
    signal.alarm(0)
    assert len(r["results"]) + len(r["failed"]) == 200
    assert all("\n" not in f["reason"] and f["reason"] for f in r["failed"])
    # a result is a label with a finite confidence, or no label because no window holds speech
    assert all(np.isfinite(x["confidence"]) if x["label"] is not None else x["reason"] == "no speech found"
               for x in r["results"])
    assert 20 < len(r["failed"]) < 200
    assert mem.peak < 200e6


# ----------------------------------------------------------------------------- the metadata format

def _foreign(blob: bytes) -> bytes:
    """The shipped flatbuffer without any metadata: a .tflite that tinyser did not export."""
    from ai_edge_litert.tools import flatbuffer_utils

    m = flatbuffer_utils.convert_bytearray_to_object(bytearray(blob))
    m.metadata = []
    return bytes(flatbuffer_utils.convert_object_to_bytearray(m))


def _old_format(blob: bytes) -> bytes:
    """The shipped model with its metadata as tinyser 0.1.0 wrote it before ModelMetadata (format 1)."""
    from tinyser.tflite import embed_unchecked, read_metadata_dict

    raw = read_metadata_dict(blob)
    return embed_unchecked(blob, {**raw, "format": 1, "sample_rate": raw["frontend"]["sample_rate"]})


def _newer_format(blob: bytes) -> bytes:
    from tinyser.tflite import METADATA_FORMAT, embed_unchecked, read_metadata_dict

    return embed_unchecked(blob, {**read_metadata_dict(blob), "format": METADATA_FORMAT + 1, "future": [1]})


@pytest.mark.parametrize("make,words", [(_foreign, ["without tinyser metadata", "tinyser export"]),
                                        (_old_format, ["old model metadata format 1", "export the model again"]),
                                        (_newer_format, ["is newer than", "upgrade tinyser"])])
def test_foreign_old_and_newer_models_are_one_line_everywhere(stamped, tmp_path, make, words):
    """predict, info and deploy refuse a .tflite that tinyser cannot read in one line naming the file
    and what to do, with a non-zero exit and no traceback."""
    from tinyser.tflite import MetadataError, read_model

    p = tmp_path / "other.tflite"
    p.write_bytes(make(stamped.read_bytes()))
    with pytest.raises(MetadataError, match=str(p)):
        read_model(p)
    wav = write_tone(tmp_path / "x.wav", 1.0)
    for cmd in (["predict", wav, "--model", p], ["info", p], ["deploy", "arduino", p, "--out", tmp_path / "sk"]):
        one_line_error(run(*cmd), str(p), *words)
    assert not (tmp_path / "sk").exists()


def test_model_metadata_round_trips(stamped):
    """ModelMetadata -> file -> ModelMetadata gives the same metadata (the one writer and the one reader)."""
    from dataclasses import replace

    from tinyser.tflite import Evaluation, ModelMetadata, embed_metadata, read_metadata

    blob = stamped.read_bytes()
    meta = read_metadata(blob)
    assert ModelMetadata.from_dict(meta.to_dict()) == meta
    assert read_metadata(embed_metadata(blob, meta)) == meta
    other = replace(meta, name=None, evaluation=Evaluation("p", 0.5, 0.1, 0.5, 0.4), licences=(),
                    model_params={"width": 1.0}, macs=None)
    again = read_metadata(embed_metadata(blob, other))
    assert again == other and again.sha256 and again.sample_rate == meta.frontend.config.sample_rate
    assert "sample_rate" not in meta.to_dict()  # stored once, in the frontend
