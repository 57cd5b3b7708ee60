"""RunConfig: everything that describes one run; a family's defaults come from its module (registry)."""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, fields

from . import registry

DATASETS = ("mnist", "fashion-mnist", "kmnist")
PROTOCOLS = ("seed", "official")
LOADERS = ("tensor", "dataloader")
DEVICES = ("cpu", "cuda", "auto")
DTYPES = ("float32", "bfloat16")


class ConfigError(ValueError):
    """A user mistake in a configuration: the CLI prints it as one line and exits 2."""



@dataclass(frozen=True)
class RunConfig:
    family: str
    impl: str
    dataset: str = "mnist"
    protocol: str = "seed"  # "seed": the notebook's splits; "official": test on t10k for every family
    classes: tuple[int, ...] | None = None  # None: the family's recipe (logistic: 0 and 1; others: all ten)
    hidden: tuple[int, ...] = (512, 128)  # families with uses_hidden only (mlp)
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


def check_family(family: str) -> registry.Family:
    if family not in registry.families():
        raise ConfigError(f"unknown family {family!r}; choose from {', '.join(registry.families())}")
    return registry.family(family)


def for_family(family: str, impl: str, **overrides) -> RunConfig:
    """A RunConfig at the family's default settings, with `overrides` (None values ignored)."""
    settings = dict(check_family(family).defaults)
    settings.update({k: v for k, v in overrides.items() if v is not None})
    return RunConfig(family=family, impl=impl, **settings)


def validate(cfg: RunConfig) -> RunConfig:
    """Raise ConfigError naming the first problem; return cfg unchanged when it is valid."""
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
    if cfg.loader not in LOADERS:
        raise ConfigError(f"unknown loader {cfg.loader!r}; choose from {', '.join(LOADERS)}")
    if not isinstance(cfg.lr, (int, float)) or not math.isfinite(cfg.lr) or cfg.lr <= 0:
        raise ConfigError(f"learning rate must be a finite number > 0, got {cfg.lr}")
    if cfg.batch_size < 1:
        raise ConfigError(f"batch size must be >= 1, got {cfg.batch_size}")
    if cfg.epochs < 1:
        raise ConfigError(f"epochs must be >= 1, got {cfg.epochs}")
    if cfg.patience is not None and cfg.patience < 0:
        raise ConfigError(f"patience must be >= 0, got {cfg.patience}")
    if cfg.threads is not None and cfg.threads < 1:
        raise ConfigError(f"threads must be >= 1, got {cfg.threads}")
    if not cfg.hidden or any(h < 1 for h in cfg.hidden):
        raise ConfigError(f"--hidden sizes must be one or more integers >= 1, got {list(cfg.hidden)}")
    classes = cfg.class_list
    if len(classes) < 2:
        raise ConfigError(f"need at least two classes, got {list(classes)}")
    if len(set(classes)) != len(classes):
        raise ConfigError(f"classes must be distinct, got {list(classes)}")
    if any(c < 0 or c > 9 for c in classes):
        raise ConfigError(f"classes must be digits 0-9, got {list(classes)}")
    if family.n_classes is not None and len(classes) != family.n_classes:
        raise ConfigError(f"{cfg.family} needs exactly {family.n_classes} classes, got {list(classes)}")
    return cfg
