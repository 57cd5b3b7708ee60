"""The training and reading sub-commands: run, sweep, study, report, list."""
from __future__ import annotations

import sys
import time
from pathlib import Path

from .. import harness, registry
from ..config import ConfigError
from . import options
from .output import print_epoch, print_progress, print_run_end, print_run_start, print_skipped, summary_table


def add_run(sub) -> None:
    run = sub.add_parser("run", help="train every (family, impl) pair at one setting and save the results")
    options.add(run, *options.TRAINING, "resume", "quiet", "profile")
    run.set_defaults(handler=cmd_run)
    sweep = sub.add_parser("sweep", help="a grid: --lr, --batch-size, --seed take comma lists, --hidden several")
    options.add(sweep, *options.TRAINING, "resume", "quiet", *options.EXECUTION,
                lr={"help": "comma list of learning rates (default: the family's)"},
                batch_size={"help": "comma list of batch sizes (default: the family's)"},
                seed={"help": "comma list of seeds (default 0)"},
                hidden={"nargs": "+", "help": "MLP hidden sizes, several: 512,128 256,64"})
    sweep.set_defaults(handler=cmd_sweep)
    study = sub.add_parser("study", help="the notebook's whole study (all models, MLP lr and batch sweeps, seeds)")
    options.add(study, "seeds", "epochs", "device", "dtype", "threads", "data_root", "out", "resume", "verbose",
                *options.EXECUTION,
                epochs={"help": "cap every run at N epochs (quick tries; not the notebook's)"})
    study.set_defaults(handler=cmd_study)
    report = sub.add_parser("report", help="tables (Markdown, CSV) and plots from a results folder's run files")
    report.add_argument("folder", nargs="?", type=Path, help="results folder (default: the default --out)")
    options.add(report, "benchmarks")
    report.set_defaults(handler=cmd_report)
    listing = sub.add_parser("list", help="the registered model families and implementations")
    listing.set_defaults(handler=cmd_list)


def cmd_run(args, lists=False):
    command = "sweep" if lists else "run"
    configs = options.configs_from(args, lists=lists, command=command)
    out = args.out or harness.default_out()
    started = time.perf_counter()
    on_run_start, on_run_end = print_run_start, print_run_end
    if getattr(args, "profile", False):
        from .perf import profiling_hooks

        on_run_start, on_run_end = profiling_hooks(args, out, on_run_start, on_run_end)
    records = harness.execute(configs, out, data_root=args.data_root, resume=args.resume,
                              **progress_printers(args, on_run_start, None if args.quiet else print_epoch,
                                                  on_run_end))
    if records:
        print()
        print(summary_table(records))
    print(f"\n{len(records)} run(s) saved in {Path(out) / 'runs'} ({harness.elapsed_since(started)})")
    return 0


def progress_printers(args, on_run_start, on_epoch, on_run_end) -> dict:
    """harness.execute's executor and callbacks: in this process, a line as each run starts and ends
    (and per epoch); on Ray, where runs finish in any order, one line per finished run with the counts."""
    executor = options.executor_from(args)
    if executor.name == "local":
        return {"executor": executor, "on_run_start": on_run_start, "on_epoch": on_epoch,
                "on_run_end": on_run_end}
    return {"executor": executor, "on_run_end": print_skipped, "on_progress": print_progress}


def cmd_sweep(args):
    return cmd_run(args, lists=True)


def cmd_study(args):
    from .. import study

    configs = study.study_configs(seeds=args.seeds, epochs=args.epochs, device=options.single(args, "device", "study"),
                                  threads=args.threads, dtype=args.dtype)
    out = args.out or harness.default_out()
    print(study.describe_plan(configs), flush=True)
    started = time.perf_counter()
    records = harness.execute(configs, out, data_root=args.data_root, resume=args.resume,
                              **progress_printers(args, print_run_start, print_epoch if args.verbose else None,
                                                  print_run_end))
    print(f"\nstudy: {len(records)} run(s) trained, {len(configs) - len(records)} already done "
          f"({harness.elapsed_since(started)})")
    write_report(out)
    print(f"study total time: {harness.elapsed_since(started)}")
    return 0


def write_report(folder, extra_tables=()):
    from .. import report

    written = report.build(folder, extra_tables=extra_tables)
    for warning in written["warnings"]:
        print(f"warning: {warning}", file=sys.stderr)
    print(f"report: {written['report']} ({len(written['tables'])} table(s), also as CSV; "
          f"{len(written['plots'])} plots in {Path(folder) / 'plots'})")


def cmd_report(args):
    from ..report.benchtables import report_tables

    folder = args.folder or harness.default_out()
    if not Path(folder).is_dir():
        raise ConfigError(f"results folder {folder} does not exist")
    # pytest-benchmark timings joined with accuracy (--benchmarks), and the torch-version table when the
    # runs come from several torch versions (tox)
    write_report(folder, report_tables(folder, benchmarks=args.benchmarks))
    return 0


def cmd_list(args):
    import pandas as pd

    from ..report import render
    from ..report.render import Column

    rows = [{"family": e.family, "impl": e.name, "iterative": "yes" if e.iterative else "no (fit)",
             "twin": e.twin or "", "origin": e.origin, "description": e.description}
            for e in registry.implementations()]
    columns = [Column(name, fmt="text") for name in ("family", "impl", "iterative", "twin", "origin", "description")]
    print(render.to_text(pd.DataFrame(rows), columns))
    return 0
