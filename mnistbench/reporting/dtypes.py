"""Accuracy against speed across compute precisions: float32 and bf16 runs of the same configuration.

A row pairs every ok float32 run of a configuration (family, implementation, lr, batch size and whatever
else varies in the folder) with its bf16 runs: test accuracy of each (mean ± 95 % interval over seeds, n),
steady-state epoch seconds of each (mean ± interval over the pooled epochs, first epochs left out), the
bf16 speed-up (float32 seconds / bf16 seconds, the ratio of geometric means with its Welch interval, tested
on the runs as `mnistbench compare` does: stats.timing_samples) and the accuracy difference against its
noise band (stats.accuracy_band: binomial noise of each figure plus each side's seed variance). The
table exists only when a folder holds both precisions for some configuration.
"""
from __future__ import annotations

import math

import pandas as pd

from .. import stats
from .spread import interval_columns, numbers, timing_note
from .tables import context_columns

BASE, LOW = "float32", "bfloat16"
LABELS = {BASE: "fp32", LOW: "bf16"}


def steady_epochs(runs) -> list[list[float]]:
    """The steady-state epoch times of each run (its first epoch left out)."""
    return [stats.steady_state([e.get("train_seconds") for e in history or []]) for history in runs.history]


def test_images(runs) -> float:
    sizes = [(split or {}).get("test") for split in runs.get("split_sizes", pd.Series(dtype=object))]
    sizes = [s for s in sizes if s]
    return float(sum(sizes) / len(sizes)) if sizes else math.nan


def accuracy_columns(base, low) -> dict:
    """bf16 − float32 mean test accuracy, the band within which that is noise, and the verdict."""
    a, b = numbers(base.test_acc), numbers(low.test_acc)
    difference = float(b.mean() - a.mean())
    band = stats.accuracy_band(float(a.mean()), test_images(base), float(b.mean()), test_images(low),
                               float(a.var()) if len(a) > 1 else 0.0, len(a),
                               float(b.var()) if len(b) > 1 else 0.0, len(b))
    verdict = "within noise" if abs(difference) <= band else ("bf16 lower" if difference < 0 else "bf16 higher")
    return {"acc_difference": difference, "noise_band": band, "accuracy_verdict": verdict}


def speed_columns(base, low) -> dict:
    """Steady epoch seconds of each side, and bf16's speed-up (> 1: bf16 trains faster) with its interval."""
    base_runs, low_runs = steady_epochs(base), steady_epochs(low)
    out = {**interval_columns("epoch_float32", [s for run in base_runs for s in run]),
           **interval_columns("epoch_bfloat16", [s for run in low_runs for s in run])}
    # ratio = bf16 / float32 seconds, tested on the runs (or one run's epochs) as `compare` does
    comparison = stats.compare_times(*stats.timing_samples(base_runs, low_runs)[:2])
    inverse = {"ratio": comparison.ratio, "ci_low": comparison.ci_high, "ci_high": comparison.ci_low}
    out.update({f"bf16_speedup{'' if part == 'ratio' else '_' + part}": 1 / value if value else math.nan
                for part, value in inverse.items()})
    out["speed_verdict"] = comparison.verdict.replace("faster", "bf16 faster").replace("slower", "bf16 slower")
    return out


def dtype_table(frame) -> pd.DataFrame:
    """One row per configuration run in both float32 and bf16 (ok runs only); empty when none is."""
    ok = frame[frame.status == "ok"] if len(frame) else frame
    if ok.empty or "dtype" not in ok or not {BASE, LOW} <= set(ok.dtype):
        return pd.DataFrame()
    keys = ["family", "impl", "lr", "batch_size", *[c for c in context_columns(ok) if c != "dtype"]]
    rows = []
    for key, group in ok.groupby(keys, sort=False):
        base, low = group[group.dtype == BASE], group[group.dtype == LOW]
        if base.empty or low.empty:
            continue
        row = dict(zip(keys, key))
        row.update(n_float32=len(base), n_bfloat16=len(low), **interval_columns("acc_float32", base.test_acc),
                   **interval_columns("acc_bfloat16", low.test_acc), **accuracy_columns(base, low),
                   **speed_columns(base, low), timing=timing_note(group))
        rows.append(row)
    return pd.DataFrame(rows)
