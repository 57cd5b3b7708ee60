"""The statistics behind every figure mnistbench prints: spreads, 95 % intervals and verdicts.

All of it is scipy.stats; nothing here is hand-rolled beyond arranging its inputs.

- A sample of timings (the steady-state epochs of a run, the rounds of a benchmark) is summarised by its
  median, IQR and a bootstrap 95 % interval of the median.
- Figures over seeds are a mean with a Student-t 95 % interval (n = 1 has no interval, and says so).
- "A is slower than B" is a Welch t-test on log times (so the effect is a ratio of geometric means, with
  its own 95 % interval) plus a minimum effect: significant at alpha AND beyond the threshold, as asv
  (a test and a factor) and criterion.rs (alpha = 0.05 and a noise band) decide.
"""
from __future__ import annotations

import math
import warnings
from dataclasses import dataclass

import numpy as np
from scipy import stats as sps

CONFIDENCE = 0.95
ALPHA = 0.05
THRESHOLD = 0.05  # a ratio within 1 ± 5 % is no detectable difference, however significant
CV_LIMIT = 0.10  # a timing sample whose coefficient of variation exceeds this is unstable
BOOTSTRAP_RESAMPLES = 2000


def steady_state(epoch_seconds) -> list:
    """The epochs that describe a run's steady state: every epoch but the first, which pays one-time
    costs (page faults on fresh buffers, lazy initialisation); a one-epoch run has only its first."""
    seconds = [s for s in epoch_seconds if s is not None]
    return seconds[1:] if len(seconds) >= 2 else seconds


def _clean(values) -> np.ndarray:
    array = np.asarray([v for v in values if v is not None], dtype=float)
    return array[np.isfinite(array)]


def median_interval(values, confidence: float = CONFIDENCE, seed: int = 0) -> tuple[float, float]:
    """A bootstrap interval of the median (BCa, percentile where BCa is undefined); nan for n < 3."""
    sample = _clean(values)
    if len(sample) < 3 or np.ptp(sample) == 0:
        value = float(np.median(sample)) if len(sample) >= 3 else math.nan
        return value, value
    for method in ("BCa", "percentile"):
        with warnings.catch_warnings():  # a degenerate BCa is caught below: it falls back to percentile
            warnings.simplefilter("ignore", RuntimeWarning)
            warnings.simplefilter("ignore", sps.DegenerateDataWarning)
            result = sps.bootstrap((sample,), np.median, confidence_level=confidence,
                                   n_resamples=BOOTSTRAP_RESAMPLES, method=method,
                                   random_state=np.random.default_rng(seed))
        low, high = result.confidence_interval
        if math.isfinite(low) and math.isfinite(high):
            return float(low), float(high)
    return math.nan, math.nan


def timing_summary(values) -> dict:
    """median, iqr, ci_low, ci_high (of the median), cv (std / mean), n of a sample of seconds."""
    sample = _clean(values)
    if len(sample) == 0:
        return {"median": math.nan, "iqr": math.nan, "ci_low": math.nan, "ci_high": math.nan, "cv": math.nan,
                "n": 0}
    low, high = median_interval(sample)
    cv = float(np.std(sample, ddof=1) / np.mean(sample)) if len(sample) > 1 and np.mean(sample) > 0 else math.nan
    return {"median": float(np.median(sample)), "iqr": float(sps.iqr(sample)), "ci_low": low, "ci_high": high,
            "cv": cv, "n": len(sample)}


def mean_interval(values, confidence: float = CONFIDENCE) -> dict:
    """mean, ci_low, ci_high (Student t), std and n; the interval is nan when n < 2."""
    sample = _clean(values)
    n = len(sample)
    if n == 0:
        return {"mean": math.nan, "ci_low": math.nan, "ci_high": math.nan, "std": math.nan, "n": 0}
    mean = float(np.mean(sample))
    if n < 2:
        return {"mean": mean, "ci_low": math.nan, "ci_high": math.nan, "std": math.nan, "n": 1}
    std = float(np.std(sample, ddof=1))
    if std == 0:
        return {"mean": mean, "ci_low": mean, "ci_high": mean, "std": 0.0, "n": n}
    low, high = sps.t.interval(confidence, df=n - 1, loc=mean, scale=sps.sem(sample))
    return {"mean": mean, "ci_low": float(low), "ci_high": float(high), "std": std, "n": n}


def ratio_interval(ratios, confidence: float = CONFIDENCE) -> dict:
    """The geometric mean of paired ratios (e.g. one implementation's time over its twin's, per seed) with
    a Student-t 95 % interval taken on their logs: ratios multiply, so their logs are what averages."""
    sample = _clean(ratios)
    sample = sample[sample > 0]
    logs = mean_interval(np.log(sample), confidence)
    return {"mean": math.exp(logs["mean"]) if logs["n"] else math.nan, "ci_low": math.exp(logs["ci_low"]),
            "ci_high": math.exp(logs["ci_high"]), "n": logs["n"]}


@dataclass(frozen=True)
class Comparison:
    """new against base: ratio = geometric mean of new / of base (> 1: new takes longer)."""

    ratio: float
    ci_low: float
    ci_high: float
    p_value: float
    n_base: int
    n_new: int
    verdict: str  # "faster" | "slower" | "no detectable difference" | "too few samples"

    def as_dict(self, prefix: str = "ratio") -> dict:
        return {prefix: self.ratio, f"{prefix}_ci_low": self.ci_low, f"{prefix}_ci_high": self.ci_high,
                "p_value": self.p_value, "n_base": self.n_base, "n_new": self.n_new, "verdict": self.verdict}


def verdict(ratio: float, p_value: float, threshold: float = THRESHOLD, alpha: float = ALPHA) -> str:
    """slower / faster only when significant AND beyond the minimum effect; else no detectable difference."""
    if not math.isfinite(p_value) or not math.isfinite(ratio):
        return "too few samples"
    if p_value < alpha and ratio > 1 + threshold:
        return "slower"
    if p_value < alpha and ratio < 1 / (1 + threshold):
        return "faster"
    return "no detectable difference"


def compare_times(base, new, threshold: float = THRESHOLD, alpha: float = ALPHA,
                  confidence: float = CONFIDENCE) -> Comparison:
    """Welch's t-test on log seconds of two timing samples (each needs n >= 2)."""
    a, b = np.log(_clean(base)), np.log(_clean(new))
    if len(a) < 2 or len(b) < 2:
        ratio = float(np.exp(np.mean(b) - np.mean(a))) if len(a) and len(b) else math.nan
        return Comparison(ratio, math.nan, math.nan, math.nan, len(a), len(b), "too few samples")
    if np.ptp(a) == 0 and np.ptp(b) == 0:  # identical repeated values: no variance to test against
        ratio = float(np.exp(b[0] - a[0]))
        p = 1.0 if ratio == 1 else 0.0
        return Comparison(ratio, ratio, ratio, p, len(a), len(b), verdict(ratio, p, threshold, alpha))
    result = sps.ttest_ind(b, a, equal_var=False)
    low, high = result.confidence_interval(confidence)
    ratio = float(np.exp(np.mean(b) - np.mean(a)))
    p = float(result.pvalue)
    return Comparison(ratio, float(np.exp(low)), float(np.exp(high)), p, len(a), len(b),
                      verdict(ratio, p, threshold, alpha))


RUN_SAMPLES = "runs (each run's geometric-mean steady-state epoch)"
EPOCH_SAMPLES = "steady-state epochs (one run on a side: the interval leaves out run-to-run drift)"


def timing_samples(base_runs, new_runs) -> tuple[list, list, str]:
    """The samples to compare two sides' times with, and what they are; each side is a list of runs, each
    run the list of its steady-state epoch seconds. The epochs of one run share the machine's state
    while it ran (its load, its clock, a neighbour on the VM), so they are not independent draws: with
    two or more timed runs on each side the samples are the runs, one figure each (the geometric mean of
    its epochs). With one run on a side only its epochs are there to test, and a verdict then holds for
    the conditions of those runs."""
    base_runs, new_runs = [r for r in base_runs if len(r)], [r for r in new_runs if len(r)]
    if len(base_runs) >= 2 and len(new_runs) >= 2:
        return [float(sps.gmean(r)) for r in base_runs], [float(sps.gmean(r)) for r in new_runs], RUN_SAMPLES
    return [s for r in base_runs for s in r], [s for r in new_runs for s in r], EPOCH_SAMPLES


def compare_from_stats(base_mean: float, base_std: float, base_n: int, new_mean: float, new_std: float,
                       new_n: int, threshold: float = THRESHOLD, alpha: float = ALPHA,
                       confidence: float = CONFIDENCE) -> Comparison:
    """The same verdict from summary statistics only (e.g. pytest-benchmark JSON without raw data):
    Welch's t-test on the means; the ratio's interval from the delta method on log means."""
    if base_n < 2 or new_n < 2 or base_mean <= 0 or new_mean <= 0:
        ratio = new_mean / base_mean if base_mean > 0 else math.nan
        return Comparison(ratio, math.nan, math.nan, math.nan, base_n, new_n, "too few samples")
    result = sps.ttest_ind_from_stats(new_mean, new_std, new_n, base_mean, base_std, base_n, equal_var=False)
    ratio = new_mean / base_mean
    # variance of log(mean) ~ (std / mean)^2 / n; Welch-Satterthwaite degrees of freedom for the interval
    var_new, var_base = (new_std / new_mean) ** 2 / new_n, (base_std / base_mean) ** 2 / base_n
    spread = math.sqrt(var_new + var_base)
    if spread == 0:
        p = 1.0 if ratio == 1 else 0.0
        return Comparison(ratio, ratio, ratio, p, base_n, new_n, verdict(ratio, p, threshold, alpha))
    dof = (var_new + var_base) ** 2 / (var_new**2 / (new_n - 1) + var_base**2 / (base_n - 1))
    half = sps.t.ppf(0.5 + confidence / 2, dof) * spread
    p = float(result.pvalue)
    return Comparison(ratio, ratio * math.exp(-half), ratio * math.exp(half), p, base_n, new_n,
                      verdict(ratio, p, threshold, alpha))


def accuracy_band(p_a: float, n_a: int, p_b: float, n_b: int, seed_var_a: float = 0.0, seeds_a: int = 1,
                  seed_var_b: float = 0.0, seeds_b: int = 1, confidence: float = CONFIDENCE) -> float:
    """Half-width of the band within which two accuracies are indistinguishable: z · sqrt of the binomial
    variance of each figure (p(1-p)/n evaluated images) plus the variance of each mean over seeds
    (seed variance / number of seeds)."""
    variance = sum(p * (1 - p) / n for p, n in ((p_a, n_a), (p_b, n_b)) if n and math.isfinite(p))
    variance += (seed_var_a or 0.0) / max(seeds_a, 1) + (seed_var_b or 0.0) / max(seeds_b, 1)
    return float(sps.norm.ppf(0.5 + confidence / 2) * math.sqrt(variance))
