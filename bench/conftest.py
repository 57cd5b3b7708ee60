"""pytest-benchmark suite: options, the real data loaded once per session, and machine_info additions.

Run it by naming it (pytest's default testpaths is tests/), with MNIST under $MNISTBENCH_DATA:
    pytest bench/ --benchmark-only [--mnistbench-epochs N]
The benchmarks record times, ratios and accuracies; they assert no machine's speed. To gate on a
regression, save a baseline and compare against it on the same machine:
    pytest bench/ --benchmark-only --benchmark-autosave
    pytest bench/ --benchmark-only --benchmark-compare --benchmark-compare-fail=median:10%
or compare two --benchmark-json files with `mnistbench compare BASE.json NEW.json`.
"""
from __future__ import annotations

import os

import pytest
import torch

from mnistbench import data, train
from mnistbench.config import for_family, validate


def pytest_addoption(parser):
    group = parser.getgroup("mnistbench")
    group.addoption("--mnistbench-epochs", type=int, default=3,
                    help="epochs per round of a training benchmark (default 3: two steady-state epochs after the "
                         "first; the notebook's budget is 100, the MLP's 40)")


def pytest_benchmark_update_machine_info(config, machine_info):
    """What a timing depends on beyond pytest-benchmark's CPU info: torch build, GPU, threads."""
    machine_info["torch"] = torch.__version__
    machine_info["torch_cuda"] = torch.version.cuda
    machine_info["cuda_device"] = torch.cuda.get_device_name(0) if torch.cuda.is_available() else None
    machine_info["torch_threads"] = torch.get_num_threads()
    machine_info["tox_env"] = os.environ.get("TOX_ENV_NAME")


@pytest.fixture(scope="session")
def bench_epochs(request) -> int:
    epochs = request.config.getoption("--mnistbench-epochs")
    if epochs < 1:
        raise pytest.UsageError(f"--mnistbench-epochs must be >= 1, got {epochs}")
    return epochs


@pytest.fixture(scope="session")
def mnist_arrays():
    """The real MNIST, decoded once per session; never downloaded here (benchmarks must not hit the net)."""
    try:
        return data.load_arrays("mnist", download=False)
    except data.DataError as exc:
        pytest.skip(f"real MNIST needed for the training benchmarks (set MNISTBENCH_DATA): {exc}")


@pytest.fixture(scope="session")
def splits_for(mnist_arrays):
    """splits_for(cfg) -> Splits on cfg's device; one split per (family, device) for the session."""
    cache = {}

    def get(cfg):
        device = train.resolve_device(cfg.device)
        key = (cfg.family, str(device))
        if key not in cache:
            cache[key] = data.load(cfg, device=device, arrays=mnist_arrays)
        return cache[key]

    return get


@pytest.fixture(scope="session")
def bench_config(bench_epochs):
    """bench_config(family, impl, device) -> the notebook's RunConfig with the bench budget of epochs."""

    def make(family: str, impl: str, device: str, **overrides):
        return validate(for_family(family, impl, epochs=bench_epochs, device=device, **overrides))

    return make
