"""Profiling: torch.profiler traces that TensorBoard's profiler plugin lists, the top-ops table, the CLI."""
from __future__ import annotations

import json
import time

import pytest
import torch

from mnistbench import cli, data, results
from mnistbench.config import for_family
from mnistbench.perf import profiling

STEPS = profiling.ProfileSteps(wait=1, warmup=1, active=2)


@pytest.fixture(scope="module")
def profiled(tiny_root, tmp_path_factory):
    """One profile of the manual MLP (small hidden layers) on the tiny data set."""
    cfg = for_family("mlp", "manual", hidden=(32, 16), batch_size=32)
    splits = data.load(cfg, root=tiny_root)
    logdir = tmp_path_factory.mktemp("profiles")
    done = profiling.profile_steps(cfg, splits, logdir / "run1", STEPS)
    return logdir, done


def test_profile_writes_one_trace_and_a_top_ops_table(profiled):
    logdir, done = profiled
    assert done["folder"] == logdir / "run1"
    assert len(done["trace_files"]) == 1 and done["trace_files"][0].startswith("mlp-manual-cpu.")
    trace = json.loads((logdir / "run1" / done["trace_files"][0]).read_text())
    steps = {e["name"] for e in trace["traceEvents"] if e.get("name", "").startswith("ProfilerStep#")}
    assert len(steps) == STEPS.active  # the schedule kept exactly the active steps
    table = (logdir / "run1" / "top_ops.md").read_text()
    assert "| operator | calls | self CPU ms |" in table
    # the manual MLP's forward products are mm, its hand-written updates addmm_ into the weights
    assert "`aten::mm`" in table and "`aten::addmm_`" in table
    assert "ProfilerStep" not in table


def test_tensorboard_profiler_plugin_lists_the_run(profiled):
    """Load the folder with torch-tb-profiler's own plugin, as `tensorboard --logdir` would."""
    pytest.importorskip("torch_tb_profiler", reason="pip install '.[profile]' for the TensorBoard plugin")
    from tensorboard.plugins import base_plugin
    from torch_tb_profiler.plugin import TorchProfilerPlugin
    from werkzeug.test import Client

    logdir, _ = profiled
    plugin = TorchProfilerPlugin(base_plugin.TBContext(logdir=str(logdir)))
    runs = Client(plugin.runs_route).get("/").get_json()
    deadline = time.monotonic() + 60
    while (runs["loading"] or "run1" not in runs["runs"]) and time.monotonic() < deadline:
        time.sleep(0.2)  # the plugin finds and parses runs in background threads
        runs = Client(plugin.runs_route).get("/").get_json()
    assert runs["runs"] == ["run1"]
    views = Client(plugin.views_route).get("/?run=run1").get_json()
    assert "Overview" in views and "Operator" in views and "Memory" in views  # memory was recorded
    workers = Client(plugin.workers_route).get("/?run=run1&view=Overview").get_json()
    assert workers == ["mlp-manual-cpu"]
    spans = Client(plugin.spans_route).get("/?run=run1&worker=mlp-manual-cpu").get_json()
    query = f"/?run=run1&worker=mlp-manual-cpu&span={spans[0]}"
    table = Client(plugin.operation_table_route).get(query).get_json()
    calls = {row["name"]: row["calls"] for row in table["data"]}
    assert calls["aten::mm"] == 5 * STEPS.active  # 3 layers' forward and 2 deltas per kept step
    assert calls["aten::addmm_"] == 3 * STEPS.active  # 3 layers' hand-written weight updates
    assert calls["aten::addmv_"] == 3 * STEPS.active  # and their bias updates


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
def test_profile_on_cuda_records_kernels(tiny_root, tmp_path):
    cfg = for_family("mlp", "builtin", hidden=(32, 16), batch_size=32, device="cuda")
    splits = data.load(cfg, root=tiny_root, device="cuda")
    done = profiling.profile_steps(cfg, splits, tmp_path / "run1", STEPS)
    assert done["trace_files"][0].startswith("mlp-builtin-cuda.")
    assert "self CUDA ms" in done["top_ops"]
    trace = json.loads((tmp_path / "run1" / done["trace_files"][0]).read_text())
    assert any(e.get("cat") == "kernel" for e in trace["traceEvents"])  # CUPTI saw the GPU kernels


def test_sklearn_cannot_be_profiled(tiny_root, tmp_path):
    cfg = for_family("logistic", "sklearn")
    assert not profiling.can_profile(cfg)
    with pytest.raises(profiling.ConfigError, match="scikit-learn"):
        profiling.profile_steps(cfg, data.load(cfg, root=tiny_root), tmp_path / "x", STEPS)


def test_profile_command(tiny_env, tmp_path, capsys):
    code = cli.main(["profile", "--family", "softmax", "--impl", "handgrad,sklearn", "--out", str(tmp_path),
                     "--wait", "0", "--warmup", "1", "--active", "2"])
    out = capsys.readouterr().out
    assert code == 0
    folders = list((tmp_path / "profiles").iterdir())
    assert len(folders) == 1 and folders[0].name.startswith("softmax-handgrad-")
    assert "| operator |" in out and "softmax/sklearn" in out and "not profiled" in out
    assert f"tensorboard --logdir {tmp_path / 'profiles'}" in out


@pytest.mark.parametrize("argv, message", [
    (["--family", "logistic", "--impl", "sklearn"], "nothing to profile"),
    (["--family", "mlp", "--impl", "manual", "--active", "0"], "active >= 1"),
])
def test_profile_user_mistakes_are_one_line(tiny_env, tmp_path, capsys, argv, message):
    assert cli.main(["profile", *argv, "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1


def test_run_profile_names_the_profile_after_the_run(tiny_env, tmp_path, capsys):
    code = cli.main(["run", "--family", "logistic", "--impl", "handgrad,sklearn", "--epochs", "1", "--quiet",
                     "--profile", "--out", str(tmp_path)])
    assert code == 0
    trained = results.load(tmp_path).results
    assert sorted(r.config.impl for r in trained) == ["handgrad", "sklearn"]
    handgrad = next(r for r in trained if r.config.impl == "handgrad")
    assert [p.name for p in (tmp_path / "profiles").iterdir()] == [handgrad.run_id]
    assert (tmp_path / "profiles" / handgrad.run_id / "top_ops.md").is_file()
    assert handgrad.status == "ok" and handgrad.train_seconds > 0
    assert "profile: skipped (scikit-learn)" in capsys.readouterr().out
