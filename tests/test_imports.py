"""Importing mnistbench has no side effects: no matplotlib backend switch, no environment change."""
from __future__ import annotations

import subprocess
import sys

CHECK = """
import os, matplotlib
matplotlib.use("svg")  # a notebook user's own choice of backend
before_env = dict(os.environ)
import mnistbench, mnistbench.reporting, mnistbench.reporting.plots, mnistbench.reporting.document
import mnistbench.perf.profiling, mnistbench.perf.speed, mnistbench.cli
assert matplotlib.get_backend() == "svg", matplotlib.get_backend()
assert dict(os.environ) == before_env, set(os.environ.items()) ^ set(before_env.items())
print("clean")
"""


def test_importing_the_package_changes_no_backend_and_no_environment():
    env = {k: v for k, v in __import__("os").environ.items() if k != "MPLBACKEND"}
    proc = subprocess.run([sys.executable, "-c", CHECK], capture_output=True, text=True, env=env, timeout=120)
    assert proc.returncode == 0 and "clean" in proc.stdout, proc.stderr


def test_drawing_a_plot_keeps_the_users_backend(tmp_path):
    import matplotlib
    import pandas as pd

    from mnistbench.reporting import plots

    previous = matplotlib.get_backend()
    matplotlib.use("svg")
    try:
        frame = pd.DataFrame({"family": ["mlp"] * 2, "impl": ["manual", "builtin"], "batch_size": [64, 64],
                              "train_samples_per_s": [1000.0, 900.0]})
        path = plots.plot_throughput(frame, tmp_path / "t.png")
        assert path.is_file() and path.stat().st_size > 1000
        assert matplotlib.get_backend() == "svg"
    finally:
        matplotlib.use(previous)
