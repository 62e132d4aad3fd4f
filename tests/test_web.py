"""tinyser serve: the HTTP API and the live WebSocket in-process (Starlette's TestClient).

POST /api/predict gives what Model.predict_file gives (generated and real clips); the
WebSocket gives the rows `tinyser listen --input F --log` writes for the same audio; bad
uploads get 413/415/422 and one line; streams past the limit are refused and a client
faster than real time is throttled. Skipped without the [web] extra."""
from __future__ import annotations

import io
import json
import time
import warnings

import numpy as np
import pytest
import soundfile as sf
from conftest import DATA, serve_in_thread, speechlike, write_speechlike
from typer.testing import CliRunner

pytest.importorskip("starlette")
pytest.importorskip("httpx")
with warnings.catch_warnings():  # Starlette 1.10 suggests httpx2 over httpx; both work
    warnings.simplefilter("ignore", UserWarning)
    from starlette.testclient import TestClient  # noqa: E402
from starlette.websockets import WebSocketDisconnect  # noqa: E402

from tinyser.cli import app as cli  # noqa: E402
from tinyser.inference import load_model  # noqa: E402
from tinyser.web.app import create_app  # noqa: E402
from tinyser.web.core import Limits  # noqa: E402

FAST = Limits(stream_lead=None)  # streams as fast as inference goes


@pytest.fixture(scope="module")
def model():
    return load_model("default")


@pytest.fixture(scope="module")
def client(model):
    with TestClient(create_app(model, FAST)) as c:
        yield c


@pytest.fixture(scope="module")
def clips(tmp_path_factory):
    root = tmp_path_factory.mktemp("web")
    write_speechlike(root / "talk16k.wav", 3.0, 16000, subtype="PCM_16")
    write_speechlike(root / "stereo44k.wav", 4.0, 44100, channels=2, subtype="PCM_16")
    write_speechlike(root / "mono8k.flac", 2.5, 8000, format="FLAC")
    return root


def _same(result: dict, expected: dict, name: str) -> None:
    assert result["path"] == name
    assert {k: v for k, v in result.items() if k != "path"} == {k: v for k, v in expected.items() if k != "path"}


@pytest.mark.parametrize("name", ["talk16k.wav", "stereo44k.wav", "mono8k.flac"])
def test_predict_equals_predict_file_on_generated_clips(client, model, clips, name):
    data = (clips / name).read_bytes()
    r = client.post(f"/api/predict?name={name}", content=data, headers={"content-type": "application/octet-stream"})
    assert r.status_code == 200, r.text
    doc = r.json()
    assert doc["labels"] == model.labels and doc["failed"] == [] and len(doc["results"]) == 1
    _same(doc["results"][0], model.predict_file(clips / name), name)
    # multipart, as a browser form sends it
    m = client.post("/api/predict", files={"file": (name, data, "audio/wav")})
    assert m.status_code == 200, m.text
    assert m.json() == doc


def test_predict_json_is_the_cli_document(client, clips):
    out = CliRunner().invoke(cli, ["predict", str(clips / "talk16k.wav"), "--json"])
    assert out.exit_code == 0, out.output
    cli_doc = json.loads(out.stdout)
    api_doc = client.post("/api/predict?name=talk16k.wav", content=(clips / "talk16k.wav").read_bytes()).json()
    cli_doc["results"][0]["path"] = "talk16k.wav"
    assert api_doc == cli_doc


def _real_clips(n_per: int = 2) -> list:
    from tinyser.corpora import iter_audio

    found = []
    for corpus in ("emodb", "ravdess"):
        if (DATA / corpus).is_dir():
            found += sorted(iter_audio(DATA / corpus))[:n_per]
    return found


@pytest.mark.corpus
def test_predict_equals_predict_file_on_real_clips(client, model):
    paths = _real_clips()
    if not paths:
        pytest.skip(f"no real corpus under {DATA} (set TINYSER_DATA)")
    for p in paths:
        r = client.post(f"/api/predict?name={p.name}", content=p.read_bytes(), headers={"content-type": "audio/wav"})
        assert r.status_code == 200, r.text
        _same(r.json()["results"][0], model.predict_file(p), p.name)


def _pcm16(path) -> tuple[bytes, int, int]:
    y, sr = sf.read(path, dtype="int16", always_2d=True)
    return y.astype("<i2").tobytes(), sr, y.shape[1]


def _stream(client, pcm: bytes, query: str = "", first: dict | None = None, chunk: int = 3200) -> list[dict]:
    with client.websocket_connect(f"/api/stream{query}") as ws:
        if first is not None:
            ws.send_text(json.dumps(first))
        ready = ws.receive_json()
        assert ready.get("event") == "ready", ready
        for i in range(0, len(pcm), chunk):
            ws.send_bytes(pcm[i:i + chunk])
        ws.send_text("end")
        msgs = []
        while True:
            msg = ws.receive_json()
            msgs.append(msg)
            if msg.get("event") == "end" or "error" in msg:
                return msgs


def _listen_log(path, tmp_path) -> list[dict]:
    log = tmp_path / "live.jsonl"
    out = CliRunner().invoke(cli, ["listen", "--input", str(path), "--log", str(log)])
    assert out.exit_code == 0, out.output
    return [json.loads(x) for x in log.read_text().splitlines()]


def _no_time(rows: list[dict]) -> list[dict]:
    return [{k: v for k, v in r.items() if k != "time"} for r in rows]


@pytest.mark.parametrize("name", ["talk16k.wav", "stereo44k.wav"])
def test_websocket_rows_equal_listen_log(client, clips, tmp_path, name):
    pcm, sr, channels = _pcm16(clips / name)
    msgs = _stream(client, pcm, f"?sample_rate={sr}&channels={channels}", chunk=2 * channels * 1234)
    rows = [m for m in msgs if "start" in m]
    logged = _listen_log(clips / name, tmp_path)
    assert all(isinstance(r["time"], float) for r in rows)  # the keys listen --log writes, in its order
    assert [list(r) for r in rows] == [list(r) for r in logged]
    assert _no_time(rows) == _no_time(logged) and len(rows) >= 2
    # the rate can also come as the first message
    again = _stream(client, pcm, first={"sample_rate": sr, "channels": channels})
    assert _no_time([m for m in again if "start" in m]) == _no_time(logged)


@pytest.mark.corpus
def test_websocket_rows_equal_listen_log_on_a_real_clip(client, tmp_path):
    paths = _real_clips(1)
    if not paths:
        pytest.skip(f"no real corpus under {DATA} (set TINYSER_DATA)")
    pcm, sr, channels = _pcm16(paths[0])
    rows = [m for m in _stream(client, pcm, f"?sample_rate={sr}&channels={channels}") if "start" in m]
    assert _no_time(rows) == _no_time(_listen_log(paths[0], tmp_path))


def _wav_bytes(seconds: float, sr: int = 16000, y=None) -> bytes:
    buf = io.BytesIO()
    sf.write(buf, speechlike(seconds, sr) if y is None else y, sr, format="WAV", subtype="PCM_16")
    return buf.getvalue()


def _refused(r, status: int, *words: str) -> None:
    assert r.status_code == status, (r.status_code, r.text)
    msg = r.json()["error"]
    assert msg and "\n" not in msg and "Traceback" not in msg
    for w in words:
        assert w in msg, msg


def test_bad_uploads_get_4xx_and_one_line(client, model):
    post = lambda data, ctype="application/octet-stream", q="": client.post(  # noqa: E731
        f"/api/predict?name=x.wav{q}", content=data, headers={"content-type": ctype})
    _refused(post(b""), 422, "empty")
    _refused(post(b"hello, this is a text file and not audio at all\n" * 4), 415, "not an audio file")
    _refused(post(_wav_bytes(1.0), "application/json"), 415, "Content-Type")
    _refused(post(b"\x00\x01\x02\x03" * 200), 415, "not a readable audio file")
    good = _wav_bytes(1.0)
    _refused(post(good[:-4000]), 422, "truncated")  # the same reason predict gives for a cut file
    _refused(post(_wav_bytes(1.0, y=np.zeros(16000, np.float32))), 422, "silent")
    _refused(post(_wav_bytes(0.01)), 422, "too short")
    _refused(post(good, q="&hop=-1"), 422, "hop")
    _refused(post(good, q="&hop=abc"), 422, "hop")
    r = client.post("/api/predict", files={"other": ("notes.txt", b"x")}, data={"a": "b"})
    _refused(r, 415)  # a text part is not audio


def test_oversize_and_overlong_uploads_get_413(model):
    small = Limits(max_bytes=50_000, max_seconds=1.0, stream_lead=None)
    with TestClient(create_app(model, small)) as c:
        _refused(c.post("/api/predict", content=_wav_bytes(3.0)), 413, "bytes")  # 96 kB
        _refused(c.post("/api/predict", files={"file": ("big.wav", _wav_bytes(3.0), "audio/wav")}), 413)
        _refused(c.post("/api/predict", content=_wav_bytes(1.5)), 413, "1 s")  # 48 kB, 1.5 s
        assert c.post("/api/predict", content=_wav_bytes(0.9)).status_code == 200


def test_model_health_and_openapi(client, model):
    card = client.get("/api/model").json()
    assert card["labels"] == model.labels and card["window"] == model.window
    assert card["size_bytes"] == len(model.bytes) and card["training"]["label_scheme"] == "common6"
    assert card["evaluation"]["ua"] > 0
    assert client.get("/api/health").json()["status"] == "ok"
    spec = client.get("/api/openapi.json").json()
    assert spec["openapi"].startswith("3.") and "/api/predict" in spec["paths"]
    page = client.get("/")
    assert page.status_code == 200 and "<html" in page.text.lower()


def test_streams_over_the_limit_are_refused(model):
    with TestClient(create_app(model, Limits(max_streams=1, stream_lead=None))) as c:
        with c.websocket_connect("/api/stream?sample_rate=16000") as first:
            assert first.receive_json()["event"] == "ready"
            with c.websocket_connect("/api/stream?sample_rate=16000") as second:
                msg = second.receive_json()
                assert "at most 1" in msg["error"]
                with pytest.raises(WebSocketDisconnect) as e:
                    second.receive_json()
                assert e.value.code == 1013
        assert c.get("/api/health").json()["streams"] == 0


def test_bad_stream_parameters_and_chunks_are_refused(client):
    for query in ("?sample_rate=1", "?sample_rate=abc", "?sample_rate=16000&hop=0"):
        with client.websocket_connect(f"/api/stream{query}") as ws:
            assert "error" in ws.receive_json()
    with client.websocket_connect("/api/stream") as ws:
        ws.send_text("not json")
        assert "sample_rate" in ws.receive_json()["error"]
    with client.websocket_connect("/api/stream?sample_rate=8000") as ws:
        ws.receive_json()
        ws.send_bytes(b"\x00" * (2 * 8000 * 3))  # 3 s in one message: over the 2-s chunk limit
        assert "smaller chunks" in ws.receive_json()["error"]


def test_a_client_faster_than_real_time_is_throttled(model):
    lead = 0.2
    with TestClient(create_app(model, Limits(stream_lead=lead))) as c:
        pcm = (speechlike(1.5) * 32767).astype("<i2").tobytes()
        t = time.monotonic()
        msgs = _stream(c, pcm, "?sample_rate=16000", chunk=1600)  # 0.05-s chunks, as fast as it can
        took = time.monotonic() - t
    assert msgs[-1]["event"] == "end" and abs(msgs[-1]["seconds"] - 1.5) < 1e-6
    assert took >= 1.5 - lead - 0.1  # read at real time, not faster


def test_serve_refuses_bad_limits_and_warns_off_loopback(monkeypatch):
    import tinyser.web.server as server

    r = CliRunner().invoke(cli, ["serve", "--max-streams", "0"])
    assert r.exit_code == 1 and "must be positive" in r.output
    r = CliRunner().invoke(cli, ["serve", "--model", "no-such-model"])
    assert r.exit_code == 1 and "no such model" in r.output and "open http" not in r.output
    seen = {}
    monkeypatch.setattr("uvicorn.run", lambda app, **kw: seen.update(kw))
    warnings = []
    server.serve("default", "0.0.0.0", 8123, warn=warnings.append)
    assert seen["host"] == "0.0.0.0" and seen["port"] == 8123 and "no authentication" in warnings[0]
    server.serve("default", "127.0.0.1", 8123, warn=warnings.append)
    assert len(warnings) == 1 and seen["ws_max_queue"] == server.WS_MAX_QUEUE


def test_concurrent_uploads_and_streams_give_the_sequential_results(client, model, clips):
    """One model serves every request: LiteRT's interpreter is shared, so calls take turns."""
    from concurrent.futures import ThreadPoolExecutor

    names = ["talk16k.wav", "stereo44k.wav", "mono8k.flac"] * 2
    expected = {n: model.predict_file(clips / n) for n in set(names)}
    pcm, sr, ch = _pcm16(clips / "talk16k.wav")
    alone = _no_time([m for m in _stream(client, pcm, f"?sample_rate={sr}") if "start" in m])

    def upload(name):
        r = client.post(f"/api/predict?name={name}", content=(clips / name).read_bytes())
        assert r.status_code == 200, r.text
        return name, r.json()["results"][0]

    def stream(_):
        return _no_time([m for m in _stream(client, pcm, f"?sample_rate={sr}", chunk=1600) if "start" in m])

    with ThreadPoolExecutor(6) as pool:
        ups = pool.map(upload, names)
        live = pool.map(stream, range(3))
        for name, got in ups:
            _same(got, expected[name], name)
        assert all(rows == alone for rows in live)


def test_uploads_are_decoded_in_memory(monkeypatch, model, clips):
    """Nothing written to disk: the upload is an anonymous memory file (Linux), never a temporary file."""
    import os
    import tempfile

    from tinyser.web import core

    def no_disk(*a, **k):
        raise AssertionError("an upload was written to disk")

    if hasattr(os, "memfd_create"):
        monkeypatch.setattr(tempfile, "TemporaryDirectory", no_disk)
        monkeypatch.setattr(tempfile, "NamedTemporaryFile", no_disk)
        with core.in_memory_file(b"abc") as path:
            assert path.startswith("/proc/self/fd/") and open(path, "rb").read() == b"abc"
    doc = core.predict_upload(model, (clips / "talk16k.wav").read_bytes(), "talk16k.wav")
    _same(doc["results"][0], model.predict_file(clips / "talk16k.wav"), "talk16k.wav")


def test_shutdown_closes_open_streams(model):
    """A real server (uvicorn): stopping it closes the live streams that are open, with a close code."""
    pytest.importorskip("uvicorn")
    ws_client = pytest.importorskip("websockets.sync.client")
    with serve_in_thread(create_app(model)) as (port, server, thread):
        with ws_client.connect(f"ws://127.0.0.1:{port}/api/stream?sample_rate=16000") as ws:
            assert json.loads(ws.recv(timeout=10))["event"] == "ready"
            ws.send((speechlike(1.0) * 32767).astype("<i2").tobytes())
            server.should_exit = True
            with pytest.raises(Exception) as e:  # websockets' ConnectionClosed once the server has gone
                while True:
                    ws.recv(timeout=10)
            assert getattr(e.value, "rcvd", None) is not None and e.value.rcvd.code in (1001, 1012), e.value
    assert not thread.is_alive()


def test_bad_audio_gets_predicts_own_reasons(client, model, tmp_path):
    """The one line the API answers is the reason `tinyser predict` gives for the same file."""
    from tinyser.inference import predict_files

    good = _wav_bytes(1.0)
    bad = {"cut.wav": good[:-4000], "notes.wav": b"hello, this is a text file and not audio at all\n" * 4,
           "silent.wav": _wav_bytes(1.0, y=np.zeros(16000, np.float32)), "short.wav": _wav_bytes(0.01),
           "noise.wav": bytes(range(256)) * 8}
    for name, data in bad.items():
        (tmp_path / name).write_bytes(data)
        reason = predict_files(model, [tmp_path / name], progress=False)["failed"][0]["reason"]
        r = client.post(f"/api/predict?name={name}", content=data)
        assert r.status_code in (415, 422) and r.json()["error"] == f"{name}: {reason}", (r.text, reason)
