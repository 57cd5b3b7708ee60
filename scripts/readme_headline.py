"""Rewrite README.md's headline table from the reference results, so that it is never retyped.

The block between `<!-- headline:start -->` and `<!-- headline:end -->` becomes a few columns of
results/reference/summary.csv, rendered by the report's own table layer (the same cells as the Summary
table of results/reference/report.md), under the report's own "Measured on ..." line.

    python scripts/readme_headline.py            # rewrite the block
    python scripts/readme_headline.py --check    # exit 1 if the block differs from what would be written
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
REFERENCE = ROOT / "results" / "reference"
START, END = "<!-- headline:start -->", "<!-- headline:end -->"


def headline(reference: Path = REFERENCE) -> str:
    """The block's text: the report's machine line, then the table, from `reference`'s files."""
    import pandas as pd

    from mnistbench.reporting import columns as cols
    from mnistbench.reporting import render

    frame = pd.read_csv(reference / "summary.csv")
    columns = [render.Column("family", fmt="text"), render.Column("impl", fmt="text"), cols.STATUS[1],
               cols.ACCURACY[0], cols.RUN_FIGURES[0], cols.RUN_FIGURES[2], cols.RUN_FIGURES[3], cols.FIT,
               cols.TIMING]
    return f"{_machine_line(reference / 'report.md')}\n\n{render.to_markdown(frame, columns)}"


def _machine_line(report: Path) -> str:
    """The 'Measured on ...' line under the report's Summary heading."""
    lines = report.read_text(encoding="utf-8").splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("## Summary"))
    return next(line for line in lines[start:] if line.startswith("Measured on "))


def rewrite(text: str, block: str) -> str:
    """text with the headline block replaced by `block`; ValueError if the markers are missing."""
    head, start, rest = text.partition(START)
    _, end, tail = rest.partition(END)
    if not start or not end:
        raise ValueError(f"README.md needs the markers {START} and {END}")
    return f"{head}{START}\n{block}\n{END}{tail}"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="exit 1 if README.md's block is stale")
    args = parser.parse_args(argv)
    text = README.read_text(encoding="utf-8")
    new = rewrite(text, headline())
    if args.check:
        if new != text:
            print("README.md's headline table is stale: run python scripts/readme_headline.py", file=sys.stderr)
            return 1
        return 0
    if new != text:
        README.write_text(new, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))  # run from a checkout without installing
    sys.exit(main())
