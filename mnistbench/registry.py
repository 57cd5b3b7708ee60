"""The one registry: model families and their implementations, built in or from plugins.

A family is one module that declares a `FAMILY` (its defaults and data recipe) and a list
`IMPLEMENTATIONS`. Built-in families are the modules of `mnistbench.catalog` that define `FAMILY`;
plugins are installed packages that declare an entry point in the group `mnistbench.implementations`:
a module shaped like a family module (FAMILY optional), or a callable that calls `register` /
`register_family`. Everything is loaded on first use, never at import time. The records themselves
(Family, DataRecipe, Implementation) are defined in mnistbench.spec and re-exported here.

A plugin that fails to load, or registers a name that already exists, costs one PluginWarning naming
the plugin; what it registered before failing is taken back, and everything else still works.
"""
from __future__ import annotations

import importlib
import pkgutil
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field, replace

from .errors import ConfigError, ConfigTypeError, shown
from .spec import DTYPES, DataRecipe, Family, Implementation, deferred  # noqa: F401 (re-exported: mnistbench.DataRecipe, ...)

ENTRY_POINT_GROUP = "mnistbench.implementations"
BUILT_IN = "built in"
IN_PROCESS = "registered in this process"  # register() called from a script or notebook


class PluginWarning(UserWarning):
    """A plugin could not be loaded or clashed with a name already registered."""


@dataclass
class _Registry:
    families: dict = field(default_factory=dict)  # name -> Family, in registration order
    implementations: dict = field(default_factory=dict)  # (family, name) -> Implementation
    modules: dict = field(default_factory=dict)  # family name -> the module that declared its FAMILY
    loaded: bool = False
    loading: str = IN_PROCESS  # the origin given to what is registered now (a plugin while it loads)


_REGISTRY = _Registry()


def register_family(family: Family) -> Family | None:
    """Add a model family (a notebook, a script or a plugin's callable). A name that exists already is
    refused with a PluginWarning, and None is returned."""
    if not isinstance(family, Family):
        raise ConfigTypeError(f"register_family takes a mnistbench.Family, got {shown(family)}")
    check_name(family.name, "family")
    _load()
    return _add_family(family)


def register(family: str, impl: str, factory: Callable, *, iterative: bool = True, twin: str | None = None,
             description: str = "", dtypes: tuple[str, ...] = ("float32",)) -> Implementation | None:
    """Add an implementation `impl` of `family` (a notebook, a script or a plugin's callable).

    factory(cfg, n_features, n_classes, generator) -> model, see mnistbench.models.contract. A
    (family, impl) pair that exists already, or an unknown family, is refused with a PluginWarning and
    None is returned; a factory that is not callable is a TypeError. dtypes: the precisions the model
    honours (it reads cfg.dtype); float32 only unless it says more.
    """
    _load()
    _check_registration(family, impl, factory, iterative, twin, description, dtypes)
    return _add(Implementation(family, impl, factory, iterative, twin, description, tuple(dtypes)))


def check_name(name, what: str) -> str:
    """A family or implementation name: it becomes part of result file names (family-impl-...json), so
    it must be a plain word (no / \\ .. NUL, not empty, not hidden with a leading dot)."""
    if not isinstance(name, str):
        raise ConfigTypeError(f"{what} name must be a string, got {shown(name)}")
    if (not name.strip() or name.startswith(".") or ".." in name or any(c in name for c in "/\\\0")
            or any(not c.isprintable() for c in name)):
        raise ConfigError(f"{what} name {name!r} cannot be part of a file name; use letters, digits, - and _")
    return name


def _check_registration(family, impl, factory, iterative, twin, description, dtypes) -> None:
    """register()'s arguments, each of its type, before anything is added (ConfigError in one line)."""
    check_name(family, "family")
    check_name(impl, "implementation")
    if not callable(factory):
        raise ConfigTypeError(f"the factory of {family}/{impl} is not callable: {factory!r}")
    if not isinstance(iterative, bool):
        raise ConfigTypeError(f"iterative must be True or False, got {shown(iterative)}")
    if twin is not None:
        check_name(twin, "twin")
    if not isinstance(description, str):
        raise ConfigTypeError(f"description must be a string, got {shown(description)}")
    if isinstance(dtypes, str) or not isinstance(dtypes, (tuple, list)):
        raise ConfigTypeError(f"dtypes must be a tuple of names such as ('float32', 'bfloat16'), "
                              f"got {shown(dtypes)}")
    unknown = [d for d in dtypes if d not in DTYPES]
    if not dtypes or unknown:
        raise ConfigError(f"dtypes of {family}/{impl}: {unknown or 'none given'}; choose from {', '.join(DTYPES)}")


def adopt(item: Family | Implementation) -> None:
    """Register a Family or Implementation object as it is, origin included, unless its name exists
    (a Ray worker receives the driver's non-built-in entries this way)."""
    _load()
    if isinstance(item, Family):
        if item.name not in _REGISTRY.families:
            _add_family(item)
    elif (item.family, item.name) not in _REGISTRY.implementations:
        _add(item)


def _add_family(family: Family) -> Family | None:
    family = family if family.origin else replace(family, origin=_REGISTRY.loading)
    if family.name in _REGISTRY.families:
        _warn(family.origin, f"family {family.name!r} is already registered "
                             f"({_REGISTRY.families[family.name].origin}); ignored")
        return None
    _REGISTRY.families[family.name] = family
    return family


def _add(entry: Implementation) -> Implementation | None:
    entry = entry if entry.origin else replace(entry, origin=_REGISTRY.loading)
    if not callable(entry.factory):
        raise TypeError(f"the factory of {entry.family}/{entry.name} is not callable: {entry.factory!r}")
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
    _REGISTRY.modules.pop(family, None)
    for key in [k for k in _REGISTRY.implementations if k[0] == family]:
        del _REGISTRY.implementations[key]


def _warn(origin: str, message: str) -> None:
    warnings.warn(f"{origin}: {message}", PluginWarning, stacklevel=2)


def _register_module(module) -> None:
    """Register a family module: its FAMILY if it has one (a clash skips the whole module: its
    implementations belong to its own family, not to the one already there), then IMPLEMENTATIONS."""
    family = getattr(module, "FAMILY", None)
    if family is not None:
        if _add_family(family) is None:
            return
        _REGISTRY.modules[family.name] = module
    for entry in getattr(module, "IMPLEMENTATIONS", ()):
        _add(entry)


def _load() -> None:
    """Built-in families first (the modules of mnistbench.catalog defining FAMILY), then plugins."""
    if _REGISTRY.loaded:
        return
    _REGISTRY.loaded = True
    from . import catalog as package

    _REGISTRY.loading = BUILT_IN
    try:
        for info in pkgutil.iter_modules(package.__path__):
            module = importlib.import_module(f"{package.__name__}.{info.name}")
            if hasattr(module, "FAMILY"):
                _register_module(module)
    finally:
        _REGISTRY.loading = IN_PROCESS
    _load_plugins()


def plugin_origin(point) -> str:
    """'plugin <distribution>' (the name pip knows it by), or the entry point itself if it has none."""
    dist = getattr(point, "dist", None)
    return f"plugin {dist.name}" if dist is not None else f"plugin {point.name} = {point.value}"


def _load_plugins() -> None:
    from importlib.metadata import entry_points

    for point in entry_points(group=ENTRY_POINT_GROUP):
        _load_plugin(point, plugin_origin(point))


def _load_plugin(point, origin: str) -> None:
    """Load one entry point; if it raises, take back whatever it had registered and warn once."""
    families, implementations = set(_REGISTRY.families), set(_REGISTRY.implementations)
    _REGISTRY.loading = origin
    try:
        target = point.load()
        if callable(target):
            target()
        else:
            _register_module(target)
    except Exception as exc:  # a broken plugin must not break mnistbench
        for name in set(_REGISTRY.families) - families:
            del _REGISTRY.families[name]
            _REGISTRY.modules.pop(name, None)
        for key in set(_REGISTRY.implementations) - implementations:
            del _REGISTRY.implementations[key]
        _warn(origin, f"failed to load ({point.name} = {point.value}): {type(exc).__name__}: {exc}")
    finally:
        _REGISTRY.loading = IN_PROCESS


# ---------------------------------------------------------------- queries
def families() -> dict:
    """name -> Family, ordered by Family.position, then by name."""
    _load()
    ordered = sorted(_REGISTRY.families.values(), key=lambda f: (f.position, f.name))
    return {f.name: f for f in ordered}


def family(name: str) -> Family:
    """The Family called name; KeyError if there is none (config.validate gives the user's error)."""
    _load()
    return _REGISTRY.families[name]


def family_module(name: str):
    """The module that declared the family's FAMILY (a built-in's, a plugin's), where its hooks live
    (flops_per_sample, layer_sizes, SPEED_TARGETS); None for one registered by register_family."""
    _load()
    return _REGISTRY.modules.get(name)


def implementations(family: str | None = None) -> list[Implementation]:
    """Every implementation (of one family): families in their order, each in registration order."""
    _load()
    return [e for name in ([family] if family is not None else families())
            for (f, _), e in _REGISTRY.implementations.items() if f == name]


def implementation(family: str, impl: str) -> Implementation:
    _load()
    return _REGISTRY.implementations[(family, impl)]


def has(family: str, impl: str) -> bool:
    _load()
    return (family, impl) in _REGISTRY.implementations


def is_iterative(family: str, impl: str) -> bool:
    """Whether (family, impl) trains step by step; True for a pair no longer registered (old results)."""
    return implementation(family, impl).iterative if has(family, impl) else True


def impl_names(family: str | None = None) -> list[str]:
    """Implementation names (of one family, or of all without repeats), in the order of implementations()."""
    return list(dict.fromkeys(e.name for e in implementations(family)))
