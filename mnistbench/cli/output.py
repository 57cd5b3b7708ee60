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


def print_progress(event, epochs: bool = True) -> None:
    """One line per event of a grid (executors.Progress): a run starting, an epoch (when epochs), a
    run's outcome with where the grid stands, or a point skipped."""
    where = f"[{event.index}/{event.total}]"
    if event.kind == "start":
        print(f"{where} {describe(event.cfg)}", flush=True)
    elif event.kind == "epoch" and epochs:
        print(epoch_line(event.epoch), flush=True)
    elif event.kind == "skipped":
        print(f"{where} {describe(event.cfg)}: skipped, {event.note}", flush=True)
    elif event.kind == "done":
        result = event.result
        host = result.env.get("host") or "a lost worker"
        ran = f" on {host}" if result.executor else ""
        counts = f" ({event.done} done, {event.failed} failed)" if event.failed else ""
        print(f"{where} {outcome(result)}{ran}{counts}", flush=True)


def epoch_line(epoch) -> str:
    if epoch.fit_seconds is not None:  # a solver's one fit: no epoch time
        timing = f"fit {fmt_value(epoch.fit_seconds, 'seconds')} s"
    else:
        timing = f"{fmt_value(epoch.train_seconds, 'seconds')} s"
    return (f"    epoch {epoch.epoch:>3}  train loss {fmt_value(epoch.train_loss, 'loss')} "
            f"acc {fmt_value(epoch.train_acc, 'acc')}  val loss {fmt_value(epoch.val_loss, 'loss')} "
            f"acc {fmt_value(epoch.val_acc, 'acc')}  {timing}")


def outcome(result) -> str:
    extra = f" at epoch {result.diverged_epoch}" if result.status == "diverged" else ""
    extra += f": {result.error}" if result.status == "failed" else ""
    if result.fit_seconds is not None:
        timing = f"{fmt_value(result.fit_seconds, 'seconds')} s fit"
    else:
        timing = f"{fmt_value(result.train_seconds, 'seconds')} s training"
    if result.timing.get("timing_unstable"):
        timing += f" (timing unstable: {result.timing['timing_unstable_reason']})"
    return (f"{result.status}{extra}: test acc {fmt_value(result.test_acc, 'acc')}, "
            f"{result.epochs_run} epochs, {timing}")


def summary_columns() -> list:
    from ..reporting.render import Column

    return [Column("family"), Column("impl"), Column("dtype", fmt="text"), Column("status"), Column("test_acc"),
            Column("best_val_acc"), Column("epochs_run", "epochs"), Column("train_seconds", fmt="seconds"),
            Column("train_samples_per_s", "samples/s", "rate"), Column("fit_seconds", "fit s", "seconds"),
            Column("timing_unstable_reason", "timing unstable", "text")]


def summary_table(trained) -> str:
    """One row per result: its outcome, with samples/s and the interval of its steady-state epochs."""
    import pandas as pd

    from ..reporting import render

    summary = summary_columns()
    frame = pd.DataFrame([r.to_row() for r in trained])
    frame = frame.reindex(columns=[c.name for c in summary] + ["train_samples_per_s_ci_low",
                                                               "train_samples_per_s_ci_high"])
    return render.to_text(frame, summary)
