"""The step-by-step comparison behind `mnistbench verify`: two models fed the same batches, every tensor
held to a tolerance that grows with the reduction length and the step (see mnistbench.verify for the rule
and docs/verify.md for why), the first tensor past it named with its step."""
from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import torch

from ..config import ConfigError
from ..models import step_with_loss

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
