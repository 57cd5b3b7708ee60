"""`mnistbench speed`: how fast the same math trains, the notebook's way and mnistbench's, in one process.

speed, per (family, implementation) at one batch size, on the same training split:
- notebook:   the notebook's own loop for the same math (notebook_loops.py), one epoch;
- mnistbench: train.train_epoch, timed exactly as train.fit times an epoch (`mnistbench run`'s loop);
- bare:       shuffle + contiguous slices + model.step and nothing else (no bookkeeping at all);
the three are interleaved repeat by repeat, so a change in machine load hits them alike, and each is
quoted as the median (and min/max) of its repeats. For the MLP the floor is the epoch's matrix-multiply
FLOPs over the rate torch.mm reaches, in the same process, on the very shapes and layouts of the MLP's
step (forward x·Wᵀ, dW = δᵀ·a, dX = δ·W at this batch size): an epoch cannot beat its own matmuls.
A large square sgemm's rate is reported beside it as the machine's peak (no batch-64 matmul gets there).

`mnistbench throughput` (throughput.py) shares the timing helpers below.
"""
from __future__ import annotations

import csv
import ctypes
import ctypes.util
import functools
import gc
import itertools
import math
import os
import statistics
import time
from pathlib import Path

import torch

from . import data, models, notebook_loops, train
from .config import FAMILIES, ConfigError, for_family, validate
from .results import cpu_model

NOTEBOOK_MLP_BATCHES = 200  # the notebook's MLP epoch is 7-12 s: time 200 of its 782 batches and scale
MATMUL_SECONDS = 0.2  # each floor measurement multiplies for at least this long
PEAK_SIZE = 1024  # the square sgemm of the peak rate
MIN_FAMILY_SECONDS = 5.0  # a family's rounds are repeated until they took this long...
MAX_REPEAT_FACTOR = 5  # ...but at most this many times --repeats

try:  # glibc's malloc_trim, for release_memory(); elsewhere (musl, macOS) there is nothing to trim
    _LIBC = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
    _LIBC.malloc_trim  # noqa: B018 (raises AttributeError where it does not exist)
except (OSError, AttributeError):
    _LIBC = None

SPEED_COLUMNS = [
    "family", "impl", "notebook_loop", "device", "device_name", "batch_size", "threads", "torch", "repeats",
    "train_size", "epoch_batches", "notebook_batches_timed",
    "notebook_s", "notebook_min_s", "notebook_max_s", "mnistbench_s", "mnistbench_min_s", "mnistbench_max_s",
    "bare_s", "bare_min_s", "bare_max_s", "notebook_over_mnistbench", "mnistbench_over_bare",
    "epoch_gflop", "matmul_gflops", "floor_s", "mnistbench_over_floor", "peak_gflops", "load_1m",
]

# issue 5's targets, for batch 64 on the 2-core CPU: (family, impl, column, "min" | "max", bound)
TARGETS = [
    ("logistic", "manual", "notebook_over_mnistbench", "min", 2.0),
    ("softmax", "manual", "notebook_over_mnistbench", "min", 2.0),
    ("mlp", "manual", "notebook_over_mnistbench", "min", 8.0),
    ("logistic", "handgrad", "notebook_over_mnistbench", "min", 5.0),
    ("softmax", "handgrad", "notebook_over_mnistbench", "min", 3.0),
    ("mlp", "manual", "mnistbench_over_floor", "max", 1.5),
] + [(f, i, "mnistbench_over_bare", "max", 1.10) for f, i in
     [("logistic", "manual"), ("logistic", "handgrad"), ("logistic", "builtin"), ("softmax", "manual"),
      ("softmax", "handgrad"), ("softmax", "builtin"), ("mlp", "manual"), ("mlp", "builtin")]]


def iterative_impls(family: str) -> list[str]:
    return [impl for impl in models.impls_for(family) if models.is_iterative(models.build(
        for_family(family, impl, hidden=(1,)), 1, 2))]


def pairs(families, impls=None) -> list[tuple[str, str]]:
    """Every iterative (family, impl) pair of the lists; scikit-learn has no epochs to time."""
    out = []
    for family in families:
        if family not in FAMILIES:
            raise ConfigError(f"unknown family {family!r}; choose from {', '.join(FAMILIES)}")
        out += [(family, i) for i in iterative_impls(family) if impls is None or i in impls]
    for impl in impls or []:
        if not any(i == impl for _, i in out):
            raise ConfigError(f"no iterative implementation {impl!r} in {', '.join(families)}")
    return out


def median_min_max(values) -> tuple[float, float, float]:
    return statistics.median(values), min(values), max(values)


def release_memory() -> None:
    """Hand freed heap back to the OS before each timed loop (untimed). The notebook's loop leaves glibc's
    heap fragmented by many small PIL/collate allocations; without this, the loop timed after it pays
    page faults for its 100+ kB activations (measured: MLP epoch 0.78 s alone, 1.15 s right after it)."""
    gc.collect()
    if _LIBC is not None:
        _LIBC.malloc_trim(0)


def timed(device, fn, *args) -> float:
    """Seconds of fn(*args), the device synchronised at both edges."""
    release_memory()
    train.sync(device)
    started = time.perf_counter()
    fn(*args)
    train.sync(device)
    return time.perf_counter() - started


def bare_epoch(model, x, y, batch_size, generator, buffers) -> None:
    """The least a training epoch can do: one shuffle (into reused buffers, as train.fit's), contiguous
    slices, the steps."""
    for xb, yb in train.epoch_batches(x, y, batch_size, generator, "tensor", buffers):
        model.step(xb, yb)


# ---------------------------------------------------------------- the matmul floor
def mlp_flops_per_sample(sizes) -> int:
    """Matmul FLOPs of one training sample of the manual MLP: forward 2·in·out per layer, backward
    dW 2·in·out per layer and dX 2·in·out for every layer but the first (nothing needs dL/dx)."""
    layers = list(itertools.pairwise(sizes))
    forward = sum(2 * i * o for i, o in layers)
    return 2 * forward + sum(2 * i * o for i, o in layers[1:])


def matmul_gflops(sizes, batch_size, device, min_seconds=None) -> float:
    """GFLOP/s of torch.mm on the MLP step's own matmuls (same shapes, same transposes), out= buffers."""
    gen = torch.Generator().manual_seed(0)
    work = []
    for index, (n_in, n_out) in enumerate(itertools.pairwise(sizes)):
        a = torch.randn(batch_size, n_in, generator=gen).to(device)
        weight = torch.randn(n_out, n_in, generator=gen).to(device)
        delta = torch.randn(batch_size, n_out, generator=gen).to(device)
        work.append((a, weight.t(), torch.empty(batch_size, n_out, device=device)))  # forward
        work.append((delta.t(), a, torch.empty(n_out, n_in, device=device)))  # dW
        if index > 0:
            work.append((delta, weight, torch.empty(batch_size, n_in, device=device)))  # dX

    def step_matmuls(times):
        for _ in range(times):
            for left, right, out in work:
                torch.mm(left, right, out=out)

    min_seconds = MATMUL_SECONDS if min_seconds is None else min_seconds
    step_matmuls(3)  # warm-up
    steps = 1
    while True:
        seconds = timed(device, step_matmuls, steps)
        if seconds >= min_seconds:
            return mlp_flops_per_sample(sizes) * batch_size * steps / seconds / 1e9
        steps = max(2 * steps, math.ceil(steps * 1.2 * min_seconds / max(seconds, 1e-6)))


def peak_gflops(device, size=PEAK_SIZE, min_seconds=None) -> float:
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


# ---------------------------------------------------------------- speed
def measure_family(family, impls, splits, cfg_base, repeats, notebook_batches, data_root, device):
    """Rows (one per impl) for one family. Every variant is timed once per round, the rounds interleave
    the variants, and each is quoted as the median (and min, max) over the rounds."""
    x, y = splits.train.x, splits.train.y
    n, batch_size, n_classes = len(y), cfg_base.batch_size, splits.n_classes
    epoch_batches = math.ceil(n / batch_size)
    sizes = [splits.n_features, *cfg_base.hidden, n_classes]
    loops = {}
    for impl in impls:
        loop = notebook_loops.loop_for(family, impl)
        if loop not in loops:
            if family == "mlp":
                loops[loop] = notebook_loops.mlp(data_root or data.default_root(), sizes, cfg_base.lr,
                                                 batch_size, cfg_base.seed, device, cfg_base.dataset)
            else:
                loops[loop] = notebook_loops.linear(family, loop, x, y, n_classes, cfg_base.lr, batch_size,
                                                    cfg_base.seed, device)
            notebook_loops.epoch(*loops[loop], device, max_batches=3)  # warm-up
    if notebook_batches is None:  # the default: whole epochs, except for the MLP's ~12 s one
        notebook_batches = NOTEBOOK_MLP_BATCHES if family == "mlp" else 0
    cap = min(notebook_batches, epoch_batches) if notebook_batches > 0 else epoch_batches
    runners = {}
    for impl in impls:
        cfg = validate(for_family(family, impl, batch_size=batch_size, lr=cfg_base.lr, seed=cfg_base.seed,
                                  hidden=cfg_base.hidden, device=cfg_base.device))
        train.warm_up(cfg, splits, device)
        runners[impl] = [models.build(cfg, splits.n_features, n_classes, device) for _ in range(2)]
        for model in runners[impl]:  # first calls on these very tensors, before any timing
            for _ in range(3):
                model.step(x[:batch_size], y[:batch_size])
    gens = {key: torch.Generator().manual_seed(cfg_base.seed) for key in ("mnistbench", "bare")}
    buffers = {key: train.shuffle_buffers(x, y) for key in ("mnistbench", "bare")}
    times = {key: [] for key in [*loops, *[(impl, kind) for impl in impls for kind in ("mnistbench", "bare")]]}
    rates = []

    def one_round():
        for loop, (step, loader) in loops.items():
            release_memory()
            seconds, tally = notebook_loops.epoch(step, loader, device, max_batches=cap)
            times[loop].append(seconds * epoch_batches / tally.batches)
        for impl, (model, bare_model) in runners.items():
            times[(impl, "mnistbench")].append(
                timed(device, train.train_epoch, model, x, y, batch_size, gens["mnistbench"], "tensor",
                      buffers["mnistbench"]))
            times[(impl, "bare")].append(
                timed(device, bare_epoch, bare_model, x, y, batch_size, gens["bare"], buffers["bare"]))
        if family == "mlp":
            rates.append(matmul_gflops(sizes, batch_size, device))

    # short epochs (logistic: ~0.02 s) get more rounds, so that their median is not a handful of samples
    round_seconds = timed(device, one_round)
    rounds = max(repeats, min(MAX_REPEAT_FACTOR * repeats, math.ceil(MIN_FAMILY_SECONDS / round_seconds)))
    for _ in range(rounds - 1):
        one_round()
    peak = peak_gflops(device) if family == "mlp" else None
    rows = []
    for impl in impls:
        loop = notebook_loops.loop_for(family, impl)
        nb, mb, bare = (median_min_max(times[k]) for k in (loop, (impl, "mnistbench"), (impl, "bare")))
        row = {"family": family, "impl": impl, "notebook_loop": loop, "batch_size": batch_size,
               "repeats": rounds, "train_size": n, "epoch_batches": epoch_batches,
               "notebook_batches_timed": cap, "notebook_over_mnistbench": nb[0] / mb[0],
               "mnistbench_over_bare": mb[0] / bare[0]}
        for name, (median, low, high) in (("notebook", nb), ("mnistbench", mb), ("bare", bare)):
            row.update({f"{name}_s": median, f"{name}_min_s": low, f"{name}_max_s": high})
        if family == "mlp":
            gflop = mlp_flops_per_sample(sizes) * n / 1e9
            rate = statistics.median(rates)
            row.update({"epoch_gflop": gflop, "matmul_gflops": rate, "floor_s": gflop / rate,
                        "mnistbench_over_floor": mb[0] / (gflop / rate), "peak_gflops": peak})
        rows.append(row)
    return rows


def environment_columns(device) -> dict:
    """What the timings depend on, including the machine's load when they were taken."""
    device = torch.device(device)
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else cpu_model()
    return {"device": str(device), "device_name": name, "threads": torch.get_num_threads(),
            "torch": torch.__version__, "load_1m": load_average()}


def load_average() -> float | None:
    try:
        return round(os.getloadavg()[0], 2)
    except (AttributeError, OSError):  # not on every platform
        return None


def busy_warning() -> str | None:
    """A warning when other work is running: with torch's OpenMP threads spinning against other processes
    on a 2-core machine, small-op epochs can stall for milliseconds per op and the ratios mean nothing."""
    load, cores = load_average(), os.cpu_count() or 1
    if load is not None and load > 0.5 * cores:
        return (f"warning: load average {load} on {cores} cores: other work is running, timings will be noisy "
                f"(and with several threads, stalled); measure on a quiet machine, or with --threads 1")
    return None


def set_threads(threads: int | None) -> None:
    if threads is not None:
        if threads < 1:
            raise ConfigError(f"threads must be >= 1, got {threads}")
        torch.set_num_threads(threads)


def speed(families, impls=None, batch_size=64, repeats=5, notebook_batches=None, device="cpu", seed=0,
          lr=0.01, hidden=(512, 128), data_root=None, on_start=None, on_row=None) -> list[dict]:
    """The speed table: one row per iterative (family, impl) of the lists. on_start() is called once the
    options and the data have been checked, just before measuring; on_row(row) after each row."""
    if repeats < 1:
        raise ConfigError(f"repeats must be >= 1, got {repeats}")
    if notebook_batches is not None and notebook_batches < 0:
        raise ConfigError(f"notebook batches must be >= 0, got {notebook_batches}")
    wanted = pairs(families, impls)
    device = train.resolve_device(device)
    arrays = data.load_arrays("mnist", data_root)
    validate(for_family("logistic", "manual", batch_size=batch_size, seed=seed, lr=lr, hidden=hidden))
    if on_start is not None:
        on_start()
    rows = []
    for family in dict.fromkeys(f for f, _ in wanted):
        cfg = validate(for_family(family, "manual", batch_size=batch_size, seed=seed, lr=lr, hidden=hidden,
                                  device=str(device)))
        splits = data.load(cfg, device=device, arrays=arrays)
        for row in measure_family(family, [i for f, i in wanted if f == family], splits, cfg, repeats,
                                  notebook_batches, data_root, device):
            row.update(environment_columns(device))
            rows.append(row)
            if on_row is not None:
                on_row(row)
    return rows


def check_targets(rows) -> list[tuple[str, float, str, bool]]:
    """(what, measured, bound as text, met) for every target of issue 5 that the rows cover."""
    by_pair = {(r["family"], r["impl"]): r for r in rows}
    out = []
    for family, impl, column, kind, bound in TARGETS:
        value = by_pair.get((family, impl), {}).get(column)
        if value is None:
            continue
        met = value >= bound if kind == "min" else value <= bound
        out.append((f"{family}/{impl} {column}", value, f"{'>=' if kind == 'min' else '<='} {bound:g}", met))
    return out


# ---------------------------------------------------------------- output
def prepare_out(out) -> Path:
    """The output folder, created now: a bad --out fails before minutes of measuring, not after."""
    out = Path(out)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(f"output folder {out} cannot be created: {exc.strerror or exc}") from None
    if not os.access(out, os.W_OK):
        raise ConfigError(f"output folder {out} is not writable")
    return out


def write_csv(rows, path: Path, columns) -> Path:
    path = Path(path)
    tmp = path.with_suffix(".csv.tmp")
    with open(tmp, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=columns, extrasaction="ignore")
        writer.writeheader()
        for row in rows:
            writer.writerow({k: ("" if row.get(k) is None else row.get(k)) for k in columns})
    tmp.replace(path)
    return path


def _spread(row, name, spec=".3f") -> str:
    return f"{row[name + '_s']:{spec}} ({row[name + '_min_s']:{spec}}-{row[name + '_max_s']:{spec}})"


def format_table(header, rows) -> str:
    widths = [max(len(str(x)) for x in col) for col in zip(header, *rows)]
    lines = ["  ".join(str(x).ljust(w) for x, w in zip(line, widths)) for line in [header, *rows]]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def speed_table(rows) -> str:
    """Epoch seconds as median (min-max) over the repeats, the ratios, and the MLP's floor."""
    header = ["family", "impl", "notebook loop", "notebook s", "mnistbench s", "bare s", "nb/mb", "mb/bare",
              "floor s", "mb/floor"]
    body = [[r["family"], r["impl"], r["notebook_loop"], _spread(r, "notebook"), _spread(r, "mnistbench"),
             _spread(r, "bare"), f"{r['notebook_over_mnistbench']:.1f}x", f"{r['mnistbench_over_bare']:.2f}",
             f"{r['floor_s']:.3f}" if r.get("floor_s") else "-",
             f"{r['mnistbench_over_floor']:.2f}" if r.get("mnistbench_over_floor") else "-"] for r in rows]
    return format_table(header, body)
