"""The registry: one dict from (family, implementation) to a factory.

A factory takes (cfg, n_features, n_classes, generator) and returns a model. Iterative models offer
`step(x, y) -> (loss, logits)` (one SGD update, no host sync), `logits(x)`, `loss(logits, y)`,
`state_dict()` and `load_state_dict()`; a non-iterative one (scikit-learn) offers `fit(x, y)` instead
of `step`. Every model's parameters start on the CPU from the seeded generator, so a manual model and
its builtin twin start from the same weights on any device; `to(device)` moves them.
"""
from __future__ import annotations

import torch

from . import logistic, mlp, softmax

REGISTRY = {}
for _module in (logistic, softmax, mlp):
    for _impl, _factory in _module.IMPLEMENTATIONS.items():
        REGISTRY[(_module.FAMILY, _impl)] = _factory

# the pairs the harness compares: manual-style implementation -> the twin it must agree with
TWINS = {"manual": "builtin", "handgrad": "builtin"}


def impls_for(family: str) -> list[str]:
    return [impl for fam, impl in REGISTRY if fam == family]


def all_impls() -> list[str]:
    return list(dict.fromkeys(impl for _, impl in REGISTRY))


def build(cfg, n_features: int, n_classes: int, device="cpu"):
    """Build the model of cfg with weights drawn from a generator seeded by cfg.seed, on `device`."""
    generator = torch.Generator().manual_seed(cfg.seed)
    model = REGISTRY[(cfg.family, cfg.impl)](cfg, n_features, n_classes, generator)
    return model.to(device)


def is_iterative(model) -> bool:
    return hasattr(model, "step")


def predictions(logits: torch.Tensor) -> torch.Tensor:
    """Class indices from logits: one column (binary, > 0 means class 1) or one column per class."""
    if logits.dim() == 1 or logits.shape[1] == 1:
        return (logits.reshape(-1) > 0).long()
    return logits.argmax(dim=1)
