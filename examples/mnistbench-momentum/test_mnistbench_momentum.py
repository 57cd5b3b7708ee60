"""The plugin's own test: `momentum` agrees with its twin step by step (mnistbench verify's comparison).

    MNISTBENCH_DATA=/path/to/data pytest examples/mnistbench-momentum
Registers the module in-process when the plugin is not installed; skips without MNIST data."""
import os

import pytest

import mnistbench
from mnistbench import registry
from mnistbench.testing import assert_agrees_with_twin

import mnistbench_momentum


@pytest.fixture(scope="module", autouse=True)
def registered():
    added = [e for e in mnistbench_momentum.IMPLEMENTATIONS if not registry.has(e.family, e.name)]
    for e in sorted(added, key=lambda e: e.twin is not None):  # the twin first
        mnistbench.register(e.family, e.name, e.factory, twin=e.twin, description=e.description)
    yield
    for e in added:
        registry.unregister(e.family, e.name)


def test_momentum_agrees_with_its_twin():
    if not os.environ.get("MNISTBENCH_DATA"):
        pytest.skip("set MNISTBENCH_DATA to a folder holding MNIST/raw/")
    result = assert_agrees_with_twin("softmax", "momentum", steps=200)
    assert result.comparison.verdict in ("identical", "agree")
