"""Run results: one JSON file per run, written atomically; a folder of them becomes one DataFrame."""
from __future__ import annotations

import hashlib
import json
import math
import sys
import time
import uuid
from pathlib import Path

from . import env, files
from .config import RunConfig

REQUIRED_KEYS = ("run_id", "config", "status", "test_acc", "history")
STATUSES = ("ok", "diverged", "failed")


class ResultError(RuntimeError):
    """A result file or folder that is not what it claims to be."""


def config_key(cfg: RunConfig) -> str:
    """A short hash of everything that defines a run's outcome (not its tags): the resume key."""
    payload = {k: v for k, v in cfg.to_dict().items() if k != "tags"}
    return hashlib.sha1(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:10]


def new_run_id(cfg: RunConfig) -> str:
    """family-impl-confighash-time-random: unique across parallel processes (tox envs, shells)."""
    stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime())
    return f"{cfg.family}-{cfg.impl}-{config_key(cfg)}-{stamp}-{uuid.uuid4().hex[:6]}"


def _finite_or_none(value):
    if isinstance(value, float) and not math.isfinite(value):
        return None  # JSON has no NaN or Infinity; null reads back as missing
    return value


def _clean(obj):
    if isinstance(obj, dict):
        return {k: _clean(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_clean(v) for v in obj]
    return _finite_or_none(obj)


def make_result(cfg: RunConfig, fitted: dict, device, environment: dict | None = None) -> dict:
    """The flat record saved for a run (see README 'Result files' for the keys). environment: where the
    run executed, when not here (default: env.environment(device) of this process)."""
    record = {
        "run_id": new_run_id(cfg),
        "config_key": config_key(cfg),
        "config": cfg.to_dict(),
        "family": cfg.family,
        "impl": cfg.impl,
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    record.update({k: v for k, v in fitted.items() if k != "model"})
    record["env"] = env.environment(device) if environment is None else environment
    return _clean(record)


# moved to files.py (UTF-8, the umask's mode, OutputError naming the path); re-exported for its callers
atomic_write_text = files.atomic_write_text


def save(record: dict, out_dir: Path) -> Path:
    runs = Path(out_dir) / "runs"
    runs.mkdir(parents=True, exist_ok=True)
    path = runs / f"{record['run_id']}.json"
    atomic_write_text(path, json.dumps(record, indent=1, allow_nan=False))
    return path


def read_run(path: Path) -> dict:
    """One result file, checked: raises ResultError if it is not a run record."""
    try:
        record = json.loads(Path(path).read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ResultError(f"{path} is not a readable JSON result: {exc}") from None
    if not isinstance(record, dict) or any(k not in record for k in REQUIRED_KEYS):
        raise ResultError(f"{path} is not a run result (missing {', '.join(REQUIRED_KEYS)})")
    if record["status"] not in STATUSES or not isinstance(record["config"], dict):
        raise ResultError(f"{path} is not a run result (bad status or config)")
    return record


def load_runs(folder: Path, warn=True) -> list[dict]:
    """Every valid run under folder/runs (or folder itself); corrupt files are skipped with a warning."""
    folder = Path(folder)
    runs_dir = folder / "runs" if (folder / "runs").is_dir() else folder
    records = []
    for path in sorted(runs_dir.glob("*.json")):
        try:
            records.append(read_run(path))
        except ResultError as exc:
            if warn:
                print(f"warning: skipping {exc}", file=sys.stderr)
    return records


def to_frame(source):
    """One row per run: config fields flattened, flat metrics, env fields prefixed with env_."""
    import pandas as pd

    records = load_runs(source) if isinstance(source, (str, Path)) else list(source)
    rows = []
    for rec in records:
        row = {k: v for k, v in rec.items() if not isinstance(v, (dict, list))}
        row.update({k: v for k, v in rec["config"].items() if k != "tags"})
        row["tags"] = rec["config"].get("tags") or {}
        row.update({f"env_{k}": v for k, v in (rec.get("env") or {}).items()})
        for key in ("history", "per_class_acc", "confusion", "split_sizes"):
            row[key] = rec.get(key)
        rows.append(row)
    return pd.DataFrame(rows)


def ok_config_keys(folder: Path) -> set[str]:
    """config_key of every finished (ok or diverged) run in folder: what --resume may skip."""
    return {r.get("config_key") for r in load_runs(folder, warn=False) if r["status"] in ("ok", "diverged")}
