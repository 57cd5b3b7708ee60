"""The matmul floor: backends found on the device, FLOP counts, the floor table, the choice of the fastest
exact backend. No timing is asserted."""
from __future__ import annotations

import math
import time

import pytest
import torch

from mnistbench.models import precision
from mnistbench.perf import backends, floor

SIZES = [784, 16, 10]


def test_cpu_offers_mkl_first_and_onednn_when_torch_has_it():
    names = [b.name for b in backends.available("cpu")]
    assert names[0] == "mm-fp32"
    assert ("onednn-fp32" in names) == torch.backends.mkldnn.is_available()
    assert "mm-bf16" in names and all(b.device_type == "cpu" for b in backends.available("cpu"))


def test_cuda_backends_are_listed_for_a_cuda_device():
    names = [b.name for b in backends.available("cuda")]
    assert names == ["cublas-fp32", "cublas-tf32", "cublas-bf16", "cublas-fp16", backends.FASTEST_EACH]
    assert [b.precision for b in backends.available("cuda")] == ["float32", "tf32", "bfloat16", "float16", "mixed"]


def test_fastest_each_runs_every_product_on_its_fastest_backend():
    """The bound on what any precision could gain: per product the candidate that ran it fastest (sleeps
    here, made up, so that the choice is certain), the products in the step's order, never exact."""
    gemms = floor.step_gemms([784, 16, 10], 4, "cpu")[:2]
    calls = []

    def sleepy(name, slow_rows):
        def prepare(pairs):
            (left, right), = pairs

            def run():
                calls.append((name, left.shape[0]))
                if left.shape[0] == slow_rows:
                    time.sleep(0.002)
                return [left @ right]
            return run
        return backends.Backend(name, name, "float32", "cpu", prepare)

    def broken(pairs):
        raise RuntimeError("no primitive")

    candidates = [sleepy("a", 4), sleepy("b", 16), backends.Backend("c", "c", "float32", "cpu", broken)]
    item = backends.prepare(backends.Backend(backends.FASTEST_EACH, "mix", "mixed", "cpu",
                                             backends._fastest_each(candidates, "cpu")), gemms)
    calls.clear()
    products = item.run()
    assert calls == [("b", 4), ("a", 16)]  # product 0 (4 rows) is slow on a, product 1 (16 rows) on b
    assert all(torch.equal(product, left @ right) for product, (left, right) in zip(products, gemms))
    assert not item.exact and item.note == "chosen: b 1, a 1"


def test_step_gemms_have_the_mlp_steps_shapes():
    gemms = floor.step_gemms([784, 32, 16, 10], 8, "cpu")
    shapes = [(tuple(a.shape), tuple(b.shape)) for a, b in gemms]
    assert shapes == [((8, 784), (784, 32)), ((32, 8), (8, 784)),  # layer 1: forward, dW (no dX)
                      ((8, 32), (32, 16)), ((16, 8), (8, 32)), ((8, 16), (16, 32)),
                      ((8, 16), (16, 10)), ((10, 8), (8, 16)), ((8, 10), (10, 16))]
    flops = sum(2 * a.shape[0] * a.shape[1] * b.shape[1] for a, b in gemms)
    assert flops == floor.mlp_flops_per_sample([784, 32, 16, 10]) * 8


def test_training_flops_of_each_family():
    assert floor.training_flops_per_sample("mlp", 784, 10, (512, 128)) == floor.mlp_flops_per_sample([784, 512, 128, 10])
    assert floor.training_flops_per_sample("softmax", 784, 10) == 4 * 784 * 10
    assert floor.training_flops_per_sample("logistic", 784, 2) == 4 * 784  # one logit
    assert math.isnan(floor.training_flops_per_sample("someplugin", 784, 10))


def test_every_cpu_backend_runs_or_says_why_and_only_float32_is_exact():
    prepared = floor.prepare_all(SIZES, 64, "cpu")
    by_name = {p.backend.name: p for p in prepared}
    assert by_name["mm-fp32"].exact and by_name["mm-fp32"].max_rel_error < backends.EXACT_TOLERANCE
    for item in prepared:
        if item.run is None:
            assert item.note.startswith("skipped: ") and "\n" not in item.note
        elif item.backend.precision == "bfloat16":
            assert not item.exact and item.max_rel_error > backends.EXACT_TOLERANCE


def test_the_floor_table_says_bf16_is_emulated_on_a_cpu_without_bf16_hardware(monkeypatch):
    """On a CPU with neither AMX nor AVX512_BF16 (made up here) every bf16 row says it is emulated; where
    the hardware is there, none does; float32 rows never."""
    for emulated in (True, False):
        monkeypatch.setattr(precision, "bf16_emulated", lambda device_type="cpu", e=emulated: e)
        prepared = floor.prepare_all(SIZES, 16, "cpu")
        bf16 = [item for item in prepared if item.backend.precision == "bfloat16" and item.run is not None]
        assert bf16 and all((item.note == backends.EMULATED_NOTE) == emulated for item in bf16)
        assert all("emulated" not in item.note for item in prepared if item.backend.precision == "float32")


def test_a_raising_backend_is_skipped_with_a_note():
    def broken(gemms):
        raise RuntimeError("could not create a primitive descriptor. Run workload with hints")

    item = backends.prepare(backends.Backend("broken", "nothing", "float32", "cpu", broken),
                            floor.step_gemms(SIZES, 4, "cpu"))
    assert item.run is None and not item.exact
    assert item.note == "skipped: RuntimeError: could not create a primitive descriptor"


def test_a_float32_backend_with_a_bf16_error_is_not_exact():
    def sloppy(gemms):
        return lambda: [(a.bfloat16() @ b.bfloat16()).float() for a, b in gemms]

    item = backends.prepare(backends.Backend("fake-fp32", "bf16 in disguise", "float32", "cpu", sloppy),
                            floor.step_gemms(SIZES, 64, "cpu"))
    assert item.run is not None and not item.exact and item.note.startswith("not exact")


def fake_prepared(name, precision, error, runs=True):
    backend = backends.Backend(name, f"{name} kernel", precision, "cpu", None)
    return backends.Prepared(backend, (lambda: None) if runs else None, error, "" if runs else "skipped: x")


def test_best_exact_is_the_fastest_float32_backend_by_median():
    prepared = [fake_prepared("slow-fp32", "float32", 1e-7), fake_prepared("fast-fp32", "float32", 1e-7),
                fake_prepared("faster-bf16", "bfloat16", 4e-3), fake_prepared("gone", "float32", math.nan, False)]
    samples = {"slow-fp32": [2.0, 2.2, 1.8], "fast-fp32": [1.0, 5.0, 1.1], "faster-bf16": [0.3, 0.3, 0.3]}
    rows = floor.floor_rows(prepared, samples, epoch_gflop=10.0, batch_size=64)
    assert [r["backend"] for r in rows] == ["slow-fp32", "fast-fp32", "faster-bf16", "gone"]
    assert set(rows[0]) == set(floor.FLOOR_COLUMNS)
    assert rows[1]["floor_s"] == 1.1 and rows[1]["gflops"] == pytest.approx(10.0 / 1.1)
    assert (rows[1]["floor_min_s"], rows[1]["floor_max_s"]) == (1.0, 5.0)
    assert [r["exact"] for r in rows] == [True, True, False, False]
    assert rows[3]["rounds"] == 0 and math.isnan(rows[3]["floor_s"]) and rows[3]["note"] == "skipped: x"
    assert floor.best_exact(rows)["backend"] == "fast-fp32"  # bf16 is faster, but not exact
    assert floor.best_exact([r for r in rows if not r["exact"]]) is None


def test_floor_table_text_names_every_backend_and_its_columns():
    rows = floor.floor_rows([fake_prepared("a-fp32", "float32", 1e-7), fake_prepared("b-bf16", "bfloat16", 3e-3),
                             fake_prepared("c", "bfloat16", math.nan, False)],
                            {"a-fp32": [1.0, 1.2], "b-bf16": [2.0, 2.0]}, 10.0, 64)
    text = floor.floor_text(rows)
    header = text.splitlines()[0]
    for title in ("backend", "kernel", "precision", "exact", "GFLOP/s", "epoch floor s", "max rel error", "note"):
        assert title in header
    assert "a-fp32" in text and "yes" in text and "skipped: x" in text and "(1.00–1.20)" in text


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
def test_cuda_backends_run_and_tf32_is_not_exact():
    prepared = {p.backend.name: p for p in floor.prepare_all([784, 512, 128, 10], 64, "cuda")}
    assert prepared["cublas-fp32"].exact
    for name in ("cublas-tf32", "cublas-bf16", "cublas-fp16"):
        assert not prepared[name].exact


def test_study_floor_sums_the_floors_of_runs_with_one(monkeypatch):
    monkeypatch.setattr(floor, "backend_gflops", lambda *args, **kwargs: 100.0)  # no timing in a unit test
    from conftest import make_result

    # 1000 training images a run: 2 epochs and 2 epochs, 4000 samples in 6 s, and a family without a floor
    records = [make_result("mlp", "manual", hidden=(32,), epoch_seconds=(1.0, 1.0)),
               make_result("mlp", "manual", hidden=(32,), epoch_seconds=(2.0, 2.0)),
               make_result("softmax", "handgrad", epoch_seconds=(1.0,))]
    seen = floor.study_floor(records)
    per_sample = floor.stack_flops_per_sample([784, 32, 10])
    assert seen["runs"] == 2 and seen["runs_without"] == 1 and seen["train_s"] == 6.0
    assert seen["floor_s"] == pytest.approx(per_sample * 4000 / 1e9 / 100.0)
    assert "2 run(s) trained 6.0 s" in floor.study_floor_text(records)


def test_family_shapes_come_from_the_family_module():
    from mnistbench.config import for_family as cfg_of

    assert floor.floor_sizes(cfg_of("mlp", "manual"), 784, 10) == [784, 512, 128, 10]  # FAMILY.defaults
    assert floor.floor_sizes(cfg_of("softmax", "manual"), 784, 10) is None  # not a layer stack: no floor
    assert floor.training_flops_per_sample(cfg_of("mlp", "manual", hidden=(8,)), 784, 10) == \
        floor.stack_flops_per_sample([784, 8, 10])
