"""The speed ratios, tracked: the same measurement as `mnistbench speed` (batch 64, real MNIST, CPU),
one family per benchmark, failing when a target is missed so that a regression shows.

Each benchmark is one call (pedantic, one round) of speed.speed for the family: the notebook's loop,
mnistbench's loop and the bare loop interleaved over several rounds. Its own time is not the point;
the ratios ride along in extra_info (`--benchmark-json FILE` keeps them) and are checked against
speed.TARGETS. They hold on a quiet machine: under load (other processes on the 2 cores) the ratios
are noisy and torch's 2 OpenMP threads can stall, so run it alone (`extra_info.load_1m` says how
loaded the machine was when it ran).
"""
from __future__ import annotations

import pytest

from mnistbench import registry
from mnistbench.perf import notebook_loops, speed

FAMILIES = [family for family in registry.families() if notebook_loops.has_loop(family)]


@pytest.mark.parametrize("family", FAMILIES)
def test_speed_ratios(benchmark, mnist_arrays, family):
    benchmark.group = "speed ratios (batch 64)"
    rows = benchmark.pedantic(speed.speed, args=([family],), kwargs={"repeats": 5}, rounds=1, iterations=1)
    for row in rows:
        benchmark.extra_info[row["impl"]] = {
            key: row.get(key) for key in ("notebook_s", "mnistbench_s", "bare_s", "notebook_over_mnistbench",
                                          "mnistbench_over_bare", "floor_s", "mnistbench_over_floor")
        }
    benchmark.extra_info.update(family=family, threads=rows[0]["threads"], load_1m=rows[0]["load_1m"])
    checks = speed.check_targets(rows)
    # a family without a target (speed.TARGETS) is tracked through its ratios in extra_info
    assert all(row["notebook_over_mnistbench"] > 0 and row["mnistbench_over_bare"] > 0 for row in rows)
    missed = [f"{what} = {value:.2f} (target {bound})" for what, value, bound, met in checks if not met]
    assert not missed, "; ".join(missed)
