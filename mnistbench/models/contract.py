"""What the harness needs from a model: the contract every implementation, built in or plugged in, meets.

A factory, registered with `mnistbench.register` (or listed in a family module's IMPLEMENTATIONS), is
called as `factory(cfg, n_features, n_classes, generator) -> model`:
- cfg is the run's RunConfig (cfg.lr, cfg.hidden, cfg.seed...); n_features is 784 for MNIST; n_classes
  is the number of classes of the run (2 for a binary family);
- draw every random initial weight from `generator` (a CPU torch.Generator seeded with cfg.seed), in
  the same order as the implementation's twin, so that the two start from identical weights; create
  the weights on the CPU and let `to(device)` move them.

An *iterative* model (SGD style) is trained by mnistbench's one loop, which calls, per epoch,
`model.train()`, then `model.step(x, y)` once per shuffled batch, then `model.eval()` and
`model.logits(...)` / `model.loss(...)` on the validation split. A *fitted* model (scikit-learn) is
trained by one call to `fit`. Both are tested the same way. With early stopping on, the best epoch's
`state_dict()` is kept and restored with `load_state_dict()` at the end.

step() runs inside the timed loop: no host synchronisation in it (no .item(), float(), print(),
bool(tensor) or .cpu() of a device tensor, no torch.nn.functional.one_hot, which checks its labels on
the host). It returns (loss, logits) as device tensors, which the loop reads back once per epoch: the
batch's mean loss, or None to leave it to the loop, which then takes the epoch's training loss from
`loss()` over all the epoch's logits in one call (per-step checks use models.step_with_loss).

A registered implementation with a `twin` is checked against it by `mnistbench verify` (mnistbench.verify,
docs/verify.md): same start, same batches, then every step's loss, logits and parameters within tolerance.
How the parameters line up: by name when both state_dict()s use the same names (the documented layout:
nn.Linear's (out, in) weights, then biases, named as the twin names them); otherwise in order, an
(in, out) matrix against the twin's (out, in) one transposed (the linear families keep W as (in, out)).
Two optional methods:
- parity_state() -> dict: the parameters under the twin's names and layout, when neither rule fits;
- gradients(x, y) -> dict: name -> d(mean loss)/d(parameter) at the current weights, without updating,
  for the float64 finite-difference check; without it the check takes one update of a fresh model
  divided by cfg.lr, which is the gradient for plain SGD (and for momentum, whose first velocity is it).
"""
from __future__ import annotations

from typing import Protocol, runtime_checkable

import torch


@runtime_checkable
class Classifier(Protocol):
    """The part every model offers: logits, its own loss, state, device and mode switches."""

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        """(N, C) class scores for a float batch x (N, n_features), or (N, 1) / (N,) for a binary
        model (> 0 means class 1). Called under torch.no_grad() in eval mode."""

    def loss(self, logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """The implementation's own mean loss of logits against integer labels y (N,), as a 0-d tensor."""

    def state_dict(self) -> dict:
        """A copy of the weights (name -> tensor), detached from any later update."""

    def load_state_dict(self, state: dict) -> None:
        """Restore weights from a state_dict() of the same model, in place."""

    def to(self, device) -> Classifier:
        """Move the weights (and optimiser state) to device; returns the model."""

    def train(self) -> Classifier:
        """Training mode (dropout, batch norm on); the loop calls it before each epoch. Returns the model."""

    def eval(self) -> Classifier:
        """Evaluation mode; called before validation and test logits. Returns the model."""


@runtime_checkable
class IterativeClassifier(Classifier, Protocol):
    def step(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """One update on a batch x (B, n_features), y (B,) int64, both on the model's device.

        Returns (mean loss before the update, logits of the batch), detached device tensors: no host
        sync inside. The batch is a view the next epoch overwrites: do not keep it past the step.
        x is float32, or the model's `input_dtype` if it has one (an optional attribute, e.g.
        torch.bfloat16: train.inputs_for casts the training set to it once per run).
        """


@runtime_checkable
class FittedClassifier(Classifier, Protocol):
    def fit(self, x: torch.Tensor, y: torch.Tensor) -> tuple[int, bool]:
        """Train in one call on the whole training split. Returns (solver iterations, converged)."""


class ContractError(TypeError):
    """A registered factory returned an object that does not offer what the harness calls."""


def check(model, entry) -> None:
    """Raise ContractError naming the implementation, its origin and the missing methods, if `model`
    (built by `entry`, a registry.Implementation) does not offer the methods its kind needs."""
    protocol = IterativeClassifier if entry.iterative else FittedClassifier
    if isinstance(model, protocol):
        return
    missing = sorted(name for name in _methods(protocol) if not callable(getattr(model, name, None)))
    kind = "an iterative" if entry.iterative else "a fitted (non-iterative)"
    raise ContractError(f"{entry.family}/{entry.name} ({entry.origin}) is registered as {kind} model, but its "
                        f"factory returned a {type(model).__name__} without {', '.join(f'{m}()' for m in missing)}"
                        " (see mnistbench.models.contract)")


def _methods(protocol) -> list[str]:
    """The methods a contract Protocol declares (and those of the Protocols it extends)."""
    return [name for cls in protocol.__mro__ if cls.__module__ == __name__
            for name, value in vars(cls).items() if callable(value) and not name.startswith("_")]


class ModeSwitches:
    """train()/eval() for models without layers that behave differently in the two modes."""

    training: bool = True

    def train(self):
        self.training = True
        return self

    def eval(self):
        self.training = False
        return self
