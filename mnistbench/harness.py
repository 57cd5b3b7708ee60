"""Expand a grid of configurations and execute it: load data once, run each point, save each result.

Every point is saved the moment it finishes (atomically), so an interrupted sweep loses only the runs
in progress, and `resume=True` skips points whose result is already on disk. Each point is claimed
(claims.py) just before it starts and the claim held until the command ends, so two commands writing
into one folder at the same time never train it twice.
Where the runs execute (this process, interleaved, or a Ray cluster) is the executor's business
(executors); saving is always done here.
"""
from __future__ import annotations

import itertools
import signal
import tempfile
import time
from dataclasses import replace
from pathlib import Path

from . import claims, data, executors, files, interrupts, registry, results
from .config import ConfigError, check_family, for_family, validate
from .local import Progress
from .result import now
from .train import resolve_device


def expand(families, impls, **axes) -> list:
    """Every valid (family, impl) pair crossed with every value of each list axis (lr=[...], seed=[...]).

    An axis value of None keeps the family's default. Pairs that do not exist (mlp x sklearn) are
    skipped; an implementation that exists for none of the families is an error. A family that does
    not use hidden sizes keeps its default ones, so a --hidden axis does not repeat its runs.
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
    # each axis is a list of values; a single value (the study's fixed settings) is an axis of one
    values = [axes[name] if isinstance(axes[name], list) else [axes[name]] for name in names]
    configs = []
    for family, impl in itertools.product(families, impls):
        if not registry.has(family, impl):
            continue
        for combo in itertools.product(*values):
            settings = dict(zip(names, combo))
            if not registry.family(family).uses_hidden:
                settings.pop("hidden", None)
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


def _already_done(out: Path, key: str, since: str = "") -> bool:
    """Whether a finished run of this configuration from this environment is saved in out, created at
    or after `since` (UTC, as RunResult.created; the files of a configuration carry its key in their
    names: only those are read)."""
    for path in (Path(out) / "runs").glob(f"*-{key}-*.json"):
        try:
            result = results.read_result(path)
        except results.ResultError:
            continue
        if result.finished and result.config_key == key and results.same_environment(result) \
                and result.created >= since:
            return True
    return False


def execute(configs, out, data_root=None, resume=False, executor=None):
    """Run every config, saving each result to out/runs/ as it finishes (out=None: nothing is written).
    A generator of executors.Progress: each run's start, epochs and result, and the points skipped.

    KeyboardInterrupt (Ctrl-C, and SIGTERM, which is turned into one) stops at once: runs already
    finished stay on disk, runs in progress are stopped and not recorded, claims are released.
    """
    out = Path(out) if out is not None else None
    if resume and out is None:
        raise ConfigError("resuming needs the results folder to resume from")
    executor = (executor or executors.LOCAL).check()
    # every user mistake (data, device, folder) surfaces before anything is written
    arrays = {name: data.load_arrays(name, data_root) for name in dict.fromkeys(c.dataset for c in configs)}
    for cfg in configs:
        data.check_usable(arrays[cfg.dataset], cfg)
    for device in dict.fromkeys(c.device for c in configs):
        resolve_device(device)  # a missing GPU is a user mistake, not a failed run
    made = [p for p in (out, out / "runs", out / "runs" / ".claims") if not p.exists()] if out is not None else []
    if out is not None:
        check_writable(out)
    total, skipped, held, started = len(configs), [], {}, now()

    def claimed():
        """The points to run, each claimed just before the executor takes it."""
        for index, cfg in enumerate(configs, 1):
            key = results.config_key(cfg)
            if out is None:
                yield index, cfg
                continue
            with interrupts.deferred():  # a Ctrl-C or SIGTERM lands before the claim or after it is held
                claim = claims.take(out, key)
                if not isinstance(claim, dict):
                    held[index] = claim
            if isinstance(claim, dict):
                skipped.append(Progress("skipped", index, total, cfg,
                                        note=f"being trained by process {claim['pid']} on {claim['host']}"))
                continue
            # finished by a command beside this one (since this one started), or at all with --resume
            if _already_done(out, key, "" if resume else started):
                claims.release(held.pop(index))
                note = "already done (--resume)" if resume else "trained meanwhile by another command"
                skipped.append(Progress("skipped", index, total, cfg, note=note))
                continue
            yield index, cfg

    counts = {"done": 0, "failed": 0}
    previous = signal.signal(signal.SIGTERM, interrupts.raise_interrupt) if interrupts.in_main_thread() else None
    progress = executors.runs(executor, claimed(), total, arrays, data_root)
    try:
        for event in itertools.chain(progress, [None]):
            while skipped:
                yield skipped.pop(0)
            if event is None:
                break
            if event.kind == "done":
                if out is not None:
                    event.result.timing  # derived before the save, so that its line follows the save at once
                    # its claim is kept until the command ends: a command beside this one must not retrain it
                    files.save_or_stop(results.save, event.result, out, counts["done"])
                counts["done"] += 1
                counts["failed"] += event.result.status == "failed"
                event = replace(event, **counts)
            yield event
    finally:
        progress.close()
        for claim in held.values():
            claims.release(claim)
        if not counts["done"]:  # a mistake found before any run finished (no node can host one): nothing left
            for folder in reversed(made):
                _remove_if_empty(folder)
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


def _remove_if_empty(folder: Path) -> None:
    try:
        folder.rmdir()
    except OSError:  # not empty, or gone: leave it
        pass


def elapsed_since(started: float) -> str:
    seconds = time.perf_counter() - started
    return f"{seconds / 60:.1f} min" if seconds >= 120 else f"{seconds:.1f} s"


def default_out() -> Path:
    """$MNISTBENCH_OUT (an empty one is unset), else mnistbench-out/ in the working directory."""
    from .files import default_out as from_environment

    return from_environment()
