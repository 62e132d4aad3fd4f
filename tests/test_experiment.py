"""A whole cross-validated run on a small generated corpus: report files, speakers kept
apart, same seed → same report, killed and resumed → same report."""
from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from conftest import write_tone
from tinyser.cli import app
from tinyser.errors import TinyserError
from tinyser.experiment import RunConfig, run_training
from tinyser.training import TrainConfig

FREQS = {"low": 140.0, "mid": 320.0, "high": 700.0}


@pytest.fixture(scope="module")
def manifest(tmp_path_factory):
    root = tmp_path_factory.mktemp("toy")
    rows = ["path,label,speaker"]
    for s in range(6):
        for label, f in FREQS.items():
            for k in range(3):
                p = write_tone(root / f"s{s}" / f"{label}{k}.wav", 0.6, 16000, freq=f * (1 + 0.03 * s + 0.01 * k))
                rows.append(f"{p.relative_to(root)},{label},spk{s}")
    (root / "toy.csv").write_text("\n".join(rows) + "\n")
    return root / "toy.csv"


def config(manifest, **train):
    return RunConfig((str(manifest),), model="tiny", protocol="speaker:3",
                     frontend={"frontend": "mfcc", "n_mfcc": 20}, segments={"window": 0.5, "hop": None, "pad": "zero"},
                     train=TrainConfig(**{"epochs": 3, "batch_size": 16, "seed": 5, **train}))


def strip(report):
    return {k: v for k, v in report.items() if k not in ("folds",)} | \
        {"folds": [{k: v for k, v in f.items()} for f in report["folds"]]}


def test_run_writes_report_and_keeps_speakers_apart(manifest, tmp_path):
    report = run_training(config(manifest), tmp_path / "run", progress=False)
    for name in ("report.json", "report.md", "confusion.png", "curves.png", "folds.png", "config.json"):
        assert (tmp_path / "run" / name).stat().st_size > 0
    saved = json.loads((tmp_path / "run" / "report.json").read_text())
    assert {"ua", "wa", "f1", "per_class", "confusion", "labels", "folds"} <= set(saved)
    assert saved["labels"] == sorted(FREQS) and len(saved["folds"]) == 3
    tested = []
    for f in saved["folds"]:
        spk = {p: set(f["speakers"][p]) for p in ("train", "val", "test")}
        assert not spk["train"] & spk["test"] and not spk["val"] & spk["test"] and not spk["train"] & spk["val"]
        assert not set(f["clips"]["val"]) & set(f["clips"]["test"])
        tested += f["clips"]["test"]
    assert len(tested) == len(set(tested)) == 54
    assert report["n_clips"] == 54 and 0 <= report["ua"] <= 1
    for fold in range(3):
        assert (tmp_path / "run" / f"fold_{fold:02d}" / "model.keras").exists()
        assert not list((tmp_path / "run" / f"fold_{fold:02d}").glob("checkpoint-*"))
    r = CliRunner().invoke(app, ["evaluate", str(tmp_path / "run")])
    assert r.exit_code == 0 and "UA" in r.output and "mean ± std" in r.output

    with pytest.raises(TinyserError, match="already exists"):
        run_training(config(manifest), tmp_path / "run", progress=False)


def test_same_seed_same_report_and_resume_equals_uninterrupted(manifest, tmp_path):
    a = run_training(config(manifest), tmp_path / "a", progress=False)

    def kill(fold, epoch, record):
        if fold == 1 and epoch == 1:
            raise KeyboardInterrupt
    with pytest.raises(KeyboardInterrupt):
        run_training(config(manifest), tmp_path / "b", progress=False, on_epoch=kill)
    assert (tmp_path / "b" / "fold_00" / "result.json").exists()
    assert not (tmp_path / "b" / "report.json").exists()
    b = run_training(None, tmp_path / "b", resume=True, progress=False)
    assert strip(a) == strip(b)
