"""An MLP written independently of mnistbench's (its own forward, backward and SGD), correct by default,
and the mistakes `mnistbench verify` must catch, each one switch away. Registered in-process by
tests/test_verify.py as mlp implementations whose twin is mlp/builtin; weights from the same generator
draws (mlp.init_linear_), named and laid out as nn.Sequential's."""
from __future__ import annotations

import torch

from mnistbench.models import mlp
from mnistbench.models.contract import ModeSwitches


class HandMLP(ModeSwitches):
    def __init__(self, cfg, n_features, n_classes, generator, relu_mask_first=True, grad_scale=1.0,
                 update_bias=True, bias_frozen_from=None):
        self.lr, self.grad_scale, self.update_bias = cfg.lr, grad_scale, update_bias
        self.relu_mask_first, self.bias_frozen_from, self.steps = relu_mask_first, bias_frozen_from, 0
        sizes = [n_features, *cfg.hidden, n_classes]
        self.weights, self.biases = [], []
        for i, (fan_in, fan_out) in enumerate(zip(sizes, sizes[1:])):
            weight, bias = torch.empty(fan_out, fan_in), torch.empty(fan_out)
            mlp.init_linear_(weight, bias, last=i == len(sizes) - 2, generator=generator)
            self.weights.append(weight)
            self.biases.append(bias)

    def forward(self, x):
        activations = [x]
        for i, (weight, bias) in enumerate(zip(self.weights, self.biases)):
            z = activations[-1] @ weight.t() + bias
            activations.append(z if i == len(self.weights) - 1 else z.clamp(min=0))
        return activations

    def logits(self, x):
        return self.forward(x)[-1]

    def loss(self, logits, y):
        return torch.nn.functional.cross_entropy(logits, y)

    def step(self, x, y):
        self.steps += 1
        activations = self.forward(x)
        z = activations[-1]
        grad = torch.softmax(z, dim=1)
        grad[torch.arange(len(y)), y] -= 1
        grad = grad / len(y) * self.grad_scale
        for i in reversed(range(len(self.weights))):
            below = grad @ self.weights[i]
            mask = activations[i] > 0
            if i > 1 or (i == 1 and self.relu_mask_first):  # layer 0's input is x: no mask there
                below = below * mask
            self.weights[i] -= self.lr * grad.t() @ activations[i]
            frozen = self.bias_frozen_from is not None and self.steps >= self.bias_frozen_from
            if self.update_bias and not frozen:
                self.biases[i] -= self.lr * grad.sum(0)
            grad = below
        return self.loss(z, y), z

    def state_dict(self):
        return {f"{2 * i}.{kind}": t.clone() for i, pair in enumerate(zip(self.weights, self.biases))
                for kind, t in zip(("weight", "bias"), pair)}

    def load_state_dict(self, state):
        for i in range(len(self.weights)):
            self.weights[i].copy_(state[f"{2 * i}.weight"])
            self.biases[i].copy_(state[f"{2 * i}.bias"])

    def to(self, device):
        self.weights = [w.to(device) for w in self.weights]
        self.biases = [b.to(device) for b in self.biases]
        return self


def factory(**mistake):
    return lambda cfg, n_features, n_classes, generator: HandMLP(cfg, n_features, n_classes, generator, **mistake)


FACTORIES = {
    "hand": factory(),
    "no_relu_mask_first": factory(relu_mask_first=False),  # the ReLU mask left out of the first hidden layer
    "grad_times_1001": factory(grad_scale=1.001),
    "no_bias_update": factory(update_bias=False),
    "bias_frozen_from_51": factory(bias_frozen_from=51),  # right for 50 steps, wrong from step 51
}
