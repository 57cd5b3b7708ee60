"""How a table turns the runs of one row into figures with their spread, and says which timings are shaky.

Every figure over seeds is a mean with a Student-t 95 % interval (stats.mean_interval) in the columns
`x_mean`, `x_ci_low`, `x_ci_high` (plus `x_std`), which render shows as "m ± h"; a row from one run has no
interval, and its n says so. Ratios are geometric means with the interval taken on their logs.
"""
from __future__ import annotations

import pandas as pd

from .. import runtiming, stats


def numbers(values) -> pd.Series:
    return pd.to_numeric(pd.Series(values, dtype=object), errors="coerce").dropna()


def interval_columns(name: str, values) -> dict:
    """name_mean, name_ci_low, name_ci_high (95 %, Student t over the values) and name_std."""
    summary = stats.mean_interval(numbers(values))
    return {f"{name}_mean": summary["mean"], f"{name}_ci_low": summary["ci_low"],
            f"{name}_ci_high": summary["ci_high"], f"{name}_std": summary["std"]}


def ratio_columns(name: str, ratios) -> dict:
    """name_mean (the geometric mean), name_ci_low, name_ci_high of paired ratios."""
    summary = stats.ratio_interval(numbers(ratios))
    return {f"{name}_mean": summary["mean"], f"{name}_ci_low": summary["ci_low"],
            f"{name}_ci_high": summary["ci_high"]}


def timing_note(runs) -> str:
    """A table's "timing" cell for the runs of one row: "stable", "k/n unstable: <kinds>", or "not recorded"
    for runs saved before timing stability was recorded."""
    if runs.empty:
        return ""
    flags = runs["timing_unstable"] if "timing_unstable" in runs else pd.Series([None] * len(runs))
    recorded = flags.notna()
    if not recorded.any():
        return "not recorded"
    unstable = runs[recorded & flags.astype(object).eq(True)]
    if unstable.empty:
        return "stable" if recorded.all() else f"stable ({(~recorded).sum()} not recorded)"
    reasons = " ".join(str(r) for r in unstable.get("timing_unstable_reason", pd.Series(dtype=object)).dropna())
    kinds = [label for label in runtiming.REASON_LABELS if label in reasons]
    return f"{len(unstable)}/{len(runs)} unstable: {', '.join(kinds) or 'reason not recorded'}"


def status_text(group) -> str:
    """"ok", or the count of each status with the epochs where runs diverged."""
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


def aggregate(frame, keys, metrics, timing: bool = True) -> pd.DataFrame:
    """One row per group: status, n (ok runs), each metric's mean with its interval over the ok runs, and
    (timing=True) the timing note. A metric is a column name, or (shown name, column) to rename it."""
    rows = []
    for key, group in frame.groupby(list(keys), sort=False):
        ok = group[group.status == "ok"]
        row = dict(zip(keys, key if isinstance(key, tuple) else (key,)))
        row.update(status=status_text(group), n=len(ok))
        for metric in metrics:
            name, column = metric if isinstance(metric, tuple) else (metric, metric)
            row.update(interval_columns(name, ok.get(column, [])))
        if timing:
            row["timing"] = timing_note(ok)
        rows.append(row)
    return pd.DataFrame(rows)
