"""The math of the model families, one module each (its models and their factories), and building a model.

The families themselves (defaults, data recipe, which factories exist) are declared in mnistbench.catalog,
which names these factories without importing torch. See models.contract for what a model must offer.
"""
from __future__ import annotations

import torch

from .. import registry
from . import contract


def build(cfg, n_features: int, n_classes: int, device="cpu"):
    """Build the model of cfg with weights drawn from a generator seeded by cfg.seed, on `device`.

    A model that lacks a method its kind needs fails here, naming the implementation and its plugin,
    instead of deep inside the training loop.
    """
    generator = torch.Generator().manual_seed(cfg.seed)
    entry = registry.implementation(cfg.family, cfg.impl)
    model = entry.factory(cfg, n_features, n_classes, generator)
    contract.check(model, entry)
    return model.to(device)


def predictions(logits: torch.Tensor) -> torch.Tensor:
    """Class indices from logits: one column (binary, > 0 means class 1) or one column per class."""
    if logits.dim() == 1 or logits.shape[1] == 1:
        return (logits.reshape(-1) > 0).long()
    return logits.argmax(dim=1)
