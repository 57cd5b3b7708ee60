"""`mnistbench report` on a folder with verify results: the Parity table; the twins table's TOST equivalence."""
from __future__ import annotations

import csv
import math

import pandas as pd
import pytest
from conftest import make_result
from scipy import stats

from mnistbench import ConfigError, api, results
from mnistbench.parity import output
from mnistbench.reporting import document, parity
from mnistbench.reporting import tables as tb

TOL = "max|a-b|/max|b| <= 1e-05 + 1.3e-06·sqrt(784)·sqrt(step) (= 4.6e-05 at step 1, 0.00052 at step 200)"
TOL_MD = TOL.replace("|", "\\|")  # a Markdown cell escapes its pipes


def verify_row(family="softmax", impl="manual", dtype="float32", ran_in=None, verdict="agree", first_step="",
               tensor="", max_abs="3.1e-07", max_rel="3.5e-07", steps=200, gradcheck="pass"):
    return {"family": family, "impl": impl, "twin": "builtin", "dtype": dtype, "ran_in": ran_in or dtype,
            "verdict": verdict, "first_step": first_step, "tensor": tensor, "max_abs_diff": max_abs,
            "max_rel_diff": max_rel, "allowed_rel": "4.64e-05", "steps": steps, "gradcheck": gradcheck,
            "rtol": "1.3e-06", "atol": "1e-05", "reduction": 784, "tolerance": TOL, "batch_size": 64, "seed": 0,
            "seconds": "1.2", "note": ""}


ROWS = [verify_row(),
        verify_row(impl="handgrad", dtype="float64", ran_in="float32", verdict="differ", first_step=3,
                   tensor="W~weight", max_abs="1.05e-06", max_rel="0.001", steps=3, gradcheck="fail: b"),
        verify_row(family="logistic", verdict="differ", first_step=0, tensor="logits", max_abs="0.5",
                   max_rel="0.2", steps=0),
        verify_row(family="mlp", dtype="float64", verdict="identical", max_abs="0", max_rel="0")]


def write_verify(folder, rows=ROWS):
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / output.CSV, "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=output.COLUMNS, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
    (folder / output.MARKDOWN).write_text(output.markdown(rows, "test cpu, torch 2.15.0"), encoding="utf-8")
    return folder / output.CSV


def save_twins(folder, manual_accs, builtin_acc=0.9):
    for seed, acc in enumerate(manual_accs):
        results.save(make_result("softmax", "manual", seed=seed, test_acc=acc), folder)
        results.save(make_result("softmax", "builtin", seed=seed, test_acc=builtin_acc), folder)


@pytest.fixture
def no_plots(monkeypatch):
    monkeypatch.setattr(document, "make_plots", lambda frame, bench, plot_dir: [])


def section(text, title):
    return text.split(f"## {title}", 1)[1].split("\n## ", 1)[0]


def test_report_adds_the_parity_table_after_the_twins_table(tmp_path, no_plots):
    save_twins(tmp_path, (0.9005, 0.9010, 0.9000))
    path = write_verify(tmp_path)
    before = path.read_bytes()
    out = document.build(tmp_path)
    text = out["report"].read_text(encoding="utf-8")
    titles = [line[3:] for line in text.splitlines() if line.startswith("## ")]
    assert titles.index(parity.TITLE) == titles.index("Manual implementations against their twins") + 1
    table = section(text, parity.TITLE)
    assert "Measured on test cpu, torch 2.15.0." in table
    lines = [line for line in table.splitlines() if line.startswith("| ")]
    assert lines[0] == ("| family | impl | twin | dtype | verdict | steps | max abs diff | max rel diff | "
                        "allowed rel | tolerance | gradcheck |")
    assert lines[2] == f"| softmax | manual | builtin | float32 | agree | 200 | 3.1e-07 | 3.5e-07 | 4.64e-05 | {TOL_MD} | pass |"
    assert lines[3].startswith("| softmax | handgrad | builtin | float64 (ran float32) | differ from step 3: "
                               "W~weight, max abs 1.05e-06, max rel 0.001 | 3 | 1.05e-06 | 0.001 |")
    assert lines[3].endswith("| fail: b |")
    assert "| logistic | manual | builtin | float32 | differ before any update: logits, max abs 0.5, max rel 0.2 | 0 |" in lines[4]
    assert lines[5].startswith("| mlp | manual | builtin | float64 | identical | 200 | 0 | 0 |")
    assert tmp_path / "parity.csv" in out["tables"]
    csv_back = pd.read_csv(tmp_path / "parity.csv")
    assert list(csv_back.verdict) == ["agree", "differ", "differ", "identical"]
    assert csv_back.max_rel_diff.tolist() == [3.5e-07, 0.001, 0.2, 0.0]
    assert path.read_bytes() == before  # verify.csv is read, never rewritten
    assert out["warnings"] == []


def test_no_verify_csv_no_parity_table(tmp_path, no_plots):
    save_twins(tmp_path, (0.9, 0.9))
    text = document.build(tmp_path)["report"].read_text(encoding="utf-8")
    assert parity.TITLE not in text and not (tmp_path / "parity.csv").exists()


def test_a_folder_with_only_verify_results_gets_a_report(tmp_path, no_plots):
    write_verify(tmp_path)
    text = document.build(tmp_path)["report"].read_text(encoding="utf-8")
    assert f"## {parity.TITLE}" in text


HEADER = ",".join(output.COLUMNS)
GOOD = ",".join(str(verify_row()[c]) if c != "tolerance" else "rule" for c in output.COLUMNS)


@pytest.mark.parametrize("text, why", [
    ("", "empty file"),
    (HEADER + "\n", "no rows"),
    ("family,impl\nsoftmax,manual\n", "missing columns twin, dtype"),
    (HEADER + "\n" + GOOD.rsplit(",", 3)[0] + "\n", "line 2: fewer fields than the header's 21"),
    (HEADER + "\n" + GOOD + ",extra\n", "line 2: more fields than the header's 21"),
    (HEADER + "\n" + GOOD.replace("3.1e-07", "tiny") + "\n", "line 2: max_abs_diff 'tiny' is not a number"),
    (HEADER + "\n" + GOOD.replace(",agree,", ",fine,") + "\n", "line 2: unknown verdict 'fine'"),
    (HEADER + "\n" + GOOD.replace(",200,", ",many,") + "\n", "line 2: steps 'many' is not an integer"),
    (HEADER + "\n" + GOOD + '\n"unterminated\n', "not CSV"),
])
def test_malformed_verify_csv_is_skipped_with_a_warning_naming_it(tmp_path, text, why):
    path = tmp_path / output.CSV
    path.write_text(text, encoding="utf-8")
    frame, warnings = parity.read(tmp_path)
    assert frame is None and len(warnings) == 1
    assert warnings[0].startswith(f"skipping {path}: {why}")


def test_verify_csv_that_is_not_utf8_or_not_a_file_is_skipped(tmp_path):
    (tmp_path / output.CSV).write_bytes(HEADER.encode() + b"\n\xff\xfe\n")
    assert parity.read(tmp_path)[1][0].startswith(f"skipping {tmp_path / output.CSV}: ")
    (tmp_path / output.CSV).unlink()
    (tmp_path / output.CSV).mkdir()
    frame, warnings = parity.read(tmp_path)
    assert frame is None and warnings[0].startswith(f"skipping {tmp_path / output.CSV}: ")


def test_report_with_a_malformed_verify_csv_warns_and_leaves_the_table_out(tmp_path, no_plots):
    save_twins(tmp_path, (0.9, 0.9))
    (tmp_path / output.CSV).write_text("family,impl\nsoftmax,manual\n", encoding="utf-8")
    out = document.build(tmp_path)
    assert parity.TITLE not in out["report"].read_text(encoding="utf-8")
    assert any(w.startswith(f"skipping {tmp_path / output.CSV}: missing columns") for w in out["warnings"])


# ---------------------------------------------------------------- TOST in the twins table
def twins_row(manual_accs, margin=tb.EQUIVALENCE_MARGIN, builtin_acc=0.9):
    records = [make_result("softmax", impl, seed=s, test_acc=a if impl == "manual" else builtin_acc)
               for s, a in enumerate(manual_accs) for impl in ("manual", "builtin")]
    frame = tb.prepare(results.to_frame(records))
    return tb.twins_table(tb.at_defaults(frame), margin=margin).set_index("twin").loc["builtin"]


def test_tost_equivalent_at_the_default_margin_flips_when_the_margin_shrinks():
    accs = (0.9005, 0.9010, 0.9000)  # differences 0.0005, 0.001, 0: mean 0.0005, sd 0.0005
    diffs = [a - 0.9 for a in accs]
    wide, narrow = twins_row(accs), twins_row(accs, margin=0.001)
    assert wide.test_acc_equivalence == "equivalent"
    expected = max(stats.ttest_1samp(diffs, -0.002, alternative="greater").pvalue,
                   stats.ttest_1samp(diffs, 0.002, alternative="less").pvalue)
    assert wide.test_acc_tost_p == pytest.approx(expected) and 0.01 < wide.test_acc_tost_p < 0.05
    assert narrow.test_acc_equivalence == "not shown equivalent" and narrow.test_acc_tost_p > 0.05
    assert wide.test_acc_difference_mean == pytest.approx(0.0005)  # today's difference stays beside it


def test_tost_edge_cases_are_decided_explicitly():
    same = twins_row((0.9, 0.9, 0.9))
    assert (same.test_acc_equivalence, same.test_acc_tost_p) == ("equivalent", 0.0)
    one = twins_row((0.9,))
    assert one.test_acc_equivalence == "not shown equivalent (one seed)" and math.isnan(one.test_acc_tost_p)
    shifted = tb.equivalence([0.003, 0.003])  # no spread, outside the margin
    assert shifted == ("not shown equivalent", 1.0)
    assert tb.equivalence([0.001, 0.001]) == ("equivalent", 0.0)
    far = twins_row((0.95, 0.951, 0.949))
    assert far.test_acc_equivalence == "not shown equivalent" and far.test_acc_tost_p > 0.99


def test_api_report_threads_the_margin_and_shows_the_columns(tmp_path, no_plots):
    save_twins(tmp_path, (0.9005, 0.9010, 0.9000))
    api.report(tmp_path, margin=0.001)
    twins = pd.read_csv(tmp_path / "twins.csv").set_index("twin").loc["builtin"]
    assert twins.test_acc_equivalence == "not shown equivalent"
    text = api.report(tmp_path)["report"].read_text(encoding="utf-8")
    table = section(text, "Manual implementations against their twins")
    assert "| test acc equivalence | TOST p |" in table and "| equivalent | 0.0" in table
    assert "margin ±0.002 (0.2 points)" in table


@pytest.mark.parametrize("margin", [0, 1, -0.1, 1.5, "0.1", True, None, math.nan])
def test_api_report_refuses_a_margin_outside_0_1(tmp_path, margin):
    with pytest.raises(ConfigError, match="margin"):
        api.report(tmp_path, margin=margin)
