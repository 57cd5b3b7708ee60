"""Binary logistic regression (the notebook's first model): 784 pixels -> one logit.

manual:   the notebook's code: sigmoid = 1/(1+e^-z), BCE on p clamped to [1e-15, 1-1e-15],
          gradients by autograd, SGD written by hand. The step keeps those formulas op for op and trims
          only the plumbing around them (one addmm, autograd.grad, fused in-place updates): at batch 64
          every dispatched op costs more than its arithmetic.
handgrad: the same math with the gradient written by hand (dL/dz = (p - y)/B): no autograd graph,
          a handful of ops per step, which is what a dispatch-bound batch of 64 rewards.
builtin:  nn.Linear + BCEWithLogitsLoss + optim.SGD, starting from the same zero weights.
sklearn:  LogisticRegression(solver="liblinear", max_iter=100), as in the notebook.
--dtype bfloat16: see models.precision. The family (defaults, data recipe) is declared in
mnistbench.catalog.logistic.
"""
from __future__ import annotations

import torch
from torch import nn

from . import precision
from .common import Builtin, Sklearn, TensorParams

EPS = 1e-15  # the notebook's clamp, p in [EPS, 1 - EPS]


def upper_clamp(dtype: torch.dtype) -> float:
    """1 - EPS as the dtype can hold it: in float32, 1 - 1e-15 rounds to 1.0, so the notebook's clamp let
    p reach 1 and (1 - y)·log(1 - p) became 0·(-inf) = NaN once z > ~16.6 (a good run at a larger learning
    rate was then called diverged). The largest value below 1 keeps the clamp's intent."""
    return min(1 - EPS, 1 - torch.finfo(dtype).eps / 2)


def bce(p: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """The notebook's binary cross-entropy on probabilities p (B, 1) and 0/1 labels y (B,)."""
    p = torch.clamp(p, EPS, upper_clamp(p.dtype))
    target = y.unsqueeze(1).to(p.dtype)
    return -torch.mean(target * torch.log(p) + (1 - target) * torch.log(1 - p))


class ManualLogistic(TensorParams):
    def __init__(self, n_features: int, lr: float, prec: precision.Precision = precision.FLOAT32):
        self.lr, self.prec = lr, prec
        self.W = torch.zeros((n_features, 1), requires_grad=True)
        self.b = torch.zeros(1, requires_grad=True)
        self.params = {"W": self.W, "b": self.b}

    def logits(self, x):
        return self.prec.matmul(x, self.W) + self.b

    def loss(self, logits, y):
        return bce(1 / (1 + torch.exp(-logits)), y)

    def step(self, x, y):
        z = self.prec.addmm(self.b, x, self.W)  # x @ W + b as one op (one autograd node instead of two)
        loss = self.loss(z, y)  # the notebook's own sigmoid 1/(1+e^-z) and clamped BCE, op for op
        self.autograd_sgd_(loss)  # autograd, as in the notebook
        return loss.detach(), z.detach()


class HandgradLogistic(ManualLogistic):
    def __init__(self, n_features: int, lr: float, prec: precision.Precision = precision.FLOAT32):
        super().__init__(n_features, lr, prec)
        self.W.requires_grad_(False)
        self.b.requires_grad_(False)
        self.copies = precision.Copies(prec)  # bf16: W and b cast once per update, not once per product

    def step(self, x, y):
        x = self.prec.cast(x)  # the batch, cast once for both products
        z = self.prec.addmm(self.copies.get(self.b), x, self.copies.get(self.W))
        p = torch.sigmoid(z)
        is_one = y.unsqueeze(1) == 1
        # the notebook's clamped BCE: log of p for class 1, of 1 - p for class 0
        p_clamped = p.clamp(EPS, upper_clamp(p.dtype))
        loss = -torch.log(torch.where(is_one, p_clamped, 1 - p_clamped)).mean()
        grad_z = p - is_one.to(p.dtype)  # dL/dz times B; 1/B folds into the step size below
        step_size = -self.lr / x.shape[0]
        self.prec.addmm_(self.W, x.t(), grad_z, step_size)
        self.b.add_(grad_z.sum(0), alpha=step_size)
        return loss, z


def manual(cfg, n_features, n_classes, generator):
    """the notebook's code: sigmoid 1/(1+e^-z), clamped BCE, autograd, SGD by hand"""
    return ManualLogistic(n_features, cfg.lr, precision.of(cfg))


def handgrad(cfg, n_features, n_classes, generator):
    """the same loss with the gradient (p - y)/B written by hand, no autograd"""
    return HandgradLogistic(n_features, cfg.lr, precision.of(cfg))


def builtin(cfg, n_features, n_classes, generator):
    """nn.Linear + BCEWithLogitsLoss + optim.SGD, from the same zero weights"""
    linear = nn.Linear(n_features, 1)
    nn.init.zeros_(linear.weight)  # the manual model's start, so the two trajectories can be compared
    nn.init.zeros_(linear.bias)
    return Builtin(linear, nn.BCEWithLogitsLoss(), cfg.lr, binary=True, precision=precision.of(cfg))


def sklearn(cfg, n_features, n_classes, generator):
    """LogisticRegression(solver='liblinear', max_iter=100)"""
    from sklearn.linear_model import LogisticRegression

    return Sklearn(LogisticRegression(solver="liblinear", max_iter=100, random_state=cfg.seed), binary=True)

