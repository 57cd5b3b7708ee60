"""torch.profiler around a few training steps: TensorBoard traces plus a Markdown table of the top operators.

The profiled steps run on a model of their own, built like the real one, before any timed run starts,
so a profile never leaks into `train_seconds`. Traces go to <out>/profiles/<run_id>/ through
torch.profiler.tensorboard_trace_handler, which is the layout the torch-tb-profiler plugin reads:
`tensorboard --logdir <out>/profiles` lists one run per folder.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import torch
from torch.profiler import ProfilerActivity, profile, schedule, tensorboard_trace_handler

from .. import data, models, registry, train
from ..config import ConfigError, RunConfig
from ..files import atomic_write_text
from ..result import new_run_id

TOP_OPS = 15


@dataclass(frozen=True)
class ProfileSteps:
    """torch.profiler's schedule: skip `wait` steps, record but discard `warmup`, keep `active`."""

    wait: int = 1
    warmup: int = 2
    active: int = 5

    @property
    def total(self) -> int:
        return self.wait + self.warmup + self.active

    def check(self) -> ProfileSteps:
        if self.wait < 0 or self.warmup < 0 or self.active < 1:
            raise ConfigError(f"profile steps need wait >= 0, warmup >= 0, active >= 1; got {self}")
        return self


def profile_dir(out: Path, run_id: str) -> Path:
    return Path(out) / "profiles" / run_id


def can_profile(cfg: RunConfig) -> bool:
    """scikit-learn fits in one call that torch.profiler cannot look inside: only step-wise models."""
    return registry.implementation(cfg.family, cfg.impl).iterative


def profile_steps(cfg: RunConfig, splits, folder: Path, steps: ProfileSteps = ProfileSteps(),
                  with_stack: bool = False) -> dict:
    """Profile `steps.total` training steps of a fresh cfg model on splits (already on the device).

    Writes the TensorBoard trace and top_ops.md into `folder`; returns {"folder", "trace_files",
    "top_ops" (Markdown), "steps"}.
    """
    steps.check()
    device = splits.train.x.device
    if not can_profile(cfg):
        raise ConfigError(f"{cfg.family}/{cfg.impl} trains in one scikit-learn call; only step-wise "
                          "implementations can be profiled")
    folder = Path(folder)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(f"cannot write profiles into {folder.parent}: {exc.strerror or exc}") from None
    model = models.build(cfg, splits.n_features, splits.n_classes, device)
    # Kineto (torch.profiler's backend) logs each start/stop and, on a CUDA build without a GPU, an error
    # about the device count; level 5 keeps it to real failures. A user's own setting wins. Set here,
    # when profiling starts, not when this module is imported.
    os.environ.setdefault("KINETO_LOG_LEVEL", "5")
    activities = [ProfilerActivity.CPU]
    if device.type == "cuda":
        activities.append(ProfilerActivity.CUDA)
    batches = _batches(train.inputs_for(model, splits.train.x), splits.train.y, cfg.batch_size, steps.total,
                       cfg.seed, cfg.loader)  # the training set as the loop hands it to the model
    worker = f"{cfg.family}-{cfg.impl}-{device.type}"
    with profile(
        activities=activities,
        schedule=schedule(wait=steps.wait, warmup=steps.warmup, active=steps.active, repeat=1),
        on_trace_ready=tensorboard_trace_handler(str(folder), worker_name=worker),
        record_shapes=True,
        profile_memory=True,
        with_stack=with_stack,
    ) as prof:
        for xb, yb in batches:
            model.step(xb, yb)
            prof.step()  # marks a step boundary (ProfilerStep#N in the trace)
    train.sync(device)
    table = top_ops_table(prof.key_averages(), device.type, TOP_OPS)
    header = (f"# Top operators: {cfg.family}/{cfg.impl}, batch {cfg.batch_size}, {device}, "
              f"{steps.active} profiled steps (after {steps.wait} skipped and {steps.warmup} warm-up)\n\n")
    atomic_write_text(folder / "top_ops.md", header + table + "\n")
    traces = sorted(p.name for p in folder.iterdir() if ".pt.trace.json" in p.name)
    return {"folder": folder, "trace_files": traces, "top_ops": table, "steps": steps}


def _batches(x, y, batch_size: int, count: int, seed: int, loader: str = "tensor"):
    """`count` training batches in the loop's own order, starting a new epoch if the set runs out.

    They are made before profiling starts, so the trace shows the steps, not the batching.
    """
    generator = torch.Generator().manual_seed(seed)
    out = []
    while len(out) < count:
        for batch in train.epoch_batches(x, y, batch_size, generator, loader):
            out.append(batch)
            if len(out) == count:
                break
    return out


def top_ops_table(averages, device_type: str = "cpu", limit: int = TOP_OPS) -> str:
    """A Markdown table of the `limit` operators with the most self time (device time on CUDA)."""
    import pandas as pd

    from ..reporting import render
    from ..reporting.render import Column

    on_cuda = device_type == "cuda"
    key = (lambda e: e.self_device_time_total) if on_cuda else (lambda e: e.self_cpu_time_total)
    events = sorted((e for e in averages if not e.key.startswith("ProfilerStep")), key=key, reverse=True)
    rows = [{"operator": f"`{e.key}`", "calls": e.count, "self_cpu_ms": e.self_cpu_time_total / 1e3,
             "cpu_total_ms": e.cpu_time_total / 1e3, "self_cuda_ms": e.self_device_time_total / 1e3,
             "cuda_total_ms": e.device_time_total / 1e3, "self_cpu_mem_kib": e.self_cpu_memory_usage / 1024,
             "self_cuda_mem_kib": e.self_device_memory_usage / 1024} for e in events[:limit]]
    ms, kib = (lambda name, header: Column(name, header, "ms")), (lambda name, header: Column(name, header, "kib"))
    columns = [Column("operator", fmt="text"), Column("calls", fmt="int"), ms("self_cpu_ms", "self CPU ms"),
               ms("cpu_total_ms", "CPU total ms")]
    if on_cuda:
        columns += [ms("self_cuda_ms", "self CUDA ms"), ms("cuda_total_ms", "CUDA total ms")]
    columns.append(kib("self_cpu_mem_kib", "self CPU mem KiB"))
    if on_cuda:
        columns.append(kib("self_cuda_mem_kib", "self CUDA mem KiB"))
    return render.to_markdown(pd.DataFrame(rows, columns=[c.name for c in columns]), columns)


def profile_configs(configs, out: Path, data_root=None, steps: ProfileSteps = ProfileSteps(),
                    with_stack: bool = False, on_profile=None, on_skip=None, arrays: dict | None = None):
    """Profile every step-wise config (skipping scikit-learn ones), each into <out>/profiles/<run_id>/.

    `arrays` (dataset -> load_arrays output) is a cache the caller may keep across calls.
    """
    steps.check()
    arrays = {} if arrays is None else arrays
    profiled = []
    for cfg in configs:
        if not can_profile(cfg):
            if on_skip is not None:
                on_skip(cfg)
            continue
        device = train.resolve_device(cfg.device)
        if cfg.dataset not in arrays:
            arrays[cfg.dataset] = data.load_arrays(cfg.dataset, data_root)
        splits = data.load(cfg, device=device, arrays=arrays[cfg.dataset])
        if cfg.threads is not None:
            torch.set_num_threads(cfg.threads)
        done = profile_steps(cfg, splits, profile_dir(out, new_run_id(cfg)), steps, with_stack)
        done["cfg"] = cfg
        profiled.append(done)
        if on_profile is not None:
            on_profile(done)
    return profiled


def adopt_run_id(folder: Path, out: Path, run_id: str) -> Path:
    """Rename a profile folder after the run it preceded, so profile and result share one id."""
    target = profile_dir(out, run_id)
    os.replace(folder, target)
    return target


# ---------------------------------------------------------------- where a step's time goes beyond its GEMMs
# the operators whose self time is a matrix product (on a CPU the BLAS or oneDNN kernel runs inside them)
GEMM_OPS = frozenset({"aten::mm", "aten::addmm", "aten::addmm_", "aten::bmm", "aten::baddbmm", "aten::addmv",
                      "aten::addmv_", "aten::mv", "aten::_mkldnn_linear", "mkldnn::_linear_pointwise"})
BREAKDOWN_STEPS = 20
BREAKDOWN_TOP = 5


def step_breakdown(model, batches, limit: int = BREAKDOWN_TOP) -> dict:
    """Profile model.step over `batches` (CPU self time): the GEMMs' share of it and the `limit` other
    operators with the most self time, each as (operator, self ms per step, share of the steps' self time).
    Only a structure to read beside the timings: the profiler's own overhead inflates small ops."""
    os.environ.setdefault("KINETO_LOG_LEVEL", "5")
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        for xb, yb in batches:
            model.step(xb, yb)
    events = [e for e in prof.key_averages() if not e.key.startswith("ProfilerStep")]
    total = sum(e.self_cpu_time_total for e in events) or 1.0
    gemm = sum(e.self_cpu_time_total for e in events if e.key in GEMM_OPS)
    others = sorted((e for e in events if e.key not in GEMM_OPS), key=lambda e: e.self_cpu_time_total, reverse=True)
    steps = max(len(batches), 1)
    top = [(e.key, e.self_cpu_time_total / 1e3 / steps, e.self_cpu_time_total / total) for e in others[:limit]]
    return {"gemm_share": gemm / total, "self_ms_per_step": total / 1e3 / steps, "top": top}


def breakdown_text(top) -> str:
    """The top operators beyond the GEMMs on one line: `op` share, ..."""
    return ", ".join(f"{name.removeprefix('aten::')} {share:.0%}" for name, _, share in top)
