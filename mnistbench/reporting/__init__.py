"""Reading results: tables (one renderer), statistics, Markdown, plots, benchmark tables, comparisons.

May import the core (config, registry, results, study); never perf or cli. Nothing happens at import.
"""
from __future__ import annotations


def build(folder, extra_tables=(), margin: float = 0.002) -> dict:
    """Write folder/report.md, a CSV per table and folder/plots/*.png from the saved runs (see report.document)."""
    from .document import build as build_report

    return build_report(folder, extra_tables, margin=margin)
