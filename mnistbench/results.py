"""Run files: one JSON file per run under <out>/runs/, written atomically; a folder read back as RunResults.

Reading validates (resultfile.parse): a file that cannot be a run is skipped, with the reason. One
result counts per run identity (its configuration and seed, in one environment): a copied file, a rerun
or two sweeps into one folder count once, and the extra files are named with which one was kept and why.
"""
from __future__ import annotations

import json
import sys
import warnings
from dataclasses import dataclass, field
from pathlib import Path

from .files import atomic_write_text, read_regular_text
from .result import RunResult, config_key
from .resultfile import ResultError, parse

__all__ = ["Loaded", "ResultError", "atomic_write_text", "config_key", "environment_id", "load", "read_result",
           "save", "to_frame", "ResultWarning", "load_results", "finished_keys"]
MAX_FILE_BYTES = 64 * 2**20  # a run file is a few hundred kB at most; anything far larger is not one


def save(result: RunResult, out_dir: Path) -> Path:
    runs = Path(out_dir) / "runs"
    runs.mkdir(parents=True, exist_ok=True)
    path = runs / f"{result.run_id}.json"
    atomic_write_text(path, json.dumps(result.to_json(), indent=1, allow_nan=False))
    return path


def _no_constants(name: str):
    raise ValueError(f"{name} (mnistbench writes no NaN or Infinity)")


def read_result(path: Path) -> RunResult:
    """One run file, checked: ResultError (naming the file and why) if it is not a run mnistbench wrote."""
    path = Path(path)
    try:
        # a named pipe or a device would block or never end: only a regular file is opened
        raw = json.loads(read_regular_text(path, MAX_FILE_BYTES), parse_constant=_no_constants)
    except ResultError:
        raise
    except (OSError, UnicodeDecodeError, ValueError, RecursionError) as exc:
        reason = "nested too deeply" if isinstance(exc, RecursionError) else getattr(exc, "strerror", None) or exc
        raise ResultError(f"{path} is not a readable JSON result: {reason}") from None
    try:
        return parse(raw)
    except ResultError as exc:
        raise ResultError(f"{path}: {exc}") from None


def environment_id(env: dict) -> tuple:
    """What makes two runs of one configuration different measurements: the host and the Python
    environment (its prefix; older files: the torch version and tox env)."""
    return (env.get("host"), env.get("prefix") or (env.get("torch"), env.get("tox_env")))


def run_identity(result: RunResult) -> tuple:
    return (result.config_key, environment_id(result.env))


@dataclass
class Loaded:
    """A folder's runs: one result per run identity, the files skipped (path, reason) and the duplicate
    files set aside (extra path, kept path, why), each to be named in a warning."""

    results: list[RunResult] = field(default_factory=list)
    skipped: list[tuple[Path, str]] = field(default_factory=list)
    duplicates: list[tuple[Path, Path, str]] = field(default_factory=list)

    def warnings(self) -> list[str]:
        return [f"skipping {reason}" for _, reason in self.skipped] + [
            f"{extra} repeats the run in {kept} (same configuration, seed and environment): counted once, "
            f"keeping {kept.name} ({why})" for extra, kept, why in self.duplicates]


def _preference(item: tuple[Path, RunResult]):
    """Which of several files of one run counts: a finished run over a failed one, a file named after
    its own run id over a copy, then the newest."""
    path, result = item
    return (result.finished, path.stem == result.run_id, result.created, path.name)


def _why(kept: RunResult, kept_path: Path, other: RunResult, other_path: Path) -> str:
    if kept.finished != other.finished:
        return "the finished one"
    if (kept_path.stem == kept.run_id) != (other_path.stem == other.run_id):
        return "the file named after its run id; the other is a copy"
    return "the newest"


def runs_folder(folder: Path) -> Path:
    folder = Path(folder)
    return folder / "runs" if (folder / "runs").is_dir() else folder


def load(folder: Path) -> Loaded:
    """Every valid run under folder/runs (or folder itself), one per run identity."""
    loaded, by_identity = Loaded(), {}
    for path in sorted(runs_folder(folder).glob("*.json")):
        try:
            result = read_result(path)
        except ResultError as exc:
            loaded.skipped.append((path, str(exc)))
            continue
        by_identity.setdefault(run_identity(result), []).append((path, result))
    for candidates in by_identity.values():
        kept_path, kept = max(candidates, key=_preference)
        for path, result in candidates:
            if path != kept_path:
                loaded.duplicates.append((path, kept_path, _why(kept, kept_path, result, path)))
        loaded.results.append(kept)
    return loaded


class ResultWarning(UserWarning):
    """A run file skipped as unreadable, or set aside as a duplicate, while reading a folder."""


def load_results(folder: Path) -> list[RunResult]:
    """The runs of a folder; each skipped or duplicate file is a ResultWarning naming it."""
    loaded = load(folder)
    for line in loaded.warnings():
        warnings.warn(line, ResultWarning, stacklevel=2)
    return loaded.results


def to_frame(source):
    """One row per run (RunResult.to_row, and the RunResult itself in `result`): from a folder, or from
    RunResults."""
    import pandas as pd

    results = load(source).results if isinstance(source, (str, Path)) else list(source)
    return pd.DataFrame([{**r.to_row(), "result": r} for r in results])


def same_environment(result: RunResult) -> bool:
    """Whether a run was made in this Python environment (older files, which do not say, count as it)."""
    return result.env.get("prefix", sys.prefix) == sys.prefix


def finished_keys(folder: Path) -> set[str]:
    """config_key of every finished (ok or diverged) run in folder from this Python environment: what
    --resume may skip (a run of another torch environment into the same folder is not this one's)."""
    return {r.config_key for r in load(folder).results if r.finished and same_environment(r)}
