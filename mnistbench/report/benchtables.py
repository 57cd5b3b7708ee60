"""Tables from benchmark output: pytest-benchmark timings beside accuracy, and results across torch versions.

pytest-benchmark's own terminal table cannot show `extra_info`, where the training benchmarks keep their
accuracies; `benchmark_frame` reads its JSON (one `--benchmark-json` file, or a folder of saved runs such
as `.benchmarks/`) into one row per benchmark, and `benchmark_report_frame` puts timings and accuracy
side by side. `cross_version_report_frame` puts runs from several torch versions (a tox matrix) next to
each other. Both are rendered by report.render like every other table.
"""
from __future__ import annotations

import json
import re
from pathlib import Path

from .. import registry
from ..results import ResultError
from . import render

STATS = ("median", "iqr", "mean", "stddev", "min", "max", "rounds", "iterations")
EXTRA = ("family", "impl", "device", "batch_size", "kind", "status", "test_acc", "best_val_acc", "epochs",
         "train_seconds", "train_samples_per_s", "samples_per_s")


def load_benchmark_files(source) -> list[tuple[Path, dict]]:
    """(path, parsed JSON) of a pytest-benchmark file, or of every one found under a folder (recursively)."""
    source = Path(source)
    if source.is_dir():
        candidates = sorted(source.rglob("*.json"))
    elif source.is_file():
        candidates = [source]
    else:
        raise ResultError(f"benchmark file or folder {source} does not exist")
    found = []
    for path in candidates:
        try:
            parsed = json.loads(path.read_text())
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            if source.is_file():
                raise ResultError(f"{path} is not readable JSON: {exc}") from None
            continue  # a folder may hold other files; only pytest-benchmark output counts
        if isinstance(parsed, dict) and isinstance(parsed.get("benchmarks"), list):
            found.append((path, parsed))
        elif source.is_file():
            raise ResultError(f"{path} is not pytest-benchmark JSON (no 'benchmarks' list)")
    if not found:
        raise ResultError(f"no pytest-benchmark JSON under {source} (write one with --benchmark-json FILE)")
    return found


def benchmark_frame(source):
    """One row per benchmark per file: file, saved time, torch, group, name, stats (seconds), extra_info."""
    import pandas as pd

    rows = []
    for path, parsed in load_benchmark_files(source):
        machine = parsed.get("machine_info") or {}
        for bench in parsed["benchmarks"]:
            stats = bench.get("stats") or {}
            extra = bench.get("extra_info") or {}
            row = {
                "file": str(path),
                "saved": parsed.get("datetime"),
                "torch": machine.get("torch"),
                "tox_env": machine.get("tox_env"),
                "cuda_device": machine.get("cuda_device"),
                "group": bench.get("group"),
                "name": bench.get("name"),
            }
            row.update({f"{k}_s" if k not in ("rounds", "iterations") else k: stats.get(k) for k in STATS})
            row.update({k: extra.get(k) for k in EXTRA})
            row.update({k: v for k, v in extra.items() if k not in row})
            rows.append(row)
    return pd.DataFrame(rows)


def version_key(version: str):
    """Order torch versions numerically (2.9 before 2.13); the local label (+cpu, +cu130) breaks ties."""
    release = re.match(r"\d+(\.\d+)*", str(version))
    numbers = tuple(int(n) for n in release.group(0).split(".")) if release else ()
    return numbers, str(version)


def torch_versions(runs) -> list[str]:
    """The distinct torch versions in a runs frame (results.to_frame), oldest first."""
    if "env_torch" not in runs.columns:
        return []
    return sorted(runs["env_torch"].dropna().unique().tolist(), key=version_key)


def cross_version_frame(runs):
    """Rows (family, impl); columns (torch version, metric) with metric in train_s, test_acc, runs.

    Cells are medians over the finished (status ok) runs of that implementation under that torch: pass
    comparable runs (the same settings, e.g. one tox results folder), as nothing here matches configs.
    """
    import pandas as pd

    needed = {"family", "impl", "status", "env_torch", "train_seconds", "test_acc"}
    missing = needed - set(runs.columns)
    if missing:
        raise ResultError(f"runs lack {', '.join(sorted(missing))}: not a results.to_frame() table")
    ok = runs[(runs["status"] == "ok") & runs["env_torch"].notna()]
    if ok.empty:
        raise ResultError("no finished runs with a recorded torch version")
    cells = ok.groupby(["family", "impl", "env_torch"]).agg(
        train_s=("train_seconds", "median"), test_acc=("test_acc", "median"), runs=("test_acc", "size"))
    wide = cells.unstack("env_torch")
    wide.columns = wide.columns.swaplevel(0, 1)
    versions = sorted(ok["env_torch"].unique().tolist(), key=version_key)
    wide = wide.reindex(columns=pd.MultiIndex.from_product([versions, ["train_s", "test_acc", "runs"]]))
    family_rank = {f: i for i, f in enumerate(registry.families())}
    impl_rank = {impl: i for i, impl in enumerate(registry.impl_names())}
    order = sorted(wide.index, key=lambda k: (family_rank.get(k[0], 99), impl_rank.get(k[1], 99), k))
    return wide.loc[order]


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


def cross_version_report_frame(runs):
    """cross_version_frame flattened for a report.Table: family, impl, then per torch version
    `train_seconds (V)` and `test_acc (V)` (medians over ok runs)."""
    import pandas as pd

    wide = cross_version_frame(runs)
    out = pd.DataFrame({"family": [f for f, _ in wide.index], "impl": [i for _, i in wide.index]})
    for version in dict.fromkeys(v for v, _ in wide.columns):
        out[f"train_seconds ({version})"] = wide[(version, "train_s")].to_numpy(dtype=float)
        out[f"test_acc ({version})"] = wide[(version, "test_acc")].to_numpy(dtype=float)
    return out


def cross_version_columns(frame) -> list:
    columns = [render.Column("family"), render.Column("impl")]
    for name in frame.columns[2:]:
        metric, version = name.split(" ", 1)
        columns.append(render.Column(name, f"{'train s' if metric == 'train_seconds' else 'test acc'} {version}",
                                     "seconds" if metric == "train_seconds" else "acc"))
    return columns


def cross_version_table(runs) -> str:
    """Markdown: family | impl | per torch version: median train seconds and median test accuracy."""
    frame = cross_version_report_frame(runs)
    return render.to_markdown(frame, cross_version_columns(frame), na_text="-")


def report_tables(folder, benchmarks=None) -> list:
    """Extra report.Table objects for `mnistbench report FOLDER [--benchmarks FILE_OR_DIR]`:

    - "benchmarks": pytest-benchmark timings joined with accuracy, when `benchmarks` is given;
    - "cross_version": median train seconds and test accuracy per torch version, when the runs in
      FOLDER come from more than one torch version (e.g. FOLDER = results/tox after `tox`).
    """
    from .. import results
    from .document import Table

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
    runs = results.to_frame(results.load_runs(folder, warn=False)) if Path(folder).is_dir() else None
    if runs is not None and len(torch_versions(runs)) > 1:
        tables.append(Table(
            name="cross_version", title="Across torch versions", frame=(frame := cross_version_report_frame(runs)),
            columns=cross_version_columns(frame),
            note="Median over finished runs of each implementation under each torch version; compare runs "
                 "made with the same settings (one tox results folder).",
        ))
    return tables
