"""A whole cross-validated run on a small generated corpus: report files, speakers kept
apart, same seed → same report, killed and resumed → same report."""
from __future__ import annotations

import json

import numpy as np
import pytest
from conftest import TOY_FREQS, toy_config
from typer.testing import CliRunner

from tinyser.cli import app
from tinyser.errors import ConfigError, TinyserError
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


def test_refit_trains_on_validation_clips_for_the_chosen_epochs_and_resumes(toy_manifest, tmp_path):
    """``refit``: validation chooses the epoch count, then a fresh model trains on training + validation
    clips for that many epochs and is the one tested; a kill in the refit resumes to the same report."""
    cfg = toy_config(toy_manifest, epochs=4, patience=4, refit=True)
    a = run_training(cfg, tmp_path / "a", progress=False)
    seen = []

    def kill(fold, epoch, record):
        seen.append(record)
        if fold == 1 and "val_ua" not in record:  # the second fold's first refit epoch
            raise KeyboardInterrupt
    with pytest.raises(KeyboardInterrupt):
        run_training(cfg, tmp_path / "b", progress=False, on_epoch=kill)
    assert (tmp_path / "b" / "fold_01" / "refit" / "state.json").exists()
    b = run_training(None, tmp_path / "b", resume=True, progress=False)
    assert a == b
    assert len(a["folds"]) == 3
    for folder in sorted((tmp_path / "a").glob("fold_*")):
        result = json.loads((folder / "result.json").read_text())
        refit = result["refit"]
        assert refit["epochs"] == result["best_epoch"] + 1 and refit["val_clips"] and refit["val_speakers"]
        assert set(refit["before"]) == {"ua", "wa", "f1"}
        assert result["clips"]["val"] == [] and result["speakers"]["val"] == []
        assert set(refit["val_clips"]) <= set(result["clips"]["train"])
        assert set(refit["val_speakers"]) <= set(result["speakers"]["train"])
        assert not set(result["speakers"]["train"]) & set(result["speakers"]["test"])
        assert not (folder / "refit").exists() and not list(folder.glob("checkpoint-*"))
    plain = run_training(toy_config(toy_manifest, epochs=4, patience=4), tmp_path / "c", progress=False)
    assert [f["val_ua"] for f in plain["folds"]] == [f["val_ua"] for f in a["folds"]]  # the same selection
    assert a["before_refit"]["ua"] == pytest.approx(plain["ua"])  # tested before the refit: the plain run
    import keras  # ... but another model kept and tested

    kept, chosen = (keras.models.load_model(run / "fold_00" / "model.keras", compile=False).get_weights()
                    for run in (tmp_path / "a", tmp_path / "c"))
    assert not all(np.array_equal(u, v) for u, v in zip(kept, chosen))


def test_training_with_waveform_augmentation(toy_manifest, tmp_path):
    from tinyser.augment import AugmentConfig

    cfg = toy_config(toy_manifest, epochs=1, augment=AugmentConfig().to_dict())
    report = run_training(cfg, tmp_path / "aug", progress=False)
    assert len(report["folds"]) == 3 and all(f["epochs_run"] == 1 for f in report["folds"])


def test_distillation_from_an_ensemble_and_only_from_the_same_folds(toy_run, toy_manifest, tmp_path):
    run, toy_report = toy_run
    # another seed on the toy run's folds (split seed 5): same speakers held out, other initialisation and draws
    member = run_training(toy_config(toy_manifest, epochs=1, seed=6, split_seed=5), tmp_path / "member",
                          progress=False)
    assert [f["speakers"] for f in member["folds"]] == [f["speakers"] for f in toy_report["folds"]]
    assert [f["clips"] for f in member["folds"]] == [f["clips"] for f in toy_report["folds"]]
    assert member["folds"][0]["history"][0]["loss"] != toy_report["folds"][0]["history"][0]["loss"]
    distill = {"teacher": [str(run), str(tmp_path / "member")], "weight": 0.5, "temperature": 2.0}
    report = run_training(toy_config(toy_manifest, epochs=1, distill=distill), tmp_path / "student", progress=False)
    assert len(report["folds"]) == 3
    other_seed = toy_config(toy_manifest, epochs=1, seed=6, distill={"teacher": str(run)})
    with pytest.raises(TinyserError, match="teacher was trained on other data"):
        run_training(other_seed, tmp_path / "refused", progress=False)
    with pytest.raises(ConfigError, match="split_seed"):
        toy_config(toy_manifest, split_seed=-1)


def test_distillation_from_the_egemaps_svm_hears_only_each_folds_training_clips(toy_run, toy_manifest, tmp_path,
                                                                                 monkeypatch):
    pytest.importorskip("opensmile")
    import tinyser.egemaps as egemaps

    heard, real = [], egemaps.functionals
    monkeypatch.setattr(egemaps, "functionals", lambda paths, *a, **k: heard.append(list(paths)) or real(paths))
    run, _ = toy_run
    distill = {"teacher": [str(run)], "egemaps": "speaker", "weight": 0.5, "temperature": 2.0}
    report = run_training(toy_config(toy_manifest, epochs=1, distill=distill), tmp_path / "student", progress=False)
    assert len(heard) == len(report["folds"]) == 3
    for paths, fold in zip(heard, report["folds"]):
        names = {"/".join(p.split("/")[-2:]) for p in paths}
        assert names == {c.split(":", 1)[1] for c in fold["clips"]["train"]}  # never a validation or test clip
    with pytest.raises(ConfigError, match="egemaps"):
        toy_config(toy_manifest, distill={"egemaps": "per-clip"})
    with pytest.raises(ConfigError, match="split"):
        toy_config(toy_manifest, distill={"egemaps": "speaker", "split": "corpus"})


def test_distillation_from_compare_functionals_asks_for_them_and_their_linear_model(toy_manifest, tmp_path,
                                                                                  monkeypatch):
    """``distill["functionals"]``: the teacher's functionals are ComParE's 6,373 of each fold's training clips,
    and its out-of-fold probabilities come from the linear model named for them."""
    pytest.importorskip("opensmile")
    import tinyser.egemaps as egemaps

    sets, widths, kinds = [], [], []
    real_functionals, real_fit = egemaps.functionals, egemaps.fit_predict

    def functionals(paths, *a, feature_set="egemaps", **k):
        x = real_functionals(paths, *a, feature_set=feature_set, **k)
        sets.append(feature_set), widths.append(x.shape[1])
        return x

    def fit_predict(*a, feature_set="egemaps", **k):
        kinds.append(egemaps.FEATURE_SETS[feature_set].classifier)
        return real_fit(*a, feature_set=feature_set, **k)

    monkeypatch.setattr(egemaps, "functionals", functionals)
    monkeypatch.setattr(egemaps, "fit_predict", fit_predict)
    distill = {"egemaps": "speaker", "functionals": "compare", "weight": 0.5, "temperature": 1.0}
    report = run_training(toy_config(toy_manifest, epochs=1, distill=distill), tmp_path / "student", progress=False)
    assert sets == ["compare"] * len(report["folds"]) and widths == [6373] * len(report["folds"])
    assert kinds and set(kinds) == {"linear"}
    with pytest.raises(ConfigError, match="functionals"):
        toy_config(toy_manifest, distill={"egemaps": "speaker", "functionals": "gemaps"})


def test_a_teacher_is_asked_about_the_very_windows_the_epoch_draws():
    from tinyser.training import FoldData, TrainConfig, epoch_batch

    x = np.arange(20, dtype=np.float32).reshape(10, 2, 1)
    y = np.array([0, 1] * 5)
    asked = []

    def teacher(windows, rows):
        asked.append(rows)
        assert np.array_equal(windows, x[rows])
        return np.eye(2, dtype=np.float32)[1 - y[rows]]  # a teacher that always disagrees

    data = FoldData(x, y, None, None, None, 2, weights=np.ones(10, np.float32), teacher=teacher)
    cfg = TrainConfig(epoch_size=16, distill={"teacher": "t", "weight": 0.5, "temperature": 1.0})
    _, target, _ = epoch_batch(data, cfg, np.random.default_rng(0))
    assert len(asked[0]) == 16 and np.allclose(target, 0.5)
