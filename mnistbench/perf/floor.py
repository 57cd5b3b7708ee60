"""The floor of a family that is a stack of linear layers (the MLP; its module defines layer_sizes): the
epoch's matrix-multiply FLOPs over the rate the machine's best kernel reaches on the step's own matmul
shapes, in the same process. An epoch cannot beat its own matmuls.

Every backend torch offers on the device (backends.py: MKL and oneDNN on a CPU, cuBLAS on a GPU, in float32
and in lower precisions) is timed on the same GEMMs; the floor an epoch is held to is the fastest *exact*
(float32) one, and the others are shown beside it.
"""
from __future__ import annotations

import functools
import itertools
import math
import statistics

import torch

from .. import registry
from ..catalog import stack_flops_per_sample  # the FLOPs of the products step_gemms lists
from ..config import for_family
from ..reporting import render
from ..reporting.render import Column
from . import backends
from .timing import timed

MATMUL_SECONDS = 0.2  # each floor measurement multiplies for at least this long
PEAK_SIZE = 1024  # the square sgemm of the peak rate
FLOOR_COLUMNS = ["backend", "kernel", "precision", "exact", "gflops", "floor_s", "floor_min_s", "floor_max_s",
                 "max_rel_error", "rounds", "batch_size", "note"]

def family_hook(family: str, name: str):
    """A module-level function or value a family module may define (flops_per_sample, layer_sizes,
    SPEED_TARGETS), or None."""
    return getattr(registry.family_module(family), name, None)


mlp_flops_per_sample = stack_flops_per_sample  # the name older callers use


def training_flops_per_sample(cfg, n_features: int, n_classes: int, hidden=()) -> float:
    """Matmul FLOPs of one training sample of cfg's family, as its module's flops_per_sample(cfg,
    n_features, n_classes) counts them; nan for a family whose module does not say (a plugin's).
    cfg may also be a family name (then `hidden`, if given, sets the hidden sizes)."""
    if isinstance(cfg, str):
        if cfg not in registry.families():
            return math.nan
        cfg = for_family(cfg, registry.impl_names(cfg)[0], hidden=tuple(hidden) or None)
    count = family_hook(cfg.family, "flops_per_sample")
    return math.nan if count is None else count(cfg, n_features, n_classes)


def floor_sizes(cfg, n_features: int, n_classes: int) -> list[int] | None:
    """The layer stack whose step GEMMs are cfg's floor: the family module's layer_sizes(cfg, n_features,
    n_classes); None for a family that is not a stack of linear layers in nn.Linear layout (no floor)."""
    sizes = family_hook(cfg.family, "layer_sizes")
    return None if sizes is None else list(sizes(cfg, n_features, n_classes))


def step_gemms(sizes, batch_size, device) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """(left, right) of every product of one MLP step, in the step's layouts: forward a·Wᵀ (W stored
    (out, in), as nn.Linear keeps it), dW = δᵀ·a and, above the first layer, dX = δ·W."""
    gen = torch.Generator().manual_seed(0)
    gemms = []
    for index, (n_in, n_out) in enumerate(itertools.pairwise(sizes)):
        a = torch.randn(batch_size, n_in, generator=gen).to(device)
        weight = torch.randn(n_out, n_in, generator=gen).to(device)
        delta = torch.randn(batch_size, n_out, generator=gen).to(device)
        gemms += [(a, weight.t()), (delta.t(), a)] + ([(delta, weight)] if index > 0 else [])
    return gemms


def prepare_all(sizes, batch_size, device, float32_only: bool = False) -> list[backends.Prepared]:
    """Every backend of the device set up on the step's GEMMs (skipped ones carry their reason); only the
    float32 ones, the candidates for a floor, with float32_only."""
    gemms = step_gemms(sizes, batch_size, device)
    return [backends.prepare(backend, gemms) for backend in backends.available(device)
            if not float32_only or backend.precision == "float32"]


def backend_gflops(prepared: backends.Prepared, sizes, batch_size, device, min_seconds=None) -> float:
    """GFLOP/s of one backend on the step's GEMMs, calling it until at least min_seconds have passed."""
    min_seconds = MATMUL_SECONDS if min_seconds is None else min_seconds

    def steps_of(times):
        for _ in range(times):
            prepared.run()

    steps = 1
    while True:
        seconds = timed(device, steps_of, steps)
        if seconds >= min_seconds:
            return stack_flops_per_sample(sizes) * batch_size * steps / seconds / 1e9
        steps = max(2 * steps, math.ceil(steps * 1.2 * min_seconds / max(seconds, 1e-6)))


def peak_gflops(device, size=None, min_seconds=None) -> float:
    size = PEAK_SIZE if size is None else size
    min_seconds = MATMUL_SECONDS if min_seconds is None else min_seconds
    gen = torch.Generator().manual_seed(0)
    a, b = (torch.randn(size, size, generator=gen).to(device) for _ in range(2))
    out = torch.empty(size, size, device=device)
    torch.mm(a, b, out=out)
    calls, seconds = 0, 0.0
    while seconds < min_seconds:
        seconds += timed(device, functools.partial(torch.mm, out=out), a, b)
        calls += 1
    return 2 * size**3 * calls / seconds / 1e9


# ---------------------------------------------------------------- the floor table
def floor_rows(prepared, samples: dict, epoch_gflop: float, batch_size: int) -> list[dict]:
    """One row per backend: its epoch floor (median, min, max over the rounds' samples) and the rate
    behind the median; a skipped backend keeps its row, with its reason and no numbers."""
    rows = []
    for item in prepared:
        mine = samples.get(item.backend.name) or []
        floor_s = statistics.median(mine) if mine else math.nan
        rows.append({"backend": item.backend.name, "kernel": item.backend.kernel,
                     "precision": item.backend.precision, "exact": item.exact,
                     "gflops": epoch_gflop / floor_s if mine else math.nan, "floor_s": floor_s,
                     "floor_min_s": min(mine) if mine else math.nan, "floor_max_s": max(mine) if mine else math.nan,
                     "max_rel_error": item.max_rel_error, "rounds": len(mine), "batch_size": batch_size,
                     "note": item.note})
    return rows


def best_exact(rows) -> dict | None:
    """The fastest exact (float32) backend by median floor; None when no exact backend ran."""
    exact = [r for r in rows if r["exact"] and r["rounds"] and math.isfinite(r["floor_s"])]
    return min(exact, key=lambda r: r["floor_s"]) if exact else None


# ---------------------------------------------------------------- the floor as a unit of `speed`'s rounds
def epoch_gflop(sizes, n: int) -> float:
    return stack_flops_per_sample(sizes) * n / 1e9


def epoch_seconds(prepared: backends.Prepared, sizes, n, batch_size, device) -> float:
    """One round's floor of one backend: the epoch's matmul FLOPs over the rate it reaches now."""
    return epoch_gflop(sizes, n) / backend_gflops(prepared, sizes, batch_size, device)


def speed_columns(best: dict, sizes, n, device) -> dict:
    """The floor's columns of a speed row: the fastest exact backend, its median floor and rate, and the
    machine's square-sgemm peak."""
    return {"epoch_gflop": epoch_gflop(sizes, n), "floor_backend": best["backend"], "matmul_gflops": best["gflops"],
            "floor_s": best["floor_s"], "peak_gflops": peak_gflops(device)}


def floor_table(rows) -> list[dict]:
    """The floor table of a speed run: the per-backend rows the MLP's speed rows carry (one set per run)."""
    return next((row["_floors"] for row in rows if row.get("_floors")), [])


FLOOR_TABLE = [
    Column("backend", fmt="text"), Column("kernel", fmt="text"), Column("precision", fmt="text"),
    Column("exact", fmt="text"), Column("gflops", "GFLOP/s", "gflops"), Column("floor", "epoch floor s", "seconds"),
    Column("max_rel_error", "max rel error", "number"), Column("note", fmt="text"),
]


def floor_text(rows) -> str:
    """The floor table for a terminal: each backend's epoch floor as median (min-max) over the rounds."""
    import pandas as pd

    frame = pd.DataFrame(rows).rename(columns={"floor_s": "floor", "floor_min_s": "floor_min",
                                               "floor_max_s": "floor_max"})
    frame["exact"] = frame["exact"].map({True: "yes", False: "no"})
    return render.to_text(frame, FLOOR_TABLE)


# ---------------------------------------------------------------- a study against its floor
STUDY_MATMUL_SECONDS = 0.05  # each backend is timed this long per distinct step shape of a study
IMAGE_FEATURES = 28 * 28  # every data set mnistbench reads is 28×28 grey images


def study_floor(trained, device="cpu") -> dict:
    """The sum of a study's runs' floors: each run's samples trained × its family's matmul FLOPs per
    sample over the rate of the fastest exact backend on its step's GEMMs (measured once per distinct
    layer stack and batch size, now, in this process). Runs of a family without a floor (no layer_sizes)
    are counted apart. Returns floor_s, train_s (the same runs' train_seconds), runs, runs_without."""
    rates, floor_s, train_s, runs, without = {}, 0.0, 0.0, 0, 0
    for result in trained:
        cfg = result.config
        samples = result.epochs_run * result.split_sizes.get("train", 0) if result.train_seconds else 0
        sizes = floor_sizes(cfg, IMAGE_FEATURES, cfg.n_classes) if cfg.family in registry.families() else None
        flops = training_flops_per_sample(cfg, IMAGE_FEATURES, cfg.n_classes) if sizes else math.nan
        if not sizes or not math.isfinite(flops) or not samples:
            without += 1
            continue
        key = (tuple(sizes), cfg.batch_size)
        if key not in rates:
            prepared = [p for p in prepare_all(sizes, cfg.batch_size, device, float32_only=True) if p.exact]
            rates[key] = max((backend_gflops(p, sizes, cfg.batch_size, device, STUDY_MATMUL_SECONDS)
                              for p in prepared), default=math.nan)
        floor_s += flops * samples / 1e9 / rates[key]
        train_s += result.train_seconds
        runs += 1
    return {"floor_s": floor_s, "train_s": train_s, "runs": runs, "runs_without": without}


def study_floor_text(trained, device="cpu") -> str:
    """One line for the end of `study`: its runs' training time beside the sum of their floors."""
    seen = study_floor(trained, device)
    if not seen["runs"]:
        return "study floor: no run of a family with a matmul floor"
    apart = f"; {seen['runs_without']} run(s) of families without a floor not counted" if seen["runs_without"] else ""
    return (f"study floor: {seen['runs']} run(s) trained {seen['train_s']:.1f} s against a floor of "
            f"{seen['floor_s']:.1f} s ({seen['train_s'] / seen['floor_s']:.2f}x; the fastest exact kernel on each "
            f"run's step GEMMs, measured now){apart}")
