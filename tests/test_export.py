"""Exported models describe themselves, refuse foreign features and run under TFLite Micro."""
from __future__ import annotations

import numpy as np
import pytest
from typer.testing import CliRunner

from tinyser.cli import app
from tinyser.errors import ConfigError, TinyserError
from tinyser.experiment import load_fold
from tinyser.export import export_run
from tinyser.features import Frontend, get_config
from tinyser.inference import load_model
from tinyser.tflite import LiteRTModel, TFLMModel, is_tflm_compatible, read_metadata


@pytest.fixture(scope="module")
def exported(toy_run, tmp_path_factory):
    run, _ = toy_run
    out = tmp_path_factory.mktemp("export")
    paths = export_run(run, ["float32", "dynamic", "int8"], fold=0, out=out, onnx=True)
    return run, out, paths


def test_export_writes_variants_and_c_arrays(exported):
    _, out, paths = exported
    names = sorted(p.name for p in paths)
    assert names == sorted(["tiny-float32.tflite", "tiny-dynamic.tflite", "tiny-int8.tflite", "model_data.h",
                            "model_data.cc", "model_ops.h", "tiny-float32.onnx"])
    cc = (out / "c" / "model_data.cc").read_text()
    assert "alignas(16)" in cc and f"g_model_len = {(out / 'tiny-int8.tflite').stat().st_size}" in cc
    ops = (out / "c" / "model_ops.h").read_text()
    assert all(f"Add{op}()" in ops for op in ("Conv2D", "AveragePool2D", "Concatenation", "FullyConnected", "Softmax"))


def test_metadata_and_info_show_labels_and_frontend(exported):
    run, out, _ = exported
    meta = read_metadata((out / "tiny-int8.tflite").read_bytes())
    assert meta.labels == ("high", "low", "mid") and meta.quantization == "int8"
    assert meta.frontend.config.name == "mfcc" and meta.frontend.config.n_mfcc == 20
    assert len(meta.frontend.standardizer.mean) == 20
    assert meta.input.dtype == "int8" and meta.input.scale > 0
    r = CliRunner().invoke(app, ["info", str(out / "tiny-int8.tflite")])
    assert r.exit_code == 0 and "high, low, mid" in r.output and "mfcc" in r.output
    with pytest.raises(TinyserError, match="already exists"):
        export_run(run, ["int8"], fold=0, out=out)


def test_frontend_mismatch_is_refused(exported):
    _, out, _ = exported
    model = load_model(out / "tiny-float32.tflite")
    audio = np.random.default_rng(0).standard_normal((2, 8000)).astype(np.float32) * 0.1
    good = model.frontend.features(audio)
    assert model.predict_features(good, frontend=model.frontend).shape == (2, 3)
    other = Frontend(get_config("mfcc", n_mfcc=20, n_mels=32))
    with pytest.raises(ConfigError, match="different frontend"):
        model.predict_features(other.features(audio), frontend=other)
    with pytest.raises(ConfigError, match="do not fit"):
        model.predict_features(Frontend(get_config("logmel")).features(audio))


def test_int8_runs_in_tflite_micro_like_reference_kernels(exported):
    run, out, _ = exported
    blob = (out / "tiny-int8.tflite").read_bytes()
    assert is_tflm_compatible(blob) == (True, "ok")
    x, _, _ = load_fold(run, 0).part("test")
    ref, micro = LiteRTModel(blob, reference=True), TFLMModel(blob)
    for row in x[:8]:
        q = ref.quantise(row[None])
        assert np.max(np.abs(ref.predict_raw(q).astype(int) - micro.predict_raw(q).astype(int))) <= 1


def test_dynamic_range_is_not_for_tflite_micro(exported):
    _, out, _ = exported
    ok, reason = is_tflm_compatible((out / "tiny-dynamic.tflite").read_bytes())
    assert not ok and "dynamic-range" in reason


def test_model_without_metadata_is_refused(tmp_path):
    p = tmp_path / "x.tflite"
    p.write_bytes(b"not a model at all")
    r = CliRunner().invoke(app, ["info", str(p)])
    assert r.exit_code == 1 and "not a TFLite model" in r.stderr


def test_benchmark_compares_all_variants(toy_run, tmp_path):
    import shutil

    from tinyser.benchmark import benchmark_run, write_benchmark

    run = tmp_path / "run"
    shutil.copytree(toy_run[0], run)
    result = benchmark_run(run, fold=0, repeats=100, micro_clips=6)
    by = {v["quantization"]: v for v in result["variants"]}
    assert set(by) == {"float32", "float16", "dynamic", "int8"}
    assert by["float32"]["agreement_with_float32"] == 1.0
    assert by["int8"]["bytes"] < by["float32"]["bytes"]
    assert by["dynamic"]["tflm"].startswith("not runnable on TFLite Micro")
    assert by["int8"]["tflm"] == "runs" and by["int8"]["arena_bytes"] > 0
    assert by["int8"]["micro_max_lsb_diff"] <= 1 and by["int8"]["micro_clips"] == 6
    assert all(v["latency_ms"] > 0 and v["macs"] > 0 for v in by.values())
    json_path, md_path = write_benchmark(result, run)
    assert "| int8 |" in md_path.read_text() and json_path.exists()


def test_onnx_matches_keras_and_carries_metadata(exported):
    import json

    import onnx
    import onnxruntime as ort

    run, out, _ = exported
    proto = onnx.load(str(out / "tiny-float32.onnx"))
    meta = json.loads({p.key: p.value for p in proto.metadata_props}["tinyser"])
    assert meta["labels"] == ["high", "low", "mid"] and meta["frontend"]["frontend"] == "mfcc"
    fold = load_fold(run, 0)
    x, _, _ = fold.part("test")
    session = ort.InferenceSession(str(out / "tiny-float32.onnx"), providers=["CPUExecutionProvider"])
    got = session.run(None, {session.get_inputs()[0].name: x})[0]
    np.testing.assert_allclose(got, np.asarray(fold.model(x, training=False)), atol=1e-5)


def test_benchmark_command_on_loose_files(exported, toy_manifest):
    _, out, _ = exported
    files = [str(out / "tiny-float32.tflite"), str(out / "tiny-int8.tflite")]
    assert CliRunner().invoke(app, ["benchmark", *files]).exit_code == 1     # needs --data
    r = CliRunner().invoke(app, ["benchmark", *files, "--data", str(toy_manifest)])
    assert r.exit_code == 0, r.output
    assert "| int8 |" in r.output and (out / "benchmark.json").exists()


def test_benchmark_gives_the_device_budget_of_a_deployable_model(tmp_path):
    from conftest import write_tone

    from tinyser.benchmark import benchmark_files, markdown
    from tinyser.inference import DEFAULT_MODEL

    rows = ["path,label,speaker"] + [
        f"{write_tone(tmp_path / f'{label}{s}.wav', 2.0, freq=150.0 * (k + 1)).name},{label},s{s}"
        for k, label in enumerate(["angry", "sad", "happy"]) for s in range(2)]
    (tmp_path / "m.csv").write_text("\n".join(rows) + "\n")
    result = benchmark_files([DEFAULT_MODEL], [tmp_path / "m.csv"], repeats=100, micro_clips=2)
    (v,) = result["variants"]
    b = v["budget"]
    assert b["fits"] and b["ram"]["arena"] >= v["arena_bytes"] and b["flash"]["model"] == v["bytes"]
    assert 0 < b["real_time_factor"] < 1 and "fits the board | yes" in markdown(result)
