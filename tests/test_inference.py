"""Inference for users: the shipped default model, `predict` over files of any
shape and length, voiced-window timelines, `listen --input` == `predict`, plots."""
from __future__ import annotations

import csv
import io
import json

import numpy as np
import pytest
import soundfile as sf
from conftest import speechlike, tone, write_speechlike, write_tone
from typer.testing import CliRunner

from tinyser.cli import app
from tinyser.errors import ConfigError, TinyserError
from tinyser.inference import DEFAULT_MODEL, VoiceConfig, load_model, predict_files
from tinyser.live import RingBuffer, listen

runner = CliRunner()


def run(*args):
    return runner.invoke(app, [str(a) for a in args])


@pytest.fixture(scope="module")
def model():
    return load_model("default")


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    """Stereo 44.1 kHz, 8 kHz mono, 0.2 s, and 60 s of talk-like tone bursts with pauses."""
    root = tmp_path_factory.mktemp("inputs")
    write_speechlike(root / "stereo44k.wav", 4.0, 44100, channels=2)  # what voice activity calls speech
    write_speechlike(root / "mono8k.flac", 2.5, 8000, format="FLAC")
    write_speechlike(root / "short.wav", 0.2, 16000)
    sr = 16000
    bursts = [tone(2.0, sr, 150 + 40 * k, seed=k) if k % 3 else np.zeros(2 * sr, np.float32) for k in range(30)]
    sf.write(root / "long60s.wav", np.concatenate(bursts), sr, subtype="PCM_16")
    return root


def test_default_model_ships_full_int8_on_the_device_frontend(model):
    meta = model.metadata
    assert DEFAULT_MODEL.is_file() and meta.quantization == "int8"
    assert meta.model == "tiny" and meta.frontend.config.name == "cmsis_mfcc"
    assert sorted(model.labels) == ["angry", "disgust", "fearful", "happy", "neutral", "sad"]
    assert meta.training.label_scheme == "common6" and meta.input.dtype == "int8"
    ev = meta.evaluation  # the honest, cross-validated scores travel with the model
    assert "speaker" in ev.protocol and 1 / 6 < ev.ua < 1 and set(ev.per_class) == set(model.labels)
    assert {"emodb", "ravdess"} <= {p.rsplit("/", 1)[-1] for p in meta.training.data}


@pytest.mark.parametrize("name,duration", [("stereo44k.wav", 4.0), ("mono8k.flac", 2.5), ("short.wav", 0.2),
                                           ("long60s.wav", 60.0)])
def test_predict_file_any_rate_channels_and_length(model, inputs, name, duration):
    r = model.predict_file(inputs / name)
    assert r["label"] in model.labels and abs(r["duration"] - duration) < 0.01
    assert abs(sum(r["probabilities"].values()) - 1) < 0.02
    starts = [w["start"] for w in r["windows"]]
    hop = model.window / 2  # the default hop
    assert starts == pytest.approx([hop * k for k in range(len(starts))])
    assert len(starts) == max(1, int(np.ceil((duration - model.window) / hop - 1e-9)) + 1)
    assert r["windows"][-1]["end"] == pytest.approx(duration, abs=1e-3)  # the tail is covered
    assert all(w["end"] - w["start"] <= model.window + 1e-9 for w in r["windows"])


def test_silent_windows_are_skipped_in_the_file_label(model, inputs):
    r = model.predict_file(inputs / "long60s.wav", window=2.0, hop=2.0)
    voiced = [w["voiced"] for w in r["windows"]]
    assert voiced == [k % 3 != 0 for k in range(30)]  # the generator's silent bursts, exactly
    mean = np.mean([[w["probabilities"][k] for k in model.labels] for w in r["windows"] if w["voiced"]], axis=0)
    assert np.allclose(list(r["probabilities"].values()), mean, atol=1e-5)
    assert r["voiced_windows"] == 20 and r["label"] == model.labels[int(mean.argmax())]


def test_array_api_matches_files_and_checks_input(model, inputs):
    y, sr = sf.read(inputs / "stereo44k.wav", dtype="float32")
    a, b = model.predict(y, sr), model.predict_file(inputs / "stereo44k.wav")
    assert a["label"] == b["label"]
    assert np.allclose(list(a["probabilities"].values()), list(b["probabilities"].values()), atol=0.02)
    with pytest.raises(ConfigError, match="NaN"):
        model.predict(np.full(16000, np.nan, np.float32), 16000)
    with pytest.raises(ConfigError, match="channels-first"):
        model.predict(y.T, sr)
    with pytest.raises(ConfigError, match="window"):
        model.predict(y, sr, window=5.0)  # longer than the model's 2 s input


def test_bad_files_are_reported_and_the_rest_go_on(model, inputs, tmp_path):
    (tmp_path / "empty.wav").write_bytes(b"")
    (tmp_path / "notes.wav").write_text("not audio\n")
    good = (inputs / "short.wav").read_bytes()
    (tmp_path / "cut.wav").write_bytes(good[:60])
    write_speechlike(tmp_path / "ok.wav", 1.0)
    r = predict_files(model, [tmp_path, tmp_path / "missing.wav"], progress=False)
    assert [x["path"].rsplit("/", 1)[-1] for x in r["results"]] == ["ok.wav"]
    reasons = {x["path"].rsplit("/", 1)[-1]: x["reason"] for x in r["failed"]}
    assert set(reasons) == {"empty.wav", "notes.wav", "cut.wav", "missing.wav"}
    assert all("\n" not in why and why for why in reasons.values())


def _window_probabilities(result):
    return np.array([list(w["probabilities"].values()) for w in result["windows"]])


def test_one_stream_carries_the_adaptive_state_from_file_to_file(model, inputs, tmp_path):
    files = [inputs / "stereo44k.wav", inputs / "mono8k.flac"]
    alone = [model.predict_file(f) for f in files]
    together = predict_files(model, files, progress=False, one_stream=True)["results"]
    # the first file starts from the training statistics either way; the second goes on from the first
    assert np.array_equal(_window_probabilities(together[0]), _window_probabilities(alone[0]))
    assert not np.array_equal(_window_probabilities(together[1]), _window_probabilities(alone[1]))
    state = model.adaptive_state()
    fresh = state.mu.copy()
    by_hand = [model.predict_file(f, state=state) for f in files]
    assert np.array_equal(_window_probabilities(by_hand[1]), _window_probabilities(together[1]))
    assert not np.allclose(state.mu, fresh)  # the state heard both files
    again = predict_files(model, files, progress=False)["results"]  # without it, every file starts afresh
    assert np.array_equal(_window_probabilities(again[1]), _window_probabilities(alone[1]))
    y, sr = sf.read(inputs / "long60s.wav", dtype="float32")
    y = y[:12 * sr].copy()
    y[11 * sr:] = np.nan  # the first 10 s block streams through before the second one fails
    sf.write(tmp_path / "bad.wav", y, sr, subtype="FLOAT")
    skipping = predict_files(model, [files[0], tmp_path / "bad.wav", files[1]], progress=False, one_stream=True)
    assert [f["path"] for f in skipping["failed"]] == [str(tmp_path / "bad.wav")]
    assert np.array_equal(_window_probabilities(skipping["results"][1]), _window_probabilities(together[1]))
    out = tmp_path / "rows.jsonl"
    r = run("predict", *files, "--one-stream", "--out", out)
    assert r.exit_code == 1 and "--one-stream" in r.output and len(r.output.strip().splitlines()) == 1
    assert not out.exists()
    j = run("predict", *files, "--one-stream", "--json")
    assert j.exit_code == 0, j.output
    assert np.allclose(_window_probabilities(json.loads(j.stdout)["results"][1]),
                       _window_probabilities(together[1]), atol=1e-6)


def test_balance_divides_each_file_by_the_files_before_it(model, inputs, tmp_path):
    """``predict --balance``: each file's probabilities divided by the running mean of the files before it
    (tinyser.metrics.RunningBalance), the model's own kept; the first file is as it was (renormalised); windows are
    untouched."""
    from tinyser.metrics import DEFAULT_BALANCE_CLIPS, RunningBalance

    files = [inputs / "stereo44k.wav", inputs / "mono8k.flac", inputs / "long60s.wav"]
    plain = predict_files(model, files, progress=False)["results"]
    balanced = predict_files(model, files, progress=False, balance=DEFAULT_BALANCE_CLIPS)["results"]
    assert all(r["label"] is not None for r in plain)
    state, labels = RunningBalance(len(model.labels), DEFAULT_BALANCE_CLIPS), model.labels
    for p, b in zip(plain, balanced):
        by_hand = state.clip(np.array([p["probabilities"][k] for k in labels]))
        assert b["model_probabilities"] == p["probabilities"]
        assert np.allclose([b["probabilities"][k] for k in labels], by_hand, atol=1e-6)
        assert b["label"] == labels[int(by_hand.argmax())]
        assert np.array_equal(_window_probabilities(b), _window_probabilities(p))
    first = np.array(list(plain[0]["probabilities"].values()))  # int8 outputs: their sum is not exactly 1
    assert np.allclose(list(balanced[0]["probabilities"].values()), first / first.sum(), atol=1e-6)
    assert not np.allclose(list(balanced[2]["probabilities"].values()), list(plain[2]["probabilities"].values()),
                           atol=1e-3)
    j = run("predict", *files, "--balance", "--json")
    assert j.exit_code == 0, j.output
    assert [r["probabilities"] for r in json.loads(j.stdout)["results"]] == [r["probabilities"] for r in balanced]
    r = run("predict", *files, "--balance", "--out", tmp_path / "rows.jsonl")
    assert r.exit_code == 1 and "--balance" in r.output and len(r.output.strip().splitlines()) == 1


def test_listen_input_gives_the_same_windows_as_predict(model, inputs):
    for name in ("stereo44k.wav", "long60s.wav", "short.wav"):
        live = listen(model, input=inputs / name)
        batch = model.predict_file(inputs / name)["windows"]
        assert [(w["start"], w["end"], w["label"], w["voiced"]) for w in live] == \
               [(w["start"], w["end"], w["label"], w["voiced"]) for w in batch]
        assert np.allclose([list(w["probabilities"].values()) for w in live],
                           [list(w["probabilities"].values()) for w in batch])


def test_cli_predict_with_no_flags_then_json_csv_out(inputs, tmp_path):
    r = run("predict", inputs / "short.wav")
    assert r.exit_code == 0, r.output
    assert "short.wav" in r.stdout and any(k in r.stdout for k in ("angry", "happy", "sad", "neutral",
                                                                   "fearful", "disgust"))
    j = run("predict", inputs, "--json")
    assert j.exit_code == 0, j.output
    data = json.loads(j.stdout)
    assert len(data["results"]) == 4 and data["failed"] == []
    out = tmp_path / "p.csv"
    c = run("predict", inputs / "stereo44k.wav", "--csv", "--out", out, "--hop", "2.0")
    assert c.exit_code == 0, c.output
    rows = list(csv.DictReader(io.StringIO(out.read_text())))
    assert [x["scope"] for x in rows] == ["file", "window", "window"] and "p_angry" in rows[0]  # 4 s, hop 2
    again = run("predict", inputs / "stereo44k.wav", "--csv", "--out", out)
    assert again.exit_code == 1 and "--force" in again.output  # nothing the user made is overwritten


def test_cli_listen_input_lines_and_log(inputs, tmp_path):
    log = tmp_path / "live.jsonl"
    r = run("listen", "--input", inputs / "stereo44k.wav", "--log", log, "--hop", "2.0")
    assert r.exit_code == 0, r.output
    lines = [x for x in r.stdout.splitlines() if "–" in x]
    logged = [json.loads(x) for x in log.read_text().splitlines()]
    assert len(lines) == len(logged) == 2 and logged[1]["start"] == 2.0 and "probabilities" in logged[0]


def test_listen_without_an_input_device_is_one_clear_line(monkeypatch):
    import tinyser.live as live

    class NoDevices:
        def query_devices(self, device, kind):
            raise ValueError("No input device matching")

    monkeypatch.setattr(live, "_sounddevice", lambda: NoDevices())
    r = run("listen")
    assert r.exit_code == 1 and "no audio input device" in r.output and "Traceback" not in r.output


def test_ring_buffer_wraps_and_counts_overruns():
    rb = RingBuffer(5)
    rb.write(np.arange(3, dtype=np.float32))
    assert rb.read().tolist() == [0, 1, 2]
    rb.write(np.arange(3, 7, dtype=np.float32))  # wraps around the end
    assert rb.read().tolist() == [3, 4, 5, 6] and rb.overruns == 0
    rb.write(np.arange(8, dtype=np.float32))
    assert rb.read().tolist() == [3, 4, 5, 6, 7] and rb.overruns == 3


def test_voice_rule():
    v = VoiceConfig()
    assert v.is_voiced(speechlike(1.0)) and not v.is_voiced(np.zeros(16000, np.float32))
    assert v.is_voiced(0.01 * speechlike(1.0))  # quiet speech (-50 dBFS peak) is speech
    assert not v.is_voiced(1e-4 * speechlike(1.0))  # below -60 dBFS: nothing is
    assert not v.is_voiced(tone(2.0))  # a steady tone is hum, not speech


def test_file_without_speech_gets_no_label(model, tmp_path):
    """Silence, DC, hum and noise are not scored as an emotion: no label, the reason instead
    (it was the mean of all windows, e.g. "fearful 1.00" for DC)."""
    sr = 16000
    rng = np.random.default_rng(0)
    t = np.arange(3 * sr) / sr
    for name, y in {"silence": np.zeros(3 * sr), "dc": np.full(3 * sr, 0.5),
                    "hum": sum(0.1 / k * np.sin(2 * np.pi * 50 * k * t) for k in range(1, 6)),
                    "noise": 0.1 * rng.standard_normal(3 * sr)}.items():
        r = model.predict(y.astype(np.float32), sr)
        assert r["label"] is None and r["confidence"] is None and r["reason"] == "no speech found", name
        assert r["voiced_windows"] == 0 and all(v is None for v in r["probabilities"].values())
        assert model.stream().run([y.astype(np.float32)], timeline=False)["label"] is None
    sf.write(tmp_path / "dc.wav", np.full(2 * sr, 0.5, np.float32), sr)
    out = run("predict", tmp_path / "dc.wav")
    assert out.exit_code == 0 and "no speech found" in out.stdout, out.output
    csv_out = run("predict", tmp_path / "dc.wav", "--csv")
    assert csv_out.exit_code == 0 and "dc.wav,file," in csv_out.stdout
    png = tmp_path / "dc.png"
    assert run("plot", tmp_path / "dc.wav", "--out", png).exit_code == 0 and png.stat().st_size > 0


def test_voice_config_from_model_metadata(model):
    assert model.voice == VoiceConfig()  # the shipped model predates the key: the defaults
    assert model.stream().voice is model.voice
    assert model.stream(voice=VoiceConfig(margin_db=3.0)).voice.margin_db == 3.0


def test_plot_writes_png_and_keeps_existing(inputs, tmp_path):
    png = tmp_path / "p.png"
    r = run("plot", inputs / "stereo44k.wav", "--out", png)
    assert r.exit_code == 0, r.output
    assert png.read_bytes()[:4] == b"\x89PNG"
    assert run("plot", inputs / "stereo44k.wav", "--out", png).exit_code == 1


def test_missing_model_file_is_one_line(tmp_path):
    with pytest.raises(TinyserError, match="cannot read model"):
        load_model(tmp_path / "nope.tflite")


@pytest.mark.corpus
def test_predict_ravdess_actor_folder_json(ravdess_dir):
    r = run("predict", ravdess_dir / "Actor_01", "--json")
    assert r.exit_code == 0, r.output
    data = json.loads(r.stdout)
    n = len(list((ravdess_dir / "Actor_01").glob("*.wav")))  # 60 in RAVDESS; this copy lacks 2 (data README)
    assert len(data["results"]) == n >= 58 and data["failed"] == []
    assert all(x["windows"] and x["label"] in data["labels"] for x in data["results"])


def test_top_level_load_model():
    import tinyser

    assert tinyser.load_model is load_model


@pytest.mark.parametrize("opts", [["--hop", "nan"], ["--hop", "inf"], ["--hop", "3"], ["--window", "0"]])
def test_bad_window_or_hop_is_one_line(inputs, opts):
    r = run("predict", inputs / "short.wav", *opts)
    assert r.exit_code == 1 and opts[0][2:] in r.output and "Traceback" not in r.output


def test_unwritable_outputs_are_one_line(inputs, tmp_path):
    r = run("predict", inputs / "short.wav", "--json", "--out", tmp_path, "--force")  # a folder
    assert r.exit_code == 1 and "is a folder" in r.output and "Traceback" not in r.output
    r = run("listen", "--input", inputs / "short.wav", "--log", tmp_path)
    assert r.exit_code == 1 and "is a folder" in r.output


def test_listen_stops_after_seconds_and_flushes(model, inputs):
    rows = listen(model, input=inputs / "long60s.wav", seconds=3.5)
    assert rows[-1]["end"] == 3.5 and rows[0]["start"] == 0.0


def test_plots_of_same_named_files_do_not_clash(tmp_path):
    write_tone(tmp_path / "a" / "x.wav", 1.0)
    write_tone(tmp_path / "b" / "x.wav", 1.0, freq=400.0)
    r = run("predict", tmp_path / "a", tmp_path / "b", "--plot", tmp_path / "png")
    assert r.exit_code == 0, r.output
    assert sorted(p.name for p in (tmp_path / "png").iterdir()) == ["x-2.png", "x.png"]


def test_integer_pcm_arrays_are_scaled(model):
    y = speechlike(2.0)
    a = model.predict(y, 16000)
    b = model.predict((y * 32767).astype(np.int16), 16000)
    assert a["label"] == b["label"] and a["voiced"] and b["voiced"]
    assert np.allclose(list(a["probabilities"].values()), list(b["probabilities"].values()), atol=0.02)
