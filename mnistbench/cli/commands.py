"""The training and reading sub-commands: run, sweep, study, report, compare, list."""
from __future__ import annotations

import sys
import time
from pathlib import Path

from .. import api, registry
from ..config import RunConfig
from . import options
from .output import print_progress, summary_table


def add_run(sub) -> None:
    run = sub.add_parser("run", help="train every (family, impl) pair at one setting and save the results")
    options.add(run, *options.TRAINING, "resume", "quiet", "profile", *options.INTERLEAVE)
    run.set_defaults(handler=cmd_run)
    sweep = sub.add_parser("sweep", help="a grid: --lr, --batch-size, --seed, --threads, --dtype take comma "
                                         "lists, --hidden repeats")
    options.add(sweep, *options.TRAINING, "resume", "quiet", *options.EXECUTION, *options.INTERLEAVE,
                **options.SWEEP_LISTS)
    sweep.set_defaults(handler=cmd_sweep)
    study = sub.add_parser("study", help="the notebook's whole study (all models, MLP lr and batch sweeps, seeds)")
    options.add(study, "seeds", "epochs", "device", "dtype", "threads", "data_root", "out", "resume", "verbose",
                *options.EXECUTION,
                epochs={"help": "cap every run at N epochs (quick tries; not the notebook's)"})
    study.set_defaults(handler=cmd_study)
    report = sub.add_parser("report", help="tables (Markdown, CSV) and plots from a results folder's run files")
    report.add_argument("folder", nargs="?", type=options.path_option("FOLDER"),
                        help="results folder (default: the default --out)")
    options.add(report, "benchmarks", "margin")
    report.set_defaults(handler=cmd_report)
    compare = sub.add_parser("compare", help="NEW against BASE (results folders or pytest-benchmark JSON): time "
                                             "ratio with its interval and verdict; exit 1 when slower")
    compare.add_argument("base", type=options.path_option("BASE"),
                         help="results folder or pytest-benchmark JSON file (the reference)")
    compare.add_argument("new", type=options.path_option("NEW"), nargs="?",
                         help="the same kind as BASE (left out with --by)")
    options.add(compare, "threshold", "by", "out")
    compare.set_defaults(handler=cmd_compare)
    listing = sub.add_parser("list", help="the registered model families and implementations")
    listing.set_defaults(handler=cmd_list)


def train_and_print(args, configs, out, epochs: bool) -> list:
    """Train configs, printing a line as each run starts, ends (and per epoch); the results."""
    # a run's line reads its timing figures (runtiming: scipy, a second to import): loaded before the first
    # run is saved, so that its line prints at once (a SIGTERM right after a save would lose it)
    from .. import runtiming  # noqa: F401

    events = api.execute(configs, out=out, data_root=args.data_root, resume=args.resume,
                         executor=options.executor_from(args))
    if getattr(args, "profile", False):
        from .perf import profiled

        events = profiled(events, args, out)
    trained = []
    for event in events:
        print_progress(event, epochs=epochs)
        if event.kind == "done":
            trained.append(event.result)
    return trained


def cmd_run(args, lists=False):
    from .. import harness  # imports torch: only when a command runs

    out = args.out or harness.default_out()
    started = time.perf_counter()
    configs = api.plan(args.family, args.impl, lists=lists, command="sweep" if lists else "run",
                       **options.training_options(args))
    trained = train_and_print(args, configs, out, epochs=not args.quiet)
    if trained:
        print()
        print(summary_table(trained))
    print(f"\n{len(trained)} run(s) saved in {Path(out) / 'runs'} ({harness.elapsed_since(started)})")
    return exit_status(trained)


def exit_status(trained) -> int:
    """1 when any run failed (after everything that finished was saved), else 0. A diverged run is a
    result, not a failure."""
    failed = [r for r in trained if r.status == "failed"]
    if failed:
        print(f"mnistbench: {len(failed)} of {len(trained)} run(s) failed; their errors are in the result "
              f"files (status 'failed')", file=sys.stderr)
        return 1
    return 0


def cmd_sweep(args):
    return cmd_run(args, lists=True)


def cmd_study(args):
    from .. import harness, studygrid

    out = args.out or harness.default_out()
    started = time.perf_counter()
    configs = api.study_plan(args.seeds, epochs=args.epochs, device=options.single(args, "device", "study"),
                             dtype=args.dtype, threads=args.threads)
    print(studygrid.describe_plan(configs), flush=True)
    trained = train_and_print(args, configs, out, epochs=args.verbose)
    print(f"\nstudy: {len(trained)} run(s) trained, {len(configs) - len(trained)} already done "
          f"({harness.elapsed_since(started)})")
    write_report(out)
    print(f"study total time: {harness.elapsed_since(started)}")
    from ..perf import floor

    print(floor.study_floor_text(trained, options.single(args, "device", "study") or "cpu"))
    return exit_status(trained)


def write_report(folder, benchmarks=None, margin: float = 0.002):
    written = api.report(folder, benchmarks=benchmarks, margin=margin)
    for warning in written["warnings"]:
        print(f"warning: {warning}", file=sys.stderr)
    print(f"report: {written['report']} ({len(written['tables'])} table(s), also as CSV; "
          f"{len(written['plots'])} plots in {Path(folder) / 'plots'})")


def cmd_report(args):
    from .. import harness  # imports torch: only when a command runs

    # pytest-benchmark timings joined with accuracy (--benchmarks), and the torch-version table when the
    # runs come from several torch versions (tox)
    write_report(args.folder or harness.default_out(), benchmarks=args.benchmarks, margin=args.margin)
    return 0


def cmd_compare(args):
    from .. import harness  # imports torch: only when a command runs
    from ..reporting import compare, render

    frame = compare.compare(args.base, args.new, threshold=args.threshold, by=args.by)
    markdown, csv = compare.write(frame, args.out or harness.default_out(), args.threshold)
    print(render.to_text(frame, compare.columns(frame)))
    print("\n" + compare.explanation(frame, args.threshold))
    slower = compare.slower(frame)
    print(f"\nwrote {markdown} and {csv}")
    if len(slower):
        print(f"slower beyond {compare.percent(args.threshold)} with significance: "
              + ", ".join(slower["configuration"]), file=sys.stderr)
        return 1
    return 0


FAMILY_COLUMNS = ("family", "lr", "batch", "epochs", "patience", "hidden", "classes", "split", "origin",
                  "description")
IMPL_COLUMNS = ("family", "impl", "iterative", "twin", "origin", "description")


def cmd_list(args):
    """The families with their defaults and data recipe, then every implementation and where it came from."""
    from ..reporting.render import Column, text_table

    families = [{"family": f.name, "lr": f"{f.defaults['lr']:g}", "batch": str(f.defaults["batch_size"]),
                 "epochs": str(f.defaults["epochs"]), "patience": str(f.defaults["patience"] or "off"),
                 "hidden": _hidden_text(f), "classes": _classes_text(f.recipe.classes), "split": _split_text(f.recipe),
                 "origin": f.origin, "description": f.description} for f in registry.families().values()]
    impls = [{"family": e.family, "impl": e.name, "iterative": "yes" if e.iterative else "no (fit)",
              "twin": e.twin or "", "origin": e.origin, "description": e.description}
             for e in registry.implementations()]
    for rows, names in ((families, FAMILY_COLUMNS), (impls, IMPL_COLUMNS)):
        print(text_table([Column(n).title() for n in names], [[row[name] for name in names] for row in rows]))
        print()
    print("Add your own: a plugin package with a `mnistbench.implementations` entry point, or "
          "mnistbench.register() in a script (docs/plugins.md).")
    return 0


def _hidden_text(family) -> str:
    if not family.uses_hidden:
        return ""
    return ",".join(map(str, family.defaults.get("hidden", RunConfig.__dataclass_fields__["hidden"].default)))


def _classes_text(classes) -> str:
    if list(classes) == list(range(classes[0], classes[-1] + 1)) and len(classes) > 2:
        return f"{classes[0]}-{classes[-1]}"
    return ",".join(map(str, classes))


def _split_text(recipe) -> str:
    scaled = f", standardised {recipe.standardize[0]:g}/{recipe.standardize[1]:g}" if recipe.standardize else ""
    return recipe.split + scaled
