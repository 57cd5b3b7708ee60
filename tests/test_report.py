"""Report, tables and plots from small synthetic result folders (no training)."""
from __future__ import annotations

import math
import shutil
import zlib
from dataclasses import replace
from pathlib import Path

import pandas as pd
import pytest
from conftest import make_result

from mnistbench import cli, results, studygrid
from mnistbench.config import RunConfig
from mnistbench.reporting import document as report
from mnistbench.reporting import notebook_table, plots, render
from mnistbench.reporting import tables as tb
from mnistbench.result import Epoch

ENV = {"torch": "9.9.9", "python": "3.x", "device": "cpu", "device_name": "Test CPU", "cpu_model": "Test CPU",
       "threads": 2, "cuda": None, "dtype": "float32", "tox_env": None}


def make_record(family, impl, seed=0, test_acc=0.9, val_accs=(0.5, 0.8, 0.9), epoch_seconds=0.5,
                status="ok", env=ENV, noise=None, **config):
    """A RunResult (conftest.make_result) with chosen numbers: one epoch per entry of val_accs (None: a
    diverged epoch's), each taking epoch_seconds; a fitted model (scikit-learn) gets one fit of
    epoch_seconds. 600 train / 200 val / 2500 test images."""
    result = make_result(family, impl, status, seed, epoch_seconds=(epoch_seconds,) * len(val_accs),
                         test_acc=test_acc, env=env, **config)
    if tb.fitted_model(family, impl):
        history = (Epoch(1, 0.3, val_accs[0], 0.33, val_accs[0], None, 0.01, fit_seconds=epoch_seconds),)
    else:
        history = tuple(Epoch(e, 1.0 / e, acc, 1.1 / e, acc, epoch_seconds, 0.01) for e, acc in enumerate(val_accs, 1))
    return replace(result, history=history, best_epoch=len(history),
                   solver_iterations=30 if tb.fitted_model(family, impl) else None,
                   split_sizes={"train": 600, "val": 200, "test": 2500},
                   noise=result.noise if noise is None else noise)


def small_study(seeds=(0, 1)) -> list:
    """Every family and implementation, the MLP sweeps with one diverged point, and an unknown impl."""
    records = []
    for seed in seeds:
        for family, impls in (("logistic", ("manual", "handgrad", "builtin")), ("softmax", ("manual", "builtin"))):
            for impl in impls:
                records.append(make_record(family, impl, seed, test_acc=0.95 + 0.01 * seed,
                                           val_accs=(0.85, 0.92, 0.995)))
            records.append(make_record(family, "sklearn", seed, test_acc=0.94, val_accs=(0.93,), epoch_seconds=2.0))
        for impl in ("manual", "builtin"):
            for lr in studygrid.LR_SWEEP:
                if lr == 1.0:
                    records.append(make_record("mlp", impl, seed, lr=lr, status="diverged", test_acc=0.1,
                                               val_accs=(0.2, None)))  # diverged in epoch 2
                else:
                    records.append(make_record("mlp", impl, seed, lr=lr, test_acc=0.96, val_accs=(0.9, 0.95)))
            for batch in studygrid.BATCH_SWEEP:
                if batch != 64:
                    records.append(make_record("mlp", impl, seed, batch_size=batch, val_accs=(0.9, 0.97)))
        records.append(make_record("softmax", "fancy", seed, test_acc=0.5))
    return records


@pytest.fixture
def study_folder(tmp_path):
    for record in small_study():
        results.save(record, tmp_path)
    return tmp_path


@pytest.fixture
def frame(study_folder):
    return tb.prepare(results.to_frame(study_folder))


def is_png(path) -> bool:
    data = path.read_bytes()
    return data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 2000


def test_colours_are_fixed_per_implementation_with_a_fallback():
    known = [plots.colour(impl) for impl in ("manual", "handgrad", "builtin", "sklearn")]
    assert len(set(known)) == 4
    # the fallback is a fixed pick (crc32 of the name), the same in every process, not the next colour free
    assert plots.colour("fancy") == plots.FALLBACK_COLOURS[zlib.crc32(b"fancy") % len(plots.FALLBACK_COLOURS)]
    assert plots.colour("fancy") in plots.FALLBACK_COLOURS and plots.colour("fancy") not in known


@pytest.mark.parametrize("plot, rows", [
    (plots.plot_curves, "defaults"), (plots.plot_accuracy_bars, "defaults"), (plots.plot_per_class, "defaults"),
    (plots.plot_confusion, "defaults"), (plots.plot_val_acc_vs_seconds, "defaults"),
    (plots.plot_lr_curves, "lr"), (plots.plot_batch_curves, "batch_size"), (plots.plot_throughput, "batch_size"),
])
def test_every_plot_writes_a_png(frame, tmp_path, plot, rows):
    subset = tb.at_defaults(frame) if rows == "defaults" else tb.sweep_rows(frame, rows)
    subset = subset[subset.status != "failed"] if rows != "defaults" else subset[subset.status == "ok"]
    path = plot(subset, tmp_path / "out" / "picture.png")
    assert is_png(path)


def test_throughput_plot_takes_a_benchmark_table(tmp_path):
    table = pd.DataFrame({"family": ["mlp"] * 4, "impl": ["manual", "manual", "builtin", "builtin"],
                          "device": ["cpu"] * 4, "batch_size": [16, 64, 16, 64],
                          "train_samples_per_s": [1e4, 3e4, 8e3, 2.5e4]})
    assert is_png(plots.plot_throughput(table, tmp_path / "t.png"))


def test_summary_and_twins_numbers(frame):
    summary = tb.summary_table(tb.at_defaults(frame)).set_index(["family", "impl"])
    manual = summary.loc[("logistic", "manual")]
    assert manual.n == 2 and manual.test_acc_mean == pytest.approx((0.95 + 0.96) / 2)
    assert manual.test_acc_std == pytest.approx(pd.Series([0.95, 0.96]).std())
    twins = tb.twins_table(tb.at_defaults(frame)).set_index(["family", "impl", "twin"])
    assert twins.loc[("softmax", "manual", "sklearn")].test_acc_difference_mean == pytest.approx(0.955 - 0.94)
    assert ("softmax", "handgrad", "builtin") not in twins.index  # no handgrad softmax runs: no row
    assert "fancy" not in twins.index.get_level_values("impl")


def test_sweeps_show_diverged_points_and_time_to_accuracy(frame):
    lr = tb.sweep_table(frame, "lr").set_index(["lr", "impl"])
    assert sorted(set(lr.index.get_level_values("lr"))) == list(studygrid.LR_SWEEP)
    diverged = lr.loc[(1.0, "manual")]
    assert diverged.status == "2/2 diverged at epoch 2" and diverged.n == 0 and math.isnan(diverged.test_acc_mean)
    batches = tb.sweep_table(frame, "batch_size")
    assert sorted(batches.batch_size.unique()) == list(studygrid.BATCH_SWEEP)
    tta = tb.time_to_accuracy_table(tb.at_defaults(frame)).set_index(["family", "impl"])
    assert tta.loc[("logistic", "manual")].seconds_to_target_mean == pytest.approx(3 * 0.5)  # 0.995 at epoch 3
    assert tta.loc[("softmax", "manual")].seconds_to_target_mean == pytest.approx(2 * 0.5)  # 0.92 >= 0.90
    assert tta.loc[("mlp", "manual")].reached == "0/2"


def test_notebook_comparison_verdicts():
    records = [make_record("logistic", "manual", s, test_acc=0.9992, epochs=100) for s in (0, 1)]
    records += [make_record("softmax", "manual", s, test_acc=0.80, epochs=100) for s in (0, 1)]
    records += [make_record("softmax", "manual", 0, test_acc=0.92, epochs=2)]
    table = notebook_table.notebook_comparison(tb.prepare(results.to_frame(records)))
    verdicts = {(r.family, r.epochs): r.verdict for r in table.itertuples() if r.n}
    assert verdicts[("logistic", "100")] == "within noise"
    assert verdicts[("softmax", "100")] == "lower"
    assert verdicts[("softmax", "2")].startswith("not comparable")
    assert set(table[table.n == 0].verdict) == {"no runs"}


def test_numbers_from_different_machines_are_not_averaged():
    other = {**ENV, "device_name": "Other CPU", "cpu_model": "Other CPU"}
    records = [make_record("logistic", "manual", 0, test_acc=0.9), make_record("logistic", "manual", 0,
                                                                               test_acc=0.8, env=other)]
    frame = tb.prepare(results.to_frame(records))
    summary = tb.summary_table(frame)
    assert len(summary) == 2 and set(summary.test_acc_mean) == {0.9, 0.8}
    assert "Test CPU" in tb.machine_line(frame) and "Other CPU" in tb.machine_line(frame)


def test_a_mixed_cluster_is_split_by_machine_type_and_names_its_hosts():
    cpu_a = {**ENV, "host": "node-a", "device_name": "Xeon A", "cpu_model": "Xeon A"}
    cpu_b = {**ENV, "host": "node-b", "device_name": "Epyc B", "cpu_model": "Epyc B"}
    cpu_a2 = {**cpu_a, "host": "node-c"}  # a second machine of type A
    gpu = {**ENV, "device": "cuda", "device_name": "H100"}
    records = [make_record("softmax", "builtin", seed, epoch_seconds=seconds, env=env)
               for seed, seconds, env in ((0, 1.0, cpu_a), (1, 1.0, cpu_a2), (0, 3.0, cpu_b), (1, 3.0, cpu_b),
                                          (0, 0.5, {**gpu, "host": "gpu-1", "cpu_model": "Xeon A"}),
                                          (1, 0.5, {**gpu, "host": "gpu-2", "cpu_model": "Epyc B"}))]
    frame = tb.prepare(results.to_frame(records))
    summary = tb.summary_table(frame).set_index("machine")
    assert summary.train_seconds_mean.to_dict() == {"Xeon A": 3.0, "Epyc B": 9.0, "H100 + Xeon A": 1.5,
                                                    "H100 + Epyc B": 1.5}  # never averaged across types
    assert summary.n.to_dict() == {"Xeon A": 2, "Epyc B": 2, "H100 + Xeon A": 1, "H100 + Epyc B": 1}
    line = tb.machine_line(frame)
    assert "Xeon A, 2 threads, torch 9.9.9 (2 runs on node-a, node-c)" in line
    assert "Epyc B, 2 threads, torch 9.9.9 (2 runs on node-b)" in line and "H100 + Epyc B" in line


def test_markdown_pairs_mean_and_std():
    table = pd.DataFrame({"impl": ["a", "b"], "test_acc_mean": [0.5, math.nan], "test_acc_std": [0.01, math.nan]})
    lines = render.to_markdown(table, na_text="not reached").splitlines()
    assert lines[0] == "| impl | test acc |"
    assert lines[2] == "| a | 0.5000 ± 0.0100 |" and lines[3] == "| b | not reached |"


def test_report_writes_every_section_csv_and_plot(study_folder, capsys):
    (study_folder / "runs" / "broken.json").write_text("{not json")
    (study_folder / "throughput.csv").write_text(
        "family,impl,device,batch_size,train_samples_per_s,threads,torch\n"
        "mlp,manual,cpu,16,10000,2,9.9.9\nmlp,manual,cpu,64,30000,2,9.9.9\n")
    assert cli.main(["report", str(study_folder)]) == 0
    captured = capsys.readouterr()
    assert "broken.json" in captured.err and "report.md" in captured.out
    text = (study_folder / "report.md").read_text()
    for title in ("## Summary", "## Manual implementations against their twins", "## Notebook comparison",
                  "## Per-class test accuracy", "## Learning-rate sweep", "## Batch-size sweep",
                  "## Time to accuracy", "## Throughput vs batch size (from the sweep's runs)",
                  "## Throughput vs batch size (from throughput.csv)", "## Runs that did not finish ok", "## Plots"):
        assert title in text
    assert "Skipped as unreadable: broken.json" in text
    assert text.count("Measured on Test CPU, 2 threads, torch 9.9.9") >= 8
    assert "diverged at epoch 2" in text and "not reached" in text
    for name in ("summary", "twins", "notebook", "per_class", "lr_sweep", "batch_size_sweep", "time_to_accuracy",
                 "throughput_runs", "throughput_bench", "runs_not_ok"):
        assert not pd.read_csv(study_folder / f"{name}.csv").empty
    pictures = sorted((study_folder / "plots").glob("*.png"))
    assert {"curves_mlp.png", "lr_curves_mlp.png", "batch_size_curves_mlp.png", "throughput_bench.png",
            "confusion_softmax.png", "val_acc_vs_seconds.png"} <= {p.name for p in pictures}
    assert all(is_png(p) for p in pictures)
    assert all(f"plots/{p.name}" in text for p in pictures)


def test_report_of_a_missing_or_empty_folder_is_a_one_line_error(tmp_path, capsys):
    assert cli.main(["report", str(tmp_path / "nowhere")]) == 2
    (tmp_path / "runs").mkdir()
    assert cli.main(["report", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 2 and all(line.startswith("mnistbench") and "error" in line for line in err)


def test_malformed_throughput_csv_is_a_warning(tmp_path):
    (tmp_path / "throughput.csv").write_text("family,impl\nmlp,manual\n")
    table, warnings = report.read_throughput(tmp_path)
    assert table is None and len(warnings) == 1 and "missing columns batch_size" in warnings[0]
    assert report.read_throughput(tmp_path / "elsewhere") == (None, [])


def test_study_tags_do_not_split_points():
    cfg = RunConfig("mlp", "manual", tags={"parts": ["lr_sweep"]})
    assert cfg == RunConfig("mlp", "manual", tags={"parts": ["batch_sweep"]})


REFERENCE = Path(__file__).resolve().parent.parent / "results" / "reference"


@pytest.mark.skipif(not (REFERENCE / "runs").is_dir(), reason="results/reference is not in this checkout")
def test_report_reproduces_the_committed_reference_tables(tmp_path):
    """Golden: `report` on a copy of results/reference writes every committed table and report.md again,
    byte for byte (regenerate the reference with `mnistbench report results/reference` when a change to
    the report is meant)."""
    import mnistbench

    copy = tmp_path / "reference"
    shutil.copytree(REFERENCE, copy)
    written = mnistbench.report(copy)
    committed = sorted(p.name for p in REFERENCE.glob("*.csv")) + ["report.md"]
    assert {Path(p).name for p in written["tables"]} <= set(committed)  # no table the reference lacks
    assert Path(written["report"]) == copy / "report.md"
    differing = [name for name in committed if (copy / name).read_bytes() != (REFERENCE / name).read_bytes()]
    assert not differing, f"report no longer reproduces results/reference: {differing}"
