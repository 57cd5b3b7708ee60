"""The step alone against its floor, paired finely: in each round one block of the model's steps and one
block of as many runs of the floor's step GEMMs, in an order shuffled each round, the ratio of the round's
two blocks paired over the rounds (paired.paired_comparison).

speed's mb/floor holds a whole epoch (its shuffle, its end) against the floor measured around it, so its
pairs are a second or two apart; these blocks are tens of milliseconds long and hold the step only. The
two together say how much of an epoch above its floor is the step and how much the rest of the epoch.
The same pairing holds the fastest-each backend (per product the fastest kernel of any precision) against
the floor: the most a lower precision could gain on the step's GEMMs.
"""
from __future__ import annotations

import math
import random

from .. import paired, stats
from .timing import synced_seconds

BLOCK_STEPS = 40  # ~30 ms for the MLP at batch 64 on a 2-core CPU: short against the machine's drift
BLOCK_SECONDS = 0.03
ROUNDS = 30  # at least; a speed run of more rounds (--repeats) gets as many blocks


def rounds_for(repeats: int) -> int:
    """The blocks a speed run of `repeats` rounds pairs: ROUNDS, or more when more rounds were asked for
    (a block of each side is ~60 ms, so 100 rounds cost seconds)."""
    return max(ROUNDS, repeats)


def step_over_floor(model, batches, floor_run, device, rounds: int = ROUNDS, block: int = BLOCK_STEPS,
                    seed: int = 0) -> stats.Comparison:
    """The model's step over one run of the floor's GEMMs (floor_run computes every product of one step
    once), from `rounds` rounds of `block` of each, interleaved. The steps take `batches` (a list of (x, y)
    of the floor's batch size) in turn; the model trains on: use one that is not measured otherwise."""

    def steps(start):
        for i in range(start, start + block):
            xb, yb = batches[i % len(batches)]
            model.step(xb, yb)

    return blocks_over(steps, _repeat(floor_run, block), device, rounds, block, seed)


def run_over_floor(run, floor_run, device, rounds: int = ROUNDS, seed: int = 0) -> stats.Comparison:
    """Another set of the step's GEMMs (a backend's run, as fastest-each) over the floor's, paired the same
    way, in blocks of about BLOCK_SECONDS of the floor (at most BLOCK_STEPS runs: at batch 1024 one run
    is ten times batch 64's)."""
    floor_run()
    block = max(1, min(BLOCK_STEPS, math.ceil(BLOCK_SECONDS / synced_seconds(device, floor_run))))
    return blocks_over(_repeat(run, block), _repeat(floor_run, block), device, rounds, block, seed)


def _repeat(run, block: int):
    def calls(_):
        for _ in range(block):
            run()
    return calls


def blocks_over(new, base, device, rounds: int, block: int, seed: int) -> stats.Comparison:
    """new's blocks over base's, one of each per round in an order shuffled each round; new(start) and
    base(start) run one block (start: the round's first index, for a block that walks through data)."""
    units = {"new": new, "base": base}
    for unit in units.values():  # first calls paid before any timing
        unit(0)
    times = {name: {} for name in units}
    shuffler = random.Random(seed)
    for round_index in range(rounds):
        order = list(units)
        shuffler.shuffle(order)
        for name in order:
            times[name][round_index] = synced_seconds(device, units[name], round_index * block)
    return paired.paired_comparison(times["base"], times["new"])
