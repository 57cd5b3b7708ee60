"""Expand a grid of configurations and execute it: load data once, run each point, save each result.

Every point is saved the moment it finishes (atomically), so an interrupted sweep loses only the run
in progress, and `resume=True` skips points whose result is already on disk.
"""
from __future__ import annotations

import itertools
import os
import signal
import tempfile
import time
import traceback
from dataclasses import replace
from pathlib import Path

from . import data, registry, results, train
from .config import ConfigError, RunConfig, check_family, for_family, validate


def expand(families, impls, **axes) -> list:
    """Every valid (family, impl) pair crossed with every value of each list axis (lr=[...], seed=[...]).

    An axis value of None keeps the family's default. Pairs that do not exist (mlp x sklearn) are
    skipped; an implementation that exists for none of the families is an error. A family that does
    not use hidden sizes keeps the default ones, so a --hidden axis does not repeat its runs.
    """
    for family in families:
        check_family(family)
    for impl in impls:
        if not any(registry.has(family, impl) for family in families):
            raise ConfigError(
                f"unknown implementation {impl!r} for {', '.join(families)}; "
                f"choose from {', '.join(dict.fromkeys(i for f in families for i in registry.impl_names(f)))}"
            )
    names = list(axes)
    # a list is an axis of several values; anything else (a tuple such as classes=(0, 1)) is one value
    values = [axes[name] if isinstance(axes[name], list) else [axes[name]] for name in names]
    configs = []
    default_hidden = RunConfig.__dataclass_fields__["hidden"].default
    for family, impl in itertools.product(families, impls):
        if not registry.has(family, impl):
            continue
        for combo in itertools.product(*values):
            settings = dict(zip(names, combo))
            if not registry.family(family).uses_hidden and "hidden" in settings:
                settings["hidden"] = default_hidden
            configs.append(validate(for_family(family, impl, **settings)))
    return list(dict.fromkeys(configs))  # the same point twice (e.g. study sweeps sharing lr 0.01) runs once


def check_writable(out: Path) -> None:
    """Fail early, before any training, if results cannot be written into out/runs."""
    runs = Path(out) / "runs"
    try:
        runs.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=runs, prefix=".probe-"):
            pass
    except OSError as exc:
        raise ConfigError(f"output folder {out} is not writable: {exc.strerror or exc}") from None


def _raise_interrupt(signum, frame):
    raise KeyboardInterrupt(f"signal {signum}")


def execute(configs, out, data_root=None, resume=False, on_run_start=None, on_epoch=None, on_run_end=None):
    """Run every config, saving each result to out/runs/ as it finishes (out=None: nothing is written).
    Returns the result records.

    KeyboardInterrupt (Ctrl-C, and SIGTERM, which is turned into one) stops at once: runs already
    finished stay on disk, the interrupted one is not recorded.
    """
    out = Path(out) if out is not None else None
    if resume and out is None:
        raise ConfigError("resuming needs the results folder to resume from")
    # every user mistake (device, data) surfaces before anything is written
    devices = {cfg.device: train.resolve_device(cfg.device) for cfg in configs}
    arrays = {name: data.load_arrays(name, data_root) for name in dict.fromkeys(c.dataset for c in configs)}
    if out is not None:
        check_writable(out)
    previous = signal.signal(signal.SIGTERM, _raise_interrupt) if _main_thread() else None
    try:
        done = results.ok_config_keys(out) if resume else set()
        records, cached = [], (None, None)
        for index, cfg in enumerate(configs, 1):
            if results.config_key(cfg) in done:
                if on_run_end is not None:
                    on_run_end(index, len(configs), cfg, None)
                continue
            device = devices[cfg.device]
            split_key = (cfg.dataset, cfg.family, cfg.protocol, cfg.seed, cfg.class_list, str(device))
            if cached[0] != split_key:
                cached = (split_key, data.load(cfg, device=device, arrays=arrays[cfg.dataset]))
            if on_run_start is not None:
                on_run_start(index, len(configs), cfg)
            try:
                fitted = train.run(cfg, cached[1], on_epoch=on_epoch)
            except (KeyboardInterrupt, ConfigError, data.DataError):
                raise
            except Exception as exc:  # a crash inside one run is recorded, and the sweep goes on
                fitted = failed_run(exc)
            record = results.make_result(cfg, fitted, device)
            if out is not None:
                results.save(record, out)
            records.append(record)
            if on_run_end is not None:
                on_run_end(index, len(configs), cfg, record)
        return records
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


def failed_run(exc: Exception) -> dict:
    return {
        "status": "failed",
        "error": f"{type(exc).__name__}: {exc}",
        "traceback": traceback.format_exc(limit=5),
        "history": [],
        "test_acc": None,
        "test_loss": None,
        "best_val_acc": None,
        "best_epoch": None,
        "epochs_run": 0,
        "train_seconds": None,
        "train_samples_per_s": None,
        "fit_seconds": None,
    }


def _main_thread() -> bool:
    import threading

    return threading.current_thread() is threading.main_thread()


def with_overrides(configs, **changes):
    return [replace(cfg, **changes) for cfg in configs]


def elapsed_since(started: float) -> str:
    seconds = time.perf_counter() - started
    return f"{seconds / 60:.1f} min" if seconds >= 120 else f"{seconds:.1f} s"


def default_out() -> Path:
    """$MNISTBENCH_OUT, else mnistbench-out/ in the working directory (never the committed results/)."""
    return Path(os.environ.get("MNISTBENCH_OUT", "mnistbench-out"))
