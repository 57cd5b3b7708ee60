"""Feed-forward ReLU network 784-512-128-10 (hidden sizes configurable).

manual:  the notebook's ManualFeedForward: Kaiming-uniform (ReLU) hidden weights, Xavier-uniform last
         layer, zero biases; the forward pass caches pre-activations and activations; the backward pass
         is written by hand (softmax-CE delta, ReLU masks), no autograd; SGD by hand.
builtin: the same layers in nn.Sequential, CrossEntropyLoss, autograd and optim.SGD, initialised
         from the same generator so that both start from identical weights.
With --dtype bfloat16 (models.precision) the manual model runs every product in bf16 on float32 master
weights (activations are kept in bf16 for the backward products; softmax, loss and delta are float32);
the builtin one runs under torch.autocast.
"""
from __future__ import annotations

import torch
from torch import nn

from ..config import DTYPES
from ..registry import DataRecipe, Family, Implementation
from . import precision
from .common import Builtin, TensorParams

MEAN, STD = 0.1307, 0.3081  # the notebook's Normalize((0.1307,), (0.3081,))
FAMILY = Family(
    name="mlp",
    description="feed-forward ReLU network 784-512-128-10 (hidden sizes configurable)",
    defaults=dict(lr=0.01, batch_size=64, epochs=40, patience=3, hidden=(512, 128)),
    recipe=DataRecipe(split="holdout", standardize=(MEAN, STD)),
    uses_hidden=True,
    target_val_acc=0.97,
    position=2,  # the notebook's order
)


def layer_sizes(cfg, n_features, n_classes) -> list[int]:
    return [n_features, *cfg.hidden, n_classes]


def init_linear_(weight: torch.Tensor, bias: torch.Tensor, last: bool, generator) -> None:
    """The notebook's initialisation; drawing from `generator` makes manual and builtin identical."""
    with torch.no_grad():
        if last:
            nn.init.xavier_uniform_(weight, generator=generator)
        else:
            nn.init.kaiming_uniform_(weight, nonlinearity="relu", generator=generator)
        bias.zero_()


class ManualMLP(TensorParams):
    def __init__(self, sizes: list[int], lr: float, generator, prec=precision.FLOAT32):
        self.lr, self.prec = lr, prec
        self.params = {}
        n_layers = len(sizes) - 1
        for i in range(n_layers):
            weight = torch.empty(sizes[i + 1], sizes[i])  # (out, in), as nn.Linear stores it
            bias = torch.empty(sizes[i + 1])
            init_linear_(weight, bias, last=i == n_layers - 1, generator=generator)
            self.params[f"{2 * i}.weight"] = weight  # the names nn.Sequential gives its Linear layers
            self.params[f"{2 * i}.bias"] = bias
        self.to("cpu")

    @property
    def layers(self) -> list[tuple[torch.Tensor, torch.Tensor]]:
        tensors = list(self.params.values())
        return list(zip(tensors[0::2], tensors[1::2]))

    def forward(self, x):
        """Float32 logits, plus the cached inputs of every layer and the weights as the products used them
        (bf16 copies in bf16; the masters themselves in float32) for the backward pass."""
        cast = self.prec.cast
        inputs, weights = [], []
        out = cast(x)
        layers = self.layers
        for i, (weight, bias) in enumerate(layers):
            inputs.append(out)
            weights.append(cast(weight))
            out = torch.addmm(cast(bias), out, weights[-1].t())
            if i < len(layers) - 1:
                out = torch.relu(out)
        return self.prec.result(out), inputs, weights

    def logits(self, x):
        return self.forward(x)[0]

    def loss(self, logits, y):
        """The notebook's loss: -log(softmax(z)[y] + 1e-9), averaged over the batch."""
        probs = torch.softmax(logits, dim=1)
        return -torch.log(probs.gather(1, y.unsqueeze(1)) + 1e-9).mean()

    def step(self, x, y):
        logits, inputs, weights = self.forward(x)
        probs = torch.softmax(logits, dim=1)
        rows = y.unsqueeze(1)
        p_true = probs.gather(1, rows)
        loss = -torch.log(p_true + 1e-9).mean()
        delta = probs.scatter(1, rows, p_true - 1)  # (softmax - onehot) * B; 1/B folds into the step
        step_size = -self.lr / x.shape[0]
        layers = self.layers
        for i in reversed(range(len(layers))):
            weight, bias = layers[i]
            delta = self.prec.cast(delta)
            if i > 0:  # the delta for the layer below uses this layer's weights before their update
                below = delta @ weights[i]
                below.mul_(inputs[i] > 0)  # ReLU mask: the layer input is relu(z), > 0 exactly where z > 0
            self.prec.addmm_(weight, delta.t(), inputs[i], step_size)
            bias.add_(delta.sum(0), alpha=step_size)
            if i > 0:
                delta = below
        return loss, logits

    # the manual model needs no autograd anywhere
    def to(self, device):
        for name, p in self.params.items():
            self.params[name] = p.detach().to(device).requires_grad_(False)
        return self


def manual(cfg, n_features, n_classes, generator):
    return ManualMLP(layer_sizes(cfg, n_features, n_classes), cfg.lr, generator, precision.of(cfg))


def builtin(cfg, n_features, n_classes, generator):
    sizes = layer_sizes(cfg, n_features, n_classes)
    layers = []
    for i in range(len(sizes) - 1):
        linear = nn.Linear(sizes[i], sizes[i + 1])
        init_linear_(linear.weight, linear.bias, last=i == len(sizes) - 2, generator=generator)
        layers += [linear, nn.ReLU()]
    return Builtin(nn.Sequential(*layers[:-1]), nn.CrossEntropyLoss(), cfg.lr, precision=precision.of(cfg))


IMPLEMENTATIONS = [
    Implementation("mlp", "manual", manual, twin="builtin", dtypes=DTYPES,
                   description="the notebook's ManualFeedForward: backward pass written by hand, SGD by hand"),
    Implementation("mlp", "builtin", builtin, dtypes=DTYPES,
                   description="the same layers in nn.Sequential, CrossEntropyLoss, autograd, optim.SGD"),
]
