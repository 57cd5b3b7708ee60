"""The command line: argparse sub-commands. The only module that prints for people.

User mistakes (ConfigError, DataError, ResultError) print one line and exit 2, never a traceback.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from . import harness
from .cli_args import OneLineParser, add_run_options, configs_from, describe, fmt
from .cli_perf import (
    add_profile_options,
    add_speed_options,
    cmd_profile,
    cmd_speed,
    cmd_throughput,
    profiling_hooks,
)
from .config import DEVICES, ConfigError
from .data import DataError
from .results import ResultError

USER_ERRORS = (ConfigError, DataError, ResultError)


# ---------------------------------------------------------------- printing
def print_epoch(record):
    print(
        f"    epoch {record['epoch']:>3}  train loss {fmt(record['train_loss'])} acc {fmt(record['train_acc'])}"
        f"  val loss {fmt(record['val_loss'])} acc {fmt(record['val_acc'])}"
        f"  {record['train_seconds']:.2f}s  {fmt(record['train_samples_per_s'], ',.0f')} samples/s",
        flush=True,
    )


def print_run_start(index, total, cfg):
    print(f"[{index}/{total}] {describe(cfg)}", flush=True)


def print_run_end(index, total, cfg, record):
    if record is None:
        print(f"[{index}/{total}] {describe(cfg)}: already done, skipped (--resume)", flush=True)
        return
    extra = f" at epoch {record['diverged_epoch']}" if record["status"] == "diverged" else ""
    extra += f": {record['error']}" if record["status"] == "failed" else ""
    print(
        f"[{index}/{total}] {record['status']}{extra}: test acc {fmt(record['test_acc'])}, "
        f"{record['epochs_run']} epochs, {fmt(record['train_seconds'], '.2f')} s training",
        flush=True,
    )


def summary_table(records) -> str:
    header = ["family", "impl", "status", "test acc", "best val acc", "epochs", "train s", "samples/s"]
    rows = [[r["family"], r["impl"], r["status"], fmt(r["test_acc"]), fmt(r["best_val_acc"]),
             str(r["epochs_run"]), fmt(r["train_seconds"], ".2f"), fmt(r["train_samples_per_s"], ",.0f")]
            for r in records]
    widths = [max(len(str(x)) for x in col) for col in zip(header, *rows)]
    lines = ["  ".join(str(x).ljust(w) for x, w in zip(line, widths)) for line in [header, *rows]]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


# ---------------------------------------------------------------- commands
def cmd_run(args, lists=False):
    configs = configs_from(args, lists=lists)
    out = args.out or harness.default_out()
    started = time.perf_counter()
    on_run_start, on_run_end = print_run_start, print_run_end
    if getattr(args, "profile", False):
        on_run_start, on_run_end = profiling_hooks(args, out, on_run_start, on_run_end)
    records = harness.execute(
        configs, out, data_root=args.data_root, resume=args.resume,
        on_run_start=on_run_start, on_epoch=None if args.quiet else print_epoch, on_run_end=on_run_end,
    )
    if records:
        print()
        print(summary_table(records))
    print(f"\n{len(records)} run(s) saved in {Path(out) / 'runs'} ({harness.elapsed_since(started)})")
    return 0


def cmd_sweep(args):
    return cmd_run(args, lists=True)


def add_study_options(parser) -> None:
    parser.add_argument("--seeds", type=int, default=3, help="repeat every point over seeds 0..N-1 (default 3)")
    parser.add_argument("--out", type=Path, help="results folder (default results/)")
    parser.add_argument("--data-root", type=Path, help="folder holding MNIST/raw/ (default $MNISTBENCH_DATA)")
    parser.add_argument("--device", default="cpu", help=f"{', '.join(DEVICES)} (default cpu)")
    parser.add_argument("--threads", type=int, help="torch intra-op threads (default: torch's choice)")
    parser.add_argument("--resume", action="store_true", help="skip points already finished in --out")
    parser.add_argument("--epochs", type=int, help="cap every run at N epochs (quick tries; not the notebook's)")
    parser.add_argument("--verbose", action="store_true", help="one line per epoch, not only per run")


def cmd_study(args):
    from . import study

    configs = study.study_configs(seeds=args.seeds, epochs=args.epochs, device=args.device, threads=args.threads)
    out = args.out or harness.default_out()
    print(study.describe_plan(configs), flush=True)
    started = time.perf_counter()
    records = harness.execute(
        configs, out, data_root=args.data_root, resume=args.resume,
        on_run_start=print_run_start, on_epoch=print_epoch if args.verbose else None, on_run_end=print_run_end,
    )
    print(f"\nstudy: {len(records)} run(s) trained, {len(configs) - len(records)} already done "
          f"({harness.elapsed_since(started)})")
    write_report(out)
    print(f"study total time: {harness.elapsed_since(started)}")
    return 0


def write_report(folder, extra_tables=()):
    from . import report

    written = report.build(folder, extra_tables=extra_tables)
    for warning in written["warnings"]:
        print(f"warning: {warning}", file=sys.stderr)
    print(f"report: {written['report']} ({len(written['tables'])} table(s), also as CSV; "
          f"{len(written['plots'])} plots in {Path(folder) / 'plots'})")


def cmd_report(args):
    folder = args.folder or harness.default_out()
    from .benchtables import report_tables

    if not Path(folder).is_dir():
        raise ConfigError(f"results folder {folder} does not exist")
    # pytest-benchmark timings joined with accuracy (--benchmarks), and the torch-version table when the
    # runs come from several torch versions (tox)
    write_report(folder, report_tables(folder, benchmarks=args.benchmarks))
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(prog="mnistbench", description="Manual vs builtin vs scikit-learn models on MNIST: "
                           "accuracy, time and throughput under one harness.")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=OneLineParser)
    run = sub.add_parser("run", help="train every (family, impl) pair at one setting and save the results")
    add_run_options(run, lists=False)
    run.add_argument("--profile", action="store_true",
                     help="also profile a few steps of each run into <out>/profiles/<run_id>/ (untimed)")
    run.set_defaults(handler=cmd_run)
    sweep = sub.add_parser("sweep", help="a grid: --lr, --batch-size, --seed (comma lists) and --hidden (several)")
    add_run_options(sweep, lists=True)
    sweep.set_defaults(handler=cmd_sweep)
    study = sub.add_parser("study", help="the notebook's whole study (all models, MLP lr and batch sweeps, seeds)")
    add_study_options(study)
    study.set_defaults(handler=cmd_study)
    report = sub.add_parser("report", help="tables (Markdown, CSV) and plots from a results folder's run files")
    report.add_argument("folder", nargs="?", type=Path, help="results folder (default results/)")
    report.add_argument("--benchmarks", type=Path, metavar="FILE_OR_DIR",
                        help="pytest-benchmark JSON (or a folder of them): timing stats joined with accuracy")
    report.set_defaults(handler=cmd_report)
    speed = sub.add_parser("speed", help="epoch seconds: the notebook's loop vs mnistbench's vs a bare loop, "
                                         "and the MLP's matmul floor")
    add_speed_options(speed, throughput=False)
    speed.set_defaults(handler=cmd_speed)
    sweep_batch = sub.add_parser("throughput", help="training samples/s against batch size, every implementation")
    add_speed_options(sweep_batch, throughput=True)
    sweep_batch.set_defaults(handler=cmd_throughput)
    profile = sub.add_parser("profile", help="torch.profiler traces (TensorBoard) and top operators of a few steps")
    add_profile_options(profile)
    profile.set_defaults(handler=cmd_profile)
    return parser


def main(argv=None) -> int:
    try:
        args = build_parser().parse_args(argv)
        return args.handler(args)
    except USER_ERRORS as exc:
        command = f" {sys.argv[1]}" if argv is None and len(sys.argv) > 1 else ""
        print(f"mnistbench{command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("mnistbench: interrupted; finished runs are saved", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
