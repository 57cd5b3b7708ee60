"""Bring your own implementation: plugins found through real entry points, a whole new family through
run, sweep, study, report and the perf commands, broken plugins, the model contract, and the example
plugin (its parity with its twin, and a real pip install). Tiny generated data throughout."""
from __future__ import annotations

import csv
import importlib
import importlib.util
import os
import shutil
import subprocess
import sys
import warnings
from pathlib import Path

import pytest
import torch
from test_models import assert_same_trajectory

from mnistbench import cli, registry, studygrid
from mnistbench.config import for_family
from mnistbench.perf import throughput
from mnistbench.registry import PluginWarning

SAMPLES = Path(__file__).parent / "plugin_samples"
EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "mnistbench-momentum"


def install(site: Path, name: str, entry_points: dict) -> None:
    """What pip leaves for a package with entry points: NAME-VERSION.dist-info/ with METADATA and
    entry_points.txt, in a folder on sys.path."""
    info = site / f"{name.replace('-', '_')}-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 0.1\n")
    points = "".join(f"{entry} = {target}\n" for entry, target in entry_points.items())
    (info / "entry_points.txt").write_text(f"[{registry.ENTRY_POINT_GROUP}]\n{points}")
    importlib.invalidate_caches()


@pytest.fixture
def site(tmp_path, monkeypatch):
    """A folder on sys.path for install(), the sample plugins importable, and a fresh registry that
    loads on its first query; the session's registry comes back after the test."""
    folder = tmp_path / "site"
    folder.mkdir()
    monkeypatch.syspath_prepend(str(SAMPLES))
    monkeypatch.syspath_prepend(str(folder))
    monkeypatch.setattr(registry, "_REGISTRY", registry._Registry())
    return folder


def read_csv(path) -> list[dict]:
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


def mnistbench_cli(*args, pythonpath: list, timeout=300):
    env = {**os.environ, "MPLBACKEND": "Agg", "PYTHONPATH": os.pathsep.join(map(str, pythonpath))}
    return subprocess.run([sys.executable, "-m", "mnistbench", *map(str, args)], capture_output=True, text=True,
                          env=env, timeout=timeout)


# ---------------------------------------------------------------- a whole new family from a plugin
def test_a_plugin_family_runs_through_run_sweep_study_and_report(site, tiny_env, tmp_path, capsys):
    import mnistbench

    install(site, "mnistbench-onehidden", {"onehidden": "onehidden_family"})
    assert registry.family("onehidden").origin == "plugin mnistbench-onehidden"
    assert registry.impl_names("onehidden") == ["manual", "builtin"]
    assert list(registry.families())[-1] == "onehidden"  # after the built-in families

    assert cli.main(["list"]) == 0
    listing = capsys.readouterr().out
    assert any(line.startswith("onehidden") and "plugin mnistbench-onehidden" in line and " 16 " in line
               for line in listing.splitlines()), listing

    out = tmp_path / "out"
    records = mnistbench.run("onehidden", epochs=2, out=out)  # the family's defaults: lr 0.1, batch 32, (16,)
    assert [(r.config.impl, r.status, r.config.lr, r.config.batch_size, r.config.hidden)
            for r in records] == [("manual", "ok", 0.1, 32, (16,)), ("builtin", "ok", 0.1, 32, (16,))]
    assert all(r.test_acc > 0.5 for r in records), [r.test_acc for r in records]  # chance is 0.1
    # twins: same start, same batches, so the same accuracy on the family's own split (120 test images)
    assert records[0].split_sizes == {"train": 360, "val": 120, "test": 120}
    assert abs(records[0].test_acc - records[1].test_acc) <= 1 / 120

    assert cli.main(["sweep", "--family", "onehidden", "--lr", "0.05,0.1", "--hidden", "8", "--hidden", "16",
                     "--epochs", "1",
                     "--quiet", "--out", str(out)]) == 0
    assert len(list((out / "runs").glob("*.json"))) == 2 + 2 * 2 * 2

    grid = studygrid.study_configs(seeds=1)
    assert {(c.impl, c.lr, c.batch_size, c.hidden, c.epochs) for c in grid if c.family == "onehidden"} == \
        {("manual", 0.1, 32, (16,), 3), ("builtin", 0.1, 32, (16,), 3)}

    capsys.readouterr()
    assert cli.main(["report", str(out)]) == 0
    report = (out / "report.md").read_text()
    assert "| onehidden | manual |" in report and "| onehidden | builtin |" in report
    assert {(r["family"], r["impl"], r["twin"]) for r in read_csv(out / "twins.csv")} == \
        {("onehidden", "manual", "builtin")}
    assert {r["lr"] for r in read_csv(out / "lr_sweep.csv") if r["family"] == "onehidden"} == {"0.05", "0.1"}
    assert {r["family"] for r in read_csv(out / "time_to_accuracy.csv")} == {"onehidden"}
    for name in ("curves_onehidden", "confusion_onehidden", "lr_curves_onehidden", "accuracy_bars"):
        assert (out / "plots" / f"{name}.png").stat().st_size > 2000, name


def test_speed_skips_a_plugin_family_and_throughput_and_profile_measure_it(site, tiny_env, tmp_path, capsys,
                                                                         monkeypatch):
    monkeypatch.setattr(throughput, "MIN_POINT_SECONDS", 0.0)
    install(site, "mnistbench-onehidden", {"onehidden": "onehidden_family"})
    out = tmp_path / "out"
    assert cli.main(["speed", "--family", "onehidden", "--repeats", "1", "--out", str(out)]) == 0
    assert "onehidden: skipped (no notebook loop to compare with)" in capsys.readouterr().out
    assert cli.main(["throughput", "--family", "onehidden", "--batch-size", "32", "--samples", "64",
                     "--repeats", "1", "--out", str(out)]) == 0
    rows = read_csv(out / "throughput.csv")
    assert [(r["family"], r["impl"]) for r in rows] == [("onehidden", "manual"), ("onehidden", "builtin")]
    assert all(float(r["train_samples_per_s"]) > 0 for r in rows)
    assert cli.main(["profile", "--family", "onehidden", "--impl", "manual", "--wait", "0", "--warmup", "1",
                     "--active", "1", "--out", str(out)]) == 0
    assert list((out / "profiles").glob("*/top_ops.md"))


# ---------------------------------------------------------------- broken plugins
def test_each_broken_plugin_costs_one_warning_naming_it_and_the_rest_works(site):
    install(site, "mnistbench-broken", {"broken": "broken_plugin"})
    install(site, "mnistbench-clash", {"clash": "clash_plugin:register_all"})
    install(site, "mnistbench-half", {"half": "half_plugin:register_all"})
    install(site, "mnistbench-onehidden", {"onehidden": "onehidden_family"})
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        families = registry.families()
    messages = sorted(str(w.message) for w in caught if issubclass(w.category, PluginWarning))
    assert len(messages) == 3, messages
    broken, clash, half = messages
    assert broken.startswith("plugin mnistbench-broken: failed to load (broken = broken_plugin): "
                             "ModuleNotFoundError") and "fancy_kernels_not_installed" in broken
    assert clash == ("plugin mnistbench-clash: implementation softmax/manual is already registered (built in); "
                     "ignored")
    assert half.startswith("plugin mnistbench-half: failed to load") and "configuration file missing" in half
    assert "halfway" not in families  # what the failing plugin registered before it failed is taken back
    assert registry.implementation("softmax", "manual").origin == "built in"
    assert registry.implementation("softmax", "clash_ok").origin == "plugin mnistbench-clash"
    assert registry.impl_names("onehidden") == ["manual", "builtin"]


def test_the_cli_says_a_broken_plugin_in_one_line_and_works(site, tmp_path):
    install(site, "mnistbench-broken", {"broken": "broken_plugin"})
    install(site, "mnistbench-onehidden", {"onehidden": "onehidden_family"})
    proc = mnistbench_cli("list", pythonpath=[site, SAMPLES])
    assert proc.returncode == 0, proc.stderr
    ours = [line for line in proc.stderr.splitlines() if "mnistbench" in line or "plugin" in line]
    expected = ("mnistbench: warning: plugin mnistbench-broken: failed to load (broken = broken_plugin): "
                "ModuleNotFoundError: No module named 'fancy_kernels_not_installed'")
    assert ours == [expected], proc.stderr
    assert "Traceback" not in proc.stderr and "warnings.warn" not in proc.stderr
    assert "plugin mnistbench-onehidden" in proc.stdout


# ---------------------------------------------------------------- registered in a script, the contract
@pytest.fixture
def registered():
    """Names registered by the test, unregistered afterwards."""
    names = []
    yield names
    for family, impl in names:
        registry.unregister(family, impl)


def test_register_in_process_runs_without_saving(registered, tiny_env, tmp_path, monkeypatch, capsys):
    import mnistbench
    from mnistbench.models import softmax

    monkeypatch.chdir(tmp_path)
    entry = mnistbench.register("softmax", "mine", softmax.builtin, description="my own")
    registered.append(("softmax", "mine"))
    assert entry.origin == "registered in this process" and entry.iterative and entry.twin is None
    with pytest.warns(PluginWarning, match="softmax/mine is already registered"):
        assert mnistbench.register("softmax", "mine", softmax.manual) is None
    with pytest.warns(PluginWarning, match="unknown family 'nosuch'"):
        assert mnistbench.register("nosuch", "mine", softmax.manual) is None
    with pytest.raises(TypeError, match="not callable"):
        mnistbench.register("softmax", "other", "softmax.builtin")
    assert cli.main(["list"]) == 0
    assert any("mine" in line and "registered in this process" in line for line in capsys.readouterr().out.splitlines())
    (record,) = mnistbench.run("softmax", "mine", epochs=1, save=False)
    assert record.status == "ok" and record.config.impl == "mine"
    assert list(tmp_path.iterdir()) == []  # save=False writes nothing
    registry.unregister("softmax", "mine")
    assert not registry.has("softmax", "mine")


class LogitsOnly:
    def logits(self, x):
        return x[:, :10]


def test_a_model_without_step_fails_its_run_naming_the_implementation(registered, tiny_env):
    import mnistbench
    from mnistbench import models
    from mnistbench.models.contract import ContractError

    mnistbench.register("softmax", "nostep", lambda cfg, n_features, n_classes, generator: LogitsOnly())
    registered.append(("softmax", "nostep"))
    with pytest.raises(ContractError, match=r"softmax/nostep \(registered in this process\) .* a LogitsOnly "
                                            r"without eval\(\), load_state_dict\(\), loss\(\), state_dict\(\), "
                                            r"step\(\), to\(\), train\(\)"):
        models.build(for_family("softmax", "nostep"), 784, 10)
    (record,) = mnistbench.run("softmax", "nostep", epochs=1, save=False)
    assert record.status == "failed" and record.error.startswith("ContractError: softmax/nostep")


# ---------------------------------------------------------------- the example plugin
def load_example():
    spec = importlib.util.spec_from_file_location("example_momentum", EXAMPLE / "mnistbench_momentum.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_example_plugin_agrees_with_its_twin():
    example = load_example()
    cfg = for_family("softmax", "builtin")  # the family's lr and seed

    def build(factory):
        return lambda: factory(cfg, 784, 10, torch.Generator().manual_seed(cfg.seed))

    assert {(e.name, e.twin) for e in example.IMPLEMENTATIONS} == {("momentum", "builtin_momentum"),
                                                                   ("builtin_momentum", None)}
    assert_same_trajectory(build(example.momentum), build(example.builtin_momentum), "softmax")


def test_example_plugin_installs_with_pip_and_joins_run_and_report(tmp_path, tiny_root, monkeypatch, capsys):
    source, target, out = tmp_path / "source", tmp_path / "site", tmp_path / "out"
    shutil.copytree(EXAMPLE, source)  # pip builds in the source folder: keep the repository clean
    pip = subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation",
                          "--no-index", "--target", str(target), str(source)], capture_output=True, text=True,
                         timeout=300)
    assert pip.returncode == 0, pip.stderr
    # what pip installed, on sys.path, found by a fresh registry through its entry point (in this process)
    monkeypatch.syspath_prepend(str(target))
    importlib.invalidate_caches()
    monkeypatch.setattr(registry, "_REGISTRY", registry._Registry())
    assert cli.main(["list"]) == 0
    listing = capsys.readouterr().out
    assert any(line.startswith("softmax") and "momentum" in line and "plugin mnistbench-momentum" in line
               for line in listing.splitlines()), listing
    assert cli.main(["run", "--family", "softmax", "--impl", "momentum,builtin", "--epochs", "2", "--quiet",
                     "--data-root", str(tiny_root), "--out", str(out)]) == 0
    assert cli.main(["report", str(out)]) == 0, capsys.readouterr().err
    text = (out / "report.md").read_text()
    assert "| softmax | momentum | ok |" in text and "| softmax | builtin | ok |" in text
