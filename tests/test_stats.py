"""The statistics on synthetic samples with a known difference and with none."""
from __future__ import annotations

import math

import numpy as np
import pytest

from mnistbench import runtiming, stats


def lognormal(center, spread, n, seed):
    return np.exp(np.random.default_rng(seed).normal(math.log(center), spread, n)).tolist()


def test_no_difference_is_equivalent_when_the_90_percent_interval_fits_the_band():
    base, new = lognormal(1.0, 0.02, 8, 1), lognormal(1.0, 0.02, 8, 2)
    result = stats.compare_times(base, new)
    assert result.verdict == "equivalent" and result.method == stats.UNPAIRED
    assert result.ci_low < result.ci90_low < 1 < result.ci90_high < result.ci_high
    assert 1 / 1.05 <= result.ci90_low and result.ci90_high <= 1.05


def test_a_noisy_sample_is_inconclusive_not_equivalent():
    base, new = lognormal(1.0, 0.2, 5, 11), lognormal(1.0, 0.2, 5, 12)
    result = stats.compare_times(base, new)
    assert result.verdict == "inconclusive" and result.ci90_low < 1 / 1.05


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
    assert result.p_value < 1e-6 and result.verdict == "equivalent"
    assert stats.compare_times(base, new, threshold=0.01).verdict == "slower"


def test_too_few_samples_are_inconclusive_and_say_so():
    result = stats.compare_times([1.0], [2.0])
    assert result.verdict == "inconclusive" and result.note == stats.TOO_FEW_NOTE
    assert stats.compare_from_stats(1.0, 0.1, 1, 2.0, 0.1, 5).verdict == "inconclusive"


def test_one_run_a_side_is_inconclusive_however_clear_its_epochs():
    base, new = [lognormal(1.0, 0.01, 20, 13)], [lognormal(1.5, 0.01, 20, 14)]
    assert stats.compare_times(base[0], new[0]).verdict == "slower"  # the epochs alone would say so
    result = stats.compare_runs(base, new)
    assert result.verdict == "inconclusive" and result.note == stats.ONE_RUN_NOTE
    assert result.method == stats.UNPAIRED_EPOCHS and result.n_base == 20 and 1.45 < result.ratio < 1.55
    assert not stats.timing_samples(base, new).by_runs
    one_side = stats.compare_runs(base, [lognormal(1.5, 0.01, 20, s) for s in (15, 16)])
    assert one_side.verdict == "inconclusive" and one_side.note == stats.ONE_RUN_NOTE


def test_two_runs_a_side_compare_the_runs():
    base = [lognormal(1.0, 0.01, 10, s) for s in (17, 18, 19)]
    new = [lognormal(1.5, 0.01, 10, s) for s in (20, 21, 22)]
    samples = stats.timing_samples(base, new)
    assert samples.by_runs and len(samples.base) == 3
    result = stats.compare_runs(base, new)
    assert result.verdict == "slower" and result.method == stats.UNPAIRED_RUNS and result.n_base == 3
    same = stats.compare_runs(base, [lognormal(1.0, 0.01, 10, s) for s in (23, 24, 25)])
    assert same.verdict == "equivalent" and same.note == ""
    base_list, _, label = samples  # still unpacks as it did
    assert base_list == samples.base
    assert label == stats.RUN_SAMPLES


def test_from_summary_statistics_agrees_with_raw_samples():
    base, new = lognormal(1.0, 0.03, 10, 7), lognormal(1.3, 0.03, 10, 8)
    raw = stats.compare_times(base, new)
    summary = stats.compare_from_stats(np.mean(base), np.std(base, ddof=1), 10, np.mean(new), np.std(new, ddof=1), 10)
    assert summary.verdict == raw.verdict == "slower"
    assert summary.ratio == pytest.approx(raw.ratio, rel=0.01)
    assert summary.ci_low == pytest.approx(raw.ci_low, rel=0.02)


def test_an_interval_too_wide_for_a_float_is_infinite_not_an_error():
    """Two rounds whose stddev is 256 times their mean (a summary in a benchmark file), or per-seed ratios
    of 1e-300 and 1e300 (a hostile result file): the interval's top is infinite, the verdict inconclusive,
    and nothing is raised."""
    summary = stats.compare_from_stats(1.0, 1.0, 2, 0.00390625, 1.0, 2)
    assert summary.verdict == "inconclusive" and summary.ci_high == math.inf == summary.ci90_high
    assert summary.ci_low == 0.0 and summary.ratio == 0.00390625
    spread = stats.ratio_interval([1e-300, 1e300])
    assert spread["mean"] == pytest.approx(1.0) and (spread["ci_low"], spread["ci_high"]) == (0.0, math.inf)


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


def epoch_run(rng, epochs=30, hog=False):
    """A 30-epoch SGD run on a quiet machine: a slower first epoch, 5 % lognormal noise, 1-2 epochs 50 %
    slower (a page-cache flush, a cron job); with hog, a CPU hog slows a contiguous third by 80 %."""
    seconds = np.exp(rng.normal(0.0, 0.05, epochs))
    seconds[0] *= 1.3
    seconds[rng.choice(np.arange(1, epochs), size=rng.integers(1, 3), replace=False)] *= 1.5
    if hog:
        start = rng.integers(1, epochs - epochs // 3 + 1)
        seconds[start:start + epochs // 3] *= 1.8
    return seconds.tolist()


QUIET_NOISE = {"cpu_steal_fraction": 0.0, "other_load": 0.05, "cpu_cores": 2, "load_avg_before": 0.1}


def test_a_quiet_run_with_a_couple_of_outlier_epochs_is_not_flagged():
    rng = np.random.default_rng(2026)
    flagged = sum(runtiming.timing_flags(epoch_run(rng), QUIET_NOISE)["timing_unstable"] for _ in range(1000))
    assert flagged <= 50  # not flagged in >= 95 % of runs


def test_a_cpu_hog_over_a_third_of_the_run_is_flagged():
    rng = np.random.default_rng(2027)
    flagged = sum(runtiming.timing_flags(epoch_run(rng, hog=True), QUIET_NOISE)["timing_unstable"]
                  for _ in range(1000))
    assert flagged >= 950


def test_stability_figures_and_reasons():
    steady = runtiming.stability([1.0] * 10 + [2.0] * 10)  # halfway the machine got twice as slow
    assert steady.drift == pytest.approx(1.0) and steady.drifting and steady.unstable
    assert [r.split(" (")[0] for r in steady.reasons] == ["epoch times spread", "epoch times drift"]
    assert all(any(r.startswith(label) for label in runtiming.REASON_LABELS) for r in steady.reasons)
    spikes = runtiming.stability([1.0, 1.01, 0.99, 1.0] * 5 + [3.0] * 3)  # 3 of 23: > 10 %
    assert spikes.severe_outliers == 3 and spikes.reasons[-1].startswith("outlier epochs")
    assert runtiming.stability([1.0, 1.01, 0.99, 1.0] * 5 + [3.0] * 2).reasons == []  # a couple: not flagged
    noisy = runtiming.stability([1.0, 1.15, 0.9, 1.05, 0.95])  # IQR 15 % of the median: noisy, not flagged
    assert noisy.noisy and not noisy.unstable and noisy.drift is None and noisy.reasons == []
    assert runtiming.stability([0.5]).iqr_over_median is None


def test_timing_flags_drop_the_first_epoch_and_add_the_machine_reasons():
    flags = runtiming.timing_flags([5.0, 1.0, 1.0, 1.01, 0.99], QUIET_NOISE)
    assert flags == {"timing_unstable": False, "timing_unstable_reason": None, "timing_noisy": False,
                     "iqr_over_median": pytest.approx(0.005, abs=0.01), "severe_outliers": 0, "drift": None}
    busy = runtiming.timing_flags([1.0] * 5, {**QUIET_NOISE, "cpu_steal_fraction": 0.05})
    assert busy["timing_unstable"] and busy["timing_unstable_reason"].startswith("CPU steal")
    assert runtiming.timing_flags([], {})["timing_unstable"] is False


def test_the_limits_of_the_spread_and_drift_rules():
    assert runtiming.stability([0.8, 0.9, 1.0, 1.1, 1.2]).iqr_over_median == pytest.approx(0.20)
    below = runtiming.stability([0.8, 0.9, 1.0, 1.1, 1.2])  # IQR 20 %: noisy (>= 10 %), not flagged (< 25 %)
    assert below.noisy and not below.unstable and below.reasons == []
    above = runtiming.stability([0.7, 0.85, 1.0, 1.15, 1.3])  # IQR 30 %: flagged
    assert above.unstable and [r.split(" (")[0] for r in above.reasons] == ["epoch times spread"]
    drifting = runtiming.stability([1.0, 1.0, 1.0, 1.0, 1.12, 1.12])  # last third 12 % slower than the first
    assert drifting.drift == pytest.approx(0.12) and drifting.drifting and not drifting.unstable
    assert [r.split(" (")[0] for r in drifting.reasons] == ["epoch times drift"]
    steady = runtiming.stability([1.0, 1.0, 1.0, 1.0, 1.08, 1.08])  # 8 %: within the limit
    assert steady.drift == pytest.approx(0.08) and not steady.drifting and steady.reasons == []


def test_one_slow_epoch_no_longer_flags_a_run():
    # the old CV rule (std / mean > 10 %) flagged this run for its one slow epoch; the robust rules do not
    seconds = [2.0] + [1.0, 1.01, 0.99, 1.0, 1.02, 0.98, 1.0, 1.01, 1.6]
    steady = stats.steady_state(seconds)
    assert np.std(steady, ddof=1) / np.mean(steady) > 0.10
    assert runtiming.timing_flags(seconds, QUIET_NOISE)["timing_unstable"] is False
    assert not hasattr(stats, "CV_LIMIT")


def test_flags_are_computed_when_reading_not_taken_from_the_file():
    from conftest import make_result

    from mnistbench import resultfile

    result = make_result("softmax", "manual", epoch_seconds=(0.5, 0.4, 0.41, 0.39))
    assert result.timing["timing_unstable"] is False
    raw = result.to_json()
    raw.pop("schema")  # a schema-1 file, which froze the old rule's verdict beside the raw epochs
    raw.update(timing_unstable=True, timing_unstable_reason="epoch times vary (CV 14 % > 10 %)")
    read = resultfile.parse(raw)
    flags = runtiming.timing_flags(read.epoch_seconds, read.noise)
    assert read.timing["timing_unstable"] is False and read.timing["timing_unstable_reason"] is None
    assert {k: read.timing[k] for k in flags} == flags
