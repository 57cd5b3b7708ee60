"""What a model family and an implementation are: the DataRecipe, Family and Implementation records.

They live apart from the registry so that a family module (mnistbench.catalog.*) can declare its FAMILY
and IMPLEMENTATIONS without importing the registry that discovers it; deferred names a factory that is
imported only when a model is built. mnistbench.registry re-exports
all three (`mnistbench.Family` etc. are the same classes).
"""
from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass

DTYPES = ("float32", "bfloat16", "float64")  # float64: for `mnistbench verify` (models built in float64)


@dataclass(frozen=True)
class DataRecipe:
    """How a family's splits are made from the MNIST-format train and test sets.

    classes: the digits used, relabelled 0..C-1 in this order (binary families: two of them).
    split "stratified": train/val/test = 60/20/20 of the train set, stratified by label; "holdout": a
    random sixth of the train set is validation, test is t10k. (`--protocol official` tests every
    family on t10k.)
    standardize: (mean, std) applied after scaling pixels to [0, 1], or None.
    """

    classes: tuple[int, ...] = tuple(range(10))
    split: str = "stratified"
    standardize: tuple[float, float] | None = None

    def __post_init__(self):
        if self.split not in ("stratified", "holdout"):
            raise ValueError(f"DataRecipe.split must be 'stratified' or 'holdout', got {self.split!r}")


@dataclass(frozen=True)
class Family:
    """A model family: its name, defaults, data recipe and what its configuration uses.

    defaults: RunConfig fields the family sets, at least lr, batch_size, epochs and patience (None: no
        early stopping); a family with uses_hidden sets hidden too, e.g. (64,) (RunConfig's own default
        is (), no hidden layers, which such a family refuses).
    n_classes: a fixed number of classes the family needs (2 for a binary model), or None for any >= 2.
    uses_hidden: whether RunConfig.hidden means anything for it (sweeps do not vary it otherwise).
    target_val_acc: the validation accuracy of the report's time-to-accuracy table (None: no row).
    position: where the family stands in lists, grids and reports (built-ins 0, 1, 2...; then by name).
    origin: filled in on registration ("built in", the plugin's distribution, or IN_PROCESS).
    """

    name: str
    description: str
    defaults: dict
    recipe: DataRecipe = DataRecipe()
    n_classes: int | None = None
    uses_hidden: bool = False
    target_val_acc: float | None = None
    position: int = 100
    origin: str = ""


@dataclass(frozen=True)
class Implementation:
    """One registered implementation of a family.

    factory(cfg, n_features, n_classes, generator) returns a model meeting models.contract: iterative
    models offer step(), non-iterative ones (scikit-learn) fit(). twin: the implementation of the same
    family it must agree with step for step (None for a reference such as builtin or sklearn).
    dtypes: the compute precisions (DTYPES) it honours. The default is float32 only, so that a
    plugin written before `--dtype bfloat16` existed is refused a bf16 run instead of silently training
    in float32; the built-ins declare both.
    origin: filled in on registration, like Family.origin.
    """

    family: str
    name: str
    factory: Callable
    iterative: bool = True
    twin: str | None = None
    description: str = ""
    dtypes: tuple[str, ...] = ("float32",)
    origin: str = ""


def deferred(target: str) -> Callable:
    """The factory "package.module:function", imported on its first call: the built-in families list
    their implementations without importing torch, which only training needs."""
    module_name, _, name = target.partition(":")

    def factory(cfg, n_features, n_classes, generator):
        return getattr(importlib.import_module(module_name), name)(cfg, n_features, n_classes, generator)

    factory.__name__ = factory.__qualname__ = name
    factory.target = target
    return factory
