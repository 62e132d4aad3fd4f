"""Optional extras: a command that needs a missing one says which in one line, and the
core commands (predict, info) import no training, ONNX, TFLite Micro or plotting module."""
from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
from conftest import write_speechlike
from typer.testing import CliRunner

from tinyser.cli import app
from tinyser.extras import EXTRA_OF, MissingExtra, need

runner = CliRunner()


def hide(monkeypatch, *modules: str) -> None:
    """Make ``import module`` fail as if it were not installed."""
    for m in modules:
        monkeypatch.setitem(sys.modules, m, None)


@pytest.mark.parametrize("module", sorted(EXTRA_OF))
def test_need_names_the_extra(module, monkeypatch):
    hide(monkeypatch, module)
    with pytest.raises(MissingExtra) as e:
        need(module, "this job")
    msg = str(e.value)
    assert "\n" not in msg
    assert msg == f"this job needs {module}, which is not installed: pip install 'tinyser[{EXTRA_OF[module]}]'"


def one_line_error(result, extra: str, module: str) -> None:
    assert result.exit_code == 1
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1, result.output
    assert lines[0].startswith("error:") and module in lines[0] and f"tinyser[{extra}]" in lines[0]
    assert "Traceback" not in result.output


def test_listen_without_sounddevice_names_live(monkeypatch):
    hide(monkeypatch, "sounddevice")
    one_line_error(runner.invoke(app, ["listen"]), "live", "sounddevice")


@pytest.mark.parametrize("module", ["starlette", "uvicorn"])
def test_serve_without_the_web_stack_names_web(monkeypatch, module):
    hide(monkeypatch, module)
    one_line_error(runner.invoke(app, ["serve"]), "web", module)


def test_plot_without_matplotlib_names_plot(monkeypatch, tmp_path):
    hide(monkeypatch, "matplotlib", "matplotlib.pyplot")
    wav = write_speechlike(tmp_path / "a.wav", seconds=2.5)
    one_line_error(runner.invoke(app, ["plot", str(wav), "--out", str(tmp_path / "a.png")]), "plot", "matplotlib")
    assert not (tmp_path / "a.png").exists()


def test_scores_without_sklearn_names_train(monkeypatch):
    from tinyser.metrics import scores

    hide(monkeypatch, "sklearn", "sklearn.metrics")
    with pytest.raises(MissingExtra, match=r"scoring needs sklearn.*tinyser\[train\]"):
        scores([0, 1], [0, 1], ["a", "b"])


def test_mfcc_frontend_without_librosa_names_train(monkeypatch):
    from tinyser.features import get_config
    from tinyser.features.spectral import _mel_basis

    _mel_basis.cache_clear()
    hide(monkeypatch, "librosa")
    with pytest.raises(MissingExtra, match=r"the mfcc frontend needs librosa.*tinyser\[train\]"):
        get_config("mfcc").compute(np.zeros(4000, np.float32))
    _mel_basis.cache_clear()


#: modules of the extras, hidden to run a core command as the core install would
NOT_CORE = ("tensorflow", "keras", "sklearn", "librosa", "scipy", "matplotlib", "sounddevice", "cmsisdsp",
            "tflite_micro", "onnx", "onnxruntime", "tf2onnx", "audiomentations", "pyroomacoustics", "ray")

PROBE = """
import json, sys
hidden = json.loads(sys.argv.pop(1))
for m in hidden:
    sys.modules[m] = None  # import m now fails, as in the core install
from tinyser.cli import app
try:
    app(sys.argv[1:])
except SystemExit as e:
    code = e.code
print("IMPORTED", json.dumps(sorted(m for m in hidden if sys.modules.get(m) is not None)), code)
"""


@pytest.mark.parametrize("args", [["predict", "{wav}", "--json"], ["info", "default"],
                                  ["deploy", "arduino", "default", "--out", "{tmp}/sketch"]],
                         ids=["predict", "info", "deploy"])
def test_core_commands_run_without_the_extras(args, tmp_path):
    """The default model's predict, info and deploy with every extra's module (and SciPy, cmsisdsp) hidden."""
    wav = write_speechlike(tmp_path / "one.wav", seconds=3.0)
    argv = [a.format(wav=wav, tmp=tmp_path) for a in args]
    done = subprocess.run([sys.executable, "-c", PROBE, json.dumps(NOT_CORE), *argv],
                          capture_output=True, text=True, timeout=300)
    assert "IMPORTED" in done.stdout, done.stdout + done.stderr
    head, tail = done.stdout.rsplit("IMPORTED", 1)
    imported, code = tail.rsplit(" ", 1)
    assert json.loads(imported) == [] and int(code) == 0, done.stdout + done.stderr
    if args[0] == "predict":
        result = json.loads(head)["results"][0]
        assert result["label"] is not None and result["windows"]
    if args[0] == "deploy":
        assert (tmp_path / "sketch" / "sketch.ino").is_file() and (tmp_path / "sketch" / "model_data.cpp").is_file()
