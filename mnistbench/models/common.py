"""Pieces shared by the implementations: hand-written parameter handling, the builtin (torch.nn) wrapper
and the scikit-learn one. Each meets models.contract."""
from __future__ import annotations

import warnings

import numpy as np
import torch
from torch import nn

from .contract import ModeSwitches
from .precision import FLOAT32, Precision, autocast


class TensorParams(ModeSwitches):
    """Mixin for hand-written models holding their parameters in `self.params` (name -> tensor)."""

    params: dict

    def autograd_sgd_(self, loss) -> None:
        """The notebook's update: the loss's gradients by autograd (grad() rather than backward() leaves no
        .grad to accumulate and zero), then p -= lr * grad in place, for every parameter."""
        params = list(self.params.values())
        grads = torch.autograd.grad(loss, params)
        with torch.no_grad():
            for param, grad in zip(params, grads):
                param.sub_(grad, alpha=self.lr)

    def state_dict(self) -> dict:
        return {name: p.detach().clone() for name, p in self.params.items()}

    def load_state_dict(self, state: dict) -> None:
        with torch.no_grad():
            for name, p in self.params.items():
                p.copy_(state[name])

    def to(self, device):
        for name, p in self.params.items():
            moved = p.detach().to(device).requires_grad_(p.requires_grad)
            self.params[name] = moved
            setattr(self, name, moved)
        return self


class Builtin:
    """torch.nn module + torch loss + torch.optim.SGD: the framework's own way, one step per batch.

    precision bf16: forward and loss run under torch.autocast (bf16 products on the float32 parameters,
    which stay the optimiser's masters); the loss itself is taken in float32, as autocast does for
    cross-entropy, and evaluation (logits) runs under the same autocast as training."""

    def __init__(self, module: nn.Module, criterion: nn.Module, lr: float, binary: bool = False,
                 precision: Precision = FLOAT32):
        self.module, self.criterion, self.lr, self.binary = module, criterion, lr, binary
        self.precision = precision
        self.optimizer = torch.optim.SGD(module.parameters(), lr=lr)

    def logits(self, x):
        with autocast(self.precision, x.device):
            return self.module(x)

    def loss(self, logits, y):
        logits = self.precision.result(logits)  # bf16 logits (autocast's) are scored in float32
        if self.binary:  # BCEWithLogitsLoss wants float targets shaped like the logits
            return self.criterion(logits.reshape(-1), y.to(logits.dtype))
        return self.criterion(logits, y)

    def step(self, x, y):
        self.optimizer.zero_grad(set_to_none=True)
        with autocast(self.precision, x.device):
            out = self.module(x)
            loss = self.loss(out, y)
        loss.backward()
        self.optimizer.step()
        return loss.detach(), out.detach()

    def state_dict(self):
        return {k: v.detach().clone() for k, v in self.module.state_dict().items()}

    def load_state_dict(self, state):
        self.module.load_state_dict(state)

    def to(self, device):
        self.module.to(device)  # in place: the optimizer keeps pointing at the same parameters
        return self

    def train(self):
        self.module.train()
        return self

    def eval(self):
        self.module.eval()
        return self


class Sklearn(ModeSwitches):
    """A scikit-learn estimator behind the same evaluate() interface; trains once with fit()."""

    def __init__(self, estimator, binary: bool):
        self.estimator, self.binary = estimator, binary
        self.device = torch.device("cpu")

    def fit(self, x, y):
        """Fit; return (solver iterations, converged). max_iter=100 is the notebook's, so lbfgs on the
        full softmax problem stops before scikit-learn's tolerance: that is recorded, not hidden."""
        from sklearn.exceptions import ConvergenceWarning

        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", ConvergenceWarning)
            self.estimator.fit(x.detach().cpu().numpy(), y.detach().cpu().numpy())
        converged = not any(issubclass(w.category, ConvergenceWarning) for w in caught)
        n_iter = int(np.max(getattr(self.estimator, "n_iter_", [0])))
        return n_iter, converged

    def logits(self, x):
        scores = self.estimator.decision_function(x.detach().cpu().numpy())
        return torch.as_tensor(np.asarray(scores, dtype=np.float32)).to(x.device)

    def loss(self, logits, y):
        if self.binary:
            return nn.functional.binary_cross_entropy_with_logits(logits.reshape(-1), y.to(logits.dtype))
        return nn.functional.cross_entropy(logits, y)

    def state_dict(self):
        return {}

    def load_state_dict(self, state):
        pass

    def to(self, device):
        return self  # scikit-learn runs on the CPU; logits() moves its output to the input's device
