"""Hand-written gradients against finite differences, in float64, with torch.autograd.gradcheck.

The gradient comes from the model's optional gradients(x, y) (models.contract), else from one update of a
fresh model divided by the learning rate, which is the gradient for SGD (with or without momentum: the
first velocity is the gradient). gradcheck then compares it with central differences of the model's own
loss(logits(x), y), in fast mode (random projections u·J·v: a handful of forward passes, not one per
weight), at autograd.gradcheck's eps 1e-6, atol 1e-5, rtol 1e-3.
"""
from __future__ import annotations

import torch

from .building import builder, default_dtype

EPS, ATOL, RTOL = 1e-6, 1e-5, 1e-3


def hand_gradients(model, x, y, lr: float) -> dict:
    """name -> dL/dparam at the model's current weights, by gradients() or (before - after) / lr."""
    offered = getattr(model, "gradients", None)
    if callable(offered):
        return {name: g.detach() for name, g in offered(x, y).items()}
    before = {name: t.detach().clone() for name, t in model.state_dict().items()}
    model.train()
    model.step(x, y)
    after = model.state_dict()
    return {name: (before[name] - after[name].detach()) / lr for name in before if before[name].is_floating_point()}


def check_gradients(entry, cfg, x, y, n_classes: int) -> str:
    """"pass", "fail: <which parameter>", or "n/a: <why>" for the implementation of cfg on one batch."""
    if "float64" not in entry.dtypes:
        return "n/a: the implementation does not declare float64"
    cfg = cfg.__class__(**{**cfg.__dict__, "dtype": "float64"})
    build = builder(cfg, x.shape[1], n_classes)
    x = x.double()
    with default_dtype("float64"):
        start = build().state_dict()
        names = [name for name, t in start.items() if t.is_floating_point()]
        grads = hand_gradients(build(), x, y, cfg.lr)
        if set(names) - set(grads):
            return f"n/a: gradients() leaves out {', '.join(sorted(set(names) - set(grads)))}"
        probe = build()

        class Loss(torch.autograd.Function):
            """Forward: the model's own loss at the given weights; backward: the hand-written gradient."""

            @staticmethod
            def forward(ctx, *params):
                probe.load_state_dict({**start, **dict(zip(names, params))})
                with torch.no_grad():
                    return probe.loss(probe.logits(x), y).double()

            @staticmethod
            def backward(ctx, grad_out):
                return tuple(grad_out * grads[name].double() for name in names)

        failures = []
        for i, name in enumerate(names):  # one parameter at a time, so that a failure is named
            def loss_of(param, i=i):
                params = [start[n].double() for n in names]
                params[i] = param
                return Loss.apply(*params)

            param = start[name].double().clone().requires_grad_(True)
            if not torch.autograd.gradcheck(loss_of, (param,), eps=EPS, atol=ATOL, rtol=RTOL, fast_mode=True,
                                            raise_exception=False):
                failures.append(name)
    return f"fail: {', '.join(failures)}" if failures else "pass"
