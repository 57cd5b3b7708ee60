"""Where the runs of a grid execute: in this process one after another (`local`, the default), in this
process in lock-step rounds (`interleave`, see interleave.py), or as Ray tasks on a cluster (`ray`, see
ray_tasks.py).

An executor is a generator of Progress: it trains, and yields each run's start, epochs and result;
harness.execute saves the results. So the driver writes every result file, the same way for every
executor, and a cluster needs no shared file system. Every executor trains with train.training(), so
a run gives the same numbers wherever it executes.
"""
from __future__ import annotations

import traceback
from dataclasses import dataclass

from . import data, train
from .config import ConfigError, RunConfig
from .result import Epoch, RunResult

EXECUTORS = ("local", "interleave", "ray")


@dataclass(frozen=True)
class Executor:
    """Where runs execute. address and runs_per_node apply to `ray` only; order_seed, block_steps and
    pythons to `interleave` only.

    address: a running Ray cluster ("auto": the one started with `ray start` on this machine); None
        starts a local Ray instance for the command and stops it after.
    runs_per_node: at most this many runs at once on one machine (1: timings never share a machine).
    order_seed: the seed of the generator that reshuffles the order of each round.
    block_steps: the updates in one block (None: calibrated to about 0.2 s of work).
    pythons: Python interpreters of other environments, each with mnistbench installed: every config
        also runs in each of them, in one worker process per environment, in the same rounds.
    """

    name: str = "local"
    address: str | None = None
    runs_per_node: int | None = None
    order_seed: int = 0
    block_steps: int | None = None
    pythons: tuple[str, ...] = ()

    def check(self) -> Executor:
        """Raise ConfigError for a user mistake (or Ray missing); return self when usable."""
        if self.name not in EXECUTORS:
            raise ConfigError(f"unknown executor {self.name!r}; choose from {', '.join(EXECUTORS)}")
        if self.name != "ray" and (self.address is not None or self.runs_per_node is not None):
            raise ConfigError("--address and --runs-per-node apply to --executor ray only")
        if self.name != "interleave" and (self.block_steps is not None or self.pythons):
            raise ConfigError("--block-steps and --python apply to --interleave only")
        if self.runs_per_node is not None and self.runs_per_node < 1:
            raise ConfigError(f"--runs-per-node must be >= 1, got {self.runs_per_node}")
        if self.block_steps is not None and self.block_steps < 1:
            raise ConfigError(f"--block-steps must be >= 1, got {self.block_steps}")
        if self.name == "ray":
            from . import ray_tasks

            ray_tasks.import_ray(local_instance=self.address is None)
        return self


LOCAL = Executor()


@dataclass(frozen=True)
class Progress:
    """One thing that happened to a run of a grid: it started, finished an epoch, finished (result), or
    was skipped (note says why). done / running / queued / failed count the grid's runs afterwards."""

    kind: str  # "start" | "epoch" | "done" | "skipped"
    index: int
    total: int
    cfg: RunConfig
    epoch: Epoch | None = None
    result: RunResult | None = None
    note: str = ""
    done: int = 0
    running: int = 0
    queued: int = 0
    failed: int = 0


def runs(executor: Executor, todo, total: int, arrays, data_root=None):
    """The Progress of every (index, cfg) of todo (an iterable the executor reads as it starts each run),
    a grid of `total` points. arrays: dataset -> data.load_arrays(). Closing the generator (done, Ctrl-C,
    an error) stops what is still running."""
    if executor.name == "ray":
        from . import ray_tasks

        yield from ray_tasks.runs(executor, list(todo), total, arrays)
    elif executor.name == "interleave":
        from . import interleave

        yield from interleave.runs(executor, list(todo), total, arrays, data_root)
    else:
        yield from local_runs(todo, total, arrays)


def local_runs(todo, total: int, arrays):
    splits = SplitCache(arrays)
    for index, cfg in todo:
        yield Progress("start", index, total, cfg)
        try:
            for item in train.run_events(cfg, splits.get(cfg)):
                if isinstance(item, Epoch):
                    yield Progress("epoch", index, total, cfg, epoch=item)
                else:
                    yield Progress("done", index, total, cfg, result=item)
        except (KeyboardInterrupt, ConfigError, data.DataError):
            raise
        except Exception as exc:  # noqa: BLE001 (a crash inside one run is recorded, and the grid goes on)
            yield Progress("done", index, total, cfg, result=failed(cfg, exc))


def failed(cfg: RunConfig, exc: BaseException, where: str | None = None) -> RunResult:
    """The result of a run that did not finish: why, and where (the current traceback)."""
    from . import env

    return RunResult.failed(cfg, f"{type(exc).__name__}: {exc}",
                            where if where is not None else traceback.format_exc(limit=5),
                            env=env.environment(train.resolve_device(cfg.device)))


class SplitCache:
    """The splits of the runs being trained, built once per (dataset, family, protocol, seed, classes,
    device): the implementations of one seed share them. keep: how many different ones to hold (the
    local executor needs one at a time; an interleaved group all of its own)."""

    def __init__(self, arrays: dict, keep: int = 1):
        self.arrays, self.keep, self.built = arrays, keep, {}

    def get(self, cfg: RunConfig, device=None):
        device = device or train.resolve_device(cfg.device)
        key = (cfg.dataset, cfg.family, cfg.protocol, cfg.seed, cfg.class_list, str(device))
        if key not in self.built:
            while len(self.built) >= self.keep:  # drop the oldest first: bounded copies in memory
                self.built.pop(next(iter(self.built)))
            self.built[key] = data.load(cfg, device=device, arrays=self.arrays[cfg.dataset])
        return self.built[key]
