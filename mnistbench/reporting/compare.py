"""`mnistbench compare BASE NEW`: is NEW faster or slower than BASE, by how much, and how sure is that.

BASE and NEW are two results folders (run records) or two pytest-benchmark JSON files. Runs pair by
configuration (pairing.py); benchmarks by their full name. For each pair:

- time: when both sides were trained in one interleave group (--interleave), the mean of the per-round
  log ratios of their block times (paired.paired_comparison); otherwise the ratio NEW / BASE of
  geometric means of the runs (one run a side: its epochs; benchmarks: the rounds), Welch on logs
  (stats.compare_runs). Verdicts: "slower" / "faster" (significant AND beyond the threshold),
  "equivalent" (the 90 % interval inside the threshold band) or "inconclusive" (with the rounds that
  would decide, when paired). One run a side measured apart is never slower or faster: the drift
  between the two runs is unmeasured;
- accuracy: the test-accuracy difference with its 95 % band (binomial noise of both figures plus the
  seeds' variance of each mean, stats.accuracy_band): "higher" / "lower" outside the band;
- what differs between the two sides' machines and software (CPU, torch, threads, host, python).

`compare(folder, by=KEY)` compares the groups of one folder (e.g. torch versions) with its first group.
"""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd

from .. import files, results, stats
from ..config import ConfigError
from ..results import ResultError
from . import pairing, render

KINDS = {"runs": "results folder", "benchmark": "pytest-benchmark JSON file"}


def check_threshold(threshold) -> float:
    if not isinstance(threshold, (int, float)) or not math.isfinite(threshold) or not 0 <= threshold < 1:
        raise ConfigError(f"threshold must be a fraction in [0, 1), e.g. 0.05 for 5 %, got {threshold}")
    return float(threshold)


def percent(fraction: float) -> str:
    return f"{100 * fraction:g} %"


def compare(base, new=None, threshold: float = stats.THRESHOLD, by: str | None = None) -> pd.DataFrame:
    """One row per pair: NEW against BASE (two results folders or two pytest-benchmark JSON files), or
    with `by`, every group of the folder `base` against its first group (e.g. by="torch": the oldest)."""
    threshold = check_threshold(threshold)
    if by is not None:
        if new is not None:
            raise ConfigError("--by compares the groups of one results folder: give one folder, not two")
        if source_kind(base) != "runs":
            raise ConfigError(f"--by needs a results folder, and {base} is a file")
        name, grouped = pairing.groups(load_records(base), by)
        if len(grouped) < 2:
            raise ResultError(f"every finished run in {base} has {name} = {grouped[0][0] if grouped else '?'}: "
                              "no second group to compare")
        (base_value, base_sides), rows = grouped[0], []
        for value, new_sides in grouped[1:]:
            rows += run_pairs(base_sides, new_sides, threshold, f"{name} {base_value}", f"{name} {value}")
        for row in rows:
            row["configuration"] = _by_label(row["configuration"])
        return finish(rows, f"groups of {name} in {_shown(base)}")
    if new is None:
        raise ConfigError("give BASE and NEW (two results folders or two pytest-benchmark JSON files), "
                          "or one folder with --by KEY")
    kinds = source_kind(base), source_kind(new)
    if kinds[0] != kinds[1]:
        raise ConfigError(f"compare two results folders or two pytest-benchmark JSON files, not a "
                          f"{KINDS[kinds[0]]} with a {KINDS[kinds[1]]}")
    if kinds[0] == "benchmark":
        rows = benchmark_rows(base, new, threshold)
    else:
        rows = run_pairs(pairing.sides(load_records(base)), pairing.sides(load_records(new)), threshold,
                         _shown(base), _shown(new))
    return finish(rows, f"{_shown(base)} and {_shown(new)}")


def _by_label(text: str) -> str:
    """A row's configuration when --by is family or impl: that half is in the base / new labels, so it is
    left out ("logistic lr=0.01", not "logistic/None lr=0.01")."""
    head, _, rest = text.partition(" ")
    head = "/".join(part for part in head.split("/", 1) if part != "None")
    return f"{head} {rest}".strip()


def _shown(source) -> str:
    return str(source) if isinstance(source, (str, Path)) else f"the {len(source)} results given"


def source_kind(path) -> str:
    if isinstance(path, (list, pd.DataFrame)):  # run records in memory (api.compare takes them)
        return "runs"
    path = Path(path)
    if path.is_dir():
        return "runs"
    if path.is_file():
        return "benchmark"
    raise ResultError(f"{path} does not exist")


def load_records(source) -> list:
    """The RunResults of a results folder, of load_results' DataFrame (its `result` column), or a list of
    RunResults as run() returns them."""
    from ..result import RunResult

    if isinstance(source, pd.DataFrame):
        if "result" not in source.columns:
            raise ConfigError("compare takes load_results' DataFrame; this one has no 'result' column")
        found = list(source["result"])
    elif isinstance(source, list):
        found = source
    else:
        found = results.load_results(source)
    if not all(isinstance(r, RunResult) for r in found):
        raise ConfigError("compare takes RunResults (as run() and load_results()['result'] give them)")
    if not found:
        raise ResultError(f"no run results in {_shown(source)} (a results folder holds runs/*.json)")
    return found


def finish(rows, what: str) -> pd.DataFrame:
    if not rows:
        raise ResultError(f"no configuration in common between {what}: nothing to compare")
    frame = pd.DataFrame(rows)
    frame["verdict_text"] = [verdict_text(row) for _, row in frame.iterrows()]
    return frame


def run_pairs(base_sides: dict, new_sides: dict, threshold: float, base_label: str, new_label: str) -> list:
    """A row per configuration present on both sides, in the base side's order."""
    rows = []
    for key, base in base_sides.items():
        new = new_sides.get(key)
        if new is None:
            continue
        timing, timing_from = pairing.compare_sides(base, new, threshold)
        rows.append({
            "base": base_label, "new": new_label, "family": base.config.get("family"),
            "impl": base.config.get("impl"), "configuration": pairing.setting_text(base.config),
            "base_seconds": _median(base.seconds), "new_seconds": _median(new.seconds),
            **timing.as_dict("ratio"), "timing_from": timing_from,
            **accuracy_columns(base.accs, base.n_eval, new.accs, new.n_eval),
            **differences(base.env, new.env),
            "timing_unstable": base.unstable or new.unstable,
        })
    return rows


def _median(values) -> float:
    return float(np.median(values)) if len(values) else math.nan


def accuracy_columns(base_accs, base_n_eval, new_accs, new_n_eval) -> dict:
    """Mean test accuracy of each side, their difference NEW − BASE with its 95 % band, and a word."""
    base, new = stats.mean_interval(base_accs), stats.mean_interval(new_accs)
    out = {"base_acc": base["mean"], "new_acc": new["mean"], "acc_diff": new["mean"] - base["mean"],
           "acc_diff_ci_low": math.nan, "acc_diff_ci_high": math.nan, "accuracy": "not recorded"}
    n_base, n_new = _known_mean(base_n_eval), _known_mean(new_n_eval)
    if not base["n"] or not new["n"] or n_base is None or n_new is None:
        return out  # without the number of test images there is no binomial noise to weigh it against
    band = stats.accuracy_band(base["mean"], n_base, new["mean"], n_new,
                               _variance(base), base["n"], _variance(new), new["n"])
    diff = out["acc_diff"]
    word = "within noise" if abs(diff) <= band else ("higher" if diff > 0 else "lower")
    return dict(out, acc_diff_ci_low=diff - band, acc_diff_ci_high=diff + band, accuracy=word)


def _known_mean(values):
    known = [v for v in values if v]
    return float(np.mean(known)) if known and len(known) == len(values) else None


def _variance(summary: dict) -> float:
    return summary["std"] ** 2 if summary["n"] > 1 else 0.0


def differences(base_env: dict, new_env: dict) -> dict:
    """base_<key> / new_<key> for every env key, and `differs`: the keys whose values differ, in words."""
    out, parts = {}, []
    for key in pairing.ENV_KEYS:
        values = ["/".join(sorted(env.get(key, ()))) or "?" for env in (base_env, new_env)]
        out[f"base_{key}"], out[f"new_{key}"] = values
        same_as_cpu = key == "device_name" and values == [out["base_cpu_model"], out["new_cpu_model"]]
        if values[0] != values[1] and not same_as_cpu:  # on the CPU the device is the CPU: say it once
            parts.append(f"{key} {values[0]} → {values[1]}")
    recorded = any(value != "?" for key in pairing.ENV_KEYS for value in (out[f"base_{key}"], out[f"new_{key}"]))
    out["differs"] = "; ".join(parts) or ("same environment" if recorded else "nothing recorded")
    return out


# ---------------------------------------------------------------- pytest-benchmark JSON
# machine_info key (pytest-benchmark's, and bench/conftest.py's additions) -> env key of a run record
MACHINE_KEYS = {"cpu_model": ("cpu", "brand_raw"), "device_name": ("cuda_device",), "torch": ("torch",),
                "threads": ("torch_threads",), "host": ("node",), "python": ("python_version",)}


def load_benchmarks(path) -> tuple[dict, dict]:
    """(benchmark full name -> its entry, env as pairing.Side.env) of one pytest-benchmark JSON file."""
    from .benchtables import load_benchmark_files  # benchtables builds its version table from this module

    ((_, parsed),) = load_benchmark_files(path)
    machine, env = parsed.get("machine_info") or {}, {}
    for key, where in MACHINE_KEYS.items():
        value = machine
        for step in where:
            value = value.get(step) if isinstance(value, dict) else None
        if value is not None:
            env[key] = {str(value)}
    return {b.get("fullname") or b.get("name"): b for b in parsed["benchmarks"]}, env


def benchmark_timing(base: dict, new: dict, threshold: float) -> tuple[stats.Comparison, float, float, str]:
    """Welch on the rounds themselves when both files kept them (a --benchmark-json file does; an autosaved
    one with --benchmark-save-data), else on the means and standard deviations pytest-benchmark always writes."""
    if base.get("data") and new.get("data"):
        comparison = stats.compare_times(base["data"], new["data"], threshold)
        return comparison, _median(base["data"]), _median(new["data"]), "benchmark rounds"
    comparison = stats.compare_from_stats(base["mean"], base["stddev"], base["rounds"], new["mean"],
                                          new["stddev"], new["rounds"], threshold)
    return comparison, base["mean"], new["mean"], "benchmark mean ± sd"


def benchmark_rows(base_path, new_path, threshold: float) -> list[dict]:
    (base_benches, base_env), (new_benches, new_env) = load_benchmarks(base_path), load_benchmarks(new_path)
    rows = []
    for name, base in base_benches.items():
        new = new_benches.get(name)
        if new is None:
            continue
        timing, base_s, new_s, how = benchmark_timing(base["stats"], new["stats"], threshold)
        extra_base, extra_new = base.get("extra_info") or {}, new.get("extra_info") or {}
        rows.append({
            "base": str(base_path), "new": str(new_path), "family": extra_base.get("family"),
            "impl": extra_base.get("impl"), "configuration": new.get("name") or name,
            "base_seconds": base_s, "new_seconds": new_s, **timing.as_dict("ratio"), "timing_from": how,
            **accuracy_columns(*_accuracy(extra_base), *_accuracy(extra_new)),
            **differences(base_env, new_env), "timing_unstable": False,
        })
    return rows


def _accuracy(extra: dict) -> tuple[list, list]:
    """([test accuracy], [test images]) of a training benchmark; ([], []) for one without accuracy."""
    if extra.get("test_acc") is None:
        return [], []
    return [extra["test_acc"]], [extra.get("test_size")]


def slower(frame: pd.DataFrame) -> pd.DataFrame:
    """The pairs that gate: slower beyond the threshold, with significance."""
    return frame[frame["verdict"] == "slower"]


# ---------------------------------------------------------------- shown as tables, written as files
COLUMNS = [
    render.Column("configuration", fmt="text"),
    render.Column("base_seconds", "base", "duration"), render.Column("new_seconds", "new", "duration"),
    render.Column("ratio", "new/base (95 % CI)", "ratio"), render.Column("verdict_text", "verdict", "text"),
    render.Column("new_acc", "test acc", "acc"), render.Column("acc_diff", "Δ acc (95 % band)", "diff"),
    render.Column("accuracy", fmt="text"), render.Column("differs", "what differs", "text"),
]
GROUP_COLUMNS = [render.Column("base", fmt="text"), render.Column("new", fmt="text")]


def columns(frame: pd.DataFrame) -> list:
    """The shown columns; base and new labels only when they vary (several --by groups), the noise flag
    only when a run was recorded as timing_unstable."""
    varied = frame["new"].nunique() > 1 or frame["base"].nunique() > 1
    flagged = [render.Column("timing_unstable", "timing unstable", "text")] if frame["timing_unstable"].any() else []
    return (GROUP_COLUMNS if varied else []) + COLUMNS + flagged


def verdict_text(row) -> str:
    """The verdict, with what would decide an inconclusive one or why it cannot be decided."""
    text = row["verdict"]
    needed = row.get("rounds_needed")
    if text == "inconclusive" and needed is not None and not pd.isna(needed):
        text += f" (about {int(needed)} paired rounds would decide)"
    elif text == "inconclusive" and row.get("note"):
        text += f" ({row['note']})"
    return text


def explanation(frame: pd.DataFrame, threshold: float) -> str:
    timed = " / ".join(sorted(set(frame["timing_from"])))
    band = f"1 ± {percent(threshold)}"
    return (f"Time from {timed}: base and new are median epoch seconds (means where a benchmark file kept "
            f"only mean ± sd); new/base is the mean per-round ratio of paired block times (runs of one "
            f"interleave group) or else the ratio of geometric means (Welch's t-test on log times), with "
            f"its 95 % interval. slower / faster: p < {stats.ALPHA:g} and a ratio beyond {band}; "
            f"equivalent: the 90 % interval inside {band}; anything else is inconclusive. "
            f"Accuracy: mean test accuracy of new; Δ = new − base with the 95 % band of binomial noise "
            f"(p(1−p)/n test images, each side) plus the seeds' variance of each mean.")


def document(frame: pd.DataFrame, threshold: float) -> str:
    sides = f"base `{frame['base'].iloc[0]}`, new " + ", ".join(f"`{v}`" for v in dict.fromkeys(frame["new"]))
    counts = frame["verdict"].value_counts()
    tally = ", ".join(f"{counts[v]} {v}" for v in counts.index)
    return "\n".join(["# mnistbench compare", "", f"Compared: {sides}. {len(frame)} pair(s): {tally}.", "",
                      explanation(frame, threshold), "", render.to_markdown(frame, columns(frame)), "",
                      "CSV: [compare.csv](compare.csv)", ""])


def write(frame: pd.DataFrame, out, threshold: float) -> tuple[Path, Path]:
    """compare.md and compare.csv in out (created if needed)."""
    out = files.make_folder(out, "--out folder")  # OutputError in one line: a file there, no permission
    markdown, csv = out / "compare.md", out / "compare.csv"
    files.atomic_write_text(markdown, document(frame, threshold))  # UTF-8 whatever the locale: Δ, ±, →
    files.atomic_write_text(csv, render.to_csv(frame))
    return markdown, csv
