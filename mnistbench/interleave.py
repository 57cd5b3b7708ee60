"""Interleaved runs (RMIT): every configuration of a grid trains in lock-step, in rounds.

Each round runs one block of the same number of updates of every run still going, in an order
reshuffled every round from a seeded generator; each run records its blocks' seconds with their round
numbers, so that compare can pair two runs round by round: both felt the same minute of the machine.
The first round is a warm-up and is not recorded. A run that stops (early stopping, divergence, a
crash) leaves the group and the others go on. Weights, batches and histories are those of the same
configuration trained apart (train.training drives both), bit for bit on the CPU.

A lane is one run's side of this: a generator that is sent (round, steps), runs that block and yields
a BlockDone. A local lane (lanes.py) trains in this process; a remote lane (worker.py) asks a worker
process in another Python environment (--python) to train its block, so environments interleave the same
way.
"""
from __future__ import annotations

import uuid

import numpy as np
import torch

from . import registry, train, worker
from .lanes import BlockDone, local_lane
from .local import Progress, SplitCache, failed, local_runs

BLOCK_SECONDS = 0.1  # the work of one block: long enough to time, short enough for many rounds
MAX_BLOCK_STEPS = 10_000
MIN_ROUNDS = 25  # the shortest run of a group still gets this many blocks to pair


def calibrate(sizes: list[tuple[float, int]], block_steps: int | None) -> int:
    """Updates per block, from each lane's (seconds per update, updates in all): asked for, or at most
    BLOCK_SECONDS of the slowest run's work, and few enough that the shortest run has MIN_ROUNDS blocks."""
    if block_steps is not None:
        return block_steps
    slowest = max((seconds for seconds, _ in sizes if seconds and seconds > 0), default=1e-3)
    shortest = min((total for _, total in sizes if total), default=MIN_ROUNDS)
    return int(max(min(round(BLOCK_SECONDS / slowest), shortest // MIN_ROUNDS, MAX_BLOCK_STEPS), 1))


def lanes_of(executor, todo, arrays, group: str, data_root=None):
    """(index, cfg, lane) for every run of todo: local lanes, or with executor.pythons one remote lane
    per run and environment (a worker process each environment; this process only coordinates)."""
    if executor.pythons:
        return worker.remote_lanes(executor, todo, group, data_root)
    splits = SplitCache(arrays, keep=len(todo) or 1)
    return [(index, cfg, local_lane(cfg, splits.get(cfg), group, executor.order_seed)) for index, cfg in todo]


def runs(executor, todo, total: int, arrays, data_root=None):
    """The Progress of an interleaved grid. A fitted (non-iterative) implementation has no steps to
    interleave: it trains apart, after the group."""
    iterative = [(i, c) for i, c in todo if registry.implementation(c.family, c.impl).iterative]
    apart = [(i, c) for i, c in todo if (i, c) not in iterative]
    group = uuid.uuid4().hex[:12]
    lanes = lanes_of(executor, iterative, arrays, group, data_root)
    total += len(lanes) - len(iterative)  # each environment's copy of a run is a run of the grid
    live, step_seconds = {}, []
    for position, (index, cfg, lane) in enumerate(lanes):
        yield Progress("start", index, total, cfg)
        step_seconds.append(next(lane))
        live[position] = (index, cfg, lane)
    block_steps = calibrate(step_seconds, executor.block_steps)
    threads = torch.get_num_threads()
    order = np.random.default_rng(executor.order_seed)
    round_ = 0
    try:
        while live:
            for position in order.permutation(sorted(live)):
                index, cfg, lane = live[position]
                try:
                    done = lane.send((round_, block_steps))
                except (KeyboardInterrupt, SystemExit):
                    raise
                except Exception as exc:  # noqa: BLE001 (a crash leaves the group; the others go on)
                    done = BlockDone(0.0, 0, result=failed(cfg, exc))
                for epoch in done.epochs:
                    yield Progress("epoch", index, total, cfg, epoch=epoch)
                if done.result is not None:
                    del live[position]
                    yield Progress("done", index, total, cfg, result=done.result)
            round_ += 1
    finally:
        for _, _, lane in live.values():
            lane.close()
        train.use_threads(threads)  # a block cut short by Ctrl-C may have left its run's count
    yield from local_runs(apart, total, arrays)

