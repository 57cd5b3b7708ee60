"""Short runs on the real MNIST: each family learns, and each manual model agrees with its builtin twin."""
from __future__ import annotations

import pytest

from mnistbench import data, train
from mnistbench.config import for_family

pytestmark = pytest.mark.mnist

CASES = {  # family: (epochs, impls, minimum test accuracy after that many epochs)
    "logistic": (2, ("manual", "handgrad", "builtin", "sklearn"), 0.995),
    "softmax": (2, ("manual", "handgrad", "builtin"), 0.86),
    "mlp": (1, ("manual", "builtin"), 0.92),
}


@pytest.fixture(scope="module")
def arrays(mnist_root):
    return data.load_arrays("mnist", mnist_root)


@pytest.mark.parametrize("family", list(CASES))
def test_family_learns_and_twins_agree(arrays, family):
    epochs, impls, floor = CASES[family]
    accuracy = {}
    for impl in impls:
        cfg = for_family(family, impl, epochs=epochs)
        result = train.run_one(cfg, data.load(cfg, arrays=arrays))
        assert result.status == "ok"
        accuracy[impl] = result.test_acc
    assert min(accuracy.values()) >= floor, accuracy
    for impl in ("manual", "handgrad"):
        if impl in accuracy:
            assert abs(accuracy[impl] - accuracy["builtin"]) <= 0.003, accuracy
