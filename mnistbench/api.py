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
from pathlib import Path

from . import files, registry
from .config import ConfigError, check_integer, check_integers, shown

TRAINING_OPTIONS = ("epochs", "lr", "batch_size", "seed", "hidden", "patience", "no_early_stop", "classes",
                    "device", "dtype", "loader", "dataset", "protocol", "threads")
SWEEP_AXES = ("lr", "batch_size", "seed")  # and hidden, whose one value is itself a sequence


def plan(family=None, impl=None, *, lists: bool = False, command: str = "run", **options) -> list:
    """The RunConfigs that run (lists=False) or sweep (lists=True) would train, without training them.

    family, impl: a name or a list of names (default: every registered family, every implementation of
    each; pairs that do not exist are skipped). With lists, lr, batch_size and seed may be lists and
    hidden a list of size tuples: the grid is every combination.
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
    settings = {name: value for name, value in options.items() if name not in (*SWEEP_AXES, "hidden", "classes")}
    settings["device"] = _axis(settings.get("device"), "device", False, command)
    axes = {name: _axis(options.get(name), name, lists, command) for name in SWEEP_AXES}
    classes = check_integers(options.get("classes"), "classes", optional=True)
    hidden = _hidden(options.get("hidden"), lists, command)
    _check_hidden_applies(hidden, families)
    configs = harness.expand(families, impls, **axes, **settings, hidden=hidden,
                             classes=tuple(classes) if classes else None)
    return harness.with_overrides(configs, patience=None) if no_early_stop else configs


def run(family=None, impl=None, *, out=None, save: bool = True, data_root=None, resume: bool = False,
        executor=None, on_run_start=None, on_epoch=None, on_run_end=None, on_progress=None,
        **options) -> list[dict]:
    """Train every (family, impl) pair at one setting; return the result records (one dict per run).

    out: results folder, as the CLI's --out (default: $MNISTBENCH_OUT, else mnistbench-out/); each run
    is saved to out/runs/ as it finishes. save=False: nothing is written (a quick try in a notebook).
    data_root: the folder holding MNIST/raw/ (default: $MNISTBENCH_DATA, else a download cache).
    resume: skip points already finished in out. executor: "local" (default: this process, one run
    after another), "ray", or an executors.Executor (a Ray cluster's address, runs per node).
    Hooks, called as the CLI's progress lines are: on_run_start(index, total, cfg), on_epoch(epoch_record),
    on_run_end(index, total, cfg, record), and with Ray on_progress(progress, cfg, record).
    A run that raises inside its model is recorded with status "failed" and the others go on.
    Example: `run("softmax", ["manual", "builtin"], epochs=2, lr=0.05)`.
    """
    configs = plan(family, impl, **options)
    return _train(configs, out, save, data_root, resume, executor, dict(
        on_run_start=on_run_start, on_epoch=on_epoch, on_run_end=on_run_end, on_progress=on_progress))


def sweep(family=None, impl=None, *, out=None, save: bool = True, data_root=None, resume: bool = False,
          executor=None, on_run_start=None, on_epoch=None, on_run_end=None, on_progress=None,
          **options) -> list[dict]:
    """run() over a grid: lr, batch_size and seed may be lists, hidden a list of size tuples.

    Example: `sweep("mlp", lr=[0.1, 0.01], seed=[0, 1], hidden=[(512, 128), (64,)], epochs=5)`.
    """
    configs = plan(family, impl, lists=True, command="sweep", **options)
    return _train(configs, out, save, data_root, resume, executor, dict(
        on_run_start=on_run_start, on_epoch=on_epoch, on_run_end=on_run_end, on_progress=on_progress))


def _train(configs, out, save, data_root, resume, executor, hooks: dict) -> list[dict]:
    from . import harness
    from .executors import Executor

    _check_flag(save, "save")
    _check_flag(resume, "resume")
    for name, hook in hooks.items():
        if hook is not None and not callable(hook):
            raise ConfigError(f"{name} must be a function or None, got {shown(hook)}")
    data_root = _path(data_root, "data_root")
    folder = (_path(out, "out") or files.default_out()) if save else None
    executor = Executor(executor) if isinstance(executor, str) else executor
    return harness.execute(configs, folder, data_root=data_root, resume=resume, executor=executor, **hooks)


def study(seeds: int = 3, *, epochs=None, device: str = "cpu", dtype: str = "float32", threads=None,
          data_root=None, out=None, resume: bool = False, write: bool = True, executor=None, on_plan=None,
          on_run_start=None, on_epoch=None, on_run_end=None, on_progress=None) -> list[dict]:
    """The notebook's whole study (`mnistbench study`): every implementation of every family at its
    defaults plus the MLP's lr and batch-size sweeps, over seeds 0..seeds-1, saved into out; then the
    report (write=False: no report). epochs caps every run (quick tries). on_plan(configs) is called
    with the grid before training. Returns the records trained now (not those skipped by resume).
    """
    from . import notebook

    check_integer(seeds, "seeds")
    check_integer(epochs, "epochs", optional=True)
    configs = notebook.study_configs(seeds=seeds, epochs=epochs, device=device, threads=threads, dtype=dtype)
    if on_plan is not None:
        on_plan(configs)
    out = _path(out, "out") or files.default_out()
    records = _train(configs, out, True, data_root, resume, executor, dict(
        on_run_start=on_run_start, on_epoch=on_epoch, on_run_end=on_run_end, on_progress=on_progress))
    if write:
        report(out)
    return records


def load_results(folder=None):
    """The runs saved in folder (default: the default --out) as a pandas DataFrame, one row per run:
    config fields, metrics, env_* columns, and history / per_class_acc / confusion as Python objects."""
    from . import results

    return results.to_frame(_existing(folder))


def report(folder=None, benchmarks=None) -> dict:
    """Write folder/report.md, a CSV per table and folder/plots/*.png (`mnistbench report`).

    benchmarks: a pytest-benchmark JSON file or folder whose timings join the tables.
    Returns {"report": path, "tables": [csv paths], "plots": [png paths], "warnings": [text]}.
    """
    from .reporting import build
    from .reporting.benchtables import report_tables

    folder = _existing(folder)
    return build(folder, report_tables(folder, benchmarks=_path(benchmarks, "benchmarks")))


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


def _axis(value, name: str, lists: bool, command: str):
    """A sweep axis as a list; in a single-setting command, the one value (a one-item list is fine)."""
    if not isinstance(value, (list, tuple)):
        return value
    if lists:
        return list(value)
    if len(value) > 1:
        raise ConfigError(f"--{name.replace('_', '-')} takes one value in `{command}`; `sweep` takes lists")
    return value[0] if value else None


def _hidden(value, lists: bool, command: str):
    """Hidden sizes: one tuple such as (512, 128), or (sweep) a list of them."""
    if value is None:
        return None
    if isinstance(value, (str, bytes)) or not isinstance(value, (list, tuple)):
        raise ConfigError(f"hidden must be sizes such as (512, 128), got {shown(value)}")
    if all(not isinstance(size, (list, tuple)) for size in value):
        return _sizes(value)
    chosen = _axis(list(value), "hidden", lists, command)
    return [_sizes(sizes) for sizes in chosen] if lists else _sizes(chosen)


def _sizes(value) -> tuple[int, ...]:
    """Hidden sizes checked now, even for a family that does not use them: --hidden 0 is always a typo."""
    sizes = check_integers(value, "hidden sizes")
    if not sizes or any(size < 1 for size in sizes):
        raise ConfigError(f"--hidden sizes must be one or more integers >= 1, got {list(sizes)}")
    return sizes
