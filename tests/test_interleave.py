"""Interleaved runs: lock-step rounds of equal blocks in a seeded shuffled order, the same weights and
histories as apart, runs leaving the group when they stop, paired verdicts, and the worker protocol."""
from __future__ import annotations

import io
import json
from dataclasses import replace

import pytest
import torch
from conftest import make_result

import mnistbench
from mnistbench import worker
from mnistbench.executors import Executor
from mnistbench.reporting import compare
from mnistbench.result import Epoch

INTERLEAVE = Executor("interleave", block_steps=3)


def _by_seed(trained):
    return {r.config.seed: r for r in trained}


def test_interleaved_runs_learn_exactly_what_they_learn_apart(tiny_env):
    options = {"seed": [0, 1], "epochs": 3, "lr": [0.1], "save": False}
    apart = _by_seed(mnistbench.sweep("mlp", "manual", hidden=[(32,)], **options))
    together = _by_seed(mnistbench.sweep("mlp", "manual", hidden=[(32,)], executor=INTERLEAVE, **options))
    for seed in (0, 1):
        a, b = apart[seed], together[seed]
        assert [(e.train_loss, e.val_loss, e.val_acc) for e in a.history] == \
               [(e.train_loss, e.val_loss, e.val_acc) for e in b.history]
        assert a.test_acc == b.test_acc and a.confusion == b.confusion and a.interleave is None
    groups = {r.interleave.group for r in together.values()}
    assert len(groups) == 1
    for result in together.values():
        rounds = [b.round for b in result.interleave.blocks]
        assert rounds == list(range(1, len(rounds) + 1))  # round 0, the warm-up, is not recorded
        assert all(b.steps == 3 for b in result.interleave.blocks[:-1])
        # the epochs' timed seconds are the blocks' (and the untimed warm-up round's) pieces
        assert sum(result.epoch_seconds) >= sum(b.seconds for b in result.interleave.blocks)


def test_blocks_are_calibrated_to_the_slowest_run_and_the_shortest_gets_its_rounds():
    from mnistbench.interleave import MIN_ROUNDS, calibrate

    assert calibrate([(0.001, 10_000), (0.0001, 10_000)], None) == 100  # 0.1 s of the slowest's steps
    assert calibrate([(0.001, 10_000), (0.0001, 357)], None) == 357 // MIN_ROUNDS
    assert calibrate([(0.5, 10)], None) == 1 and calibrate([(0.001, 100)], 7) == 7


def test_a_run_that_stops_leaves_the_group_and_the_others_go_on(tiny_env):
    configs = mnistbench.plan("softmax", "manual", lists=True, lr=[0.1, 50.0], epochs=4)
    trained = [e.result for e in mnistbench.api.execute(configs, save=False, executor=INTERLEAVE)
               if e.kind == "done"]
    by_lr = {r.config.lr: r for r in trained}
    assert by_lr[50.0].status == "diverged" and by_lr[0.1].epochs_run == 4
    assert len(by_lr[0.1].interleave.blocks) > len(by_lr[50.0].interleave.blocks)


def test_each_block_runs_under_its_own_thread_count_and_the_count_is_restored(tiny_env):
    before = torch.get_num_threads()
    trained = mnistbench.sweep("logistic", "manual", threads=[1, 2], epochs=2, save=False, executor=INTERLEAVE)
    assert sorted(r.env["threads"] for r in trained) == [1, 2]
    assert torch.get_num_threads() == before


def test_the_round_order_is_reshuffled_from_its_seed(tiny_env, monkeypatch):
    from mnistbench import interleave

    orders = []
    real = interleave.local_lane

    def spy(cfg, *args):
        lane = real(cfg, *args)
        value = next(lane)
        sent = yield value
        while True:
            orders.append((sent[0], cfg.seed))
            sent = yield lane.send(sent)

    monkeypatch.setattr(interleave, "local_lane", spy)
    mnistbench.sweep("logistic", "manual", seed=[0, 1, 2], epochs=2, save=False,
                     executor=replace(INTERLEAVE, order_seed=7))
    per_round = {}
    for round_, seed in orders:
        per_round.setdefault(round_, []).append(seed)
    full = [tuple(seeds) for seeds in per_round.values() if len(seeds) == 3]
    assert len(set(full)) > 1  # not the same order every round
    again = []
    orders_first, orders[:] = list(orders), []
    mnistbench.sweep("logistic", "manual", seed=[0, 1, 2], epochs=2, save=False,
                     executor=replace(INTERLEAVE, order_seed=7))
    assert orders == orders_first and again == []  # the same seed, the same orders


def _blocks_with(ratio: float, drift, noise):
    return [d * n for d, n in zip(drift, noise)], [ratio * d * n2 for d, n2 in zip(drift, noise[::-1])]


def test_compare_pairs_runs_of_one_group_by_round(tmp_path):
    drift = [1.0, 1.3, 0.8, 1.25, 0.75, 1.1, 0.9, 1.3, 0.7, 1.0, 1.2, 0.85] * 2
    noise = [1.0, 1.01, 0.99, 1.02, 0.98, 1.0] * 4
    base, slow = _blocks_with(1.10, [0.2 * d for d in drift], noise)
    results = [make_result("mlp", "manual", seed=0, blocks=base, group="g"),
               make_result("mlp", "manual", seed=1, blocks=slow, group="g")]
    for result in results:
        mnistbench.results.save(result, tmp_path)
    frame = compare.compare(tmp_path, by="seed")
    row = frame.iloc[0]
    assert row["timing_from"] == "24 rounds paired" and row["verdict"] == "slower"
    assert row["ratio"] == pytest.approx(1.10, rel=0.02)
    same = [make_result("mlp", "manual", seed=s, blocks=[0.2 * d * n for d, n in zip(drift, noise)], group="h")
            for s in (0, 1)]
    other = tmp_path / "aa"
    for result in same:
        mnistbench.results.save(result, other)
    assert compare.compare(other, by="seed").iloc[0]["verdict"] == "equivalent"


def test_one_run_a_side_measured_apart_is_inconclusive(tmp_path):
    mnistbench.results.save(make_result(epoch_seconds=(0.5,) + (0.4,) * 9), tmp_path / "a")
    mnistbench.results.save(make_result(epoch_seconds=(0.5,) + (0.6,) * 9), tmp_path / "b")
    row = compare.compare(tmp_path / "a", tmp_path / "b").iloc[0]
    assert row["verdict"] == "inconclusive" and "unmeasured" in row["verdict_text"]


def test_the_worker_protocol_trains_blocks_and_returns_the_result(tiny_env):
    cfg = mnistbench.plan("logistic", "manual", epochs=2)[0]
    requests = [{"op": "hello"},
                {"op": "start", "lane": 0, "config": cfg.to_dict(), "group": "g", "order_seed": 0,
                 "data_root": str(tiny_env)}]
    requests += [{"op": "block", "lane": 0, "round": r, "steps": 4} for r in range(30)]
    replies = []
    worker.serve(io.StringIO("\n".join(json.dumps(r) for r in requests) + "\n"), replies.append)
    assert replies[0]["torch"] == torch.__version__ and replies[1]["step_seconds"] > 0
    finished = [r for r in replies[2:] if r.get("result")]
    assert len(finished) == 1 and "error" in replies[-1]  # blocks asked for after the end: an error each
    result = mnistbench.resultfile.parse(finished[0]["result"])
    assert result.interleave.group == "g" and result.epochs_run == 2
    assert replies[1]["total_steps"] == 2 * -(-result.split_sizes["train"] // 64)  # 2 epochs of batches of 64


class FakeWorker:
    """A worker that answers from a script, as a worker process would."""

    def __init__(self):
        self.asked, self.lanes = [], 1

    def ask(self, message):
        self.asked.append(message)
        if message["op"] == "start":
            return {"step_seconds": 0.001, "total_steps": 30}
        last = len(self.asked) >= 3
        epoch = {**vars(Epoch(1, 0.5, 0.8, 0.6, 0.85, 0.3, 0.01))}
        return {"seconds": 0.2, "steps": 5, "epochs": [epoch] if last else [],
                "result": make_result().to_json() if last else None}

    def release(self):
        self.lanes -= 1


def test_a_remote_lane_speaks_the_protocol():
    fake = FakeWorker()
    lane = worker.remote_lane(fake, 3, make_result().config, "g", 0, None)
    assert next(lane) == (0.001, 30)
    first = lane.send((1, 5))
    done = lane.send((2, 5))
    assert (first.seconds, first.steps, first.result) == (0.2, 5, None)
    assert done.result is not None and done.epochs[0].train_seconds == 0.3
    assert [m["op"] for m in fake.asked] == ["start", "block", "block"] and fake.asked[2]["round"] == 2
    lane.close()
    assert fake.lanes == 0


def test_an_environment_without_mnistbench_is_a_one_line_mistake(tmp_path):
    with pytest.raises(mnistbench.ConfigError, match="--python"):
        worker.start(str(tmp_path / "no-python"))
