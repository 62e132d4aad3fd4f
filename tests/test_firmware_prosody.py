"""The firmware with the prosody channels on, on an emulated Cortex-M4F (QEMU
mps2-an386): a model with the default model's architecture and frontend plus
the three prosody channels (untrained weights, built as
``benchmarks/prosody_device.py`` builds it) goes through ``tinyser deploy
verify``'s harness with voice activity off: every window is scored, the M4's
C frontend gives Python's int8 inputs (but for rare 1-LSB values), the model's
outputs are bit-identical on the same inputs, and the frontend costs more than
the plain MFCC build by the analysis (docs/results.md, prosody_device).

Needs what tests/test_firmware.py needs (arm-none-eabi-gcc, make,
qemu-system-arm, the TFLite Micro sources, the corpora) and TensorFlow for the
conversion; skipped without them.
"""
from __future__ import annotations

import importlib.util
import os
import shutil
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
THIRD_PARTY = Path(os.environ.get("TINYSER_THIRD_PARTY") or ROOT.parent / "shared" / "third_party")
DATA = Path(os.environ.get("TINYSER_DATA") or ROOT.parent / "shared" / "data")
TOOLS = ("arm-none-eabi-gcc", "arm-none-eabi-g++", "make", "qemu-system-arm")
LIBRARY_CACHE = Path(os.environ.get("TINYSER_CACHE") or Path.home() / ".cache" / "tinyser") / "firmware"
N_CLIPS = 8

pytestmark = [
    pytest.mark.skipif(any(shutil.which(t) is None for t in TOOLS),
                       reason="needs arm-none-eabi-gcc, make and qemu-system-arm"),
    pytest.mark.skipif(not (THIRD_PARTY / "tflite-micro").is_dir(),
                       reason=f"no TFLite Micro sources at {THIRD_PARTY} (set TINYSER_THIRD_PARTY)"),
]


def _benchmark():
    spec = importlib.util.spec_from_file_location("prosody_device", ROOT / "benchmarks" / "prosody_device.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_prosody_firmware_on_emulated_m4_matches_host(tmp_path):
    pytest.importorskip("tensorflow")
    if not DATA.is_dir():
        pytest.skip(f"no corpora at {DATA} (set TINYSER_DATA)")
    from tinyser.deploy import load_target
    from tinyser.deploy.firmware import default_clips, verify
    from tinyser.inference import DEFAULT_MODEL

    clips = default_clips(N_CLIPS, DATA)
    model = _benchmark().prosody_model(DEFAULT_MODEL, clips, tmp_path / "prosody.tflite")
    t = load_target(model)
    assert t.config.prosody and t.n_features == 43
    r = verify(model, clips=clips, tflm=THIRD_PARTY, out=tmp_path / "fw", cache=LIBRARY_CACHE, vad=False)
    config = (tmp_path / "fw" / "tinyser_config.h").read_text()
    assert "#define TINYSER_VAD 0" in config and "#define TINYSER_VAD 1" not in config
    p = r["pipeline"]
    print(f"\nprosody firmware: inputs equal {p['inputs_equal']}/{p['inferences']} windows "
          f"({p['input_bytes_differing']} of {p['input_bytes']} values off by 1 LSB); outputs equal "
          f"{p['equal']}/{p['inferences']}; frontend {r['instructions']['frontend_per_audio_second'] / 1e6:.2f} M "
          "instructions per second of audio")
    assert r["n_features"] == 43 and r["vad"] is False
    # without voice activity every scheduled window is scored, and the device scores on the host's schedule
    assert p["inferences"] == p["windows_scheduled"] >= N_CLIPS // 2 and p["skipped_by_voice_activity"] == 0
    assert not [m for m in p["mismatched"] if "schedule" in m]
    assert r["model_parity"]["equal"] == r["model_parity"]["inputs"]
    assert p["device_outputs_reproduced_from_device_inputs"] == p["inferences"]
    assert p["unequal_with_equal_inputs"] == 0, p["mismatched"]
    # the portable FFT rounds differently from CMSIS-DSP's (Python's): rare inputs off by 1 LSB, no voicing flip
    assert p["input_max_diff"] <= 1 and p["input_bytes_differing"] < 1e-3 * p["input_bytes"]
    assert p["equal"] >= 0.9 * p["inferences"], p["mismatched"]
    # instructions are counted exactly (QEMU -icount): the portable MFCC alone takes ~8.4 M per second of
    # audio; the analysis through a 256-point real FFT adds ~1.9 M (docs/results.md), a 1024-point one added 6.4 M
    assert 8e6 < r["instructions"]["frontend_per_audio_second"] < 11e6
