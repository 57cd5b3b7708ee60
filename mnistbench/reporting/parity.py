"""The report's Parity table, from the verify.csv that `mnistbench verify --out DIR` wrote into DIR.

One row per pair and dtype: family, impl, twin, dtype (the one it ran in where that differs), verdict
(identical / agree / differ from step k: TENSOR, ...), steps, the largest absolute and relative
difference, the allowed relative difference and the tolerance rule, and the gradient check. verify.csv is
only read: a malformed one (unreadable, not UTF-8, not CSV, missing columns, a short or long row, a
figure that is not a number, an unknown verdict) leaves the table out with a warning naming the file.
"""
from __future__ import annotations

import csv
import io
from pathlib import Path

import pandas as pd

from .. import files
from ..parity.output import CSV, MARKDOWN, verdict_text
from .render import Column, Table

TITLE = "Parity (step by step against the twin)"
REQUIRED = ("family", "impl", "twin", "dtype", "ran_in", "verdict", "first_step", "tensor", "max_abs_diff",
            "max_rel_diff", "allowed_rel", "steps", "gradcheck", "tolerance")
VERDICTS = ("identical", "agree", "differ")
NOTE = ("From verify.csv (`mnistbench verify --out` on this folder): each implementation trained beside its "
        "twin from the same start on the same batches and compared tensor by tensor before any update "
        "(step 0) and after every step. identical: bit for bit at every step; agree: within tolerance at "
        "every step; differ: the first step and tensor past it. max abs / rel diff: of that first step past "
        "tolerance, else the worst over the run; allowed rel: the tolerance at that step. gradcheck: the "
        "hand-written gradient against finite differences in float64. See docs/verify.md.")
COLUMNS = [Column("family", fmt="text"), Column("impl", fmt="text"), Column("twin", fmt="text"),
           Column("dtype", fmt="text"), Column("verdict_text", "verdict", "text"), Column("steps", "steps", "int"),
           Column("max_abs_diff", "max abs diff", "number"), Column("max_rel_diff", "max rel diff", "number"),
           Column("allowed_rel", "allowed rel", "number"), Column("tolerance", fmt="text"),
           Column("gradcheck", fmt="text")]


class Malformed(ValueError):
    pass


def _number(text, name: str, line: int, integer: bool = False):
    try:
        value = int(text) if integer else float(text)
    except (TypeError, ValueError):
        raise Malformed(f"line {line}: {name} {text!r} is not {'an integer' if integer else 'a number'}") from None
    if integer and value < 0:
        raise Malformed(f"line {line}: {name} {text!r} is negative")
    return value


def parse(text: str) -> pd.DataFrame:
    """verify.csv's text -> the table's frame; Malformed (a ValueError) says what is wrong and where."""
    try:
        reader = csv.DictReader(io.StringIO(text, newline=""), restkey="_extra", strict=True)
        header = reader.fieldnames
        if not header:
            raise Malformed("empty file")
        missing = [c for c in REQUIRED if c not in header]
        if missing:
            raise Malformed(f"missing columns {', '.join(missing)}")
        rows = []
        for r in reader:
            line = reader.line_num
            if "_extra" in r or any(r[c] is None for c in header):
                raise Malformed(f"line {line}: {'more' if '_extra' in r else 'fewer'} fields than the "
                                f"header's {len(header)}")
            if r["verdict"] not in VERDICTS:
                raise Malformed(f"line {line}: unknown verdict {r['verdict']!r}")
            if r["verdict"] == "differ":
                _number(r["first_step"], "first_step", line, integer=True)
            figures = {name: _number(r[name], name, line) for name in ("max_abs_diff", "max_rel_diff", "allowed_rel")}
            dtype = r["dtype"] if r["ran_in"] in ("", r["dtype"]) else f"{r['dtype']} (ran {r['ran_in']})"
            rows.append({"family": r["family"], "impl": r["impl"], "twin": r["twin"], "dtype": dtype,
                         "ran_in": r["ran_in"], "verdict": r["verdict"], "verdict_text": verdict_text(r),
                         "first_step": r["first_step"], "tensor": r["tensor"],
                         "steps": _number(r["steps"], "steps", line, integer=True), **figures,
                         "tolerance": r["tolerance"], "gradcheck": r["gradcheck"]})
    except csv.Error as exc:
        raise Malformed(f"not CSV: {exc}") from None
    if not rows:
        raise Malformed("no rows")
    return pd.DataFrame(rows)


def machine_line(folder: Path) -> str:
    """verify.md's "Measured on ..." line, or "" (the CSV does not name the machine)."""
    try:
        text = files.read_regular_text(Path(folder) / MARKDOWN, max_bytes=2**20)
    except (OSError, UnicodeDecodeError):
        return ""
    return next((line.strip() for line in text.splitlines() if line.startswith("Measured on ")), "")


def read(folder) -> tuple[pd.DataFrame | None, list[str]]:
    """(frame, warnings): None and no warning when the folder holds no verify.csv; None and a warning naming
    the file when it is malformed."""
    path = Path(folder) / CSV
    if not path.exists() and not path.is_symlink():
        return None, []
    try:
        frame = parse(files.read_regular_text(path, max_bytes=16 * 2**20))
    except (OSError, UnicodeDecodeError, Malformed) as exc:
        why = exc.strerror if isinstance(exc, OSError) and exc.strerror else exc
        return None, [f"skipping {path}: {why}"]
    return frame, []


def table(folder):
    """(the report's Parity Table or None, warnings)."""
    frame, warnings = read(folder)
    if frame is None:
        return None, warnings
    return Table("parity", TITLE, frame, machine_line(folder), NOTE, columns=COLUMNS), warnings
