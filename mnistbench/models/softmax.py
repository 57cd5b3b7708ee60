"""Softmax (multinomial logistic) regression: 784 pixels -> one logit per class.

manual:   the notebook's code: softmax with the row max subtracted, cross-entropy on one-hot labels
          with p clamped to [1e-15, 1-1e-15], gradients by autograd, SGD by hand. The step keeps those
          formulas op for op and trims only the plumbing (one addmm on a transposed W, autograd.grad,
          fused in-place updates): at batch 64 every op and autograd node counts.
handgrad: the same loss with the gradient written by hand (dL/dz = (p - onehot)/B), no autograd.
builtin:  nn.Linear + CrossEntropyLoss + optim.SGD, starting from the same zero weights.
sklearn:  multinomial LogisticRegression (lbfgs).
--dtype bfloat16: see models.precision. The family (defaults, data recipe) is declared in
mnistbench.catalog.softmax.
"""
from __future__ import annotations

import torch
from torch import nn

from . import precision
from .common import Builtin, Sklearn, TensorParams

EPS = 1e-15


def softmax(z: torch.Tensor) -> torch.Tensor:
    exp_z = torch.exp(z - torch.max(z, dim=1, keepdim=True).values)
    return exp_z / exp_z.sum(dim=1, keepdim=True)


def cross_entropy(p: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    p = torch.clamp(p, EPS, 1 - EPS)
    # the one-hot matrix of F.one_hot(y).float(), built without one_hot's label range check, which reads
    # the labels' min and max back to the host on every call (a per-batch sync inside the training loop)
    one_hot = torch.zeros_like(p).scatter_(1, y.unsqueeze(1), 1.0)
    return -torch.mean(torch.sum(one_hot * torch.log(p), dim=1))


def affine_t(x: torch.Tensor, W: torch.Tensor, b: torch.Tensor, prec=precision.FLOAT32) -> torch.Tensor:
    """x @ W + b, computed as (Wᵀ xᵀ + b)ᵀ: the same products and sums, but at batch 64 MKL runs the
    10×784 · 784×64 product several times faster than the 64×784 · 784×10 one (W is stored as Wᵀ)."""
    return prec.addmm(b.unsqueeze(1), W.t(), x.t()).t()


class ManualSoftmax(TensorParams):
    def __init__(self, n_features: int, n_classes: int, lr: float, prec=precision.FLOAT32):
        self.lr, self.prec = lr, prec
        # W is the notebook's (n_features, n_classes) matrix, laid out in memory as its transpose so that
        # both the forward product and the gradient product take MKL's fast path (see affine_t)
        self.W = torch.zeros((n_classes, n_features)).t().requires_grad_(True)
        self.b = torch.zeros(n_classes, requires_grad=True)
        self.params = {"W": self.W, "b": self.b}

    def logits(self, x):
        return self.prec.matmul(x, self.W) + self.b

    def loss(self, logits, y):
        return cross_entropy(softmax(logits), y)

    def step(self, x, y):
        z = affine_t(x, self.W, self.b, self.prec)
        loss = self.loss(z, y)  # the notebook's own max-subtracted softmax and clamped one-hot CE
        self.autograd_sgd_(loss)  # autograd, as in the notebook
        return loss.detach(), z.detach()


class HandgradSoftmax(ManualSoftmax):
    def __init__(self, n_features: int, n_classes: int, lr: float, prec=precision.FLOAT32):
        super().__init__(n_features, n_classes, lr, prec)
        self.W.requires_grad_(False)
        self.b.requires_grad_(False)
        self.copies = precision.Copies(prec)  # bf16: W and b cast once per update, not once per product

    def step(self, x, y):
        x = self.prec.cast(x)  # the batch, cast once for both products
        z = affine_t(x, self.copies.get(self.W), self.copies.get(self.b), self.prec)
        p = torch.softmax(z, dim=1)  # the same max-subtracted softmax as above, as one kernel
        rows = y.unsqueeze(1)
        p_true = p.gather(1, rows)
        loss = -torch.log(p_true.clamp(EPS, 1 - EPS)).mean()
        grad_z = p.scatter(1, rows, p_true - 1)  # p - onehot, times B; 1/B folds into the step size
        step_size = -self.lr / x.shape[0]
        self.prec.addmm_(self.W.t(), grad_z.t(), x, step_size)  # Wᵀ -= lr/B · gradᵀ x: the fast layout
        self.b.add_(grad_z.sum(0), alpha=step_size)
        return loss, z


def manual(cfg, n_features, n_classes, generator):
    """the notebook's code: max-subtracted softmax, clamped one-hot CE, autograd"""
    return ManualSoftmax(n_features, n_classes, cfg.lr, precision.of(cfg))


def handgrad(cfg, n_features, n_classes, generator):
    """the same loss with the gradient (p - onehot)/B written by hand"""
    return HandgradSoftmax(n_features, n_classes, cfg.lr, precision.of(cfg))


def builtin(cfg, n_features, n_classes, generator):
    """nn.Linear + CrossEntropyLoss + optim.SGD, from the same zero weights"""
    linear = nn.Linear(n_features, n_classes)
    nn.init.zeros_(linear.weight)
    nn.init.zeros_(linear.bias)
    return Builtin(linear, nn.CrossEntropyLoss(), cfg.lr, precision=precision.of(cfg))


def sklearn(cfg, n_features, n_classes, generator):
    """multinomial LogisticRegression (lbfgs, max_iter=100)"""
    from sklearn.linear_model import LogisticRegression

    # lbfgs fits the multinomial model (the only multi-class mode left in recent scikit-learn)
    return Sklearn(LogisticRegression(max_iter=100, random_state=cfg.seed), binary=False)

