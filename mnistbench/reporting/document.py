"""The report of a results folder, made only from its saved run files (and throughput.csv if present).

build(folder) writes folder/report.md, each table as folder/<table>.csv and folder/plots/*.png.
The tables come from tables.py as numeric DataFrames with their declared columns (columns.py); the
Markdown renders each `x_mean` / `x_ci_low` / `x_ci_high` triple as "mean ± half-width of the 95 % interval".
"""
from __future__ import annotations

from pathlib import Path

import pandas as pd

from .. import files, results
from . import columns as cols
from . import dtypes, notebook_table, parity, plots, render
from . import tables as tb
from .render import Table

THROUGHPUT_CSV = "throughput.csv"  # written by `mnistbench throughput` (family, impl, device, batch_size, ...)
THROUGHPUT_REQUIRED = ("family", "impl", "batch_size", "train_samples_per_s")
SPREAD = ("Every figure over seeds is the mean ± the half-width of its 95 % Student-t interval; n is the number "
          "of runs behind it, and a figure from n = 1 has no ±. Figures from different machines, thread counts "
          "or torch versions are never averaged together. The timing column says whether the runs' timings were "
          "stable (see docs/measuring.md for what is timed and the rule).")
TIMES = ("train s: the timed training epochs summed (shuffle, update steps and each epoch's loss/accuracy "
         "reduction; evaluation excluded); steady epoch s: each run's median epoch, its first epoch left out; "
         "train samples/s: training images over that median epoch; fit s: a scikit-learn solver's one fit "
         "(not epochs, so it has no samples/s).")


def read_throughput(folder: Path):
    """throughput.csv from the benchmark, or None; a malformed one is a warning, not a failure."""
    path = Path(folder) / THROUGHPUT_CSV
    if not path.is_file():
        return None, []
    try:
        table = pd.read_csv(path)
    except (OSError, ValueError) as exc:
        return None, [f"skipping {path}: {exc}"]
    missing = [c for c in THROUGHPUT_REQUIRED if c not in table]
    if missing:
        return None, [f"skipping {path}: missing columns {', '.join(missing)}"]
    return table, []


def bench_machine_line(table) -> str:
    columns = [c for c in ("device_name", "device", "threads", "torch") if c in table]
    if not columns:
        return ""
    combos = table[columns].astype(str).drop_duplicates().itertuples(index=False)
    return "Measured on " + "; ".join(", ".join(f"{c} {v}" for c, v in zip(columns, combo)) for combo in combos) + "."


def make_tables(frame, bench=None, margin: float = tb.EQUIVALENCE_MARGIN) -> list[Table]:
    defaults = tb.at_defaults(frame)
    machine = tb.machine_line(defaults)
    tables = [
        Table("summary", "Summary: each implementation at the notebook's settings",
              tb.summary_table(defaults), machine, "n = ok runs (seeds). " + TIMES + " A fitted model's "
              "(scikit-learn's) epochs are its solver's iterations.", columns=cols.summary()),
        Table("twins", "Manual implementations against their twins", tb.twins_table(defaults, margin), machine,
              "Difference (impl − twin) paired by seed, i.e. on the same split, mean ± 95 % interval over the "
              "pairs; test acc equivalence: a TOST on the paired test-accuracy differences with margin "
              f"±{margin:g} ({100 * margin:g} points): equivalent when both one-sided t-tests (difference > "
              f"−{margin:g}, difference < +{margin:g}) reject at 5 %, TOST p the larger of their p-values; "
              "'not shown equivalent' is not a verdict of difference (one seed cannot show it); time ratio = "
              "impl's train s / twin's (a solver twin: its fit s), the geometric mean over the pairs with its "
              "interval.", columns=cols.twins()),
        Table("dtypes", "Accuracy against speed: float32 and bf16", dtypes.dtype_table(frame), machine,
              "Each configuration run in both precisions: test accuracy (mean ± 95 % interval over seeds, n runs) "
              "and steady-state epoch seconds (mean ± interval over the pooled epochs, first epochs left out). "
              "bf16 speed-up = fp32 seconds / bf16 seconds, the ratio of geometric means with its Welch 95 % "
              "interval (> 1: bf16 trains faster), tested on the runs when each side has two or more. bf16 − fp32 is the difference of mean test accuracies; "
              "within noise when it is inside the 95 % band of both figures' binomial and seed noise. bf16 runs "
              "compute their products in bf16 (autocast for builtin models, bf16 GEMMs on float32 master "
              "weights for hand-written ones), losses in float32, and are evaluated the same way.",
              columns=cols.dtypes()),
        Table("notebook", "Notebook comparison", notebook_table.notebook_comparison(frame), machine,
              "The notebook's printed figures (one unseeded run each) next to this study's mean ± 95 % interval. "
              "'within noise': |difference| ≤ the 95 % band of p(1−p)/n_eval for both figures plus this study's "
              "seed variance / n. " + notebook_table.NOTEBOOK_BEST_LR, columns=cols.notebook()),
    ]
    per_class = tb.per_class_table(defaults)
    tables.append(Table("per_class", "Per-class test accuracy, each implementation against its twin", per_class,
                        machine,
                        "Mean ± 95 % interval over seeds; the difference columns are signed and paired by seed "
                        "(the notebook printed |difference|).", columns=cols.per_class(per_class)))
    for axis, title in (("lr", "Learning-rate sweep"), ("batch_size", "Batch-size sweep")):
        table = tb.sweep_table(frame, axis)
        tables.append(Table(f"{axis}_sweep", title, table, tb.machine_line(tb.sweep_rows(frame, axis)),
                            "Metrics over ok runs; epochs run = epochs until early stopping. " + TIMES + " "
                            + tb.best_of_sweep(table, axis), columns=cols.sweep(axis)))
    tables.append(Table("time_to_accuracy", "Time to accuracy", tb.time_to_accuracy_table(defaults), machine,
                        "Training seconds (the timed epochs, as train s; a solver's fit s) until validation "
                        "accuracy first reaches the target; mean ± 95 % interval over the n runs that reached it.",
                        na_text="not reached", columns=cols.time_to_accuracy()))
    tables.append(Table("throughput_runs", "Throughput vs batch size (from the sweep's runs)",
                        tb.throughput_from_runs(frame), tb.machine_line(tb.sweep_rows(frame, "batch_size")),
                        "Training images per second of each run's median steady-state epoch; mean ± 95 % "
                        "interval over seeds.", columns=cols.throughput_runs()))
    if bench is not None:
        tables.append(Table("throughput_bench", f"Throughput vs batch size (from {THROUGHPUT_CSV})", bench,
                            bench_machine_line(bench)))
    not_ok = frame[frame.status != "ok"]
    tables.append(Table("runs_not_ok", "Runs that did not finish ok", tb.not_ok_table(frame),
                        tb.machine_line(not_ok),
                        "Diverged: at the epoch shown the loss turned NaN or infinite, or blew up "
                        "(train.has_diverged); failed: the run raised an error.", columns=cols.not_ok()))
    return [table for table in tables if not table.frame.empty and (table.name != "notebook" or len(frame))]


def make_plots(frame, bench, plot_dir: Path) -> list[tuple[str, Path]]:
    """(title, path) of every picture the data allows; bf16 runs are drawn apart from float32 ones."""
    frame = tb.label_dtype(frame)
    bench = tb.label_dtype(bench) if bench is not None else None
    defaults = tb.at_defaults(frame)
    ok = defaults[defaults.status == "ok"]
    jobs = []
    for family in ok.family.unique():
        mine = ok[ok.family == family]
        jobs += [(f"{family}: loss and accuracy curves", plots.plot_curves, mine, f"curves_{family}.png"),
                 (f"{family}: confusion matrices", plots.plot_confusion, mine, f"confusion_{family}.png")]
    if len(ok):
        jobs += [("Train / validation / test accuracy", plots.plot_accuracy_bars, ok, "accuracy_bars.png"),
                 ("Per-class test accuracy", plots.plot_per_class, ok, "per_class.png")]
    for axis, plot in (("lr", plots.plot_lr_curves), ("batch_size", plots.plot_batch_curves)):
        rows = tb.sweep_rows(frame, axis)
        rows = rows[rows.status != "failed"]
        for family in rows.family.unique():
            label = "learning rate" if axis == "lr" else "batch size"
            jobs.append((f"{family}: {label} sweep, loss curves", plot, rows[rows.family == family],
                         f"{axis}_curves_{family}.png"))
    throughput = tb.sweep_rows(frame, "batch_size")
    throughput = throughput[throughput.status == "ok"]
    if len(throughput):
        jobs.append(("Throughput vs batch size (sweep runs)", plots.plot_throughput, throughput,
                     "throughput_runs.png"))
    if bench is not None and len(bench):
        jobs.append((f"Throughput vs batch size ({THROUGHPUT_CSV})", plots.plot_throughput, bench,
                     "throughput_bench.png"))
    if len(ok):
        jobs.append(("Validation accuracy vs training seconds",
                     lambda f, p: plots.plot_val_acc_vs_seconds(f, p, tb.targets()), ok, "val_acc_vs_seconds.png"))
    return [(title, plot(rows, plot_dir / name)) for title, plot, rows, name in jobs]


def markdown_document(tables, plot_files, folder: Path, n_runs: int, skipped: list[str],
                      duplicates: tuple = ()) -> str:
    lines = ["# mnistbench report", "",
             (f"Made by `mnistbench report` from the {n_runs} run files in `runs/` only; every table is "
              "also a CSV next to this file and every picture is in `plots/`."), "", SPREAD]
    if skipped:
        lines.append(f"Skipped as unreadable: {', '.join(skipped)}.")
    if duplicates:
        lines.append("Counted once (the same run in several files): " + ", ".join(
            f"{extra} (repeats {kept})" for extra, kept in duplicates) + ".")
    for table in tables:
        lines += ["", f"## {table.title}", ""]
        lines += [text for text in (table.machine, table.note) if text]
        lines += ["", render.to_markdown(table.frame, table.columns, table.na_text), "",
                  f"CSV: [{table.name}.csv]({table.name}.csv)"]
    if plot_files:
        lines += ["", "## Plots", ""]
        for title, path in plot_files:
            lines += [f"### {title}", "", f"![{title}]({path.relative_to(folder).as_posix()})", ""]
    return "\n".join(lines).rstrip() + "\n"


def build(folder, extra_tables=(), margin: float = tb.EQUIVALENCE_MARGIN) -> dict:
    """Write folder/report.md, folder/<table>.csv and folder/plots/*.png from the saved runs.

    extra_tables: more Table objects to append (e.g. a cross-version benchmark table). margin: the twins
    table's equivalence margin in accuracy (0.002 = 0.2 points). A verify.csv in the folder adds the Parity table.
    Returns {"report": path, "tables": [csv paths], "plots": [png paths], "warnings": [text]}.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise results.ResultError(f"results folder {folder} does not exist")
    loaded = results.load(folder)
    records, runs_dir = loaded.results, results.runs_folder(folder)
    skipped = sorted(path.name for path, _ in loaded.skipped)
    bench, warnings = read_throughput(folder)
    parity_table, parity_warnings = parity.table(folder)
    warnings = loaded.warnings() + list(warnings) + parity_warnings
    if not records and bench is None and parity_table is None:
        raise results.ResultError(f"no run results in {runs_dir}")
    # every output place checked before anything is written: a read-only folder, `plots` being a file
    files.make_folder(folder, "results folder")
    files.make_folder(folder / "plots", "plots folder")
    frame = tb.prepare(results.to_frame(records)) if records else tb.prepare(pd.DataFrame(
        columns=["family", "impl", "status", "lr", "batch_size", "seed", "history"]))
    tables = make_tables(frame, bench, margin) + list(extra_tables)
    if parity_table is not None:  # after the twins table (without one: after the first table)
        at = next((i + 1 for i, t in enumerate(tables) if t.name == "twins"), min(1, len(tables)))
        tables.insert(at, parity_table)
    plot_files = make_plots(frame, bench, folder / "plots")
    csvs = []
    for table in tables:
        csvs.append(folder / f"{table.name}.csv")
        files.atomic_write_text(csvs[-1], render.to_csv(table.frame))
    report = folder / "report.md"
    files.atomic_write_text(report, markdown_document(tables, plot_files, folder, len(records), skipped,
                                                                 [(e.name, k.name) for e, k, _ in loaded.duplicates]))
    return {"report": report, "tables": csvs, "plots": [path for _, path in plot_files], "warnings": warnings}
