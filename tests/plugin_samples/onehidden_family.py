"""A whole new model family as a plugin ships it (one module: defaults, data recipe, math, implementations):
a one-hidden-layer ReLU network on the softmax data. tests/test_plugins.py installs it through a real
entry point."""
from __future__ import annotations

import itertools

import torch
from torch import nn

from mnistbench import DataRecipe, Family, Implementation
from mnistbench.models.common import Builtin

FAMILY = Family(
    name="onehidden",
    description="784 -> one hidden ReLU layer -> 10, on the softmax data",
    defaults={"lr": 0.1, "batch_size": 32, "epochs": 3, "patience": None, "hidden": (16,)},
    recipe=DataRecipe(split="stratified"),
    uses_hidden=True,
    target_val_acc=0.5,
)


def layers(cfg, n_features, n_classes, generator) -> list[nn.Linear]:
    """The two layers, drawn from the generator in the same order for both implementations."""
    sizes = [n_features, cfg.hidden[0], n_classes]
    out = [nn.Linear(a, b) for a, b in itertools.pairwise(sizes)]
    with torch.no_grad():
        for layer in out:
            nn.init.kaiming_uniform_(layer.weight, nonlinearity="relu", generator=generator)
            layer.bias.zero_()
    return out


class ManualOneHidden:
    """The backward pass written by hand; weights named and laid out as nn.Sequential's."""

    def __init__(self, linears, lr):
        self.lr = lr
        self.params = {f"{2 * i}.{name}": getattr(layer, name).detach().clone()
                       for i, layer in enumerate(linears) for name in ("weight", "bias")}

    def logits(self, x):
        w0, b0, w1, b1 = self.params.values()
        return torch.addmm(b1, torch.relu(torch.addmm(b0, x, w0.t())), w1.t())

    def loss(self, logits, y):
        return nn.functional.cross_entropy(logits, y)

    def step(self, x, y):
        w0, b0, w1, b1 = self.params.values()
        hidden = torch.relu(torch.addmm(b0, x, w0.t()))
        z = torch.addmm(b1, hidden, w1.t())
        loss = self.loss(z, y)
        p = torch.softmax(z, dim=1)
        rows = y.unsqueeze(1)
        dz = p.scatter(1, rows, p.gather(1, rows) - 1) / x.shape[0]
        dh = (dz @ w1) * (hidden > 0)
        for param, grad in ((w1, dz.t() @ hidden), (b1, dz.sum(0)), (w0, dh.t() @ x), (b0, dh.sum(0))):
            param.sub_(grad, alpha=self.lr)
        return loss, z

    def state_dict(self):
        return {name: p.clone() for name, p in self.params.items()}

    def load_state_dict(self, state):
        for name, p in self.params.items():
            p.copy_(state[name])

    def to(self, device):
        self.params = {name: p.to(device) for name, p in self.params.items()}
        return self

    def train(self):
        return self

    def eval(self):
        return self


def manual(cfg, n_features, n_classes, generator):
    return ManualOneHidden(layers(cfg, n_features, n_classes, generator), cfg.lr)


def builtin(cfg, n_features, n_classes, generator):
    first, last = layers(cfg, n_features, n_classes, generator)
    return Builtin(nn.Sequential(first, nn.ReLU(), last), nn.CrossEntropyLoss(), cfg.lr)


IMPLEMENTATIONS = [
    Implementation("onehidden", "manual", manual, twin="builtin", description="backward pass by hand"),
    Implementation("onehidden", "builtin", builtin, description="nn.Sequential + CrossEntropyLoss + optim.SGD"),
]
