"""Softmax (multinomial logistic) regression: 784 pixels -> one logit per class.

manual:   the notebook's code: softmax with the row max subtracted, cross-entropy on one-hot labels
          with p clamped to [1e-15, 1-1e-15], gradients by autograd, SGD by hand.
handgrad: the same loss with the gradient written by hand (dL/dz = (p - onehot)/B), no autograd.
builtin:  nn.Linear + CrossEntropyLoss + optim.SGD, starting from the same zero weights.
sklearn:  multinomial LogisticRegression (lbfgs).
"""
from __future__ import annotations

import torch
from torch import nn

from .common import Builtin, Sklearn, TensorParams

FAMILY = "softmax"
EPS = 1e-15


def softmax(z: torch.Tensor) -> torch.Tensor:
    exp_z = torch.exp(z - torch.max(z, dim=1, keepdim=True).values)
    return exp_z / exp_z.sum(dim=1, keepdim=True)


def cross_entropy(p: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    p = torch.clamp(p, EPS, 1 - EPS)
    one_hot = nn.functional.one_hot(y, num_classes=p.shape[1]).to(p.dtype)
    return -torch.mean(torch.sum(one_hot * torch.log(p), dim=1))


class ManualSoftmax(TensorParams):
    def __init__(self, n_features: int, n_classes: int, lr: float):
        self.lr = lr
        self.W = torch.zeros((n_features, n_classes), requires_grad=True)
        self.b = torch.zeros(n_classes, requires_grad=True)
        self.params = {"W": self.W, "b": self.b}

    def logits(self, x):
        return x @ self.W + self.b

    def loss(self, logits, y):
        return cross_entropy(softmax(logits), y)

    def step(self, x, y):
        z = self.logits(x)
        loss = self.loss(z, y)
        loss.backward()
        with torch.no_grad():
            self.W -= self.lr * self.W.grad
            self.b -= self.lr * self.b.grad
        self.W.grad.zero_()
        self.b.grad.zero_()
        return loss.detach(), z.detach()


class HandgradSoftmax(ManualSoftmax):
    def __init__(self, n_features: int, n_classes: int, lr: float):
        super().__init__(n_features, n_classes, lr)
        self.W.requires_grad_(False)
        self.b.requires_grad_(False)

    def step(self, x, y):
        z = torch.addmm(self.b, x, self.W)
        p = torch.softmax(z, dim=1)  # the same max-subtracted softmax as above, as one kernel
        rows = y.unsqueeze(1)
        p_true = p.gather(1, rows)
        loss = -torch.log(p_true.clamp(EPS, 1 - EPS)).mean()
        grad_z = p.scatter(1, rows, p_true - 1)  # p - onehot, times B; 1/B folds into the step size
        step_size = -self.lr / x.shape[0]
        self.W.addmm_(x.t(), grad_z, alpha=step_size)
        self.b.add_(grad_z.sum(0), alpha=step_size)
        return loss, z


def manual(cfg, n_features, n_classes, generator):
    return ManualSoftmax(n_features, n_classes, cfg.lr)


def handgrad(cfg, n_features, n_classes, generator):
    return HandgradSoftmax(n_features, n_classes, cfg.lr)


def builtin(cfg, n_features, n_classes, generator):
    linear = nn.Linear(n_features, n_classes)
    nn.init.zeros_(linear.weight)
    nn.init.zeros_(linear.bias)
    return Builtin(linear, nn.CrossEntropyLoss(), cfg.lr)


def sklearn(cfg, n_features, n_classes, generator):
    from sklearn.linear_model import LogisticRegression

    # lbfgs fits the multinomial model (the only multi-class mode left in recent scikit-learn)
    return Sklearn(LogisticRegression(max_iter=100, random_state=cfg.seed), binary=False)


IMPLEMENTATIONS = {"manual": manual, "handgrad": handgrad, "builtin": builtin, "sklearn": sklearn}
