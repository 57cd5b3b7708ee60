"""The declared columns of each report table: header and format of every figure, never guessed from names.

A figure column names its base (`test_acc`); the frame carries it as `test_acc_mean` with `_ci_low` and
`_ci_high`, which render shows as "mean ± half-width". Columns a frame lacks are left out.
"""
from __future__ import annotations

from .render import Column
from .tables import CONTEXT

STATUS = [Column("status", fmt="text"), Column("n", "n", "int")]
TIMING = Column("timing", "timing", "text")
ACCURACY = [Column("test_acc", "test acc", "acc"), Column("best_val_acc", "best val acc", "acc")]
RUN_FIGURES = [
    Column("epochs_run", "epochs run", "number"),
    Column("train_seconds", "train s", "seconds"),
    Column("epoch_seconds", "steady epoch s", "seconds"),
    Column("train_samples_per_s", "train samples/s", "rate"),
]
FIT = Column("fit_seconds", "fit s (solver)", "seconds")


def keys(*names: str) -> list[Column]:
    """Text columns for the row keys, then every CONTEXT column (the table drops those it lacks)."""
    formats = {"lr": "lr", "batch_size": "int", "class": "int", "seed": "int"}
    return [Column(name, fmt=formats.get(name, "text")) for name in names] + [
        Column(name, name.replace("env_", "").replace("_", " "), "text") for name in CONTEXT if name not in names]


def summary() -> list[Column]:
    return [*keys("family", "impl"), *STATUS, *ACCURACY, *RUN_FIGURES, FIT, TIMING]


def twins() -> list[Column]:
    return [*keys("family", "impl", "twin"), Column("pairs", "pairs (n)", "int"),
            Column("test_acc_difference", "test acc difference", "diff"),
            Column("test_acc_equivalence", "test acc equivalence", "text"),
            Column("test_acc_tost_p", "TOST p", "number"),
            Column("best_val_acc_difference", "best val acc difference", "diff"),
            Column("train_seconds_ratio", "time ratio", "ratio"), TIMING]


def notebook() -> list[Column]:
    return [*keys("family", "impl", "metric", "lr", "epochs"), Column("notebook", "notebook", "acc"),
            Column("this", "this study", "acc"), Column("n", "n", "int"), Column("difference", fmt="diff"),
            Column("noise_band", "noise band (95 %)", "acc"), Column("verdict", fmt="text"),
            Column("why", fmt="text")]


def dtypes() -> list[Column]:
    return [*keys("family", "impl", "lr", "batch_size"),
            Column("acc_float32", "fp32 test acc", "acc"), Column("n_float32", "n fp32", "int"),
            Column("acc_bfloat16", "bf16 test acc", "acc"), Column("n_bfloat16", "n bf16", "int"),
            Column("acc_difference", "bf16 − fp32", "diff"), Column("noise_band", "noise band (95 %)", "acc"),
            Column("accuracy_verdict", "accuracy", "text"),
            Column("epoch_float32", "fp32 steady epoch s", "seconds"),
            Column("epoch_bfloat16", "bf16 steady epoch s", "seconds"),
            Column("bf16_speedup", "bf16 speed-up", "ratio"), Column("speed_verdict", "speed", "text"), TIMING]


def per_class(frame) -> list[Column]:
    """One column per implementation's accuracy and per twin difference, as the frame has them."""
    figures = []
    for name in frame.columns:
        if name.endswith("_acc_mean"):
            figures.append(Column(name[: -len("_mean")], name[: -len("_acc_mean")], "acc"))
        elif "_minus_" in name and name.endswith("_mean"):
            figures.append(Column(name[: -len("_mean")], name[: -len("_mean")].replace("_minus_", " − "), "diff"))
    return [*keys("family", "class"), Column("n", "n", "int"), *figures]


def sweep(axis: str) -> list[Column]:
    return [*keys("family", axis, "impl"), *STATUS, Column("best_val_loss", "best val loss", "loss"), *ACCURACY,
            *RUN_FIGURES, TIMING]


def time_to_accuracy() -> list[Column]:
    return [*keys("family", "impl"), Column("target_val_acc", "target val acc", "acc"),
            Column("reached", fmt="text"), Column("n", "n", "int"),
            Column("seconds_to_target", "train s to target", "seconds"),
            Column("epochs_to_target", "epochs to target", "number"), TIMING]


def throughput_runs() -> list[Column]:
    return [*keys("family", "impl", "batch_size"), *STATUS,
            Column("train_samples_per_s", "train samples/s", "rate"), TIMING]


def not_ok() -> list[Column]:
    return [*keys("run_id", "family", "impl", "lr", "batch_size", "seed", "status"),
            Column("diverged_epoch", "diverged at epoch", "int"), Column("error", fmt="text")]
