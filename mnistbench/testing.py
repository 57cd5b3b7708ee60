"""For plugin authors (and mnistbench's own tests): assert that an implementation agrees with its twin.

    from mnistbench.testing import assert_agrees_with_twin
    def test_mine_agrees():
        assert_agrees_with_twin("softmax", "mine", steps=200, dtype="float64")

The same comparison as `mnistbench verify` (mnistbench.verify.compare_trajectories), on the family's real
training split (data_root, else $MNISTBENCH_DATA / the download cache). A failure names the step, the
tensor and the differences.
"""
from __future__ import annotations


class ParityError(AssertionError):
    """An implementation differs from its twin (or its gradient from finite differences)."""


def assert_agrees_with_twin(family: str, impl: str, steps: int = 200, dtype: str = "float32", *, data_root=None,
                            batch_size=None, seed: int = 0, rtol=None, atol=None, gradient_check: bool = True,
                            **overrides):
    """Raise ParityError unless family/impl agrees with its twin over `steps`; return the PairResult.
    overrides: RunConfig fields for both (lr, hidden...)."""
    from . import data, verify

    (entry, twin), = verify.pairs([family], [impl])
    arrays = data.load_arrays("mnist", data_root)
    result = verify.verify_pair(entry, twin, arrays, steps=steps, dtype=dtype, batch_size=batch_size, seed=seed,
                                rtol=rtol, atol=atol, gradient_check=gradient_check, **overrides)
    if not result.ok:
        raise ParityError(message(result))
    return result


def assert_trajectories_agree(build, build_twin, batches, dtype: str = "float32", reduction: int = 784,
                              rtol=None, atol=None):
    """The same check on models from two zero-argument builders over given (x, y) batches."""
    from . import verify

    tol = verify.tolerance(dtype, reduction, rtol, atol)
    comparison = verify.compare_trajectories(build, build_twin, batches, tol)
    if not comparison.ok:
        raise ParityError(f"{comparison.summary()}; tolerance {tol.describe()}")
    return comparison


def message(result) -> str:
    text = (f"{result.family}/{result.impl} against its twin {result.twin} in {result.ran_in}: {result.verdict}"
            f"\n  tolerance: {result.tolerance.describe()}\n  gradient check: {result.gradcheck}")
    return text + (f"\n  note: {result.note}" if result.note else "")
