"""Expand a grid of configurations and execute it: load data once, run each point, save each result.

Every point is saved the moment it finishes (atomically), so an interrupted sweep loses only the runs
in progress, and `resume=True` skips points whose result is already on disk. Where the runs execute
(this process, or a Ray cluster) is the executor's business (executors); saving is always done here.
"""
from __future__ import annotations

import itertools
import os
import signal
import tempfile
import time
from dataclasses import dataclass, replace
from pathlib import Path

from . import data, executors, registry, results
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


@dataclass(frozen=True)
class Progress:
    """Where a grid stands after a run finished: runs of this session done (failed ones included),
    running, queued (not started yet), failed, and total (runs to do, points skipped by resume aside)."""

    done: int
    running: int
    queued: int
    failed: int
    total: int


def execute(configs, out, data_root=None, resume=False, on_run_start=None, on_epoch=None, on_run_end=None,
            executor=None, on_progress=None):
    """Run every config, saving each result to out/runs/ as it finishes (out=None: nothing is written).
    Returns the result records.

    executor: where runs execute (executors.LOCAL, the default: in this process, one after another).
    Whatever the executor, results are saved here, in the order they finish. on_run_end(index, total,
    cfg, record) follows each point (record None: skipped by resume); on_progress(progress, cfg, record)
    follows each finished run. KeyboardInterrupt (Ctrl-C, and SIGTERM, which is turned into one) stops
    at once: runs already finished stay on disk, runs in progress are stopped and not recorded.
    """
    out = Path(out) if out is not None else None
    if resume and out is None:
        raise ConfigError("resuming needs the results folder to resume from")
    executor = (executor or executors.LOCAL).check()
    # every user mistake (data, device, cluster) surfaces before anything is written
    arrays = {name: data.load_arrays(name, data_root) for name in dict.fromkeys(c.dataset for c in configs)}
    done = results.ok_config_keys(out) if resume else set()
    todo = [(index, cfg) for index, cfg in enumerate(configs, 1) if results.config_key(cfg) not in done]
    if on_run_end is not None:
        for index, cfg in enumerate(configs, 1):
            if results.config_key(cfg) in done:
                on_run_end(index, len(configs), cfg, None)
    records, failed = [], 0
    with executors.session(executor, todo, len(configs), arrays, on_run_start, on_epoch) as runs:
        if out is not None:
            check_writable(out)
        # installed after the executor is ready: starting Ray sets a SIGTERM handler of its own
        previous = signal.signal(signal.SIGTERM, _raise_interrupt) if _main_thread() else None
        try:
            for finished in runs:
                if out is not None:
                    results.save(finished.record, out)
                records.append(finished.record)
                failed += finished.record["status"] == "failed"
                if on_run_end is not None:
                    on_run_end(finished.index, len(configs), finished.cfg, finished.record)
                if on_progress is not None:
                    progress = Progress(len(records), finished.running,
                                        len(todo) - len(records) - finished.running, failed, len(todo))
                    on_progress(progress, finished.cfg, finished.record)
        finally:
            if previous is not None:
                signal.signal(signal.SIGTERM, previous)
    return records


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
