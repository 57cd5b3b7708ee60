"""The catalog: what the harness measures, one light module per model family.

A family module declares its FAMILY (defaults, data recipe), the hooks perf reads (flops_per_sample,
layer_sizes, SPEED_TARGETS) and its IMPLEMENTATIONS. Their factories live in mnistbench.models (the
math, in torch) and are named here with spec.deferred, so that listing or validating what exists
(`mnistbench list`, `--help`, a config check) never imports torch. The registry discovers the modules of
this package that define FAMILY; nothing here lists them. This file holds what several families share.
"""
from __future__ import annotations

import itertools

from ..spec import DTYPES, Implementation, deferred


def linear_implementations(family: str, descriptions: dict[str, str]) -> list[Implementation]:
    """The four implementations every linear family has, factories in mnistbench.models.<family>:
    manual and handgrad (the builtin's twins), builtin, and scikit-learn's solver (no epochs, no bf16)."""
    def entry(name, **options):
        return Implementation(family, name, deferred(f"mnistbench.models.{family}:{name}"),
                              description=descriptions[name], **options)

    return [entry("manual", twin="builtin", dtypes=DTYPES), entry("handgrad", twin="builtin", dtypes=DTYPES),
            entry("builtin", dtypes=DTYPES), entry("sklearn", iterative=False)]


def stack_flops_per_sample(sizes) -> int:
    """Matmul FLOPs of one training sample of a stack of linear layers: forward 2·in·out per layer,
    backward dW 2·in·out per layer and dX 2·in·out for every layer but the first (nothing needs dL/dx)."""
    layers = list(itertools.pairwise(sizes))
    forward = sum(2 * i * o for i, o in layers)
    return 2 * forward + sum(2 * i * o for i, o in layers[1:])
