"""What a number depends on: the machine, the software, and how busy the machine was.

One place for it: run records (results.make_result), speed and throughput rows, and benchmark
machine_info all take their environment from here.
"""
from __future__ import annotations

import os
import platform
import socket
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
    }
