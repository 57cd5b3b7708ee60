"""Two configurations measured in interleaved rounds, compared paired by round.

In each round every configuration of a grid runs one block of steps, in a reshuffled order, so the two
blocks of a round share the machine's state of that minute (its clock, its neighbours). The ratio of the
round's two times cancels that state; what is left varies far less than either side's times, which on
these VMs drift by ±30 % between minutes. So the test is on the per-round log ratios:

- ratio: exp(mean of log(new / base)) over the rounds present on both sides; its 95 % interval and the
  p-value from the one-sample t-test of those logs against 0 (scipy.stats.ttest_1samp);
- verdicts: slower / faster when the whole 95 % interval lies beyond the threshold band (so p < alpha
  too: as criterion.rs, the interval must clear the noise band; the estimate beyond it is not enough),
  equivalent when the 90 % interval lies inside the band (TOST), else inconclusive, with rounds_needed,
  how many paired rounds in total would likely decide at the effect and spread seen so far;
- rounds whose log ratio lies beyond Tukey's 3·IQR fences of the run's log ratios are set aside first
  (a hiccup that hit one block of a round, not the other: the t-test is not robust to them) and the
  note says how many;
- fewer than MIN_PAIRS rounds in common: inconclusive, whatever the numbers.
"""
from __future__ import annotations

import functools
import math

import numpy as np
from scipy import stats as sps

from . import stats

PAIRED = "paired by round"
MIN_PAIRS = 3
TOO_FEW_PAIRS_NOTE = f"too few paired rounds: fewer than {MIN_PAIRS} on both sides"
POWER = 0.9  # rounds_needed aims at deciding in this share of repeats, not in half of them
MAX_ROUNDS = 10_000  # beyond this many rounds a difference is taken as one that cannot be decided


def log_ratios(base: dict[int, float], new: dict[int, float]) -> np.ndarray:
    """log(new / base) for each round present on both sides with a positive time, in round order."""
    rounds = sorted(r for r in set(base) & set(new) if _positive(base[r]) and _positive(new[r]))
    return np.log(np.array([new[r] / base[r] for r in rounds], dtype=float))


def without_outliers(logs: np.ndarray) -> np.ndarray:
    """The log ratios inside Tukey's 3·IQR fences (all of them with fewer than 8: too few to tell)."""
    if len(logs) < 8:
        return logs
    q1, q3 = np.percentile(logs, [25, 75])
    spread = sps.iqr(logs)
    return logs[(logs >= q1 - 3 * spread) & (logs <= q3 + 3 * spread)]


def _positive(value) -> bool:
    return value is not None and math.isfinite(value) and value > 0


def rounds_needed(mean_log: float, sd_log: float, threshold: float = stats.THRESHOLD, alpha: float = stats.ALPHA,
                  power: float = POWER) -> int | None:
    """Paired rounds in total that would decide with probability about `power` if the per-round log ratios
    keep this mean and SD: for equivalence, n with (t_{1-alpha} + t_power) sd / sqrt(n) <= log(1 + thr) - |mean|
    (the 90 % interval inside the band); for a difference, n with (t_{1-alpha/2} + t_power) sd / sqrt(n) <=
    |mean| - log(1 + thr) (the 95 % interval beyond it, so p < alpha and the ratio beyond the threshold).
    None when neither can decide within MAX_ROUNDS (e.g. the mean sits on the threshold)."""
    if not (math.isfinite(mean_log) and math.isfinite(sd_log)):
        return None
    band, effect = math.log1p(threshold), abs(mean_log)
    candidates = []
    for margin, quantile in ((band - effect, 1 - alpha), (effect - band, 1 - alpha / 2)):
        if margin <= 0:  # this verdict cannot be reached at this mean, however many rounds
            continue
        enough = np.flatnonzero(_half_width_factors(quantile, power) * sd_log <= margin)
        if len(enough):
            candidates.append(MIN_PAIRS + int(enough[0]))
    return min(candidates) if candidates else None


@functools.lru_cache(maxsize=16)
def _half_width_factors(quantile: float, power: float) -> np.ndarray:
    """(t_quantile + t_power) / sqrt(n) for n = MIN_PAIRS .. MAX_ROUNDS: the same for every call, so once."""
    n = np.arange(MIN_PAIRS, MAX_ROUNDS + 1)
    return (sps.t.ppf(quantile, n - 1) + sps.t.ppf(power, n - 1)) / np.sqrt(n)


def paired_comparison(base: dict[int, float], new: dict[int, float], threshold: float = stats.THRESHOLD,
                      alpha: float = stats.ALPHA, confidence: float = stats.CONFIDENCE) -> stats.Comparison:
    """new against base paired by round: base and new map a round number to that round's block seconds
    (summed by the caller when a run has several blocks a round); only rounds on both sides count."""
    every = log_ratios(base, new)
    logs = without_outliers(every)
    n = len(logs)
    ratio = float(np.exp(np.mean(logs))) if n else math.nan
    sd = float(np.std(logs, ddof=1)) if n >= 2 else math.nan
    outliers = len(every) - n
    note = f"{outliers} outlier round(s) of {len(every)} set aside" if outliers else ""
    common = {"n_base": len(base), "n_new": len(new), "method": PAIRED, "n_pairs": n}
    if n < MIN_PAIRS:
        estimate = rounds_needed(float(np.mean(logs)), sd, threshold, alpha) if n >= 2 else None
        needed = max(estimate, MIN_PAIRS) if estimate is not None else None
        return stats.Comparison(ratio, math.nan, math.nan, math.nan, verdict="inconclusive", rounds_needed=needed,
                                note=TOO_FEW_PAIRS_NOTE, **common)
    if np.ptp(logs) <= 1e-12:  # every round gave the same ratio (to rounding): no spread to test against
        p = 1.0 if ratio == 1 else 0.0
        low, high, low90, high90 = ratio, ratio, ratio, ratio
    else:
        result = sps.ttest_1samp(logs, 0.0, alternative="two-sided")
        low, high = np.exp(result.confidence_interval(confidence))
        low90, high90 = np.exp(result.confidence_interval(stats.equivalence_confidence(alpha)))
        p = float(result.pvalue)
    decided = stats.verdict(ratio, p, threshold, alpha, (low90, high90))
    if decided in ("slower", "faster") and not (low > 1 + threshold or high < 1 / (1 + threshold)):
        decided = "inconclusive"  # as criterion.rs: a change is real when its interval clears the noise band
    needed = None
    if decided == "inconclusive":  # at least one more round than now: this many did not decide
        estimate = rounds_needed(float(np.mean(logs)), sd, threshold, alpha)
        needed = max(estimate, n + 1) if estimate is not None else None
    return stats.Comparison(ratio, float(low), float(high), p, verdict=decided, ci90_low=float(low90),
                            ci90_high=float(high90), rounds_needed=needed, note=note, **common)
