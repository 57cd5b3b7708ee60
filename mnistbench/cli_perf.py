"""The performance sub-commands: speed (notebook vs mnistbench vs bare loop), throughput, profile."""
from __future__ import annotations

import sys
import time
from pathlib import Path

from . import harness
from .cli_args import add_run_options, comma_list, configs_from, describe, hidden_sizes
from .config import DEVICES, FAMILIES, ConfigError


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
    out = Path(args.out or harness.default_out())
    started = time.perf_counter()

    def on_start():  # the options and data are checked: a user mistake never gets here
        speed.prepare_out(out)  # created only now, so a bad option leaves nothing behind
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
    out = Path(args.out or harness.default_out())
    devices = args.device or (["cpu", "cuda"] if torch.cuda.is_available() else ["cpu"])
    started = time.perf_counter()

    def on_start():  # the options and data are checked: a user mistake never gets here
        speed.prepare_out(out)
        warn_if_busy()

    rows = throughput.throughput(
        args.family, args.impl, batch_sizes=args.batch_size, samples=args.samples, repeats=args.repeats,
        devices=devices, seed=args.seed, hidden=args.hidden, data_root=args.data_root,
        on_start=on_start,
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
