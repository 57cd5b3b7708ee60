"""The Python API: what the command line does, as functions for scripts and notebooks.

The CLI calls these very functions, so an option means the same thing in both places. Training options
(run, sweep, plan), named like the CLI's flags with `_` for `-`:
    epochs, lr, batch_size, seed, hidden, patience, no_early_stop, classes, device, dtype, loader,
    dataset, protocol, threads
An option left out (or None) takes the family's default (`mnistbench list`), else RunConfig's.
User mistakes raise mnistbench.ConfigError (the CLI prints them as one line).
"""
from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path

from . import files, registry
from .config import ConfigError, check_integer, check_integers, shown

TRAINING_OPTIONS = ("epochs", "lr", "batch_size", "seed", "hidden", "patience", "no_early_stop", "classes",
                    "device", "dtype", "loader", "dataset", "protocol", "threads")
# what sweep takes as axes (a list of values each); run takes one value of each
SWEEP_AXES = ("lr", "batch_size", "seed", "hidden", "threads", "dtype", "device")


def plan(family=None, impl=None, *, lists: bool = False, command: str = "run", **options) -> list:
    """The RunConfigs that run (lists=False) or sweep (lists=True) would train, without training them.

    family, impl: a name or a list of names (default: every registered family, every implementation of
    each; pairs that do not exist are skipped). run takes one value per option; sweep takes a list for
    each of SWEEP_AXES (hidden: a list of size tuples) and trains every combination.
    """
    from . import harness

    unknown = sorted(set(options) - set(TRAINING_OPTIONS))
    if unknown:
        raise ConfigError(f"unknown option {unknown[0]!r}; choose from {', '.join(TRAINING_OPTIONS)}")
    _check_flag(lists, "lists")
    no_early_stop = _check_flag(options.pop("no_early_stop", False) or False, "no_early_stop")
    if no_early_stop and options.get("patience") is not None:
        raise ConfigError("--patience and --no-early-stop contradict each other")
    families = _names(family, "family") or list(registry.families())
    impls = _names(impl, "impl") or list(dict.fromkeys(
        i for f in families if f in registry.families() for i in registry.impl_names(f)))
    classes = check_integers(options.pop("classes", None), "classes", optional=True)
    axes = {name: _axis(name, value, lists, command) for name, value in options.items()}
    axes["classes"] = [tuple(classes) if classes else None]
    if "hidden" in axes:
        axes["hidden"] = [_sizes(sizes) if sizes is not None else None for sizes in axes["hidden"]]
        _check_hidden_applies(None if axes["hidden"] == [None] else axes["hidden"], families)
    configs = harness.expand(families, impls, **axes)
    return [replace(cfg, patience=None) for cfg in configs] if no_early_stop else configs


def _axis(name: str, value, lists: bool, command: str) -> list:
    """An option as the list of values the grid crosses: [value] for run, the values for sweep."""
    flag = f"--{name.replace('_', '-')}"
    if not lists or name not in SWEEP_AXES:
        several = isinstance(value, list) if name != "hidden" else bool(
            value and isinstance(value, (list, tuple)) and isinstance(value[0], (list, tuple)))
        if several and name in SWEEP_AXES:
            raise ConfigError(f"{flag} takes one value in `{command}`; `sweep` takes lists")
        return [value]
    if value is None:
        return [None]
    if name == "hidden":
        if isinstance(value, (str, bytes)) or not isinstance(value, (list, tuple)):
            raise ConfigError(f"hidden must be sizes such as (512, 128), got {shown(value)}")
        return [sizes for sizes in value] if value and isinstance(value[0], (list, tuple)) else [value]
    values = list(value) if isinstance(value, (list, tuple)) else [value]
    if not values:
        raise ConfigError(f"{flag}: an empty list")
    return values


def execute(configs, *, out=None, save: bool = True, data_root=None, resume: bool = False, executor=None):
    """Train configs (from plan()): a generator of executors.Progress, each run's start, epochs and
    result as they happen; each result is saved to out/runs/ as it finishes (save=False: nothing is
    written). The CLI prints by iterating over this."""
    from . import harness
    from .executors import Executor

    _check_flag(save, "save")
    _check_flag(resume, "resume")
    data_root = _path(data_root, "data_root")
    folder = (_path(out, "out") or files.default_out()) if save else None
    executor = Executor(executor) if isinstance(executor, str) else executor
    return harness.execute(configs, folder, data_root=data_root, resume=resume, executor=executor)


def _results(progress) -> list:
    return [event.result for event in progress if event.kind == "done"]


def run(family=None, impl=None, *, out=None, save: bool = True, data_root=None, resume: bool = False,
        executor=None, **options) -> list:
    """Train every (family, impl) pair at one setting; return the RunResults.

    out: results folder, as the CLI's --out (default: $MNISTBENCH_OUT, else mnistbench-out/); each run
    is saved to out/runs/ as it finishes. save=False: nothing is written (a quick try in a notebook).
    data_root: the folder holding MNIST/raw/ (default: $MNISTBENCH_DATA, else a download cache).
    resume: skip points already finished in out. executor: "local" (default: this process, one run
    after another), "interleave" (lock-step rounds, for paired timings), "ray", or an executors.Executor.
    A run that raises inside its model is recorded with status "failed" and the others go on.
    Example: `run("softmax", ["manual", "builtin"], epochs=2, lr=0.05)`.
    """
    configs = plan(family, impl, **options)
    return _results(execute(configs, out=out, save=save, data_root=data_root, resume=resume, executor=executor))


def sweep(family=None, impl=None, *, out=None, save: bool = True, data_root=None, resume: bool = False,
          executor=None, **options) -> list:
    """run() over a grid: lr, batch_size, seed, threads, dtype, device may be lists, hidden a list of size
    tuples. Example: `sweep("mlp", lr=[0.1, 0.01], seed=[0, 1], hidden=[(512, 128), (64,)], epochs=5)`.
    """
    configs = plan(family, impl, lists=True, command="sweep", **options)
    return _results(execute(configs, out=out, save=save, data_root=data_root, resume=resume, executor=executor))


def study(seeds: int = 3, *, epochs=None, device: str = "cpu", dtype: str = "float32", threads=None,
          data_root=None, out=None, resume: bool = False, write: bool = True, executor=None) -> list:
    """The notebook's whole study (`mnistbench study`): every implementation of every family at its
    defaults plus the MLP's lr and batch-size sweeps, over seeds 0..seeds-1, saved into out; then the
    report (write=False: no report). epochs caps every run (quick tries). Returns the results trained
    now (not those skipped by resume); study_plan() gives the grid without training it.
    """
    check_integer(seeds, "seeds")
    check_integer(epochs, "epochs", optional=True)
    out = _path(out, "out") or files.default_out()
    configs = study_plan(seeds, epochs=epochs, device=device, dtype=dtype, threads=threads)
    trained = _results(execute(configs, out=out, data_root=data_root, resume=resume, executor=executor))
    if write:
        report(out)
    return trained


def study_plan(seeds: int = 3, *, epochs=None, device: str = "cpu", dtype: str = "float32", threads=None) -> list:
    from . import studygrid

    return studygrid.study_configs(seeds=seeds, epochs=epochs, device=device, threads=threads, dtype=dtype)


def load_results(folder=None):
    """The runs saved in folder (default: the default --out) as a pandas DataFrame, one row per run:
    config fields, metrics, env_* columns, and history / per_class_acc / confusion as Python objects."""
    from . import results

    return results.to_frame(results.load_results(_existing(folder)))


def report(folder=None, benchmarks=None, margin=0.002) -> dict:
    """Write folder/report.md, a CSV per table and folder/plots/*.png (`mnistbench report`).

    benchmarks: a pytest-benchmark JSON file or folder whose timings join the tables.
    margin: the twins table's equivalence margin in test accuracy (0.002 = 0.2 points), 0 < margin < 1.
    Returns {"report": path, "tables": [csv paths], "plots": [png paths], "warnings": [text]}.
    """
    import math
    import numbers

    from .reporting.benchtables import report_tables
    from .reporting.document import build

    if (isinstance(margin, bool) or not isinstance(margin, numbers.Real) or not math.isfinite(margin)
            or not 0 < margin < 1):
        raise ConfigError(f"margin must be a number between 0 and 1 (an accuracy: 0.002 = 0.2 points), "
                          f"not {margin!r}")
    folder = _existing(folder)
    return build(folder, report_tables(folder, benchmarks=_path(benchmarks, "benchmarks")), margin=float(margin))


def compare(base, new=None, threshold: float = 0.05, by=None):
    """Compare two results folders (or frames from load_results, or lists of run records): one row per
    matching point, with the change and a verdict where it exceeds `threshold` (see
    mnistbench.reporting.compare). With by=KEY, base alone: its groups against the first."""
    from .reporting.compare import compare as compare_frames

    base, new = (_source(side, name) for side, name in ((base, "base"), (new, "new")))
    if by is not None:
        from .config import check_name

        check_name(by, "by")
    return compare_frames(base, new, threshold=threshold, by=by)


# ---------------------------------------------------------------- option shapes
def _existing(folder) -> Path:
    folder = _path(folder, "folder") or files.default_out()
    if not folder.is_dir():
        raise ConfigError(f"results folder {folder} does not exist")
    return folder


def _names(value, what: str) -> list[str] | None:
    """A name or a list of names as a list (None stays None)."""
    if value is None or isinstance(value, str):
        return None if value is None else [value]
    if not isinstance(value, (list, tuple)) or not all(isinstance(name, str) for name in value):
        raise ConfigError(f"{what} must be a name or a list of names, got {shown(value)}")
    return list(value) or None


def _check_flag(value, what: str) -> bool:
    if not isinstance(value, bool):
        raise ConfigError(f"{what} must be True or False, got {shown(value)}")
    return value


def _path(value, what: str) -> Path | None:
    """A folder or file argument: None, a str or an os.PathLike, with ~ expanded."""
    if value is None:
        return None
    if not isinstance(value, (str, os.PathLike)):
        raise ConfigError(f"{what} must be a path (str or pathlib.Path), got {shown(value)}")
    return files.user_path(os.fspath(value), what)


def _source(value, what: str):
    """A side of compare: a path, or run records as load_results' DataFrame or a list of dicts."""
    if value is None or isinstance(value, list) or type(value).__name__ == "DataFrame":
        return value
    return _path(value, what)


def _check_hidden_applies(hidden, families) -> None:
    """--hidden for families that have no hidden layer would be ignored: say so instead."""
    if hidden is None or any(f in registry.families() and registry.family(f).uses_hidden for f in families):
        return
    with_hidden = [name for name, f in registry.families().items() if f.uses_hidden]
    raise ConfigError(f"--hidden applies to families with hidden layers ({', '.join(with_hidden) or 'none'}); "
                      f"{', '.join(families)} have none")


def _sizes(value) -> tuple[int, ...]:
    """Hidden sizes checked now, even for a family that does not use them: --hidden 0 is always a typo."""
    sizes = check_integers(value, "hidden sizes")
    if not sizes or any(size < 1 for size in sizes):
        raise ConfigError(f"--hidden sizes must be one or more integers >= 1, got {list(sizes)}")
    return sizes
