"""Paired comparison by round on synthetic interleaved measurements whose machine drifts by ±30 %."""
from __future__ import annotations

import math

import numpy as np
import pytest

from mnistbench import paired, stats

DRIFT = math.log(1.3)  # the machine's speed wanders within ±30 % over the rounds


def drift(rng, rounds):
    """A slow random walk of the machine's speed (log factor per round), kept within ±30 %."""
    steps = rng.normal(0.0, 0.1, rounds)
    walk = np.empty(rounds)
    level = rng.uniform(-DRIFT, DRIFT)
    for i, step in enumerate(steps):
        level = float(np.clip(0.8 * level + step, -DRIFT, DRIFT))
        walk[i] = level
    return np.exp(walk)


def interleaved(rng, rounds, ratio, noise=0.03, start=0):
    """Round -> block seconds of base and new, both slowed by the same drift in each round."""
    machine = drift(rng, rounds)
    base = machine * np.exp(rng.normal(0.0, noise, rounds))
    new = ratio * machine * np.exp(rng.normal(0.0, noise, rounds))
    keys = range(start, start + rounds)
    return dict(zip(keys, base.tolist())), dict(zip(keys, new.tolist()))


def test_only_rounds_on_both_sides_are_paired_whatever_their_order():
    base = {0: 1.0, 1: 2.0, 2: 1.5, 3: 1.2, 9: 100.0}
    new = {3: 1.32, 2: 1.65, 1: 2.2, 0: 1.1, 7: 0.01}  # 10 % slower in every common round
    result = paired.paired_comparison(base, new)
    assert result.n_pairs == 4 and result.method == paired.PAIRED and result.n_base == 5
    assert result.ratio == pytest.approx(1.1) and result.verdict == "slower"
    shuffled = paired.paired_comparison(dict(reversed(list(base.items()))), dict(sorted(new.items())))
    assert shuffled == result


def test_the_interval_and_p_value_are_the_one_sample_t_test_of_the_log_ratios():
    base, new = interleaved(np.random.default_rng(1), 8, 1.2, noise=0.05)
    logs = np.log([new[r] / base[r] for r in range(8)])
    result = paired.paired_comparison(base, new)
    half = 2.365 * np.std(logs, ddof=1) / math.sqrt(8)  # t_{0.975, 7}
    assert result.ratio == pytest.approx(math.exp(logs.mean()))
    assert result.ci_low == pytest.approx(math.exp(logs.mean() - half), rel=1e-3)
    assert result.ci_low < result.ci90_low < result.ratio < result.ci90_high < result.ci_high
    assert result.p_value < 0.05 and result.verdict == "slower" and result.rounds_needed is None


def test_fewer_than_three_pairs_never_decide():
    result = paired.paired_comparison({0: 1.0, 1: 1.0}, {0: 2.0, 1: 2.0})
    assert result.verdict == "inconclusive" and result.note == paired.TOO_FEW_PAIRS_NOTE and result.n_pairs == 2
    assert paired.paired_comparison({0: 1.0}, {1: 2.0}).n_pairs == 0


def test_with_shared_drift_and_no_difference_paired_is_never_slower_or_faster():
    rng = np.random.default_rng(2026)
    verdicts = [paired.paired_comparison(*interleaved(rng, 12, 1.0)).verdict for _ in range(200)]
    assert set(verdicts) <= {"equivalent", "inconclusive"}
    assert verdicts.count("equivalent") > 150  # and mostly decides that there is none


def test_the_same_drift_between_runs_measured_apart_fools_welch():
    # the same machine drift, but base's rounds ran before new's: Welch on the block times calls
    # differences that are not there, because the drift between the two halves is not in its interval
    rng = np.random.default_rng(2026)
    wrong = 0
    for _ in range(200):
        base, new = interleaved(rng, 24, 1.0)
        first, second = [base[r] for r in range(12)], [new[r] for r in range(12, 24)]
        wrong += stats.compare_times(first, second).verdict in ("slower", "faster")
    assert wrong >= 20  # > 10 % of the tries, where alpha promises 5 % at most


def test_a_true_ten_percent_slowdown_under_drift_is_slower_with_enough_rounds():
    rng = np.random.default_rng(7)
    verdicts = [paired.paired_comparison(*interleaved(rng, 20, 1.10)).verdict for _ in range(200)]
    assert verdicts.count("slower") >= 195 and "faster" not in verdicts and "equivalent" not in verdicts
    # Welch on the same interleaved numbers: the ±30 % drift hides the 10 % in its interval
    rng = np.random.default_rng(7)
    welch = [stats.compare_times(*(list(side.values()) for side in interleaved(rng, 20, 1.10))).verdict
             for _ in range(200)]
    assert welch.count("slower") < verdicts.count("slower")


@pytest.mark.parametrize("ratio, noise", [(1.0, 0.05), (1.12, 0.06)])
def test_rounds_needed_is_enough_to_decide_in_most_tries(ratio, noise):
    rng = np.random.default_rng(11)
    tried = decided = 0
    for _ in range(200):
        base, new = interleaved(rng, 5, ratio, noise)
        first = paired.paired_comparison(base, new)
        if first.verdict != "inconclusive" or first.rounds_needed is None or first.rounds_needed > 500:
            continue
        more_base, more_new = interleaved(rng, first.rounds_needed - 5, ratio, noise, start=5)
        tried += 1
        decided += paired.paired_comparison({**base, **more_base}, {**new, **more_new}).verdict != "inconclusive"
    assert tried >= 50 and decided >= 0.7 * tried


def test_rounds_needed_is_none_on_the_threshold_and_grows_with_the_spread():
    assert paired.rounds_needed(math.log(1.05), 0.05) is None
    small, large = paired.rounds_needed(0.0, 0.02), paired.rounds_needed(0.0, 0.06)
    assert paired.MIN_PAIRS <= small < large
    assert paired.rounds_needed(math.log(1.3), 0.05) < paired.rounds_needed(math.log(1.1), 0.05)


def test_a_hiccup_in_one_block_of_a_round_is_set_aside_and_named():
    from mnistbench.paired import paired_comparison

    rng = np.random.default_rng(3)
    base = {r: 0.1 * (1 + 0.3 * np.sin(r)) for r in range(1, 31)}  # the machine drifts
    new = {r: seconds * float(np.exp(rng.normal(0, 0.01))) for r, seconds in base.items()}
    new[7] *= 1.35  # one block of round 7 hit by something else
    new[19] *= 0.7
    result = paired_comparison(base, new)
    assert result.verdict == "equivalent" and result.n_pairs == 28
    assert result.note == "2 outlier round(s) of 30 set aside"


def test_slower_needs_the_whole_interval_beyond_the_band():
    from mnistbench.paired import paired_comparison

    rng = np.random.default_rng(5)
    base = {r: 0.1 for r in range(1, 26)}
    near = {r: 0.1 * 1.06 * float(np.exp(rng.normal(0, 0.04))) for r in base}  # 1.06, interval about ± 1.7 %
    far = {r: 0.1 * 1.15 * float(np.exp(rng.normal(0, 0.04))) for r in base}
    near_result, far_result = paired_comparison(base, near), paired_comparison(base, far)
    assert near_result.p_value < 0.05 and near_result.ratio > 1.05 and near_result.ci_low < 1.05
    assert near_result.verdict == "inconclusive" and far_result.verdict == "slower"
