"""`mnistbench throughput`: training samples/s of mnistbench's loop against batch size.

For every iterative implementation and device, each point trains with train.train_epoch (the loop `run`
uses) over a fixed number of training samples, not to convergence, so the whole sweep takes minutes;
the report (another module) reads <out>/throughput.csv and draws the table and plot. Each row also says
the matmul GFLOP/s the training reached (floor.training_flops_per_sample × samples/s), to hold against the
floor table of `speed`; `--dtype bfloat16` measures the bf16 path of every implementation that has one.
"""
from __future__ import annotations

import math
import statistics

import torch

from .. import data, models, train
from ..config import ConfigError, for_family, validate
from ..reporting import render
from ..reporting.render import Column
from . import floor, speed
from .timing import environment_columns, timed

BATCH_SIZES = [16, 32, 64, 128, 256, 512, 1024, 2048, 4096]
MIN_POINT_SECONDS = 0.3  # time a point at least this long in all...
MAX_REPEATS = 50  # ...but with at most this many epochs
THROUGHPUT_COLUMNS = [
    "family", "impl", "dtype", "device", "device_name", "batch_size", "train_samples_per_s", "gflops", "epoch_seconds",
    "samples_timed", "repeats", "train_size", "threads", "torch", "load_1m",
]


def throughput(families, impls=None, batch_sizes=None, samples=16384, repeats=3, devices=("cpu",), seed=0,
               lr=0.01, hidden=None, data_root=None, on_start=None, on_row=None,
               dtype="float32") -> list[dict]:
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
    for family, impl in wanted:
        validate(for_family(family, impl, seed=seed, lr=lr, hidden=hidden, dtype=dtype))
    if on_start is not None:  # called once the options and data are checked, before measuring
        on_start()
    rows = []
    for device in devices:
        for family in dict.fromkeys(f for f, _ in wanted):
            impls = [i for f, i in wanted if f == family]
            cfg = validate(for_family(family, impls[0], seed=seed, lr=lr, hidden=hidden, device=str(device)))
            splits = data.load(cfg, device=device, arrays=arrays)  # the family's split: any impl's config
            for impl in impls:
                for batch_size in batch_sizes:
                    row = throughput_point(family, impl, batch_size, splits, samples, repeats, seed, lr, hidden,
                                           device, dtype)
                    rows.append(row)
                    if on_row is not None:
                        on_row(row)
    return rows


def throughput_point(family, impl, batch_size, splits, samples, repeats, seed, lr, hidden, device,
                     dtype="float32") -> dict:
    cfg = validate(for_family(family, impl, batch_size=batch_size, seed=seed, lr=lr, hidden=hidden,
                              device=str(device), dtype=dtype))
    n = min(len(splits.train), max(samples, 2 * batch_size))
    model = models.build(cfg, splits.n_features, splits.n_classes, device)
    x, y = train.inputs_for(model, splits.train.x[:n]), splits.train.y[:n]
    generator = torch.Generator().manual_seed(seed)
    buffers = train.shuffle_buffers(x, y)
    model.step(x[:batch_size], y[:batch_size])  # warm-up at this shape
    timings = [timed(device, train.train_epoch, model, x, y, batch_size, generator, "tensor", buffers)]
    # a point of a few milliseconds (logistic at batch 4096) is timed more often than --repeats
    repeats = max(repeats, min(MAX_REPEATS, math.ceil(MIN_POINT_SECONDS / timings[0])))
    timings += [timed(device, train.train_epoch, model, x, y, batch_size, generator, "tensor", buffers)
                for _ in range(repeats - 1)]
    seconds = statistics.median(timings)
    rate = n / seconds
    flops = floor.training_flops_per_sample(cfg, splits.n_features, splits.n_classes)
    return {"family": family, "impl": impl, "dtype": dtype, "batch_size": batch_size, "train_samples_per_s": rate,
            "gflops": flops * rate / 1e9,
            "epoch_seconds": len(splits.train) / rate, "samples_timed": n, "repeats": repeats,
            "train_size": len(splits.train), **environment_columns(device)}


def throughput_table(rows, values="train_samples_per_s") -> str:
    """samples/s (or values="gflops": the matmul GFLOP/s reached), one row per (family, impl, dtype,
    device), one column per batch size."""
    import pandas as pd

    frame = pd.DataFrame(rows)
    frame["dtype"] = frame.get("dtype", "float32")
    frame = frame.pivot_table(index=["family", "impl", "dtype", "device"], columns="batch_size", values=values,
                              sort=False, dropna=False).reset_index()
    sizes = [c for c in frame.columns if isinstance(c, (int, float))]
    frame.columns = [f"b={c}" if c in sizes else c for c in frame.columns]
    fmt = "gflops" if values == "gflops" else "rate"
    columns = [Column("family"), Column("impl"), Column("dtype", fmt="text"), Column("device"),
               *[Column(f"b={b}", fmt=fmt) for b in sizes]]
    return render.to_text(frame, columns)
