"""The MLP's floor: the epoch's matrix-multiply FLOPs over the rate the machine reaches on the step's own
matmul shapes, in the same process. An epoch cannot beat its own matmuls."""
from __future__ import annotations

import functools
import itertools
import math

import torch

from .timing import timed

MATMUL_SECONDS = 0.2  # each floor measurement multiplies for at least this long
PEAK_SIZE = 1024  # the square sgemm of the peak rate


def mlp_flops_per_sample(sizes) -> int:
    """Matmul FLOPs of one training sample of the manual MLP: forward 2·in·out per layer, backward
    dW 2·in·out per layer and dX 2·in·out for every layer but the first (nothing needs dL/dx)."""
    layers = list(itertools.pairwise(sizes))
    forward = sum(2 * i * o for i, o in layers)
    return 2 * forward + sum(2 * i * o for i, o in layers[1:])


def matmul_gflops(sizes, batch_size, device, min_seconds=None) -> float:
    """GFLOP/s of torch.mm on the MLP step's own matmuls (same shapes, same transposes), out= buffers."""
    gen = torch.Generator().manual_seed(0)
    work = []
    for index, (n_in, n_out) in enumerate(itertools.pairwise(sizes)):
        a = torch.randn(batch_size, n_in, generator=gen).to(device)
        weight = torch.randn(n_out, n_in, generator=gen).to(device)
        delta = torch.randn(batch_size, n_out, generator=gen).to(device)
        work.append((a, weight.t(), torch.empty(batch_size, n_out, device=device)))  # forward
        work.append((delta.t(), a, torch.empty(n_out, n_in, device=device)))  # dW
        if index > 0:
            work.append((delta, weight, torch.empty(batch_size, n_in, device=device)))  # dX

    def step_matmuls(times):
        for _ in range(times):
            for left, right, out in work:
                torch.mm(left, right, out=out)

    min_seconds = MATMUL_SECONDS if min_seconds is None else min_seconds
    step_matmuls(3)  # warm-up
    steps = 1
    while True:
        seconds = timed(device, step_matmuls, steps)
        if seconds >= min_seconds:
            return mlp_flops_per_sample(sizes) * batch_size * steps / seconds / 1e9
        steps = max(2 * steps, math.ceil(steps * 1.2 * min_seconds / max(seconds, 1e-6)))


def peak_gflops(device, size=None, min_seconds=None) -> float:
    size = PEAK_SIZE if size is None else size
    min_seconds = MATMUL_SECONDS if min_seconds is None else min_seconds
    gen = torch.Generator().manual_seed(0)
    a, b = (torch.randn(size, size, generator=gen).to(device) for _ in range(2))
    out = torch.empty(size, size, device=device)
    torch.mm(a, b, out=out)
    calls, seconds = 0, 0.0
    while seconds < min_seconds:
        seconds += timed(device, functools.partial(torch.mm, out=out), a, b)
        calls += 1
    return 2 * size**3 * calls / seconds / 1e9


