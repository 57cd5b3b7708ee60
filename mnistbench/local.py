"""Runs in this process, one after another (the `local` executor), and what every executor shares: the
Progress it yields, the SplitCache its runs train on, and failed(), the result of a run that crashed."""
from __future__ import annotations

import traceback
from dataclasses import dataclass

from . import data, env, train
from .config import ConfigError, RunConfig
from .result import Epoch, RunResult


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
