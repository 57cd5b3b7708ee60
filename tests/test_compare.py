"""`mnistbench compare` on synthetic result folders and pytest-benchmark JSON with known differences:
pairing, verdicts, what differs, --by, and the exit codes 0 (nothing slower), 1 (slower), 2 (user mistake)."""
from __future__ import annotations

import json
import math
from dataclasses import replace

import numpy as np
import pytest
from conftest import make_result

from mnistbench import cli, results, stats
from mnistbench.reporting import compare

TEST_IMAGES = 10000


def epochs(center, n=6, spread=0.01, seed=0):
    """Epoch seconds: a slow first epoch (one-time costs, left out of the steady state), then n lognormal."""
    rng = np.random.default_rng(seed)
    return [center * 3] + np.exp(rng.normal(math.log(center), spread, n)).tolist()


def write_run(folder, seconds, family="mlp", impl="manual", acc=0.97, seed=0, env=None, steal=None, **config):
    """A run with these epoch seconds saved into folder (run_result)."""
    result = run_result(seconds, family, impl, acc, seed, env, steal, **config)
    results.save(result, folder)
    return result


def run_result(seconds, family="mlp", impl="manual", acc=0.97, seed=0, env=None, steal=None, **config):
    """A run with these epoch seconds (conftest.make_result) on 10,000 test images; `steal`: the CPU steal
    fraction it ran under (above 2 % flags its timing unstable)."""
    result = make_result(family, impl, "ok", seed, epoch_seconds=seconds, test_acc=acc, epochs=len(seconds), **config)
    noise = result.noise if steal is None else {**result.noise, "cpu_steal_fraction": steal}
    on_cpu = {"device": "cpu", "device_name": result.env["cpu_model"]}  # as env.environment records a CPU run
    result = replace(result.with_env(**{**on_cpu, **(env or {})}), noise=noise,
                     split_sizes={"train": 48000, "val": 12000, "test": TEST_IMAGES})
    return result


def folder_pair(tmp_path, new_center, new_env=None, seeds=(0,)):
    base, new = tmp_path / "base", tmp_path / "new"
    for seed in seeds:
        write_run(base, epochs(1.0, seed=seed), seed=seed)
        write_run(new, epochs(new_center, seed=100 + seed), seed=seed, env=new_env)
    return base, new


def run_cli(*argv):
    return cli.main(["compare", *map(str, argv)])


def test_same_timings_one_run_a_side_are_inconclusive_and_exit_0(tmp_path, capsys):
    base, new = folder_pair(tmp_path, 1.0)
    assert run_cli(base, new, "--out", tmp_path / "out") == 0
    out = capsys.readouterr().out
    assert f"inconclusive ({stats.ONE_RUN_NOTE})" in out and "mlp/manual" in out
    frame = compare.compare(base, new)
    assert len(frame) == 1
    row = frame.iloc[0]
    assert row["verdict"] == "inconclusive" and row["note"] == stats.ONE_RUN_NOTE
    assert row["method"] == row["timing_from"] == stats.UNPAIRED_EPOCHS
    assert row["ratio_ci_low"] < 1 < row["ratio_ci_high"]
    assert row["n_base"] == 6 and row["n_new"] == 6  # the slow first epoch is left out
    assert row["differs"] == "same environment"  # both sides recorded the same machine
    assert (tmp_path / "out" / "compare.md").is_file() and (tmp_path / "out" / "compare.csv").is_file()


def test_same_timings_over_three_runs_a_side_are_equivalent(tmp_path, capsys):
    base, new = folder_pair(tmp_path, 1.0, seeds=(0, 1, 2))
    assert run_cli(base, new, "--out", tmp_path / "out") == 0
    assert "  equivalent  " in capsys.readouterr().out  # the table's verdict cell
    row = compare.compare(base, new).iloc[0]
    assert row["verdict"] == row["verdict_text"] == "equivalent" and row["note"] == ""
    assert row["method"] == stats.UNPAIRED_RUNS and row["n_base"] == row["n_new"] == 3
    assert 1 / 1.05 < row["ratio_ci90_low"] < 1 < row["ratio_ci90_high"] < 1.05  # TOST: inside the band


def test_a_slower_new_side_is_slower_with_its_interval_and_exit_1(tmp_path, capsys):
    base, new = folder_pair(tmp_path, 1.3, new_env={"threads": 1}, seeds=(0, 1, 2))
    assert run_cli(base, new, "--out", tmp_path / "out") == 1
    captured = capsys.readouterr()
    assert "slower" in captured.out and "threads" in captured.out and "slower beyond 5 %" in captured.err
    row = compare.compare(base, new).iloc[0]
    assert row["verdict"] == "slower" and 1.25 < row["ratio_ci_low"] < 1.3 < row["ratio_ci_high"] < 1.35
    assert row["differs"].startswith("threads ") and row["new_threads"] == "1"
    assert compare.compare(new, base).iloc[0]["verdict"] == "faster"


def test_a_difference_within_the_threshold_does_not_gate(tmp_path):
    base, new = folder_pair(tmp_path, 1.03, seeds=(0, 1, 2))  # significant over 3 + 3 runs, but below 5 %
    row = compare.compare(base, new).iloc[0]
    assert row["p_value"] < 0.05 and row["verdict"] == "equivalent"  # its 90 % interval inside 1 ± 5 %
    assert compare.compare(base, new, threshold=0.01).iloc[0]["verdict"] == "slower"
    assert run_cli(base, new, "--threshold", "1%", "--out", tmp_path / "out") == 1


def test_seeds_pool_and_pairs_follow_the_configuration(tmp_path):
    base, new = folder_pair(tmp_path, 1.0, seeds=(0, 1, 2))
    write_run(base, epochs(0.5), lr=0.1)  # in base only: no pair
    write_run(new, epochs(0.5), lr=0.1, batch_size=128)  # in new only: no pair
    frame = compare.compare(base, new)
    assert len(frame) == 1 and frame.iloc[0]["n_base"] == 3  # three seeds: the runs are the samples
    assert frame.iloc[0]["timing_from"] == stats.UNPAIRED_RUNS
    assert "lr=0.01 batch=64" in frame.iloc[0]["configuration"]


def test_runs_are_the_samples_so_drift_between_runs_is_not_mistaken_for_a_change(tmp_path):
    # each run's epochs agree to 0.5 %, but the machine drifts from run to run by ~10 %: the runs of
    # new are 8 % slower on average, well inside that drift
    base, new = tmp_path / "base", tmp_path / "new"
    for seed, (b, n) in enumerate([(1.0, 1.2), (1.1, 1.1), (1.2, 1.3)]):
        write_run(base, epochs(b, spread=0.005, seed=seed), seed=seed)
        write_run(new, epochs(n, spread=0.005, seed=50 + seed), seed=seed)
    row = compare.compare(base, new).iloc[0]
    assert row["n_base"] == row["n_new"] == 3 and row["timing_from"] == stats.UNPAIRED_RUNS
    assert 1.05 < row["ratio"] < 1.12 and row["ratio_ci_low"] < 1 and row["verdict"] == "inconclusive"
    assert row["ratio_ci90_high"] > 1.05 and row["note"] == ""  # the data, not a rule, leave it undecided
    pooled = stats.compare_times(*[[t for s, c in enumerate(side) for t in epochs(c, spread=0.005, seed=s)[1:]]
                                   for side in ((1.0, 1.1, 1.2), (1.2, 1.1, 1.3))])
    assert pooled.verdict == "slower"  # what pooling the 18 + 18 epochs as independent draws would claim
    write_run(tmp_path / "one", epochs(1.0, seed=9))  # one run on a side: its epochs, and the row says so
    single = compare.compare(tmp_path / "one", new).iloc[0]
    assert single["n_base"] == 6 and single["n_new"] == 18 and single["timing_from"] == stats.UNPAIRED_EPOCHS
    assert single["p_value"] < 0.05 and single["ratio_ci_low"] > 1.05  # the epochs alone would say slower
    assert single["verdict"] == "inconclusive" and single["note"] == stats.ONE_RUN_NOTE


def test_accuracy_difference_against_its_band(tmp_path):
    base, new = tmp_path / "base", tmp_path / "new"
    write_run(base, epochs(1.0), acc=0.970)
    write_run(new, epochs(1.0, seed=1), acc=0.971)  # 10 images in 10,000: within binomial noise
    write_run(base, epochs(1.0), impl="builtin", acc=0.970)
    write_run(new, epochs(1.0, seed=1), impl="builtin", acc=0.990)
    frame = compare.compare(base, new).set_index("impl")
    band = frame.loc["manual", "acc_diff_ci_high"] - frame.loc["manual", "acc_diff"]
    assert 0.004 < band < 0.006  # 1.96 * sqrt(2 * 0.97 * 0.03 / 10000)
    assert frame.loc["manual", "accuracy"] == "within noise" and frame.loc["builtin", "accuracy"] == "higher"


def test_what_differs_names_machine_and_software(tmp_path):
    base, new = folder_pair(tmp_path, 1.0, new_env={"torch": "9.9.9", "host": "elsewhere", "cpu_model": "Other CPU",
                                                    "device_name": "Other CPU"})
    row = compare.compare(base, new).iloc[0]
    assert "torch " in row["differs"] and "→ 9.9.9" in row["differs"] and "host " in row["differs"]
    assert "cpu_model " in row["differs"] and "device_name" not in row["differs"]  # the CPU, said once
    assert row["new_torch"] == "9.9.9"


def test_a_run_flagged_unstable_is_marked(tmp_path, capsys):
    base, new = folder_pair(tmp_path, 1.0)
    assert run_cli(base, new, "--out", tmp_path / "out") == 0
    assert "timing unstable" not in capsys.readouterr().out
    for seed in (0, 1):  # two runs a side, so that the verdict can be slower
        write_run(new, epochs(2.0, seed=seed), impl="builtin", seed=seed, steal=0.05 if seed == 0 else None)
        write_run(base, epochs(1.0, seed=10 + seed), impl="builtin", seed=seed)
    frame = compare.compare(base, new).set_index("impl")
    assert frame.loc["builtin", "timing_unstable"] and not frame.loc["manual", "timing_unstable"]
    assert frame.loc["builtin", "verdict"] == "slower"
    assert run_cli(base, new, "--out", tmp_path / "out") == 1
    assert "timing unstable" in capsys.readouterr().out


def test_by_compares_the_groups_of_one_folder(tmp_path, capsys):
    folder = tmp_path / "runs"
    for torch_version, center in (("2.13.0", 1.0), ("2.9.0", 1.0), ("2.15.0", 1.4)):
        for seed in (0, 1):
            # each torch in its own environment (a tox env: its own prefix), else the runs are one run's copies
            write_run(folder, epochs(center, seed=seed + len(torch_version)), seed=seed,
                      env={"torch": torch_version, "prefix": f"/tox/{torch_version}"})
    for key in ("torch", "env_torch"):
        frame = compare.compare(folder, by=key)
        assert list(frame["base"]) == ["torch 2.9.0", "torch 2.9.0"]  # the oldest version is the base
        assert list(frame["new"]) == ["torch 2.13.0", "torch 2.15.0"]
        assert list(frame["verdict"]) == ["equivalent", "slower"]
    assert run_cli(folder, "--by", "torch", "--out", tmp_path / "out") == 1
    assert "torch 2.15.0" in capsys.readouterr().out


def test_by_a_config_key_takes_it_out_of_the_pairing(tmp_path):
    folder = tmp_path / "runs"
    write_run(folder, epochs(1.0), lr=0.1)
    write_run(folder, epochs(1.0, seed=1), lr=0.05)
    frame = compare.compare(folder, by="lr")
    assert list(frame["base"]) == ["lr 0.05"] and list(frame["new"]) == ["lr 0.1"]  # by value, not as text


def test_threads_pair_across_folders_and_group_by_the_count_used(tmp_path):
    folder = tmp_path / "runs"
    for seed in (0, 1):  # two runs a group: one a side would be inconclusive
        write_run(folder, epochs(1.0, seed=seed), seed=seed, env={"threads": 2})
        write_run(folder, epochs(1.5, seed=10 + seed), seed=seed, threads=1, env={"threads": 1})
    row = compare.compare(folder, by="threads").iloc[0]
    assert (row["base"], row["new"], row["verdict"]) == ("threads 1", "threads 2", "faster")


def golden_sides():
    """Fixed in-memory runs: softmax/manual alike over 3 seeds (equivalent), softmax/builtin 30 % slower over
    3 seeds with one run under CPU steal (slower, timing unstable), logistic/manual one run a side, 20 %
    slower and more accurate (inconclusive, higher); new ran under torch 2.16.0."""
    base, new = [], []
    for seed in (0, 1, 2):
        base.append(run_result(epochs(0.2, seed=seed), "softmax", "manual", acc=0.92, seed=seed))
        new.append(run_result(epochs(0.2, seed=10 + seed), "softmax", "manual", acc=0.92, seed=seed,
                              env={"torch": "2.16.0"}))
        base.append(run_result(epochs(0.1, seed=20 + seed), "softmax", "builtin", acc=0.92, seed=seed))
        new.append(run_result(epochs(0.13, seed=30 + seed), "softmax", "builtin", acc=0.92, seed=seed,
                              env={"torch": "2.16.0"}, steal=0.05 if seed == 0 else None))
    base.append(run_result(epochs(0.05, seed=40), "logistic", "manual", acc=0.990))
    new.append(run_result(epochs(0.06, seed=41), "logistic", "manual", acc=0.996, env={"torch": "2.16.0"}))
    return base, new


GOLDEN_TABLE = (
    'configuration                              base     new      new/base (95 % CI)  verdict                                                              test acc  Δ acc (95 % band)  accuracy      what differs           timing unstable\n'
    '-----------------------------------------  -------  -------  ------------------  -------------------------------------------------------------------  --------  -----------------  ------------  ---------------------  ---------------\n'
    'softmax/manual lr=0.01 batch=64 epochs=7   201 ms   200 ms   1.00× ± 0.01        equivalent                                                           0.9200    +0.0000 ± 0.0075   within noise  torch 2.15.0 → 2.16.0  False\n'
    'softmax/builtin lr=0.01 batch=64 epochs=7  99.8 ms  130 ms   1.30× ± 0.02        slower                                                               0.9200    +0.0000 ± 0.0075   within noise  torch 2.15.0 → 2.16.0  True\n'
    'logistic/manual lr=0.01 batch=64 epochs=7  49.5 ms  60.1 ms  1.21× ± 0.01        inconclusive (one run a side: drift between the runs is unmeasured)  0.9960    +0.0060 ± 0.0023   higher        torch 2.15.0 → 2.16.0  False'
)


def test_golden_text_table():
    """The text table `mnistbench compare` prints, on a fixed input: columns, formats, verdict texts."""
    from mnistbench.reporting import render

    frame = compare.compare(*golden_sides())
    assert list(frame["verdict"]) == ["equivalent", "slower", "inconclusive"]
    assert render.to_text(frame, compare.columns(frame)) == GOLDEN_TABLE


# ---------------------------------------------------------------- pytest-benchmark JSON
def bench_file(path, rounds, name="test_train[mlp-manual-cpu]", raw=True, torch_version="2.15.0", acc=0.97):
    stats = {"mean": float(np.mean(rounds)), "stddev": float(np.std(rounds, ddof=1)), "rounds": len(rounds),
             "median": float(np.median(rounds)), "min": min(rounds), "max": max(rounds), "iterations": 1}
    if raw:
        stats["data"] = list(rounds)
    bench = {"name": name, "fullname": f"bench/test_train_bench.py::{name}", "group": "train mlp", "stats": stats,
             "extra_info": {"family": "mlp", "impl": "manual", "test_acc": acc, "test_size": TEST_IMAGES}}
    machine = {"node": "host-a", "python_version": "3.12.3", "torch": torch_version, "torch_threads": 2,
               "cpu": {"brand_raw": "Some CPU"}}
    path.write_text(json.dumps({"machine_info": machine, "benchmarks": [bench], "datetime": "2026-01-01"}))
    return path


@pytest.mark.parametrize("raw", [True, False])
def test_benchmark_json_with_and_without_raw_rounds(tmp_path, raw):
    base = bench_file(tmp_path / "base.json", epochs(2.0, n=5)[1:], raw=raw)
    same = bench_file(tmp_path / "same.json", epochs(2.0, n=5, seed=1)[1:], raw=raw, torch_version="2.16.0")
    slow = bench_file(tmp_path / "slow.json", epochs(2.6, n=5, seed=2)[1:], raw=raw)
    row = compare.compare(base, same).iloc[0]
    assert row["verdict"] == "equivalent" and row["differs"] == "torch 2.15.0 → 2.16.0"
    assert row["timing_from"] == ("benchmark rounds" if raw else "benchmark mean ± sd")
    assert row["accuracy"] == "within noise"
    assert run_cli(base, same, "--out", tmp_path / "out") == 0
    assert run_cli(base, slow, "--out", tmp_path / "out") == 1
    assert 1.25 < compare.compare(base, slow).iloc[0]["ratio"] < 1.35


def test_benchmarks_pair_by_full_name(tmp_path):
    base = bench_file(tmp_path / "base.json", [1.0, 1.01, 0.99], name="test_a")
    new = bench_file(tmp_path / "new.json", [1.0, 1.01, 0.99], name="test_b")
    assert run_cli(base, new, "--out", tmp_path / "out") == 2


# ---------------------------------------------------------------- user mistakes: one line, exit 2, nothing written
@pytest.fixture
def sources(tmp_path):
    base, new = folder_pair(tmp_path, 1.0)
    other = tmp_path / "other"
    write_run(other, epochs(1.0), family="softmax", impl="handgrad")
    foreign = tmp_path / "foreign.json"
    foreign.write_text('{"not": "a benchmark"}')
    bench = bench_file(tmp_path / "bench.json", [1.0, 1.1, 0.9])
    empty = tmp_path / "empty"
    empty.mkdir()
    return {"base": base, "new": new, "other": other, "foreign": foreign, "bench": bench, "empty": empty,
            "missing": tmp_path / "missing"}


@pytest.mark.parametrize("argv, message", [
    (["base", "missing"], "does not exist"),
    (["base", "empty"], "no run results"),
    (["base", "other"], "no configuration in common"),
    (["foreign", "bench"], "not pytest-benchmark JSON"),
    (["base", "bench"], "not a results folder with a pytest-benchmark JSON file"),
    (["base"], "give BASE and NEW"),
    (["base", "new", "--by", "torch"], "one results folder"),
    (["base", "--by", "torch"], "no second group"),
    (["base", "--by", "colour"], "--by colour: no run records it"),
    (["bench", "--by", "torch"], "needs a results folder"),
    (["base", "new", "--threshold", "abc"], "cannot read"),
    (["base", "new", "--threshold", "150%"], "threshold must be a fraction"),
])
def test_user_mistakes_exit_2_with_one_line_and_write_nothing(sources, tmp_path, capsys, argv, message):
    out = tmp_path / "out"
    argv = [str(sources.get(a, a)) for a in argv]
    assert run_cli(*argv, "--out", out) == 2
    err = capsys.readouterr().err
    assert err.startswith("mnistbench") and len(err.strip().splitlines()) == 1 and message in err, err
    assert not out.exists()


def test_by_dtype_takes_float32_as_the_base():
    from mnistbench.reporting.pairing import group_order

    assert sorted(["bfloat16", "float32", "unset"], key=group_order) == ["float32", "bfloat16", "unset"]
    assert sorted(["0.1", "0.05", "2.13.0", "2.9.0"], key=group_order) == ["0.05", "0.1", "2.9.0", "2.13.0"]
