"""The study grid: the original notebook's whole study as one list of RunConfigs (`mnistbench study`).

The grid: every implementation of every family at the notebook's settings, plus the MLP's
learning-rate sweep (at batch 64) and batch-size sweep (at lr 0.01) for every MLP implementation,
each point over seeds 0..N-1. A point that belongs to several parts (lr 0.01 / batch 64 is the MLP
default and in both sweeps) runs once; its tags name every part it belongs to.

The module is called studygrid, not study, because `mnistbench.study` is the Python API function
(mnistbench.api.study, exported lazily by the package): a submodule of that name would shadow it once
imported. The notebook's printed figures that a study is compared with are reporting's:
mnistbench.reporting.notebook_table.
"""
from __future__ import annotations

from dataclasses import replace

from . import harness, registry
from .config import ConfigError

# The study is the notebook's own, so this module names the notebook's family for its MLP sweeps.
# Every other family, a plugin's included, joins the grid at its defaults.
SWEEP_FAMILY = "mlp"
LR_SWEEP = (0.001, 0.01, 0.1, 1.0)  # the notebook's learning_rates, at its BATCH_SIZE = 64
LR_SWEEP_BATCH = 64
BATCH_SWEEP = (16, 32, 64, 128)  # the notebook's batch_sizes, at lr 0.01
BATCH_SWEEP_LR = 0.01


def study_configs(seeds: int = 3, epochs=None, device: str = "cpu", threads=None, dtype: str = "float32") -> list:
    """Every unique RunConfig of the study, seed-major (a killed study leaves whole seeds behind)."""
    if seeds < 1:
        raise ConfigError(f"--seeds must be >= 1, got {seeds}")
    common = {"seed": list(range(seeds)), "epochs": epochs, "device": device, "threads": threads, "dtype": dtype}
    parts = {}  # RunConfig (tags are not part of equality) -> names of the study parts it belongs to
    families = list(registry.families())
    for family in families:
        for cfg in harness.expand([family], registry.impl_names(family), **common):
            parts.setdefault(cfg, []).append("defaults")
    sweep_impls = registry.impl_names(SWEEP_FAMILY)
    for name, axes in (("lr_sweep", {"lr": list(LR_SWEEP), "batch_size": LR_SWEEP_BATCH}),
                       ("batch_sweep", {"batch_size": list(BATCH_SWEEP), "lr": BATCH_SWEEP_LR})):
        for cfg in harness.expand([SWEEP_FAMILY], sweep_impls, **axes, **common):
            parts.setdefault(cfg, []).append(name)
    ordered = sorted(parts, key=lambda cfg: (cfg.seed, families.index(cfg.family)))  # stable: keeps grid order
    return [replace(cfg, tags={**cfg.tags, "study": "notebook", "parts": parts[cfg]}) for cfg in ordered]


def describe_plan(configs) -> str:
    counts = {}
    for cfg in configs:
        counts[cfg.family] = counts.get(cfg.family, 0) + 1
    seeds = sorted({cfg.seed for cfg in configs})
    per_family = ", ".join(f"{family} {n}" for family, n in counts.items())
    return f"study: {len(configs)} runs ({per_family}) over seeds {','.join(map(str, seeds))}"
