"""Tables from benchmark output: pytest-benchmark timings beside accuracy, and results across torch versions.

pytest-benchmark's own terminal table cannot show `extra_info`, where the training benchmarks keep their
accuracies; `benchmark_frame` reads its JSON (one `--benchmark-json` file, or a folder of saved runs such
as `.benchmarks/`) into one row per benchmark, and `benchmark_table` renders timings and accuracy side
by side. `cross_version_table` puts runs from several torch versions (a tox matrix) next to each other.
"""
from __future__ import annotations

import json
import math
import re
from pathlib import Path

from .config import FAMILIES
from .results import ResultError

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


def seconds(value) -> str:
    """A duration with a unit that keeps 3 significant digits readable: 2.69 s, 128 ms, 121 µs."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    for scale, unit in ((1, "s"), (1e-3, "ms"), (1e-6, "µs")):
        if value >= scale:
            return f"{value / scale:.3g} {unit}"
    return f"{value / 1e-9:.3g} ns"


def _num(value, spec) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    return format(value, spec)


def markdown_table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + " --- |" * len(header)]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines)


def benchmark_table(frame) -> str:
    """Markdown: one row per benchmark, grouped, fastest first in a group; timing stats then accuracy.

    samples/s is training throughput from mnistbench's own timers for a training benchmark, and batch
    size over the median for a step benchmark. Rows of several files (versions) carry their torch.
    """
    if frame.empty:
        raise ResultError("no benchmarks to tabulate")
    frame = frame.sort_values(["group", "torch", "median_s"], na_position="last", kind="stable")
    header = ["group", "benchmark", "torch", "median", "IQR", "rounds", "test acc", "best val acc", "epochs",
              "samples/s"]
    rows = []
    for _, row in frame.iterrows():
        throughput = row.get("train_samples_per_s")
        if throughput is None or (isinstance(throughput, float) and math.isnan(throughput)):
            throughput = row.get("samples_per_s")
        rows.append([
            row["group"] or "-", f"`{row['name']}`", row["torch"] or "-", seconds(row["median_s"]),
            seconds(row["iqr_s"]) if (row["rounds"] or 0) > 1 else "-", _num(row["rounds"], ".0f"),
            _num(row.get("test_acc"), ".4f"), _num(row.get("best_val_acc"), ".4f"),
            _num(row.get("epochs"), ".0f"), _num(throughput, ",.0f"),
        ])
    return markdown_table(header, rows)


def render_benchmarks(source) -> str:
    """The benchmark table of a --benchmark-json file or a folder of saved runs: for `report --benchmarks`."""
    return benchmark_table(benchmark_frame(source))


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
    family_rank = {f: i for i, f in enumerate(FAMILIES)}
    from .models import all_impls

    impl_rank = {impl: i for i, impl in enumerate(all_impls())}
    order = sorted(wide.index, key=lambda k: (family_rank.get(k[0], 99), impl_rank.get(k[1], 99), k))
    return wide.loc[order]


def cross_version_table(runs) -> str:
    """Markdown: family | impl | per torch version: median train s, median test acc (n runs if > 1)."""
    wide = cross_version_frame(runs)
    versions = list(dict.fromkeys(v for v, _ in wide.columns))
    header = ["family", "impl"]
    for version in versions:
        header += [f"train s ({version})", f"test acc ({version})"]
    rows = []
    for (family, impl), row in wide.iterrows():
        cells = [family, impl]
        for version in versions:
            n = row[(version, "runs")]
            note = f" (n={int(n)})" if isinstance(n, (int, float)) and not math.isnan(n) and n > 1 else ""
            cells += [_num(row[(version, "train_s")], ".2f") + note, _num(row[(version, "test_acc")], ".4f")]
        rows.append(cells)
    return markdown_table(header, rows)


# ---------------------------------------------------------------- for `mnistbench report`
def benchmark_report_frame(frame):
    """benchmark_frame rows for a report.Table: timings as text with units, accuracy numeric."""
    import pandas as pd

    frame = frame.sort_values(["group", "torch", "median_s"], na_position="last", kind="stable")
    throughput = frame["train_samples_per_s"].where(frame["train_samples_per_s"].notna(), frame["samples_per_s"])
    return pd.DataFrame({
        "group": frame["group"].tolist(),
        "benchmark": frame["name"].tolist(),
        "torch": frame["torch"].tolist(),
        "median": [seconds(v) for v in frame["median_s"]],
        "IQR": [seconds(v) if (r or 0) > 1 else None for v, r in zip(frame["iqr_s"], frame["rounds"])],
        "rounds": pd.Series([None if pd.isna(r) else int(r) for r in frame["rounds"]], dtype=object),
        "test_acc": frame["test_acc"].astype(float).tolist(),
        "best_val_acc": frame["best_val_acc"].astype(float).tolist(),
        "epochs": pd.Series([None if pd.isna(e) else int(e) for e in frame["epochs"]], dtype=object),
        "samples_per_s": throughput.astype(float).tolist(),
    })


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


def report_tables(folder, benchmarks=None) -> list:
    """Extra report.Table objects for `mnistbench report FOLDER [--benchmarks FILE_OR_DIR]`:

    - "benchmarks": pytest-benchmark timings joined with accuracy, when `benchmarks` is given;
    - "cross_version": median train seconds and test accuracy per torch version, when the runs in
      FOLDER come from more than one torch version (e.g. FOLDER = results/tox after `tox`).
    """
    from . import results
    from .report import Table

    tables = []
    if benchmarks is not None:
        frame = benchmark_frame(benchmarks)
        if frame.empty:
            raise ResultError(f"no benchmarks in {benchmarks}")
        machines = sorted({f"torch {t}" + (f", {d}" if d else "") for t, d in
                           zip(frame["torch"].fillna("?"), frame["cuda_device"].fillna(""))})
        tables.append(Table(
            name="benchmarks", title="pytest-benchmark: timings and accuracy", frame=benchmark_report_frame(frame),
            machine="From " + ", ".join(sorted({Path(f).name for f in frame["file"]})) + "; " + "; ".join(machines)
            + ".",
            note="median/IQR: pytest-benchmark's wall time per round (a whole `train.run` for a training "
                 "benchmark, one step for a step benchmark); samples/s: training throughput from mnistbench's "
                 "own timers (training), batch size / median (step).",
        ))
    runs = results.to_frame(results.load_runs(folder, warn=False)) if Path(folder).is_dir() else None
    if runs is not None and len(torch_versions(runs)) > 1:
        tables.append(Table(
            name="cross_version", title="Across torch versions", frame=cross_version_report_frame(runs),
            note="Median over finished runs of each implementation under each torch version; compare runs "
                 "made with the same settings (one tox results folder).",
        ))
    return tables
