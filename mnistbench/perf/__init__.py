"""Measuring speed: the notebook's loops against mnistbench's (speed), the kernels' floor, throughput
against batch size, and torch.profiler traces (profiling).

May import the core (config, registry, data, models, train, results, env) and reporting.render; never cli.
"""
