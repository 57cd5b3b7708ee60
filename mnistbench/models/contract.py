"""What the harness needs from a model: the contract every implementation, built in or plugged in, meets.

An *iterative* model (SGD-style) is trained by train.fit one batch at a time; a *fitted* model
(scikit-learn) trains in one call. Both are evaluated the same way. Factories (registered with
`mnistbench.register`) have the signature `factory(cfg, n_features, n_classes, generator) -> model`;
draw every random initial weight from `generator` (seeded by cfg.seed) on the CPU, so that a model and
its twin start from the same weights on any device, and let `to(device)` move them.
"""
from __future__ import annotations

from typing import Protocol, runtime_checkable

import torch


@runtime_checkable
class Classifier(Protocol):
    """The part every model offers: logits, its own loss, state, device and mode switches."""

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        """(N, C) class scores, or (N, 1) / (N,) for a binary model (> 0 means class 1)."""

    def loss(self, logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """The implementation's own mean loss of logits against integer labels y (a 0-d tensor)."""

    def state_dict(self) -> dict:
        """A copy of the weights (early stopping keeps the best one)."""

    def load_state_dict(self, state: dict) -> None:
        """Restore weights from state_dict()."""

    def to(self, device) -> Classifier:
        """Move the weights to device; returns the model."""

    def train(self) -> Classifier:
        """Training mode (dropout, batch norm on); train.fit calls it before each epoch."""

    def eval(self) -> Classifier:
        """Evaluation mode; train.evaluate calls it before computing logits."""


@runtime_checkable
class IterativeClassifier(Classifier, Protocol):
    def step(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """One update on a batch. Returns (mean loss, logits) as device tensors: no host sync inside."""


@runtime_checkable
class FittedClassifier(Classifier, Protocol):
    def fit(self, x: torch.Tensor, y: torch.Tensor) -> tuple[int, bool]:
        """Train in one call. Returns (solver iterations, converged)."""


class ModeSwitches:
    """train()/eval() for models without layers that behave differently in the two modes."""

    training: bool = True

    def train(self):
        self.training = True
        return self

    def eval(self):
        self.training = False
        return self
