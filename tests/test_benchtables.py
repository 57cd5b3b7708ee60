"""benchtables: pytest-benchmark JSON joined with accuracy, and the cross-torch-version table."""
from __future__ import annotations

import json

import pandas as pd
import pytest

from mnistbench.report import benchtables, render
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


def runs_frame():
    """What results.to_frame() gives for a small tox matrix: two torch versions, a failed run, repeats."""
    rows = [
        # family, impl, status, torch, train s, test acc
        ("softmax", "manual", "ok", "2.14.1", 4.0, 0.90),
        ("softmax", "manual", "ok", "2.14.1", 6.0, 0.92),
        ("softmax", "builtin", "ok", "2.14.1", 3.0, 0.91),
        ("softmax", "manual", "ok", "2.9.0", 5.0, 0.89),
        ("softmax", "builtin", "failed", "2.9.0", None, None),
        ("logistic", "manual", "ok", "2.9.0", 1.0, 0.99),
        ("logistic", "manual", "ok", "2.14.1", 0.5, 0.995),
    ]
    return pd.DataFrame(rows, columns=["family", "impl", "status", "env_torch", "train_seconds", "test_acc"])


def test_cross_version_frame_takes_medians_of_ok_runs_per_version():
    wide = benchtables.cross_version_frame(runs_frame())
    assert list(dict.fromkeys(v for v, _ in wide.columns)) == ["2.9.0", "2.14.1"]  # numeric order
    assert list(wide.index) == [("logistic", "manual"), ("softmax", "manual"), ("softmax", "builtin")]
    assert wide.loc[("softmax", "manual"), ("2.14.1", "train_s")] == 5.0
    assert wide.loc[("softmax", "manual"), ("2.14.1", "test_acc")] == pytest.approx(0.91)
    assert wide.loc[("softmax", "manual"), ("2.14.1", "runs")] == 2
    assert pd.isna(wide.loc[("softmax", "builtin"), ("2.9.0", "train_s")])  # its only run failed


def test_cross_version_table_markdown():
    table = benchtables.cross_version_table(runs_frame()).splitlines()
    assert table[0] == ("| family | impl | train s (2.9.0) | test acc (2.9.0) | train s (2.14.1) "
                        "| test acc (2.14.1) |")
    assert table[2] == "| logistic | manual | 1.00 | 0.9900 | 0.500 | 0.9950 |"
    assert table[3] == "| softmax | manual | 5.00 | 0.8900 | 5.00 | 0.9100 |"
    assert table[4] == "| softmax | builtin | - | - | 3.00 | 0.9100 |"


def test_torch_versions_and_a_frame_without_versions():
    assert benchtables.torch_versions(runs_frame()) == ["2.9.0", "2.14.1"]
    assert benchtables.torch_versions(pd.DataFrame({"family": ["mlp"]})) == []
    with pytest.raises(ResultError, match="env_torch"):
        benchtables.cross_version_frame(pd.DataFrame({"family": ["mlp"], "impl": ["manual"]}))


def test_cross_version_from_real_result_records(tmp_path):
    """The path the report takes: saved run records -> results.to_frame -> the table."""
    from mnistbench import results
    from mnistbench.config import for_family

    for version, seconds in (("2.13.0", 2.0), ("2.14.1", 1.5)):
        fitted = {"status": "ok", "test_acc": 0.9, "best_val_acc": 0.9, "history": [], "epochs_run": 2,
                  "train_seconds": seconds, "train_samples_per_s": 1000.0}
        record = results.make_result(for_family("mlp", "manual", epochs=2), fitted, "cpu")
        record["env"]["torch"] = version  # what a run under that tox env records
        results.save(record, tmp_path)
    table = benchtables.cross_version_table(results.to_frame(tmp_path))
    assert "| mlp | manual | 2.00 | 0.9000 | 1.50 | 0.9000 |" in table


def test_report_tables_for_a_tox_folder_render_in_the_report(tmp_path, tiny_root, bench_json):
    """What `mnistbench report FOLDER --benchmarks FILE` appends, through report.build's extra_tables:
    real runs on the tiny data set, the same run recorded as made under two torch versions."""
    from mnistbench import harness, report, results
    from mnistbench.config import for_family

    (record,) = harness.execute([for_family("mlp", "manual", epochs=1, hidden=(16,))], tmp_path,
                                data_root=tiny_root)
    older = dict(record, run_id=record["run_id"] + "-old", env=dict(record["env"], torch="2.13.0"))
    results.save(older, tmp_path)
    tables = benchtables.report_tables(tmp_path, benchmarks=bench_json)
    assert [t.name for t in tables] == ["benchmarks", "cross_version"]
    newer = record["env"]["torch"]
    assert list(tables[1].frame.columns) == ["family", "impl", "train_seconds (2.13.0)", "test_acc (2.13.0)",
                                             f"train_seconds ({newer})", f"test_acc ({newer})"]
    written = report.build(tmp_path, extra_tables=tables)
    text = written["report"].read_text()
    assert "## pytest-benchmark: timings and accuracy" in text and "## Across torch versions" in text
    seconds, acc = render.fmt_value(record["train_seconds"], "seconds"), f"{record['test_acc']:.4f}"
    assert f"| mlp | manual | {seconds} | {acc} | {seconds} | {acc} |" in text
    assert "| train softmax | `test_train[softmax-builtin-cpu]` | 2.14.1 | 2.25 s | — | 1 | 0.9011 |" in text
    assert (tmp_path / "cross_version.csv").is_file() and (tmp_path / "benchmarks.csv").is_file()


def test_report_tables_without_benchmarks_or_versions_adds_nothing(tmp_path, tiny_root):
    from mnistbench import harness
    from mnistbench.config import for_family

    harness.execute([for_family("logistic", "handgrad", epochs=1)], tmp_path, data_root=tiny_root)
    assert benchtables.report_tables(tmp_path) == []
