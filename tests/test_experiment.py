"""A whole cross-validated run on a small generated corpus: report files, speakers kept
apart, same seed → same report, killed and resumed → same report."""
from __future__ import annotations

import json

import pytest
from conftest import TOY_FREQS, toy_config
from typer.testing import CliRunner

from tinyser.cli import app
from tinyser.errors import TinyserError
from tinyser.experiment import run_training


def test_run_writes_report_and_keeps_speakers_apart(toy_run, toy_manifest):
    run, report = toy_run
    for name in ("report.json", "report.md", "confusion.png", "curves.png", "folds.png", "config.json"):
        assert (run / name).stat().st_size > 0
    saved = json.loads((run / "report.json").read_text())
    assert {"ua", "wa", "f1", "per_class", "confusion", "labels", "folds"} <= set(saved)
    assert saved["labels"] == sorted(TOY_FREQS) and len(saved["folds"]) == 3
    tested = []
    for f in saved["folds"]:
        spk = {p: set(f["speakers"][p]) for p in ("train", "val", "test")}
        assert not spk["train"] & spk["test"] and not spk["val"] & spk["test"] and not spk["train"] & spk["val"]
        assert not set(f["clips"]["val"]) & set(f["clips"]["test"])
        tested += f["clips"]["test"]
    assert len(tested) == len(set(tested)) == 54
    assert report["n_clips"] == 54 and 0 <= report["ua"] <= 1
    for fold in range(3):
        assert (run / f"fold_{fold:02d}" / "model.keras").exists()
        assert not list((run / f"fold_{fold:02d}").glob("checkpoint-*"))
    r = CliRunner().invoke(app, ["evaluate", str(run)])
    assert r.exit_code == 0 and "UA" in r.output and "mean ± std" in r.output
    with pytest.raises(TinyserError, match="already exists"):
        run_training(toy_config(toy_manifest), run, progress=False)


def test_same_seed_same_report_and_resume_equals_uninterrupted(toy_run, toy_manifest, tmp_path):
    _, a = toy_run

    def kill(fold, epoch, record):
        if fold == 1 and epoch == 1:
            raise KeyboardInterrupt
    with pytest.raises(KeyboardInterrupt):
        run_training(toy_config(toy_manifest), tmp_path / "b", progress=False, on_epoch=kill)
    assert (tmp_path / "b" / "fold_00" / "result.json").exists()
    assert not (tmp_path / "b" / "report.json").exists()
    b = run_training(None, tmp_path / "b", resume=True, progress=False)
    assert a == b


def test_training_with_waveform_augmentation(toy_manifest, tmp_path):
    from tinyser.augment import AugmentConfig

    cfg = toy_config(toy_manifest, epochs=1, augment=AugmentConfig().to_dict())
    report = run_training(cfg, tmp_path / "aug", progress=False)
    assert len(report["folds"]) == 3 and all(f["epochs_run"] == 1 for f in report["folds"])


def test_distillation_from_an_ensemble_and_only_from_the_same_folds(toy_run, toy_manifest, tmp_path):
    run, _ = toy_run
    distill = {"teacher": [str(run), str(run)], "weight": 0.5, "temperature": 2.0}
    report = run_training(toy_config(toy_manifest, epochs=1, distill=distill), tmp_path / "student", progress=False)
    assert len(report["folds"]) == 3
    other_seed = toy_config(toy_manifest, epochs=1, seed=6, distill={"teacher": str(run)})
    with pytest.raises(TinyserError, match="teacher was trained on other data"):
        run_training(other_seed, tmp_path / "refused", progress=False)
