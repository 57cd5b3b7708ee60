"""Where the runs of a grid execute: in this process, one after another (`local`, the default), or as
Ray tasks on a cluster (`ray`, see ray_tasks).

An executor only trains: it yields each finished run's record, and harness.execute saves it. So the
driver writes every result file, the same way for both executors, and a cluster needs no shared file
system. Both train a run with run_one, so a run gives the same numbers wherever it executes.
"""
from __future__ import annotations

import traceback
from contextlib import contextmanager
from dataclasses import dataclass

from . import data, results, train
from .config import ConfigError, RunConfig

EXECUTORS = ("local", "ray")


@dataclass(frozen=True)
class Executor:
    """Where runs execute. address and runs_per_node apply to `ray` only.

    address: a running Ray cluster ("auto": the one started with `ray start` on this machine); None
        starts a local Ray instance for the command and stops it after (or uses the one this process
        is already connected to, as in a notebook).
    runs_per_node: at most this many runs at once on one machine (1: timings never share a machine).
    """

    name: str = "local"
    address: str | None = None
    runs_per_node: int | None = None

    def check(self) -> Executor:
        """Raise ConfigError for a user mistake (or Ray missing); return self when usable."""
        if self.name not in EXECUTORS:
            raise ConfigError(f"unknown executor {self.name!r}; choose from {', '.join(EXECUTORS)}")
        if self.name == "local" and (self.address is not None or self.runs_per_node is not None):
            raise ConfigError("--address and --runs-per-node apply to --executor ray only")
        if self.runs_per_node is not None and self.runs_per_node < 1:
            raise ConfigError(f"--runs-per-node must be >= 1, got {self.runs_per_node}")
        if self.name == "ray":
            from . import ray_tasks

            ray_tasks.import_ray(local_instance=self.address is None)
        return self


LOCAL = Executor()


@dataclass(frozen=True)
class Finished:
    """A run that has finished: its place in the grid, its config and record, and how many others of
    the grid are still running (an estimate on Ray: see ray_tasks.slots)."""

    index: int
    cfg: RunConfig
    record: dict
    running: int


@contextmanager
def session(executor: Executor, todo, total: int, arrays, on_run_start=None, on_epoch=None):
    """Get the executor ready, then hand out a generator of Finished runs of `todo`: the (index, cfg)
    pairs of a grid of `total` points still to run. arrays: dataset -> data.load_arrays().

    Everything that can be a user mistake (no cluster at --address, a run no node can host) is raised
    here, before the caller writes anything; the runs start only when the generator is first read.
    Leaving the block (finished, Ctrl-C, an error) stops what is still running.
    """
    if executor.name == "local":
        # the device is resolved before any run: a missing GPU is a user mistake, not a failed run
        devices = {cfg.device: train.resolve_device(cfg.device) for _, cfg in todo}
        yield local_runs(todo, total, arrays, devices, on_run_start, on_epoch)
        return
    from . import ray_tasks

    with ray_tasks.session(executor, todo, arrays) as runs:
        yield runs


def local_runs(todo, total, arrays, devices, on_run_start=None, on_epoch=None):
    cache = {}
    for index, cfg in todo:
        if on_run_start is not None:
            on_run_start(index, total, cfg)
        record = run_one(cfg, arrays[cfg.dataset], devices[cfg.device], cache, on_epoch)
        yield Finished(index, cfg, record, running=0)


def run_one(cfg: RunConfig, arrays: dict, device, cache: dict, on_epoch=None) -> dict:
    """Train one run and return its result record (env describes the machine it ran on).

    cache keeps the last splits: consecutive runs that share them (the implementations of one seed)
    build them once. A crash inside the run is recorded as failed; a user mistake is raised.
    """
    split_key = (cfg.dataset, cfg.family, cfg.protocol, cfg.seed, cfg.class_list, str(device))
    if cache.get("key") != split_key:
        cache.clear()  # drop the old splits before building new ones: at most one copy in memory
        cache["splits"] = data.load(cfg, device=device, arrays=arrays)
        cache["key"] = split_key
    try:
        fitted = train.run(cfg, cache["splits"], on_epoch=on_epoch)
    except (KeyboardInterrupt, ConfigError, data.DataError):
        raise
    except Exception as exc:  # a crash inside one run is recorded, and the sweep goes on
        fitted = failed_run(exc)
    return results.make_result(cfg, fitted, device)


def failed_run(exc: BaseException | str, trace: str | None = None) -> dict:
    """The measurements of a run that did not finish: why (exc), and where (the current traceback)."""
    error = exc if isinstance(exc, str) else f"{type(exc).__name__}: {exc}"
    return {
        "status": "failed",
        "error": error,
        "traceback": trace if trace is not None else traceback.format_exc(limit=5),
        "history": [],
        "test_acc": None,
        "test_loss": None,
        "best_val_acc": None,
        "best_epoch": None,
        "epochs_run": 0,
        "train_seconds": None,
        "train_samples_per_s": None,
        "fit_seconds": None,
    }
