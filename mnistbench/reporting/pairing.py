"""Run records gathered per configuration, the unit that `mnistbench compare` puts side by side.

A configuration is everything in a run's config but its seed, tags and thread count: the runs of
all seeds form one side, which averages their accuracies and tests their times (stats.compare_runs),
or, when both sides were measured in one interleave group, pairs their blocks round by round.
Threads are left out on purpose: like the host or the torch build they say how a run ran, not what
it computed, so two folders run with different thread counts still pair, and the row says that the
threads differ.
`--by KEY` splits one folder's records into groups by any recorded env or config key.
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass, field

from .. import registry, stats
from ..config import DTYPES, ConfigError, RunConfig

NOT_PAIRED = ("seed", "tags", "threads")
# what a row says differs between its two sides (env keys of a run record)
ENV_KEYS = ("cpu_model", "device_name", "torch", "threads", "host", "python")


@dataclass
class Side:
    """Every finished run of one configuration on one side of a comparison."""

    config: dict
    results: list = field(default_factory=list)  # its RunResults
    env: dict = field(default_factory=dict)  # env key -> the values its runs recorded

    @property
    def run_seconds(self) -> list:
        """Each run's steady-state epoch seconds."""
        return [steady for steady in (stats.steady_state(r.epoch_seconds) for r in self.results) if steady]

    @property
    def seconds(self) -> list:
        """Every steady-state epoch of its runs, pooled."""
        return [s for run in self.run_seconds for s in run]

    @property
    def accs(self) -> list:
        return [r.test_acc for r in self.results if r.test_acc is not None]

    @property
    def n_eval(self) -> list:
        return [r.split_sizes.get("test") for r in self.results if r.test_acc is not None]

    @property
    def unstable(self) -> bool:
        return any(r.timing["timing_unstable"] for r in self.results)

    @property
    def groups(self) -> set:
        """The interleave groups its runs were measured in (None: a run measured apart)."""
        return {r.interleave.group if r.interleave else None for r in self.results}

    def round_seconds(self) -> dict[int, float]:
        """round -> mean block seconds of its runs in that round (rounds every run of it has)."""
        per_run = [r.interleave.round_seconds() for r in self.results if r.interleave]
        common = set.intersection(*(set(rounds) for rounds in per_run)) if per_run else set()
        return {k: sum(rounds[k] for rounds in per_run) / len(per_run) for k in sorted(common)}

    def add(self, result) -> None:
        self.results.append(result)
        for key, value in result.env.items():
            if key in ENV_KEYS and value is not None:
                self.env.setdefault(key, set()).add(str(value))


def compare_sides(base: Side, new: Side, threshold: float) -> tuple[stats.Comparison, str]:
    """The time comparison of two sides, and what its samples are: rounds paired when both sides were
    measured in one interleave group, else the runs (or one run's epochs) unpaired."""
    from .. import paired

    shared = (base.groups & new.groups) - {None}
    if shared and len(base.groups) == len(new.groups) == 1:
        comparison = paired.paired_comparison(base.round_seconds(), new.round_seconds(), threshold)
        return comparison, f"{comparison.n_pairs} rounds paired"
    comparison = stats.compare_runs(base.run_seconds, new.run_seconds, threshold)
    return comparison, comparison.method


def config_of(result) -> dict:
    return {k: v for k, v in result.config.to_dict().items() if k != "tags"}


def pairing_key(config: dict, also=()) -> str:
    return json.dumps({k: v for k, v in config.items() if k not in NOT_PAIRED + tuple(also)}, sort_keys=True)


def sides(results, also=()) -> dict[str, Side]:
    """Configuration key -> Side, over the finished (status ok) results; `also` names more config keys
    to leave out of the pairing (the --by key, when it is a config key)."""
    out = {}
    for result in results:
        if result.status != "ok":
            continue
        config = config_of(result)
        key = pairing_key(config, also)
        if key not in out:
            out[key] = Side({k: v for k, v in config.items() if k not in NOT_PAIRED + tuple(also)})
        out[key].add(result)
    return out


def setting_text(config: dict) -> str:
    """A configuration in one line: family/impl and the settings that define its work."""
    family, impl = config.get("family"), config.get("impl")
    parts = [f"{family}/{impl}"]  # a --by key taken out of the pairing is in the row's base / new labels
    parts += [f"lr={config['lr']:g}"] if "lr" in config else []
    parts += [f"batch={config['batch_size']}"] if "batch_size" in config else []
    if family in registry.families() and registry.family(family).uses_hidden and config.get("hidden"):
        parts.append("hidden=" + ",".join(map(str, config["hidden"])))
    parts += [f"epochs={config['epochs']}"] if "epochs" in config else []
    defaults = RunConfig.__dataclass_fields__
    for key in ("dataset", "protocol", "loader", "dtype", "device", "classes", "patience"):
        if key in config and key in defaults and config[key] != defaults[key].default:
            value = config[key]
            parts.append(f"{key}={','.join(map(str, value)) if isinstance(value, list) else value}")
    return " ".join(parts)


# ---------------------------------------------------------------- --by KEY: the groups of one folder
def version_key(version: str):
    """Order torch versions numerically (2.9 before 2.13); the local label (+cpu, +cu130) breaks ties."""
    release = re.match(r"\d+(\.\d+)*", str(version))
    numbers = tuple(int(n) for n in release.group(0).split(".")) if release else ()
    return numbers, str(version)


def group_order(label: str):
    """Numbers by value (0.05 before 0.1), then versions and words (2.9.0 before 2.13.0), unset last;
    precisions in config.DTYPES order, so float32 is the base that bfloat16 is compared with."""
    if label == "unset":
        return (2, 0.0, ((), ""))
    if label in DTYPES:
        return (1, float(DTYPES.index(label)), ((), ""))
    try:
        return (0, float(label), ((), ""))
    except ValueError:
        return (1, 0.0, version_key(label))


def resolve_key(results, key: str) -> tuple[str, str]:
    """("env" | "config", name) for a --by key: env_X is env X; a plain key is the env's when runs record
    it there (threads: the count a run used, not the option it was given), else the config's."""
    env_keys = {k for r in results for k in r.env}
    config_keys = {k for r in results for k in config_of(r)}
    if key.startswith("env_") and key[4:] in env_keys:
        return "env", key[4:]
    if key in ("environment", "python") and "prefix" in env_keys:
        return "env", "prefix"
    if key in env_keys:
        return "env", key
    if key in config_keys:
        return "config", key
    known = sorted(config_keys | {f"env_{k}" for k in env_keys})
    raise ConfigError(f"--by {key}: no run records it; choose from {', '.join(known)}")


def group_value(result, where: str, name: str) -> str:
    value = (result.env if where == "env" else config_of(result)).get(name)
    if value is None:
        return "unset"
    return ",".join(map(str, value)) if isinstance(value, (list, tuple)) else str(value)


def groups(results, key: str) -> tuple[str, list[tuple[str, dict[str, Side]]]]:
    """(the key's name, [(value, its sides)] ordered with the base group first)."""
    where, name = resolve_key(results, key)
    split: dict[str, list] = {}
    for result in results:
        split.setdefault(group_value(result, where, name), []).append(result)
    also = (name,) if where == "config" else ()
    ordered = sorted(split, key=group_order)
    return name, [(value, sides(split[value], also)) for value in ordered]
