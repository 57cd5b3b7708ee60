"""Tables from benchmark output: pytest-benchmark timings beside accuracy, and results across torch versions.

pytest-benchmark's own terminal table cannot show `extra_info`, where the training benchmarks keep their
accuracies; `benchmark_frame` reads its JSON (one `--benchmark-json` file, or a folder of saved runs such
as `.benchmarks/`) into one row per benchmark, and `benchmark_report_frame` puts timings and accuracy
side by side. `cross_version_frame` puts runs from several torch versions (a tox matrix) next to each
other with `mnistbench compare`'s statistics. Both are rendered by report.render like every other table.
"""
from __future__ import annotations

import json
import math
import sys
from pathlib import Path

from .. import files, registry, stats
from ..results import ResultError
from . import pairing, render
from .render import Table

STATS = ("median", "iqr", "mean", "stddev", "min", "max", "rounds", "iterations")
EXTRA = ("family", "impl", "device", "batch_size", "kind", "status", "test_acc", "best_val_acc", "epochs",
         "train_seconds", "train_samples_per_s", "samples_per_s")


def load_benchmark_files(source) -> list[tuple[Path, dict]]:
    """(path, parsed JSON) of a pytest-benchmark file, or of every one found under a folder (recursively),
    with only the benchmark entries that have what the tables need (check_entry). In a folder, a file
    that cannot be read as JSON, or a bad entry, is skipped with a warning naming it; JSON of another
    kind is passed over. A single file must be pytest-benchmark JSON with at least one usable entry."""
    source = Path(source)
    if source.is_dir():
        candidates = sorted(p for p in source.rglob("*.json") if p.is_file())  # no pipe, no folder
    elif source.is_file():
        candidates = [source]
    elif source.exists():
        raise ResultError(f"{source} is not a regular file or folder (a pipe or a device?)")
    else:
        raise ResultError(f"benchmark file or folder {source} does not exist")
    found = []
    for path in candidates:
        try:
            parsed = json.loads(files.read_regular_text(path))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
            problem = f"{path} is not readable JSON: {_why(exc)}"
            if source.is_file():
                raise ResultError(problem) from None
            _warn(problem)  # a truncated or half-copied benchmark file among the others
            continue
        if not (isinstance(parsed, dict) and isinstance(parsed.get("benchmarks"), list)):
            if source.is_file():
                raise ResultError(f"{path} is not pytest-benchmark JSON (no 'benchmarks' list)")
            continue  # a folder may hold other JSON; only pytest-benchmark output counts
        entries = []
        for index, entry in enumerate(parsed["benchmarks"]):
            problem = check_entry(entry)
            if problem:
                _warn(f"{path}: benchmark {index + 1} {problem}")
            else:
                entries.append(entry)
        if not entries:
            problem = f"{path} holds no usable benchmark"
            if source.is_file():
                raise ResultError(problem)
            _warn(problem)
            continue
        machine = parsed.get("machine_info")
        found.append((path, {**parsed, "benchmarks": entries, "machine_info": machine if isinstance(machine, dict)
                             else {}}))
    if not found:
        raise ResultError(f"no pytest-benchmark JSON under {source} (write one with --benchmark-json FILE)")
    return found


REQUIRED_STATS = ("mean", "stddev", "median", "min", "max", "rounds")


def check_entry(entry) -> str | None:
    """What makes a benchmark entry unusable, in words (None: usable): a name, and stats with finite
    non-negative times, positive mean and median, and a whole number of rounds >= 1."""
    if not isinstance(entry, dict):
        return f"is a {type(entry).__name__}, not an object"
    if not isinstance(entry.get("name"), str) or not entry["name"]:
        return "has no name"
    stats = entry.get("stats")
    if not isinstance(stats, dict):
        return f"({entry['name']}) has no stats"
    for key in (*REQUIRED_STATS, "iqr", "iterations"):
        value = stats.get(key)
        if value is None and key not in REQUIRED_STATS:
            continue
        if not _number(value) or value < 0:
            return f"({entry['name']}) has stats.{key} = {value!r}, not a finite number >= 0"
    if stats["mean"] <= 0 or stats["median"] <= 0 or stats["rounds"] < 1 or stats["rounds"] != int(stats["rounds"]):
        return f"({entry['name']}) has a mean or median of 0 or rounds < 1"
    data = stats.get("data")
    if data is not None and not (isinstance(data, list) and all(_number(v) and v > 0 for v in data)):
        return f"({entry['name']}) has stats.data that is not a list of positive times"
    for key in ("fullname", "group"):
        if entry.get(key) is not None and not isinstance(entry[key], str):
            return f"({entry['name']}) has a {key} that is not text"
    return None


def _number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _why(exc: Exception) -> str:
    return getattr(exc, "strerror", None) or str(exc) or type(exc).__name__


def _warn(message: str) -> None:
    print(f"warning: skipping {message}", file=sys.stderr)


def _text(value):
    """A machine_info value as text for the tables (None stays None)."""
    return None if value is None else str(value)


def benchmark_frame(source):
    """One row per benchmark per file: file, saved time, torch, group, name, stats (seconds), extra_info."""
    import pandas as pd

    rows = []
    for path, parsed in load_benchmark_files(source):
        machine = parsed.get("machine_info") or {}
        for bench in parsed["benchmarks"]:
            stats = bench["stats"]
            extra = bench.get("extra_info") if isinstance(bench.get("extra_info"), dict) else {}
            row = {
                "file": str(path),
                "saved": _text(parsed.get("datetime")),
                "torch": _text(machine.get("torch")),
                "tox_env": _text(machine.get("tox_env")),
                "cuda_device": _text(machine.get("cuda_device")),
                "group": bench.get("group"),
                "name": bench.get("name"),
            }
            row.update({f"{k}_s" if k not in ("rounds", "iterations") else k: stats.get(k) for k in STATS})
            row.update({k: _extra(extra.get(k), k) for k in EXTRA})
            row.update({k: v for k, v in extra.items() if k not in row})
            rows.append(row)
    return pd.DataFrame(rows)


NUMERIC_EXTRA = ("batch_size", "test_acc", "best_val_acc", "epochs", "train_seconds", "train_samples_per_s",
                 "samples_per_s")


def _extra(value, key):
    """An extra_info field as the tables read it: numbers for the numeric ones (anything else: missing),
    text for the rest."""
    if key in NUMERIC_EXTRA:
        return value if _number(value) else None
    return _text(value) if not isinstance(value, (dict, list)) else None


def torch_versions(records) -> list[str]:
    """The distinct torch versions of the finished runs, oldest first."""
    found = {str(r.env.get("torch")) for r in records if r.status == "ok" and r.env.get("torch")}
    return sorted(found, key=pairing.version_key)


def side_summary(side: pairing.Side) -> dict:
    """One configuration under one torch version: median steady-state epoch seconds with the 95 % interval
    of the median, mean test accuracy with its Student-t interval, and how many runs and epochs."""
    epochs, acc = stats.timing_summary(side.seconds), stats.mean_interval(side.accs)
    return {"epoch_seconds_median": epochs["median"], "epoch_seconds_ci_low": epochs["ci_low"],
            "epoch_seconds_ci_high": epochs["ci_high"], "epochs": epochs["n"], "test_acc_mean": acc["mean"],
            "test_acc_ci_low": acc["ci_low"], "test_acc_ci_high": acc["ci_high"], "runs": len(side.results)}


def cross_version_frame(records, threshold: float = stats.THRESHOLD):
    """One row per configuration and torch version, oldest version first. Each row has side_summary's
    figures and, against the oldest version that ran the same configuration, the time ratio with its
    95 % interval and verdict: the statistics of `mnistbench compare --by torch`."""
    import pandas as pd

    with_version = [r for r in records if r.env.get("torch")]
    if not any(r.status == "ok" for r in with_version):
        raise ResultError("no finished runs with a recorded torch version")
    _, grouped = pairing.groups(with_version, "torch")
    keys = sorted({key for _, sides in grouped for key in sides}, key=lambda k: _rank(json.loads(k)))
    rows = []
    for key in keys:
        base = None
        for version, sides in grouped:
            side = sides.get(key)
            if side is None:
                continue
            row = {"family": side.config["family"], "impl": side.config["impl"],
                   "configuration": pairing.setting_text(side.config), "torch": version, **side_summary(side)}
            if base is None:
                base, row["verdict"] = (version, side), "reference"
            else:
                comparison, row["timing_from"] = pairing.compare_sides(base[1], side, threshold)
                row.update(comparison.as_dict("ratio"))
                row["against"] = base[0]
            rows.append(row)
    return pd.DataFrame(rows)


def _rank(config: dict):
    family_rank = {f: i for i, f in enumerate(registry.families())}
    impl_rank = {impl: i for i, impl in enumerate(registry.impl_names())}
    family, impl = config.get("family"), config.get("impl")
    return family_rank.get(family, 99), impl_rank.get(impl, 99), json.dumps(config, sort_keys=True)


# ---------------------------------------------------------------- for `mnistbench report`
BENCHMARK_COLUMNS = [
    render.Column("group"), render.Column("benchmark"), render.Column("torch"),
    render.Column("median", "median", "duration"), render.Column("iqr", "IQR", "duration"),
    render.Column("rounds", fmt="int"), render.Column("test_acc"), render.Column("best_val_acc"),
    render.Column("epochs", fmt="int"), render.Column("samples_per_s"),
]


def benchmark_report_frame(frame):
    """benchmark_frame rows for a report table: one row per benchmark, fastest first in a group;
    median and IQR in seconds (no IQR from a single round), then accuracy and samples/s: training
    throughput from mnistbench's own timers for a training benchmark, batch size / median for a step."""
    import pandas as pd

    frame = frame.sort_values(["group", "torch", "median_s"], na_position="last", kind="stable")
    throughput = frame["train_samples_per_s"].where(frame["train_samples_per_s"].notna(), frame["samples_per_s"])
    return pd.DataFrame({
        "group": frame["group"].tolist(),
        "benchmark": [f"`{name}`" for name in frame["name"]],
        "torch": frame["torch"].tolist(),
        "median": frame["median_s"].astype(float).tolist(),
        "iqr": [v if (r or 0) > 1 else None for v, r in zip(frame["iqr_s"], frame["rounds"])],
        "rounds": frame["rounds"].astype(float).tolist(),
        "test_acc": frame["test_acc"].astype(float).tolist(),
        "best_val_acc": frame["best_val_acc"].astype(float).tolist(),
        "epochs": frame["epochs"].astype(float).tolist(),
        "samples_per_s": throughput.astype(float).tolist(),
    })


def render_benchmarks(source) -> str:
    """The Markdown benchmark table of a --benchmark-json file or a folder of saved runs."""
    frame = benchmark_frame(source)
    if frame.empty:
        raise ResultError("no benchmarks to tabulate")
    return render.to_markdown(benchmark_report_frame(frame), BENCHMARK_COLUMNS, na_text="-")


CROSS_VERSION_COLUMNS = [
    render.Column("configuration", fmt="text"), render.Column("torch", fmt="text"),
    render.Column("epoch_seconds", "epoch s (95 % CI)", "seconds"),
    render.Column("ratio", "vs oldest (95 % CI)", "ratio"), render.Column("verdict", fmt="text"),
    render.Column("test_acc", "test acc (95 % CI)", "acc"), render.Column("runs", "n", "int"),
]


def cross_version_table(records) -> str:
    """Markdown: per configuration and torch version, epoch seconds, the ratio to the oldest version with
    its verdict, and test accuracy over n runs."""
    return render.to_markdown(cross_version_frame(records), CROSS_VERSION_COLUMNS, na_text="-")


def report_tables(folder, benchmarks=None) -> list:
    """Extra report.Table objects for `mnistbench report FOLDER [--benchmarks FILE_OR_DIR]`:

    - "benchmarks": pytest-benchmark timings joined with accuracy, when `benchmarks` is given;
    - "cross_version": epoch seconds and test accuracy per configuration and torch version, with the
      ratio to the oldest version and its verdict, when the runs in FOLDER come from more than one torch
      version (e.g. FOLDER = results/tox after `tox`).
    """
    from .. import results

    tables = []
    if benchmarks is not None:
        frame = benchmark_frame(benchmarks)
        if frame.empty:
            raise ResultError(f"no benchmarks in {benchmarks}")
        machines = sorted({f"torch {t}" + (f", {d}" if d else "") for t, d in
                           zip(frame["torch"].fillna("?"), frame["cuda_device"].fillna(""))})
        tables.append(Table(
            name="benchmarks", title="pytest-benchmark: timings and accuracy", frame=benchmark_report_frame(frame),
            columns=BENCHMARK_COLUMNS,
            machine="From " + ", ".join(sorted({Path(f).name for f in frame["file"]})) + "; " + "; ".join(machines)
            + ".",
            note="median/IQR: pytest-benchmark's wall time per round (a whole `train.run` for a training "
                 "benchmark, one step for a step benchmark); samples/s: training throughput from mnistbench's "
                 "own timers (training), batch size / median (step).",
        ))
    records = results.load(folder).results if Path(folder).is_dir() else []
    if len(torch_versions(records)) > 1:
        tables.append(Table(
            name="cross_version", title="Across torch versions", frame=cross_version_frame(records),
            columns=CROSS_VERSION_COLUMNS,
            note="Runs of the same configuration (every setting but seed and threads) under each torch "
                 "version. Epoch s: median steady-state epoch (every epoch but the first, all seeds pooled) "
                 "with the 95 % interval of the median. vs oldest: ratio of geometric mean epoch times to "
                 "the oldest version that ran it, with its 95 % interval; faster / slower only when Welch's "
                 "t-test on log times is significant and the ratio is beyond "
                 f"{100 * stats.THRESHOLD:g} %; equivalent when its 90 % interval lies inside 1 ± "
                 f"{100 * stats.THRESHOLD:g} %; else inconclusive. The samples tested are the runs when each side has two or "
                 "more, otherwise the epochs of the one run, whose interval leaves out how the machine "
                 "drifts between runs: with n = 1 the verdict is always inconclusive. "
                 "Test acc: mean ± 95 % interval over the n runs.",
        ))
    return tables
