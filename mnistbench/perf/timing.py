"""Timing helpers shared by speed, throughput and the floor: a synchronised timer, a quiet heap, the
machine's load, threads, and the output folder and CSV of a measurement."""
from __future__ import annotations

import ctypes
import ctypes.util
import gc
import os
import time
from pathlib import Path

import torch

from .. import env, results, train
from ..config import ConfigError

try:  # glibc's malloc_trim, for release_memory(); elsewhere (musl, macOS) there is nothing to trim
    _LIBC = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
    _LIBC.malloc_trim  # noqa: B018 (raises AttributeError where it does not exist)
except (OSError, AttributeError):
    _LIBC = None


def release_memory() -> None:
    """Hand freed heap back to the OS before each timed loop (untimed). The notebook's loop leaves glibc's
    heap fragmented by many small PIL/collate allocations; without this, the loop timed after it pays
    page faults for its 100+ kB activations (measured: MLP epoch 0.78 s alone, 1.15 s right after it)."""
    gc.collect()
    if _LIBC is not None:
        _LIBC.malloc_trim(0)


def timed(device, fn, *args) -> float:
    """Seconds of fn(*args), the device synchronised at both edges, after release_memory()."""
    release_memory()
    return synced_seconds(device, fn, *args)


def synced_seconds(device, fn, *args) -> float:
    """Seconds of fn(*args), the device synchronised at both edges; no heap release first (a garbage
    collection costs more than the short blocks that are timed this way)."""
    train.sync(device)
    started = time.perf_counter()
    fn(*args)
    train.sync(device)
    return time.perf_counter() - started


def environment_columns(device) -> dict:
    """What the timings depend on, including the machine's load when they were taken."""
    device = torch.device(device)
    return {"device": str(device), "device_name": env.device_name(device), "threads": torch.get_num_threads(),
            "torch": torch.__version__, "load_1m": env.load_average()}


def busy_warning(load: float | None = None) -> str | None:
    """A warning when other work is running (load: a reading taken before measuring; default: now): with
    torch's OpenMP threads spinning against other processes on a 2-core machine, small-op epochs can
    stall for milliseconds per op and the ratios mean nothing."""
    load, cores = env.load_average() if load is None else load, os.cpu_count() or 1
    if load is not None and load > 0.5 * cores:
        return (f"warning: load average {load} on {cores} cores: other work is running, timings will be noisy "
                f"(and with several threads, stalled); measure on a quiet machine, or with --threads 1")
    return None


def set_threads(threads: int | None) -> None:
    if threads is not None:
        if threads < 1:
            raise ConfigError(f"threads must be >= 1, got {threads}")
        torch.set_num_threads(threads)


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
    """rows (dicts) as a CSV with `columns` in that order (missing values empty), written atomically."""
    import pandas as pd

    from ..reporting import render

    frame = pd.DataFrame([{k: row.get(k) for k in columns} for row in rows], columns=list(columns))
    results.atomic_write_text(Path(path), render.to_csv(frame))
    return Path(path)
