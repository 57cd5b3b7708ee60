"""Feed-forward ReLU network 784-512-128-10 (hidden sizes configurable). The math is in
mnistbench.models.mlp."""
from __future__ import annotations

from ..spec import DTYPES, DataRecipe, Family, Implementation, deferred
from . import stack_flops_per_sample

MEAN, STD = 0.1307, 0.3081  # the notebook's Normalize((0.1307,), (0.3081,))
FAMILY = Family(
    name="mlp",
    description="feed-forward ReLU network 784-512-128-10 (hidden sizes configurable)",
    defaults=dict(lr=0.01, batch_size=64, epochs=40, patience=3, hidden=(512, 128)),
    recipe=DataRecipe(split="holdout", standardize=(MEAN, STD)),
    uses_hidden=True,
    target_val_acc=0.97,
    position=2,  # the notebook's order
)


def layer_sizes(cfg, n_features, n_classes) -> list[int]:
    """The layer stack (nn.Linear layout): mnistbench.perf's floor times its step's GEMMs on these sizes."""
    return [n_features, *cfg.hidden, n_classes]


def flops_per_sample(cfg, n_features, n_classes) -> int:
    """Matmul FLOPs of one training sample of this family (perf: throughput's GFLOP/s, speed's floor)."""
    return stack_flops_per_sample(layer_sizes(cfg, n_features, n_classes))


# speed's portable target: the manual MLP within 1.3x of the fastest exact kernel's floor, on any CPU, held
# on the whole epoch (its shuffle included) and on the step alone (paired blocks of steps and floors)
SPEED_TARGETS = [("manual", "mnistbench_over_floor", "max", 1.3), ("manual", "step_over_floor", "max", 1.3)]

IMPLEMENTATIONS = [
    Implementation("mlp", "manual", deferred("mnistbench.models.mlp:manual"), twin="builtin", dtypes=DTYPES,
                   description="the notebook's ManualFeedForward: backward pass written by hand, SGD by hand"),
    Implementation("mlp", "builtin", deferred("mnistbench.models.mlp:builtin"), dtypes=DTYPES,
                   description="the same layers in nn.Sequential, CrossEntropyLoss, autograd, optim.SGD"),
]
