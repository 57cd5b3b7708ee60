"""`mnistbench speed`'s measurement as a benchmark (batch 64, real MNIST, CPU), one family per benchmark.

Each benchmark is one call (pedantic, one round) of speed.speed for the family: the notebook's loop,
mnistbench's loop, the bare loop (and the MLP's matmul floor) interleaved over several rounds in a
shuffled order. Its own time is not the point: the rows ride along in extra_info (`--benchmark-json
FILE` keeps them), every ratio with its 95 % interval, with the load average read before measuring.

Nothing here asserts a speed target: the notebook ratios describe the machine they ran on (its image
decoding, its DataLoader), and even the portable target (the MLP epoch within 1.3x its matmul floor,
`mnistbench speed` reports it) is a measurement to read, not a test that a loaded machine may fail.
The assertions are that every loop ran and every figure is a finite, positive number.
"""
from __future__ import annotations

import dataclasses
import math

import pytest

from mnistbench import registry
from mnistbench.perf import notebook_loops, speed, targets

FAMILIES = [family for family in registry.families() if notebook_loops.has_loop(family)]
ROUNDS = 3  # at least; short families get more (speed.MIN_FAMILY_SECONDS)
RECORDED = ("notebook_s", "mnistbench_s", "bare_s", "floor_backend", "floor_s", *speed.RATIOS_WITH_INTERVALS,
            "repeats", "notebook_batches_timed", "epoch_batches")


@pytest.mark.parametrize("family", FAMILIES)
def test_speed_ratios(benchmark, mnist_arrays, family):
    benchmark.group = "speed ratios (batch 64)"
    rows = benchmark.pedantic(speed.speed, args=([family],), kwargs={"repeats": ROUNDS}, rounds=1, iterations=1)
    for row in rows:
        benchmark.extra_info[row["impl"]] = {key: row.get(key) for key in RECORDED}
    benchmark.extra_info.update(
        family=family, threads=rows[0]["threads"], load_1m_before=rows[0]["load_1m"],
        round_orders=rows[0]["round_orders"],
        targets=[dataclasses.asdict(check) for check in targets.check_targets(rows)])
    assert [row["impl"] for row in rows] == speed.iterative_impls(family)
    for row in rows:
        assert row["repeats"] >= ROUNDS and row["notebook_batches_timed"] == row["epoch_batches"]
        ratios = [name for name in speed.RATIOS if row.get(name) is not None]
        assert len(ratios) == (4 if family == "mlp" else 2)  # the MLP: its floor and the fastest-each bound
        for name in ("notebook_s", "mnistbench_s", "bare_s", *ratios):
            assert math.isfinite(row[name]) and row[name] > 0, (name, row[name])
        for name in ratios:
            assert row[f"{name}_ci_low"] <= row[name] <= row[f"{name}_ci_high"], name
