"""`mnistbench verify`: correct implementations written independently agree with their twins; wrong ones
are caught at the step where they go wrong, with the tensor named. Tiny generated data, except the one
integration test on real MNIST."""
from __future__ import annotations

import csv
import importlib.util
import sys
from pathlib import Path

import pytest

import mnistbench
from mnistbench import cli, registry, verify
from mnistbench.testing import ParityError, assert_agrees_with_twin

SAMPLES = Path(__file__).parent / "plugin_samples"
EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "mnistbench-momentum" / "mnistbench_momentum.py"
sys.path.insert(0, str(SAMPLES))
import wrong_mlp  # noqa: E402
import wrong_softmax  # noqa: E402

SMALL = {"hidden": (32, 16)}


@pytest.fixture
def wrong_plugins():
    """Every sample registered in-process as family/w_<name> with its twin builtin; taken back after."""
    added = []
    for family, module in (("softmax", wrong_softmax), ("mlp", wrong_mlp)):
        for name, factory in module.FACTORIES.items():
            mnistbench.register(family, f"w_{name}", factory, twin="builtin", dtypes=("float32", "float64"))
            added.append((family, f"w_{name}"))
    yield
    for family, impl in added:
        registry.unregister(family, impl)


def caught(family, impl, tiny_root, dtype="float32", steps=60):
    with pytest.raises(ParityError) as info:
        assert_agrees_with_twin(family, impl, steps=steps, dtype=dtype, data_root=tiny_root,
                                gradient_check=False, **(SMALL if family == "mlp" else {}))
    return str(info.value)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("family", ["softmax", "mlp"])
def test_independent_correct_implementation_agrees(wrong_plugins, tiny_root, family, dtype):
    result = assert_agrees_with_twin(family, "w_hand", steps=40, dtype=dtype, data_root=tiny_root,
                                     **(SMALL if family == "mlp" else {}))
    assert result.ran_in == dtype and result.comparison.steps == 40 and result.gradcheck == "pass"
    assert result.comparison.verdict == "agree"
    assert result.comparison.max_rel < (1e-12 if dtype == "float64" else 1e-5)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("family, impl, step, tensor", [
    ("softmax", "w_no_bias_update", 1, "b~bias"),
    ("softmax", "w_grad_times_1001", 1, "W~weight"),
    ("softmax", "w_sum_not_mean", 1, "W~weight"),
    ("softmax", "w_lr_doubled_from_51", 51, "W~weight"),
    ("mlp", "w_no_relu_mask_first", 1, "0.weight"),
    ("mlp", "w_no_bias_update", 1, "0.bias"),
    ("mlp", "w_bias_frozen_from_51", 51, "0.bias"),
])
def test_wrong_implementation_caught_at_its_step(wrong_plugins, tiny_root, family, impl, step, tensor, dtype):
    text = caught(family, impl, tiny_root, dtype, steps=55 if step > 1 else 3)
    assert f"differ from step {step}: {tensor}:" in text, text
    assert f"in {dtype}" in text


def test_gradient_scaled_by_1001_in_the_mlp(wrong_plugins, tiny_root):
    text = caught("mlp", "w_grad_times_1001", tiny_root)
    assert "differ from step 1:" in text and "max rel diff 0.001" in text, text


def test_gradient_check_names_the_parameter(wrong_plugins, tiny_root):
    (entry, twin), = verify.pairs(["softmax"], ["w_no_bias_update"])
    arrays = mnistbench.data.load_arrays("mnist", tiny_root)
    result = verify.verify_pair(entry, twin, arrays, steps=2, dtype="float64")
    assert result.gradcheck == "fail: b" and not result.ok


def example_module(source_change=None):
    """The example plugin's module, optionally with one edit to its source, registered in-process."""
    text = EXAMPLE.read_text(encoding="utf-8")
    if source_change:
        old, new = source_change
        assert text.count(old) == 1
        text = text.replace(old, new)
    spec = importlib.util.spec_from_loader("example_momentum_verify", loader=None)
    module = importlib.util.module_from_spec(spec)
    exec(compile(text, str(EXAMPLE), "exec"), module.__dict__)
    return module


@pytest.mark.parametrize("change, step, tensor", [
    (None, None, None),
    (("p.gather(1, rows) - 1) / x.shape[0]", "p.gather(1, rows) - 1) / x.shape[1]"), 1, "weight"),
    (("velocity.mul_(MOMENTUM).add_(grad)", "velocity.mul_(MOMENTUM).add(grad)"), 1, "weight"),
])
def test_example_plugin_and_its_one_character_breakages(tiny_root, change, step, tensor):
    module = example_module(change)
    entries = {e.name: e for e in module.IMPLEMENTATIONS}
    names = ("x_momentum", "x_builtin_momentum")
    mnistbench.register("softmax", names[1], entries["builtin_momentum"].factory)
    mnistbench.register("softmax", names[0], entries["momentum"].factory, twin=names[1])
    try:
        if change is None:
            assert assert_agrees_with_twin("softmax", names[0], steps=30, data_root=tiny_root).ok
        else:
            with pytest.raises(ParityError, match=f"differ from step {step}: {tensor}:"):
                assert_agrees_with_twin("softmax", names[0], steps=5, data_root=tiny_root)
    finally:
        for name in names:
            registry.unregister("softmax", name)


def test_cli_exit_codes_and_files(wrong_plugins, tiny_root, tmp_path, capsys):
    common = ["--data-root", str(tiny_root), "--steps", "20", "--out", str(tmp_path)]
    assert cli.main(["verify", "--family", "softmax", "--impl", "w_hand,w_no_bias_update", *common]) == 1
    rows = list(csv.DictReader(open(tmp_path / "verify.csv", encoding="utf-8")))
    assert [(r["impl"], r["dtype"], r["verdict"]) for r in rows] == [
        ("w_hand", "float32", "agree"), ("w_hand", "float64", "agree"),
        ("w_no_bias_update", "float32", "differ"), ("w_no_bias_update", "float64", "differ")]
    assert rows[2]["first_step"] == "1" and rows[2]["tensor"] == "b~bias"
    assert "differ from step 1: b~bias" in (tmp_path / "verify.md").read_text(encoding="utf-8")
    assert (tmp_path / "plots" / "verify_growth.png").stat().st_size > 0
    assert cli.main(["verify", "--family", "softmax", "--impl", "w_hand", "--dtype", "float32", *common]) == 0
    assert cli.main(["verify", "--family", "nope", *common]) == 2
    assert cli.main(["verify", "--family", "softmax", "--impl", "builtin", *common]) == 2
    assert cli.main(["verify", "--family", "softmax", "--impl", "w_hand", "--dtype", "float16", *common]) == 2
    err = capsys.readouterr().err
    assert "unknown family 'nope'" in err and "has no twin" in err and "unknown dtype 'float16'" in err


def test_plugin_without_float64_is_named_and_verified_in_float32(tiny_root):
    mnistbench.register("softmax", "f32_only", wrong_softmax.FACTORIES["hand"], twin="builtin")
    try:
        result = assert_agrees_with_twin("softmax", "f32_only", steps=5, dtype="float64", data_root=tiny_root)
        assert result.ran_in == "float32" and "f32_only does not declare float64" in result.note
        assert result.gradcheck.startswith("n/a")
    finally:
        registry.unregister("softmax", "f32_only")


@pytest.mark.mnist
def test_every_built_in_pair_on_real_mnist(mnist_root, tmp_path):
    assert cli.main(["verify", "--data-root", str(mnist_root), "--out", str(tmp_path)]) == 0
    rows = list(csv.DictReader(open(tmp_path / "verify.csv", encoding="utf-8")))
    builtins = {(r["family"], r["impl"]) for r in rows}
    assert {("logistic", "manual"), ("logistic", "handgrad"), ("softmax", "manual"), ("softmax", "handgrad"),
            ("mlp", "manual")} <= builtins
    assert all(r["verdict"] in ("identical", "agree") and r["steps"] == "200" for r in rows)
    assert all(float(r["max_rel_diff"]) < 1e-6 for r in rows if r["dtype"] == "float64" and r["impl"] != "manual")
