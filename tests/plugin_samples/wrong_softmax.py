"""A softmax regression written independently, W kept as (in, out) like mnistbench's linear families (so
verify must line W up with nn.Linear's (out, in) weight), correct by default, and mistakes one switch
away. Registered in-process by tests/test_verify.py with twin softmax/builtin (zero start)."""
from __future__ import annotations

import torch

from mnistbench.models.contract import ModeSwitches


class HandSoftmax(ModeSwitches):
    def __init__(self, cfg, n_features, n_classes, grad_scale=1.0, update_bias=True, lr_scale_from=None,
                 sum_loss=False):
        self.lr, self.grad_scale, self.update_bias = cfg.lr, grad_scale, update_bias
        self.lr_scale_from, self.sum_loss, self.steps = lr_scale_from, sum_loss, 0
        self.W, self.b = torch.zeros(n_features, n_classes), torch.zeros(n_classes)

    def logits(self, x):
        return x @ self.W + self.b

    def loss(self, logits, y):
        log_p = logits - torch.logsumexp(logits, dim=1, keepdim=True)
        return -log_p[torch.arange(len(y)), y].mean()

    def step(self, x, y):
        self.steps += 1
        z = self.logits(x)
        grad = torch.softmax(z, dim=1)
        grad[torch.arange(len(y)), y] -= 1
        grad = grad * self.grad_scale / (1 if self.sum_loss else len(y))
        lr = self.lr * (2 if self.lr_scale_from is not None and self.steps >= self.lr_scale_from else 1)
        self.W -= lr * x.t() @ grad
        if self.update_bias:
            self.b -= lr * grad.sum(0)
        return self.loss(z, y), z

    def state_dict(self):
        return {"W": self.W.clone(), "b": self.b.clone()}

    def load_state_dict(self, state):
        self.W.copy_(state["W"])
        self.b.copy_(state["b"])

    def to(self, device):
        self.W, self.b = self.W.to(device), self.b.to(device)
        return self


def factory(**mistake):
    return lambda cfg, n_features, n_classes, generator: HandSoftmax(cfg, n_features, n_classes, **mistake)


FACTORIES = {
    "hand": factory(),
    "no_bias_update": factory(update_bias=False),
    "grad_times_1001": factory(grad_scale=1.001),
    "lr_doubled_from_51": factory(lr_scale_from=51),
    "sum_not_mean": factory(sum_loss=True),
}
