"""The performance sub-commands: speed (notebook vs mnistbench vs bare loop), throughput, profile."""
from __future__ import annotations

import math
import sys
import time
from pathlib import Path

from ..config import ConfigError
from . import options
from .output import describe


def add_perf(sub) -> None:
    speed = sub.add_parser("speed", help="epoch seconds: the notebook's loop vs mnistbench's vs a bare loop, "
                                         "and the MLP's matmul floor")
    options.add(speed, "family", "impl", "batch_size", "notebook_batches", "device", "repeats", "hidden", "seed",
                "threads", "data_root", "out",
                impl={"help": "comma list of iterative implementations (default: every one; sklearn has no epochs)"},
                batch_size={"help": "batch size (default 64)"})
    speed.set_defaults(handler=cmd_speed)
    throughput = sub.add_parser("throughput", help="training samples/s against batch size, every implementation")
    options.add(throughput, "family", "impl", "batch_size", "samples", "device", "dtype", "repeats", "hidden",
                "seed", "threads", "data_root", "out",
                batch_size={**options.SWEEP_LISTS["batch_size"], "help": "comma list of batch sizes (default 16,32,...,4096)"},
                device={**options.SWEEP_LISTS["device"], "default": None,
                        "help": "comma list of devices (default: cpu, and cuda when available)"},
                repeats={"default": 3})
    throughput.set_defaults(handler=cmd_throughput)
    profile = sub.add_parser("profile", help="torch.profiler traces (TensorBoard) and top operators of a few steps")
    options.add(profile, *options.TRAINING, "wait", "warmup", "active", "with_stack")
    profile.set_defaults(handler=cmd_profile)


def _or(value, default):
    return default if value is None else value


def warn_if_busy(load=None):
    from ..perf import timing

    warning = timing.busy_warning(load)
    if warning:
        print(warning, file=sys.stderr)


def cmd_speed(args):
    import torch

    from .. import env, harness
    from ..perf import floor, speed, stepfloor, targets, timing

    timing.set_threads(args.threads)
    out = Path(args.out or harness.default_out())
    batch_size = options.single(args, "batch_size", "speed")
    batch_size = 64 if batch_size is None else batch_size
    device = options.single(args, "device", "speed")
    started = time.perf_counter()

    def on_start(load):  # the options and data are checked: a user mistake never gets here
        timing.prepare_out(out)  # created only now, so a bad option leaves nothing behind
        print(f"speed: batch {batch_size}, at least {args.repeats} rounds, device {device}, "
              f"{torch.get_num_threads()} threads, torch {torch.__version__}, "
              f"load average before measuring {load}", flush=True)
        warn_if_busy(load)

    rows = speed.speed(
        options.families_of(args), args.impl, batch_size=batch_size, repeats=args.repeats,
        notebook_batches=args.notebook_batches, device=device, seed=_or(options.single(args, "seed", "speed"), 0),
        hidden=args.hidden, data_root=args.data_root, on_start=on_start,
        on_row=lambda r: print(f"  {r['family']}/{r['impl']}: mnistbench {r['mnistbench_s']:.3f} s, "
                               f"notebook {r['notebook_s']:.3f} s", flush=True),
        on_skip=lambda family, why: print(f"  {family}: skipped ({why})", flush=True),
    )
    print()
    print(speed.speed_table(rows))
    print("\nepoch seconds: median (min-max) of the rounds, interleaved in a shuffled order each round; "
          "ratios: geometric means over the rounds with their 95 % interval; nb/mb = notebook / mnistbench, "
          "mb/bare = mnistbench / bare loop, mb/floor = each mnistbench epoch / the matmul floor of the fastest "
          "exact kernel measured right before and after it. The notebook ratios describe this machine (its "
          "image decoding, its DataLoader); the floor ratio is the target.")
    for row in rows:
        if row["notebook_batches_timed"] < row["epoch_batches"]:
            print(f"{row['family']}/{row['impl']}: notebook epoch scaled from its first "
                  f"{row['notebook_batches_timed']} of {row['epoch_batches']} batches")
    floors = floor.floor_table(rows)
    for row in rows:
        if row.get("floor_s"):
            print(f"{row['family']}/{row['impl']}: floor = {row['epoch_gflop']:.3g} GFLOP / "
                  f"{row['matmul_gflops']:.3g} GFLOP/s ({row['floor_backend']}, the fastest exact float32 kernel "
                  f"on the step's shapes; a square sgemm reaches {row['peak_gflops']:.1f} GFLOP/s)")
            break
    step_rounds = max((row.get("step_rounds", stepfloor.ROUNDS) for row in rows), default=stepfloor.ROUNDS)
    print("\nthe step: matmul GFLOP/s of mnistbench's epoch (share of the floor's rate); the step alone over the "
          f"floor, in {step_rounds} rounds of {stepfloor.BLOCK_STEPS}-step blocks interleaved with as many runs "
          "of the floor's GEMMs (95 % interval); from a short profile of its steps the GEMMs' share of the self "
          "CPU time and the top operators beyond them:")
    for row in rows:
        share = f" ({row['floor_share']:.0%} of the floor's)" if row.get("floor_share") == row.get("floor_share") \
            and row.get("floor_s") else ""
        alone = (f"; alone {row['step_over_floor']:.2f}× ({row['step_over_floor_ci_low']:.2f}–"
                 f"{row['step_over_floor_ci_high']:.2f}) the floor" if "step_over_floor" in row else "")
        print(f"  {row['family']}/{row['impl']}: {row['step_gflops']:.3g} GFLOP/s{share}{alone}; GEMMs "
              f"{row['gemm_share']:.0%} of the self time; beyond them: {row['top_ops']}")
    if floors:
        print(f"\nmatmul floor per backend (the MLP step's GEMMs at batch {batch_size}; epoch floor s: median "
              "(min-max) of the rounds; max rel error: against float64, relative to the largest entry; only "
              "exact float32 backends can be the floor, the others are another precision):")
        print(floor.floor_text(floors))
        bound = next((row for row in rows if math.isfinite(row.get(speed.FASTEST_EACH_RATIO, math.nan))), None)
        if bound is not None:
            value, low, high = (bound[f"{speed.FASTEST_EACH_RATIO}{part}"] for part in ("", "_ci_low", "_ci_high"))
            print(f"lower precision, at most: the step's GEMMs, each on its fastest kernel of any precision "
                  f"(fastest-each), take {value:.2f}× ({low:.2f}–{high:.2f}) the exact floor's time, in paired "
                  f"blocks: a bf16 or mixed step can speed its matmuls up {1 / value:.2f}× ({1 / high:.2f}–"
                  f"{1 / low:.2f}) at most here, at batch {batch_size}")
    checks = targets.check_targets(rows)
    if not checks and args.hidden and batch_size == 64 and device == "cpu" and floors:
        print(f"\ntarget: none at --hidden {speed.hidden_text(args.hidden)}; the target is set for the "
              "family's own network")
    if checks and batch_size == 64 and device == "cpu":
        print("\ntarget (batch 64, any CPU), decided on the ratio's 95 % interval:")
        for check in checks:
            verdict = "MISSED" if check.verdict == "missed" else check.verdict
            note = f"; {check.note}" if check.note else ""
            print(f"  {verdict:<12s} {check.what} = {check.value:.2f} ({check.ci_low:.2f}–{check.ci_high:.2f}), "
                  f"target {check.bound}{note}")
    path = timing.write_csv(rows, out / "speed.csv", speed.SPEED_COLUMNS)
    if floors:
        print(f"\nsaved {timing.write_csv(floors, out / 'floor.csv', floor.FLOOR_COLUMNS)}", end="")
    print(f"\nsaved {path} ({harness.elapsed_since(started)}; load average after {env.load_average()})")
    return 0


def cmd_throughput(args):
    import torch

    from .. import harness
    from ..perf import throughput, timing

    timing.set_threads(args.threads)
    out = Path(args.out or harness.default_out())
    devices = args.device or (["cpu", "cuda"] if torch.cuda.is_available() else ["cpu"])
    started = time.perf_counter()

    def on_start():  # the options and data are checked: a user mistake never gets here
        timing.prepare_out(out)
        warn_if_busy()

    rows = throughput.throughput(
        options.families_of(args), args.impl, batch_sizes=args.batch_size, samples=args.samples,
        repeats=args.repeats, devices=devices, seed=_or(options.single(args, "seed", "throughput"), 0),
        hidden=args.hidden, data_root=args.data_root, on_start=on_start, dtype=args.dtype,
        on_row=lambda r: print(f"  {r['family']}/{r['impl']} {r['dtype']} {r['device']} batch {r['batch_size']}: "
                               f"{r['train_samples_per_s']:,.0f} samples/s", flush=True),
    )
    print()
    print(throughput.throughput_table(rows))
    print("\nmatmul GFLOP/s reached (training FLOPs per sample × samples/s; compare with `speed`'s floor table):")
    print(throughput.throughput_table(rows, "gflops"))
    print(f"\ntraining samples/s of mnistbench's loop: median of at least {args.repeats} timings (more for "
          f"points under {throughput.MIN_POINT_SECONDS} s) of up to {args.samples} samples per point, "
          f"{rows[0]['threads'] if rows else '-'} threads")
    path = timing.write_csv(rows, out / "throughput.csv", throughput.THROUGHPUT_COLUMNS)
    print(f"saved {path} ({harness.elapsed_since(started)})")
    return 0


def print_profile_skip(cfg):
    print(f"{describe(cfg)}: not profiled (scikit-learn trains in one call torch.profiler cannot look inside)")


def cmd_profile(args):
    from .. import harness
    from ..perf import profiling

    configs = options.configs_from(args, lists=False, command="profile")
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


def profiled(events, args, out):
    """`run --profile`: the events of a grid, and before each timed run a few steps profiled on a model of
    its own (so the run's timings are untouched), the profile folder then named after the run's id."""
    from ..perf import profiling

    arrays, pending = {}, {}
    for event in events:
        if event.kind == "start":
            yield event
            done = profiling.profile_configs([event.cfg], out, args.data_root, arrays=arrays,
                                             on_skip=lambda c: print("    profile: skipped (scikit-learn)"))
            if done:
                pending[event.index] = done[0]["folder"]
            continue
        yield event
        folder = pending.pop(event.index, None) if event.kind == "done" else None
        if folder is not None:
            folder = profiling.adopt_run_id(folder, out, event.result.run_id)
            print(f"    profile: {folder} (top operators in top_ops.md)", flush=True)
