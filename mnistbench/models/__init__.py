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


def step_with_loss(model, x, y) -> tuple[torch.Tensor, torch.Tensor]:
    """model.step(x, y) as (loss, logits) with the loss always there: a step may leave its loss to the loop
    (return None), which then takes it from model.loss on the logits; per-step checks do the same here."""
    loss, logits = model.step(x, y)
    if loss is None:
        with torch.no_grad():
            loss = model.loss(logits, y)
    return loss, logits


def predictions(logits: torch.Tensor) -> torch.Tensor:
    """Class indices from logits: one column (binary, > 0 means class 1) or one column per class."""
    if logits.dim() == 1 or logits.shape[1] == 1:
        return (logits.reshape(-1) > 0).long()
    return logits.argmax(dim=1)
