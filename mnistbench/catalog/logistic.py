"""Binary logistic regression (the notebook's first model): 784 pixels -> one logit. The math is in
mnistbench.models.logistic."""
from __future__ import annotations

from ..spec import DataRecipe, Family
from . import linear_implementations

FAMILY = Family(
    name="logistic",
    description="binary logistic regression on digits 0 and 1: 784 pixels -> one logit",
    defaults=dict(lr=0.01, batch_size=64, epochs=100, patience=None),
    recipe=DataRecipe(classes=(0, 1), split="stratified"),
    n_classes=2,
    target_val_acc=0.99,
    position=0,  # the notebook's order
)


def flops_per_sample(cfg, n_features, n_classes) -> int:
    """Matmul FLOPs of one training sample: the forward 2·in·out and dW 2·in·out (one logit)."""
    return 4 * n_features * 1


IMPLEMENTATIONS = linear_implementations("logistic", {
    "manual": "the notebook's code: sigmoid 1/(1+e^-z), clamped BCE, autograd, SGD by hand",
    "handgrad": "the same loss with the gradient (p - y)/B written by hand, no autograd",
    "builtin": "nn.Linear + BCEWithLogitsLoss + optim.SGD, from the same zero weights",
    "sklearn": "LogisticRegression(solver='liblinear', max_iter=100)",
})
