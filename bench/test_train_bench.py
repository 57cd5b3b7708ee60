"""One training benchmark per registered (family, implementation) and device, through `mnistbench run`'s path.

Each benchmark times one call of train.run (pedantic: one round, one iteration; a whole training is not
re-run for calibration). train.run warms up on a throwaway model before its own timers start, so no
extra warm-up round is spent here. The benchmark's time is the whole call (warm-up, training with
per-epoch validation, test evaluation); the training-only time and throughput from mnistbench's own
timers ride along in extra_info with the accuracies, which pytest-benchmark's table cannot show:
`--benchmark-json FILE` keeps them and mnistbench.benchtables puts them beside the timings.
"""
from __future__ import annotations

import math

import pytest
import torch

from mnistbench import registry, train

PAIRS = [(e.family, e.name) for e in registry.implementations()]
DEVICES = ["cpu", pytest.param("cuda", marks=[
    pytest.mark.cuda, pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")])]


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("family,impl", PAIRS, ids=[f"{f}-{i}" for f, i in PAIRS])
def test_train(benchmark, bench_config, splits_for, family, impl, device):
    cfg = bench_config(family, impl, device)
    splits = splits_for(cfg)
    benchmark.group = f"train {family}"

    def run_once():
        fitted = train.run(cfg, splits)
        train.sync(splits.train.x.device)  # the timed call ends when the device is done
        return fitted

    fitted = benchmark.pedantic(run_once, rounds=1, iterations=1, warmup_rounds=0)
    benchmark.extra_info.update(
        family=family,
        impl=impl,
        device=str(splits.train.x.device),
        status=fitted["status"],
        test_acc=fitted["test_acc"],
        best_val_acc=fitted["best_val_acc"],
        epochs=fitted["epochs_run"],
        batch_size=cfg.batch_size,
        lr=cfg.lr,
        train_seconds=fitted["train_seconds"],
        train_samples_per_s=fitted["train_samples_per_s"],
    )
    assert fitted["status"] == "ok"
    # a trained model beats guessing the majority class; an untrained or broken one does not
    chance = max(splits.test.y.bincount().tolist()) / len(splits.test)
    assert fitted["test_acc"] > chance + 0.05, fitted["test_acc"]
    assert math.isfinite(fitted["train_samples_per_s"]) and fitted["train_samples_per_s"] > 0
