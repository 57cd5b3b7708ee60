"""The timing figures of one run: its steady-state epoch time with spread, the samples/s derived from it,
and whether the run's timings can be trusted (`timing_unstable`, with the reason).

The first epoch is reported apart (`first_epoch_seconds`) and left out of every steady-state figure: it is
the one that would pay any one-time cost the warm-up missed.
"""
from __future__ import annotations

import math

from . import stats

STEAL_LIMIT = 0.02  # a hypervisor giving more than 2 % of the CPU time to other guests: a noisy neighbour
LOAD_LIMIT = 0.5  # other work keeping more than half of the cores busy (per core)
# each reason in timing_unstable_reason starts with one of these, so tables can name its kind briefly
REASON_LABELS = ("epoch times vary", "CPU steal", "other processes busy", "load average")
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


def unstable_reasons(epoch_cv, noise: dict) -> list[str]:
    """Why a run's timings cannot be trusted (empty: nothing seen). The load rule reads other processes'
    load during the run where /proc/stat allows, else the load average before it (which also counts
    this process's own earlier work, e.g. the previous run of a study)."""
    reasons = []
    if epoch_cv is not None and epoch_cv > stats.CV_LIMIT:
        reasons.append(f"epoch times vary (CV {100 * epoch_cv:.0f} % > {100 * stats.CV_LIMIT:.0f} %)")
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


def timing_fields(epoch_seconds, samples_per_epoch: int | None, noise: dict) -> dict:
    """Everything a run records about its timing: the epoch figures (iterative runs), the noise it ran
    under, and timing_unstable with timing_unstable_reason ("; "-joined; None when stable)."""
    fields = epoch_figures(epoch_seconds, samples_per_epoch) if samples_per_epoch else dict.fromkeys(FIGURE_KEYS)
    fields.update(noise)
    reasons = unstable_reasons(fields.get("epoch_seconds_cv"), noise)
    fields.update(timing_unstable=bool(reasons), timing_unstable_reason="; ".join(reasons) or None)
    return fields


def timing_flags(seconds, noise: dict) -> dict:
    """timing_unstable with its reason, from raw times (steady-state epochs or interleaved blocks) and
    the noise readings; computed when a result is read, so old files get today's rule."""
    seconds = [s for s in seconds if s is not None]
    cv = stats.timing_summary(seconds)["cv"] if len(seconds) > 1 else None
    reasons = unstable_reasons(cv if cv is not None and math.isfinite(cv) else None, noise)
    return {"timing_unstable": bool(reasons), "timing_unstable_reason": "; ".join(reasons) or None}
