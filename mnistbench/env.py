"""What a number depends on: the machine, the software, and how busy the machine was.

Run results take their whole environment from here (train.finish -> environment). Speed and
throughput rows (perf.timing.environment_columns) take the device name and load average from here but
read torch's version and thread count themselves, and the benchmarks' machine_info (bench/conftest.py)
is pytest-benchmark's own, with torch's build, GPU and threads added there.
"""
from __future__ import annotations

import os
import platform
import resource
import socket
import sys
import time
from pathlib import Path

import torch


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def device_name(device) -> str:
    device = torch.device(device)
    return torch.cuda.get_device_name(device) if device.type == "cuda" else cpu_model()


def load_average() -> float | None:
    """The 1-minute load average, or None where the platform has none."""
    try:
        return round(os.getloadavg()[0], 2)
    except (AttributeError, OSError):
        return None


PROC_STAT = Path("/proc/stat")
GOVERNOR = Path("/sys/devices/system/cpu/cpu0/cpufreq/scaling_governor")
# the fields of /proc/stat's aggregate "cpu" line, in jiffies summed over all CPUs (see proc(5))
CPU_FIELDS = ("user", "nice", "system", "idle", "iowait", "irq", "softirq", "steal")
BUSY_FIELDS = ("user", "nice", "system", "irq", "softirq")  # time some process on this machine had a CPU


def cpu_cores() -> int:
    """The CPUs this process may run on (its affinity), which is what a busy neighbour competes for."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def cpu_times(path: Path = PROC_STAT) -> dict | None:
    """The aggregate CPU line of /proc/stat as {field: jiffies}, or None where it cannot be read."""
    try:
        for line in Path(path).read_text().splitlines():
            parts = line.split()
            if parts and parts[0] == "cpu":
                values = [int(v) for v in parts[1 : 1 + len(CPU_FIELDS)]]
                return dict(zip(CPU_FIELDS, values + [0] * (len(CPU_FIELDS) - len(values))))
    except (OSError, ValueError):
        pass
    return None


def cpu_governor(path: Path = GOVERNOR) -> str | None:
    """The CPU frequency governor (e.g. "performance", "powersave"), or None where the kernel hides it
    (most VMs and containers)."""
    try:
        return Path(path).read_text().strip() or None
    except OSError:
        return None


def own_cpu_seconds() -> float:
    """CPU seconds this process has used so far, over all its threads."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def steal_fraction(before: dict | None, after: dict | None) -> float | None:
    """The share of CPU time the hypervisor gave to other guests between two cpu_times() readings."""
    if before is None or after is None:
        return None
    total = sum(after[k] - before[k] for k in CPU_FIELDS)
    return (after["steal"] - before["steal"]) / total if total > 0 else None


def other_load(before: dict | None, after: dict | None, own_seconds: float, wall_seconds: float,
               ticks_per_second: float) -> float | None:
    """CPUs kept busy by other processes between two cpu_times() readings: all busy CPU time on the machine
    minus this process's own, per second of wall time. Unlike the load average, it is blind to this
    process's own earlier work (the previous run of a study)."""
    if before is None or after is None or wall_seconds <= 0:
        return None
    busy_seconds = sum(after[k] - before[k] for k in BUSY_FIELDS) / ticks_per_second
    return max(busy_seconds - own_seconds, 0.0) / wall_seconds


def noise_start() -> dict:
    """What a run must read before it starts, to describe the noise it ran under (see noise_since)."""
    return {"load_avg_before": load_average(), "cpu_times": cpu_times(), "own_cpu_seconds": own_cpu_seconds(),
            "wall": time.perf_counter()}


def noise_since(start: dict) -> dict:
    """The noise fields of a run that began at noise_start(): load before, steal and others' load during."""
    after = cpu_times()
    wall_seconds = time.perf_counter() - start["wall"]
    own_seconds = own_cpu_seconds() - start["own_cpu_seconds"]
    ticks = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
    return {
        "load_avg_before": start["load_avg_before"],
        "cpu_steal_fraction": steal_fraction(start["cpu_times"], after),
        "other_load": other_load(start["cpu_times"], after, own_seconds, wall_seconds, ticks),
        "cpu_cores": cpu_cores(),
        "torch_threads": torch.get_num_threads(),
        "cpu_governor": cpu_governor(),
    }


def environment(device) -> dict:
    """What the numbers depend on: versions, device, CPU, threads, host."""
    device = torch.device(device)
    return {
        "torch": torch.__version__,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "host": socket.gethostname(),
        "device": str(device),
        "device_name": device_name(device),
        "cpu_model": cpu_model(),
        "threads": torch.get_num_threads(),
        "cuda": torch.version.cuda,
        "tox_env": os.environ.get("TOX_ENV_NAME"),
        "prefix": sys.prefix,  # the Python environment (a venv, a tox env): runs of one config in two differ
        "mnistbench": mnistbench_version(),
    }


def mnistbench_version() -> str:
    """The package version, with the git commit of its checkout when it runs from one."""
    from . import __version__

    head = Path(__file__).resolve().parent.parent / ".git" / "HEAD"
    try:
        ref = head.read_text().strip()
        if ref.startswith("ref: "):
            ref = (head.parent / ref[5:]).read_text().strip()
        return f"{__version__}+g{ref[:10]}"
    except OSError:
        return __version__
