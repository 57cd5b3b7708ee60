"""What the command line prints while it works: one line per epoch or run, and closing tables."""
from __future__ import annotations

from ..reporting.render import fmt_value  # light: pandas only for tables


def describe(cfg) -> str:
    from .. import registry

    uses_hidden = cfg.family in registry.families() and registry.family(cfg.family).uses_hidden
    hidden = f" hidden={','.join(map(str, cfg.hidden))}" if uses_hidden else ""
    dtype = f" dtype={cfg.dtype}" if cfg.dtype != "float32" else ""
    return (f"{cfg.family}/{cfg.impl} lr={cfg.lr:g} batch={cfg.batch_size}{hidden} seed={cfg.seed} "
            f"device={cfg.device}{dtype}")


def print_epoch(record):
    if record.get("fit_seconds") is not None:  # a solver's one fit: no epoch time, no samples/s
        timing = f"fit {fmt_value(record['fit_seconds'], 'seconds')} s"
    else:
        timing = (f"{fmt_value(record['train_seconds'], 'seconds')} s  "
                  f"{fmt_value(record['train_samples_per_s'], 'rate')} samples/s")
    print(
        f"    epoch {record['epoch']:>3}  train loss {fmt_value(record['train_loss'], 'loss')} "
        f"acc {fmt_value(record['train_acc'], 'acc')}  val loss {fmt_value(record['val_loss'], 'loss')} "
        f"acc {fmt_value(record['val_acc'], 'acc')}  {timing}",
        flush=True,
    )


def print_run_start(index, total, cfg):
    print(f"[{index}/{total}] {describe(cfg)}", flush=True)


def print_run_end(index, total, cfg, record):
    if record is None:
        print_skipped(index, total, cfg, record)
        return
    print(f"[{index}/{total}] {outcome(record)}", flush=True)


def print_skipped(index, total, cfg, record):
    if record is None:
        print(f"[{index}/{total}] {describe(cfg)}: already done, skipped (--resume)", flush=True)


def print_progress(progress, cfg, record):
    """A finished run of a grid running elsewhere (Ray): where the grid stands, the run, where it ran."""
    p = progress
    host = (record.get("env") or {}).get("host") or "a lost worker"
    print(f"[{p.done}/{p.total} done, {p.running} running, {p.queued} queued, {p.failed} failed] "
          f"{describe(cfg)}: {outcome(record)} on {host}", flush=True)


def outcome(record) -> str:
    extra = f" at epoch {record['diverged_epoch']}" if record["status"] == "diverged" else ""
    extra += f": {record['error']}" if record["status"] == "failed" else ""
    if record.get("fit_seconds") is not None:
        timing = f"{fmt_value(record['fit_seconds'], 'seconds')} s fit"
    else:
        timing = f"{fmt_value(record['train_seconds'], 'seconds')} s training"
    if record.get("timing_unstable"):
        timing += f" (timing unstable: {record['timing_unstable_reason']})"
    return (f"{record['status']}{extra}: test acc {fmt_value(record['test_acc'], 'acc')}, "
            f"{record['epochs_run']} epochs, {timing}")


def summary_columns() -> list:
    from ..reporting.render import Column

    return [Column("family"), Column("impl"), Column("dtype", fmt="text"), Column("status"), Column("test_acc"),
            Column("best_val_acc"), Column("epochs_run", "epochs"), Column("train_seconds", fmt="seconds"),
            Column("train_samples_per_s", "samples/s", "rate"), Column("fit_seconds", "fit s", "seconds"),
            Column("timing_unstable_reason", "timing unstable", "text")]


def summary_table(records) -> str:
    import pandas as pd

    from ..reporting import render

    summary = summary_columns()
    frame = pd.DataFrame([{c.name: r.get(c.name) for c in summary} for r in records])
    frame["dtype"] = [(r.get("config") or {}).get("dtype", "float32") for r in records]
    # the run's own spread: samples/s with the interval of its steady-state epochs
    for bound in ("ci_low", "ci_high"):
        frame[f"train_samples_per_s_{bound}"] = [r.get(f"train_samples_per_s_{bound}") for r in records]
    return render.to_text(frame, summary)
