"""One training benchmark per registered (family, implementation) and device, through `mnistbench run`'s path.

Each benchmark times ROUNDS calls of train.run_one (pedantic, one iteration per round: a whole training is
not re-run for calibration), so that pytest-benchmark has a spread to compare against
(`--benchmark-compare-fail=median:10%`). train.run_one warms up on a throwaway model before its own timers
start, so no extra warm-up round is spent here. The benchmark's time is the whole call (warm-up, training
with per-epoch validation, test evaluation). extra_info keeps what pytest-benchmark's table cannot show:
the steady-state epoch seconds of every round (every epoch but each run's first, which pays one-time
costs) with their median and its 95 % interval, training throughput and the accuracies with the number
of test images (`mnistbench compare` weighs accuracy differences by it).
"""
from __future__ import annotations

import math

import pytest
import torch

from mnistbench import registry, stats, train

PAIRS = [(e.family, e.name) for e in registry.implementations()]
ROUNDS = 3
DEVICES = ["cpu", pytest.param("cuda", marks=[
    pytest.mark.cuda, pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")])]


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("family,impl", PAIRS, ids=[f"{f}-{i}" for f, i in PAIRS])
def test_train(benchmark, bench_config, splits_for, family, impl, device):
    cfg = bench_config(family, impl, device)
    splits = splits_for(cfg)
    benchmark.group = f"train {family}"
    runs = []

    def run_once():
        result = train.run_one(cfg, splits)
        train.sync(splits.train.x.device)  # the timed call ends when the device is done
        runs.append(result.to_row())
        return runs[-1]

    fitted = benchmark.pedantic(run_once, rounds=ROUNDS, iterations=1, warmup_rounds=0)
    iterative = registry.implementation(family, impl).iterative
    # an SGD run's samples are its steady-state epochs; a solver's (scikit-learn's) are its fits, one a round
    epochs = [s for run in runs for s in stats.steady_state([e["train_seconds"] for e in run["history"]])] \
        if iterative else [run["fit_seconds"] for run in runs]
    summary = stats.timing_summary(epochs)
    benchmark.extra_info.update(
        family=family,
        impl=impl,
        device=str(splits.train.x.device),
        status=fitted["status"],
        test_acc=fitted["test_acc"],
        test_size=len(splits.test),
        best_val_acc=fitted["best_val_acc"],
        epochs=fitted["epochs_run"],
        batch_size=cfg.batch_size,
        lr=cfg.lr,
        train_seconds=fitted["train_seconds"],
        train_samples_per_s=fitted["train_samples_per_s"],
        fit_seconds=fitted.get("fit_seconds"),
        epoch_seconds=epochs if iterative else None,
        fit_seconds_all=None if iterative else epochs,
        epoch_seconds_median=summary["median"],
        epoch_seconds_ci_low=summary["ci_low"],
        epoch_seconds_ci_high=summary["ci_high"],
    )
    assert len(runs) == ROUNDS and all(run["status"] == "ok" for run in runs)
    # a trained model beats guessing the majority class; an untrained or broken one does not
    chance = max(splits.test.y.bincount().tolist()) / len(splits.test)
    assert fitted["test_acc"] > chance + 0.05, fitted["test_acc"]
    assert epochs and all(math.isfinite(s) and s > 0 for s in epochs)
    if iterative:
        assert math.isfinite(fitted["train_samples_per_s"]) and fitted["train_samples_per_s"] > 0
