"""Parity proved, not assumed: an implementation against its twin, step by step, tensor by tensor.

Both models are built from generators seeded alike, fed the very same batches (train.epoch_batches over
the family's real training split, epoch after epoch), and compared before any update (logits and loss of
the first batch, every parameter) and after every step (the step's loss and logits, every parameter by
name; a step that leaves its loss to the loop is given model.loss of its logits). The first tensor past
tolerance is named with its step; `tests/test_models.py`, `mnistbench verify` and
`mnistbench.testing.assert_agrees_with_twin` all go through compare_trajectories() (parity/trajectory.py;
the models and batches it is fed come from parity/building.py; both modules' names are importable from
here too); this module finds the pairs, runs each and keeps its result.

The tolerance (docs/verify.md): a tensor a agrees with its twin's b when, both divided by the twin's
scale s = max|b|, they meet torch.testing's rule with a grown rtol:
    max|a - b| / s <= atol + rtol * sqrt(K) * sqrt(step)        (s = 0: a must be exactly 0 too)
rtol, atol are torch.testing's defaults for the dtype; K is the longest reduction of a step (features,
hidden sizes or batch, whichever is longest): a sum of K rounded terms drifts like sqrt(K) ulps; and
rounding differences that feed back through the updates add up like a random walk, so like sqrt(step).
Measured against the scale of the tensor, not elementwise: a weight that happens to be near zero is not
held to a relative bound its neighbours' rounding cannot meet.
"""
from __future__ import annotations

import time
from dataclasses import dataclass

from . import registry
from .config import ConfigError, for_family
from .parity.building import batches, builder, default_dtype, reduction_length
from .parity.trajectory import (  # noqa: F401 (the comparison's names, as callers have imported them from here)
    DEFAULT_STEPS,
    DEFAULT_TOLERANCE,
    TORCH_DTYPE,
    VERIFY_DTYPES,
    Comparison,
    Tolerance,
    aligned_state,
    compare_trajectories,
    differences,
    line_up,
    relative,
    snapshot,
    tolerance,
)


def pairs(families=None, impls=None) -> list[tuple[registry.Implementation, registry.Implementation]]:
    """(implementation, its twin) for every one asked for that has a twin; ConfigError for unknown names
    or an implementation asked for by name that has none."""
    known = registry.families()
    for name in families or ():
        if name not in known:
            raise ConfigError(f"unknown family {name!r}; choose from {', '.join(known)}")
    chosen = list(families or known)
    names = {e.name for f in chosen for e in registry.implementations(f)}
    for name in impls or ():
        if name not in names:
            raise ConfigError(f"unknown implementation {name!r} in {', '.join(chosen)}; choose from "
                              f"{', '.join(sorted(names))}")
    out = []
    for family in chosen:
        for entry in registry.implementations(family):
            if impls and entry.name not in impls:
                continue
            if entry.twin is None:
                if impls:
                    twinned = [e.name for e in registry.implementations(family) if e.twin]
                    raise ConfigError(f"{family}/{entry.name} has no twin to verify against; those with one: "
                                      f"{', '.join(twinned) or 'none'}")
                continue
            if not registry.has(family, entry.twin):
                raise ConfigError(f"{family}/{entry.name} names twin {entry.twin!r}, which is not registered")
            out.append((entry, registry.implementation(family, entry.twin)))
    if not out:
        raise ConfigError("no implementation with a twin among those asked for")
    return out


def run_dtype(entry, twin, dtype: str) -> tuple[str, str]:
    """The dtype the pair runs in, and a note when that is not the one asked for."""
    lacking = [e.name for e in (entry, twin) if dtype not in e.dtypes]
    if not lacking:
        return dtype, ""
    return "float32", f"{', '.join(lacking)} does not declare {dtype}; verified in float32"


@dataclass(frozen=True)
class PairResult:
    family: str
    impl: str
    twin: str
    dtype: str  # asked for
    ran_in: str  # what it ran in (float32 when a side does not declare the dtype asked for)
    comparison: Comparison
    tolerance: Tolerance
    gradcheck: str  # "pass", "fail: ...", or "n/a: why"
    batch_size: int
    seed: int
    seconds: float
    note: str = ""

    @property
    def ok(self) -> bool:
        return self.comparison.ok and not self.gradcheck.startswith("fail")

    @property
    def verdict(self) -> str:
        if not self.comparison.ok:
            return self.comparison.summary()
        if self.gradcheck.startswith("fail"):
            return f"{self.comparison.verdict}, but the gradient check failed"
        return self.comparison.verdict


def verify_pair(entry, twin, arrays, steps: int = DEFAULT_STEPS, dtype: str = "float32", batch_size=None,
                seed: int = 0, rtol=None, atol=None, gradient_check: bool = True, **overrides) -> PairResult:
    """Verify one (implementation, twin) pair on the family's training split of `arrays`
    (data.load_arrays). overrides: RunConfig fields (lr, hidden...) for both."""
    from . import data
    from .parity.gradcheck import check_gradients

    if dtype not in VERIFY_DTYPES:
        raise ConfigError(f"unknown dtype {dtype!r}; choose from {', '.join(VERIFY_DTYPES)}")
    if steps < 1:
        raise ConfigError(f"--steps must be >= 1, got {steps}")
    started = time.perf_counter()
    ran_in, note = run_dtype(entry, twin, dtype)
    cfgs = [for_family(entry.family, e.name, batch_size=batch_size, seed=seed, dtype=ran_in, **overrides)
            for e in (entry, twin)]
    if cfgs[0].batch_size < 1:
        raise ConfigError(f"--batch-size must be >= 1, got {cfgs[0].batch_size}")
    train = data.load(cfgs[0], arrays=arrays).train
    n_classes = cfgs[0].n_classes
    tol = tolerance(ran_in, reduction_length(cfgs[0], train.x.shape[1]), rtol, atol)
    build, build_twin = (builder(cfg, train.x.shape[1], n_classes) for cfg in cfgs)
    with default_dtype(ran_in):
        comparison = compare_trajectories(build, build_twin,
                                          batches(train.x, train.y, cfgs[0].batch_size, seed, steps, ran_in), tol)
        x, y = next(batches(train.x, train.y, cfgs[0].batch_size, seed + 1, 1, "float64"))
        grad = check_gradients(entry, cfgs[0], x, y, n_classes) if gradient_check else "n/a: not asked"
    return PairResult(entry.family, entry.name, twin.name, dtype, ran_in, comparison, tol, grad,
                      cfgs[0].batch_size, seed, time.perf_counter() - started, note)
