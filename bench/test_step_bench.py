"""One training step of every step-wise implementation at batch sizes 64 and 1024: the per-step cost of
manual vs handgrad vs builtin, apart from data handling, epochs and evaluation.

Random inputs of MNIST's shape are enough: a step's cost does not depend on the pixel values. The model
is warmed up before timing (first calls pay for allocation, kernel selection, the CUDA context), and on
CUDA the benchmarked call synchronises, so each timing covers the work of the step, not its launch.
Pedantic mode with a fixed count of steps per benchmark, so a noisy machine makes the suite slower by
its noise only (pytest-benchmark's calibration plans its rounds from one early sample and overruns
--benchmark-max-time many times over when later rounds are slower).
"""
from __future__ import annotations

import pytest
import torch

from mnistbench import models, registry, train
from mnistbench.config import for_family, validate

N_FEATURES = 28 * 28
BATCH_SIZES = [64, 1024]
WARMUP_STEPS = 5
ROUNDS = 15
STEPS_PER_ROUND = {64: 20, 1024: 2}  # a round of a few ms on a 2-core CPU for the larger models
STEPWISE = [(e.family, e.name) for e in registry.implementations() if e.iterative]
DEVICES = ["cpu", pytest.param("cuda", marks=[
    pytest.mark.cuda, pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")])]


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("batch_size", BATCH_SIZES)
@pytest.mark.parametrize("family,impl", STEPWISE, ids=[f"{f}-{i}" for f, i in STEPWISE])
def test_step(benchmark, family, impl, batch_size, device):
    cfg = validate(for_family(family, impl, batch_size=batch_size, device=device))
    device = train.resolve_device(device)
    model = models.build(cfg, N_FEATURES, cfg.n_classes, device)
    generator = torch.Generator().manual_seed(0)
    x = torch.rand(batch_size, N_FEATURES, generator=generator).to(device)
    y = torch.randint(cfg.n_classes, (batch_size,), generator=generator).to(device)

    def step():
        model.step(x, y)
        train.sync(device)  # no-op on the CPU

    for _ in range(WARMUP_STEPS):
        step()
    benchmark.group = f"step {family} batch={batch_size}"
    benchmark.extra_info.update(family=family, impl=impl, batch_size=batch_size, device=str(device),
                                kind="step")
    benchmark.pedantic(step, rounds=ROUNDS, iterations=STEPS_PER_ROUND[batch_size])
    assert torch.isfinite(models.step_with_loss(model, x, y)[0]).item()  # after the timing: one more step
    benchmark.extra_info["samples_per_s"] = batch_size / benchmark.stats.stats.median
