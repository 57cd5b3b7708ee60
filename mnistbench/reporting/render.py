"""The one table layer: a numeric DataFrame plus per-column formats -> Markdown, terminal text or CSV.

Every table mnistbench shows (report, compare, speed, throughput, run's closing table, profile's top
operators) goes through here. A table keeps numbers in its frame (so its CSV stays machine-readable)
and says how to show each column with a `Column`. A statistic of a base name `x` may be spread over
several frame columns; the cell shows them together:

    x_mean (or x) with x_ci_low and x_ci_high  ->  "m ± h" (symmetric interval) or "m (lo–hi)"
    x_mean with x_std                          ->  "m ± s"
    x_median with x_iqr                        ->  "m (IQR i)"
    x (or x_median) with x_min and x_max       ->  "m (min–max)"

Formats are declared, never guessed from substrings of names: a column without a declared format
falls back to FORMATS_BY_NAME (exact names) and then to a plain number.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pandas is loaded by whoever builds a frame; the CLI's progress lines need none
    import pandas as pd

MISSING = "—"

# format name -> function of a number
FORMATS = {
    "text": str,
    "int": lambda v: f"{v:.0f}",
    "acc": lambda v: f"{v:.4f}",
    "loss": lambda v: f"{v:.4f}",
    "diff": lambda v: f"{v:+.4f}",
    "seconds": lambda v: f"{v:#.3g}" if abs(v) < 100 else f"{v:,.0f}",
    "duration": lambda v: _duration(v),
    "rate": lambda v: f"{v:,.0f}",
    "ratio": lambda v: f"{v:.2f}×",
    "lr": lambda v: f"{v:g}",
    "gflops": lambda v: f"{v:,.1f}",
    "percent": lambda v: f"{100 * v:.1f} %",
    "ms": lambda v: f"{v:.3f}",
    "kib": lambda v: f"{v:.1f}",
    "number": lambda v: _number(v),
}

# exact column names -> format, for tables that build their columns dynamically
FORMATS_BY_NAME = {
    "lr": "lr", "batch_size": "int", "seed": "int", "epochs": "int", "epochs_run": "int", "n": "int",
    "pairs": "int", "rounds": "int", "repeats": "int", "threads": "int", "best_epoch": "int",
    "diverged_epoch": "int", "class": "int",
    "test_acc": "acc", "best_val_acc": "acc", "val_acc": "acc", "train_acc": "acc", "this": "acc",
    "notebook": "acc", "target_val_acc": "acc",
    "test_loss": "loss", "best_val_loss": "loss", "val_loss": "loss", "train_loss": "loss",
    "difference": "diff", "noise_band": "acc",
    "train_seconds": "seconds", "eval_seconds": "seconds", "epoch_seconds": "seconds",
    "fit_seconds": "seconds", "seconds_to_target": "seconds", "first_epoch_seconds": "seconds",
    "epoch_seconds_median": "seconds",
    "train_samples_per_s": "rate", "samples_per_s": "rate",
}

HEADERS_BY_NAME = {
    "train_samples_per_s": "train samples/s", "samples_per_s": "samples/s", "epochs_run": "epochs run",
    "noise_band": "noise band (95 %)", "this": "this study", "lr": "learning rate", "batch_size": "batch size",
    "n": "n (ok)", "best_val_acc": "best val acc", "test_acc": "test acc", "train_seconds": "train s",
    "best_val_loss": "best val loss",
}


@dataclass(frozen=True)
class Column:
    """How to show one (base) column: its frame name, header and format (a key of FORMATS)."""

    name: str
    header: str | None = None
    fmt: str | None = None

    def title(self) -> str:
        return self.header or HEADERS_BY_NAME.get(self.name) or self.name.replace("_", " ")

    def formatter(self):
        return FORMATS[self.fmt or FORMATS_BY_NAME.get(self.name, "number")]


def _duration(value: float) -> str:
    """A duration with a unit that keeps 3 significant digits readable: 2.69 s, 128 ms, 121 µs."""
    for scale, unit in ((1, "s"), (1e-3, "ms"), (1e-6, "µs")):
        if abs(value) >= scale:
            return f"{value / scale:.3g} {unit}"
    return f"{value / 1e-9:.3g} ns" if value else "0 s"


def _number(value) -> str:
    if isinstance(value, (bool,)) or not isinstance(value, (int, float)):
        return str(value)
    if float(value).is_integer() and abs(value) < 1e15:
        return str(int(value))
    return f"{value:.4g}"


def missing(value) -> bool:
    if value is None:
        return True
    if isinstance(value, float):
        return math.isnan(value)
    import pandas as pd

    try:
        return bool(pd.isna(value))
    except (TypeError, ValueError):
        return False


STAT_SUFFIXES = ("_mean", "_median", "_std", "_iqr", "_ci_low", "_ci_high", "_min", "_max")


def columns_for(frame: pd.DataFrame, declared=None) -> list[Column]:
    """The Columns to show: the declared ones (present in the frame), else one per base name of the frame
    (x_mean, x_std, x_ci_low... collapse into x), in frame order."""
    if declared is not None:
        return [c for c in declared if _present(frame, c.name)]
    bases = []
    for name in frame.columns:
        base = next((name[: -len(s)] for s in STAT_SUFFIXES if name.endswith(s) and name != s), name)
        if base not in bases and (base == name or _present(frame, base)):
            bases.append(base)
    return [Column(b) for b in bases]


def _present(frame, base: str) -> bool:
    return base in frame.columns or any(f"{base}{s}" in frame.columns for s in ("_mean", "_median"))


def cell(row, column: Column, na_text: str = MISSING) -> str:
    """The text of one cell: the value with its spread, if the row carries one."""
    fmt, base = column.formatter(), column.name
    center_name = next((f"{base}{s}" for s in ("_mean", "_median") if f"{base}{s}" in row.index), base)
    value = row.get(center_name)
    if missing(value):
        return na_text
    if isinstance(value, str) or column.fmt == "text":
        return str(value)
    text = fmt(value)
    low, high = row.get(f"{base}_ci_low"), row.get(f"{base}_ci_high")
    if not missing(low) and not missing(high):
        half = (high - low) / 2
        if abs((high - value) - (value - low)) <= 0.1 * max(high - low, 1e-300):
            return f"{text} ± {_bare(fmt(half))}"
        return f"{text} ({_bare(fmt(low))}–{_bare(fmt(high))})"
    std = row.get(f"{base}_std")
    if not missing(std):
        return f"{text} ± {_bare(fmt(std))}"
    iqr = row.get(f"{base}_iqr")
    if not missing(iqr):
        return f"{text} (IQR {_bare(fmt(iqr))})"
    low, high = row.get(f"{base}_min"), row.get(f"{base}_max")
    if not missing(low) and not missing(high):
        return f"{text} ({_bare(fmt(low))}–{_bare(fmt(high))})"
    return text


def _bare(text: str) -> str:
    """A spread is shown without sign or unit repeated: '+0.0012' -> '0.0012', '1.20×' -> '1.20'."""
    return text.lstrip("+").rstrip("×").strip()


def cells(frame: pd.DataFrame, columns=None, na_text: str = MISSING) -> tuple[list[str], list[list[str]]]:
    columns = columns_for(frame, columns)
    header = [c.title() for c in columns]
    body = [[cell(row, c, na_text) for c in columns] for _, row in frame.iterrows()]
    return header, body


def to_markdown(frame: pd.DataFrame, columns=None, na_text: str = MISSING) -> str:
    header, body = cells(frame, columns, na_text)
    lines = ["| " + " | ".join(header) + " |", "| " + " | ".join("---" for _ in header) + " |"]
    lines += ["| " + " | ".join(text.replace("|", "\\|") for text in row) + " |" for row in body]
    return "\n".join(lines)


def to_text(frame: pd.DataFrame, columns=None, na_text: str = "-") -> str:
    """Aligned plain text for a terminal: a header, a rule, one line per row."""
    return text_table(*cells(frame, columns, na_text))


def text_table(header: list[str], body: list[list[str]]) -> str:
    """Cells already formatted, laid out as to_text does (`mnistbench list` uses it without pandas)."""
    widths = [max(len(x) for x in col) for col in zip(header, *body)] if header else []
    lines = ["  ".join(x.ljust(w) for x, w in zip(line, widths)).rstrip() for line in [header, *body]]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def to_csv(frame: pd.DataFrame) -> str:
    """The numbers themselves (no formatting), for tools: one row per frame row."""
    return frame.drop(columns=[c for c in frame.columns if str(c).startswith("_")]).to_csv(index=False)


def fmt_value(value, fmt: str = "number", na_text: str = "-") -> str:
    """One value in a named format, for a line of text outside a table."""
    if missing(value) or (isinstance(value, float) and math.isnan(value)):
        return na_text
    return FORMATS[fmt](value)


@dataclass
class Table:
    """One table of a report: its frame, how to show it (columns, the text for a missing value), and the
    machine its numbers came from."""

    name: str  # file stem of its CSV
    title: str
    frame: pd.DataFrame
    machine: str = ""  # the machine and torch version the numbers came from
    note: str = ""
    na_text: str = MISSING
    columns: list | None = None  # a Column per shown column; None: every column, formats by name
