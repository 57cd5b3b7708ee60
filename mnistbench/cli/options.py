"""Every command-line option, declared once: its flags, type, default and help. Commands pick theirs by
name with add(); RunConfigs come from the parsed options with configs_from()."""
from __future__ import annotations

import argparse
from pathlib import Path

from .. import files, registry
from ..api import TRAINING_OPTIONS, plan
from ..config import DATASETS, DEVICES, DTYPES, LOADERS, PROTOCOLS, ConfigError

# the --executor choices (executors.EXECUTORS less `interleave`, which is --interleave), spelled out so
# that --help need not import torch (a test keeps them equal)
EXECUTORS = ("local", "ray")


class OneLineParser(argparse.ArgumentParser):
    """argparse, but a usage error is one line (and exit 2), like every other user mistake."""

    def error(self, message):
        raise ConfigError(message)


def comma_list(kind, name):
    def parse(text: str):
        items = [item.strip() for item in text.split(",")]
        if not any(items):
            raise argparse.ArgumentTypeError(f"{name}: empty list")
        if not all(items):  # 512,,128 is a typo, not 512,128
            raise argparse.ArgumentTypeError(f"{name}: empty item in {text!r}; separate values with one comma")
        try:
            return [kind(item) for item in items]
        except ValueError:
            raise argparse.ArgumentTypeError(f"{name}: cannot read {text!r} as {kind.__name__} values") from None

    return parse


def path_option(name):
    """A path option: ~ expanded, an empty value or an unexpandable ~user refused in one line."""
    def parse(text: str) -> Path:
        try:
            return files.user_path(text, name)
        except ConfigError as exc:
            raise argparse.ArgumentTypeError(str(exc).removeprefix(f"{name}: ").removeprefix(f"{name} ")) from None

    return parse


def hidden_sizes(text: str) -> tuple[int, ...]:
    return tuple(comma_list(int, "--hidden")(text))


def fraction(text: str) -> float:
    """A threshold as a fraction (0.05) or a percentage (5%)."""
    try:
        return float(text[:-1]) / 100 if text.strip().endswith("%") else float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"cannot read {text!r} as a fraction (0.05) or a percentage (5%)") from None


def _opt(*flags, **kwargs):
    return flags, kwargs


def _families_help() -> str:
    return "comma list of model families (default: all; `mnistbench list` shows them)"


# name -> (flags, argparse keyword arguments). A command may override the default (add(..., repeats=3)).
OPTIONS = {
    "family": _opt("--family", type=comma_list(str, "--family"), default=None, help=_families_help()),
    "impl": _opt("--impl", type=comma_list(str, "--impl"), default=None,
                 help="comma list of implementations (default: every one of each family)"),
    "epochs": _opt("--epochs", type=int, help="epoch cap (default: the family's; `mnistbench list` shows them)"),
    "lr": _opt("--lr", type=float, help="learning rate (default: the family's, 0.01)"),
    "batch_size": _opt("--batch-size", type=int, help="batch size (default: the family's, 64)"),
    "seed": _opt("--seed", type=int, help="seed of split, weights and batch order (default 0)"),
    "hidden": _opt("--hidden", type=hidden_sizes,
                   help="hidden layer sizes, e.g. 512,128 (families with hidden layers; `mnistbench list`)"),
    "patience": _opt("--patience", type=int,
                     help="early-stopping patience on validation loss (default: the family's; `mnistbench list`)"),
    "no_early_stop": _opt("--no-early-stop", action="store_true", help="train every epoch, even for the MLP"),
    "classes": _opt("--classes", type=comma_list(int, "--classes"), help="digits to use, e.g. 0,1"),
    "device": _opt("--device", default="cpu", help=f"{', '.join(DEVICES)} (default cpu)"),
    "dtype": _opt("--dtype", default="float32", help=f"compute precision: {' or '.join(DTYPES)} (default float32)"),
    "loader": _opt("--loader", default="tensor", help=f"{' or '.join(LOADERS)} (default tensor)"),
    "dataset": _opt("--dataset", default="mnist", help=f"{', '.join(DATASETS)} (default mnist)"),
    "protocol": _opt("--protocol", default="seed", help=f"{' or '.join(PROTOCOLS)} (default seed)"),
    "threads": _opt("--threads", type=int, help="torch intra-op threads (default: torch's choice)"),
    "data_root": _opt("--data-root", type=path_option("--data-root"),
                      help="folder holding MNIST/raw/ (default: $MNISTBENCH_DATA, else a download cache)"),
    "out": _opt("--out", type=path_option("--out"), default=None, help="output folder (default: $MNISTBENCH_OUT, else mnistbench-out/)"),
    "resume": _opt("--resume", action="store_true", help="skip points already finished in --out"),
    "quiet": _opt("--quiet", action="store_true", help="one line per run, not one per epoch"),
    "verbose": _opt("--verbose", action="store_true", help="one line per epoch, not only per run"),
    "seeds": _opt("--seeds", type=int, default=3, help="repeat every point over seeds 0..N-1 (default 3)"),
    "profile": _opt("--profile", action="store_true",
                    help="also profile a few steps of each run into <out>/profiles/<run_id>/ (untimed)"),
    "repeats": _opt("--repeats", type=int, default=5, help="timings per point; the median is quoted (default %(default)s)"),
    "notebook_batches": _opt("--notebook-batches", type=int, default=None,
                             help="time the notebook's loop over its first N batches and scale to an epoch "
                                  "(default: whole epochs)"),
    "samples": _opt("--samples", type=int, default=16384,
                    help="training samples timed per point, at most the training split (default 16384)"),
    "wait": _opt("--wait", type=int, default=1, help="steps run before the profiler records (default 1)"),
    "warmup": _opt("--warmup", type=int, default=2, help="steps recorded then discarded (default 2)"),
    "active": _opt("--active", type=int, default=5, help="steps recorded and kept (default 5)"),
    "with_stack": _opt("--with-stack", action="store_true", help="record Python stacks (bigger, slower traces)"),
    "margin": _opt("--margin", type=fraction, default=0.002,
                   help="the twins table's equivalence margin for test accuracy, as 0.002 or 0.2%% (default "
                        "0.2 points): inside it, a TOST paired by seed says equivalent"),
    "threshold": _opt("--threshold", type=fraction, default=0.05,
                      help="the smallest change in time that counts as faster or slower, as 0.05 or 5%% "
                           "(default 5%%): a smaller one is never faster or slower, however significant"),
    "by": _opt("--by", metavar="KEY", help="compare the groups of ONE results folder by a recorded env or config "
                                           "key (torch, threads, host, lr...), the first group as base"),
    "interleave": _opt("--interleave", action="store_true",
                       help="train every configuration in lock-step rounds of short blocks, the order "
                            "reshuffled each round, so that compare pairs their times round by round "
                            "(docs/measuring.md)"),
    "block_steps": _opt("--block-steps", type=int, metavar="N",
                        help="with --interleave: updates per block (default: about 0.2 s of work, calibrated)"),
    "order_seed": _opt("--order-seed", type=int, default=0, metavar="N",
                       help="with --interleave: seed of the rounds' shuffled order (default 0)"),
    "python": _opt("--python", action="append", type=Path, metavar="PY", default=None,
                   help="with --interleave: also run every configuration under this Python (another "
                        "environment with mnistbench installed), in the same rounds; repeatable"),
    "executor": _opt("--executor", choices=EXECUTORS, default="local",
                     help="where runs execute: local (this process, one after another; default) or ray "
                          "(Ray tasks on a cluster, one line per finished run; see docs/cluster.md)"),
    "address": _opt("--address", help="with --executor ray: a running Ray cluster, e.g. auto or "
                                      "10.0.0.1:6379 (default: start a local Ray instance for this command)"),
    "runs_per_node": _opt("--runs-per-node", type=int, metavar="N",
                          help="with --executor ray: at most N runs at once on one machine (1: timings "
                               "never share a machine; default: as many as CPUs and GPUs allow)"),
    "benchmarks": _opt("--benchmarks", type=path_option("--benchmarks"), metavar="FILE_OR_DIR",
                       help="pytest-benchmark JSON (or a folder of them): timing stats joined with accuracy"),
}

# the options of the commands that can run a grid on a cluster
EXECUTION = ["executor", "address", "runs_per_node"]
INTERLEAVE = ["interleave", "block_steps", "order_seed", "python"]
# sweep: the axes of its grid take several values (run takes one of each)
SWEEP_LISTS = {
    "lr": {"type": comma_list(float, "--lr"), "help": "comma list of learning rates (default: the family's)"},
    "batch_size": {"type": comma_list(int, "--batch-size"), "help": "comma list of batch sizes (default: the family's)"},
    "seed": {"type": comma_list(int, "--seed"), "help": "comma list of seeds (default 0)"},
    "threads": {"type": comma_list(int, "--threads"), "help": "comma list of torch thread counts"},
    "dtype": {"type": comma_list(str, "--dtype"), "default": ["float32"], "help": "comma list of precisions"},
    "device": {"type": comma_list(str, "--device"), "default": ["cpu"], "help": "comma list of devices"},
    "hidden": {"action": "append", "help": "MLP hidden sizes; repeat for several: --hidden 512,128 --hidden 600,128"},
}

# the options of every command that trains models
TRAINING = ["family", "impl", "epochs", "lr", "batch_size", "seed", "hidden", "patience", "no_early_stop",
            "classes", "device", "dtype", "loader", "dataset", "protocol", "threads", "data_root", "out"]


def add(parser, *names, **changes) -> None:
    """Add the named options to parser. A keyword argument named like an option changes its argparse
    settings for this command, e.g. add(p, "repeats", repeats={"default": 3})."""
    for name in names:
        flags, kwargs = OPTIONS[name]
        parser.add_argument(*flags, **{**kwargs, **changes.get(name, {})})


def single(args, name: str, command: str):
    """The one value of a list-valued option in a command that takes one (None when not given)."""
    value = getattr(args, name)
    if value is None or not isinstance(value, list):
        return value
    if len(value) > 1:
        raise ConfigError(f"--{name.replace('_', '-')} takes one value in `{command}`; use `mnistbench sweep` "
                          "for a list")
    return value[0]


def families_of(args) -> list[str]:
    return args.family or list(registry.families())


def training_options(args) -> dict:
    """The training options of api.run / api.sweep / api.plan, from the parsed command line."""
    return {name: getattr(args, name) for name in TRAINING_OPTIONS}


def configs_from(args, lists: bool, command: str):
    """RunConfigs for the parsed options: the grid of families x impls x the list-valued options."""
    return plan(args.family, args.impl, lists=lists, command=command, **training_options(args))


def executor_from(args):
    from ..executors import Executor

    interleave = getattr(args, "interleave", False)
    if interleave and getattr(args, "executor", "local") != "local":
        raise ConfigError("--interleave trains in this process: it does not combine with --executor ray")
    if not interleave and (getattr(args, "python", None) or getattr(args, "block_steps", None) is not None):
        raise ConfigError("--python and --block-steps apply with --interleave only")
    return Executor("interleave" if interleave else getattr(args, "executor", "local"),
                    getattr(args, "address", None), getattr(args, "runs_per_node", None),
                    order_seed=getattr(args, "order_seed", 0) or 0, block_steps=getattr(args, "block_steps", None),
                    pythons=tuple(str(p) for p in getattr(args, "python", None) or ())).check()
