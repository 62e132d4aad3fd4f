"""Archive-scale predict (tinyser.archive, `tinyser predict DIR --out X.jsonl|X.parquet`):
one row per file, the same results as predict_files whatever the engine (one process,
a process pool, a local Ray), bad files reported in their row, and a run killed
midway resumes to the rows of an uninterrupted run."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import write_speechlike, write_tone
from typer.testing import CliRunner

from tinyser.archive import journal_path, predict_archive, read_rows, settings_path
from tinyser.cli import app
from tinyser.errors import TinyserError
from tinyser.inference import load_model, predict_files

runner = CliRunner()
N_GOOD = 28


@pytest.fixture(scope="module")
def model():
    return load_model("default")


@pytest.fixture(scope="module")
def archive(tmp_path_factory) -> Path:
    """28 clips of 0.6-3.4 s (speech-like at several pitches, rates and channel counts, a
    steady tone that has no speech, one in a subfolder), an empty file and a text file."""
    root = tmp_path_factory.mktemp("archive")
    for i in range(N_GOOD - 2):
        write_speechlike(root / f"clip{i:02d}.wav", seconds=0.6 + 0.1 * i, freq=110 + 9 * i,
                         sample_rate=(16000, 22050, 44100)[i % 3], channels=1 + (i % 4 == 0))
    write_tone(root / "tone.wav", seconds=2.0)
    write_speechlike(root / "sub" / "deep.flac", seconds=2.2, freq=180)
    (root / "empty.wav").write_bytes(b"")
    (root / "notaudio.wav").write_text("these are not the samples you are looking for\n" * 20)
    return root


def by_path(rows: list[dict]) -> dict[str, dict]:
    out = {r["path"]: r for r in rows}
    assert len(out) == len(rows), "a file has more than one row"
    return out


@pytest.fixture(scope="module")
def reference(model, archive, tmp_path_factory) -> dict[str, dict]:
    """The rows of an uninterrupted one-process run."""
    out = tmp_path_factory.mktemp("ref") / "ref.jsonl"
    s = predict_archive(model, [archive], out, progress=False)
    assert (s["predicted"], s["bad"], s["already_done"]) == (N_GOOD, 2, 0)
    return by_path(read_rows(out))


def test_one_row_per_file_and_bad_files_carry_their_reason(model, archive, reference, tmp_path):
    pytest.importorskip("pyarrow")
    assert len(reference) == N_GOOD + 2
    assert reference[str(archive / "empty.wav")]["error"] == "file is empty (0 bytes)"
    bad = reference[str(archive / "notaudio.wav")]
    assert bad["error"].startswith("not an audio file") and bad["label"] is None and bad["p_happy"] is None
    assert reference[str(archive / "tone.wav")]["label"] is None  # no speech: no label, and not an error
    assert reference[str(archive / "tone.wav")]["reason"] == "no speech found"
    assert reference[str(archive / "tone.wav")]["error"] is None
    good = [r for r in reference.values() if r["error"] is None and r["label"] is not None]
    assert len(good) == N_GOOD - 1 and all(r["duration"] > 0 and r["n_windows"] >= 1 for r in good)
    s = predict_archive(model, [archive], tmp_path / "r.parquet", progress=False)
    assert (s["predicted"], s["bad"], s["rows"], s["bad_rows"]) == (N_GOOD, 2, N_GOOD + 2, 2)
    assert by_path(read_rows(tmp_path / "r.parquet")) == reference
    assert not journal_path(tmp_path / "r.parquet").exists() and not settings_path(tmp_path / "r.parquet").exists()
    import pyarrow.parquet as pq

    schema = pq.read_schema(tmp_path / "r.parquet")
    assert json.loads(schema.metadata[b"tinyser"])["labels"] == model.labels
    assert str(schema.field("warnings").type.value_type) == "string"


def test_rows_equal_predict_files(model, archive, reference):
    r = predict_files(model, [archive], progress=False, timeline=False)
    assert len(r["results"]) == N_GOOD and len(r["failed"]) == 2
    for x in r["results"]:
        row = reference[x["path"]]
        assert (row["label"], row["confidence"], row["duration"], row["voiced_windows"], row["n_windows"],
                row["warnings"], row["error"]) == (x["label"], x["confidence"], x["duration"], x["voiced_windows"],
                                                   x["n_windows"], x["warnings"], None)
        assert {k: row[f"p_{k}"] for k in model.labels} == x["probabilities"]
    assert {f["path"]: f["reason"] for f in r["failed"]} == {
        p: row["error"] for p, row in reference.items() if row["error"] is not None}


def test_two_worker_processes_give_the_same_rows(model, archive, reference, tmp_path):
    s = predict_archive(model, [archive], tmp_path / "r.jsonl", workers=2, batch_files=3, progress=False)
    assert (s["engine"], s["workers"], s["predicted"], s["bad"]) == ("pool", 2, N_GOOD, 2)
    assert by_path(read_rows(tmp_path / "r.jsonl")) == reference


@pytest.mark.slow  # a local Ray starts in 10-20 s
def test_local_ray_gives_the_same_rows(model, archive, reference, tmp_path):
    pytest.importorskip("ray")
    pytest.importorskip("pyarrow")
    s = predict_archive(model, [archive], tmp_path / "r.parquet", workers=2, address="local", batch_files=4,
                        progress=False)
    assert (s["engine"], s["workers"], s["predicted"], s["bad"]) == ("ray", 2, N_GOOD, 2)
    assert by_path(read_rows(tmp_path / "r.parquet")) == reference
    import ray

    assert not ray.is_initialized()  # the Ray it started is shut down


def test_resume_skips_the_files_already_scored(model, archive, reference, tmp_path):
    out = tmp_path / "r.jsonl"
    predict_archive(model, [archive], out, progress=False)
    lines = out.read_bytes().splitlines(keepends=True)
    out.write_bytes(b"".join(lines[:11]))  # as if the run had stopped after 11 files
    s = predict_archive(model, [archive], out, progress=False)
    assert s["already_done"] == 11 and s["predicted"] + s["bad"] == N_GOOD + 2 - 11
    assert by_path(read_rows(out)) == reference
    again = predict_archive(model, [archive], out, progress=False)  # a finished output: nothing to do
    assert (again["predicted"], again["bad"], again["already_done"]) == (0, 0, N_GOOD + 2)
    assert len(out.read_bytes().splitlines()) == N_GOOD + 2


def test_a_torn_last_line_is_dropped_and_its_file_scored_again(model, archive, reference, tmp_path):
    out = tmp_path / "r.jsonl"
    predict_archive(model, [archive], out, progress=False)
    lines = out.read_bytes().splitlines(keepends=True)
    out.write_bytes(b"".join(lines[:7]) + lines[7][: len(lines[7]) // 2])  # killed while writing row 8
    s = predict_archive(model, [archive], out, progress=False)
    assert s["already_done"] == 7 and s["predicted"] + s["bad"] == N_GOOD + 2 - 7
    assert by_path(read_rows(out)) == reference
    assert all(json.loads(line) for line in out.read_bytes().splitlines())


def test_a_finished_parquet_output_takes_new_files(model, archive, reference, tmp_path):
    pytest.importorskip("pyarrow")
    import shutil

    folder = tmp_path / "calls"
    shutil.copytree(archive, folder)
    out = tmp_path / "r.parquet"
    (folder / "clip05.wav").rename(tmp_path / "later.wav")
    first = predict_archive(model, [folder], out, progress=False)
    assert first["rows"] == N_GOOD + 1
    (tmp_path / "later.wav").rename(folder / "clip05.wav")
    s = predict_archive(model, [folder], out, progress=False)
    assert (s["predicted"], s["bad"], s["already_done"], s["rows"]) == (1, 0, N_GOOD + 1, N_GOOD + 2)
    rows = by_path(read_rows(out))
    assert {Path(p).name for p in rows} == {Path(p).name for p in reference}
    assert rows[str(folder / "clip05.wav")]["p_sad"] == reference[str(archive / "clip05.wav")]["p_sad"]


def test_other_settings_and_foreign_files_are_refused(model, archive, tmp_path):
    out = tmp_path / "r.jsonl"
    predict_archive(model, [archive / "sub"], out, progress=False)
    with pytest.raises(TinyserError, match=r"r.jsonl: was started with another hop \(1.0, now 0.5\); pass --force"):
        predict_archive(model, [archive / "sub"], out, hop=0.5, progress=False)
    s = predict_archive(model, [archive / "sub"], out, hop=0.5, restart=True, progress=False)
    assert (s["predicted"], s["already_done"]) == (1, 0) and len(read_rows(out)) == 1
    mine = tmp_path / "notes.jsonl"
    mine.write_text('{"my": "own data"}\n')
    with pytest.raises(TinyserError, match=r"notes.jsonl: already exists and is not the output of tinyser predict"):
        predict_archive(model, [archive / "sub"], mine, progress=False)
    assert mine.read_text() == '{"my": "own data"}\n'
    (tmp_path / "folder.jsonl").mkdir()
    with pytest.raises(TinyserError, match="is a folder"):
        predict_archive(model, [archive / "sub"], tmp_path / "folder.jsonl", restart=True, progress=False)


def test_cli_archive_mode(archive, reference, tmp_path):
    out = tmp_path / "r.jsonl"
    r = runner.invoke(app, ["predict", str(archive), "--out", str(out)])
    assert r.exit_code == 0, r.output
    assert f"{N_GOOD} files predicted, 2 bad (listed in {out}), 0 already done" in r.output
    assert by_path(read_rows(out)) == reference
    r = runner.invoke(app, ["predict", str(archive), "--out", str(out), "--strict"])
    assert r.exit_code == 3 and f"0 files predicted, 0 bad (listed in {out}), {N_GOOD + 2} already done" in r.output
    r = runner.invoke(app, ["predict", str(archive / "empty.wav"), str(tmp_path / "nothing-here"), "--out",
                            str(tmp_path / "bad.jsonl")])
    assert r.exit_code == 1 and "0 files predicted, 2 bad" in r.output
    assert {row["error"] for row in read_rows(tmp_path / "bad.jsonl")} == {"file is empty (0 bytes)",
                                                                          "no such file or folder"}
    for args, msg in ((["--workers", "2"], "--workers and --address need --out FILE.jsonl or FILE.parquet"),
                      (["--out", str(out), "--json"], "--json, --csv and --plot do not apply")):
        r = runner.invoke(app, ["predict", str(archive), *args])
        assert r.exit_code == 1 and msg in r.output and "Traceback" not in r.output


def test_core_install_writes_jsonl_and_names_the_extra_for_parquet(archive, tmp_path, monkeypatch):
    for m in ("ray", "pyarrow", "pyarrow.parquet"):
        monkeypatch.setitem(sys.modules, m, None)
    r = runner.invoke(app, ["predict", str(archive / "sub"), "--out", str(tmp_path / "r.jsonl")])
    assert r.exit_code == 0, r.output
    for args, module in (([], "pyarrow"), (["--address", "local"], "ray")):
        out = tmp_path / ("r.parquet" if not args else "s.jsonl")
        r = runner.invoke(app, ["predict", str(archive / "sub"), "--out", str(out), *args])
        lines = [line for line in r.output.splitlines() if line.strip()]
        assert r.exit_code == 1 and len(lines) == 1 and f"needs {module}" in lines[0] and "tinyser[scale]" in lines[0]
        assert not out.exists()


def _children(pid: int) -> list[int]:
    kids = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            kids.append(int(stat.parent.name))
    return kids


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs /proc to find the worker processes")
def test_killed_midway_and_resumed_gives_the_uninterrupted_rows(model, tmp_path):
    """SIGKILL `tinyser predict DIR --out r.jsonl --workers 2` once some rows are written,
    run the same command again: the rows equal an uninterrupted run's, none twice, and no
    worker outlives the killed run."""
    folder = tmp_path / "calls"
    for i in range(96):
        write_speechlike(folder / f"c{i:03d}.wav", seconds=1.5 + (i % 5) * 0.4, freq=120 + i)
    (folder / "empty.wav").write_bytes(b"")
    out = tmp_path / "r.jsonl"
    cmd = [sys.executable, "-m", "tinyser", "predict", str(folder), "--out", str(out), "--workers", "2"]
    run = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and run.poll() is None:
        if out.exists() and out.stat().st_size > 0:
            break
        time.sleep(0.01)
    workers = _children(run.pid)
    run.send_signal(signal.SIGKILL)
    run.wait()
    written = out.read_bytes().count(b"\n")  # complete rows (a torn last line is not counted)
    assert 0 < written < 97, "the run was not killed midway"
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and any(Path(f"/proc/{p}").exists() and "Z" not in _state(p) for p in workers):
        time.sleep(0.1)
    assert not [p for p in workers if Path(f"/proc/{p}").exists() and "Z" not in _state(p)], "orphaned workers"
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert f"{written} already done" in done.stderr
    resumed = by_path(read_rows(out))
    ref = tmp_path / "ref.jsonl"
    predict_archive(model, [folder], ref, progress=False)
    assert resumed == by_path(read_rows(ref)) and len(resumed) == 97


def _state(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return "Z"


def score_or_crash(batch):
    """The workers' per-batch function, except that a file named crash*.wav kills the process."""
    from tinyser.archive import _worker_score

    if any(Path(listed).name.startswith("crash") for listed, _ in batch):
        os._exit(70)
    return _worker_score(batch)


def test_a_file_that_kills_its_worker_gets_an_error_row(model, archive, reference, tmp_path):
    from tinyser.archive import _pool, run_settings

    files = sorted(p for p in reference if not p.endswith(("empty.wav", "notaudio.wav")))[:12]
    items = [(p, p) for p in files]
    items.insert(5, (str(tmp_path / "crash.wav"), str(tmp_path / "crash.wav")))
    batches = iter([items[i:i + 4] for i in range(0, len(items), 4)])
    rows = by_path([r for b in _pool(model, batches, 2, run_settings(model), False, score=score_or_crash) for r in b])
    assert rows.pop(str(tmp_path / "crash.wav"))["error"] == "the process reading it crashed (damaged file?)"
    assert rows == {p: reference[p] for p in files}


def test_workers_that_cannot_start_give_one_line(archive, tmp_path):
    import shutil

    from tinyser.inference import DEFAULT_MODEL, Model

    shutil.copy(DEFAULT_MODEL, tmp_path / "m.tflite")
    model = Model(tmp_path / "m.tflite")
    (tmp_path / "m.tflite").unlink()  # the workers cannot load it
    with pytest.raises(TinyserError, match=r"^--workers 2: the worker processes die as they start; run with"):
        predict_archive(model, [archive], tmp_path / "r.jsonl", workers=2, progress=False)
    assert (tmp_path / "r.jsonl").read_bytes() == b""  # nothing scored, nothing lost: a re-run starts there


def test_a_second_run_on_the_same_output_is_refused(model, archive, tmp_path):
    pytest.importorskip("fcntl")
    from tinyser.archive import Journal

    out = tmp_path / "r.jsonl"
    with Journal(journal_path(out)):  # a run in progress holds it
        with pytest.raises(TinyserError, match=r"r.jsonl: another tinyser predict is writing it"):
            predict_archive(model, [archive / "sub"], out, progress=False)
    assert predict_archive(model, [archive / "sub"], out, progress=False)["predicted"] == 1
