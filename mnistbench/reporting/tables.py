"""Numeric tables of a results DataFrame (results.to_frame): one function per table.

Means are over seeds of runs whose status is ok, each with its 95 % interval and n (spread.py);
diverged and failed runs are counted in each row's status, never silently dropped. Rows are split by
anything that differs within a family (epochs cap, machine, torch version...), so numbers from different
settings or machines are never averaged together. Each row's "timing" cell says whether its runs' timings
were stable. Mean and interval sit in separate `x_mean` / `x_ci_low` / `x_ci_high` columns so that the
CSVs stay machine-readable.
"""
from __future__ import annotations

import math

import pandas as pd

from .. import registry
from .spread import aggregate, interval_columns, ratio_columns, timing_note

CONTEXT = ("dtype", "dataset", "protocol", "classes", "hidden", "epochs", "patience", "loader", "machine",
           "env_threads", "env_torch")


def targets() -> dict:
    """family -> the validation accuracy of the time-to-accuracy table (declared by each family)."""
    return {name: f.target_val_acc for name, f in registry.families().items() if f.target_val_acc is not None}


def twins(family: str) -> dict:
    """impl -> the implementation it must agree with, for one family."""
    return {e.name: e.twin for e in registry.implementations(family) if e.twin}


def family_defaults(family: str) -> dict | None:
    return registry.family(family).defaults if family in registry.families() else None


# ---------------------------------------------------------------- the frame
def _key(value) -> str:
    """A hashable, readable text form of a config value (lists, None and NaN included)."""
    if isinstance(value, (list, tuple)):
        return ",".join(map(str, value))
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def prepare(frame: pd.DataFrame) -> pd.DataFrame:
    frame = frame.copy()
    for column in ("env_device", "env_device_name", "env_cpu_model", "env_threads", "env_torch", *CONTEXT,
                   *RUN_FIGURES):
        if column not in frame:
            frame[column] = None
    gpu = frame.env_device.astype(str).str.startswith("cuda")
    frame["machine"] = frame.env_device_name.where(~gpu, frame.env_device_name + " + " + frame.env_cpu_model)
    for column in CONTEXT:
        frame[column] = frame[column].map(_key)
    rank = {impl: i for i, impl in enumerate(registry.impl_names())}
    frame["_family_rank"] = frame.family.map({f: i for i, f in enumerate(registry.families())}).fillna(99)
    frame["_impl_rank"] = frame.impl.map(rank).fillna(99)
    return frame.sort_values(["_family_rank", "_impl_rank", "impl", "lr", "batch_size", "seed"], kind="stable")


RUN_FIGURES = ("train_seconds", "train_samples_per_s", "fit_seconds", "epoch_seconds_median", "timing_unstable",
               "timing_unstable_reason")


def fitted_model(family, impl) -> bool:
    return registry.has(family, impl) and not registry.implementation(family, impl).iterative


def label_dtype(frame) -> pd.DataFrame:
    """impl relabelled "impl (bfloat16)" for runs not in float32: pictures group by impl, and a bf16 run
    must be its own line or bar, never averaged into the float32 one."""
    if frame.empty or "dtype" not in frame:
        return frame
    dtype = frame.dtype.fillna("float32").astype(str)  # no dtype recorded (older files, CSVs): float32
    other = dtype != "float32"
    return frame.assign(impl=frame.impl.where(~other, frame.impl + " (" + dtype + ")"))


def at_defaults(frame, exempt: str | None = None) -> pd.DataFrame:
    """Runs at their family's notebook lr and batch size (except the `exempt` axis, which may vary)."""
    def default(row, axis):
        defaults = family_defaults(row.family)
        return defaults is None or axis == exempt or math.isclose(row[axis], defaults[axis])

    mask = frame.apply(lambda row: default(row, "lr") and default(row, "batch_size"), axis=1)
    return frame[mask.astype(bool)] if len(frame) else frame


def context_columns(frame) -> list[str]:
    """The CONTEXT columns that take more than one value within some family."""
    if frame.empty:
        return []
    return [c for c in CONTEXT if frame.groupby("family")[c].nunique().max() > 1]


def machine_line(rows) -> str:
    if rows.empty:
        return ""
    hosts = rows.env_host if "env_host" in rows else pd.Series(None, index=rows.index)
    # runs of one machine type are pooled; when they came from several hosts (a cluster), say which
    several = hosts.nunique() > 1
    parts = []
    for (machine, threads, torch), group in rows.groupby(["machine", "env_threads", "env_torch"]):
        where = f" on {', '.join(sorted(hosts[group.index].dropna().unique()))}" if several else ""
        parts.append(f"{machine}, {threads} threads, torch {torch} ({len(group)} runs{where})")
    return "Measured on " + "; ".join(parts) + "."


# ---------------------------------------------------------------- the tables
# (shown name, run column): the steady-state epoch time is each run's median epoch
RUN_METRICS = ["test_acc", "best_val_acc", "epochs_run", "train_seconds", ("epoch_seconds", "epoch_seconds_median"),
               "train_samples_per_s"]


def summary_table(defaults) -> pd.DataFrame:
    keys = ["family", "impl", *context_columns(defaults)]
    return aggregate(defaults, keys, [*RUN_METRICS, "fit_seconds"])


def twin_seconds(pairs) -> pd.Series:
    """The twin's time to a trained model: its training seconds, or a solver's fit seconds."""
    return pd.to_numeric(pairs.train_seconds_twin, errors="coerce").fillna(
        pd.to_numeric(pairs.fit_seconds_twin, errors="coerce"))


EQUIVALENCE_MARGIN = 0.002  # 0.2 points of test accuracy
EQUIVALENCE_ALPHA = 0.05


def equivalence(differences, margin: float = EQUIVALENCE_MARGIN) -> tuple[str, float]:
    """TOST on paired differences: (verdict, p) with p the larger of the two one-sided t-test p-values
    (H0: mean <= -margin, H0: mean >= +margin); equivalent when p < EQUIVALENCE_ALPHA. One pair has no
    variance to test with; pairs that all differ by the same amount are decided by that amount (p 0 or 1)."""
    from scipy import stats

    d = pd.to_numeric(pd.Series(differences), errors="coerce").dropna().to_numpy(dtype=float)
    if len(d) < 2:
        return ("not shown equivalent (one seed)" if len(d) else "not shown equivalent (no pairs)"), math.nan
    if (d == d[0]).all():
        return ("equivalent", 0.0) if abs(d[0]) < margin else ("not shown equivalent", 1.0)
    p = max(stats.ttest_1samp(d, -margin, alternative="greater").pvalue,
            stats.ttest_1samp(d, margin, alternative="less").pvalue)
    return ("equivalent" if p < EQUIVALENCE_ALPHA else "not shown equivalent"), float(p)


def twins_table(defaults, margin: float = EQUIVALENCE_MARGIN) -> pd.DataFrame:
    """Each manual-style implementation minus its builtin and sklearn twins, paired by seed (same split):
    accuracy differences (mean with t-interval), a TOST equivalence test of the test-accuracy difference
    within ±margin, and time ratios impl / twin (geometric mean, interval on logs)."""
    pair_on = ["family", "seed", *context_columns(defaults)]
    ok = defaults[defaults.status == "ok"]
    rows = []
    for (family, impl), mine in ok.groupby(["family", "impl"], sort=False):
        twin_of = twins(family)
        references = [twin_of[impl]] + [e.name for e in registry.implementations(family)
                                         if not e.iterative and e.name != twin_of[impl]] if impl in twin_of else []
        for twin in references:
            theirs = ok[ok.impl == twin]
            pairs = mine.merge(theirs, on=pair_on, suffixes=("", "_twin"))
            if pairs.empty:
                continue
            row = {"family": family, "impl": impl, "twin": twin, "pairs": len(pairs)}
            for metric in ("test_acc", "best_val_acc"):
                row.update(interval_columns(f"{metric}_difference", pairs[metric] - pairs[f"{metric}_twin"]))
            row["test_acc_equivalence"], row["test_acc_tost_p"] = equivalence(
                pairs.test_acc - pairs.test_acc_twin, margin)
            ratios = pd.to_numeric(pairs.train_seconds, errors="coerce") / twin_seconds(pairs)
            row.update(ratio_columns("train_seconds_ratio", ratios))
            row["timing"] = timing_note(pd.concat([mine[mine.seed.isin(pairs.seed)],
                                                   theirs[theirs.seed.isin(pairs.seed)]]))
            rows.append(row)
    return pd.DataFrame(rows)


def per_class_means(runs) -> pd.DataFrame:
    """Mean per-class test accuracy: one row per class, one column per implementation."""
    return per_class_long(runs).pivot_table(index="class", columns="impl", values="acc", aggfunc="mean")


def per_class_long(runs) -> pd.DataFrame:
    """One row per run and class: impl, seed, class, acc."""
    return pd.DataFrame([{"impl": r.impl, "seed": r.seed, "class": int(c), "acc": a} for _, r in runs.iterrows()
                         for c, a in (r.per_class_acc or {}).items()], columns=["impl", "seed", "class", "acc"])


def per_class_table(defaults) -> pd.DataFrame:
    """Per family and class: each implementation's mean accuracy over seeds and each twin difference (paired
    by seed), with 95 % intervals; n = the fewest seeds behind a figure of the row."""
    ok, rows = defaults[defaults.status == "ok"], []
    keys = ["family", *context_columns(defaults)]
    for key, runs in ok.groupby(keys, sort=False):
        key = key if isinstance(key, tuple) else (key,)
        long = per_class_long(runs)
        impls = [i for i in registry.impl_names() if i in set(long.impl)] + sorted(
            set(long.impl) - set(registry.impl_names()))
        pairs = [(impl, twin) for impl, twin in twins(key[0]).items() if {impl, twin} <= set(impls)]
        for label, per_class in long.groupby("class"):
            row = {**dict(zip(keys, key)), "class": label, "n": per_class.groupby("impl").size().min()}
            for impl in impls:
                row.update(interval_columns(f"{impl}_acc", per_class[per_class.impl == impl].acc))
            for impl, twin in pairs:
                paired = per_class[per_class.impl == impl].merge(per_class[per_class.impl == twin], on="seed")
                row.update(interval_columns(f"{impl}_minus_{twin}", paired.acc_x - paired.acc_y))
            rows.append(row)
    return pd.DataFrame(rows)


def sweep_rows(frame, axis: str) -> pd.DataFrame:
    """Runs of families swept along `axis` with the other axis at the notebook's value."""
    rows = at_defaults(frame, exempt=axis)
    swept = rows.groupby("family")[axis].nunique()
    return rows[rows.family.isin(swept[swept > 1].index)]


def sweep_table(frame, axis: str) -> pd.DataFrame:
    rows = sweep_rows(frame, axis)
    table = aggregate(rows, ["family", axis, "impl", *context_columns(rows)], ["best_val_loss", *RUN_METRICS])
    return table.sort_values(["family", axis], kind="stable").reset_index(drop=True) if len(table) else table


def best_of_sweep(table, axis: str) -> str:
    done = table.dropna(subset=["best_val_loss_mean"]) if len(table) else table
    if done.empty:
        return ""
    best = done.loc[done.groupby(["family", "impl"], sort=False).best_val_loss_mean.idxmin()]
    parts = [f"{r.family}/{r.impl}: {r[axis]:g} (val loss {r.best_val_loss_mean:.4f}, val acc "
             f"{r.best_val_acc_mean:.4f})" for _, r in best.iterrows()]
    return f"Lowest mean best validation loss by {axis.replace('_', ' ')}: " + "; ".join(parts) + "."


def seconds_to_target(run, target: float):
    """(training seconds, epoch) when validation accuracy first reaches target, else (nan, nan); a solver's
    one "epoch" counts its fit seconds."""
    elapsed = 0.0
    for record in run["history"] or []:
        seconds = record.get("train_seconds")
        elapsed += seconds if seconds is not None else record.get("fit_seconds") or 0.0
        if record["val_acc"] is not None and record["val_acc"] >= target:
            return elapsed, record["epoch"]
    return math.nan, math.nan


def time_to_accuracy_table(defaults) -> pd.DataFrame:
    goal = targets()
    runs = defaults[defaults.status.isin(["ok", "diverged"]) & defaults.family.isin(list(goal))]
    rows = []
    for key, group in runs.groupby(["family", "impl", *context_columns(runs)], sort=False):
        target = goal[key[0]]
        reached = pd.DataFrame([seconds_to_target(r, target) for _, r in group.iterrows()],
                               columns=["seconds", "epoch"], index=group.index).dropna()
        rows.append({"family": key[0], "impl": key[1],
                     **dict(zip(context_columns(runs), key[2:])), "target_val_acc": target,
                     "reached": f"{len(reached)}/{len(group)}", "n": len(reached),
                     **interval_columns("seconds_to_target", reached.seconds),
                     **interval_columns("epochs_to_target", reached.epoch),
                     "timing": timing_note(group.loc[reached.index])})
    return pd.DataFrame(rows)


def throughput_from_runs(frame) -> pd.DataFrame:
    rows = sweep_rows(frame, "batch_size")
    return aggregate(rows, ["family", "impl", "batch_size", *context_columns(rows)], ["train_samples_per_s"])


def not_ok_table(frame) -> pd.DataFrame:
    bad = frame[frame.status != "ok"]
    columns = [c for c in ("run_id", "family", "impl", "lr", "batch_size", "seed", "status",
                           "diverged_epoch", "error") if c in bad]
    if "error" in columns and bad["error"].isna().all():  # every row has the key now: show it when one failed
        columns.remove("error")
    return bad[columns].reset_index(drop=True)
