"""Where the runs of a grid execute: in this process one after another (`local`, the default), in this
process in lock-step rounds (`interleave`, see interleave.py), or as Ray tasks on a cluster (`ray`, see
ray_tasks.py).

An executor is a generator of Progress: it trains, and yields each run's start, epochs and result;
harness.execute saves the results. So the driver writes every result file, the same way for every
executor, and a cluster needs no shared file system. Every executor trains with train.training(), so
a run gives the same numbers wherever it executes.
"""
from __future__ import annotations

from dataclasses import dataclass

from . import interleave, ray_tasks
from .config import ConfigError
from .local import Progress, SplitCache, failed, local_runs  # noqa: F401 (callers may name them executors.*)

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
            ray_tasks.import_ray(local_instance=self.address is None)
        return self


LOCAL = Executor()


def runs(executor: Executor, todo, total: int, arrays, data_root=None):
    """The Progress of every (index, cfg) of todo (an iterable the executor reads as it starts each run),
    a grid of `total` points. arrays: dataset -> data.load_arrays(). Closing the generator (done, Ctrl-C,
    an error) stops what is still running."""
    if executor.name == "ray":
        yield from ray_tasks.runs(executor, list(todo), total, arrays)
    elif executor.name == "interleave":
        yield from interleave.runs(executor, list(todo), total, arrays, data_root)
    else:
        yield from local_runs(todo, total, arrays)
