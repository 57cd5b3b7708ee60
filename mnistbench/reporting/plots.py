"""Plots of a results DataFrame (results.to_frame), one function per picture.

Each function takes a frame and an output path, writes one PNG and returns the path. Figures are made
with matplotlib's object API (Figure, not pyplot), so drawing them never touches the user's backend. Every plot has a
title, axis labels and a legend, and each implementation has one fixed colour in every picture.
Curves over seeds are the mean per epoch of the runs that reached that epoch.
"""
from __future__ import annotations

import io
import zlib
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from .. import files, registry
from .tables import per_class_means

# the built-in implementations' names recur across families, so they keep one colour everywhere
IMPL_COLOURS = {"manual": "#1f77b4", "handgrad": "#2ca02c", "builtin": "#ff7f0e", "sklearn": "#7f7f7f"}
FALLBACK_COLOURS = ("#d62728", "#9467bd", "#8c564b", "#e377c2", "#bcbd22", "#17becf")  # unused above
SPLIT_HATCH = {"train": "", "val": "//", "test": ".."}


def colour(impl: str) -> str:
    """The implementation's colour; an unknown one gets a fixed pick from the fallback cycle."""
    return IMPL_COLOURS.get(impl) or FALLBACK_COLOURS[zlib.crc32(impl.encode()) % len(FALLBACK_COLOURS)]


def impl_order(impls) -> list[str]:
    """The implementations in registration order (built-ins first), then unknown ones by name."""
    impls, known = set(impls), registry.impl_names()
    return [impl for impl in known if impl in impls] + sorted(impls - set(known))


def _impls(frame) -> list[str]:
    return impl_order(frame.impl)


def _width(position: int) -> float:
    """Line width by drawing order: twins that agree exactly stay visible under one another."""
    return max(1.0, 3.2 - 0.7 * position)


def _families(frame) -> list[str]:
    order = list(registry.families())
    return [f for f in order if f in set(frame.family)] + sorted(set(frame.family) - set(order))


def _save(fig, path) -> Path:
    """The figure as a PNG, written atomically like every result file (a folder that cannot take it:
    files.OutputError naming it)."""
    path = Path(path)
    files.make_folder(path.parent, "plots folder")
    fig.tight_layout()
    picture = io.BytesIO()
    fig.savefig(picture, format="png", dpi=90)
    files.atomic_write_bytes(path, picture.getvalue())
    return path


def _grid(n_rows, n_cols, width=5.0, height=3.6):
    fig = Figure(figsize=(width * n_cols, height * n_rows))
    axes = fig.subplots(n_rows, n_cols, squeeze=False)
    return fig, axes


def history_frame(runs) -> pd.DataFrame:
    """Per-epoch rows of every run, with run columns and cumulative training seconds."""
    parts = []
    for _, run in runs.iterrows():
        hist = pd.DataFrame(run["history"] or [])
        if hist.empty:
            continue
        seconds = pd.to_numeric(hist.get("train_seconds", pd.Series(index=hist.index, dtype=float)), errors="coerce")
        if "fit_seconds" in hist:  # a solver's one fit stands where its epochs would
            seconds = seconds.fillna(pd.to_numeric(hist["fit_seconds"], errors="coerce"))
        hist["cum_train_seconds"] = seconds.cumsum()
        for key in ("family", "impl", "seed", "lr", "batch_size", "run_id"):
            hist[key] = run[key]
        parts.append(hist)
    return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()


def mean_curves(runs, by=("impl",)) -> pd.DataFrame:
    hist = history_frame(runs)
    columns = ["train_loss", "val_loss", "train_acc", "val_acc", "cum_train_seconds"]
    if hist.empty:
        return pd.DataFrame(columns=[*by, "epoch", *columns])
    return hist.groupby([*by, "epoch"])[columns].mean().reset_index()


def plot_curves(frame, path) -> Path:
    """Train/val loss and accuracy per epoch, one row per family; a fitted model (one call, e.g. sklearn)
    as horizontal lines."""
    families = _families(frame)
    fig, axes = _grid(len(families), 2)
    for row, family in enumerate(families):
        runs = frame[frame.family == family]
        curves = mean_curves(runs)
        for col, metric in enumerate(("loss", "acc")):
            ax = axes[row, col]
            for position, impl in enumerate(_impls(runs)):
                points, lw = curves[curves.impl == impl], _width(position)
                if len(points) > 1 or registry.is_iterative(family, impl):
                    ax.plot(points.epoch, points[f"train_{metric}"], color=colour(impl), lw=lw, label=f"{impl} train")
                    ax.plot(points.epoch, points[f"val_{metric}"], color=colour(impl), lw=lw, ls="--",
                            label=f"{impl} val")
                else:  # a single fit has no epochs: its end state as a reference level
                    ax.axhline(points[f"train_{metric}"].iloc[0], color=colour(impl), label=f"{impl} train")
                    ax.axhline(points[f"val_{metric}"].iloc[0], color=colour(impl), ls="--", label=f"{impl} val")
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))
            ax.set(title=f"{family}: {'loss' if metric == 'loss' else 'accuracy'} per epoch", xlabel="epoch",
                   ylabel="loss (implementation's own)" if metric == "loss" else "accuracy")
            ax.legend(fontsize=7)
    return _save(fig, path)


def model_state(run, split: str) -> float:
    """Accuracy of the model the run ended with: the restored best epoch, else the last epoch."""
    history = run["history"]
    restored = run.get("restored_best")
    restored = isinstance(restored, (bool, np.bool_)) and bool(restored)
    record = history[int(run["best_epoch"]) - 1] if restored else history[-1]
    return record[f"{split}_acc"]


def plot_accuracy_bars(frame, path) -> Path:
    """Train, validation and test accuracy per implementation (mean over seeds), one panel per family."""
    families = _families(frame)
    fig, axes = _grid(1, len(families))
    for col, family in enumerate(families):
        ax, runs = axes[0, col], frame[frame.family == family]
        impls, width = _impls(runs), 0.8 / max(len(_impls(runs)), 1)
        lowest = 1.0
        for i, impl in enumerate(impls):
            mine = runs[runs.impl == impl]
            values = [np.mean([model_state(r, s) for _, r in mine.iterrows()]) for s in ("train", "val")]
            values.append(mine.test_acc.mean())
            lowest = min(lowest, *values)
            ax.bar(np.arange(3) + (i - (len(impls) - 1) / 2) * width, values, width, color=colour(impl),
                   label=impl)
        ax.set_xticks(range(3), ["train", "val", "test"])
        ax.set_ylim(max(0.0, lowest - 0.02), 1.0)
        ax.set(title=f"{family}: accuracy by split", xlabel="split", ylabel="accuracy")
        ax.legend(fontsize=7)
    return _save(fig, path)


def plot_per_class(frame, path) -> Path:
    """Test accuracy per class and implementation (mean over seeds), one panel per family."""
    families = _families(frame)
    fig, axes = _grid(len(families), 1, width=9)
    for row, family in enumerate(families):
        ax, runs = axes[row, 0], frame[frame.family == family]
        table = per_class_means(runs)
        impls = [i for i in _impls(runs) if i in table.columns]
        width = 0.8 / max(len(impls), 1)
        for i, impl in enumerate(impls):
            ax.bar(np.arange(len(table)) + (i - (len(impls) - 1) / 2) * width, table[impl], width,
                   color=colour(impl), label=impl)
        ax.set_xticks(range(len(table)), [str(c) for c in table.index])
        ax.set_ylim(max(0.0, float(np.nanmin(table.values)) - 0.03), 1.0)
        ax.set(title=f"{family}: test accuracy per class", xlabel="class (digit)", ylabel="accuracy")
        ax.legend(fontsize=7, ncol=len(impls))
    return _save(fig, path)


def plot_confusion(frame, path) -> Path:
    """Test confusion matrices summed over seeds, one panel per (family, implementation)."""
    panels = [(f, i) for f in _families(frame) for i in _impls(frame[frame.family == f])]
    fig, axes = _grid(1, len(panels), width=4.6, height=4.2)
    for col, (family, impl) in enumerate(panels):
        ax = axes[0, col]
        runs = frame[(frame.family == family) & (frame.impl == impl)]
        matrix = np.sum([np.asarray(c) for c in runs.confusion if c is not None], axis=0)
        image = ax.imshow(matrix, cmap="Blues")
        if len(matrix) <= 10:
            for (t, p), count in np.ndenumerate(matrix):
                ax.text(p, t, str(count), ha="center", va="center", fontsize=6,
                        color="white" if count > matrix.max() / 2 else "black")
        ax.set_xticks(range(len(matrix)))
        ax.set_yticks(range(len(matrix)))
        ax.set_title(f"{family} / {impl} ({len(runs)} run(s))", color=colour(impl))
        ax.set(xlabel="predicted class", ylabel="true class")
        fig.colorbar(image, ax=ax, fraction=0.046, label="test images")
    return _save(fig, path)


def _sweep_curves(frame, path, axis: str, label: str) -> Path:
    values = sorted(frame[axis].unique())
    fig, axes = _grid(1, len(values), width=4.2)
    curves = mean_curves(frame, by=("impl", axis))
    family = "/".join(_families(frame))
    for col, value in enumerate(values):
        ax = axes[0, col]
        for position, impl in enumerate(_impls(frame)):
            points, lw = curves[(curves.impl == impl) & (curves[axis] == value)], _width(position)
            # markers, so that a run that diverged after one epoch still shows its one point
            ax.plot(points.epoch, points.train_loss, color=colour(impl), lw=lw, marker="o", ms=3,
                    label=f"{impl} train")
            ax.plot(points.epoch, points.val_loss, color=colour(impl), lw=lw, ls="--", marker="o", ms=3,
                    label=f"{impl} val")
        diverged = frame[(frame[axis] == value) & (frame.status == "diverged")]
        if len(diverged):
            notes = [f"{r.impl}: diverged at epoch {int(r.diverged_epoch)}" for r in diverged.itertuples()
                     if pd.notna(r.diverged_epoch)]
            ax.text(0.03, 0.5, "\n".join(dict.fromkeys(notes)), transform=ax.transAxes, fontsize=8, color="#d62728")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set(title=f"{family}, {label} {value:g}", xlabel="epoch", ylabel="loss")
        ax.legend(fontsize=7)
    return _save(fig, path)


def plot_lr_curves(frame, path) -> Path:
    """Train/val loss per epoch for each learning rate of a sweep (one panel each), per implementation."""
    return _sweep_curves(frame, path, "lr", "learning rate")


def plot_batch_curves(frame, path) -> Path:
    """Train/val loss per epoch for each batch size of a sweep (one panel each), per implementation."""
    return _sweep_curves(frame, path, "batch_size", "batch size")


def plot_throughput(frame, path) -> Path:
    """Training samples/s against batch size (log x), one line per implementation (and device), per family.

    Takes a run frame or a throughput table: columns family, impl, batch_size, train_samples_per_s
    (device optional); repeated measurements are averaged.
    """
    families = _families(frame)
    fig, axes = _grid(1, len(families))
    frame = frame.assign(device=frame["device"].astype(str) if "device" in frame else "")
    several_devices = frame.device.nunique() > 1
    styles = dict(zip(sorted(frame.device.unique()), ["-", "--", ":", "-."] * 4))
    for col, family in enumerate(families):
        ax, rows = axes[0, col], frame[frame.family == family]
        for (impl, device), points in rows.groupby(["impl", "device"]):
            points = points.groupby("batch_size").train_samples_per_s.mean()
            ax.plot(points.index, points.values, marker="o", color=colour(impl), ls=styles[device],
                    label=f"{impl} ({device})" if several_devices else impl)
        ax.set_xscale("log", base=2)
        ax.set(title=f"{family}: training throughput", xlabel="batch size", ylabel="training samples/s")
        ax.legend(fontsize=7)
    return _save(fig, path)


def plot_val_acc_vs_seconds(frame, path, targets=None) -> Path:
    """Validation accuracy against cumulative training seconds, per implementation, one panel per family."""
    families = _families(frame)
    fig, axes = _grid(1, len(families))
    for col, family in enumerate(families):
        ax, runs = axes[0, col], frame[frame.family == family]
        curves = mean_curves(runs)
        for position, impl in enumerate(_impls(runs)):
            points = curves[curves.impl == impl]
            ax.plot(points.cum_train_seconds, points.val_acc, color=colour(impl), lw=_width(position), label=impl,
                    marker="o" if len(points) == 1 else None)
        if targets and family in targets:
            ax.axhline(targets[family], color="black", ls=":", lw=1, label=f"target {targets[family]:g}")
        ax.set_xscale("log")
        ax.set(title=f"{family}: validation accuracy over training time", xlabel="training seconds (log)",
               ylabel="validation accuracy")
        ax.legend(fontsize=7)
    return _save(fig, path)
