"""Every manual implementation against its builtin twin, micrograd-style: same start, same batches,
same per-step losses and final parameters within 1e-5; the MLP's hand-written gradients against autograd."""
from __future__ import annotations

import pytest
import torch

from mnistbench import models, registry
from mnistbench.config import for_family
from mnistbench.testing import assert_trajectories_agree

TOL = 1e-5


def batches(n_features, n_classes, steps=25, batch=64, seed=0, binary=False, standardize=False):
    """MNIST-like batches: about a fifth of the pixels lit, values in [0, 1] (standardised for the MLP)."""
    gen = torch.Generator().manual_seed(seed)
    out = []
    for _ in range(steps):
        x = torch.rand(batch, n_features, generator=gen)
        x = x * (torch.rand(batch, n_features, generator=gen) < 0.2)
        if standardize:
            x = (x - 0.1307) / 0.3081
        y = torch.randint(0, 2 if binary else n_classes, (batch,), generator=gen)
        out.append((x, y))
    return out


def params_of(model) -> list[torch.Tensor]:
    """Parameters in a comparable layout: (out, in) weights as nn.Linear keeps them."""
    state = model.state_dict()
    if "W" in state:  # hand-written linear models keep W as (in, out)
        return [state["W"].t(), state["b"]]
    return list(state.values())


def trajectory(model, data):
    losses = [float(models.step_with_loss(model, x, y)[0]) for x, y in data]
    return torch.tensor(losses), params_of(model)


def assert_same_trajectory(build, build_twin, family: str) -> None:
    """Two models of `family` from their builders (no argument): identical start, then every step's loss,
    logits and parameters within tolerance over the same batches, by the one comparison `mnistbench
    verify` makes (mnistbench.testing.assert_trajectories_agree)."""
    recipe, n_classes = registry.family(family).recipe, registry.family(family).n_classes or 10
    for pa, pb in zip(params_of(build()), params_of(build_twin())):
        assert torch.equal(pa, pb), "twins must start from identical weights"
    start = params_of(build())
    data = batches(784, n_classes, binary=n_classes == 2, standardize=recipe.standardize is not None)
    comparison = assert_trajectories_agree(build, build_twin, data)
    assert comparison.steps >= 20
    moved = build()
    for x, y in data:
        moved.step(x, y)
    assert max(float((p - p0).abs().max()) for p, p0 in zip(params_of(moved), start)) > 1e-3, \
        "the test must move the weights to mean anything"


# every registered implementation with a twin (built in, and any plugin installed), plus handgrad vs manual
TWINS = [(e.family, e.name, e.twin) for e in registry.implementations() if e.twin]
TWINS += [(f, "handgrad", "manual") for f in registry.families() if {"handgrad", "manual"} <= set(registry.impl_names(f))]


@pytest.mark.parametrize("family, impl, twin", TWINS, ids=[f"{f}-{i}-{t}" for f, i, t in TWINS])
def test_same_trajectory_as_twin(family, impl, twin):
    n_classes = registry.family(family).n_classes or 10
    hidden = {"hidden": (32, 16)} if registry.family(family).uses_hidden else {}
    configs = [for_family(family, name, **hidden) for name in (impl, twin)]  # the family's own lr
    assert_same_trajectory(*[lambda cfg=cfg: models.build(cfg, 784, n_classes) for cfg in configs], family)


def test_every_built_in_twin_is_checked():
    assert {("logistic", "manual", "builtin"), ("logistic", "handgrad", "builtin"), ("softmax", "manual", "builtin"),
            ("softmax", "handgrad", "builtin"), ("mlp", "manual", "builtin")} <= set(TWINS)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_mlp_handwritten_gradients_equal_autograd(seed):
    cfg = for_family("mlp", "manual", lr=1.0, hidden=(64, 32), seed=seed)
    manual = models.build(cfg, 784, 10)
    twin = models.build(for_family("mlp", "builtin", lr=1.0, hidden=(64, 32), seed=seed), 784, 10)
    (x, y), = batches(784, 10, steps=1, batch=48, seed=seed + 10, standardize=True)
    before = manual.state_dict()
    manual.step(x, y)
    # with lr = 1, old - new is exactly the gradient the hand-written backward computed
    hand_grads = {name: before[name] - p for name, p in manual.state_dict().items()}
    twin.module.zero_grad()
    twin.loss(twin.module(x), y).backward()
    auto_grads = {name: p.grad for name, p in twin.module.named_parameters()}
    assert hand_grads.keys() == auto_grads.keys()
    for name in hand_grads:
        assert auto_grads[name].abs().max() > 0, name
        torch.testing.assert_close(hand_grads[name], auto_grads[name], atol=TOL, rtol=0)


@pytest.mark.parametrize("family", ["logistic", "softmax", "mlp"])
def test_forward_and_loss_match_twin(family):
    n_classes = 2 if family == "logistic" else 10
    manual = models.build(for_family(family, "manual", hidden=(32, 16)), 784, n_classes)
    twin = models.build(for_family(family, "builtin", hidden=(32, 16)), 784, n_classes)
    (x, y), = batches(784, n_classes, steps=1, binary=family == "logistic", standardize=family == "mlp")
    if family != "mlp":  # start both linear models away from zero so the forward pass means something
        gen = torch.Generator().manual_seed(3)
        w = torch.randn(784, 1 if family == "logistic" else 10, generator=gen) * 0.05
        manual.load_state_dict({"W": w, "b": torch.full((w.shape[1],), 0.1)})
        twin.load_state_dict({"weight": w.t().clone(), "bias": torch.full((w.shape[1],), 0.1)})
    with torch.no_grad():
        logits_manual, logits_twin = manual.logits(x), twin.logits(x)
        torch.testing.assert_close(logits_manual.reshape(-1), logits_twin.reshape(-1), atol=TOL, rtol=0)
        torch.testing.assert_close(manual.loss(logits_manual, y), twin.loss(logits_twin, y), atol=TOL, rtol=0)


def test_registry_has_every_required_pair():
    required = {("logistic", i) for i in ("manual", "builtin", "sklearn")}
    required |= {("softmax", i) for i in ("manual", "builtin", "sklearn")}
    required |= {("mlp", "manual"), ("mlp", "builtin")}
    assert required <= {(e.family, e.name) for e in registry.implementations()}


def test_manual_mlp_uses_no_autograd():
    model = models.build(for_family("mlp", "manual", hidden=(16,)), 784, 10)
    (x, y), = batches(784, 10, steps=1)
    loss, logits = model.step(x, y)
    assert loss is None and not logits.requires_grad  # its loss is left to the loop (models.step_with_loss)
    assert all(not p.requires_grad for p in model.params.values())


def test_predictions_binary_and_multiclass():
    assert models.predictions(torch.tensor([[-1.0], [0.0], [2.0]])).tolist() == [0, 0, 1]
    assert models.predictions(torch.tensor([[0.1, 0.5, 0.2], [3.0, 0.0, 1.0]])).tolist() == [1, 0]


def test_a_step_that_leaves_its_loss_to_the_loop_gets_the_epochs_mean_of_its_batches():
    """The manual MLP's step returns no loss; the epoch's training loss is then loss() over all the epoch's
    logits: the mean over samples of the per-batch losses, the short last batch weighted by its size."""
    from mnistbench import train

    model = models.build(for_family("mlp", "manual", hidden=(16,)), 20, 10)
    seen = []
    step = model.step

    def recording_step(x, y):
        loss, logits = step(x, y)
        seen.append((loss, model.loss(logits, y), len(y)))
        return loss, logits

    model.step = recording_step
    gen = torch.Generator().manual_seed(0)
    x, y = torch.rand(150, 20, generator=gen), torch.randint(0, 10, (150,), generator=gen)
    mean_loss, correct, n = train.train_epoch(model, x, y, 64, torch.Generator().manual_seed(1))
    assert n == 150 and [size for *_, size in seen] == [64, 64, 22]
    assert all(loss is None for loss, *_ in seen)
    by_batch = sum(float(batch_loss) * size for _, batch_loss, size in seen) / n
    assert float(mean_loss) == pytest.approx(by_batch, rel=1e-6)
    assert 0 <= int(correct) <= n
