"""A lane: one run's side of an interleaved group (interleave.py), a generator that is sent (round, steps),
trains that block of updates in this process and yields a BlockDone. worker.py serves the same lanes to a
driver in another Python environment."""
from __future__ import annotations

import time
from dataclasses import dataclass

import torch

from . import env, models, train
from .result import Block, Epoch, Interleave, RunResult

WARMUP_ROUNDS = 1  # the first round warms up and is not recorded


@dataclass(frozen=True)
class BlockDone:
    """What a lane did in one block: timed seconds (validation excluded), updates made (fewer than asked
    when the run ended), the epochs that ended in it, and the result when the run is over."""

    seconds: float
    steps: int
    epochs: tuple[Epoch, ...] = ()
    result: RunResult | None = None


def local_lane(cfg, splits, group: str, order_seed: int):
    """A run as a lane. Yields (seconds per update from the warm-up, updates the whole run would make)
    first, for calibration, then a BlockDone for each (round, steps) it is sent."""
    device = splits.train.x.device
    default_threads = torch.get_num_threads()
    threads = cfg.threads or default_threads
    train.use_threads(threads)
    noise = env.noise_start()
    step_seconds = train.warm_up(cfg, splits, device, steps=5)
    model = models.build(cfg, splits.n_features, splits.n_classes, device)
    steps = train.training(model, splits, cfg)
    train.use_threads(default_threads)
    total_steps = cfg.epochs * -(-len(splits.train) // cfg.batch_size)
    round_, block_steps = yield step_seconds, total_steps
    blocks, epoch_seconds, fitted = [], 0.0, None
    while True:
        train.use_threads(threads)  # each block under its own run's thread count
        epochs, done, seconds = [], 0, 0.0
        train.sync(device)
        started = time.perf_counter()
        try:
            while done < block_steps:
                if next(steps) is train.EPOCH_END:
                    train.sync(device)
                    segment = time.perf_counter() - started
                    seconds, epoch_seconds = seconds + segment, epoch_seconds + segment
                    epochs.append(steps.send(epoch_seconds))  # validation: outside every timer
                    epoch_seconds = 0.0
                    started = time.perf_counter()
                else:
                    done += 1
        except StopIteration as stop:
            fitted = stop.value
        train.sync(device)
        segment = time.perf_counter() - started
        seconds, epoch_seconds = seconds + segment, epoch_seconds + segment
        if round_ >= WARMUP_ROUNDS and done:
            blocks.append(Block(round_, seconds, done))
        result = None
        if fitted is not None:
            record = Interleave(group, block_steps, order_seed, tuple(blocks))
            result = train.finish(cfg, model, splits, fitted, env.noise_since(noise), interleave=record)
        train.use_threads(default_threads)
        round_, block_steps = yield BlockDone(seconds, done, tuple(epochs), result)
