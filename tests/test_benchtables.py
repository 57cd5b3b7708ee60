"""benchtables: pytest-benchmark JSON joined with accuracy, and the cross-torch-version table."""
from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest
from conftest import make_result

from mnistbench import stats
from mnistbench.reporting import benchtables
from mnistbench.results import ResultError


def bench_entry(name, group, median, rounds=1, **extra):
    stats = {"median": median, "iqr": median / 10, "mean": median, "stddev": 0.0, "min": median,
             "max": median, "rounds": rounds, "iterations": 1}
    return {"group": group, "name": name, "fullname": f"bench/x.py::{name}", "stats": stats,
            "extra_info": extra}


def write_bench(path, torch_version, benchmarks):
    payload = {"machine_info": {"torch": torch_version, "tox_env": None, "cuda_device": None},
               "commit_info": {}, "benchmarks": benchmarks, "datetime": "2026-01-01T00:00:00", "version": "5"}
    path.write_text(json.dumps(payload))
    return path


@pytest.fixture
def bench_json(tmp_path):
    return write_bench(tmp_path / "out.json", "2.14.1", [
        bench_entry("test_train[softmax-manual-cpu]", "train softmax", 3.5, family="softmax", impl="manual",
                    test_acc=0.9012, best_val_acc=0.905, epochs=2, train_samples_per_s=25000.0),
        bench_entry("test_train[softmax-builtin-cpu]", "train softmax", 2.25, family="softmax", impl="builtin",
                    test_acc=0.9011, best_val_acc=0.904, epochs=2, train_samples_per_s=34000.0),
        bench_entry("test_step[mlp-manual-64-cpu]", "step mlp batch=64", 0.000125, rounds=15,
                    family="mlp", impl="manual", batch_size=64, kind="step", samples_per_s=512000.0),
    ])


def test_frame_joins_timing_stats_with_extra_info(bench_json):
    frame = benchtables.benchmark_frame(bench_json)
    assert len(frame) == 3
    row = frame.set_index("name").loc["test_train[softmax-manual-cpu]"]
    assert row["median_s"] == 3.5 and row["rounds"] == 1
    assert row["test_acc"] == 0.9012 and row["best_val_acc"] == 0.905 and row["epochs"] == 2
    assert row["torch"] == "2.14.1" and row["group"] == "train softmax"


def test_table_orders_a_group_fastest_first_and_shows_accuracy(bench_json):
    table = benchtables.render_benchmarks(bench_json)
    lines = table.splitlines()
    assert lines[0].startswith("| group | benchmark | torch | median |")
    softmax = [line for line in lines if "train softmax" in line]
    assert "builtin" in softmax[0] and "manual" in softmax[1]  # 2.25 s before 3.5 s
    assert "| 2.25 s |" in softmax[0] and "0.9011" in softmax[0] and "34,000" in softmax[0]
    step = next(line for line in lines if "step mlp" in line)
    assert "| 125 µs |" in step and "512,000" in step
    assert "| - |" in softmax[0]  # no IQR from a single round


def test_folder_of_saved_runs_is_read_recursively_and_other_json_ignored(tmp_path, bench_json):
    saved = tmp_path / ".benchmarks" / "Linux-CPython-3.11-64bit"
    saved.mkdir(parents=True)
    write_bench(saved / "0001_abc.json", "2.13.0", [bench_entry("test_train[mlp-manual-cpu]", "train mlp", 9.0)])
    write_bench(saved / "0002_abc.json", "2.14.1", [bench_entry("test_train[mlp-manual-cpu]", "train mlp", 8.0)])
    (saved / "notes.json").write_text('{"not": "a benchmark"}')
    frame = benchtables.benchmark_frame(tmp_path / ".benchmarks")
    assert sorted(frame["torch"]) == ["2.13.0", "2.14.1"]


@pytest.mark.parametrize("content, message", [
    ("{broken", "not readable JSON"),
    ('{"runs": []}', "not pytest-benchmark JSON"),
])
def test_bad_benchmark_file_is_a_result_error(tmp_path, content, message):
    path = tmp_path / "bad.json"
    path.write_text(content)
    with pytest.raises(ResultError, match=message):
        benchtables.benchmark_frame(path)


def test_missing_source_and_empty_folder_are_result_errors(tmp_path):
    with pytest.raises(ResultError, match="does not exist"):
        benchtables.benchmark_frame(tmp_path / "nope.json")
    with pytest.raises(ResultError, match="no pytest-benchmark JSON"):
        benchtables.benchmark_frame(tmp_path)


def version_runs(folder=None):
    """Saved runs of a small tox matrix: three torch versions (each its own environment), two seeds each, a
    failed run; under 2.14.1 softmax/manual's epochs take 1.5x as long, the rest as long as under 2.9.0."""
    from mnistbench import results

    rng = np.random.default_rng(0)
    records = []
    plan = [("softmax", "manual", "2.9.0", 0.2, "ok"), ("softmax", "manual", "2.14.1", 0.3, "ok"),
            ("softmax", "manual", "2.13.0", 0.2, "ok"), ("softmax", "builtin", "2.9.0", 0.1, "failed"),
            ("softmax", "builtin", "2.14.1", 0.1, "ok"), ("logistic", "manual", "2.9.0", 0.02, "ok"),
            ("logistic", "manual", "2.14.1", 0.02, "ok")]
    for family, impl, version, center, status in plan:
        for seed in (0, 1):
            seconds = [3 * center] + (center * np.exp(rng.normal(0, 0.01, 5))).tolist()
            record = make_result(family, impl, status, seed, epoch_seconds=seconds, test_acc=0.9 + seed / 100,
                                 epochs=6)
            # what a run under that tox env records: its torch, and the env's own prefix
            record = replace(record.with_env(torch=version, prefix=f"/tox/py-torch{version}"),
                             split_sizes={**record.split_sizes, "test": 10000})
            records.append(record)
            if folder is not None:
                results.save(record, folder)
    return records


def test_cross_version_frame_compares_each_configuration_with_its_oldest_version():
    frame = benchtables.cross_version_frame(version_runs())
    keys = list(zip(frame["family"], frame["impl"], frame["torch"]))
    assert keys == [("logistic", "manual", "2.9.0"), ("logistic", "manual", "2.14.1"),
                    ("softmax", "manual", "2.9.0"), ("softmax", "manual", "2.13.0"),
                    ("softmax", "manual", "2.14.1"), ("softmax", "builtin", "2.14.1")]  # numeric version order
    rows = frame.set_index(["impl", "torch"])
    assert rows.loc[("manual", "2.9.0"), "verdict"].tolist() == ["reference", "reference"]
    assert rows.loc[("builtin", "2.14.1"), "verdict"] == "reference"  # its 2.9.0 runs failed
    softmax = frame[(frame["family"] == "softmax") & (frame["impl"] == "manual")].set_index("torch")
    assert softmax.loc["2.13.0", "verdict"] == "equivalent"  # two runs a side, the 90 % interval inside 1 ± 5 %
    assert 1 / 1.05 < softmax.loc["2.13.0", "ratio_ci90_low"] < 1 < softmax.loc["2.13.0", "ratio_ci90_high"] < 1.05
    assert softmax.loc["2.14.1", "verdict"] == "slower" and softmax.loc["2.14.1", "against"] == "2.9.0"
    assert softmax.loc["2.14.1", "ratio_ci_low"] < 1.5 < softmax.loc["2.14.1", "ratio_ci_high"]
    assert softmax.loc["2.14.1", "runs"] == 2 and softmax.loc["2.14.1", "epochs"] == 10  # 2 seeds x 5 epochs
    assert softmax.loc["2.14.1", "epoch_seconds_median"] == pytest.approx(0.3, rel=0.03)
    assert softmax.loc["2.14.1", "test_acc_mean"] == pytest.approx(0.905)
    assert softmax.loc["2.14.1", "test_acc_ci_low"] < 0.9 and 0.91 < softmax.loc["2.14.1", "test_acc_ci_high"]


def test_cross_version_table_markdown():
    table = benchtables.cross_version_table(version_runs()).splitlines()
    assert table[0] == "| configuration | torch | epoch s (95 % CI) | vs oldest (95 % CI) | verdict | test acc (95 % CI) | n |"
    slower = next(line for line in table if "softmax/manual" in line and "2.14.1" in line)
    # two runs a version: the runs are the samples (a t interval on 1 + 1 degrees of freedom is wide)
    assert "| slower |" in slower and "| 1.49× ± 0.08 |" in slower and slower.endswith("| 2 |")
    reference = next(line for line in table if "logistic/manual" in line and "2.9.0" in line)
    assert "| - | reference |" in reference


def test_torch_versions_and_runs_without_versions():
    records = version_runs()
    assert benchtables.torch_versions(records) == ["2.9.0", "2.13.0", "2.14.1"]
    records = [replace(r, env={k: v for k, v in r.env.items() if k != "torch"}) for r in records]
    assert benchtables.torch_versions(records) == []
    with pytest.raises(ResultError, match="torch version"):
        benchtables.cross_version_frame(records)


def test_cross_version_from_saved_records(tmp_path):
    """The path the report takes: saved runs -> results.load -> the table."""
    from mnistbench import results

    version_runs(tmp_path)
    loaded = results.load(tmp_path)
    assert len(loaded.results) == 14 and not loaded.duplicates  # a version's runs are not another's copies
    table = benchtables.cross_version_table(loaded.results)
    assert sum("softmax/manual" in line for line in table.splitlines()) == 3


def test_report_tables_for_a_tox_folder_render_in_the_report(tmp_path, tiny_root, bench_json):
    """What `mnistbench report FOLDER --benchmarks FILE` appends, through report.build's extra_tables:
    real runs on the tiny data set, the same run recorded as made under two torch versions."""
    import mnistbench
    from mnistbench import reporting, results

    (record,) = mnistbench.run("mlp", "manual", epochs=3, hidden=(16,), out=tmp_path, data_root=tiny_root)
    older = replace(record, run_id=record.run_id + "-old").with_env(torch="2.13.0", prefix="/tox/older")
    results.save(older, tmp_path)
    tables = benchtables.report_tables(tmp_path, benchmarks=bench_json)
    assert [t.name for t in tables] == ["benchmarks", "cross_version"]
    newer = record.env["torch"]
    assert list(tables[1].frame["torch"]) == ["2.13.0", newer]
    written = reporting.build(tmp_path, extra_tables=tables)
    text = written["report"].read_text()
    assert "## pytest-benchmark: timings and accuracy" in text and "## Across torch versions" in text
    rows = [line for line in text.splitlines() if line.startswith("| mlp/manual lr=0.01 batch=64 hidden=16 epochs=3")]
    acc = f"{record.test_acc:.4f}"
    assert "| 2.13.0 |" in rows[0] and "| reference |" in rows[0] and acc in rows[0]
    # the same run recorded twice: a ratio of exactly 1, but one run a side never decides
    assert f"| {newer} |" in rows[1] and "| 1.00× " in rows[1] and "| inconclusive |" in rows[1]
    assert list(tables[1].frame["note"].fillna("")) == ["", stats.ONE_RUN_NOTE]
    assert "| train softmax | `test_train[softmax-builtin-cpu]` | 2.14.1 | 2.25 s | — | 1 | 0.9011 |" in text
    assert (tmp_path / "cross_version.csv").is_file() and (tmp_path / "benchmarks.csv").is_file()


def test_report_tables_without_benchmarks_or_versions_adds_nothing(tmp_path, tiny_root):
    import mnistbench

    mnistbench.run("logistic", "handgrad", epochs=1, out=tmp_path, data_root=tiny_root)
    assert benchtables.report_tables(tmp_path) == []
