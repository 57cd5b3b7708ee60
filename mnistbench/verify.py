"""Parity proved, not assumed: an implementation against its twin, step by step, tensor by tensor.

Both models are built from generators seeded alike, fed the very same batches (train.epoch_batches over
the family's real training split, epoch after epoch), and compared before any update (logits and loss of
the first batch, every parameter) and after every step (the step's loss and logits, every parameter by
name; a step that leaves its loss to the loop is given model.loss of its logits). The first tensor past
tolerance is named with its step; `tests/test_models.py`, `mnistbench verify` and
`mnistbench.testing.assert_agrees_with_twin` all go through compare_trajectories().

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

import contextlib
import math
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import torch

from . import registry
from .config import ConfigError, for_family
from .models import step_with_loss

VERIFY_DTYPES = ("float32", "float64", "bfloat16")
TORCH_DTYPE = {"float32": torch.float32, "float64": torch.float64, "bfloat16": torch.bfloat16}
# torch.testing.assert_close's defaults (rtol, atol) per dtype
DEFAULT_TOLERANCE = {"float32": (1.3e-6, 1e-5), "float64": (1e-7, 1e-7), "bfloat16": (1.6e-2, 1e-5)}
DEFAULT_STEPS = 200


@dataclass(frozen=True)
class Tolerance:
    rtol: float  # torch.testing's rtol for the dtype (or the user's)
    atol: float
    reduction: int  # K: the longest reduction of a step

    def rtol_at(self, step: int) -> float:
        """The relative bound at `step` (0: before any update): rtol · sqrt(K) · sqrt(max(step, 1))."""
        return self.rtol * math.sqrt(self.reduction) * math.sqrt(max(step, 1))

    def bound(self, step: int) -> float:
        """The largest max|a-b| / max|b| allowed at `step`."""
        return self.atol + self.rtol_at(step)

    def describe(self) -> str:
        return (f"max|a-b|/max|b| <= {self.atol:g} + {self.rtol:g}·sqrt({self.reduction})·sqrt(step) "
                f"(= {self.bound(1):.2g} at step 1, {self.bound(DEFAULT_STEPS):.2g} at step {DEFAULT_STEPS})")


def tolerance(dtype: str, reduction: int, rtol: float | None = None, atol: float | None = None) -> Tolerance:
    default_rtol, default_atol = DEFAULT_TOLERANCE[dtype]
    return Tolerance(default_rtol if rtol is None else rtol, default_atol if atol is None else atol, reduction)


@dataclass(frozen=True)
class Comparison:
    """What compare_trajectories found for one pair of models over one run of batches."""

    verdict: str  # "identical" (bit for bit), "agree" (within tolerance throughout) or "differ"
    steps: int
    first_step: int | None = None  # the first step past tolerance (0: before any update)
    tensor: str | None = None  # which tensor, e.g. "loss", "logits", "W~weight"
    max_abs: float = 0.0  # at that step and tensor (the worst over the run when they agree)
    max_rel: float = 0.0  # max|a-b| / max|b|
    bound: float = 0.0  # the relative bound it was held to there
    growth: tuple = field(default=(), repr=False)  # per step, the largest max|a-b|/max|b| over the tensors
    detail: str = ""  # why, in words, when a tensor could not be compared at all (shape, name, NaN)

    @property
    def ok(self) -> bool:
        return self.verdict != "differ"

    def summary(self) -> str:
        if self.verdict == "differ":
            where = "before any update" if self.first_step == 0 else f"from step {self.first_step}"
            what = (f"{self.tensor}: max abs diff {self.max_abs:.3g}, max rel diff {self.max_rel:.3g} "
                    f"(allowed {self.bound:.3g})")
            return f"differ {where}: {what}" + (f"; {self.detail}" if self.detail else "")
        return f"{self.verdict} over {self.steps} steps (largest rel diff {self.max_rel:.3g})"


# ---------------------------------------------------------------- lining the tensors up
def aligned_state(model) -> dict:
    """The parameters as the contract compares them: parity_state() if the model offers it (its
    parameters under its twin's names and layout), else state_dict()."""
    offered = getattr(model, "parity_state", None)
    return dict(offered()) if callable(offered) else dict(model.state_dict())


def line_up(mine: dict, theirs: dict) -> list[tuple[str, torch.Tensor, torch.Tensor]]:
    """(label, a, b) per parameter. The same names pair by name; otherwise the tensors pair in order,
    an (in, out) matrix against an (out, in) one transposed (the linear families' W against nn.Linear's
    weight); anything else is a ContractError-like ConfigError naming both sides."""
    if mine.keys() == theirs.keys():
        pairs = [(name, mine[name], theirs[name]) for name in theirs]
    elif len(mine) == len(theirs):
        pairs = [(f"{a}~{b}", mine[a], theirs[b]) for a, b in zip(mine, theirs)]
    else:
        raise ConfigError(f"cannot line up parameters {list(mine)} with the twin's {list(theirs)}: offer "
                          "parity_state() (see mnistbench.models.contract)")
    out = []
    for label, a, b in pairs:
        if a.shape != b.shape and a.dim() == 2 and a.t().shape == b.shape:
            a = a.t()
        if a.shape != b.shape:
            raise ConfigError(f"parameter {label}: shape {tuple(a.shape)} against the twin's {tuple(b.shape)}")
        out.append((label, a, b))
    return out


def differences(tensors) -> list[tuple[float, float]]:
    """(max|a-b|, max|b|) per (label, a, b), in one host read. NaN or inf on either side gives NaN, which
    no bound admits; bf16 is compared in float32."""
    stats = []
    for _, a, b in tensors:
        a, b = a.detach().reshape(-1), b.detach().reshape(-1)
        if a.shape != b.shape:
            stats.append(torch.tensor([math.nan, 1.0], dtype=torch.float64))
            continue
        if a.dtype != b.dtype or a.dtype == torch.bfloat16:
            a, b = a.float(), b.double() if b.dtype == torch.float64 else b.float()
        diff = (a - b).abs().max() if a.numel() else a.new_zeros(())
        scale = b.abs().max() if b.numel() else b.new_zeros(())
        stats.append(torch.stack([diff.double(), scale.double()]))
    return [tuple(row) for row in torch.stack(stats).tolist()] if stats else []


def relative(abs_diff: float, scale: float) -> float:
    """max|a-b| / max|b|: 0 for two zero tensors, inf for a non-zero one against zeros."""
    if scale > 0:
        return abs_diff / scale
    return 0.0 if abs_diff == 0 else (math.nan if math.isnan(abs_diff) else math.inf)


# ---------------------------------------------------------------- the comparison
def snapshot(model, x, y) -> list[tuple[str, torch.Tensor, torch.Tensor]]:
    """The start: logits and loss of the first batch through logits()/loss(), no update."""
    with torch.no_grad():
        logits = model.logits(x)
        return [("logits", logits), ("loss", model.loss(logits, y))]


def compare_trajectories(build: Callable, build_twin: Callable, batches: Iterable, tol: Tolerance) -> Comparison:
    """Build both (zero-argument callables), then compare start and every step over `batches` of (x, y).
    Keeps going after the first difference so that growth covers every step."""
    model, twin = build(), build_twin()
    model.train()
    twin.train()
    growth, identical, first, worst = [], True, None, (None, 0.0, 0.0, 0.0, "")
    for step, (x, y) in enumerate(batches, start=1):
        if step == 1:  # before any update: both forwards on the first batch, and the starting weights
            ours, theirs = snapshot(model, x.clone(), y.clone()), snapshot(twin, x.clone(), y.clone())
            tensors = [(name, a, b) for (name, a), (_, b) in zip(ours, theirs)]
            first, worst, identical = _check(0, tensors + _params(model, twin), tol, growth, first, worst, identical)
        loss, logits = step_with_loss(model, x.clone(), y.clone())  # clones: a model that writes into its
        twin_loss, twin_logits = step_with_loss(twin, x.clone(), y.clone())  # batch must not change the other's
        tensors = [("loss", loss, twin_loss), ("logits", logits, twin_logits), *_params(model, twin)]
        first, worst, identical = _check(step, tensors, tol, growth, first, worst, identical)
    steps = len(growth) - 1
    if first is not None:
        step, label, abs_diff, rel, bound, detail = first
        return Comparison("differ", steps, step, label, abs_diff, rel, bound, tuple(growth), detail)
    label, abs_diff, rel, bound, detail = worst
    return Comparison("identical" if identical else "agree", steps, None, label, abs_diff, rel, bound,
                      tuple(growth))


def _params(model, twin):
    try:
        return line_up(aligned_state(model), aligned_state(twin))
    except ConfigError as exc:  # a parameter lost or reshaped on the way is a difference, with its reason
        return [(f"parameters ({exc})", torch.zeros(1), torch.full((1,), math.nan))]


def _check(step, tensors, tol, growth, first, worst, identical):
    """Compare one step's tensors, both normalised by the twin's scale s = max|b|: they agree when
    max|a - b| / s <= atol + rtol_step (exactly equal when s = 0). Updates the per-step growth, the first
    failure and the worst agreement."""
    bound = tol.bound(step)
    largest = 0.0
    for (label, a, b), (abs_diff, scale) in zip(tensors, differences(tensors)):
        rel = relative(abs_diff, scale)
        largest = max(largest, rel) if not math.isnan(rel) else math.inf
        identical = identical and abs_diff == 0 and a.dtype == b.dtype and a.shape == b.shape
        too_far = not rel <= bound  # NaN included
        if too_far and first is None:
            detail = "NaN or inf on one side, or shapes that differ" if not math.isfinite(rel) else ""
            first = (step, label, abs_diff, rel, bound, detail)
        if not too_far and rel >= worst[2]:
            worst = (label, abs_diff, rel, bound, "")
    growth.append(largest)
    return first, worst, identical


# ---------------------------------------------------------------- building, data, batches
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
    from .models import contract

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
    from .train import epoch_batches

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
