"""Softmax regression trained with SGD + momentum, written by hand: an example mnistbench plugin.

Installed, it adds two implementations to mnistbench's softmax family (through the entry point in
pyproject.toml, which names this module; mnistbench registers its IMPLEMENTATIONS):
  momentum:          the model, its loss, its gradient and the momentum update, all by hand;
  builtin_momentum:  its twin, the framework's way: mnistbench's softmax `builtin` (nn.Linear +
                     CrossEntropyLoss, from the same zero weights) with torch.optim.SGD(momentum=0.9).
mnistbench's test suite checks `momentum` against its twin step by step (losses and weights within 1e-5).
"""
from __future__ import annotations

import torch

from mnistbench import Implementation
from mnistbench.models import softmax

MOMENTUM = 0.9


class MomentumSoftmax:
    """The whole model contract (mnistbench.models.contract), spelt out.

    The weights are laid out as nn.Linear keeps them, weight (classes, features) and bias (classes,),
    so that state_dict() lines up with the twin's.
    """

    def __init__(self, n_features: int, n_classes: int, lr: float):
        self.lr = lr
        self.weight = torch.zeros(n_classes, n_features)  # zeros: no random draw, the twin starts here too
        self.bias = torch.zeros(n_classes)
        self.velocity = [torch.zeros_like(self.weight), torch.zeros_like(self.bias)]

    def logits(self, x):
        return torch.addmm(self.bias, x, self.weight.t())

    def loss(self, logits, y):
        """Mean cross-entropy of the softmax of logits against integer labels."""
        return -torch.log_softmax(logits, dim=1).gather(1, y.unsqueeze(1)).mean()

    def step(self, x, y):
        """One update. Everything stays on the device: no .item(), no one_hot (it checks labels on the host)."""
        z = self.logits(x)
        loss = self.loss(z, y)
        p = torch.softmax(z, dim=1)
        rows = y.unsqueeze(1)
        grad_z = p.scatter(1, rows, p.gather(1, rows) - 1) / x.shape[0]  # dL/dz = (p - onehot) / B
        grads = [grad_z.t() @ x, grad_z.sum(0)]
        # torch.optim.SGD's form of momentum: v = momentum * v + grad, then w -= lr * v
        for param, velocity, grad in zip((self.weight, self.bias), self.velocity, grads):
            velocity.mul_(MOMENTUM).add_(grad)
            param.sub_(velocity, alpha=self.lr)
        return loss, z

    def state_dict(self):
        return {"weight": self.weight.clone(), "bias": self.bias.clone()}

    def load_state_dict(self, state):
        self.weight.copy_(state["weight"])
        self.bias.copy_(state["bias"])

    def to(self, device):
        self.weight, self.bias = self.weight.to(device), self.bias.to(device)
        self.velocity = [v.to(device) for v in self.velocity]
        return self

    def train(self):  # no dropout or batch norm: both modes are the same
        return self

    def eval(self):
        return self


def momentum(cfg, n_features, n_classes, generator):
    return MomentumSoftmax(n_features, n_classes, cfg.lr)


def builtin_momentum(cfg, n_features, n_classes, generator):
    """mnistbench's own softmax `builtin` (nn.Linear from zero weights, CrossEntropyLoss), with momentum."""
    model = softmax.builtin(cfg, n_features, n_classes, generator)
    model.optimizer = torch.optim.SGD(model.module.parameters(), lr=cfg.lr, momentum=MOMENTUM)
    return model


IMPLEMENTATIONS = [
    Implementation("softmax", "momentum", momentum, twin="builtin_momentum",
                   description=f"SGD + momentum {MOMENTUM} written by hand: gradient, velocity and update"),
    Implementation("softmax", "builtin_momentum", builtin_momentum,
                   description=f"the softmax builtin with optim.SGD(momentum={MOMENTUM})"),
]
