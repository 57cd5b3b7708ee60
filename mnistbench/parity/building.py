"""What `mnistbench verify` builds and feeds: a model from its config (float64 when asked), the training
batches both sides of a comparison take, and the longest reduction of a step, which sizes the tolerance."""
from __future__ import annotations

import contextlib
from collections.abc import Callable

import torch

from .. import registry


@contextlib.contextmanager
def default_dtype(dtype: str):
    """float64: tensors made by the factories (torch.zeros, nn.Linear...) and inside steps are float64."""
    if dtype != "float64":
        yield
        return
    before = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    try:
        yield
    finally:
        torch.set_default_dtype(before)


def builder(cfg, n_features: int, n_classes: int) -> Callable:
    """A zero-argument builder of cfg's model, weights from a generator seeded by cfg.seed (models.build's
    way); in float64 the factory runs with torch's default dtype set to float64."""
    from ..models import contract

    def build():
        entry = registry.implementation(cfg.family, cfg.impl)
        with default_dtype(cfg.dtype):
            model = entry.factory(cfg, n_features, n_classes, torch.Generator().manual_seed(cfg.seed))
        contract.check(model, entry)
        return model

    return build


def batches(x, y, batch_size: int, seed: int, steps: int, dtype: str = "float32"):
    """`steps` training batches drawn as training draws them (train.epoch_batches, a generator seeded
    with `seed`), continuing into the next epoch when one runs out; cast to float64 when asked."""
    from ..train import epoch_batches

    generator, done = torch.Generator().manual_seed(seed), 0
    while done < steps:
        for xb, yb in epoch_batches(x, y, batch_size, generator):
            yield (xb.double() if dtype == "float64" else xb), yb
            done += 1
            if done == steps:
                return


def reduction_length(cfg, n_features: int) -> int:
    """K: the longest sum in one step (a product's inner dimension, or the batch of a gradient)."""
    hidden = cfg.hidden if registry.family(cfg.family).uses_hidden else ()
    return max(n_features, cfg.batch_size, *hidden)
