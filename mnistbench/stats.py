"""The statistics behind every figure mnistbench prints: spreads, 95 % intervals and verdicts.

All of it is scipy.stats; nothing here is hand-rolled beyond arranging its inputs.

- A sample of timings (the steady-state epochs of a run, the rounds of a benchmark) is summarised by its
  median, IQR and a bootstrap 95 % interval of the median.
- Figures over seeds are a mean with a Student-t 95 % interval (n = 1 has no interval, and says so).
- "A is slower than B" is a t-test on log times (so the effect is a ratio of geometric means, with its own
  95 % interval) plus a minimum effect: significant at alpha AND beyond the threshold, as asv (a test and a
  factor) and criterion.rs (alpha = 0.05 and a noise band) decide. "equivalent" is TOST: the 1 - 2 alpha
  (90 %) interval of the ratio lies inside [1 / (1 + threshold), 1 + threshold]. Anything else, and any
  comparison that cannot see the machine's drift, is "inconclusive", with the reason in Comparison.note.
- Runs measured apart are compared unpaired (Welch, compare_times / compare_runs), and with one run a side
  never decide: the drift between the two runs is unmeasured. Runs measured in interleaved rounds are
  compared paired by round (paired.paired_comparison), which cancels the drift the rounds share.
"""
from __future__ import annotations

import math
import sys
import warnings
from dataclasses import dataclass, replace
from typing import NamedTuple

import numpy as np
from scipy import stats as sps

CONFIDENCE = 0.95
ALPHA = 0.05
THRESHOLD = 0.05  # a ratio within 1 ± 5 % is never slower / faster, however significant
VERDICTS = ("faster", "slower", "equivalent", "inconclusive")
UNPAIRED = "unpaired samples"  # e.g. the rounds of a benchmark, taken as independent draws
UNPAIRED_RUNS = "unpaired runs"
UNPAIRED_EPOCHS = "unpaired epochs of one run"
TOO_FEW_NOTE = "too few samples: fewer than two a side"
ONE_RUN_NOTE = "one run a side: drift between the runs is unmeasured"
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


LARGEST_LOG = math.log(sys.float_info.max)  # math.exp of more than this overflows a float


def ratio_interval(ratios, confidence: float = CONFIDENCE) -> dict:
    """The geometric mean of paired ratios (e.g. one implementation's time over its twin's, per seed) with
    a Student-t 95 % interval taken on their logs: ratios multiply, so their logs are what averages."""
    sample = _clean(ratios)
    sample = sample[sample > 0]
    logs = mean_interval(np.log(sample), confidence)
    return {"mean": exp(logs["mean"]) if logs["n"] else math.nan, "ci_low": exp(logs["ci_low"]),
            "ci_high": exp(logs["ci_high"]), "n": logs["n"]}


def exp(log_value: float) -> float:
    """math.exp, but infinite where the float overflows: an interval of logs from wildly spread figures
    (a hostile file, two rounds whose spread is hundreds of times their mean) is taken back, not raised."""
    return math.inf if log_value >= LARGEST_LOG else math.exp(log_value)


@dataclass(frozen=True)
class Comparison:
    """new against base: ratio = geometric mean of new / of base (> 1: new takes longer). ci_low / ci_high is
    the `confidence` (95 %) interval, ci90_low / ci90_high the 1 - 2 alpha one that decides equivalence."""

    ratio: float
    ci_low: float
    ci_high: float
    p_value: float
    n_base: int
    n_new: int
    verdict: str  # one of VERDICTS
    method: str = UNPAIRED  # "paired by round" | "unpaired runs" | "unpaired epochs of one run" | ...
    ci90_low: float = math.nan
    ci90_high: float = math.nan
    n_pairs: int = 0  # rounds present on both sides (paired only)
    rounds_needed: int | None = None  # paired rounds in total that would likely decide (inconclusive only)
    note: str = ""  # why the verdict is inconclusive when the data alone do not say

    def as_dict(self, prefix: str = "ratio") -> dict:
        return {prefix: self.ratio, f"{prefix}_ci_low": self.ci_low, f"{prefix}_ci_high": self.ci_high,
                f"{prefix}_ci90_low": self.ci90_low, f"{prefix}_ci90_high": self.ci90_high,
                "p_value": self.p_value, "n_base": self.n_base, "n_new": self.n_new, "verdict": self.verdict,
                "method": self.method, "n_pairs": self.n_pairs, "rounds_needed": self.rounds_needed,
                "note": self.note}


def verdict(ratio: float, p_value: float, threshold: float = THRESHOLD, alpha: float = ALPHA,
            ci90: tuple[float, float] | None = None) -> str:
    """slower / faster only when significant AND beyond the minimum effect; equivalent when the 1 - 2 alpha
    interval of the ratio (ci90) lies inside the band; else inconclusive."""
    if not math.isfinite(p_value) or not math.isfinite(ratio):
        return "inconclusive"
    if p_value < alpha and ratio > 1 + threshold:
        return "slower"
    if p_value < alpha and ratio < 1 / (1 + threshold):
        return "faster"
    if ci90 is not None and 1 / (1 + threshold) <= ci90[0] and ci90[1] <= 1 + threshold:
        return "equivalent"
    return "inconclusive"


def equivalence_confidence(alpha: float = ALPHA) -> float:
    """TOST at alpha is the 1 - 2 alpha interval inside the band (0.90 for alpha = 0.05)."""
    return 1 - 2 * alpha


def compare_times(base, new, threshold: float = THRESHOLD, alpha: float = ALPHA,
                  confidence: float = CONFIDENCE, method: str = UNPAIRED) -> Comparison:
    """Welch's t-test on log seconds of two timing samples taken as independent draws (each needs n >= 2);
    equivalence by TOST on the same Welch interval."""
    a, b = np.log(_clean(base)), np.log(_clean(new))
    if len(a) < 2 or len(b) < 2:
        ratio = float(np.exp(np.mean(b) - np.mean(a))) if len(a) and len(b) else math.nan
        return Comparison(ratio, math.nan, math.nan, math.nan, len(a), len(b), "inconclusive", method,
                          note=TOO_FEW_NOTE)
    if np.ptp(a) == 0 and np.ptp(b) == 0:  # identical repeated values: no variance to test against
        ratio = float(np.exp(b[0] - a[0]))
        p = 1.0 if ratio == 1 else 0.0
        return Comparison(ratio, ratio, ratio, p, len(a), len(b),
                          verdict(ratio, p, threshold, alpha, (ratio, ratio)), method, ratio, ratio)
    result = sps.ttest_ind(b, a, equal_var=False)
    low, high = np.exp(result.confidence_interval(confidence))
    low90, high90 = np.exp(result.confidence_interval(equivalence_confidence(alpha)))
    ratio = float(np.exp(np.mean(b) - np.mean(a)))
    p = float(result.pvalue)
    return Comparison(ratio, float(low), float(high), p, len(a), len(b),
                      verdict(ratio, p, threshold, alpha, (low90, high90)), method, float(low90), float(high90))


RUN_SAMPLES = "runs (each run's geometric-mean steady-state epoch)"
EPOCH_SAMPLES = "steady-state epochs (one run on a side: the interval leaves out run-to-run drift)"


class TimingSamples(NamedTuple):
    """What timing_samples returns; unpacks as (base, new, label) as it always did."""

    base: list
    new: list
    label: str

    @property
    def by_runs(self) -> bool:
        """True when the samples are runs (one figure each), False when they are one run's epochs."""
        return self.label == RUN_SAMPLES


def timing_samples(base_runs, new_runs) -> TimingSamples:
    """The samples to compare two sides' times with, and what they are; each side is a list of runs, each
    run the list of its steady-state epoch seconds. The epochs of one run share the machine's state
    while it ran (its load, its clock, a neighbour on the VM), so they are not independent draws: with
    two or more timed runs on each side the samples are the runs, one figure each (the geometric mean of
    its epochs). With one run on a side only its epochs are there to test (by_runs is False), and
    compare_runs then leaves the verdict inconclusive."""
    base_runs, new_runs = [r for r in base_runs if len(r)], [r for r in new_runs if len(r)]
    if len(base_runs) >= 2 and len(new_runs) >= 2:
        return TimingSamples([float(sps.gmean(r)) for r in base_runs], [float(sps.gmean(r)) for r in new_runs],
                             RUN_SAMPLES)
    return TimingSamples([s for r in base_runs for s in r], [s for r in new_runs for s in r], EPOCH_SAMPLES)


def compare_runs(base_runs, new_runs, threshold: float = THRESHOLD, alpha: float = ALPHA,
                 confidence: float = CONFIDENCE) -> Comparison:
    """Two sides' runs measured apart (each a list of its steady-state epoch seconds), compared unpaired:
    Welch on the runs with two or more a side; with one run on a side its epochs give a ratio and an
    interval, but the verdict stays inconclusive (ONE_RUN_NOTE): the epochs of one run cannot see how far
    the machine drifted between that run and the other side's."""
    samples = timing_samples(base_runs, new_runs)
    method = UNPAIRED_RUNS if samples.by_runs else UNPAIRED_EPOCHS
    result = compare_times(samples.base, samples.new, threshold, alpha, confidence, method)
    if samples.by_runs or result.note:
        return result
    return replace(result, verdict="inconclusive", note=ONE_RUN_NOTE)


def compare_from_stats(base_mean: float, base_std: float, base_n: int, new_mean: float, new_std: float,
                       new_n: int, threshold: float = THRESHOLD, alpha: float = ALPHA,
                       confidence: float = CONFIDENCE) -> Comparison:
    """The same verdict from summary statistics only (e.g. pytest-benchmark JSON without raw data):
    Welch's t-test on the means; the ratio's interval from the delta method on log means."""
    if base_n < 2 or new_n < 2 or base_mean <= 0 or new_mean <= 0:
        ratio = new_mean / base_mean if base_mean > 0 else math.nan
        return Comparison(ratio, math.nan, math.nan, math.nan, base_n, new_n, "inconclusive", note=TOO_FEW_NOTE)
    result = sps.ttest_ind_from_stats(new_mean, new_std, new_n, base_mean, base_std, base_n, equal_var=False)
    ratio = new_mean / base_mean
    # variance of log(mean) ~ (std / mean)^2 / n; Welch-Satterthwaite degrees of freedom for the interval
    var_new, var_base = (new_std / new_mean) ** 2 / new_n, (base_std / base_mean) ** 2 / base_n
    spread = math.sqrt(var_new + var_base)
    if spread == 0:
        p = 1.0 if ratio == 1 else 0.0
        return Comparison(ratio, ratio, ratio, p, base_n, new_n, verdict(ratio, p, threshold, alpha, (ratio, ratio)),
                          UNPAIRED, ratio, ratio)
    dof = (var_new + var_base) ** 2 / (var_new**2 / (new_n - 1) + var_base**2 / (base_n - 1))
    half = sps.t.ppf(0.5 + confidence / 2, dof) * spread
    half90 = sps.t.ppf(0.5 + equivalence_confidence(alpha) / 2, dof) * spread
    low90, high90 = _widened(ratio, half90)
    p = float(result.pvalue)
    return Comparison(ratio, *_widened(ratio, half), p, base_n, new_n,
                      verdict(ratio, p, threshold, alpha, (low90, high90)), UNPAIRED, low90, high90)


def _widened(ratio: float, half_log: float) -> tuple[float, float]:
    """ratio · exp(∓half_log): an interval in log space taken back (its top infinite past a float's range)."""
    return ratio * exp(-half_log), ratio * exp(half_log)


def accuracy_band(p_a: float, n_a: int, p_b: float, n_b: int, seed_var_a: float = 0.0, seeds_a: int = 1,
                  seed_var_b: float = 0.0, seeds_b: int = 1, confidence: float = CONFIDENCE) -> float:
    """Half-width of the band within which two accuracies are indistinguishable: z · sqrt of the binomial
    variance of each figure (p(1-p)/n evaluated images) plus the variance of each mean over seeds
    (seed variance / number of seeds)."""
    variance = sum(p * (1 - p) / n for p, n in ((p_a, n_a), (p_b, n_b)) if n and math.isfinite(p))
    variance += (seed_var_a or 0.0) / max(seeds_a, 1) + (seed_var_b or 0.0) / max(seeds_b, 1)
    return float(sps.norm.ppf(0.5 + confidence / 2) * math.sqrt(variance))
