"""`mnistbench speed`: how fast the same math trains, the notebook's way and mnistbench's, in one process.

speed, per (family, implementation) at one batch size, on the same training split:
- notebook:   the notebook's own loop for the same math (notebook_loops.py), one epoch;
- mnistbench: train.train_epoch, timed exactly as train.timed_epochs times an epoch (`mnistbench run`'s loop);
- bare:       shuffle + contiguous slices + model.step and nothing else (no bookkeeping at all);
the three (and the MLP's floor) are interleaved round by round, in an order shuffled each round, so a
change in machine load hits them alike, and each is quoted as the median (and min/max) of its rounds.
Each ratio is paired by round: the mean per-round log ratio with its 95 % interval (paired.paired_comparison).
The notebook's loop is timed over whole epochs unless --notebook-batches asks for a scaled prefix.
For the MLP the floor is the epoch's matrix-multiply FLOPs over the rate the fastest exact (float32)
kernel of the device reaches, in the same process, on the very shapes and layouts of the MLP's step
(forward x·Wᵀ, dW = δᵀ·a, dX = δ·W at this batch size): an epoch cannot beat its own matmuls. Every
backend (floor.py, backends.py: MKL and oneDNN, cuBLAS with and without TF32, bf16...) is measured and
listed in the floor table; the ratio is taken against the fastest exact one, which the row names, as
measured right before and right after each of mnistbench's epochs (so that the pair is a second apart,
not a round's length). A large square sgemm's rate is reported beside it as the machine's peak (no
batch-64 matmul gets there). After the rounds, the step alone is held against the same floor in short
interleaved blocks (stepfloor.py), and the speed targets are decided on their intervals (targets.py).

Families without a notebook loop (a plugin's) are skipped with a note, not an error.
"""
from __future__ import annotations

import functools
import math
import random
import statistics

import torch
from scipy import stats as scipy_stats

from .. import data, env, models, paired, registry, train
from ..config import ConfigError, check_family, for_family, validate
from ..reporting import render
from ..reporting.render import Column
from . import backends, floor, notebook_loops, profiling, stepfloor
from .timing import environment_columns, release_memory, timed

MIN_FAMILY_SECONDS = 5.0  # a family's rounds are repeated until they took this long...
MAX_REPEAT_FACTOR = 5  # ...but at most this many times --repeats

FASTEST_EACH_RATIO = "fastest_each_over_floor"  # the GEMMs on the fastest kernel of any precision / the floor
RATIOS = ("notebook_over_mnistbench", "mnistbench_over_bare", "mnistbench_over_floor", FASTEST_EACH_RATIO)
RATIOS_WITH_INTERVALS = [f"{name}{part}" for name in RATIOS for part in ("", "_ci_low", "_ci_high")]
SPEED_COLUMNS = [
    "family", "impl", "notebook_loop", "device", "device_name", "batch_size", "hidden", "threads", "torch",
    "repeats", "train_size", "epoch_batches", "notebook_batches_timed",
    "notebook_s", "notebook_min_s", "notebook_max_s", "mnistbench_s", "mnistbench_min_s", "mnistbench_max_s",
    "bare_s", "bare_min_s", "bare_max_s", *RATIOS_WITH_INTERVALS, "epoch_gflop", "floor_backend", "matmul_gflops",
    "floor_s", "floor_spread",
    "peak_gflops", "step_gflops", "floor_share", "step_over_floor", "step_over_floor_ci_low",
    "step_over_floor_ci_high", "step_rounds", "gemm_share", "top_ops", "load_1m", "order_seed", "round_orders",
]


def hidden_text(hidden) -> str:
    """A network's hidden sizes as speed.csv holds them: "512,128"; "" for a family without hidden layers."""
    return ",".join(map(str, hidden or ()))


def iterative_impls(family: str) -> list[str]:
    return [e.name for e in registry.implementations(family) if e.iterative]


def pairs(families, impls=None) -> list[tuple[str, str]]:
    """Every iterative (family, impl) pair of the lists; scikit-learn has no epochs to time."""
    out = []
    for family in families:
        check_family(family)
        out += [(family, i) for i in iterative_impls(family) if impls is None or i in impls]
    for impl in impls or []:
        if not any(i == impl for _, i in out):
            raise ConfigError(f"no iterative implementation {impl!r} in {', '.join(families)}")
    return out


def median_min_max(values) -> tuple[float, float, float]:
    return statistics.median(values), min(values), max(values)


def bare_epoch(model, x, y, batch_size, generator, buffers) -> None:
    """The least a training epoch can do: one shuffle (into reused buffers, as train.training's), contiguous
    slices, the steps."""
    for xb, yb in train.epoch_batches(x, y, batch_size, generator, "tensor", buffers):
        model.step(xb, yb)


# ---------------------------------------------------------------- speed
def notebook_loops_for(family, impls, splits, cfg_base, data_root, device) -> dict:
    """The notebook's loops the implementations compare with (one per distinct loop), warmed up."""
    loops = {}
    for impl in impls:
        loop = notebook_loops.loop_for(family, impl)
        if loop in loops:
            continue
        loops[loop] = notebook_loops.for_family(family, loop, splits, cfg_base, data_root or data.default_root(),
                                                device)
        notebook_loops.epoch(*loops[loop], device, max_batches=3)  # warm-up
    return loops


def models_for(family, impls, splits, cfg_base, device) -> dict:
    """impl -> (model for mnistbench's loop, model for the bare loop), their first calls already paid."""
    x, y, batch_size = splits.train.x, splits.train.y, cfg_base.batch_size
    runners = {}
    for impl in impls:
        cfg = validate(for_family(family, impl, batch_size=batch_size, lr=cfg_base.lr, seed=cfg_base.seed,
                                  hidden=cfg_base.hidden, device=cfg_base.device))
        train.warm_up(cfg, splits, device)
        runners[impl] = [models.build(cfg, splits.n_features, splits.n_classes, device) for _ in range(2)]
        for model in runners[impl]:  # first calls on these very tensors, before any timing
            for _ in range(3):
                model.step(x[:batch_size], y[:batch_size])
    return runners


def measure_family(family, impls, splits, cfg_base, repeats, notebook_batches, data_root, device):
    """Rows (one per impl) for one family. Every variant is timed once per round, in an order shuffled
    afresh each round (seeded by cfg_base.seed, recorded in the rows), so that no variant always runs
    after the same neighbour (a heap, a cache or the CPU's clock left warm or cold)."""
    x, y = splits.train.x, splits.train.y
    n, batch_size = len(y), cfg_base.batch_size
    epoch_batches = math.ceil(n / batch_size)
    sizes = floor.floor_sizes(cfg_base, splits.n_features, splits.n_classes)  # None: no floor for this family
    loops = notebook_loops_for(family, impls, splits, cfg_base, data_root, device)
    runners = models_for(family, impls, splits, cfg_base, device)
    cap = min(notebook_batches, epoch_batches) if notebook_batches else epoch_batches
    gens = {key: torch.Generator().manual_seed(cfg_base.seed) for key in ("mnistbench", "bare")}
    buffers = {key: train.shuffle_buffers(x, y) for key in ("mnistbench", "bare")}
    times = {}

    def notebook_unit(step, loader):
        release_memory()
        seconds, tally = notebook_loops.epoch(step, loader, device, max_batches=cap)
        return seconds * epoch_batches / tally.batches

    floors = floor.prepare_all(sizes, batch_size, device) if sizes else []
    exact = [item for item in floors if item.run is not None and item.exact]
    brackets = {}  # (impl, backend) -> per round, the floor measured around that round's mnistbench epoch

    def bracketed_epoch(impl, model):
        """mnistbench's epoch with every exact floor measured just before and just after it (in mirrored
        order): the epoch over their geometric mean is paired within a second or two, where the rounds'
        other units can be seconds away (the notebook's loop) and the machine's speed drifts between.
        The fastest floor so far, the likeliest to be the one the epoch is held to, goes right next to it."""
        so_far = {item.backend.name: brackets.get((impl, item.backend.name)) for item in exact}
        exact.sort(key=lambda item: -statistics.median(so_far[item.backend.name] or [0.0]))  # slowest first
        before = [floor.epoch_seconds(item, sizes, n, batch_size, device) for item in exact]
        seconds = timed(device, train.train_epoch, model, x, y, batch_size, gens["mnistbench"], "tensor",
                        buffers["mnistbench"])
        after = [floor.epoch_seconds(item, sizes, n, batch_size, device) for item in reversed(exact)][::-1]
        for item, first, last in zip(exact, before, after):
            brackets.setdefault((impl, item.backend.name), []).append(math.sqrt(first * last))
        return seconds

    units = {f"notebook:{loop}": functools.partial(notebook_unit, *parts) for loop, parts in loops.items()}
    for impl, (model, bare_model) in runners.items():
        units[f"{impl}:mnistbench"] = functools.partial(bracketed_epoch, impl, model)
        units[f"{impl}:bare"] = functools.partial(timed, device, bare_epoch, bare_model, x, y, batch_size,
                                                  gens["bare"], buffers["bare"])
    # each backend is a unit of its own, interleaved with the epochs like the loops: load drift hits every
    # kernel alike, and the best is picked by its median after the rounds. Taking the best backend inside
    # each round instead would hand the floor the minimum of several noisy timings, biased low.
    for item in floors:
        if item.run is not None:
            units[f"floor:{item.backend.name}"] = functools.partial(floor.epoch_seconds, item, sizes, n, batch_size,
                                                                    device)
    shuffler, orders = random.Random(cfg_base.seed), []

    def one_round():
        order = list(units)
        shuffler.shuffle(order)
        orders.append(order)
        for name in order:
            times.setdefault(name, []).append(units[name]())

    # short epochs (logistic: ~0.02 s) get more rounds, so that their median is not a handful of samples
    round_seconds = timed(device, one_round)
    rounds = max(repeats, min(MAX_REPEAT_FACTOR * repeats, math.ceil(MIN_FAMILY_SECONDS / round_seconds)))
    for _ in range(rounds - 1):
        one_round()
    floor_table = floor.floor_rows(floors, {name[len("floor:"):]: samples for name, samples in times.items()
                                            if name.startswith("floor:")}, floor.epoch_gflop(sizes or [], n), batch_size)
    best = floor.best_exact(floor_table)
    best_run = next(item.run for item in exact if item.backend.name == best["backend"]) if best else None
    if best is not None:
        times["floor"] = times[f"floor:{best['backend']}"]
        floor_row = floor.speed_columns(best, sizes, n, device)
        # the same GEMMs every round: their spread is the machine's noise during the run, nothing else
        floor_row["floor_spread"] = float(scipy_stats.iqr(times["floor"]) / statistics.median(times["floor"]))
        fastest_each = next((item.run for item in floors if item.backend.name == backends.FASTEST_EACH), None)
        if fastest_each is not None:  # what any precision could take for the same GEMMs, in paired blocks
            bound = stepfloor.run_over_floor(fastest_each, best_run, device, stepfloor.rounds_for(rounds),
                                             seed=cfg_base.seed)
            floor_row.update({FASTEST_EACH_RATIO: bound.ratio, f"{FASTEST_EACH_RATIO}_ci_low": bound.ci_low,
                              f"{FASTEST_EACH_RATIO}_ci_high": bound.ci_high})
    shared = {"batch_size": batch_size, "hidden": hidden_text(cfg_base.hidden), "repeats": rounds, "train_size": n,
              "epoch_batches": epoch_batches, "notebook_batches_timed": cap, "order_seed": cfg_base.seed,
              "round_orders": " | ".join(",".join(order) for order in orders)}
    rows = []
    for impl in impls:
        loop = notebook_loops.loop_for(family, impl)
        notebook, mnistbench, bare = (times[k] for k in (f"notebook:{loop}", f"{impl}:mnistbench", f"{impl}:bare"))
        row = {"family": family, "impl": impl, "notebook_loop": loop, **shared}
        for name, samples in (("notebook", notebook), ("mnistbench", mnistbench), ("bare", bare)):
            row.update(dict(zip((f"{name}_s", f"{name}_min_s", f"{name}_max_s"), median_min_max(samples))))
        row.update(ratio("notebook_over_mnistbench", mnistbench, notebook))
        row.update(ratio("mnistbench_over_bare", bare, mnistbench))
        around = brackets[impl, best["backend"]] if best is not None else None  # the floor around each epoch
        if around is not None:
            row.update(floor_row, **ratio("mnistbench_over_floor", around, mnistbench))
        row.update(step_columns(runners[impl][1], x, y, batch_size, cfg_base, splits, row, gens["bare"],
                                buffers["bare"], best_run))
        if floors:
            row["_floors"] = floor_table
        row["_samples"] = {name: times[key] for name, key in (("notebook", f"notebook:{loop}"),
                           ("mnistbench", f"{impl}:mnistbench"), ("bare", f"{impl}:bare"), ("floor", "floor"))
                           if key in times}
        if around is not None:
            row["_samples"]["floor_around"] = around
        rows.append(row)
    return rows


def step_columns(model, x, y, batch_size, cfg, splits, row, generator, buffers, floor_run=None) -> dict:
    """What a row says about the step itself, from the bare model after the timed rounds: the matmul
    GFLOP/s mnistbench's epoch achieved and that as a share of the floor's (floor s / mnistbench s); the
    step alone over the floor's GEMMs (floor_run, the fastest exact backend's), in short blocks paired by
    round (stepfloor.py); and, from a short profile, the GEMMs' share of the self time and the top
    operators beyond them."""
    flops = floor.training_flops_per_sample(cfg, splits.n_features, splits.n_classes)
    out = {"step_gflops": flops * len(y) / 1e9 / row["mnistbench_s"],
           "floor_share": row["floor_s"] / row["mnistbench_s"] if row.get("floor_s") else math.nan}
    epoch = list(train.epoch_batches(x, y, batch_size, generator, "tensor", buffers))
    batches = [(xb, yb) for xb, yb in epoch if len(yb) == batch_size] or epoch  # new data every step, as in an epoch
    if floor_run is not None and batches:
        step_rounds = stepfloor.rounds_for(row["repeats"])
        comparison = stepfloor.step_over_floor(model, batches, floor_run, cfg.device, step_rounds, seed=cfg.seed)
        out.update(step_over_floor=comparison.ratio, step_over_floor_ci_low=comparison.ci_low,
                   step_over_floor_ci_high=comparison.ci_high, step_rounds=step_rounds)
    seen = profiling.step_breakdown(model, batches[: profiling.BREAKDOWN_STEPS])
    out.update(gemm_share=seen["gemm_share"], top_ops=profiling.breakdown_text(seen["top"]))
    return out


def ratio(name: str, base, new) -> dict:
    """new / base paired by round (both were timed once in every round, in a shuffled order): the mean
    per-round log ratio with its 95 % interval (paired.paired_comparison; nan under three rounds)."""
    comparison = paired.paired_comparison(dict(enumerate(base)), dict(enumerate(new)))
    return {name: comparison.ratio, f"{name}_ci_low": comparison.ci_low, f"{name}_ci_high": comparison.ci_high}


def speed(families, impls=None, batch_size=64, repeats=5, notebook_batches=None, device="cpu", seed=0,
          lr=0.01, hidden=None, data_root=None, on_start=None, on_row=None, on_skip=None) -> list[dict]:
    """The speed table: one row per iterative (family, impl) of the lists. on_start(load) is called once
    the options and the data have been checked, just before measuring, with the 1-minute load average
    read before any of this function's own work (the rows' load_1m); on_row(row) after each row;
    on_skip(family, reason) for a family that has no notebook loop to compare with."""
    load_before = env.load_average()  # before decoding the data set: its own work would raise the load
    if repeats < 1:
        raise ConfigError(f"repeats must be >= 1, got {repeats}")
    if notebook_batches is not None and notebook_batches < 0:
        raise ConfigError(f"notebook batches must be >= 0, got {notebook_batches}")
    wanted = pairs(families, impls)
    device = train.resolve_device(device)
    arrays = data.load_arrays("mnist", data_root)
    configs = {family: validate(for_family(family, impl, batch_size=batch_size, seed=seed, lr=lr, hidden=hidden,
                                           device=str(device))) for family, impl in wanted}
    if on_start is not None:
        on_start(load_before)
    rows = []
    for family, cfg in configs.items():
        if not notebook_loops.has_loop(family):
            if on_skip is not None:
                on_skip(family, "no notebook loop to compare with")
            continue
        splits = data.load(cfg, device=device, arrays=arrays)
        for row in measure_family(family, [i for f, i in wanted if f == family], splits, cfg, repeats,
                                  notebook_batches, data_root, device):
            row.update(environment_columns(device), load_1m=load_before)
            rows.append(row)
            if on_row is not None:
                on_row(row)
    return rows


SPEED_TABLE = [
    Column("family"), Column("impl"), Column("notebook_loop", "notebook loop"),
    Column("notebook", "notebook s", "seconds"), Column("mnistbench", "mnistbench s", "seconds"),
    Column("bare", "bare s", "seconds"), Column("notebook_over_mnistbench", "nb/mb", "ratio"),
    Column("mnistbench_over_bare", "mb/bare", "ratio"), Column("floor_backend", "floor kernel", "text"),
    Column("floor_s", "floor s", "seconds"),
    Column("mnistbench_over_floor", "mb/floor", "ratio"),
]


def speed_table(rows) -> str:
    """Epoch seconds as median (min-max) over the rounds, the ratios with their 95 % intervals, and the
    MLP's floor."""
    import pandas as pd

    frame = pd.DataFrame(rows).rename(columns=lambda c: c[: -len("_s")] if c in (
        "notebook_s", "mnistbench_s", "bare_s") else c.replace("_min_s", "_min").replace("_max_s", "_max"))
    return render.to_text(frame, SPEED_TABLE)
