"""The speed machinery on tiny data: the notebook's loops run and do the same math as mnistbench's models,
`speed` and `throughput` produce their tables and CSV files, the floor arithmetic is right. No timing
assertions here: the speed claims live in `mnistbench speed` and bench/test_speed_ratios.py."""

from __future__ import annotations

import csv
import gzip
import math
import re
import statistics
import time

import numpy
import pytest
import scipy.stats
import torch

from mnistbench import cli, data, models, paired, train
from mnistbench.config import for_family
from mnistbench.perf import floor, notebook_loops, speed, stepfloor, targets, throughput, timing
from mnistbench.reporting import render

TOL = 1e-5


@pytest.fixture
def quick(monkeypatch):
    """Measure as little as possible: one round per family, a short matmul timing, no heap trimming (a full
    garbage collection of the test process before every timed loop costs more than the loops)."""
    monkeypatch.setattr(speed, "MIN_FAMILY_SECONDS", 0.0)
    monkeypatch.setattr(timing, "release_memory", lambda: None)
    monkeypatch.setattr(speed, "release_memory", lambda: None)
    monkeypatch.setattr(floor, "MATMUL_SECONDS", 0.005)
    monkeypatch.setattr(floor, "PEAK_SIZE", 64)
    monkeypatch.setattr(throughput, "MIN_POINT_SECONDS", 0.0)


def read_csv(path):
    with open(path, newline="") as handle:
        reader = csv.DictReader(handle)
        return reader.fieldnames, list(reader)


def batches(n_classes, steps=20, seed=0):
    gen = torch.Generator().manual_seed(seed)
    return [
        (
            torch.rand(64, 784, generator=gen) * (torch.rand(64, 784, generator=gen) < 0.2),
            torch.randint(0, n_classes, (64,), generator=gen),
        )
        for _ in range(steps)
    ]


@pytest.mark.parametrize("family", ["logistic", "softmax"])
def test_notebook_linear_step_does_the_same_math_as_manual(family):
    n_classes = 2 if family == "logistic" else 10
    data_ = batches(n_classes)
    x_all = torch.cat([x for x, _ in data_])
    y_all = torch.cat([y for _, y in data_])
    step, _ = notebook_loops.linear(family, "manual", x_all, y_all, n_classes, 0.1, 64, 0, "cpu")
    model = models.build(for_family(family, "manual", lr=0.1), 784, n_classes)
    tally = notebook_loops.Tally()
    for x, y in data_:
        step(x, y, tally)
        model.step(x, y)
    assert float(model.W.detach().abs().max()) > 1e-2, "the steps must move the weights away from zero"
    torch.testing.assert_close(step.params["W"].detach(), model.W.detach(), atol=TOL, rtol=0)
    torch.testing.assert_close(step.params["b"].detach(), model.b.detach(), atol=TOL, rtol=0)
    assert tally.total == 20 * 64 and math.isfinite(tally.loss_sum) and 0 <= tally.correct <= tally.total


def test_notebook_mlp_backward_does_the_same_math_as_manual():
    sizes = [784, 32, 16, 10]
    model = models.build(for_family("mlp", "manual", hidden=(32, 16)), 784, 10)
    notebook = notebook_loops.ManualFeedForward(sizes)
    with torch.no_grad():
        for layer, (weight, bias) in zip(notebook.layers, model.layers):
            layer.weight.copy_(weight)
            layer.bias.copy_(bias)
    for x, y in batches(10, steps=5):
        notebook.forward(x)
        notebook_loss = notebook.manual_backward(y, 0.01)
        loss, _ = models.step_with_loss(model, x, y)
        assert abs(notebook_loss - float(loss)) < TOL
    for layer, (weight, bias) in zip(notebook.layers, model.layers):
        torch.testing.assert_close(layer.weight.detach(), weight, atol=TOL, rtol=0)
        torch.testing.assert_close(layer.bias.detach(), bias, atol=TOL, rtol=0)


def test_notebook_mlp_dataset_holds_mnistbench_mlp_split(tiny_root):
    splits = data.load(for_family("mlp", "manual"), root=tiny_root)
    dataset = notebook_loops.mlp_dataset(tiny_root, seed=0)
    assert len(dataset) == len(splits.train)
    for i in (0, 1, len(dataset) - 1):
        image, label = dataset[i]  # through PIL, ToTensor and Normalize, one sample at a time
        torch.testing.assert_close(image.reshape(-1), splits.train.x[i], atol=1e-5, rtol=0)
        assert label == int(splits.train.y[i])


def test_notebook_epochs_run_and_count_batches(tiny_root):
    splits = data.load(for_family("softmax", "manual"), root=tiny_root)
    for loop in ("manual", "builtin"):
        step, loader = notebook_loops.linear(
            "softmax", loop, splits.train.x, splits.train.y, 10, 0.01, 64, 0, "cpu"
        )
        seconds, tally = notebook_loops.epoch(step, loader, "cpu")
        assert (
            seconds > 0
            and tally.total == len(splits.train)
            and tally.batches == math.ceil(len(splits.train) / 64)
        )
    step, loader = notebook_loops.mlp(tiny_root, [784, 8, 10], 0.01, 64, 0, "cpu")
    _, tally = notebook_loops.epoch(step, loader, "cpu", max_batches=2)
    assert tally.batches == 2 and tally.total == 128


def test_notebook_mlp_needs_uncompressed_files(tmp_path, tiny_root):
    raw = tmp_path / "MNIST" / "raw"
    raw.mkdir(parents=True)
    for path in (tiny_root / "MNIST" / "raw").iterdir():
        (raw / f"{path.name}.gz").write_bytes(gzip.compress(path.read_bytes()))
    data.load_arrays("mnist", tmp_path)  # mnistbench itself reads .gz files...
    with pytest.raises(data.DataError, match="uncompressed"):  # ...torchvision's MNIST class does not
        notebook_loops.mlp_dataset(tmp_path, seed=0)


def test_loop_for_maps_every_iterative_impl_to_a_notebook_loop():
    for family in ("logistic", "softmax", "mlp"):
        for impl in speed.iterative_impls(family):
            assert (family, notebook_loops.loop_for(family, impl)) in notebook_loops.LOOPS
    assert notebook_loops.loop_for("softmax", "handgrad") == "manual"
    assert notebook_loops.loop_for("mlp", "builtin") == "manual"  # the notebook has no builtin MLP


def test_mlp_flops_count_forward_and_both_backward_matmuls():
    # forward 2·B·in·out per layer, backward dW the same, dX for every layer but the first
    forward = 2 * (784 * 512 + 512 * 128 + 128 * 10)
    assert floor.mlp_flops_per_sample([784, 512, 128, 10]) == forward + forward + 2 * (512 * 128 + 128 * 10)
    assert floor.mlp_flops_per_sample([784, 10]) == 4 * 784 * 10


def test_matmul_rates_are_positive_and_finite():
    for rate in (
        *(floor.backend_gflops(item, [784, 16, 10], 64, "cpu", min_seconds=0.005)
          for item in floor.prepare_all([784, 16, 10], 64, "cpu") if item.run is not None),
        floor.peak_gflops("cpu", size=64, min_seconds=0.005),
    ):
        assert math.isfinite(rate) and rate > 0


def test_shuffle_buffers_change_nothing_but_the_allocation():
    x, y = batches(10, steps=3)[0]
    x, y = torch.cat([x] * 3), torch.cat([y] * 3)
    results = []
    for buffers in (None, train.shuffle_buffers(x, y)):
        model = models.build(for_family("softmax", "handgrad"), 784, 10)
        loss, correct, n = train.train_epoch(
            model, x, y, 64, torch.Generator().manual_seed(0), "tensor", buffers
        )
        results.append((float(loss), int(correct), n, model.W.clone()))
    assert results[0][:3] == results[1][:3]
    assert torch.equal(results[0][3], results[1][3])


def test_speed_rows_and_csv(tiny_env, tmp_path, quick):
    rows = speed.speed(["logistic", "softmax", "mlp"], repeats=3, notebook_batches=2, hidden=(8,))
    assert [(r["family"], r["impl"]) for r in rows] == speed.pairs(["logistic", "softmax", "mlp"])
    assert all("sklearn" != r["impl"] for r in rows)
    for row in rows:
        samples = row["_samples"]
        assert row["repeats"] == 3 and all(len(v) == 3 for v in samples.values())
        assert row["notebook_s"] > 0 and row["mnistbench_s"] > 0 and row["bare_s"] > 0
        assert row["notebook_min_s"] <= row["notebook_s"] <= row["notebook_max_s"]
        for name, base, new in (("notebook_over_mnistbench", "mnistbench", "notebook"),
                                ("mnistbench_over_bare", "bare", "mnistbench")):
            # paired by round: each variant was timed once in every round
            expected = paired.paired_comparison(dict(enumerate(samples[base])), dict(enumerate(samples[new])))
            assert row[name] == pytest.approx(expected.ratio)
            assert row[f"{name}_ci_low"] == pytest.approx(expected.ci_low)
            assert row[f"{name}_ci_low"] <= row[name] <= row[f"{name}_ci_high"]
        if row["family"] == "mlp":
            assert row["epoch_gflop"] == pytest.approx(
                floor.mlp_flops_per_sample([784, 8, 10]) * row["train_size"] / 1e9
            )
            assert row["floor_s"] == pytest.approx(row["epoch_gflop"] / row["matmul_gflops"])
            assert row["floor_backend"] in {r["backend"] for r in row["_floors"] if r["exact"]}
            assert row["floor_s"] == pytest.approx(statistics.median(samples["floor"]))
            # the ratio pairs each epoch with the floor measured right before and after it
            assert len(samples["floor_around"]) == len(samples["mnistbench"])
            expected = paired.paired_comparison(dict(enumerate(samples["floor_around"])),
                                                dict(enumerate(samples["mnistbench"])))
            assert row["mnistbench_over_floor"] == pytest.approx(expected.ratio)
            assert row["mnistbench_over_floor_ci_low"] <= row["mnistbench_over_floor"]
        else:
            assert row.get("floor_s") is None
    path = timing.write_csv(rows, tmp_path / "speed.csv", speed.SPEED_COLUMNS)
    header, read = read_csv(path)
    assert header == speed.SPEED_COLUMNS and len(read) == len(rows)
    assert {"notebook_over_mnistbench_ci_low", "mnistbench_over_floor_ci_high", "round_orders"} <= set(header)
    assert read[-1]["floor_s"] and not read[0]["floor_s"] and read[0]["mnistbench_over_bare_ci_high"]
    table = speed.speed_table(rows)
    assert "nb/mb" in table and "mlp" in table and "handgrad" in table
    mlp = rows[-1]
    shown = render.fmt_value(mlp["mnistbench_over_floor"], "ratio")
    assert shown in table and (f"{shown} ±" in table or f"{shown} (" in table)  # with its interval


def test_speed_shuffles_the_order_each_round_and_records_it(tiny_env, quick, monkeypatch):
    """The order the loops ran in is the order recorded; it changes between rounds and follows the seed."""
    ran = []

    def spy(kind, function):
        def wrapper(*args, **kwargs):
            ran.append(kind)
            return function(*args, **kwargs)

        return wrapper

    monkeypatch.setattr(notebook_loops, "epoch", spy("notebook", notebook_loops.epoch))
    monkeypatch.setattr(train, "train_epoch", spy("mnistbench", train.train_epoch))
    monkeypatch.setattr(speed, "bare_epoch", spy("bare", speed.bare_epoch))
    monkeypatch.setattr(floor, "backend_gflops", spy("floor", floor.backend_gflops))
    rows = speed.speed(["mlp"], impls=["manual"], repeats=5, notebook_batches=2, hidden=(8,))
    orders = [order.split(",") for order in rows[0]["round_orders"].split(" | ")]
    # every backend that runs here is a unit of its own, interleaved with the loops
    floors = sorted(f"floor:{r['backend']}" for r in rows[0]["_floors"] if r["rounds"])
    assert "floor:mm-fp32" in floors
    units = sorted([*floors, "manual:bare", "manual:mnistbench", "notebook:manual"])
    assert len(orders) == 5 and all(sorted(o) == units for o in orders)
    exact = sum(1 for r in rows[0]["_floors"] if r["rounds"] and r["exact"])
    assert exact >= 1

    def kinds(name):
        if name.startswith("floor:"):
            return ["floor"]
        if name.endswith(":mnistbench"):  # every exact floor right before and right after the epoch
            return ["floor"] * exact + ["mnistbench"] + ["floor"] * exact
        return [name.split(":")[-1].replace("manual", "notebook")]

    expected = [kind for o in orders for name in o for kind in kinds(name)]
    assert ran[-len(expected):] == expected  # the rounds come after the warm-up calls
    assert len({tuple(o) for o in orders}) > 1, "the order must change between rounds"
    again = speed.speed(["mlp"], impls=["manual"], repeats=5, notebook_batches=2, hidden=(8,))
    assert again[0]["round_orders"] == rows[0]["round_orders"] and again[0]["order_seed"] == 0


def test_speed_reads_the_load_before_its_own_work(tiny_env, quick, monkeypatch):
    readings = iter([0.25] + [9.0] * 100)  # the first reading, then what its own work would show
    monkeypatch.setattr(speed.env, "load_average", lambda: next(readings))
    seen = []
    rows = speed.speed(["logistic"], impls=["handgrad"], repeats=1, on_start=seen.append)
    assert seen == [0.25] and rows[0]["load_1m"] == 0.25


def test_notebook_loop_runs_whole_epochs_by_default(tiny_env, quick):
    rows = speed.speed(["mlp"], impls=["manual"], repeats=1, hidden=(8,))
    assert rows[0]["notebook_batches_timed"] == rows[0]["epoch_batches"]


def floor_row(value, low, high, **extra):
    return {"family": "mlp", "impl": "manual", "mnistbench_over_floor": value, "mnistbench_over_floor_ci_low": low,
            "mnistbench_over_floor_ci_high": high, **extra}


@pytest.mark.parametrize("value, low, high, verdict", [
    (1.20, 1.10, 1.25, "met"),  # the whole interval under the bound
    (1.25, 1.20, 1.30, "met"),  # ... up to the bound itself
    (1.40, 1.35, 1.45, "missed"),  # the whole interval over it
    (1.28, 1.24, 1.33, "inconclusive"),  # the estimate under the bound is not enough: the interval straddles it
    (1.32, 1.27, 1.36, "inconclusive"),  # nor is the estimate over it
    (0.95, 0.73, 1.23, "inconclusive"),  # under its own floor: the floor around the epochs was disturbed
    (1.20, math.nan, math.nan, "inconclusive"),  # no interval
])
def test_targets_are_decided_on_the_interval(value, low, high, verdict):
    """The only target is portable (the MLP epoch against its own floor, not ratios to the notebook), and it is
    met or missed only when its 95 % interval clears the bound, as a paired comparison is decided."""
    (check,) = targets.check_targets([floor_row(value, low, high, notebook_over_mnistbench=2.0)])
    assert (check.what, check.bound, check.verdict) == ("mlp/manual mnistbench_over_floor", "<= 1.3", verdict)
    assert (check.value, check.note == "") == (value, verdict != "inconclusive")


def test_a_noisy_floor_is_named_beside_the_verdict():
    """The floor's rounds are the same GEMMs every round: their spread is the machine's noise, said with
    the verdict (which it does not change) from 10 % (IQR / median) on."""
    (noisy,) = targets.check_targets([floor_row(1.40, 1.35, 1.45, floor_spread=0.31)])
    (quiet,) = targets.check_targets([floor_row(1.40, 1.35, 1.45, floor_spread=0.04)])
    assert noisy.verdict == quiet.verdict == "missed"
    assert "noisy machine" in noisy.note and "31%" in noisy.note and quiet.note == ""
    (both,) = targets.check_targets([floor_row(1.31, 1.27, 1.35, floor_spread=0.2)])
    assert both.note.startswith("the interval straddles the bound") and "noisy machine" in both.note


def test_an_inconclusive_target_says_how_many_rounds_would_decide():
    """Straddling the bound, the verdict says about how many rounds would clear it at the spread seen (the
    interval shrinking as 1/sqrt(rounds)); with the estimate on the bound it promises no number."""
    sd_log, rounds, value = 0.1, 7, 1.35
    half_width = scipy.stats.t.ppf(0.975, rounds - 1) * sd_log / math.sqrt(rounds)
    low, high = value * math.exp(-half_width), value * math.exp(half_width)
    (check,) = targets.check_targets([floor_row(value, low, high, repeats=rounds)])
    needed = targets.rounds_to_decide(value, low, high, 1.3, rounds)
    assert check.verdict == "inconclusive" and f"--repeats {needed} (this run had 7 rounds)" in check.note
    # what the number means: runs of that many rounds at this spread clear the bound ~90 % of the time
    rng = numpy.random.default_rng(0)

    def share_deciding(n):
        logs = rng.normal(math.log(value), sd_log, size=(400, n))
        lows = logs.mean(axis=1) - scipy.stats.t.ppf(0.975, n - 1) * logs.std(axis=1, ddof=1) / math.sqrt(n)
        return float((lows > math.log(1.3)).mean())

    assert 0.8 < share_deciding(needed) and share_deciding(rounds) < 0.2
    on_bound = targets.decide_target(1.3, 1.2, 1.4, "max", 1.3, floor_ratio=True, rounds=9)
    assert on_bound[0] == "inconclusive" and "sits on it" in on_bound[1] and "--repeats" not in on_bound[1]
    # next to the bound the number runs away (1.31 (1.24-1.39) at 30 rounds: thousands): not asked for as --repeats
    near = targets.decide_target(1.31, 1.24, 1.39, "max", 1.3, floor_ratio=True, rounds=30)
    far_off = targets.rounds_to_decide(1.31, 1.24, 1.39, 1.3, 30)
    assert far_off > targets.WORTH_ASKING * 30 and near[0] == "inconclusive"
    assert "--repeats" not in near[1] and "within 0.8% of it" in near[1] and f"about {far_off} rounds" in near[1]


def test_a_target_holds_the_familys_own_network_only():
    """speed --hidden measures another network: the target, set for the family's 784-512-128-10, is not
    applied to it; a row that does not say its hidden sizes (an older speed.csv) is held to it."""
    row = floor_row(1.20, 1.15, 1.25, repeats=9)
    assert [c.verdict for c in targets.check_targets([{**row, "hidden": "512,128"}])] == ["met"]
    assert targets.check_targets([{**row, "hidden": "8"}]) == []
    assert [c.verdict for c in targets.check_targets([row])] == ["met"]


def test_the_step_alone_is_a_target_of_its_own():
    """The epoch and the step alone are each held to the bound, side by side; the step's blocks follow
    --repeats (at least stepfloor.ROUNDS), so its straddling note names the --repeats that would decide
    (none for a row that does not say how many blocks it had), and a step under its floor decides nothing."""
    row = floor_row(1.37, 1.33, 1.40, repeats=40, step_over_floor=1.25, step_over_floor_ci_low=1.22,
                    step_over_floor_ci_high=1.29)
    epoch, step = targets.check_targets([row])
    assert (epoch.what, epoch.verdict) == ("mlp/manual mnistbench_over_floor", "missed")
    assert (step.what, step.verdict, step.bound) == ("mlp/manual step_over_floor", "met", "<= 1.3")
    _, straddling = targets.check_targets([{**row, "step_over_floor": 1.3, "step_over_floor_ci_low": 1.2,
                                            "step_over_floor_ci_high": 1.4}])
    assert straddling.verdict == "inconclusive" and "--repeats" not in straddling.note
    _, close = targets.check_targets([{**row, "step_over_floor": 1.27, "step_over_floor_ci_low": 1.23,
                                       "step_over_floor_ci_high": 1.31, "step_rounds": 30}])
    needed = targets.rounds_to_decide(1.27, 1.23, 1.31, 1.3, 30)
    assert close.verdict == "inconclusive" and f"--repeats {needed} (this run had 30 rounds)" in close.note
    assert stepfloor.rounds_for(needed) == needed > stepfloor.ROUNDS == stepfloor.rounds_for(5)
    _, under = targets.check_targets([{**row, "step_over_floor": 0.9, "step_over_floor_ci_low": 0.85,
                                       "step_over_floor_ci_high": 0.95}])
    assert under.verdict == "inconclusive" and under.note.startswith("under 1")


def test_min_targets_and_rows_without_one():
    assert targets.decide_target(2.1, 2.05, 2.2, "min", 2.0, floor_ratio=False)[0] == "met"
    assert targets.decide_target(1.9, 1.8, 1.95, "min", 2.0, floor_ratio=False)[0] == "missed"
    assert targets.decide_target(2.0, 1.9, 2.1, "min", 2.0, floor_ratio=False)[0] == "inconclusive"
    assert targets.decide_target(0.9, 0.85, 0.95, "max", 1.3, floor_ratio=False)[0] == "met"  # no floor: no bound of 1
    assert targets.check_targets([{"family": "logistic", "impl": "manual", "notebook_over_mnistbench": 1.0}]) == []


def test_the_fastest_floor_is_measured_next_to_the_epoch(tiny_env, quick, monkeypatch):
    """Around each mnistbench epoch every exact floor is measured before and after it, mirrored; from the
    second round on the fastest so far (the one the epoch is held to) sits right next to the epoch."""
    seconds = {"mm-fp32": 0.1, "onednn-fp32": 0.3}  # made up: onednn the slower, whatever this CPU says
    calls = []

    def fake_floor(item, *args):
        calls.append(item.backend.name)
        return seconds.get(item.backend.name, 1.0)

    def logged_epoch(*args):
        calls.append("epoch")
        return epoch(*args)

    epoch = train.train_epoch
    monkeypatch.setattr(floor, "epoch_seconds", fake_floor)
    monkeypatch.setattr(train, "train_epoch", logged_epoch)
    rows = speed.speed(["mlp"], impls=["manual"], repeats=3, hidden=(8,))
    exact = [r["backend"] for r in rows[0]["_floors"] if r["exact"] and r["gflops"] == r["gflops"]]
    if not {"mm-fp32", "onednn-fp32"} <= set(exact):
        pytest.skip("needs both exact CPU kernels")
    around = [(calls[i - 1], calls[i + 1]) for i, name in enumerate(calls) if name == "epoch"]
    assert len(around) == 3 and around[1:] == [("mm-fp32", "mm-fp32")] * 2, calls
    assert rows[0]["floor_backend"] == "mm-fp32" and rows[0]["floor_s"] == pytest.approx(0.1)


def test_step_over_floor_pairs_blocks_of_steps_with_blocks_of_the_floor():
    """A made-up step twice as long as its made-up floor (sleeps: the pairing is under test, not torch's
    speed) comes out about 2x, with its interval; the steps take the batches in turn, and every call counts."""
    seen, floors = [], []

    class SleepyModel:
        def step(self, x, y):
            seen.append(int(x))
            time.sleep(0.010)

    def floor_run():
        floors.append(1)
        time.sleep(0.005)

    batches = [(i, i) for i in range(5)]
    comparison = stepfloor.step_over_floor(SleepyModel(), batches, floor_run, "cpu", rounds=5, block=2)
    # long sleeps, so that a loaded machine's oversleeping (~1 ms) cannot pull 2x below the bound
    assert 1.4 < comparison.ratio < 2.6 and comparison.ci_low <= comparison.ratio <= comparison.ci_high
    assert comparison.n_pairs == 5 and len(floors) == len(seen) == 2 * 6  # the first, untimed block included
    assert seen[:8] == [0, 1, 0, 1, 2, 3, 4, 0]


def test_run_over_floor_sizes_its_blocks_to_the_floor_and_pairs_them():
    """fastest-each against the floor: blocks of ~BLOCK_SECONDS of the floor (a 7.5 ms floor: 4 runs a
    block); a run half as long comes out about 0.5x,
    with its interval."""
    calls = {"run": 0, "floor": 0}

    def floor_run():
        calls["floor"] += 1
        time.sleep(0.0075)

    def run():
        calls["run"] += 1
        time.sleep(0.00375)

    comparison = stepfloor.run_over_floor(run, floor_run, "cpu", rounds=4)
    assert 0.35 < comparison.ratio < 0.7 and comparison.ci_low <= comparison.ratio <= comparison.ci_high
    block = calls["run"] // 5  # 5 blocks of each: the first untimed, then one per round
    assert comparison.n_pairs == 4 and calls == {"run": 5 * block, "floor": 2 + 5 * block}  # 2 to size the block
    assert block in (3, 4)  # ~30 ms of a 7.5 ms floor (3 if a loaded machine oversleeps past 10 ms)


def test_cli_speed_prints_the_target_with_its_interval(tiny_env, tmp_path, quick, capsys):
    """The MLP's floor target is printed with the interval that decided it (on tiny data: any verdict), for
    the family's own network only."""
    args = ["speed", "--family", "mlp", "--impl", "manual", "--repeats", "3", "--out", str(tmp_path)]
    assert cli.main(args) == 0
    out = capsys.readouterr().out
    assert re.search(r"mlp/manual: [\d.]+ GFLOP/s \(\d+% of the floor's\); alone \d+\.\d\d× \(\d+\.\d\d–\d+\.\d\d\) "
                     r"the floor; GEMMs", out), out
    assert re.search(r"\n  (met|MISSED|inconclusive) +mlp/manual mnistbench_over_floor = \d+\.\d\d "
                     r"\(\d+\.\d\d–\d+\.\d\d\), target <= 1\.3", out), out
    assert re.search(r"\n  (met|MISSED|inconclusive) +mlp/manual step_over_floor = \d+\.\d\d "
                     r"\(\d+\.\d\d–\d+\.\d\d\), target <= 1\.3", out), out
    bound = re.search(r"lower precision, at most: .* take (\d+\.\d\d)× \((\d+\.\d\d)–(\d+\.\d\d)\) the exact "
                      r"floor's time, in paired blocks: a bf16 or mixed step can speed its matmuls up (\d+\.\d\d)× "
                      r"\((\d+\.\d\d)–(\d+\.\d\d)\) at most here, at batch 64", out)
    assert bound, out
    value, low, high, speedup, slowest, fastest = map(float, bound.groups())
    # each figure printed to 2 decimals: 1/x of a rounded x is off by up to 0.005/x², plus its own rounding
    slack = 0.005 / min(low, value, high) ** 2 + 0.0051
    assert low <= value <= high and speedup == pytest.approx(1 / value, abs=slack)
    assert (slowest, fastest) == (pytest.approx(1 / high, abs=slack), pytest.approx(1 / low, abs=slack))
    (row,) = list(csv.DictReader(open(tmp_path / "speed.csv")))
    assert float(row["fastest_each_over_floor"]) == pytest.approx(value, abs=0.005)
    floors = {r["backend"]: r for r in csv.DictReader(open(tmp_path / "floor.csv"))}
    assert floors["fastest-each"]["precision"] == "mixed" and floors["fastest-each"]["exact"] == "False"
    assert row["hidden"] == "512,128"
    # another network is measured the same way, and held to no target
    assert cli.main([*args, "--hidden", "8"]) == 0
    out = capsys.readouterr().out
    assert "alone" in out and "target <=" not in out
    assert "target: none at --hidden 8; the target is set for the family's own network" in out


def test_cli_speed_and_throughput_write_csv(tiny_env, tmp_path, quick, capsys):
    assert (
        cli.main(
            [
                "speed",
                "--family",
                "logistic",
                "--impl",
                "handgrad,manual",
                "--repeats",
                "1",
                "--out",
                str(tmp_path),
            ]
        )
        == 0
    )
    out = capsys.readouterr().out
    assert "nb/mb" in out
    header, rows = read_csv(tmp_path / "speed.csv")
    assert header == speed.SPEED_COLUMNS and [r["impl"] for r in rows] == ["manual", "handgrad"]
    assert [r["step_over_floor"] for r in rows] == ["", ""]  # no floor for a linear model
    assert (
        cli.main(
            [
                "throughput",
                "--family",
                "softmax",
                "--impl",
                "handgrad",
                "--batch-size",
                "16,64",
                "--samples",
                "128",
                "--repeats",
                "1",
                "--out",
                str(tmp_path),
            ]
        )
        == 0
    )
    header, rows = read_csv(tmp_path / "throughput.csv")
    required = {
        "family",
        "impl",
        "device",
        "batch_size",
        "train_samples_per_s",
        "epoch_seconds",
        "threads",
        "torch",
    }
    assert required <= set(header)
    assert [(r["device"], int(r["batch_size"])) for r in rows] == [("cpu", 16), ("cpu", 64)]
    assert all(float(r["train_samples_per_s"]) > 0 for r in rows)
    assert float(rows[0]["epoch_seconds"]) == pytest.approx(
        int(rows[0]["train_size"]) / float(rows[0]["train_samples_per_s"])
    )


@pytest.mark.parametrize(
    "argv",
    [
        ["speed", "--impl", "sklearn"],
        ["speed", "--family", "perceptron"],
        ["speed", "--repeats", "0"],
        ["speed", "--threads", "0"],
        ["speed", "--batch-size", "0"],
        ["speed", "--notebook-batches", "-1"],
        ["throughput", "--batch-size", "0"],
        ["throughput", "--samples", "0"],
    ],
)
def test_cli_user_mistakes_exit_2(tiny_env, tmp_path, argv, capsys):
    assert cli.main([*argv, "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("mnistbench") and len(err.strip().splitlines()) == 1
    assert not any(tmp_path.iterdir())  # nothing written


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the error without CUDA")
def test_cli_cuda_without_cuda_exits_2(tiny_env, tmp_path):
    assert cli.main(["speed", "--device", "cuda", "--out", str(tmp_path)]) == 2
    assert cli.main(["throughput", "--device", "cpu,cuda", "--out", str(tmp_path)]) == 2


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
def test_speed_and_throughput_on_cuda(tiny_env, quick):
    rows = speed.speed(
        ["softmax", "mlp"],
        impls=["handgrad", "manual"],
        repeats=1,
        notebook_batches=2,
        hidden=(8,),
        device="cuda",
    )
    assert all(r["device"].startswith("cuda") and r["mnistbench_s"] > 0 for r in rows)
    points = throughput.throughput(
        ["softmax"], ["handgrad"], batch_sizes=[64], samples=128, repeats=1, devices=["cpu", "cuda"]
    )
    assert [p["device"][:4] for p in points] == ["cpu", "cuda"]
