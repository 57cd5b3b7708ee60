"""The timing figures of one run: its steady-state epoch time with spread, the samples/s derived from it,
and whether the run's timings can be trusted (`timing_unstable`, with the reason).

The first epoch is reported apart (`first_epoch_seconds`) and left out of every steady-state figure: it is
the one that would pay any one-time cost the warm-up missed.

The stability rule reads the steady-state epoch (or block) times with robust figures only, so that one
slow epoch cannot flag a run and a long disturbance cannot hide in a mean:
- spread: IQR / median. >= 10 % is reported as noisy (`timing_noisy`) but does not flag; >= 25 % flags.
- drift: median of the last third over median of the first third, minus 1 (six points or more);
  |drift| > 10 % flags (the machine got slower or faster during the run).
- outliers: points beyond Tukey's far fences (quartiles -/+ 3 IQR); they flag when more than 10 % of the
  points AND at least 3: a couple of outlier epochs in 30 do not flag, a CPU hog over a third of a run does
  (through the spread or the drift as well).
- the machine: CPU steal > 2 %, other processes busy on more than half of the cores (or, where that was
  not measured, the load average before the run) flag.
Calibrated on synthetic 30-epoch runs (tests/test_stats.py): 5 % lognormal noise with 1-2 epochs 50 %
slower is flagged in well under 5 % of seeds; a +80 % hog over a contiguous third in well over 95 %.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
from scipy import stats as sps

from . import stats

STEAL_LIMIT = 0.02  # a hypervisor giving more than 2 % of the CPU time to other guests: a noisy neighbour
LOAD_LIMIT = 0.5  # other work keeping more than half of the cores busy (per core)
NOISY_LIMIT = 0.10  # IQR / median from which a run is reported noisy (not flagged)
SPREAD_LIMIT = 0.25  # IQR / median from which a run is flagged
DRIFT_LIMIT = 0.10  # |last third / first third - 1| beyond which a run is flagged
DRIFT_MIN_POINTS = 6  # two points a third at least, else the drift is None
OUTLIER_FENCE = 3.0  # Tukey's far fences: quartiles -/+ 3 IQR
OUTLIER_SHARE = 0.10  # severe outliers flag a run beyond this share of its points ...
OUTLIER_MIN = 3  # ... and only from this many: a couple of slow epochs is not a disturbed run
# each reason in timing_unstable_reason starts with one of these, so tables can name its kind briefly
# ("epoch times vary": the CV rule's label, still in results saved before these rules)
REASON_LABELS = ("epoch times spread", "epoch times drift", "outlier epochs", "CPU steal", "other processes busy",
                 "load average", "epoch times vary")
# what epoch_figures records (all None for a run without epochs, such as a scikit-learn fit)
FIGURE_KEYS = ("first_epoch_seconds", "epoch_seconds_median", "epoch_seconds_iqr", "epoch_seconds_ci_low",
               "epoch_seconds_ci_high", "epoch_seconds_cv", "epoch_seconds_n", "train_samples_per_s",
               "train_samples_per_s_ci_low", "train_samples_per_s_ci_high")


def epoch_figures(epoch_seconds, samples_per_epoch: int) -> dict:
    """first_epoch_seconds, the steady-state epochs' median / IQR / bootstrap 95 % interval of the median /
    CV / n, and train_samples_per_s (samples per epoch over the median) with the interval it inherits.
    n = 1 (a run of one or two epochs) has no interval: its ci, cv and iqr are None."""
    seconds = [s for s in epoch_seconds if s is not None]
    summary = stats.timing_summary(stats.steady_state(seconds))
    figures = {"first_epoch_seconds": seconds[0] if seconds else None}
    figures.update({f"epoch_seconds_{k}": summary[k] for k in ("median", "iqr", "ci_low", "ci_high", "cv", "n")})
    if summary["n"] < 2:
        figures.update(epoch_seconds_iqr=None, epoch_seconds_cv=None)
    figures["train_samples_per_s"] = _rate(samples_per_epoch, summary["median"])
    # samples/s falls as seconds rise: the interval's ends swap
    figures["train_samples_per_s_ci_low"] = _rate(samples_per_epoch, summary["ci_high"])
    figures["train_samples_per_s_ci_high"] = _rate(samples_per_epoch, summary["ci_low"])
    return {k: None if isinstance(v, float) and not math.isfinite(v) else v for k, v in figures.items()}


def _rate(samples: int, seconds) -> float | None:
    return samples / seconds if seconds is not None and math.isfinite(seconds) and seconds > 0 else None


@dataclass(frozen=True)
class Stability:
    """Robust stability figures of a sample of steady-state seconds (see the module docstring)."""

    iqr_over_median: float | None  # None with fewer than two points
    noisy: bool
    unstable: bool  # the spread alone
    severe_outliers: int
    drift: float | None  # None with fewer than DRIFT_MIN_POINTS points
    drifting: bool
    reasons: list[str] = field(default_factory=list)  # what flags the run; empty: nothing in the times

    @property
    def flagged(self) -> bool:
        return bool(self.reasons)


def stability(seconds) -> Stability:
    """The spread, drift and outliers of steady-state seconds (in the order measured), with the reasons
    they flag the run for."""
    sample = np.asarray([s for s in seconds if s is not None and math.isfinite(s)], dtype=float)
    n = len(sample)
    if n < 2 or np.median(sample) <= 0:
        return Stability(None, False, False, 0, None, False, [])
    median, iqr = float(np.median(sample)), float(sps.iqr(sample))
    spread = iqr / median
    q1, q3 = np.percentile(sample, [25, 75])
    outliers = int(np.sum((sample < q1 - OUTLIER_FENCE * iqr) | (sample > q3 + OUTLIER_FENCE * iqr)))
    third = n // 3
    drift = float(np.median(sample[-third:]) / np.median(sample[:third]) - 1) if n >= DRIFT_MIN_POINTS else None
    drifting = drift is not None and abs(drift) > DRIFT_LIMIT
    reasons = []
    if spread >= SPREAD_LIMIT:
        reasons.append(f"epoch times spread (IQR {100 * spread:.0f} % of the median >= {100 * SPREAD_LIMIT:.0f} %)")
    if drifting:
        reasons.append(f"epoch times drift ({100 * drift:+.0f} % from the first third to the last)")
    if outliers >= OUTLIER_MIN and outliers > OUTLIER_SHARE * n:
        reasons.append(f"outlier epochs ({outliers} of {n} beyond {OUTLIER_FENCE:g} IQR)")
    return Stability(spread, spread >= NOISY_LIMIT, spread >= SPREAD_LIMIT, outliers, drift, drifting, reasons)


def unstable_reasons(timing: Stability | None, noise: dict) -> list[str]:
    """Why a run's timings cannot be trusted (empty: nothing seen): the times' own reasons, then the
    machine's. The load rule reads other processes' load during the run where /proc/stat allows, else the
    load average before it (which also counts this process's own earlier work, e.g. the previous run of a
    study)."""
    reasons = list(timing.reasons) if timing is not None else []
    steal = noise.get("cpu_steal_fraction")
    if steal is not None and steal > STEAL_LIMIT:
        reasons.append(f"CPU steal {100 * steal:.1f} % > {100 * STEAL_LIMIT:.0f} %")
    cores = noise.get("cpu_cores") or 1
    others, before = noise.get("other_load"), noise.get("load_avg_before")
    if others is not None and others > LOAD_LIMIT * cores:
        reasons.append(f"other processes busy: {others:.1f} of {cores} cores")
    elif others is None and before is not None and before > LOAD_LIMIT * cores:
        reasons.append(f"load average {before:.2f} on {cores} cores before the run")
    return reasons


def timing_flags(seconds, noise: dict) -> dict:
    """The flags of a run from its raw epoch (or block) seconds, first included (it is dropped here), and
    the noise it ran under: what a reader recomputes for results saved before these rules."""
    timing = stability(stats.steady_state(seconds or []))
    reasons = unstable_reasons(timing, noise or {})
    return {"timing_unstable": bool(reasons), "timing_unstable_reason": "; ".join(reasons) or None,
            "timing_noisy": timing.noisy, "iqr_over_median": timing.iqr_over_median,
            "severe_outliers": timing.severe_outliers, "drift": timing.drift}
