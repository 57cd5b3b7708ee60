"""The files of a verification in --out: verify.csv (one row per pair and dtype), verify.md (the same as a
table, with the tolerance rule) and plots/verify_growth.png (max relative difference per step, log y)."""
from __future__ import annotations

import csv
import io
import math
import os
import tempfile
from pathlib import Path

CSV, MARKDOWN, PLOT = "verify.csv", "verify.md", "verify_growth.png"
COLUMNS = ("family", "impl", "twin", "dtype", "ran_in", "verdict", "first_step", "tensor", "max_abs_diff",
           "max_rel_diff", "allowed_rel", "steps", "gradcheck", "rtol", "atol", "reduction", "tolerance",
           "batch_size", "seed", "seconds", "note")


def row(result) -> dict:
    c, tol = result.comparison, result.tolerance
    return {"family": result.family, "impl": result.impl, "twin": result.twin, "dtype": result.dtype,
            "ran_in": result.ran_in, "verdict": c.verdict, "first_step": "" if c.first_step is None else c.first_step,
            "tensor": c.tensor or "", "max_abs_diff": f"{c.max_abs:.3g}", "max_rel_diff": f"{c.max_rel:.3g}",
            "allowed_rel": f"{c.bound:.3g}", "steps": c.steps, "gradcheck": result.gradcheck, "rtol": f"{tol.rtol:g}",
            "atol": f"{tol.atol:g}", "reduction": tol.reduction, "tolerance": tol.describe(),
            "batch_size": result.batch_size, "seed": result.seed, "seconds": f"{result.seconds:.1f}",
            "note": result.note}


def verdict_text(r: dict) -> str:
    if r["verdict"] == "differ":
        where = "before any update" if str(r["first_step"]) == "0" else f"from step {r['first_step']}"
        return f"differ {where}: {r['tensor']}, max abs {r['max_abs_diff']}, max rel {r['max_rel_diff']}"
    return r["verdict"]


def markdown(rows: list[dict], machine: str) -> str:
    lines = ["# mnistbench verify", "", f"Measured on {machine}.", "",
             "Each implementation against its twin from the same start on the same batches: logits and loss "
             "before any update (step 0), then after every step the loss, the logits and every parameter. "
             "A tensor a agrees with its twin's b when max|a−b| / max|b| ≤ atol + rtol·sqrt(K)·sqrt(step): "
             "rtol, atol are torch.testing's defaults for the dtype, K the longest reduction of a step "
             "(sums of K rounded terms drift like sqrt(K) ulps; rounding fed back through the updates adds "
             "up like a random walk, like sqrt(step)). identical: bit for bit at every step. The max "
             "differences are those of the first step past tolerance, or the worst over the run. gradcheck: "
             "the hand-written gradient (gradients(), or the first update / lr) against finite differences "
             "in float64 (torch.autograd.gradcheck, eps 1e-6, atol 1e-5, rtol 1e-3).", "",
             "| family | impl | twin | dtype | verdict | max abs diff | max rel diff | allowed rel | steps | "
             "gradcheck | tolerance | s |", "|" + " --- |" * 12]
    for r in rows:
        dtype = r["dtype"] if r["dtype"] == r["ran_in"] else f"{r['dtype']} (ran {r['ran_in']})"
        lines.append(f"| {r['family']} | {r['impl']} | {r['twin']} | {dtype} | {verdict_text(r)} | "
                     f"{r['max_abs_diff']} | {r['max_rel_diff']} | {r['allowed_rel']} | {r['steps']} | "
                     f"{r['gradcheck']} | {r['tolerance']} | {r['seconds']} |")
    notes = [f"{r['family']}/{r['impl']}: {r['note']}" for r in rows if r["note"]]
    if notes:
        lines += ["", *notes]
    lines += ["", f"CSV: [{CSV}]({CSV}); growth of the differences: [plots/{PLOT}](plots/{PLOT})", ""]
    return "\n".join(lines)


def plot_growth(results, path: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 5))
    for r in results:
        growth = [g if g > 0 and math.isfinite(g) else math.nan for g in r.comparison.growth]
        ax.plot(range(len(growth)), growth, label=f"{r.family}/{r.impl} vs {r.twin} ({r.ran_in})")
    ax.set_yscale("log")
    ax.set_xlabel("step (0: before any update)")
    ax.set_ylabel("largest max|a−b| / max|b| over the tensors")
    ax.set_title("How the difference from the twin grows with the step")
    ax.legend(fontsize=7)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def atomic_write_text(path: Path, text: str) -> None:
    """Temp file in the same folder, then os.replace: a reader sees all of it or none."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as handle:
            handle.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write(results, out: Path, machine: str) -> dict:
    """verify.csv, verify.md and the plot, each written atomically; returns their paths."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    rows = [row(r) for r in results]
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    atomic_write_text(out / CSV, buffer.getvalue())
    atomic_write_text(out / MARKDOWN, markdown(rows, machine))
    return {"csv": out / CSV, "markdown": out / MARKDOWN, "plot": plot_growth(results, out / "plots" / PLOT)}
