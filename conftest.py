"""The fast test subset: ``python -m pytest -q -m "not slow"``.

Slow tests (training, TFLite conversion, TFLite Micro, firmware builds, whole-corpus
runs: about a second or more each, measured with ``pytest --durations=0``) get the
``slow`` marker here, by module or by test, so test files need no decorators. When
``-m`` deselects slow tests, modules whose import alone is slow (they import Keras,
hence TensorFlow: seconds) are not even collected.
"""
from __future__ import annotations

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent

#: test modules whose tests are all slow (they train, convert, emulate or build firmware)
SLOW_MODULES = {
    "tests/test_deploy.py", "tests/test_experiment.py", "tests/test_export.py", "tests/test_firmware.py",
    "tests/test_firmware_prosody.py", "tests/test_models.py", "tests/test_recipe.py", "tests/test_training.py",
    "tests/test_reliability.py",
}
#: modules that import Keras (TensorFlow) when imported: their docstring examples are slow too
SLOW_IMPORTS = {
    "src/tinyser/models/cnn1d.py", "src/tinyser/models/light_sernet.py", "src/tinyser/models/lstm.py",
    "src/tinyser/models/tiny.py",
}
#: single slow tests elsewhere: "path::name" (every parametrisation of it)
SLOW_TESTS = {
    "tests/test_audio.py::test_normalize_and_trim",  # librosa's first import and JIT
    "tests/test_cli.py::test_emodb_features_then_cache",
    "tests/test_cli.py::test_errors_are_one_line_without_traceback",
    "tests/test_cli.py::test_ravdess_scan_common6",
    "tests/test_cli.py::test_emodb_scan_counts",
    "tests/test_inference.py::test_predict_ravdess_actor_folder_json",
    "tests/test_inference.py::test_plots_of_same_named_files_do_not_clash",
    "tests/test_inference.py::test_listen_input_gives_the_same_windows_as_predict",
    "tests/test_inference.py::test_file_without_speech_gets_no_label",
    "tests/test_inference.py::test_plot_writes_png_and_keeps_existing",
    "tests/test_inference.py::test_cli_predict_with_no_flags_then_json_csv_out",
    "tests/test_inference.py::test_predict_file_any_rate_channels_and_length",
    "tests/test_extras.py::test_core_commands_run_without_the_extras",  # a fresh interpreter each
    "src/tinyser/models/__init__.py::tinyser.models",  # docstring examples that build Keras models
    "src/tinyser/tflite/convert.py::tinyser.tflite.convert.convert",
    "src/tinyser/tflite/micro.py::tinyser.tflite.micro.arena_fits",
    "src/tinyser/tflite/micro.py::tinyser.tflite.micro.TFLMModel",
    "src/tinyser/tflite/micro.py::tinyser.tflite.micro.find_arena_size",
    "src/tinyser/deploy/__init__.py::tinyser.deploy.deploy_arduino",
}


def _relative(path: Path) -> str:
    try:
        return Path(path).resolve().relative_to(ROOT).as_posix()
    except ValueError:
        return str(path)


def _slow_deselected(config) -> bool:
    """Whether ``-m`` leaves slow tests out (e.g. ``-m "not slow"``)."""
    expr = config.getoption("markexpr", "") or ""
    if "slow" not in expr:
        return False
    try:
        from _pytest.mark.expression import Expression

        return not Expression.compile(expr).evaluate(lambda name, **kw: name == "slow")
    except Exception:  # an expression or a pytest this does not understand: collect everything
        return False


def pytest_ignore_collect(collection_path, config):
    if _slow_deselected(config) and _relative(collection_path) in SLOW_MODULES | SLOW_IMPORTS:
        return True
    return None


def pytest_collection_modifyitems(config, items):
    slow = pytest.mark.slow
    for item in items:
        path = _relative(item.path)
        name = item.nodeid.split("::", 1)[-1].split("[", 1)[0]
        if path in SLOW_MODULES or path in SLOW_IMPORTS or f"{path}::{name}" in SLOW_TESTS:
            item.add_marker(slow)
