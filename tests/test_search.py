"""tinyser search: the candidate space, costs checked before training, the Pareto
frontier, and a small Ray Tune search that skips what does not fit and resumes."""
from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from tinyser.errors import ConfigError
from tinyser.search import (
    HAND_GRID,
    SPACE,
    Candidate,
    Limits,
    estimate_instructions,
    op_rates,
    pareto,
    sample,
)


def test_candidate_round_trips_and_names_its_knobs():
    c = Candidate(width=0.25, input_pool=None, depth=3, kernels="7x1,1x5,3x3", first="channels",
                  pooling="meanmax", n_mfcc=20, hop_length=512, window=1.5)
    assert Candidate.from_dict(json.loads(json.dumps(c.to_dict()))) == c
    assert c.name == "w0.25-pnone-d3-k7.5-channels-meanmax-c20-h512-1.5s"
    assert Candidate() == HAND_GRID[2]  # the shipped shape is the hand-written grid's choice
    with pytest.raises(ConfigError, match="width must be one of"):
        Candidate(width=0.3)


def test_sample_is_seeded_distinct_and_excludes():
    a = sample(20, seed=3, exclude=HAND_GRID)
    assert a == sample(20, seed=3, exclude=HAND_GRID)
    assert len(set(a)) == 20 and not set(a) & set(HAND_GRID)
    assert a != sample(20, seed=4, exclude=HAND_GRID)
    assert all(getattr(c, k) in v for c in a for k, v in SPACE.items())


def test_limits_say_what_does_not_fit():
    cost = {"arena_bytes": 70 * 1024, "model_bytes": 10, "ram_bytes": 10, "real_time_factor": 0.2,
            "macs_per_second": 9e6}
    assert Limits().problems(cost) == ["arena 70.0 KB > 64.0 KB", "MACs/s 9.0 M > 8.0 M"]
    assert Limits(arena_bytes=None, macs_per_second=None).problems(cost) == []


def test_latency_model_reproduces_the_measured_reference():
    from tinyser.deploy.firmware import find_measurement
    from tinyser.inference import DEFAULT_MODEL

    blob = DEFAULT_MODEL.read_bytes()
    rates = op_rates()
    measured = find_measurement(blob)["instructions"]["per_op"]
    assert estimate_instructions(blob, rates) == pytest.approx(sum(p["instructions"] for p in measured), rel=1e-6)
    assert rates["CONV_2D/1ch"] > 4 * rates["CONV_2D"]  # one-input-channel convolutions are slow on CMSIS-NN


def test_pareto_keeps_the_non_dominated():
    rows = [{"name": n, "val_ua": v, "latency_ms": lat, "ram_bytes": ram, "model_bytes": 1}
            for n, v, lat, ram in (("fast", .4, 10, 5), ("good", .6, 50, 5), ("worse", .5, 60, 5), ("same", .4, 10, 6))]
    assert pareto(rows) == ["fast", "good"]


def test_cli_search_refuses_a_bad_recipe_in_one_line(tmp_path):
    from tinyser.cli import app

    bad = tmp_path / "config.json"
    bad.write_text("{not json")
    r = CliRunner().invoke(app, ["search", "--out", str(tmp_path / "s"), "--recipe", str(bad)])
    assert r.exit_code == 1
    assert "not a tinyser run configuration" in r.output and "Traceback" not in r.output
    r = CliRunner().invoke(app, ["search", "--out", str(tmp_path / "s"), "--data", str(tmp_path), "--board", "uno"])
    assert r.exit_code == 1 and "unknown board 'uno'" in r.output


@pytest.mark.slow
def test_search_skips_what_does_not_fit_trains_the_rest_and_resumes(toy_manifest, tmp_path):
    ray = pytest.importorskip("ray")
    from tinyser.experiment import RunConfig
    from tinyser.search import search
    from tinyser.training import TrainConfig

    base = RunConfig((str(toy_manifest),), frontend={"frontend": "cmsis_mfcc"},
                     segments={"window": 2.0, "hop": None, "pad": "zero"},
                     train=TrainConfig(epochs=3, batch_size=16, seed=5))
    small, big = Candidate(width=0.25, input_pool=(2, 2)), Candidate(width=0.5, input_pool=None)
    out = tmp_path / "search"
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        first = search(base, out, include=(small, big), trials=1, limits=Limits(arena_bytes=40 * 1024),
                       grace_epochs=1, progress=False)
        rows = {r["name"]: r for r in first["rows"]}
        assert not rows[big.name]["fits"] and "arena" in rows[big.name]["skipped"]
        assert not (out / "trials" / big.name).exists()  # measured, never trained
        trained = [r for r in first["rows"] if r["fits"]]
        assert len(trained) == 2 and all(r["val_ua"] is not None for r in trained)
        assert first["chosen"] in first["frontier"] and (out / "best" / first["chosen"] / "tiny-int8.tflite").exists()
        done = {n: (out / "trials" / n / "fold_00" / "result.json").stat().st_mtime_ns
                for n in (r["name"] for r in trained if r["finished"])}
        assert done
        again = search(base, out, include=(small, big), trials=1, limits=Limits(arena_bytes=40 * 1024),
                       grace_epochs=1, progress=False)
    finally:
        ray.shutdown()
    assert {n: (out / "trials" / n / "fold_00" / "result.json").stat().st_mtime_ns for n in done} == done
    def scores(result):
        return [(r["name"], r.get("val_ua")) for r in result["rows"]]

    assert scores(again) == scores(first)
    assert again["chosen"] == first["chosen"]
