"""Softmax (multinomial logistic) regression: 784 pixels -> one logit per class. The math is in
mnistbench.models.softmax."""
from __future__ import annotations

from ..spec import DataRecipe, Family
from . import linear_implementations

FAMILY = Family(
    name="softmax",
    description="softmax (multinomial logistic) regression: 784 pixels -> one logit per digit",
    defaults=dict(lr=0.01, batch_size=64, epochs=100, patience=None),
    recipe=DataRecipe(split="stratified"),
    target_val_acc=0.90,
    position=1,  # the notebook's order
)


def flops_per_sample(cfg, n_features, n_classes) -> int:
    """Matmul FLOPs of one training sample: the forward 2·in·out and dW 2·in·out."""
    return 4 * n_features * n_classes


IMPLEMENTATIONS = linear_implementations("softmax", {
    "manual": "the notebook's code: max-subtracted softmax, clamped one-hot CE, autograd",
    "handgrad": "the same loss with the gradient (p - onehot)/B written by hand",
    "builtin": "nn.Linear + CrossEntropyLoss + optim.SGD, from the same zero weights",
    "sklearn": "multinomial LogisticRegression (lbfgs, max_iter=100)",
})
