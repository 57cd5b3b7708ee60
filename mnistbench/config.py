"""RunConfig: everything that describes one run; a family's defaults come from its module (registry)."""
from __future__ import annotations

import math
import numbers
import os
from dataclasses import asdict, dataclass, field, fields, replace

from . import registry
from .errors import ConfigError, ConfigTypeError, shown  # noqa: F401 (config is where callers take them)
from .spec import DTYPES  # noqa: F401 (the same)

DATASETS = ("mnist", "fashion-mnist", "kmnist")
PROTOCOLS = ("seed", "official")
LOADERS = ("tensor", "dataloader")
DEVICES = ("cpu", "cuda", "auto")
MAX_THREADS = 1024  # torch crashes (segfault) on absurd counts such as 100000: a typo, refused up front
MAX_SEED = 2**32 - 1  # scikit-learn and numpy take seeds in 0..2**32-1
FLOAT32_MAX = 3.4028234663852886e38


@dataclass(frozen=True)
class RunConfig:
    family: str
    impl: str
    dataset: str = "mnist"
    protocol: str = "seed"  # "seed": the notebook's splits; "official": test on t10k for every family
    classes: tuple[int, ...] | None = None  # None: the family's recipe (logistic: 0 and 1; others: all ten)
    hidden: tuple[int, ...] = ()  # families with uses_hidden only; their Family.defaults give the sizes
    lr: float = 0.01
    batch_size: int = 64
    epochs: int = 100
    patience: int | None = None  # early stopping on validation loss; None = off
    seed: int = 0
    device: str = "cpu"
    loader: str = "tensor"  # "tensor": slice a shuffled in-memory tensor; "dataloader": the notebook's way
    threads: int | None = None  # torch intra-op threads; None = torch's default
    dtype: str = "float32"  # compute precision; "bfloat16" keeps float32 master weights
    tags: dict = field(default_factory=dict, compare=False, hash=False)  # free labels (tox env, sweep name)

    @property
    def n_classes(self) -> int:
        return len(self.class_list)

    @property
    def class_list(self) -> tuple[int, ...]:
        if self.classes is not None:
            return tuple(self.classes)
        if self.family in registry.families():
            return registry.family(self.family).recipe.classes
        return tuple(range(10))

    def to_dict(self) -> dict:
        out = asdict(self)
        for key in ("classes", "hidden"):
            out[key] = list(out[key]) if out[key] is not None else None
        return out

    @staticmethod
    def from_dict(raw: dict) -> RunConfig:
        known = {f.name for f in fields(RunConfig)}
        kwargs = {k: v for k, v in raw.items() if k in known}
        for key in ("classes", "hidden"):
            if kwargs.get(key) is not None:
                kwargs[key] = tuple(kwargs[key])
        return RunConfig(**kwargs)


def check_name(value, what: str) -> str:
    if not isinstance(value, str):
        raise ConfigTypeError(f"{what} must be a name (a string), got {shown(value)}")
    return value


def check_integer(value, what: str, optional: bool = False) -> int | None:
    """value as an int; ConfigError for a bool, a float (1.5 or 64.0), a string or anything else."""
    if value is None and optional:
        return None
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise ConfigTypeError(f"{what} must be an integer, got {shown(value)}")
    return int(value)


def check_number(value, what: str) -> int | float:
    """value as an int or float; ConfigError for a bool, a string or anything else."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ConfigTypeError(f"{what} must be a number, got {shown(value)}")
    return value if isinstance(value, (int, float)) else float(value)


def check_integers(value, what: str, optional: bool = False) -> tuple[int, ...] | None:
    """A sequence of integers (hidden sizes, classes) as a tuple."""
    if value is None and optional:
        return None
    if isinstance(value, (str, bytes)) or not isinstance(value, (list, tuple)):
        raise ConfigTypeError(f"{what} must be a list or tuple of integers, got {shown(value)}")
    return tuple(check_integer(item, f"{what} item") for item in value)


def check_family(family: str) -> registry.Family:
    check_name(family, "family")
    if family not in registry.families():
        raise ConfigError(f"unknown family {family!r}; choose from {', '.join(registry.families())}")
    return registry.family(family)


def for_family(family: str, impl: str, **overrides) -> RunConfig:
    """A RunConfig at the family's default settings, with `overrides` (None values ignored)."""
    settings = dict(check_family(family).defaults)
    settings.update({k: v for k, v in overrides.items() if v is not None})
    return RunConfig(family=family, impl=impl, **settings)


def validate(cfg: RunConfig) -> RunConfig:
    """Raise ConfigError naming the first problem; return cfg when it is valid, its numbers as plain int
    and float and its sizes as tuples (numpy integers from a grid are fine; bools and 64.0 are not)."""
    cfg = _check_types(cfg)
    family = check_family(cfg.family)
    if not registry.has(cfg.family, cfg.impl):
        raise ConfigError(
            f"unknown implementation {cfg.impl!r} for family {cfg.family!r}; "
            f"choose from {', '.join(registry.impl_names(cfg.family))}"
        )
    if cfg.dataset not in DATASETS:
        raise ConfigError(f"unknown dataset {cfg.dataset!r}; choose from {', '.join(DATASETS)}")
    if cfg.protocol not in PROTOCOLS:
        raise ConfigError(f"unknown protocol {cfg.protocol!r}; choose from {', '.join(PROTOCOLS)}")
    if cfg.dtype not in DTYPES:
        raise ConfigError(f"unknown dtype {cfg.dtype!r}; choose from {', '.join(DTYPES)}")
    if cfg.dtype == "float64":  # training data and the training loop are float32: float64 proves parity only
        raise ConfigError("float64 is for `mnistbench verify`; train in float32 or bfloat16")
    supported = registry.implementation(cfg.family, cfg.impl).dtypes
    if cfg.dtype not in supported:
        raise ConfigError(f"{cfg.family}/{cfg.impl} cannot train in {cfg.dtype}; it supports "
                          f"{', '.join(supported)}")
    if cfg.loader not in LOADERS:
        raise ConfigError(f"unknown loader {cfg.loader!r}; choose from {', '.join(LOADERS)}")
    _check_numbers(cfg)
    classes = cfg.class_list
    if len(classes) < 2:
        raise ConfigError(f"need at least two classes, got {list(classes)}")
    if len(set(classes)) != len(classes):
        raise ConfigError(f"classes must be distinct, got {list(classes)}")
    if any(c < 0 or c > 9 for c in classes):
        raise ConfigError(f"classes must be digits 0-9, got {list(classes)}")
    if family.n_classes is not None and len(classes) != family.n_classes:
        raise ConfigError(f"{cfg.family} needs exactly {family.n_classes} classes, got {list(classes)}")
    if family.uses_hidden:
        if not cfg.hidden or any(h < 1 for h in cfg.hidden):
            raise ConfigError(f"--hidden sizes must be one or more integers >= 1, got {list(cfg.hidden)}")
        _check_weights_fit(cfg, len(classes))
    return cfg


def _check_types(cfg: RunConfig) -> RunConfig:
    """Every field of the type it must have, before its value is looked at (API callers pass anything)."""
    if not isinstance(cfg, RunConfig):
        raise ConfigTypeError(f"expected a RunConfig, got {shown(cfg)}")
    for name in ("family", "impl", "dataset", "protocol", "device", "loader", "dtype"):
        check_name(getattr(cfg, name), name)
    if not isinstance(cfg.tags, dict):
        raise ConfigTypeError(f"tags must be a dict, got {shown(cfg.tags)}")
    return replace(
        cfg, lr=check_number(cfg.lr, "learning rate"), batch_size=check_integer(cfg.batch_size, "batch size"),
        epochs=check_integer(cfg.epochs, "epochs"), patience=check_integer(cfg.patience, "patience", True),
        seed=check_integer(cfg.seed, "seed"), threads=check_integer(cfg.threads, "threads", True),
        hidden=check_integers(cfg.hidden, "hidden sizes"), classes=check_integers(cfg.classes, "classes", True))


def _check_numbers(cfg: RunConfig) -> None:
    """Every numeric setting in range, so a typo is one line up front instead of a failed run later."""
    if not math.isfinite(cfg.lr) or cfg.lr <= 0:
        raise ConfigError(f"learning rate must be a finite number > 0, got {cfg.lr}")
    if cfg.lr > FLOAT32_MAX or float(cfg.lr) < 1.5e-45:  # training runs in float32
        raise ConfigError(f"learning rate {cfg.lr:g} cannot be held by a float32 (about 1.4e-45 to 3.4e38)")
    if cfg.batch_size < 1:
        raise ConfigError(f"batch size must be >= 1, got {cfg.batch_size}")
    if cfg.epochs < 1:
        raise ConfigError(f"epochs must be >= 1, got {cfg.epochs}")
    if cfg.patience is not None and cfg.patience < 1:
        raise ConfigError(f"patience must be >= 1 (epochs without improvement before stopping), got "
                          f"{cfg.patience}; --no-early-stop trains every epoch")
    if cfg.threads is not None and not 1 <= cfg.threads <= MAX_THREADS:
        raise ConfigError(f"threads must be between 1 and {MAX_THREADS}, got {cfg.threads}")
    if not 0 <= cfg.seed <= MAX_SEED:
        raise ConfigError(f"seed must be between 0 and 2**32-1, got {cfg.seed}")


def _check_weights_fit(cfg: RunConfig, n_classes: int, n_features: int = 28 * 28) -> None:
    """Refuse hidden sizes whose float32 weights alone exceed this machine's memory."""
    sizes = [n_features, *cfg.hidden, n_classes]
    weight_bytes = 4 * sum((a + 1) * b for a, b in zip(sizes, sizes[1:]))
    try:
        memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (AttributeError, ValueError, OSError):  # not on every platform
        return
    if weight_bytes > memory:
        raise ConfigError(f"--hidden {','.join(map(str, cfg.hidden))}: the weights alone would take "
                          f"{weight_bytes / 2**30:,.0f} GiB, more than this machine's {memory / 2**30:,.0f} GiB")
