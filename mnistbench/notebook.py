"""The notebook's whole study as one grid, and the notebook's own numbers to compare a study with.

The grid: every implementation of every family at the notebook's settings, plus the MLP's
learning-rate sweep (at batch 64) and batch-size sweep (at lr 0.01) for every MLP implementation,
each point over seeds 0..N-1. A point that belongs to several parts (lr 0.01 / batch 64 is the MLP
default and in both sweeps) runs once; its tags name every part it belongs to.
"""
from __future__ import annotations

from dataclasses import replace

from . import harness, registry, stats
from .config import ConfigError

# The study is the notebook's own, so this module names the notebook's families: its MLP sweeps and its
# printed figures. Every other family, a plugin's included, joins the grid at its defaults.
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


# ---------------------------------------------------------------- the notebook's own figures
# Printed in the original notebook (one unseeded run each). The MLP's "test" set there was a
# slice of the training images, so its MLP figures are compared on validation accuracy.
# (family, impl, metric, lr, notebook value, why a difference is expected)
SEEDED_SPLIT = "notebook: one unseeded split; here seeded splits (1 test image = 0.0004)"
LEAKED_TEST = "notebook's test set leaked training images, so val acc is compared; unseeded init and split"
ONE_SHUFFLE = "notebook: one unseeded split and shuffle; same recipe, 100 epochs"
CUT_LOG = "lower bound: the notebook's log of this run stops at epoch 7; val acc compared (test leaked)"
NOTEBOOK = (
    ("logistic", "manual", "test_acc", 0.01, 0.9992, SEEDED_SPLIT),
    ("logistic", "sklearn", "test_acc", 0.01, 0.9992, SEEDED_SPLIT),
    ("softmax", "manual", "test_acc", 0.01, 0.9190, ONE_SHUFFLE),
    ("mlp", "manual", "best_val_acc", 0.001, 0.9573, LEAKED_TEST),
    ("mlp", "manual", "best_val_acc", 0.01, 0.9629, CUT_LOG),
    ("mlp", "manual", "best_val_acc", 0.1, 0.9739, LEAKED_TEST),
)
NOTEBOOK_BEST_LR = ("The notebook set best_lr = 0.01 by hand; in its own log the lowest validation loss "
                    "was at lr 0.1 (0.0839, epoch 3).")


def notebook_comparison(frame):
    """The notebook's figure next to this study's mean for the same family, impl and learning rate.

    One row per epoch cap found (runs with another cap than the notebook's are 'not comparable').
    The verdict is 'within noise' when |difference| <= the 95 % band of stats.accuracy_band: the sampling
    noise of an accuracy on n_eval images, p(1-p)/n_eval, for the notebook's figure AND for this study's,
    plus the variance of this study's mean over seeds (seed variance / seeds); otherwise 'higher' or
    'lower'. With one seed the band still holds both binomial terms.
    """
    import pandas as pd

    rows = []
    for family, impl, metric, lr, figure, why in NOTEBOOK:
        defaults = registry.family(family).defaults
        match = frame[(frame.family == family) & (frame.impl == impl) & (frame.status == "ok")
                      & (frame.lr == lr) & (frame.batch_size == defaults["batch_size"])] if len(frame) else frame
        base = {"family": family, "impl": impl, "metric": metric, "lr": lr, "notebook": figure}
        if match.empty:
            rows.append({**base, "n": 0, "verdict": "no runs", "why": why})
            continue
        for epochs, runs in match.groupby(match.epochs.astype(str)):
            cap = defaults["epochs"] if registry.is_iterative(family, impl) else None  # a solver has no epochs
            rows.append({**base, "epochs": epochs, **_compare(runs, metric, figure, epochs, cap), "why": why})
    return pd.DataFrame(rows)


def _compare(runs, metric: str, figure: float, epochs: str, notebook_epochs) -> dict:
    this = stats.mean_interval(runs[metric].dropna())
    n_eval = _eval_size(runs, "test" if metric == "test_acc" else "val")
    seed_variance = this["std"] ** 2 if this["n"] > 1 else 0.0
    band = stats.accuracy_band(figure, n_eval, this["mean"], n_eval, seed_var_b=seed_variance, seeds_b=this["n"])
    difference = this["mean"] - figure
    if notebook_epochs is not None and epochs != str(notebook_epochs):
        verdict = f"not comparable: epoch cap {epochs}, notebook's {notebook_epochs}"
    else:
        verdict = "within noise" if abs(difference) <= band else "higher" if difference > 0 else "lower"
    return {"this_mean": this["mean"], "this_ci_low": this["ci_low"], "this_ci_high": this["ci_high"],
            "n": this["n"], "difference": difference, "noise_band": band, "verdict": verdict}


def _eval_size(match, split: str) -> int:
    """Images the accuracy was measured on (from the saved split sizes, else the confusion matrix)."""
    if "split_sizes" in match:
        sizes = [s.get(split) for s in match["split_sizes"] if isinstance(s, dict) and s.get(split)]
        if sizes:
            return int(sizes[0])
    if split == "test" and "confusion" in match:
        return int(sum(sum(row) for row in match["confusion"].iloc[0]))
    return 0
