"""The one registry: model families and their implementations, built in or from plugins.

A family (logistic, softmax, mlp, or one a plugin adds) is one module that declares a `FAMILY`
(its defaults and data recipe) and a list `IMPLEMENTATIONS`. Built-in families are the modules of
`mnistbench.models` that define `FAMILY`; plugins are installed packages that declare an entry point in
the group `mnistbench.implementations` (a module shaped like a built-in family module, or a callable
that calls `register` / `register_family`). Everything is loaded on first use, never at import time.

A plugin that fails to load, or registers a name that already exists, costs one warning naming the
plugin; everything else still works.
"""
from __future__ import annotations

import importlib
import pkgutil
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field

ENTRY_POINT_GROUP = "mnistbench.implementations"
BUILT_IN = "built in"


class PluginWarning(UserWarning):
    """A plugin could not be loaded or clashed with a name already registered."""


@dataclass(frozen=True)
class DataRecipe:
    """How a family's splits are made from the MNIST-format train and test sets.

    split "stratified": train/val/test = 60/20/20 of the train set, stratified by label (the notebook's
    logistic and softmax); "holdout": a random sixth of the train set is validation, test is t10k.
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
    """A model family: its name, notebook defaults, data recipe and what its configuration uses.

    defaults: lr, batch_size, epochs, patience (None: no early stopping).
    n_classes: a fixed number of classes the family needs (logistic: 2), or None for any >= 2.
    uses_hidden: whether RunConfig.hidden means anything for it (sweeps do not vary it otherwise).
    target_val_acc: the validation accuracy of the report's time-to-accuracy table (None: no row).
    """

    name: str
    description: str
    defaults: dict
    recipe: DataRecipe = DataRecipe()
    n_classes: int | None = None
    uses_hidden: bool = False
    target_val_acc: float | None = None
    origin: str = BUILT_IN


@dataclass(frozen=True)
class Implementation:
    """One registered implementation.

    factory(cfg, n_features, n_classes, generator) returns a model (see models.contract): iterative
    models offer step(); non-iterative ones (scikit-learn) offer fit(). twin: the implementation of
    the same family it must agree with (None for a reference such as builtin or sklearn).
    """

    family: str
    name: str
    factory: Callable
    iterative: bool = True
    twin: str | None = None
    description: str = ""
    origin: str = BUILT_IN


@dataclass
class _Registry:
    families: dict = field(default_factory=dict)  # name -> Family, in registration order
    implementations: dict = field(default_factory=dict)  # (family, name) -> Implementation
    loaded: bool = False


_REGISTRY = _Registry()


def register_family(family: Family) -> Family:
    """Add a model family; a name that exists already is refused with a PluginWarning."""
    if family.name in _REGISTRY.families:
        _warn(family.origin, f"family {family.name!r} is already registered "
                             f"({_REGISTRY.families[family.name].origin}); ignored")
        return _REGISTRY.families[family.name]
    _REGISTRY.families[family.name] = family
    return family


def register(family: str, impl: str, factory: Callable, *, iterative: bool = True, twin: str | None = None,
             description: str = "", origin: str = "registered in this process") -> Implementation | None:
    """Add an implementation of an existing family (for a notebook or script; plugins use the same call).

    A (family, impl) pair that exists already, or an unknown family, is refused with a PluginWarning.
    """
    _load()
    entry = Implementation(family, impl, factory, iterative, twin, description, origin)
    return _add(entry)


def _add(entry: Implementation) -> Implementation | None:
    if entry.family not in _REGISTRY.families:
        _warn(entry.origin, f"implementation {entry.family}/{entry.name} names an unknown family "
                            f"{entry.family!r}; ignored")
        return None
    key = (entry.family, entry.name)
    if key in _REGISTRY.implementations:
        _warn(entry.origin, f"implementation {entry.family}/{entry.name} is already registered "
                            f"({_REGISTRY.implementations[key].origin}); ignored")
        return None
    _REGISTRY.implementations[key] = entry
    return entry


def unregister(family: str, impl: str | None = None) -> None:
    """Remove an implementation, or a whole family with its implementations (for tests and notebooks)."""
    _load()
    if impl is not None:
        _REGISTRY.implementations.pop((family, impl), None)
        return
    _REGISTRY.families.pop(family, None)
    for key in [k for k in _REGISTRY.implementations if k[0] == family]:
        del _REGISTRY.implementations[key]


def _warn(origin: str, message: str) -> None:
    warnings.warn(f"mnistbench plugin {origin}: {message}", PluginWarning, stacklevel=3)


def _register_module(module, origin: str) -> None:
    """Register a family module: its optional FAMILY, then its IMPLEMENTATIONS."""
    family = getattr(module, "FAMILY", None)
    if family is not None:
        register_family(family if family.origin == origin else _with_origin(family, origin))
    for entry in getattr(module, "IMPLEMENTATIONS", ()):
        _add(entry if entry.origin == origin else _with_origin(entry, origin))


def _with_origin(item, origin: str):
    from dataclasses import replace

    return replace(item, origin=origin)


def _load() -> None:
    """Built-in families first (the modules of mnistbench.models defining FAMILY), then plugins."""
    if _REGISTRY.loaded:
        return
    _REGISTRY.loaded = True
    from . import models

    for info in sorted(pkgutil.iter_modules(models.__path__), key=lambda m: _BUILTIN_ORDER.get(m.name, 99)):
        module = importlib.import_module(f"{models.__name__}.{info.name}")
        if hasattr(module, "FAMILY"):
            _register_module(module, BUILT_IN)
    _load_plugins()


# the notebook's order; any other built-in family module comes after these, by name
_BUILTIN_ORDER = {"logistic": 0, "softmax": 1, "mlp": 2}


def _load_plugins() -> None:
    from importlib.metadata import entry_points

    for point in entry_points(group=ENTRY_POINT_GROUP):
        origin = f"{point.name} ({point.value})"
        try:
            target = point.load()
            if callable(target):
                target()
            else:
                _register_module(target, origin)
        except Exception as exc:  # a broken plugin must not break mnistbench
            _warn(origin, f"failed to load: {type(exc).__name__}: {exc}")


# ---------------------------------------------------------------- queries
def families() -> dict:
    """name -> Family, built-in families first, then plugins', in registration order."""
    _load()
    return dict(_REGISTRY.families)


def family(name: str) -> Family:
    """The Family called name; KeyError if there is none (config.validate gives the user's error)."""
    _load()
    return _REGISTRY.families[name]


def implementations(family: str | None = None) -> list[Implementation]:
    """Every implementation (of one family), in registration order."""
    _load()
    return [e for (f, _), e in _REGISTRY.implementations.items() if family is None or f == family]


def implementation(family: str, impl: str) -> Implementation:
    _load()
    return _REGISTRY.implementations[(family, impl)]


def has(family: str, impl: str) -> bool:
    _load()
    return (family, impl) in _REGISTRY.implementations


def impl_names(family: str | None = None) -> list[str]:
    """Implementation names (of one family, or of all without repeats), in registration order."""
    return list(dict.fromkeys(e.name for e in implementations(family)))
