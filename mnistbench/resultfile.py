"""A run file's JSON into a RunResult: upgrade() brings every earlier shape to the current one, parse()
checks that each field holds what the writer could have written, and raises ResultError naming it.

Schema history (the "schema" key; files without one are version 1):
  1  2026-11 and before: a flat record (its oldest files kept a solver's fit time in train_seconds). Derived figures were frozen in beside the raw data
     (epoch_seconds_median / _iqr / _ci_*, train_samples_per_s*, timing_unstable*, per_class_acc,
     epochs_run, train_seconds, best_val_*), the noise readings sat at the top level, each epoch carried
     its samples/s, and the config's family and impl were repeated outside it.
  2  2026-12: measured fields only (RunResult.to_json); noise readings in "noise"; interleaved runs carry
     "interleave" (group, block_steps, order_seed, blocks of {round, seconds, steps}).
A file of a newer schema than this mnistbench reads is refused: upgrade mnistbench to read it.
"""
from __future__ import annotations

import math
from dataclasses import fields

from .config import RunConfig, validate
from .result import SCHEMA_VERSION, STATUSES, Block, Epoch, Interleave, RunResult


class ResultError(RuntimeError):
    """A result file or folder that is not what it claims to be."""


NOISE_KEYS = ("load_avg_before", "cpu_steal_fraction", "other_load", "cpu_cores", "torch_threads", "cpu_governor")
EPOCH_FIELDS = tuple(f.name for f in fields(Epoch))


def upgrade(raw: dict) -> dict:
    """The same run in the current schema's shape (a new dict; raw is left as it is)."""
    if not isinstance(raw, dict):
        raise ResultError(f"holds a JSON {type(raw).__name__}, not a run record")
    version = raw.get("schema", 1)
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise ResultError(f"has schema {version!r}, which no mnistbench writes")
    if version > SCHEMA_VERSION:
        raise ResultError(f"was written by a newer mnistbench (schema {version}; this one reads up to "
                          f"{SCHEMA_VERSION}): upgrade mnistbench to read it")
    if version == 1:
        raw = _from_v1(raw)
    return raw


def _from_v1(raw: dict) -> dict:
    history = raw.get("history")
    if isinstance(history, list):
        history = [{k: e.get(k) for k in EPOCH_FIELDS} if isinstance(e, dict) else e for e in history]
        if raw.get("solver_iterations") is not None:  # the oldest files kept a solver's fit in train_seconds
            for epoch in history:
                if isinstance(epoch, dict) and epoch.get("fit_seconds") is None:
                    epoch["fit_seconds"], epoch["train_seconds"] = epoch.get("train_seconds"), None
    keep = ("run_id", "created", "status", "config", "best_epoch", "restored_best", "eval_seconds", "test_loss",
            "test_acc", "confusion", "split_sizes", "solver_iterations", "solver_converged", "env", "executor",
            "error", "traceback")
    out = {k: raw.get(k) for k in keep}
    out.update(schema=SCHEMA_VERSION, history=history, noise={k: raw.get(k) for k in NOISE_KEYS if k in raw},
               interleave=None)
    out["restored_best"] = bool(out["restored_best"]) if isinstance(out["restored_best"], bool) else False
    out["split_sizes"] = out["split_sizes"] if out["split_sizes"] is not None else {}
    out["env"] = out["env"] if out["env"] is not None else {}
    return out


# ---------------------------------------------------------------- field checks
def _number(value, name: str, low: float | None = None, high: float | None = None, optional: bool = True,
            integer: bool = False):
    if value is None and optional:
        return None
    kinds = (int,) if integer else (int, float)
    if isinstance(value, bool) or not isinstance(value, kinds):
        want = "an integer" if integer else "a number"
        raise ResultError(f"{name} should be {want}, got {value!r}")
    if not math.isfinite(value):
        raise ResultError(f"{name} is {value!r}, which mnistbench never writes")
    if (low is not None and value < low) or (high is not None and value > high):
        raise ResultError(f"{name} = {value!r} is outside [{low}, {high}]")
    return value


def _text(value, name: str, optional: bool = True):
    if value is None and optional:
        return None
    if not isinstance(value, str):
        raise ResultError(f"{name} should be text, got {value!r}")
    return value


def _mapping(value, name: str) -> dict:
    if value is None:
        return {}
    if not isinstance(value, dict) or any(isinstance(v, (dict, list)) for v in value.values()):
        raise ResultError(f"{name} should be a flat JSON object, got {type(value).__name__}")
    for key, item in value.items():
        if isinstance(item, float) and not math.isfinite(item):
            raise ResultError(f"{name}.{key} is {item!r}, which mnistbench never writes")
    return dict(value)


def _config(raw) -> RunConfig:
    if not isinstance(raw, dict):
        raise ResultError("config should be a JSON object")
    for key in ("family", "impl"):
        _text(raw.get(key), f"config.{key}", optional=False)
    for key in ("lr",):
        _number(raw.get(key), f"config.{key}", low=0, optional=False)
    for key in ("batch_size", "epochs", "seed"):
        _number(raw.get(key), f"config.{key}", low=0, optional=False, integer=True)
    for key in ("patience", "threads"):
        _number(raw.get(key), f"config.{key}", low=1, integer=True)
    for key in ("dataset", "protocol", "device", "loader", "dtype"):
        _text(raw.get(key), f"config.{key}")
    for key in ("classes", "hidden"):
        value = raw.get(key)
        if value is not None and (not isinstance(value, list) or not all(
                isinstance(v, int) and not isinstance(v, bool) for v in value)):
            raise ResultError(f"config.{key} should be a list of integers, got {value!r}")
    if raw.get("tags") is not None and not isinstance(raw.get("tags"), dict):
        raise ResultError("config.tags should be a JSON object")
    raw = dict(raw)
    from . import registry

    if raw["family"] in registry.families() and not registry.family(raw["family"]).uses_hidden:
        raw["hidden"] = []  # older files stored the MLP's sizes for every family: no part of the run
    try:
        cfg = RunConfig.from_dict(raw)
    except (TypeError, ValueError) as exc:
        raise ResultError(f"config cannot be read: {exc}") from None
    try:  # a family still registered is checked fully (classes, dtype); a plugin's gone one as it is
        if registry.has(cfg.family, cfg.impl):
            validate(cfg)
    except ValueError as exc:
        raise ResultError(f"config is not a valid run: {exc}") from None
    return cfg


def _epoch(raw, index: int) -> Epoch:
    where = f"history[{index}]"
    if not isinstance(raw, dict):
        raise ResultError(f"{where} should be a JSON object")
    epoch = _number(raw.get("epoch"), f"{where}.epoch", low=1, optional=False, integer=True)
    losses = {k: _number(raw.get(k), f"{where}.{k}", low=0) for k in ("train_loss", "val_loss")}
    accs = {k: _number(raw.get(k), f"{where}.{k}", low=0, high=1) for k in ("train_acc", "val_acc")}
    seconds = {k: _number(raw.get(k), f"{where}.{k}", low=0)
               for k in ("train_seconds", "eval_seconds", "fit_seconds")}
    return Epoch(epoch=epoch, **losses, **accs, **seconds)


def _confusion(raw, n_classes: int):
    if raw is None:
        return None
    if not isinstance(raw, list) or len(raw) != n_classes or not all(
            isinstance(row, list) and len(row) == n_classes and all(
                isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in row) for row in raw):
        raise ResultError(f"confusion should be a {n_classes}×{n_classes} table of counts")
    return tuple(tuple(row) for row in raw)


def _interleave(raw) -> Interleave | None:
    if raw is None:
        return None
    if not isinstance(raw, dict) or not isinstance(raw.get("blocks"), list):
        raise ResultError("interleave should be an object with a list of blocks")
    blocks = []
    for i, block in enumerate(raw["blocks"]):
        if not isinstance(block, dict):
            raise ResultError(f"interleave.blocks[{i}] should be a JSON object")
        blocks.append(Block(_number(block.get("round"), f"interleave.blocks[{i}].round", 0, None, False, True),
                            _number(block.get("seconds"), f"interleave.blocks[{i}].seconds", 0, None, False),
                            _number(block.get("steps"), f"interleave.blocks[{i}].steps", 1, None, False, True)))
    return Interleave(_text(raw.get("group"), "interleave.group", optional=False),
                      _number(raw.get("block_steps"), "interleave.block_steps", 1, None, False, True),
                      _number(raw.get("order_seed"), "interleave.order_seed", 0, None, False, True), tuple(blocks))


def parse(raw) -> RunResult:
    """A RunResult from a run file's JSON of any schema; ResultError names the first field that cannot be true."""
    data = upgrade(raw)
    status = data.get("status")
    if status not in STATUSES:
        raise ResultError(f"status should be one of {', '.join(STATUSES)}, got {status!r}")
    cfg = _config(data.get("config"))
    history = data.get("history")
    if not isinstance(history, list):
        raise ResultError(f"history should be a list of epochs, got {type(history).__name__}")
    epochs = tuple(_epoch(e, i) for i, e in enumerate(history))
    if [e.epoch for e in epochs] != list(range(1, len(epochs) + 1)):
        raise ResultError("history's epochs should be numbered 1, 2, 3, ...")
    finished = status != "failed"
    sizes = data.get("split_sizes") or {}
    if not isinstance(sizes, dict):
        raise ResultError("split_sizes should be a JSON object")
    split_sizes = {k: _number(v, f"split_sizes.{k}", low=0, optional=False, integer=True) for k, v in sizes.items()}
    if finished and not epochs:
        raise ResultError(f"a run with status {status} should have at least one epoch")
    return RunResult(
        config=cfg, status=status,
        run_id=_text(data.get("run_id"), "run_id", optional=False),
        created=_text(data.get("created"), "created") or "",
        history=epochs,
        best_epoch=_number(data.get("best_epoch"), "best_epoch", low=0, integer=True),
        restored_best=bool(data.get("restored_best")),
        eval_seconds=_number(data.get("eval_seconds"), "eval_seconds", low=0),
        test_loss=_number(data.get("test_loss"), "test_loss", low=0),
        test_acc=_number(data.get("test_acc"), "test_acc", low=0, high=1, optional=not finished),
        confusion=_confusion(data.get("confusion"), cfg.n_classes),
        split_sizes=split_sizes,
        solver_iterations=_number(data.get("solver_iterations"), "solver_iterations", low=0, integer=True),
        solver_converged=data.get("solver_converged") if isinstance(data.get("solver_converged"), bool) else None,
        noise=_mapping(data.get("noise"), "noise"),
        env=_mapping(data.get("env"), "env"),
        executor=_mapping(data.get("executor"), "executor") or None,
        interleave=_interleave(data.get("interleave")),
        error=_text(data.get("error"), "error"),
        traceback=_text(data.get("traceback"), "traceback"),
    )
