"""The training loop: early stopping restores the best state, runs are reproducible, divergence is caught."""
from __future__ import annotations

import math

import pytest
import torch

from mnistbench import data, models, train
from mnistbench.config import for_family
from mnistbench.models.contract import ModeSwitches


def fit(model, splits, cfg) -> train.Fitted:
    """Drive the training loop an epoch at a time, as a run does; the Fitted it ends with."""
    *_, fitted = train.timed_epochs(model, splits, cfg)
    return fitted


def run(cfg, splits) -> dict:
    """One run's result as the flat row load_results() gives it."""
    return train.run_one(cfg, splits).to_row()


class ScriptedModel(ModeSwitches):
    """A model whose validation loss is scripted per epoch: the weight counts the epochs trained."""

    def __init__(self, val_losses, steps_per_epoch):
        self.val_losses, self.steps_per_epoch = val_losses, steps_per_epoch
        self.params = {"steps": torch.zeros(())}

    def step(self, x, y):
        self.params["steps"] += 1
        return torch.tensor(1.0), torch.zeros(len(y), 10)

    def logits(self, x):
        return torch.zeros(len(x), 10)

    def loss(self, logits, y):
        epoch = int(self.params["steps"]) // self.steps_per_epoch
        return torch.tensor(self.val_losses[epoch - 1])

    def state_dict(self):
        return {k: v.clone() for k, v in self.params.items()}

    def load_state_dict(self, state):
        self.params = {k: v.clone() for k, v in state.items()}


def test_early_stopping_restores_best_epoch(tiny_root):
    cfg = for_family("mlp", "manual", patience=2, epochs=10, batch_size=100)
    splits = data.load(cfg, tiny_root)
    steps_per_epoch = math.ceil(len(splits.train) / cfg.batch_size)
    model = ScriptedModel([0.9, 0.5, 0.4, 0.45, 0.6, 0.3, 0.2], steps_per_epoch)
    fitted = fit(model, splits, cfg)
    assert [e.epoch for e in fitted.history] == [1, 2, 3, 4, 5]  # stopped 2 epochs after the best
    assert fitted.best_epoch == 3 and fitted.history[2].val_loss == pytest.approx(0.4) and fitted.restored_best
    assert int(model.params["steps"]) == 3 * steps_per_epoch  # the weights of epoch 3, not epoch 5


def test_without_patience_every_epoch_runs_and_final_weights_stay(tiny_root):
    cfg = for_family("softmax", "manual", epochs=4, patience=None)
    splits = data.load(cfg, tiny_root)
    model = ScriptedModel([0.5, 0.9, 0.9, 0.9], math.ceil(len(splits.train) / cfg.batch_size))
    fitted = fit(model, splits, cfg)
    assert len(fitted.history) == 4 and fitted.best_epoch == 1
    assert not fitted.restored_best


def test_real_model_ends_at_its_best_validation_loss(tiny_root):
    cfg = for_family("mlp", "manual", lr=0.5, patience=1, epochs=15, hidden=(32,))
    splits = data.load(cfg, tiny_root)
    model = models.build(cfg, splits.n_features, splits.n_classes)
    fitted = fit(model, splits, cfg)
    assert fitted.status == "ok" and fitted.restored_best
    best = fitted.history[fitted.best_epoch - 1]
    assert train.evaluate(model, splits.val)["loss"] == pytest.approx(best.val_loss, abs=1e-7)


def strip_timings(result):
    return [{k: v for k, v in r.items() if "seconds" not in k and "per_s" not in k} for r in result["history"]]


def test_a_run_restores_the_thread_count(tiny_root):
    before = torch.get_num_threads()
    cfg = for_family("logistic", "manual", epochs=1, threads=1 if before > 1 else 2)
    assert train.run_one(cfg, data.load(cfg, tiny_root)).env["threads"] == cfg.threads
    assert torch.get_num_threads() == before


@pytest.mark.parametrize("family, impl", [("logistic", "manual"), ("softmax", "handgrad"), ("mlp", "builtin")])
def test_same_seed_same_metrics_on_cpu(tiny_root, family, impl):
    cfg = for_family(family, impl, epochs=3, hidden=(32,))
    first = run(cfg, data.load(cfg, tiny_root))
    second = run(cfg, data.load(cfg, tiny_root))
    assert strip_timings(first) == strip_timings(second)
    assert first["test_acc"] == second["test_acc"] and first["confusion"] == second["confusion"]
    other = run(cfg.__class__(**{**cfg.__dict__, "seed": 1}), data.load(cfg, tiny_root))
    assert strip_timings(other) != strip_timings(first)


def test_tiny_runs_learn_and_report_everything(tiny_root):
    cfg = for_family("softmax", "builtin", epochs=5, lr=0.1)
    result = run(cfg, data.load(cfg, tiny_root))
    assert result["test_acc"] > 0.8  # the generated digits are separable
    assert len(result["confusion"]) == 10 and sum(map(sum, result["confusion"])) == 120
    assert set(result["per_class_acc"]) == {str(c) for c in range(10)}
    assert result["train_samples_per_s"] > 0 and result["epochs_run"] == 5


def test_divergence_stops_with_status_and_epoch(tiny_root):
    cfg = for_family("mlp", "manual", lr=1e6, epochs=20, hidden=(32,))
    result = run(cfg, data.load(cfg, tiny_root))
    assert result["status"] == "diverged"
    assert result["diverged_epoch"] == len(result["history"]) < 20


def test_sklearn_runs_once_and_reports_iterations(tiny_root):
    cfg = for_family("logistic", "sklearn")
    result = run(cfg, data.load(cfg, tiny_root))
    assert result["status"] == "ok" and result["test_acc"] > 0.9
    assert result["epochs_run"] >= 1 and len(result["history"]) == 1


def test_dataloader_path_matches_tensor_path_in_quality(tiny_root):
    tensor = for_family("softmax", "manual", epochs=3, lr=0.1)
    loader = for_family("softmax", "manual", epochs=3, lr=0.1, loader="dataloader")
    a = run(tensor, data.load(tensor, tiny_root))
    b = run(loader, data.load(loader, tiny_root))
    assert abs(a["test_acc"] - b["test_acc"]) < 0.1 and b["test_acc"] > 0.8


def test_cuda_requested_without_gpu_is_a_config_error():
    if torch.cuda.is_available():
        pytest.skip("a GPU is present")
    from mnistbench.config import ConfigError

    with pytest.raises(ConfigError, match="no CUDA device"):
        train.resolve_device("cuda")
