"""The command line: argparse sub-commands. The only module that prints for people.

User mistakes (ConfigError, DataError, ResultError) print one line and exit 2, never a traceback.
"""
from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path

from . import harness
from .config import DATASETS, DEVICES, FAMILIES, LOADERS, PROTOCOLS, ConfigError
from .data import DataError
from .results import ResultError

USER_ERRORS = (ConfigError, DataError, ResultError)


class OneLineParser(argparse.ArgumentParser):
    """argparse, but a usage error is one line (and exit 2), like every other user mistake."""

    def error(self, message):
        raise ConfigError(message)


# ---------------------------------------------------------------- argument types
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


# ---------------------------------------------------------------- printing
def fmt(value, spec=".4f"):
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    return format(value, spec)


def print_epoch(record):
    print(
        f"    epoch {record['epoch']:>3}  train loss {fmt(record['train_loss'])} acc {fmt(record['train_acc'])}"
        f"  val loss {fmt(record['val_loss'])} acc {fmt(record['val_acc'])}"
        f"  {record['train_seconds']:.2f}s  {fmt(record['train_samples_per_s'], ',.0f')} samples/s",
        flush=True,
    )


def describe(cfg) -> str:
    hidden = f" hidden={','.join(map(str, cfg.hidden))}" if cfg.family == "mlp" else ""
    return (f"{cfg.family}/{cfg.impl} lr={cfg.lr:g} batch={cfg.batch_size}{hidden} seed={cfg.seed} "
            f"device={cfg.device}")


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
    extra_tables = []  # more report.Table objects: wire `--benchmarks FILE.json` (cross-version table) here
    write_report(folder, extra_tables)
    return 0


def add_speed_options(parser, throughput: bool) -> None:
    """Options of `speed` (one batch size, the three loops) and `throughput` (samples/s per batch size)."""
    parser.add_argument("--family", type=comma_list(str, "--family"), default=list(FAMILIES),
                        help=f"comma list of {', '.join(FAMILIES)} (default: all)")
    parser.add_argument("--impl", type=comma_list(str, "--impl"), default=None,
                        help="comma list of iterative implementations (default: every one; sklearn has no epochs)")
    if throughput:
        parser.add_argument("--batch-size", type=comma_list(int, "--batch-size"), default=None,
                            help="comma list of batch sizes (default 16,32,...,4096)")
        parser.add_argument("--samples", type=int, default=16384,
                            help="training samples timed per point, at most the training split (default 16384)")
        parser.add_argument("--device", type=comma_list(str, "--device"), default=None,
                            help="comma list of devices (default: cpu, and cuda when available)")
    else:
        parser.add_argument("--batch-size", type=int, default=64, help="batch size (default 64)")
        parser.add_argument("--notebook-batches", type=int, default=None,
                            help="time the notebook's loop over its first N batches and scale to an epoch "
                                 "(default: whole epochs, but 200 batches for the MLP's ~12 s epoch; 0: whole)")
        parser.add_argument("--device", default="cpu", help=f"{', '.join(DEVICES)} (default cpu)")
    parser.add_argument("--repeats", type=int, default=3 if throughput else 5,
                        help=f"timings per point; the median is quoted (default {3 if throughput else 5})")
    parser.add_argument("--hidden", type=hidden_sizes, default=(512, 128), help="MLP hidden sizes (default 512,128)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the split, weights and shuffles (default 0)")
    parser.add_argument("--threads", type=int, help="torch intra-op threads (default: torch's choice)")
    parser.add_argument("--data-root", type=Path, help="folder holding MNIST/raw/ (default $MNISTBENCH_DATA)")
    parser.add_argument("--out", type=Path, default=None, help="folder for the CSV (default results/)")


def warn_if_busy():
    from . import speed

    warning = speed.busy_warning()
    if warning:
        print(warning, file=sys.stderr)


def cmd_speed(args):
    import torch

    from . import speed

    speed.set_threads(args.threads)
    out = speed.prepare_out(args.out or harness.default_out())
    started = time.perf_counter()

    def on_start():  # the options and data are checked: a user mistake never gets here
        print(f"speed: batch {args.batch_size}, at least {args.repeats} repeats, device {args.device}, "
              f"{torch.get_num_threads()} threads, torch {torch.__version__}, "
              f"load average {speed.load_average()}", flush=True)
        warn_if_busy()

    rows = speed.speed(
        args.family, args.impl, batch_size=args.batch_size, repeats=args.repeats,
        notebook_batches=args.notebook_batches, device=args.device, seed=args.seed, hidden=args.hidden,
        data_root=args.data_root,
        on_start=on_start,
        on_row=lambda r: print(f"  {r['family']}/{r['impl']}: mnistbench {r['mnistbench_s']:.3f} s, "
                               f"notebook {r['notebook_s']:.3f} s", flush=True),
    )
    print()
    print(speed.speed_table(rows))
    print("\nepoch seconds: median (min-max) of the repeats, interleaved; nb/mb = notebook / mnistbench, "
          "mb/bare = mnistbench / bare loop, mb/floor = mnistbench / matmul floor")
    for row in rows:
        if row["notebook_batches_timed"] < row["epoch_batches"]:
            print(f"{row['family']}/{row['impl']}: notebook epoch scaled from its first "
                  f"{row['notebook_batches_timed']} of {row['epoch_batches']} batches")
    for row in rows:
        if row.get("floor_s"):
            print(f"{row['family']}/{row['impl']}: floor = {row['epoch_gflop']:.3g} GFLOP / "
                  f"{row['matmul_gflops']:.3g} GFLOP/s (torch.mm on the step's shapes; a {speed.PEAK_SIZE}^2 "
                  f"sgemm reaches {row['peak_gflops']:.1f} GFLOP/s)")
            break
    checks = speed.check_targets(rows)
    if checks and args.batch_size == 64 and args.device == "cpu":
        print("\nissue 5's targets (batch 64, this CPU):")
        for what, value, bound, met in checks:
            print(f"  {'met   ' if met else 'MISSED'} {what} = {value:.2f} (target {bound})")
    path = speed.write_csv(rows, out / "speed.csv", speed.SPEED_COLUMNS)
    print(f"\nsaved {path} ({harness.elapsed_since(started)}; load average now {speed.load_average()})")
    return 0


def cmd_throughput(args):
    import torch

    from . import speed, throughput

    speed.set_threads(args.threads)
    out = speed.prepare_out(args.out or harness.default_out())
    devices = args.device or (["cpu", "cuda"] if torch.cuda.is_available() else ["cpu"])
    started = time.perf_counter()
    rows = throughput.throughput(
        args.family, args.impl, batch_sizes=args.batch_size, samples=args.samples, repeats=args.repeats,
        devices=devices, seed=args.seed, hidden=args.hidden, data_root=args.data_root,
        on_start=warn_if_busy,
        on_row=lambda r: print(f"  {r['family']}/{r['impl']} {r['device']} batch {r['batch_size']}: "
                               f"{r['train_samples_per_s']:,.0f} samples/s", flush=True),
    )
    print()
    print(throughput.throughput_table(rows))
    print(f"\ntraining samples/s of mnistbench's loop: median of at least {args.repeats} timings (more for "
          f"points under {throughput.MIN_POINT_SECONDS} s) of up to {args.samples} samples per point, "
          f"{rows[0]['threads'] if rows else '-'} threads")
    path = speed.write_csv(rows, out / "throughput.csv", throughput.THROUGHPUT_COLUMNS)
    print(f"saved {path} ({harness.elapsed_since(started)})")
    return 0


def add_profile_options(parser) -> None:
    add_run_options(parser, lists=False)
    parser.add_argument("--wait", type=int, default=1, help="steps run before the profiler records (default 1)")
    parser.add_argument("--warmup", type=int, default=2, help="steps recorded then discarded (default 2)")
    parser.add_argument("--active", type=int, default=5, help="steps recorded and kept (default 5)")
    parser.add_argument("--with-stack", action="store_true", help="record Python stacks (bigger, slower traces)")


def print_profile_skip(cfg):
    print(f"{describe(cfg)}: not profiled (scikit-learn trains in one call torch.profiler cannot look inside)")


def cmd_profile(args):
    from . import profiling

    configs = configs_from(args, lists=False)
    out = args.out or harness.default_out()
    steps = profiling.ProfileSteps(args.wait, args.warmup, args.active).check()

    def show(done):
        print(f"{describe(done['cfg'])}: {steps.active} steps profiled; trace in {done['folder']}\n")
        print(done["top_ops"] + "\n", flush=True)

    profiled = profiling.profile_configs(configs, out, args.data_root, steps, args.with_stack,
                                         on_profile=show, on_skip=print_profile_skip)
    if not profiled:
        raise ConfigError("nothing to profile: only step-wise implementations (not sklearn) can be profiled")
    print(f"{len(profiled)} profile(s); open them with: tensorboard --logdir {Path(out) / 'profiles'}")
    return 0


def profiling_hooks(args, out, on_run_start, on_run_end):
    """`run --profile`: before each timed run, profile a few steps of a model of its own (so the run's
    timings are untouched), then name the profile folder after the run's id."""
    from . import profiling

    arrays, pending = {}, {}

    def start(index, total, cfg):
        on_run_start(index, total, cfg)
        done = profiling.profile_configs([cfg], out, args.data_root, arrays=arrays,
                                         on_skip=lambda c: print("    profile: skipped (scikit-learn)"))
        if done:
            pending[index] = done[0]["folder"]

    def end(index, total, cfg, record):
        on_run_end(index, total, cfg, record)
        folder = pending.pop(index, None)
        if folder is not None and record is not None:
            folder = profiling.adopt_run_id(folder, out, record["run_id"])
            print(f"    profile: {folder} (top operators in top_ops.md)", flush=True)

    return start, end


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(prog="mnistbench", description=__doc__.splitlines()[0])
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
