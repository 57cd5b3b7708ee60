"""Spread in every report table: mean ± 95 % interval and n, CI columns in the CSVs, unstable timings
marked, scikit-learn's fit time apart, and the notebook comparison's noise band."""
from __future__ import annotations

import math

import pandas as pd
import pytest
from scipy import stats as sps
from test_report import make_record

from mnistbench import cli, resultfile, results
from mnistbench.reporting import columns as cols
from mnistbench.reporting import notebook_table, render
from mnistbench.reporting import tables as tb

TIMED = ("train_seconds", "train_samples_per_s")


def timed_record(family, impl, seed, epoch_seconds=0.5, steal=None, **config):
    """A run whose epochs all take epoch_seconds (600 training images: 600 / epoch_seconds samples/s), flagged
    unstable through its noise readings when `steal` (the CPU steal fraction during the run) is above 2 %."""
    noise = None if steal is None else {"cpu_steal_fraction": steal, "other_load": 0.0, "cpu_cores": 2}
    return make_record(family, impl, seed, epoch_seconds=epoch_seconds, noise=noise, **config)


def frame_of(records):
    return tb.prepare(results.to_frame(records))


def test_summary_shows_mean_with_t_interval_and_n_and_marks_unstable_timings():
    records = [timed_record("softmax", "manual", 0, 0.5, steal=0.05),
               timed_record("softmax", "manual", 1, 0.7), timed_record("softmax", "manual", 2, 0.6)]
    records.append(timed_record("softmax", "builtin", 0, 0.4))  # one seed only
    summary = tb.summary_table(frame_of(records)).set_index("impl")
    manual = summary.loc["manual"]
    train_seconds = [3 * s for s in (0.5, 0.7, 0.6)]
    low, high = sps.t.interval(0.95, 2, loc=1.8, scale=sps.sem(train_seconds))
    assert manual.n == 3 and manual.train_seconds_mean == pytest.approx(1.8)
    assert (manual.train_seconds_ci_low, manual.train_seconds_ci_high) == pytest.approx((low, high))
    assert manual.timing == "1/3 unstable: CPU steal"
    assert summary.loc["builtin"].timing == "stable"
    lines = render.to_markdown(summary.reset_index(), cols.summary()).splitlines()
    header = [h.strip() for h in lines[0].strip("|").split("|")]
    manual_cells = dict(zip(header, (c.strip() for c in lines[2].strip("|").split("|"))))
    builtin_cells = dict(zip(header, (c.strip() for c in lines[3].strip("|").split("|"))))
    assert manual_cells["n"] == "3" and manual_cells["train s"] == f"1.80 ± {(high - low) / 2:#.3g}"
    assert "±" in manual_cells["train samples/s"] and "±" in manual_cells["steady epoch s"]
    assert builtin_cells["n"] == "1" and "±" not in lines[3]  # n = 1: no interval, and n says so


def test_every_table_csv_carries_ci_columns_for_its_timings(tmp_path):
    for seed in (0, 1):
        for family, impl in (("softmax", "manual"), ("softmax", "builtin"), ("softmax", "sklearn")):
            results.save(timed_record(family, impl, seed, 0.5 + 0.1 * seed), tmp_path)
        for batch in (32, 64):
            results.save(timed_record("mlp", "manual", seed, 0.5 + 0.1 * seed, batch_size=batch), tmp_path)
    assert cli.main(["report", str(tmp_path)]) == 0
    expected = {"summary": [*TIMED, "fit_seconds"], "batch_size_sweep": TIMED, "throughput_runs": TIMED[1:],
                "time_to_accuracy": ["seconds_to_target"], "twins": ["train_seconds_ratio"]}
    for table, timed in expected.items():
        csv = pd.read_csv(tmp_path / f"{table}.csv")
        for column in timed:
            assert {f"{column}_mean", f"{column}_ci_low", f"{column}_ci_high"} <= set(csv.columns), table
        assert "timing" in csv.columns
    text = (tmp_path / "report.md").read_text()
    assert "95 % Student-t interval" in text and "| n |" in text


def test_scikit_learn_fit_time_has_its_own_column_in_old_and_new_records():
    new = timed_record("softmax", "sklearn", 1, epoch_seconds=3.0, val_accs=(0.9,))
    assert new.fit_seconds == 3.0 and new.train_seconds is None
    # a schema-1 file of the oldest kind: flat, and the solver's fit time in its epoch's train_seconds
    raw = make_record("softmax", "sklearn", 0, epoch_seconds=2.0, val_accs=(0.9,)).to_json()
    raw.pop("schema")
    raw["history"] = [{**epoch, "train_seconds": epoch["fit_seconds"], "fit_seconds": None} for epoch in raw["history"]]
    old = resultfile.parse(raw)
    assert old.fit_seconds == 2.0 and old.train_seconds is None
    summary = tb.summary_table(frame_of([old, new]))
    row = summary.iloc[0]
    assert row.fit_seconds_mean == pytest.approx(2.5) and row.n == 2
    assert math.isnan(row.train_seconds_mean) and math.isnan(row.train_samples_per_s_mean)


def test_twins_time_ratio_is_a_geometric_mean_with_an_interval():
    records = [timed_record("softmax", "manual", s, e) for s, e in ((0, 1.0), (1, 4.0))]
    records += [timed_record("softmax", "builtin", s, 0.5) for s in (0, 1)]
    row = tb.twins_table(frame_of(records)).set_index("twin").loc["builtin"]
    assert row.train_seconds_ratio_mean == pytest.approx(4.0)  # ratios 2 and 8
    assert row.train_seconds_ratio_ci_low < 2.0 and row.train_seconds_ratio_ci_high > 8.0
    assert not math.isnan(row.test_acc_difference_ci_low)


def test_notebook_band_keeps_this_studys_sampling_noise_with_one_seed():
    # one seed, 2500 test images, 0.013 below the notebook's 0.9190: inside the 95 % band of both binomial
    # terms (0.0157), outside a band holding the notebook's term alone (2 sigma = 0.0109)
    records = [make_record("softmax", "manual", 0, test_acc=0.906, epochs=100)]
    row = notebook_table.notebook_comparison(frame_of(records)).set_index("family").loc["softmax"]
    assert row.n == 1 and row.noise_band == pytest.approx(1.96 * math.sqrt((0.919 * 0.081 + 0.906 * 0.094) / 2500),
                                                          rel=1e-3)
    assert row.verdict == "within noise"


def test_notebook_band_uses_the_variance_of_the_mean_over_seeds():
    records = [make_record("softmax", "manual", s, test_acc=a, epochs=100) for s, a in enumerate((0.90, 0.92, 0.91))]
    row = notebook_table.notebook_comparison(frame_of(records)).set_index("family").loc["softmax"]
    binomial = (0.919 * 0.081 + 0.91 * 0.09) / 2500
    assert row.noise_band == pytest.approx(1.96 * math.sqrt(binomial + 0.01**2 / 3), rel=1e-3)
    assert row.this_ci_low < 0.91 < row.this_ci_high
