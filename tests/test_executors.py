"""The Ray executor against the local one, on a local Ray instance with 2 CPUs (tiny generated data).

One Ray instance serves the whole module (starting one takes seconds); the executor uses it because
this process is already connected. Tests that need Ray skip where it cannot be imported; the test of
the message for a missing Ray runs everywhere.
"""
from __future__ import annotations

import importlib.util
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import pytest

from mnistbench import cli, harness, ray_tasks, registry, results
from mnistbench.config import ConfigError, for_family
from mnistbench.executors import Executor
from mnistbench.models import softmax

needs_ray = pytest.mark.skipif(importlib.util.find_spec("ray") is None,
                               reason="Ray is not installed (pip install 'mnistbench[ray]')")
RAY = Executor("ray")
TIMED = ("train_seconds", "eval_seconds", "fit_seconds")  # timings differ run to run


@pytest.fixture(scope="module")
def cluster():
    """A local Ray instance on the loopback interface: 2 CPUs, one node share for --runs-per-node."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")  # loopback only (read when ray is imported)
        patch.setenv("RAY_USAGE_STATS_ENABLED", "0")
        patch.setenv("RAY_worker_niceness", "0")
        import ray

        sigterm = signal.getsignal(signal.SIGTERM)
        ray.init(num_cpus=2, include_dashboard=False, resources={ray_tasks.NODE_RESOURCE: 1},
                 object_store_memory=100 * 2**20, logging_level="warning")
        try:
            yield ray
        finally:
            ray.shutdown()
            signal.signal(signal.SIGTERM, sigterm)


def by_key(records) -> dict:
    keys = [r.config_key for r in records]
    assert len(keys) == len(set(keys))  # nothing twice
    return dict(zip(keys, records))


def untimed(history) -> list:
    return [{k: v for k, v in vars(epoch).items() if k not in TIMED} for epoch in history]


def trained(events) -> list:
    """The results of a grid's Progress (harness.execute), in the order they finished."""
    return [event.result for event in events if event.kind == "done"]


@needs_ray
def test_ray_and_local_give_the_same_results_and_ray_names_the_node(cluster, tiny_root, tmp_path):
    configs = (harness.expand(["softmax"], ["handgrad", "builtin", "sklearn"], seed=[0, 1], epochs=2)
               + harness.expand(["logistic"], ["handgrad"], seed=[0, 1], epochs=2)
               + harness.expand(["mlp"], ["builtin"], seed=[0, 1], epochs=2, hidden=(16,)))
    local = by_key(trained(harness.execute(configs, tmp_path / "local", data_root=tiny_root)))
    events = list(harness.execute(configs, tmp_path / "ray", data_root=tiny_root, executor=RAY))
    lines = [e for e in events if e.kind == "done"]
    assert {e.kind for e in events} == {"done"}  # Ray reports each run as it finishes
    remote = by_key(trained(events))
    assert remote.keys() == local.keys() == {results.config_key(c) for c in configs}
    assert by_key(results.load_results(tmp_path / "ray")).keys() == remote.keys()  # saved by the driver
    node = cluster.get_runtime_context().get_node_id()
    for key, record in remote.items():
        assert record.status == local[key].status == "ok"
        assert record.test_acc == local[key].test_acc
        assert untimed(record.history) == untimed(local[key].history)
        assert record.confusion == local[key].confusion
        assert record.env["host"] == socket.gethostname() and record.env["cpu_model"]
        placement = {k: v for k, v in record.executor.items() if k not in ("worker_pid", "fetched_data")}
        assert placement == {"name": "ray", "node_id": node, "num_cpus": record.env["threads"], "num_gpus": 0,
                             "runs_per_node": None, "niceness": os.getpriority(os.PRIO_PROCESS, 0)}
        assert record.env["threads"] == local[key].env["threads"]
    workers = [r.executor["worker_pid"] for r in remote.values()]
    assert len(set(workers)) < len(workers)  # worker processes are reused...
    fetched = [r.executor["worker_pid"] for r in remote.values() if r.executor["fetched_data"]]
    assert sorted(fetched) == sorted(set(workers))  # ...and each fetched the data on its first run only
    n = len(configs)
    assert [(p.done, p.failed, p.total) for p in lines] == [(done, 0, n) for done in range(1, n + 1)]
    assert all(p.running + p.queued == n - p.done and p.running <= 2 for p in lines)  # 2 CPUs
    assert lines[-1].running == lines[-1].queued == 0


def step_then_die(cfg, n_features, n_classes, generator):
    """softmax/builtin whose first step kills its own worker process, on the first attempt only
    (tags "die": "once") or on every attempt ("always"); each attempt adds a line to tags["marker"]."""
    model = softmax.builtin(cfg, n_features, n_classes, generator)
    marker = Path(cfg.tags["marker"])
    pids = marker.read_text().split() if marker.exists() else []
    if str(os.getpid()) not in pids:  # a run builds two models (warm-up, then the timed one)
        pids.append(str(os.getpid()))
        marker.write_text("\n".join(pids))
    attempt = pids.index(str(os.getpid())) + 1
    step = model.step

    def step_or_die(x, y):
        if cfg.tags["die"] == "always" or attempt == 1:
            os.kill(os.getpid(), signal.SIGKILL)
        return step(x, y)

    model.step = step_or_die
    return model


@pytest.fixture
def deadly_impl(cluster):
    """softmax/deadly, registered in this process only: the tasks carry it to the workers."""
    cluster.cloudpickle.register_pickle_by_value(sys.modules[__name__])  # workers cannot import this module
    registry.register("softmax", "deadly", step_then_die)
    yield "deadly"
    registry.unregister("softmax", "deadly")
    cluster.cloudpickle.unregister_pickle_by_value(sys.modules[__name__])


def sweep_on_cluster(cluster, tiny_root, tmp_path, seeds, epochs) -> tuple[list[str], dict]:
    """The command and environment of a CLI sweep (logistic/handgrad) joining the shared instance."""
    env = {**os.environ, "MNISTBENCH_DATA": str(tiny_root), "MPLBACKEND": "Agg",
           "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0", "RAY_USAGE_STATS_ENABLED": "0"}  # as the cluster
    command = [sys.executable, "-m", "mnistbench", "sweep", "--executor", "ray",
               "--address", cluster.get_runtime_context().gcs_address, "--family", "logistic", "--impl", "handgrad",
               "--seed", seeds, "--epochs", str(epochs), "--out", str(tmp_path)]
    return command, env


@needs_ray
def test_the_cli_runs_a_sweep_on_a_running_cluster(cluster, tiny_root, tmp_path):
    # before the tests that kill workers and cancel tasks on the shared instance: a second driver joining a
    # cluster that is still reaping killed workers has once taken the whole instance (and pytest) down
    command, env = sweep_on_cluster(cluster, tiny_root, tmp_path, "0,1", 1)
    proc = subprocess.run(command, capture_output=True, text=True, env=env, timeout=300, check=False)
    assert proc.returncode == 0, proc.stderr
    done = [line for line in proc.stdout.splitlines() if "] ok: test acc " in line]
    assert len(done) == 2 and all(line.endswith(f" on {socket.gethostname()}") for line in done), done
    assert {line.split()[0] for line in done} == {"[1/2]", "[2/2]"}
    assert proc.stdout.count(f"on {socket.gethostname()}") == 2
    assert len(results.load_results(tmp_path)) == 2
    assert cluster.is_initialized() and cluster.available_resources().get("CPU") == 2  # the cluster lives on


@needs_ray
def test_a_killed_worker_is_retried_once_then_recorded_failed(cluster, deadly_impl, tiny_root, tmp_path):
    once, always = tmp_path / "once", tmp_path / "always"
    configs = [for_family("softmax", "builtin", epochs=2, seed=0),
               for_family("softmax", deadly_impl, epochs=2, seed=0, tags={"die": "once", "marker": str(once)}),
               for_family("softmax", deadly_impl, epochs=2, seed=1, tags={"die": "always", "marker": str(always)}),
               for_family("softmax", "builtin", epochs=2, seed=1)]
    records = trained(harness.execute(configs, tmp_path / "out", data_root=tiny_root, executor=RAY))
    saved = by_key(results.load_results(tmp_path / "out"))
    assert saved.keys() == {results.config_key(c) for c in configs}  # every run saved, once
    status = {(r.config.impl, r.config.seed): r.status for r in records}
    assert status == {("builtin", 0): "ok", (deadly_impl, 0): "ok", ("builtin", 1): "ok", (deadly_impl, 1): "failed"}
    for marker in (once, always):  # two attempts each, in two worker processes
        pids = marker.read_text().split()
        assert len(pids) == 2 and pids[0] != pids[1]
    (failed,) = [r for r in records if r.status == "failed"]
    assert failed.error.startswith("WorkerCrashedError (after one retry): The worker died")
    assert failed.env["host"] is None  # unknown: nothing came back from it
    ok = saved[results.config_key(configs[1])]
    assert ok.env["host"] == socket.gethostname() and ok.test_acc is not None


@needs_ray
def test_resume_works_across_executors(cluster, tiny_root, tmp_path):
    configs = harness.expand(["softmax"], ["handgrad", "builtin"], seed=[0, 1], epochs=1)
    assert len(trained(harness.execute(configs[:1], tmp_path, data_root=tiny_root))) == 1  # one point done locally
    events = list(harness.execute(configs, tmp_path, data_root=tiny_root, resume=True, executor=RAY))
    assert len(trained(events)) == 3
    assert [(e.kind, e.index, e.note) for e in events if e.kind != "done"] == [
        ("skipped", 1, "already done (--resume)")]
    again = list(harness.execute(configs, tmp_path, data_root=tiny_root, resume=True))  # and back: nothing to do
    assert [(e.kind, e.note) for e in again] == [("skipped", "already done (--resume)")] * len(configs)
    assert by_key(results.load_results(tmp_path)).keys() == {results.config_key(c) for c in configs}


@needs_ray
def test_runs_per_node_reserves_a_share_of_the_node(cluster, tiny_root, tmp_path):
    (record,) = trained(harness.execute([for_family("logistic", "handgrad", epochs=1)], tmp_path,
                                        data_root=tiny_root, executor=Executor("ray", runs_per_node=1)))
    assert record.status == "ok" and record.executor["runs_per_node"] == 1


@needs_ray
def test_a_run_no_node_can_host_is_a_user_mistake_before_anything_is_written(cluster, tiny_root, tmp_path):
    with pytest.raises(ConfigError, match="reserves 3 CPUs, one per torch thread .* largest node of the Ray cluster has 2"):
        list(harness.execute([for_family("logistic", "handgrad", epochs=1, threads=3)], tmp_path / "out",
                             data_root=tiny_root, executor=RAY))
    assert not (tmp_path / "out").exists()


@needs_ray
def test_ctrl_c_cancels_the_runs_still_out_and_keeps_the_finished_ones(cluster, tiny_root, tmp_path):
    configs = [for_family("softmax", "builtin", epochs=1)] + harness.expand(
        ["softmax"], ["handgrad"], seed=[0, 1, 2], epochs=20_000)  # minutes each: only Ctrl-C ends them

    events = harness.execute(configs, tmp_path, data_root=tiny_root, executor=RAY)
    with pytest.raises(KeyboardInterrupt):
        for event in events:
            if event.kind == "done":
                events.throw(KeyboardInterrupt)  # as Ctrl-C once the first run is saved
    (saved,) = results.load_results(tmp_path)
    assert saved.config.impl == "builtin" and saved.status == "ok"
    assert not list((tmp_path / "runs" / ".claims").glob("*.json"))  # the claims went with the grid
    deadline = time.monotonic() + 90  # a cancelled task's worker may take a while to exit on a busy machine
    while cluster.available_resources().get("CPU") != 2 and time.monotonic() < deadline:
        time.sleep(0.2)
    assert cluster.available_resources().get("CPU") == 2  # the long runs were cancelled, not left running
    assert len(results.load_results(tmp_path)) == 1


@needs_ray
def test_sigterm_on_the_cli_exits_130_and_keeps_finished_runs(cluster, tiny_root, tmp_path):
    # the CLI in a process of its own, joined to the shared instance: a SIGTERM sent to the test process
    # itself would also reach Ray's own handler in this driver, which may end the whole test session later
    command, env = sweep_on_cluster(cluster, tiny_root, tmp_path, "0,1,2", 400)
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    deadline = time.monotonic() + 180
    while not list(tmp_path.glob("runs/*.json")) and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.05)
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 130 and "interrupted; finished runs are saved" in err, (proc.returncode, err)
    (line,) = [line for line in out.splitlines() if "] ok: test acc " in line]
    assert line.startswith("[") and line.endswith(f" on {socket.gethostname()}"), line
    (saved,) = results.load_results(tmp_path)  # the finished run, none of the interrupted ones
    assert saved.status == "ok" and not list((tmp_path / "runs").glob(".*.tmp"))
    assert not list((tmp_path / "runs" / ".claims").glob("*.json"))  # released on the way out
    deadline = time.monotonic() + 90  # the cancelled runs give their CPUs back
    while cluster.available_resources().get("CPU") != 2 and time.monotonic() < deadline:
        time.sleep(0.2)
    assert cluster.available_resources().get("CPU") == 2


def test_executor_ray_without_ray_says_how_to_install_it(tiny_root, tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` now raises ImportError
    monkeypatch.setenv("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")  # restored afterwards, whatever it does
    monkeypatch.setenv("RAY_USAGE_STATS_ENABLED", "0")
    code = cli.main(["sweep", "--executor", "ray", "--family", "logistic", "--epochs", "1",
                     "--data-root", str(tiny_root), "--out", str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1
    assert "error: --executor ray needs Ray" in err and "pip install 'mnistbench[ray]'" in err
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("executor, message", [
    (Executor("local", address="auto"), "apply to --executor ray only"),
    (Executor("ray", runs_per_node=0), "--runs-per-node must be >= 1"),
    (Executor("spark"), "unknown executor 'spark'"),
])
def test_executor_mistakes(executor, message):
    with pytest.raises(ConfigError, match=message):
        executor.check()


NODE = {"CPU": 8.0, "memory": 1e9}
GPU_NODE = {"CPU": 16.0, "GPU": 2.0, ray_tasks.NODE_RESOURCE: 1.0}


def test_plan_reserves_threads_gpus_and_node_shares():
    cpu = ray_tasks.plan(for_family("softmax", "builtin", threads=4), [NODE, GPU_NODE], None)
    assert cpu["device"] == "cpu" and cpu["options"] == {"num_cpus": 4, "num_gpus": 0, "resources": {}}
    assert ray_tasks.slots([NODE, GPU_NODE], [cpu]) == 2 + 4
    gpu = ray_tasks.plan(for_family("softmax", "builtin", threads=2, device="auto"), [NODE, GPU_NODE], 3)
    assert gpu["device"] == "cuda" and gpu["options"]["num_gpus"] == 1
    share = gpu["options"]["resources"][ray_tasks.NODE_RESOURCE]
    assert 3 * share <= 1 < 4 * share
    assert ray_tasks.slots([NODE, GPU_NODE], [gpu]) == 2  # the GPU node's 2 GPUs; the CPU node has none
    with pytest.raises(ConfigError, match="no GPU"):
        ray_tasks.plan(for_family("softmax", "builtin", threads=2, device="cuda"), [NODE], None)
    with pytest.raises(ConfigError, match="--runs-per-node needs nodes started with --resources"):
        ray_tasks.plan(for_family("softmax", "builtin", threads=2), [NODE], 1)


def test_an_address_where_nothing_answers_is_a_user_mistake_not_a_long_wait():
    disconnected = SimpleNamespace(is_initialized=lambda: False)
    started = time.monotonic()
    with pytest.raises(ConfigError, match="cannot connect to the Ray cluster at 127.0.0.1:9: .*refused"):
        ray_tasks.connect(disconnected, "127.0.0.1:9")  # port 9: nothing listens
    assert time.monotonic() - started < 10
    ray_tasks.check_reachable("auto")  # Ray finds that one itself
