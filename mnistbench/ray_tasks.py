"""The Ray executor: each run of a grid is one Ray task that reserves what it uses.

- Reserved per run: num_cpus = the torch threads the run uses (cfg.threads, else what torch uses by
  default in the launching process, so a grid gets the same threads, and the same numbers, as locally),
  num_gpus = 1 for a CUDA run, and with runs_per_node N also 1/N of the custom resource NODE_RESOURCE
  that each node declares once (`ray start --resources`), so at most N runs share a machine. The
  reservation is recorded in each result ("executor"); the result's env describes the worker's machine.
- Data: the driver decodes each dataset once (it checks the files anyway) and puts the uint8 arrays
  (~55 MB for MNIST) in Ray's object store once. Each worker process fetches them on its first run and
  keeps them for the next ones: workers need no data files, and every run trains on the driver's bytes.
- A worker that dies mid-run (killed, out of memory, node lost) is retried once (max_retries=1), then
  recorded failed with the reason. A crash inside the training code is recorded failed at once, as
  locally: a retry would fail the same way.
- Leaving the session (done, Ctrl-C, an error) stops every task still queued or running: a connection
  the command opened itself is closed, which ends its Ray job, and Ray stops the job's tasks; on a
  connection the caller already had (a notebook, a test) each task is cancelled.
"""
from __future__ import annotations

import logging
import os
import signal
import socket
from dataclasses import replace

import numpy as np
import torch

from . import data, interrupts, registry, resultfile, train
from .config import ConfigError
from .local import Progress, SplitCache, failed
from .result import RunResult

NODE_RESOURCE = "mnistbench_node"
INSTALL_HINT = "pip install 'mnistbench[ray]'"


def import_ray(local_instance: bool):
    """ray, or a ConfigError saying how to install it."""
    if local_instance:
        # a local instance serves this machine only: keep it on the loopback interface (by default Ray
        # advertises the routable address) and let it send no usage report. Its workers run at the
        # priority of a local run (Ray's default, niceness 15, loses the CPU to any other process).
        os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
        os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
        os.environ.setdefault("RAY_worker_niceness", "0")
    try:
        import ray
    except ImportError:
        raise ConfigError(f"--executor ray needs Ray, which is not installed: {INSTALL_HINT}") from None
    return ray


def runs(executor, todo, total: int, arrays):
    """Connect (or start a local instance), check that every run fits on some node, then yield the
    Progress of each run as it finishes (executors.runs says more). Every user mistake (no cluster at
    --address, a run no node can host) is raised before the first run starts."""
    if not todo:  # everything already done: no cluster needed
        return
    ray = import_ray(local_instance=executor.address is None)
    sigterm = signal.getsignal(signal.SIGTERM) if interrupts.in_main_thread() else None
    owned = connect(ray, executor.address)
    if sigterm is not None:  # ray.init's handler exits with status 15: keep the caller's (harness: Ctrl-C's path)
        signal.signal(signal.SIGTERM, sigterm)
    finished = None
    try:
        nodes = [node["Resources"] for node in ray.nodes() if node["Alive"]]
        plans = {index: plan(cfg, nodes, executor.runs_per_node) for index, cfg in todo}
        # a connection of this command's own ends with the command, and Ray then stops the job's tasks
        # itself; force-cancelling them just before that has aborted the driver inside Ray's task manager
        finished = _runs(ray, todo, plans, arrays, slots(nodes, plans.values()), cancel=not owned)
        for index, cfg, result, running, queued in finished:
            yield Progress("done", index, total, cfg, result=result, running=running, queued=queued)
    finally:
        if finished is not None:
            finished.close()  # a borrowed connection: cancels what is still queued or running
        if owned:
            ray.shutdown()
        if sigterm is not None:
            signal.signal(signal.SIGTERM, sigterm)  # ray.init replaced it


def connect(ray, address) -> bool:
    """Start a local instance (address None) or connect to a cluster. False when this process was
    connected already (a notebook, a test): then that connection is used and left open."""
    if ray.is_initialized():
        current = ray.get_runtime_context().gcs_address
        if address not in (None, "auto", current):
            raise ConfigError(f"this process is connected to the Ray cluster at {current} already, not {address}")
        return False
    if address is None:
        ray.init(address="local", include_dashboard=False, resources={NODE_RESOURCE: 1},
                 logging_level=logging.WARNING)
        return True
    try:
        check_reachable(address)
        ray.init(address=address, logging_level=logging.WARNING)
    except Exception as exc:  # ConnectionError, ValueError, a timeout: one message either way
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ConfigError(f"cannot connect to the Ray cluster at {address}: {reason}") from None
    return True


def check_reachable(address: str, timeout: float = 5.0) -> None:
    """Raise OSError if nothing answers at a host:port address: ray.init would retry it for minutes."""
    host, _, port = address.rpartition("://")[2].rpartition(":")
    if not host or not port.isdigit():
        return  # "auto", or a form Ray resolves itself
    with socket.create_connection((host, int(port)), timeout=timeout):
        pass


def plan(cfg, nodes: list[dict], runs_per_node: int | None) -> dict:
    """The worker's device and the task's resource options for cfg; ConfigError if no node fits it."""
    threads = cfg.threads or torch.get_num_threads()
    has_gpu = any(node.get("GPU", 0) >= 1 for node in nodes)
    cuda = cfg.device.startswith("cuda") or (cfg.device == "auto" and has_gpu)
    options = {"num_cpus": threads, "num_gpus": 1 if cuda else 0, "resources": {}}
    if runs_per_node is not None:
        # a share of the one unit each node declares; rounded down to Ray's precision (1e-4) so that
        # N shares fit in a node and N + 1 do not
        options["resources"] = {NODE_RESOURCE: int(10_000 / runs_per_node) / 10_000}
    if not any(_fits(node, options) for node in nodes):
        raise ConfigError(_no_node_message(options, nodes, runs_per_node))
    return {"device": "cuda" if cuda else "cpu", "options": options, "runs_per_node": runs_per_node}


def _fits(node: dict, options: dict) -> bool:
    wanted = {"CPU": options["num_cpus"], "GPU": options["num_gpus"], **options["resources"]}
    return all(node.get(name, 0) >= amount for name, amount in wanted.items())


def _no_node_message(options, nodes, runs_per_node) -> str:
    cpus = max((node.get("CPU", 0) for node in nodes), default=0)
    if options["num_gpus"] and not any(node.get("GPU", 0) for node in nodes):
        return "--device cuda: the Ray cluster has no GPU"
    if runs_per_node is not None and not any(NODE_RESOURCE in node for node in nodes):
        return (f"--runs-per-node needs nodes started with --resources='{{\"{NODE_RESOURCE}\": 1}}' "
                "(see docs/cluster.md); no node of this cluster declares it")
    return (f"each run reserves {options['num_cpus']} CPUs, one per torch thread (--threads, by default "
            f"torch's choice on this machine), but the largest node of the Ray cluster has {cpus:g}")


def slots(nodes: list[dict], plans) -> int:
    """How many runs the cluster holds at once (for the running/queued counts of the progress lines):
    per node, the fewest of its CPUs, GPUs and node shares divided by what the largest run takes."""
    plans = list(plans)
    wanted = {"CPU": max(p["options"]["num_cpus"] for p in plans),
              "GPU": max(p["options"]["num_gpus"] for p in plans)}
    for p in plans:
        wanted.update(p["options"]["resources"])
    total = 0
    for node in nodes:
        total += min(int(node.get(name, 0) / amount + 1e-9) for name, amount in wanted.items() if amount)
    return max(total, 1)


def _runs(ray, todo, plans, arrays, capacity: int, cancel: bool):
    """Submit every run, then yield each as it finishes; on close (if cancel), cancel those still out and
    wait a little for their CPUs to come back, so that the caller's next grid finds the cluster free."""
    # max_calls=0: worker processes stay (torch imported, data fetched) for the next runs, GPU runs too
    task = ray.remote(max_calls=0)(run_task)
    shipped = _shipped(cfg for _, cfg in todo)
    refs = {name: ray.put({part: (x.numpy(), y.numpy()) for part, (x, y) in parts.items()})
            for name, parts in arrays.items()}
    pending = {}
    try:
        for index, cfg in todo:
            p = plans[index]
            # retry_exceptions=False: only a dead worker is retried, not a crash in the code
            ref = task.options(**p["options"], max_retries=1, retry_exceptions=False).remote(
                cfg, [refs[cfg.dataset]], p["device"], reservation(p), shipped)
            pending[ref] = (index, cfg, p)
        while pending:
            # a timeout, so that Ctrl-C (and SIGTERM) get through at least once a second
            ready, _ = ray.wait(list(pending), num_returns=1, timeout=1.0)
            for ref in ready:
                index, cfg, p = pending.pop(ref)
                running = min(capacity, len(pending))
                yield index, cfg, collect(ray, ref, cfg, p), running, len(pending) - running
    finally:
        if cancel and pending:
            for ref in pending:
                ray.cancel(ref, force=True)
            ray.wait(list(pending), num_returns=len(pending), timeout=30.0)


def reservation(p: dict) -> dict:
    options = p["options"]
    return {"num_cpus": options["num_cpus"], "num_gpus": options["num_gpus"],
            "runs_per_node": p["runs_per_node"]}


def collect(ray, ref, cfg, p: dict) -> RunResult:
    """The result of a finished task; a task that raised, or whose worker was lost twice, is a failed run."""
    try:
        reply = ray.get(ref)
    except ray.exceptions.RayTaskError as exc:  # mnistbench's task code raised outside the training
        cause = getattr(exc, "cause", None) or exc
        error, trace = f"{type(cause).__name__}: {cause}", str(exc)
    except ray.exceptions.RayError as exc:  # the worker process (or its node) was lost, on both attempts
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else "no reason given"
        error, trace = f"{type(exc).__name__} (after one retry): {reason}", ""
    else:
        if "user_error" in reply:
            kind = data.DataError if reply["user_error"] == "DataError" else ConfigError
            raise kind(reply["message"])
        return resultfile.parse(reply["result"])
    # nothing is known of the machine it died on: say so rather than describe this one
    return RunResult.failed(cfg, error, trace, env={"host": None, "device": p["device"]},
                            executor={"name": "ray", "node_id": None, **reservation(p)})


def _shipped(configs) -> list:
    """The families and implementations of the grid that are not built in (registered in this process,
    or by a plugin): each task carries them, and a worker that lacks one registers it."""
    items = {}
    for cfg in configs:
        for item in (registry.family(cfg.family), registry.implementation(cfg.family, cfg.impl)):
            if item.origin != registry.BUILT_IN:
                items[id(item)] = item
    return list(items.values())


# ---------------------------------------------------------------- in the worker process
_ARRAYS = {}  # dataset -> (object id, its arrays as tensors): fetched once per worker process and grid
_SPLITS = {}  # dataset -> the SplitCache of this worker: consecutive runs of one seed share splits


def run_task(cfg, boxed_arrays, device_name: str, reserved: dict, shipped: list) -> dict:
    """Runs in a Ray worker: one run, with the driver's data and the threads reserved for it. Returns
    {"result": the RunResult's JSON} or, for a user mistake, {"user_error", "message"}."""
    import ray

    for item in shipped:
        registry.adopt(item)
    ref = boxed_arrays[0]  # boxed in a list, so that Ray hands over the reference, not a copy per run
    fetch = _ARRAYS.get(cfg.dataset, (None,))[0] != ref.hex()  # first run here, or a new grid of this job
    if fetch:
        # copies: the object store's arrays are read-only, and torch wants to own its memory
        _ARRAYS[cfg.dataset] = (ref.hex(), {part: (torch.from_numpy(np.array(x)), torch.from_numpy(np.array(y)))
                                            for part, (x, y) in ray.get(ref).items()})
        _SPLITS[cfg.dataset] = SplitCache({cfg.dataset: _ARRAYS[cfg.dataset][1]})
    torch.set_num_threads(reserved["num_cpus"])
    try:
        device = train.resolve_device(device_name)
        try:
            result = train.run_one(cfg, _SPLITS[cfg.dataset].get(cfg, device))
        except (ConfigError, data.DataError):
            raise
        except Exception as exc:  # a crash inside one run is recorded, as locally
            result = failed(cfg, exc)
    except (ConfigError, data.DataError) as exc:  # the driver raises it again: a user mistake ends the grid
        return {"user_error": type(exc).__name__, "message": str(exc)}
    where = {"name": "ray", "node_id": ray.get_runtime_context().get_node_id(), **reserved,
             "niceness": os.getpriority(os.PRIO_PROCESS, 0) if hasattr(os, "getpriority") else None,
             "worker_pid": os.getpid(), "fetched_data": fetch}
    return {"result": replace(result, executor=where).to_json()}
