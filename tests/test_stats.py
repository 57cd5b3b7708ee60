"""The statistics on synthetic samples with a known difference and with none."""
from __future__ import annotations

import math

import numpy as np
import pytest

from mnistbench import stats


def lognormal(center, spread, n, seed):
    return np.exp(np.random.default_rng(seed).normal(math.log(center), spread, n)).tolist()


def test_no_difference_is_no_detectable_difference():
    base, new = lognormal(1.0, 0.02, 8, 1), lognormal(1.0, 0.02, 8, 2)
    result = stats.compare_times(base, new)
    assert result.verdict == "no detectable difference"
    assert result.ci_low < 1 < result.ci_high


def test_a_known_slowdown_is_slower_with_an_interval_around_it():
    base, new = lognormal(1.0, 0.02, 6, 3), lognormal(1.5, 0.02, 6, 4)
    result = stats.compare_times(base, new)
    assert result.verdict == "slower" and result.p_value < 0.05
    assert result.ci_low < result.ratio < result.ci_high
    assert 1.4 < result.ci_low and result.ci_high < 1.6
    assert stats.compare_times(new, base).verdict == "faster"


def test_a_significant_but_tiny_change_is_within_the_threshold():
    base, new = lognormal(1.0, 0.001, 30, 5), lognormal(1.02, 0.001, 30, 6)
    result = stats.compare_times(base, new, threshold=0.05)
    assert result.p_value < 1e-6 and result.verdict == "no detectable difference"
    assert stats.compare_times(base, new, threshold=0.01).verdict == "slower"


def test_too_few_samples_say_so():
    assert stats.compare_times([1.0], [2.0]).verdict == "too few samples"


def test_from_summary_statistics_agrees_with_raw_samples():
    base, new = lognormal(1.0, 0.03, 10, 7), lognormal(1.3, 0.03, 10, 8)
    raw = stats.compare_times(base, new)
    summary = stats.compare_from_stats(np.mean(base), np.std(base, ddof=1), 10, np.mean(new), np.std(new, ddof=1), 10)
    assert summary.verdict == raw.verdict == "slower"
    assert summary.ratio == pytest.approx(raw.ratio, rel=0.01)
    assert summary.ci_low == pytest.approx(raw.ci_low, rel=0.02)


def test_mean_interval_is_student_t_and_absent_for_one_value():
    result = stats.mean_interval([1.0, 2.0, 3.0])
    assert result["mean"] == 2.0 and result["n"] == 3
    assert result["ci_high"] - 2.0 == pytest.approx(4.303 * 1 / math.sqrt(3), rel=1e-3)
    one = stats.mean_interval([0.5])
    assert one["n"] == 1 and math.isnan(one["ci_low"])


def test_timing_summary_median_iqr_and_bootstrap_interval():
    sample = lognormal(2.0, 0.05, 20, 9)
    result = stats.timing_summary(sample)
    assert result["n"] == 20 and result["median"] == pytest.approx(np.median(sample))
    assert result["ci_low"] <= result["median"] <= result["ci_high"]
    assert result["iqr"] > 0 and 0 < result["cv"] < 0.1


def test_accuracy_band_adds_both_binomial_terms_and_the_seed_variance_of_the_mean():
    one = stats.accuracy_band(0.99, 2500, 0.99, 2500)
    assert one == pytest.approx(1.96 * math.sqrt(2 * 0.99 * 0.01 / 2500), rel=1e-3)
    with_seeds = stats.accuracy_band(0.99, 2500, 0.99, 2500, seed_var_a=1e-6, seeds_a=3)
    assert with_seeds == pytest.approx(1.96 * math.sqrt(2 * 0.99 * 0.01 / 2500 + 1e-6 / 3), rel=1e-3)


def test_steady_state_leaves_out_the_first_epoch_unless_it_is_the_only_one():
    assert stats.steady_state([0.2, 0.1, 0.11]) == [0.1, 0.11]
    assert stats.steady_state([0.2]) == [0.2]


def test_ratio_interval_is_a_geometric_mean_with_a_t_interval_on_logs():
    result = stats.ratio_interval([2.0, 8.0])  # logs ln2, ln8: mean ln4
    assert result["mean"] == pytest.approx(4.0) and result["n"] == 2
    half = 12.706 * np.std(np.log([2.0, 8.0]), ddof=1) / math.sqrt(2)
    assert result["ci_low"] == pytest.approx(4.0 * math.exp(-half), rel=1e-3)
    assert result["ci_high"] == pytest.approx(4.0 * math.exp(half), rel=1e-3)
    one = stats.ratio_interval([1.5])
    assert one["mean"] == pytest.approx(1.5) and math.isnan(one["ci_low"]) and one["n"] == 1
