"""The Python API: cheap to import, the CLI's options with the same meaning, results saved or not,
results read back and reported (tiny generated data)."""
from __future__ import annotations

import subprocess
import sys

import pytest

import mnistbench
from mnistbench import ConfigError


def test_import_is_cheap_and_names_load_on_first_use():
    code = ("import sys, mnistbench\n"
            "from mnistbench import register, register_family, Family, DataRecipe, RunConfig\n"
            "assert 'torch' not in sys.modules and 'pandas' not in sys.modules, 'a heavy import'\n"
            "from mnistbench import run, ConfigError, OutputError\n"
            "assert 'torch' not in sys.modules and callable(run), 'the API loads torch when it trains'\n"
            "from mnistbench import DataError\n"
            "assert 'torch' in sys.modules and issubclass(DataError, ConfigError)\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert set(mnistbench.__all__) <= set(dir(mnistbench))
    with pytest.raises(AttributeError, match="no attribute 'nosuch'"):
        mnistbench.nosuch


def test_plan_takes_the_cli_options():
    grid = mnistbench.plan("softmax", ["manual", "builtin"], lists=True, lr=[0.1, 0.01], seed=[0, 1], epochs=3)
    assert len(grid) == 2 * 2 * 2 and {c.epochs for c in grid} == {3}
    assert {(c.impl, c.lr, c.seed) for c in grid} == {(i, lr, s) for i in ("manual", "builtin")
                                                       for lr in (0.1, 0.01) for s in (0, 1)}
    (one,) = mnistbench.plan("mlp", "manual", hidden=(64, 32), lr=0.05, device="cpu")  # run: one value each
    assert (one.hidden, one.lr, one.device, one.patience) == ((64, 32), 0.05, "cpu", 3)
    threads = mnistbench.plan("mlp", "manual", lists=True, threads=[1, 2], dtype=["float32", "bfloat16"])
    assert {(c.threads, c.dtype) for c in threads} == {(t, d) for t in (1, 2) for d in ("float32", "bfloat16")}
    assert mnistbench.plan("mlp", "manual", no_early_stop=True)[0].patience is None
    sizes = mnistbench.plan("mlp", "manual", lists=True, hidden=[(64, 32), (16,)])
    assert [c.hidden for c in sizes] == [(64, 32), (16,)]
    every = mnistbench.plan()
    assert {(c.family, c.impl) for c in every} == {(e.family, e.name) for e in mnistbench.implementations()}


@pytest.mark.parametrize("kwargs, message", [
    ({"lr": [0.1, 0.01]}, "--lr takes one value in `run`"),
    ({"seed": [0]}, "--seed takes one value in `run`"),
    ({"hidden": [(64,), (32,)]}, "--hidden takes one value in `run`"),
    ({"lrr": 0.1}, "unknown option 'lrr'"),
    ({"patience": 2, "no_early_stop": True}, "contradict"),
    ({"epochs": 0}, "epochs must be >= 1"),
])
def test_plan_mistakes_are_config_errors(kwargs, message):
    with pytest.raises(ConfigError, match=message):
        mnistbench.plan("softmax", "manual", **kwargs)


def test_run_sweep_load_and_report(tiny_env, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    trained = mnistbench.run("logistic", "manual", epochs=1, save=False)
    assert [(r.status, r.config.impl, r.epochs_run) for r in trained] == [("ok", "manual", 1)]
    events = [e.kind for e in mnistbench.api.execute(mnistbench.plan("logistic", "manual", epochs=2), save=False)]
    assert events == ["start", "epoch", "epoch", "done"]
    assert list(tmp_path.iterdir()) == []  # save=False: nothing written
    with pytest.raises(ConfigError, match="resuming needs"):
        mnistbench.run("logistic", "manual", epochs=1, save=False, resume=True)

    out = tmp_path / "out"
    mnistbench.sweep("logistic", ["manual", "builtin"], lr=[0.1, 0.01], epochs=1, out=out)
    frame = mnistbench.load_results(out)
    assert len(frame) == 4 and set(frame.impl) == {"manual", "builtin"} and set(frame.lr) == {0.1, 0.01}
    assert mnistbench.sweep("logistic", ["manual", "builtin"], lr=[0.1, 0.01], epochs=1, out=out, resume=True) == []

    mnistbench.run("logistic", "manual", epochs=1)  # out left out: the CLI's default folder
    assert len(mnistbench.load_results()) == 1 and (tmp_path / "mnistbench-out" / "runs").is_dir()

    written = mnistbench.report(out)
    assert written["report"] == out / "report.md" and written["report"].is_file()
    assert out / "summary.csv" in written["tables"] and all(p.is_file() for p in written["plots"])
    with pytest.raises(ConfigError, match="does not exist"):
        mnistbench.load_results(tmp_path / "nowhere")


def test_study_and_report_stay_functions_after_every_module_is_imported():
    import mnistbench.cli
    import mnistbench.reporting
    import mnistbench.reporting.notebook_table
    import mnistbench.studygrid

    for name in ("run", "sweep", "study", "load_results", "report", "compare", "register"):
        assert callable(getattr(mnistbench, name)), name
    assert mnistbench.study.__module__ == mnistbench.report.__module__ == "mnistbench.api"


def test_compare_through_the_api(tiny_env, tmp_path):
    for folder in ("a", "b"):
        mnistbench.run("softmax", "handgrad", epochs=4, out=tmp_path / folder)
    frame = mnistbench.compare(tmp_path / "a", tmp_path / "b")
    # one run a side, measured apart: never faster or slower, whatever the two runs' times
    assert len(frame) == 1 and frame.iloc[0]["verdict"] == "inconclusive"
    assert "drift between the runs is unmeasured" in frame.iloc[0]["verdict_text"]
    assert frame.iloc[0]["ratio_ci_low"] <= frame.iloc[0]["ratio"] <= frame.iloc[0]["ratio_ci_high"]
