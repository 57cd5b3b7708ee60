"""Command-line arguments shared by the sub-commands: types, the common run options, RunConfigs from them."""
from __future__ import annotations

import argparse
import math
from pathlib import Path

from . import harness
from .config import DATASETS, DEVICES, FAMILIES, LOADERS, PROTOCOLS, ConfigError


class OneLineParser(argparse.ArgumentParser):
    """argparse, but a usage error is one line (and exit 2), like every other user mistake."""

    def error(self, message):
        raise ConfigError(message)


def comma_list(kind, name):
    def parse(text: str):
        items = [item.strip() for item in text.split(",") if item.strip()]
        if not items:
            raise argparse.ArgumentTypeError(f"{name}: empty list")
        try:
            return [kind(item) for item in items]
        except ValueError:
            raise argparse.ArgumentTypeError(f"{name}: cannot read {text!r} as {kind.__name__} values") from None

    return parse


def hidden_sizes(text: str) -> tuple[int, ...]:
    sizes = comma_list(int, "--hidden")(text)
    if any(size < 1 for size in sizes):
        raise argparse.ArgumentTypeError(f"--hidden: sizes must be >= 1, got {text!r}")
    return tuple(sizes)


def add_run_options(parser, lists: bool) -> None:
    """The options every training command shares. With lists=True, --lr/--batch-size/--seed take lists."""
    many = "comma list " if lists else ""
    parser.add_argument("--family", type=comma_list(str, "--family"), default=list(FAMILIES),
                        help=f"comma list of {', '.join(FAMILIES)} (default: all)")
    parser.add_argument("--impl", type=comma_list(str, "--impl"), default=None,
                        help="comma list of implementations (default: every one of each family)")
    parser.add_argument("--epochs", type=int, help="epoch cap (default: the notebook's, 100 or 40)")
    parser.add_argument("--lr", type=comma_list(float, "--lr"), help=f"{many}learning rate (default 0.01)")
    parser.add_argument("--batch-size", type=comma_list(int, "--batch-size"), help=f"{many}batch size (default 64)")
    parser.add_argument("--seed", type=comma_list(int, "--seed"), help=f"{many}seed (default 0)")
    parser.add_argument("--hidden", type=hidden_sizes, nargs="+" if lists else None,
                        help="MLP hidden sizes, e.g. 512,128" + (" (several: 512,128 256,64)" if lists else ""))
    parser.add_argument("--patience", type=int, help="early-stopping patience on val loss (default: mlp 3, else off)")
    parser.add_argument("--no-early-stop", action="store_true", help="train every epoch, even for the MLP")
    parser.add_argument("--classes", type=comma_list(int, "--classes"), help="digits to use, e.g. 0,1")
    parser.add_argument("--device", default="cpu", help=f"{', '.join(DEVICES)} (default cpu)")
    parser.add_argument("--loader", default="tensor", help=f"{' or '.join(LOADERS)} (default tensor)")
    parser.add_argument("--dataset", default="mnist", help=f"{', '.join(DATASETS)} (default mnist)")
    parser.add_argument("--protocol", default="seed", help=f"{' or '.join(PROTOCOLS)} (default seed)")
    parser.add_argument("--threads", type=int, help="torch intra-op threads (default: torch's choice)")
    parser.add_argument("--data-root", type=Path, help="folder holding MNIST/raw/ (default $MNISTBENCH_DATA)")
    parser.add_argument("--out", type=Path, default=None, help="results folder (default results/)")
    parser.add_argument("--resume", action="store_true", help="skip points already finished in --out")
    parser.add_argument("--quiet", action="store_true", help="one line per run instead of one per epoch")


def configs_from(args, lists: bool):
    """RunConfigs for the parsed options: the grid of families x impls x the list-valued options."""
    for name in ("lr", "batch_size", "seed"):
        value = getattr(args, name)
        if not lists and value is not None and len(value) > 1:
            raise ConfigError(f"--{name.replace('_', '-')} takes one value here; use `mnistbench sweep` for a list")
    hidden = args.hidden if lists else ([args.hidden] if args.hidden else None)
    if args.no_early_stop and args.patience is not None:
        raise ConfigError("--patience and --no-early-stop contradict each other")
    impls = args.impl or sorted({i for f in args.family for i in _impls(f)}, key=_impl_order)
    configs = harness.expand(
        args.family, impls,
        lr=args.lr, batch_size=args.batch_size, seed=args.seed, hidden=hidden,
        epochs=args.epochs, patience=args.patience, classes=tuple(args.classes) if args.classes else None,
        device=args.device, loader=args.loader, dataset=args.dataset, protocol=args.protocol,
        threads=args.threads,
    )
    if args.no_early_stop:
        configs = harness.with_overrides(configs, patience=None)
    return configs


def _impls(family):
    from .models import impls_for

    return impls_for(family) if family in FAMILIES else []


def _impl_order(impl):
    from .models import all_impls

    order = all_impls()
    return order.index(impl) if impl in order else len(order)


def fmt(value, spec=".4f"):
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    return format(value, spec)


def describe(cfg) -> str:
    hidden = f" hidden={','.join(map(str, cfg.hidden))}" if cfg.family == "mlp" else ""
    return (f"{cfg.family}/{cfg.impl} lr={cfg.lr:g} batch={cfg.batch_size}{hidden} seed={cfg.seed} "
            f"device={cfg.device}")
