"""Defects found in use, each pinned by a test that fails without its fix."""
from __future__ import annotations

import math

import pytest
import torch

from mnistbench import cli, data, harness, registry, results, train
from mnistbench.config import for_family


def test_sweep_over_hidden_sizes_does_not_repeat_models_without_hidden_layers():
    configs = harness.expand(["logistic", "softmax", "mlp"], ["manual"], hidden=[(32,), (64, 16)], epochs=1)
    per_family = {f: [c for c in configs if c.family == f] for f in ("logistic", "softmax", "mlp")}
    assert len(per_family["logistic"]) == len(per_family["softmax"]) == 1
    assert sorted(c.hidden for c in per_family["mlp"]) == [(32,), (64, 16)]


def test_logistic_loss_stays_finite_when_the_logit_saturates():
    """In float32 the notebook's clamp 1 - 1e-15 is 1.0, so a confident correct prediction of class 1
    (z > ~16.6) gave (1 - y)·log(1 - p) = 0·(-inf) = NaN."""
    for impl in ("manual", "handgrad"):
        model = registry.implementation("logistic", impl).factory(for_family("logistic", impl), 4, 2, None)
        model.load_state_dict({"W": torch.full((4, 1), 10.0), "b": torch.zeros(1)})
        x, y = torch.ones(8, 4), torch.ones(8, dtype=torch.long)  # z = 40: p rounds to 1 in float32
        loss, _ = model.step(x, y)
        assert math.isfinite(float(loss)), impl
        with torch.no_grad():
            assert math.isfinite(float(model.loss(model.logits(x), y))), impl


def test_logistic_at_a_large_learning_rate_is_not_called_diverged(tiny_root):
    cfg = for_family("logistic", "manual", lr=20.0, epochs=8)  # diverged (NaN) in epoch 1 before the fix
    result = train.run_one(cfg, data.load(cfg, tiny_root))
    assert result.status == "ok", result.status
    assert result.test_acc > 0.9


class _Broken:
    """A factory whose model fails on its first step: a run that fails at run time, not at validation."""

    def __init__(self, *args):
        from mnistbench.models.softmax import handgrad

        self.model = handgrad(*args)

    def __getattr__(self, name):
        return getattr(self.model, name)

    def step(self, x, y):
        raise RuntimeError("this implementation is broken on purpose")

    def to(self, device):
        self.model.to(device)
        return self


@pytest.fixture
def broken_impl():
    registry.register("softmax", "broken", _Broken, twin="builtin", description="fails on purpose")
    yield "broken"
    registry.unregister("softmax", "broken")


def test_run_exits_1_when_a_run_failed_and_keeps_the_others(tiny_root, tmp_path, broken_impl, capsys):
    status = cli.main(["run", "--family", "softmax", "--impl", f"{broken_impl},handgrad", "--epochs", "1",
                       "--quiet", "--data-root", str(tiny_root), "--out", str(tmp_path)])
    assert status == 1
    records = results.load_results(tmp_path)
    assert sorted(r.status for r in records) == ["failed", "ok"]
    assert "1 of 2 run(s) failed" in capsys.readouterr().err


def test_run_exits_0_when_nothing_failed(tiny_root, tmp_path):
    assert cli.main(["run", "--family", "softmax", "--impl", "handgrad", "--epochs", "1", "--quiet",
                     "--data-root", str(tiny_root), "--out", str(tmp_path)]) == 0


def test_offline_download_error_says_what_failed_and_what_to_do(tmp_path, monkeypatch):
    import torchvision.datasets

    class Offline:
        def __init__(self, *args, **kwargs):  # torchvision's message when every mirror is unreachable
            raise RuntimeError("Error downloading train-images-idx3-ubyte.gz:\nTried https://mirror/, got:\n"
                               "<urlopen error [Errno -2] Name or service not known>\n")

    monkeypatch.setattr(torchvision.datasets, "MNIST", Offline)
    monkeypatch.delenv("MNISTBENCH_DATA", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))  # the default cache, where downloads go
    with pytest.raises(data.DataError) as caught:
        data.load_arrays("mnist")
    message = str(caught.value)
    assert "Name or service not known" in message and "MNISTBENCH_DATA" in message and "--data-root" in message
    assert "\n" not in message and not message.rstrip().endswith(":")
