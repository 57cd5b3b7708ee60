"""Model families, one module each (its FAMILY, its math, its IMPLEMENTATIONS), and building a model.

The registry (mnistbench.registry) discovers the family modules in this package; nothing here lists
them. See models.contract for what a model must offer.
"""
from __future__ import annotations

import torch

from .. import registry


def build(cfg, n_features: int, n_classes: int, device="cpu"):
    """Build the model of cfg with weights drawn from a generator seeded by cfg.seed, on `device`."""
    generator = torch.Generator().manual_seed(cfg.seed)
    model = registry.implementation(cfg.family, cfg.impl).factory(cfg, n_features, n_classes, generator)
    return model.to(device)


def predictions(logits: torch.Tensor) -> torch.Tensor:
    """Class indices from logits: one column (binary, > 0 means class 1) or one column per class."""
    if logits.dim() == 1 or logits.shape[1] == 1:
        return (logits.reshape(-1) > 0).long()
    return logits.argmax(dim=1)
