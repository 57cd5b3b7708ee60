"""The step alone against its floor, paired finely: in each round one block of the model's steps and one
block of as many runs of the floor's step GEMMs, in an order shuffled each round, the ratio of the round's
two blocks paired over the rounds (paired.paired_comparison).

speed's mb/floor holds a whole epoch (its shuffle, its end) against the floor measured around it, so its
pairs are a second or two apart; these blocks are tens of milliseconds long and hold the step only. The
two together say how much of an epoch above its floor is the step and how much the rest of the epoch.
"""
from __future__ import annotations

import random
import time

from .. import paired, stats, train

BLOCK_STEPS = 40  # ~30 ms for the MLP at batch 64 on a 2-core CPU: short against the machine's drift
ROUNDS = 30


def step_over_floor(model, batches, floor_run, device, rounds: int = ROUNDS, block: int = BLOCK_STEPS,
                    seed: int = 0) -> stats.Comparison:
    """The model's step over one run of the floor's GEMMs (floor_run computes every product of one step
    once), from `rounds` rounds of `block` of each, interleaved. The steps take `batches` (a list of (x, y)
    of the floor's batch size) in turn; the model trains on: use one that is not measured otherwise."""

    def steps(start):
        for i in range(start, start + block):
            xb, yb = batches[i % len(batches)]
            model.step(xb, yb)

    def floors(_):
        for _ in range(block):
            floor_run()

    units = {"step": steps, "floor": floors}
    for unit in units.values():  # first calls paid before any timing
        unit(0)
    times = {name: {} for name in units}
    shuffler = random.Random(seed)
    for round_index in range(rounds):
        order = list(units)
        shuffler.shuffle(order)
        for name in order:
            train.sync(device)
            started = time.perf_counter()
            units[name](round_index * block)
            train.sync(device)
            times[name][round_index] = time.perf_counter() - started
    return paired.paired_comparison(times["floor"], times["step"])
