"""Numeric tables of a results DataFrame (results.to_frame): one function per table.

Means are over seeds of runs whose status is ok; diverged and failed runs are counted in each row's
status, never silently dropped. Rows are split by anything that differs within a family (epochs cap,
machine, torch version...), so numbers from different settings or machines are never averaged together.
Mean and std sit in separate `x_mean` / `x_std` columns so that the CSVs stay machine-readable.
"""
from __future__ import annotations

import math

import pandas as pd

from .. import registry

CONTEXT = ("dataset", "protocol", "classes", "hidden", "epochs", "patience", "loader", "machine",
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
    for column in ("env_device", "env_device_name", "env_cpu_model", "env_threads", "env_torch", *CONTEXT):
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


def status_text(group) -> str:
    counts = group.status.value_counts()
    if list(counts.index) == ["ok"]:
        return "ok"
    parts = []
    for status, n in counts.items():
        text = f"{n}/{len(group)} {status}"
        if status == "diverged":
            epochs = sorted({int(e) for e in group.diverged_epoch.dropna()})
            text += f" at epoch {','.join(map(str, epochs))}"
        parts.append(text)
    return ", ".join(parts)


def aggregate(frame, keys, metrics) -> pd.DataFrame:
    """One row per group: status, n (ok runs) and mean/std of each metric over the ok runs."""
    rows = []
    for key, group in frame.groupby(list(keys), sort=False):
        ok = group[group.status == "ok"]
        row = dict(zip(keys, key))
        row.update(status=status_text(group), n=len(ok))
        for metric in metrics:
            values = pd.to_numeric(ok[metric], errors="coerce").dropna()
            row[f"{metric}_mean"] = values.mean() if len(values) else math.nan
            row[f"{metric}_std"] = values.std() if len(values) > 1 else math.nan
        rows.append(row)
    return pd.DataFrame(rows)


# ---------------------------------------------------------------- the tables
def summary_table(defaults) -> pd.DataFrame:
    keys = ["family", "impl", *context_columns(defaults)]
    return aggregate(defaults, keys, ["test_acc", "best_val_acc", "epochs_run", "train_seconds",
                                      "train_samples_per_s"])


def twins_table(defaults) -> pd.DataFrame:
    """Each manual-style implementation minus its builtin and sklearn twins, paired by seed (same split)."""
    pair_on = ["family", "seed", *context_columns(defaults)]
    ok = defaults[defaults.status == "ok"]
    rows = []
    for (family, impl), mine in ok.groupby(["family", "impl"], sort=False):
        twin_of = twins(family)
        references = [twin_of[impl]] + [e.name for e in registry.implementations(family)
                                         if not e.iterative and e.name != twin_of[impl]] if impl in twin_of else []
        for twin in references:
            pairs = mine.merge(ok[ok.impl == twin], on=pair_on, suffixes=("", "_twin"))
            if pairs.empty:
                continue
            row = {"family": family, "impl": impl, "twin": twin, "pairs": len(pairs)}
            for metric in ("test_acc", "best_val_acc"):
                diff = pairs[metric] - pairs[f"{metric}_twin"]
                row.update({f"{metric}_difference_mean": diff.mean(), f"{metric}_difference_std": diff.std()})
            ratio = pairs.train_seconds / pairs.train_seconds_twin
            row.update(train_seconds_ratio_mean=ratio.mean(), train_seconds_ratio_std=ratio.std())
            rows.append(row)
    return pd.DataFrame(rows)


def per_class_means(runs) -> pd.DataFrame:
    """Mean per-class test accuracy: one row per class, one column per implementation."""
    rows = [{"impl": r.impl, "class": int(c), "acc": a} for _, r in runs.iterrows()
            for c, a in (r.per_class_acc or {}).items()]
    return pd.DataFrame(rows).pivot_table(index="class", columns="impl", values="acc", aggfunc="mean")


def per_class_table(defaults) -> pd.DataFrame:
    ok, rows = defaults[defaults.status == "ok"], []
    keys = ["family", *context_columns(defaults)]
    for key, runs in ok.groupby(keys, sort=False):
        table = per_class_means(runs)
        order = [i for i in registry.impl_names() if i in table.columns] + sorted(
            set(table.columns) - set(registry.impl_names()))
        out = pd.DataFrame({f"{impl}_acc": table[impl] for impl in order})
        for impl, twin in twins(key[0] if isinstance(key, tuple) else key).items():
            if impl in table.columns and twin in table.columns:
                out[f"{impl}_minus_{twin}"] = table[impl] - table[twin]
        out.insert(0, "class", table.index)
        for name, value in reversed(list(zip(keys, key))):
            out.insert(0, name, value)
        rows.append(out)
    return pd.concat(rows, ignore_index=True) if rows else pd.DataFrame()


def sweep_rows(frame, axis: str) -> pd.DataFrame:
    """Runs of families swept along `axis` with the other axis at the notebook's value."""
    rows = at_defaults(frame, exempt=axis)
    swept = rows.groupby("family")[axis].nunique()
    return rows[rows.family.isin(swept[swept > 1].index)]


def sweep_table(frame, axis: str) -> pd.DataFrame:
    rows = sweep_rows(frame, axis)
    table = aggregate(rows, ["family", axis, "impl", *context_columns(rows)],
                      ["best_val_loss", "best_val_acc", "test_acc", "epochs_run", "train_seconds",
                       "train_samples_per_s"])
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
    """(training seconds, epoch) when validation accuracy first reaches target, else (nan, nan)."""
    elapsed = 0.0
    for record in run["history"] or []:
        elapsed += record["train_seconds"] or 0.0
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
                               columns=["seconds", "epoch"]).dropna()
        rows.append({"family": key[0], "impl": key[1],
                     **dict(zip(context_columns(runs), key[2:])), "target_val_acc": target,
                     "reached": f"{len(reached)}/{len(group)}",
                     "seconds_to_target_mean": reached.seconds.mean() if len(reached) else math.nan,
                     "seconds_to_target_std": reached.seconds.std() if len(reached) > 1 else math.nan,
                     "epochs_to_target_mean": reached.epoch.mean() if len(reached) else math.nan})
    return pd.DataFrame(rows)


def throughput_from_runs(frame) -> pd.DataFrame:
    rows = sweep_rows(frame, "batch_size")
    return aggregate(rows, ["family", "impl", "batch_size", *context_columns(rows)], ["train_samples_per_s"])


def not_ok_table(frame) -> pd.DataFrame:
    bad = frame[frame.status != "ok"]
    columns = [c for c in ("run_id", "family", "impl", "lr", "batch_size", "seed", "status",
                           "diverged_epoch", "error") if c in bad]
    return bad[columns].reset_index(drop=True)
