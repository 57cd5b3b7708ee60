"""The timing model: what train_seconds and eval_seconds hold, the first epoch apart, per-run spread, and
the timing_unstable rule. A fake clock that only the fake model advances makes every figure exact, so none
of these tests depends on the speed or load of the machine."""
from __future__ import annotations

import math
import time

import pytest
import torch

from mnistbench import data, env, runtiming, stats, train
from mnistbench.config import for_family
from mnistbench.models.contract import ModeSwitches
from mnistbench.result import RunResult

STEP_SECONDS = 0.002  # what one update step costs on the fake clock (the first epoch's cost twice that)
LOGITS_SECONDS = 0.005  # what one logits() call costs: evaluation only
QUIET = {"load_avg_before": 0.1, "cpu_steal_fraction": 0.0, "other_load": 0.05, "cpu_cores": 2,
         "torch_threads": 2, "cpu_governor": None}


class FakeClock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


class SleepyModel(ModeSwitches):
    """Each step costs STEP_SECONDS (twice that in its first epoch), each logits() LOGITS_SECONDS; its
    validation loss and accuracy per epoch can be scripted (val_script: [(loss, acc), ...])."""

    def __init__(self, clock, steps_per_epoch, val=None, val_script=None):
        self.clock, self.steps_per_epoch, self.steps = clock, steps_per_epoch, 0
        self.val, self.val_script = val, val_script
        self.params = {"w": torch.zeros(())}

    def epoch(self) -> int:
        return max(math.ceil(self.steps / self.steps_per_epoch), 1)

    def step(self, x, y):
        self.steps += 1
        self.clock.sleep(STEP_SECONDS * (2 if self.steps <= self.steps_per_epoch else 1))
        return torch.tensor(1.0), torch.zeros(len(y), 10)

    def logits(self, x):
        self.clock.sleep(LOGITS_SECONDS)
        if self.val_script and self.val is not None and x.data_ptr() == self.val.x.data_ptr():
            correct = round(self.val_script[self.epoch() - 1][1] * len(x))  # the first `correct` right
            right = torch.nn.functional.one_hot(self.val.y, 10).float()
            return torch.cat([right[:correct], right[correct:].roll(1, dims=1)])
        return torch.zeros(len(x), 10)

    def loss(self, logits, y):
        if self.val_script and len(y) == len(self.val.y):
            return torch.tensor(self.val_script[self.epoch() - 1][0])
        return torch.tensor(1.0)

    def state_dict(self):
        return {"steps": self.steps}

    def load_state_dict(self, state):
        self.steps = state["steps"]


@pytest.fixture
def clock(monkeypatch):
    fake = FakeClock()
    monkeypatch.setattr(time, "perf_counter", fake)
    return fake


def run(cfg, splits) -> dict:
    """One run's result as the flat row load_results() gives it."""
    return train.run_one(cfg, splits).to_row()


def setup(tiny_root, epochs, batch_size=100, **config):
    cfg = for_family("softmax", "manual", epochs=epochs, batch_size=batch_size, **config)
    splits = data.load(cfg, tiny_root)
    return cfg, splits, math.ceil(len(splits.train) / batch_size)


def test_train_seconds_hold_the_steps_and_eval_seconds_the_evaluations(tiny_root, clock, monkeypatch):
    cfg, splits, steps = setup(tiny_root, epochs=4)
    built = []
    monkeypatch.setattr(train.models, "build", lambda *a, **k: built.append(SleepyModel(clock, steps)) or built[-1])
    result = run(cfg, splits)
    assert len(built) == 2 and built[0].steps == 3  # warm-up's throwaway model: stepped, never timed
    # every step is inside train_seconds (the first epoch's at twice the cost), nothing else is
    assert result["train_seconds"] == pytest.approx(steps * STEP_SECONDS * (2 + 3))
    assert [r["train_seconds"] for r in result["history"]] == pytest.approx(
        [2 * steps * STEP_SECONDS] + [steps * STEP_SECONDS] * 3)
    # eval_seconds: one validation logits() per epoch plus the test set's, and no step
    assert result["eval_seconds"] == pytest.approx((4 + 1) * LOGITS_SECONDS)
    assert [r["eval_seconds"] for r in result["history"]] == pytest.approx([LOGITS_SECONDS] * 4)


def test_the_first_epoch_is_apart_and_the_steady_state_has_its_spread(tiny_root, clock, monkeypatch):
    cfg, splits, steps = setup(tiny_root, epochs=4)
    monkeypatch.setattr(train.models, "build", lambda *a, **k: SleepyModel(clock, steps))
    result = run(cfg, splits)
    epoch = steps * STEP_SECONDS
    assert result["first_epoch_seconds"] == pytest.approx(2 * epoch)
    assert result["epoch_seconds_median"] == pytest.approx(epoch) and result["epoch_seconds_n"] == 3
    assert result["epoch_seconds_iqr"] == pytest.approx(0) and result["iqr_over_median"] == pytest.approx(0)
    assert result["epoch_seconds_ci_low"] == pytest.approx(epoch) == result["epoch_seconds_ci_high"]
    # samples/s from the steady median, not from train_seconds (which holds the slow first epoch)
    assert result["train_samples_per_s"] == pytest.approx(len(splits.train) / epoch)
    assert result["train_samples_per_s"] > len(splits.train) * 4 / result["train_seconds"]


def test_best_val_acc_is_the_accuracy_of_the_best_epoch(tiny_root, clock):
    cfg, splits, steps = setup(tiny_root, epochs=3)
    # epoch 2 has the lowest validation loss; epoch 3 the highest accuracy
    model = SleepyModel(clock, steps, val=splits.val, val_script=[(0.5, 0.80), (0.4, 0.85), (0.6, 0.95)])
    *_, fitted = train.timed_epochs(model, splits, cfg)
    assert [e.val_acc for e in fitted.history] == pytest.approx([0.80, 0.85, 0.95], abs=1 / len(splits.val))
    assert fitted.best_epoch == 2
    result = RunResult(cfg, "ok", "r", "t", history=fitted.history, best_epoch=fitted.best_epoch)
    assert result.to_row()["best_val_acc"] == fitted.history[1].val_acc


def test_shuffle_buffers_are_touched_before_the_first_timed_epoch():
    x, y = torch.randn(300, 7), torch.arange(300)
    x_buffer, y_buffer = train.shuffle_buffers(x, y)
    assert torch.equal(x_buffer, x) and torch.equal(y_buffer, y)  # written through once, untimed
    assert x_buffer.data_ptr() != x.data_ptr()  # a buffer of its own, which the epochs overwrite


def test_one_steady_epoch_says_so_without_an_interval():
    figures = runtiming.epoch_figures([0.3, 0.2], samples_per_epoch=1000)
    assert figures["first_epoch_seconds"] == 0.3 and figures["epoch_seconds_n"] == 1
    assert figures["epoch_seconds_median"] == 0.2 and figures["train_samples_per_s"] == pytest.approx(5000)
    assert all(figures[k] is None for k in ("epoch_seconds_ci_low", "epoch_seconds_ci_high", "epoch_seconds_iqr",
                                            "train_samples_per_s_ci_low"))


def test_samples_per_s_interval_comes_from_the_median_interval():
    seconds = [0.9, 0.50, 0.52, 0.49, 0.51, 0.50, 0.53, 0.48]
    figures = runtiming.epoch_figures(seconds, samples_per_epoch=1000)
    summary = stats.timing_summary(seconds[1:])
    assert figures["epoch_seconds_n"] == 7 and figures["epoch_seconds_median"] == summary["median"]
    assert figures["train_samples_per_s_ci_low"] == pytest.approx(1000 / summary["ci_high"])
    assert figures["train_samples_per_s_ci_high"] == pytest.approx(1000 / summary["ci_low"])
    assert figures["train_samples_per_s_ci_low"] < figures["train_samples_per_s"] < figures[
        "train_samples_per_s_ci_high"]


def test_steady_epochs_on_a_quiet_machine_are_stable():
    flags = runtiming.timing_flags([0.9, 0.50, 0.51, 0.50, 0.49], QUIET)
    assert flags["timing_unstable"] is False and flags["timing_unstable_reason"] is None


def test_a_few_outlier_epochs_are_noise_but_a_hog_for_a_third_of_the_run_flags_it():
    quiet = [0.5, 0.51, 0.49, 0.5, 0.52, 0.5, 0.49, 0.51, 0.85, 0.5, 0.5, 0.49, 0.51, 0.5, 0.5]
    flags = runtiming.timing_flags([1.0] + quiet, QUIET)  # a slow first epoch is not counted either
    assert flags["timing_unstable"] is False and flags["severe_outliers"] == 1
    hogged = quiet[:10] + [0.9] * 5
    flags = runtiming.timing_flags([1.0] + hogged, QUIET)
    assert flags["timing_unstable"] is True and "drift" in flags["timing_unstable_reason"]
    assert any(flags["timing_unstable_reason"].startswith(label) for label in runtiming.REASON_LABELS)


@pytest.mark.parametrize("noise, reason", [
    ({"cpu_steal_fraction": 0.05}, "CPU steal 5.0 %"),
    ({"other_load": 1.4}, "other processes busy: 1.4 of 2 cores"),
    ({"other_load": None, "load_avg_before": 1.6}, "load average 1.60 on 2 cores"),
])
def test_steal_or_load_make_a_run_unstable(noise, reason):
    flags = runtiming.timing_flags([0.5, 0.5, 0.5, 0.5], {**QUIET, **noise})
    assert flags["timing_unstable"] is True and flags["timing_unstable_reason"].startswith(reason)
    assert any(flags["timing_unstable_reason"].startswith(label) for label in runtiming.REASON_LABELS)


def test_the_load_before_is_not_held_against_a_run_when_its_own_load_is_measured():
    # a study's previous run leaves this process's own load in the load average; others were quiet
    flags = runtiming.timing_flags([0.5, 0.5, 0.5], {**QUIET, "load_avg_before": 1.9, "other_load": 0.1})
    assert flags["timing_unstable"] is False


def write_stat(path, user, system, idle, steal):
    path.write_text(f"cpu  {user} 0 {system} {idle} 0 0 0 {steal} 0 0\ncpu0 1 2 3 4 5 6 7 8 9 10\nintr 5\n")
    return path


def test_steal_and_others_load_from_proc_stat(tmp_path):
    before = env.cpu_times(write_stat(tmp_path / "a", user=1000, system=200, idle=5000, steal=10))
    after = env.cpu_times(write_stat(tmp_path / "b", user=1300, system=300, idle=5480, steal=30))
    assert before == {"user": 1000, "nice": 0, "system": 200, "idle": 5000, "iowait": 0, "irq": 0,
                      "softirq": 0, "steal": 10}
    assert env.steal_fraction(before, after) == pytest.approx(20 / 900)  # of all 900 jiffies
    # 400 busy jiffies = 4 s at 100 Hz; this process used 1 s of them over 2 s of wall time: others 1.5 cores
    assert env.other_load(before, after, own_seconds=1.0, wall_seconds=2.0, ticks_per_second=100) == 1.5
    assert env.cpu_times(tmp_path / "missing") is None and env.steal_fraction(None, after) is None
    assert env.other_load(None, after, 1.0, 2.0, 100) is None


def test_governor_where_readable(tmp_path):
    (tmp_path / "scaling_governor").write_text("performance\n")
    assert env.cpu_governor(tmp_path / "scaling_governor") == "performance"
    assert env.cpu_governor(tmp_path / "absent") is None


def test_a_real_run_records_its_noise(tiny_root):
    cfg = for_family("softmax", "manual", epochs=3)
    result = run(cfg, data.load(cfg, tiny_root))
    assert result["cpu_cores"] >= 1 and result["torch_threads"] == torch.get_num_threads()
    assert isinstance(result["timing_unstable"], bool)
    assert (result["timing_unstable_reason"] is None) == (not result["timing_unstable"])
    assert result["epoch_seconds_n"] == 2 and result["first_epoch_seconds"] == result["history"][0]["train_seconds"]


def test_scikit_learn_fit_time_is_fit_seconds_not_samples_per_s(tiny_root):
    cfg = for_family("logistic", "sklearn")
    result = run(cfg, data.load(cfg, tiny_root))
    assert result["fit_seconds"] > 0 and result["history"][0]["fit_seconds"] == result["fit_seconds"]
    assert result["train_seconds"] is None and result["train_samples_per_s"] is None
    assert result["epoch_seconds_median"] is None
