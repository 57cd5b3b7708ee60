"""`mnistbench throughput`: training samples/s of mnistbench's loop against batch size.

For every iterative implementation and device, each point trains with train.train_epoch (the loop `run`
uses) over a fixed number of training samples, not to convergence, so the whole sweep takes minutes;
the report (another module) reads <out>/throughput.csv and draws the table and plot.
"""
from __future__ import annotations

import math
import statistics

import torch

from . import data, models, speed, train
from .config import ConfigError, for_family, validate

BATCH_SIZES = [16, 32, 64, 128, 256, 512, 1024, 2048, 4096]
MIN_POINT_SECONDS = 0.3  # time a point at least this long in all...
MAX_REPEATS = 50  # ...but with at most this many epochs
THROUGHPUT_COLUMNS = [
    "family", "impl", "device", "device_name", "batch_size", "train_samples_per_s", "epoch_seconds",
    "samples_timed", "repeats", "train_size", "threads", "torch", "load_1m",
]


def throughput(families, impls=None, batch_sizes=None, samples=16384, repeats=3, devices=("cpu",), seed=0,
               lr=0.01, hidden=(512, 128), data_root=None, on_start=None, on_row=None) -> list[dict]:
    """Training samples/s of mnistbench's loop per (family, impl, device, batch size).

    Each point trains on the first max(samples, 2 batches) training samples (at most the whole set) with
    train.train_epoch, `repeats` times (more for a point shorter than MIN_POINT_SECONDS) after a warm-up
    step, and quotes the median; epoch_seconds is the whole training split's size over that rate.
    """
    batch_sizes = batch_sizes or BATCH_SIZES
    if any(b < 1 for b in batch_sizes) or samples < 1 or repeats < 1:
        raise ConfigError("batch sizes, samples and repeats must be >= 1")
    wanted = speed.pairs(families, impls)
    devices = [train.resolve_device(d) for d in devices]
    arrays = data.load_arrays("mnist", data_root)
    validate(for_family("logistic", "manual", seed=seed, lr=lr, hidden=hidden))
    if on_start is not None:  # called once the options and data are checked, before measuring
        on_start()
    rows = []
    for device in devices:
        for family in dict.fromkeys(f for f, _ in wanted):
            cfg = validate(for_family(family, "manual", seed=seed, lr=lr, hidden=hidden, device=str(device)))
            splits = data.load(cfg, device=device, arrays=arrays)
            for impl in [i for f, i in wanted if f == family]:
                for batch_size in batch_sizes:
                    row = throughput_point(family, impl, batch_size, splits, samples, repeats, seed, lr, hidden,
                                           device)
                    rows.append(row)
                    if on_row is not None:
                        on_row(row)
    return rows


def throughput_point(family, impl, batch_size, splits, samples, repeats, seed, lr, hidden, device) -> dict:
    cfg = validate(for_family(family, impl, batch_size=batch_size, seed=seed, lr=lr, hidden=hidden,
                              device=str(device)))
    n = min(len(splits.train), max(samples, 2 * batch_size))
    x, y = splits.train.x[:n], splits.train.y[:n]
    model = models.build(cfg, splits.n_features, splits.n_classes, device)
    generator = torch.Generator().manual_seed(seed)
    buffers = train.shuffle_buffers(x, y)
    model.step(x[:batch_size], y[:batch_size])  # warm-up at this shape
    timings = [speed.timed(device, train.train_epoch, model, x, y, batch_size, generator, "tensor", buffers)]
    # a point of a few milliseconds (logistic at batch 4096) is timed more often than --repeats
    repeats = max(repeats, min(MAX_REPEATS, math.ceil(MIN_POINT_SECONDS / timings[0])))
    timings += [speed.timed(device, train.train_epoch, model, x, y, batch_size, generator, "tensor", buffers)
                for _ in range(repeats - 1)]
    seconds = statistics.median(timings)
    rate = n / seconds
    return {"family": family, "impl": impl, "batch_size": batch_size, "train_samples_per_s": rate,
            "epoch_seconds": len(splits.train) / rate, "samples_timed": n, "repeats": repeats,
            "train_size": len(splits.train), **speed.environment_columns(device)}


def throughput_table(rows) -> str:
    """samples/s, one row per (family, impl, device), one column per batch size."""
    sizes = sorted({r["batch_size"] for r in rows})
    keyed = {}
    for r in rows:
        keyed.setdefault((r["family"], r["impl"], r["device"]), {})[r["batch_size"]] = r["train_samples_per_s"]
    header = ["family", "impl", "device", *[f"b={b}" for b in sizes]]
    body = [[*key, *[f"{rates[b]:,.0f}" if b in rates else "-" for b in sizes]] for key, rates in keyed.items()]
    return speed.format_table(header, body)
