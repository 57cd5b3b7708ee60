"""RunResult: one run as a frozen value holding only what was measured; every figure derived from it.

A run file is `RunResult.to_json()`; `results.read_result()` turns a file back into a RunResult through
`upgrade()` (resultfile.py), which validates every field. Derived figures (steady-state epoch median and
interval, samples/s, stability flags, per-class accuracy) are properties computed from the raw data, so
a better rule re-analyses old files without retraining. The file format and its history: docs/results-format.md.
"""
from __future__ import annotations

import hashlib
import json
import time
import uuid
from dataclasses import dataclass, field, replace
from functools import cached_property

from .config import RunConfig

SCHEMA_VERSION = 2
STATUSES = ("ok", "diverged", "failed")


@dataclass(frozen=True)
class Epoch:
    """One epoch as measured. train_seconds: its timed region (None for a solver's fit, whose time is
    fit_seconds); eval_seconds: its validation, untimed by train_seconds."""

    epoch: int
    train_loss: float | None
    train_acc: float | None
    val_loss: float | None
    val_acc: float | None
    train_seconds: float | None
    eval_seconds: float | None
    fit_seconds: float | None = None


@dataclass(frozen=True)
class Block:
    """One timed block of an interleaved run: `steps` updates in round `round`, taking `seconds`."""

    round: int
    seconds: float
    steps: int


@dataclass(frozen=True)
class Interleave:
    """How an interleaved run was measured: its group (every run trained in lock-step with it shares
    the id), the steps of a full block, the seed of the round orders, and its timed blocks."""

    group: str
    block_steps: int
    order_seed: int
    blocks: tuple[Block, ...] = ()

    def round_seconds(self) -> dict[int, float]:
        """round -> seconds of the full blocks (a run's last, partial block is not comparable)."""
        return {b.round: b.seconds for b in self.blocks if b.steps == self.block_steps}


def config_key(cfg: RunConfig) -> str:
    """A short hash of everything that defines a run's outcome (not its tags): the resume key."""
    payload = {k: v for k, v in cfg.to_dict().items() if k != "tags"}
    return hashlib.sha1(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:10]


def new_run_id(cfg: RunConfig) -> str:
    """family-impl-confighash-time-random: unique across parallel processes (tox envs, shells)."""
    stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime())
    return f"{cfg.family}-{cfg.impl}-{config_key(cfg)}-{stamp}-{uuid.uuid4().hex[:6]}"


def now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


@dataclass(frozen=True)
class RunResult:
    """A run: its config, status and measurements. `noise` holds the machine's readings during the run
    (env.noise_since), `env` where it ran (env.environment), `executor` how (Ray's node, for one)."""

    config: RunConfig
    status: str
    run_id: str
    created: str
    history: tuple[Epoch, ...] = ()
    best_epoch: int | None = None
    restored_best: bool = False
    eval_seconds: float | None = None  # every validation plus the final test evaluation
    test_loss: float | None = None
    test_acc: float | None = None
    confusion: tuple[tuple[int, ...], ...] | None = None  # rows: true class, columns: predicted
    split_sizes: dict = field(default_factory=dict)  # train / val / test sample counts
    solver_iterations: int | None = None  # a fitted (scikit-learn) model's
    solver_converged: bool | None = None
    noise: dict = field(default_factory=dict)
    env: dict = field(default_factory=dict)
    executor: dict | None = None
    interleave: Interleave | None = None
    error: str | None = None
    traceback: str | None = None

    @staticmethod
    def failed(cfg: RunConfig, error: str, trace: str = "", env: dict | None = None,
               executor: dict | None = None) -> RunResult:
        return RunResult(cfg, "failed", new_run_id(cfg), now(), env=env or {}, executor=executor, error=error,
                         traceback=trace)

    # ------------------------------------------------------------ derived
    @property
    def config_key(self) -> str:
        return config_key(self.config)

    @property
    def finished(self) -> bool:
        return self.status in ("ok", "diverged")

    @property
    def iterative(self) -> bool:
        return not any(e.fit_seconds is not None for e in self.history)

    @property
    def epoch_seconds(self) -> list[float]:
        return [e.train_seconds for e in self.history if e.train_seconds is not None]

    @property
    def train_seconds(self) -> float | None:
        return sum(self.epoch_seconds) if self.iterative and self.history else None

    @property
    def fit_seconds(self) -> float | None:
        return None if self.iterative or not self.history else self.history[0].fit_seconds

    @property
    def epochs_run(self) -> int:
        return len(self.history) if self.iterative else (self.solver_iterations or 0)

    @property
    def diverged_epoch(self) -> int | None:
        return self.history[-1].epoch if self.status == "diverged" and self.history else None

    @property
    def best(self) -> Epoch | None:
        return next((e for e in self.history if e.epoch == self.best_epoch), None)

    @property
    def per_class_acc(self) -> dict[str, float] | None:
        if self.confusion is None:
            return None
        classes = self.config.class_list
        return {str(c): row[i] / max(sum(row), 1) for i, (c, row) in enumerate(zip(classes, self.confusion))}

    @cached_property
    def timing(self) -> dict:
        """The steady-state figures of the epochs (runtiming.epoch_figures) and the stability flags, read
        from the interleaved blocks when the run has them (more, shorter samples), else from the epochs."""
        from . import runtiming  # numpy and scipy: not needed to read or write a result

        train = self.split_sizes.get("train")
        figures = runtiming.epoch_figures(self.epoch_seconds, train) if self.iterative and train else \
            dict.fromkeys(runtiming.FIGURE_KEYS)
        samples = self.epoch_seconds if self.iterative else []  # timing_flags leaves the first out
        if self.interleave is not None and self.interleave.round_seconds():
            samples = list(self.interleave.round_seconds().values())
        figures.update(runtiming.timing_flags(samples, self.noise))
        return figures

    # ------------------------------------------------------------ shapes
    def to_json(self) -> dict:
        """The file's content (schema SCHEMA_VERSION): measured fields only, JSON types only."""
        return {
            "schema": SCHEMA_VERSION, "run_id": self.run_id, "created": self.created, "status": self.status,
            "config": self.config.to_dict(), "history": [vars(e) for e in self.history],
            "best_epoch": self.best_epoch, "restored_best": self.restored_best, "eval_seconds": self.eval_seconds,
            "test_loss": self.test_loss, "test_acc": self.test_acc,
            "confusion": [list(row) for row in self.confusion] if self.confusion is not None else None,
            "split_sizes": dict(self.split_sizes), "solver_iterations": self.solver_iterations,
            "solver_converged": self.solver_converged, "noise": dict(self.noise), "env": dict(self.env),
            "executor": self.executor,
            "interleave": None if self.interleave is None else {
                "group": self.interleave.group, "block_steps": self.interleave.block_steps,
                "order_seed": self.interleave.order_seed, "blocks": [vars(b) for b in self.interleave.blocks]},
            "error": self.error, "traceback": self.traceback,
        }

    def to_row(self) -> dict:
        """One flat row of load_results(): config fields, measured and derived figures, env_* columns,
        and history / per_class_acc / confusion / split_sizes as Python objects."""
        best = self.best
        row = {"run_id": self.run_id, "config_key": self.config_key, "created": self.created,
               "status": self.status, "test_acc": self.test_acc, "test_loss": self.test_loss,
               "best_epoch": self.best_epoch, "best_val_acc": best.val_acc if best else None,
               "best_val_loss": best.val_loss if best else None, "epochs_run": self.epochs_run,
               "diverged_epoch": self.diverged_epoch, "train_seconds": self.train_seconds,
               "fit_seconds": self.fit_seconds, "eval_seconds": self.eval_seconds, "error": self.error,
               "solver_iterations": self.solver_iterations, "solver_converged": self.solver_converged,
               "group": self.interleave.group if self.interleave else None}
        row.update({k: v for k, v in self.config.to_dict().items() if k != "tags"})
        row["tags"] = dict(self.config.tags)
        row.update(self.noise)
        row.update(self.timing)
        row.update({f"env_{k}": v for k, v in self.env.items()})
        train = self.split_sizes.get("train")
        row["history"] = [dict(vars(e), train_samples_per_s=train / e.train_seconds
                               if train and e.train_seconds else None) for e in self.history]
        row.update(per_class_acc=self.per_class_acc, split_sizes=dict(self.split_sizes),
                   confusion=[list(r) for r in self.confusion] if self.confusion is not None else None)
        return row

    def with_env(self, **changes) -> RunResult:
        """The same run described as made elsewhere (another host, torch or Python environment)."""
        return replace(self, env={**self.env, **changes})
