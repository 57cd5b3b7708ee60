"""The study grid, divergence inside a sweep, and resuming an interrupted sweep or study (tiny data)."""
from __future__ import annotations

import json

import pytest

from mnistbench import cli, harness, registry, results, studygrid
from mnistbench.config import ConfigError


def run_files(folder):
    return sorted((folder / "runs").glob("*.json"))


def test_study_grid_has_every_point_once_per_seed():
    configs = studygrid.study_configs(seeds=2)
    mlp_points = {(lr, studygrid.LR_SWEEP_BATCH) for lr in studygrid.LR_SWEEP}
    mlp_points |= {(studygrid.BATCH_SWEEP_LR, batch) for batch in studygrid.BATCH_SWEEP}
    linear = sum(len(registry.impl_names(f)) for f in registry.families() if f != studygrid.SWEEP_FAMILY)
    assert len(mlp_points) == 7  # lr 0.01 / batch 64 is in both sweeps (and the default)
    assert len(configs) == 2 * (linear + len(registry.impl_names("mlp")) * len(mlp_points))
    assert len(set(configs)) == len(configs)  # equality ignores tags: duplicates were merged
    assert {c.seed for c in configs} == {0, 1}
    assert [c.seed for c in configs] == sorted(c.seed for c in configs)  # seed-major: a killed study keeps seeds
    for family in registry.families():
        defaults = {c.impl for c in configs if c.family == family and "defaults" in c.tags["parts"]}
        assert defaults == set(registry.impl_names(family))  # every implementation, handgrad and sklearn included
    for cfg in configs:
        assert cfg.epochs == registry.family(cfg.family).defaults["epochs"]
        assert cfg.patience == registry.family(cfg.family).defaults["patience"]
        if cfg.family == "mlp":
            assert (cfg.lr, cfg.batch_size) in mlp_points
    shared = [c for c in configs if c.family == "mlp" and c.lr == 0.01 and c.batch_size == 64]
    assert len(shared) == 2 * len(registry.impl_names("mlp"))
    assert all(c.tags["parts"] == ["defaults", "lr_sweep", "batch_sweep"] for c in shared)


def test_study_options_and_errors():
    configs = studygrid.study_configs(seeds=1, epochs=2, threads=1)
    assert {c.epochs for c in configs} == {2} and {c.threads for c in configs} == {1}
    with pytest.raises(ConfigError, match="--seeds"):
        studygrid.study_configs(seeds=0)
    assert studygrid.describe_plan(configs).startswith(f"study: {len(configs)} runs (logistic ")


def test_study_bad_seeds_is_a_one_line_error(capsys):
    assert cli.main(["study", "--seeds", "0"]) == 2
    assert capsys.readouterr().err.count("\n") == 1


def test_divergence_in_a_sweep_is_recorded_and_the_sweep_goes_on(tiny_env, tmp_path):
    code = cli.main(["sweep", "--family", "mlp", "--lr", "1000,0.01", "--epochs", "3", "--hidden", "32,16",
                     "--out", str(tmp_path), "--quiet"])
    assert code == 0
    records = results.load_results(tmp_path)
    by_lr = {(r.config.impl, r.config.lr): r for r in records}
    assert len(records) == 2 * len(registry.impl_names("mlp"))
    for impl in registry.impl_names("mlp"):
        diverged, ok = by_lr[(impl, 1000.0)], by_lr[(impl, 0.01)]
        assert diverged.status == "diverged" and diverged.diverged_epoch == len(diverged.history)
        assert diverged.epochs_run < 3
        assert ok.status == "ok" and ok.epochs_run >= 1
    # the next --resume treats diverged points as finished
    assert results.finished_keys(tmp_path) == {r.config_key for r in records}


SWEEP = ["sweep", "--family", "logistic", "--impl", "manual,handgrad", "--epochs", "2", "--quiet"]


def test_resume_runs_nothing_new(tiny_env, tmp_path, capsys):
    assert cli.main([*SWEEP, "--seed", "0,1", "--out", str(tmp_path)]) == 0
    first = run_files(tmp_path)
    assert len(first) == 4
    capsys.readouterr()
    assert cli.main([*SWEEP, "--seed", "0,1", "--out", str(tmp_path), "--resume"]) == 0
    assert run_files(tmp_path) == first
    assert capsys.readouterr().out.count(": skipped, already done (--resume)") == 4


def test_interrupted_sweep_completes_with_resume(tiny_env, tmp_path):
    configs = harness.expand(["logistic"], ["manual", "handgrad"], seed=[0, 1, 2], epochs=2)

    events = harness.execute(configs, tmp_path)
    with pytest.raises(KeyboardInterrupt):
        for event in events:
            if event.kind == "done" and event.index == 2:
                events.throw(KeyboardInterrupt)  # as Ctrl-C between runs
    finished = {p.name: p.read_text() for p in run_files(tmp_path)}
    assert len(finished) == 2 and all(json.loads(text)["status"] == "ok" for text in finished.values())

    assert cli.main([*SWEEP, "--seed", "0,1,2", "--out", str(tmp_path), "--resume"]) == 0
    records = results.load_results(tmp_path)
    assert len(records) == len(configs)  # only the missing points ran
    assert {r.config_key for r in records} == {results.config_key(c) for c in configs}
    assert not list((tmp_path / "runs" / ".claims").glob("*.json"))  # the interrupted grid released its claims
    assert all(p.read_text() == finished[p.name] for p in run_files(tmp_path) if p.name in finished)
    assert not list((tmp_path / "runs").glob(".*.tmp"))  # no temp file left behind


def test_study_end_to_end_on_tiny_data_and_resume(tiny_env, tmp_path, capsys):
    args = ["study", "--seeds", "1", "--epochs", "1", "--out", str(tmp_path)]
    assert cli.main(args) == 0
    out = capsys.readouterr().out
    n_points = len(studygrid.study_configs(seeds=1))
    assert len(run_files(tmp_path)) == n_points
    assert "study total time:" in out and "report.md" in out
    text = (tmp_path / "report.md").read_text()
    for title in ("## Summary", "## Learning-rate sweep", "## Batch-size sweep", "## Time to accuracy"):
        assert title in text
    assert (tmp_path / "plots" / "lr_curves_mlp.png").stat().st_size > 0

    assert cli.main([*args, "--resume"]) == 0
    assert f"0 run(s) trained, {n_points} already done" in capsys.readouterr().out
    assert len(run_files(tmp_path)) == n_points
