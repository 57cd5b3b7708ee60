"""--dtype bfloat16 end to end: refused where an implementation cannot honour it, bf16 training that learns
and agrees with its twin within bf16's rounding, and results that never mix the two precisions."""
from __future__ import annotations

import json

import pandas as pd
import pytest
import torch
from test_models import batches, trajectory
from test_report import make_record

from mnistbench import cli, data, models, registry, results, train
from mnistbench.config import ConfigError, for_family, validate
from mnistbench.models import mlp
from mnistbench.perf import floor, throughput
from mnistbench.reporting import document, dtypes, pairing
from mnistbench.reporting import tables as tb

BF16_TOL = 2e-2  # bf16 keeps 8 bits of mantissa: per-step losses of twins agree to about 1e-2
BUILT_IN_ITERATIVE = [(e.family, e.name) for e in registry.implementations()
                      if e.iterative and e.origin == registry.BUILT_IN]


def hidden_of(family):
    return {"hidden": (32, 16)} if registry.family(family).uses_hidden else {}


@pytest.mark.parametrize("family", ["logistic", "softmax"])
def test_sklearn_refuses_bf16_in_one_line(family):
    with pytest.raises(ConfigError, match=f"{family}/sklearn cannot train in bfloat16; it supports float32"):
        validate(for_family(family, "sklearn", dtype="bfloat16"))


def test_a_plugin_that_declares_no_dtypes_is_float32_only():
    registry.register("softmax", "nodtype", lambda cfg, n_features, n_classes, generator: None)
    try:
        validate(for_family("softmax", "nodtype"))
        with pytest.raises(ConfigError, match="softmax/nodtype cannot train in bfloat16"):
            validate(for_family("softmax", "nodtype", dtype="bfloat16"))
        registry.register("softmax", "withdtype", lambda *a: None, dtypes=("float32", "bfloat16"))
        validate(for_family("softmax", "withdtype", dtype="bfloat16"))
    finally:
        registry.unregister("softmax", "nodtype")
        registry.unregister("softmax", "withdtype")


def test_every_built_in_iterative_implementation_declares_bf16():
    assert BUILT_IN_ITERATIVE and all("bfloat16" in registry.implementation(f, i).dtypes for f, i in BUILT_IN_ITERATIVE)


def test_cli_run_refuses_sklearn_bf16(tiny_env, tmp_path, capsys):
    assert cli.main(["run", "--family", "softmax", "--impl", "sklearn", "--dtype", "bfloat16",
                     "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "cannot train in bfloat16" in err


@pytest.mark.parametrize("family, impl", BUILT_IN_ITERATIVE, ids=[f"{f}-{i}" for f, i in BUILT_IN_ITERATIVE])
def test_bf16_training_learns(tiny_root, family, impl, monkeypatch):
    cfg = validate(for_family(family, impl, dtype="bfloat16", epochs=6, lr=0.1, **hidden_of(family)))
    splits = data.load(cfg, tiny_root)
    built = []  # a RunResult holds no model: keep the one run_one trains (built last, after the warm-up's)
    monkeypatch.setattr(train.models, "build", lambda *a, real=models.build, **k: built.append(real(*a, **k)) or built[-1])
    result = train.run_one(cfg, splits)
    assert result.status == "ok" and result.test_acc > 0.8
    model = built[-1]
    assert all(p.dtype == torch.float32 for p in model.state_dict().values())  # float32 masters


def build(family, impl, dtype):
    n_classes = registry.family(family).n_classes or 10
    return models.build(for_family(family, impl, dtype=dtype, **hidden_of(family)), 784, n_classes)


TWINS = [(f, i, e.twin) for f, i in BUILT_IN_ITERATIVE for e in [registry.implementation(f, i)] if e.twin]


@pytest.mark.parametrize("family, impl, twin", TWINS, ids=[f"{f}-{i}-{t}" for f, i, t in TWINS])
def test_bf16_twins_agree_within_bf16_rounding_and_stay_close_to_float32(family, impl, twin):
    n_classes = registry.family(family).n_classes or 10
    data_ = batches(784, n_classes, binary=n_classes == 2, standardize=registry.family(family).recipe.standardize
                    is not None)
    losses = {}
    for name, dtype in ((impl, "bfloat16"), (twin, "bfloat16"), (impl, "float32")):
        losses[name, dtype], params = trajectory(build(family, name, dtype), data_)
        assert all(p.dtype == torch.float32 for p in params)
    torch.testing.assert_close(losses[impl, "bfloat16"], losses[twin, "bfloat16"], atol=BF16_TOL, rtol=0)
    torch.testing.assert_close(losses[impl, "bfloat16"], losses[impl, "float32"], atol=5e-2, rtol=0)
    assert not torch.equal(losses[impl, "bfloat16"], losses[impl, "float32"]), "bf16 must really compute in bf16"


def test_float32_models_are_untouched_by_the_precision_layer():
    """A float32 model built with the dtype field set explicitly is the very model of the default config."""
    for family, impl in BUILT_IN_ITERATIVE:
        a, b = build(family, impl, "float32"), models.build(for_family(family, impl, **hidden_of(family)), 784,
                                                             registry.family(family).n_classes or 10)
        data_ = batches(784, registry.family(family).n_classes or 10, steps=3)
        assert torch.equal(trajectory(a, data_)[0], trajectory(b, data_)[0])


def test_bf16_and_float32_runs_never_share_a_key_a_file_or_a_row(tmp_path):
    cfg32, cfg16 = for_family("mlp", "manual"), for_family("mlp", "manual", dtype="bfloat16")
    assert results.config_key(cfg32) != results.config_key(cfg16)
    records = [make_record("mlp", "manual", seed, test_acc=0.97) for seed in (0, 1)]
    records += [make_record("mlp", "manual", seed, test_acc=0.96, dtype="bfloat16") for seed in (0, 1)]
    for record in records:
        results.save(record, tmp_path)
    assert len(list((tmp_path / "runs").glob("*.json"))) == 4
    assert len(pairing.sides(records)) == 2  # compare pairs configurations, dtype included
    summary = tb.summary_table(tb.at_defaults(tb.prepare(results.to_frame(tmp_path))))
    assert sorted(zip(summary.dtype, summary.test_acc_mean)) == [("bfloat16", 0.96), ("float32", 0.97)]
    labelled = tb.label_dtype(tb.prepare(results.to_frame(tmp_path)))
    assert set(labelled.impl) == {"manual", "manual (bfloat16)"}  # plots draw them apart


def test_old_results_without_a_dtype_count_as_float32(tmp_path):
    raw = make_record("softmax", "manual", 0).to_json()
    del raw["config"]["dtype"]  # a file from before --dtype
    (tmp_path / "runs").mkdir()
    (tmp_path / "runs" / "old.json").write_text(json.dumps(raw))
    assert results.read_result(tmp_path / "runs" / "old.json").config.dtype == "float32"
    assert list(tb.prepare(results.to_frame(tmp_path)).dtype) == ["float32"]


def test_report_shows_accuracy_against_speed_only_with_both_dtypes(tmp_path):
    for seed in (0, 1, 2):
        results.save(make_record("mlp", "manual", seed, test_acc=0.97 + 0.001 * seed, epoch_seconds=1.0 + 0.01 * seed),
                     tmp_path)
        results.save(make_record("mlp", "manual", seed, test_acc=0.968 + 0.001 * seed, dtype="bfloat16",
                                 epoch_seconds=2.0 + 0.02 * seed), tmp_path)
        results.save(make_record("softmax", "manual", seed), tmp_path)
    table = dtypes.dtype_table(tb.prepare(results.to_frame(tmp_path)))
    assert len(table) == 1 and table.family[0] == "mlp"  # softmax ran in float32 only
    row = table.iloc[0]
    assert (row.n_float32, row.n_bfloat16) == (3, 3)
    assert row.acc_difference == pytest.approx(-0.002) and row.accuracy_verdict == "within noise"
    assert row.bf16_speedup == pytest.approx(0.5, rel=0.02) and row.speed_verdict == "bf16 slower"
    assert row.bf16_speedup_ci_low <= row.bf16_speedup <= row.bf16_speedup_ci_high
    text = document.build(tmp_path)["report"].read_text()
    assert "## Accuracy against speed: float32 and bf16" in text and "bf16 speed-up" in text
    assert (tmp_path / "dtypes.csv").is_file()
    only32 = tmp_path / "only32"
    results.save(make_record("mlp", "manual", 0), only32)
    assert "Accuracy against speed" not in document.build(only32)["report"].read_text()


def test_throughput_rows_carry_dtype_and_gflops(tiny_env, monkeypatch):
    monkeypatch.setattr(throughput, "MIN_POINT_SECONDS", 0.0)
    rows = throughput.throughput(["softmax", "mlp"], ["handgrad", "manual"], batch_sizes=[32], samples=64,
                                 repeats=1, hidden=(8,), dtype="bfloat16")
    assert [(r["family"], r["impl"], r["dtype"]) for r in rows] == [
        ("softmax", "manual", "bfloat16"), ("softmax", "handgrad", "bfloat16"), ("mlp", "manual", "bfloat16")]
    flops = {"softmax": 4 * 784 * 10, "mlp": floor.mlp_flops_per_sample([784, 8, 10])}
    for row in rows:
        assert row["gflops"] == pytest.approx(flops[row["family"]] * row["train_samples_per_s"] / 1e9)
    assert set(throughput.THROUGHPUT_COLUMNS) >= {"dtype", "gflops"}
    assert "bfloat16" in throughput.throughput_table(rows) and "b=32" in throughput.throughput_table(rows, "gflops")


def test_throughput_csv_of_both_dtypes_draws_them_apart():
    bench = pd.DataFrame({"family": ["mlp"] * 3, "impl": ["manual"] * 3, "batch_size": [64] * 3,
                          "dtype": ["float32", "bfloat16", None], "train_samples_per_s": [2e4, 3e3, 2e4]})
    assert list(tb.label_dtype(bench).impl) == ["manual", "manual (bfloat16)", "manual"]


def _bf16_casts(model, x, y):
    """(shape of every float32 -> bf16 conversion) over one model.step, seen at the dispatcher."""
    from torch.utils._python_dispatch import TorchDispatchMode

    casts = []

    class Count(TorchDispatchMode):
        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            out = func(*args, **(kwargs or {}))
            if func in (torch.ops.aten._to_copy.default, torch.ops.aten.copy_.default):
                source = args[1] if func is torch.ops.aten.copy_.default else args[0]
                if source.dtype == torch.float32 and out.dtype == torch.bfloat16:
                    casts.append(tuple(source.shape))
            return out

    with Count():
        model.step(x, y)
    return casts


@pytest.mark.parametrize("family, impl", [("mlp", "manual"), ("softmax", "handgrad"), ("logistic", "handgrad")])
def test_a_bf16_step_casts_each_weight_once_per_update_and_the_batch_once(family, impl):
    model = build(family, impl, "bfloat16")
    n_classes = registry.family(family).n_classes or 10
    data_ = batches(784, n_classes, steps=3, binary=n_classes == 2)
    params = list(model.state_dict().values())
    for x, y in data_[:2]:
        model.step(x, y)  # the copies exist: from now on a step re-casts exactly what its update changed
    x, y = data_[2]
    casts = sorted(_bf16_casts(model, x, y))
    if family == "mlp":  # hidden (32, 16): the 10-wide output layer computes in float32 (BF16_MIN_OUTPUTS),
        # so its parameters are not cast; the delta it hands the bf16 layer below (batch, 16) is, once
        assert hidden_of("mlp")["hidden"][-1] >= mlp.BF16_MIN_OUTPUTS > n_classes
        bf16_params = [p for p in params if p.shape[0] >= mlp.BF16_MIN_OUTPUTS]
        delta_below = (len(x), hidden_of("mlp")["hidden"][-1])
        expected = [tuple(p.shape) for p in bf16_params] + [tuple(x.shape), delta_below]
    else:  # every parameter once (after its update), the batch once, and the float32 gradient at the
        # logits once for the products that take it (softmax: as its transpose)
        gradient = {"softmax": (10, len(x)), "logistic": (len(x), 1)}[family]
        expected = [tuple(p.shape) for p in params] + [tuple(x.shape), gradient]
    assert casts == sorted(expected)


def test_a_bf16_mlp_takes_its_training_set_cast_once_and_then_casts_no_batch():
    model = build("mlp", "manual", "bfloat16")
    x, y = batches(784, 10, steps=1)[0]
    inputs = train.inputs_for(model, x)
    assert inputs.dtype == torch.bfloat16 and torch.equal(inputs, x.to(torch.bfloat16))
    for _ in range(2):
        model.step(inputs, y)
    assert (len(x), 784) not in _bf16_casts(model, inputs, y)
    float32 = build("mlp", "manual", "float32")
    assert train.inputs_for(float32, x) is x  # a float32 model's data is untouched


def test_a_bf16_mlp_run_steps_on_bf16_batches_and_evaluates_float32_ones(tiny_root, monkeypatch):
    cfg = validate(for_family("mlp", "manual", dtype="bfloat16", epochs=2, **hidden_of("mlp")))
    seen = {"step": set(), "logits": set()}

    def build_recording(*args, real=models.build, **kwargs):
        model = real(*args, **kwargs)
        step, logits = model.step, model.logits
        model.step = lambda x, y: seen["step"].add(x.dtype) or step(x, y)
        model.logits = lambda x: seen["logits"].add(x.dtype) or logits(x)
        return model

    monkeypatch.setattr(train.models, "build", build_recording)
    result = train.run_one(cfg, data.load(cfg, tiny_root))
    assert result.status == "ok"
    assert seen == {"step": {torch.bfloat16}, "logits": {torch.float32}}


def test_bf16_on_a_cpu_without_bf16_hardware_warns_once(monkeypatch):
    from mnistbench.models import precision

    monkeypatch.setattr(precision, "bf16_emulated", lambda device_type="cpu": device_type == "cpu")
    monkeypatch.setattr(precision, "_WARNED", set())
    import warnings

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for _ in range(3):
            precision.of(for_family("mlp", "manual", dtype="bfloat16"))
    assert len([w for w in caught if "emulated" in str(w.message)]) == 1

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        precision.of(for_family("mlp", "manual"))  # float32 never warns
