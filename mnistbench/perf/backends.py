"""The matrix-multiply kernels torch offers on a device, each run on the MLP step's own GEMMs.

A backend turns the step's GEMMs (forward x·Wᵀ, dW = δᵀ·a, dX = δ·W, see floor.step_gemms) into a function
that computes all of them once. Which kernel is fastest depends on the machine: on an AVX-512 CPU with
AVX512_BF16 oneDNN ran about twice MKL in float32, while on an AVX2 CPU MKL wins and oneDNN has no bf16
inner product at all. So the floor measures every one that works here, and a backend that raises (missing
op, no primitive for this CPU) is reported as skipped with its error, never fatal.

Only float32 products with float32 accumulation are *exact*, the arithmetic the MLP's float32 step does;
TF32, bf16 and fp16 are another precision, shown beside it.
"""
from __future__ import annotations

import collections
import contextlib
import random
import statistics
from collections.abc import Callable
from dataclasses import dataclass

import torch

from ..models import precision
from .timing import synced_seconds

# a float32 GEMM of these sizes is within ~1e-6 of float64 (relative to its largest entry); TF32 and bf16
# are ~1e-3 off. A backend named float32 that misses this (a global lower-precision switch) is not exact.
EXACT_TOLERANCE = 1e-4
EMULATED_NOTE = "emulated: this CPU has neither AMX nor AVX512_BF16, so bf16 is slower than float32 here"


@dataclass(frozen=True)
class Backend:
    name: str  # short key: a speed unit's name, a row of the floor table
    kernel: str  # what runs, in words
    precision: str  # float32 | tf32 | bfloat16 | float16
    device_type: str  # cpu | cuda
    prepare: Callable  # prepare(gemms) -> a function that computes every (left, right) product once


def _mm(dtype: torch.dtype, tf32: bool | None = None):
    """torch.mm into preallocated outputs, operands converted once (their layouts kept)."""
    def prepare(gemms):
        pairs = [(left.to(dtype), right.to(dtype)) for left, right in gemms]
        outs = [torch.empty(left.shape[0], right.shape[1], dtype=dtype, device=left.device) for left, right in pairs]

        def run():
            with _cuda_tf32(tf32):
                for (left, right), out in zip(pairs, outs):
                    torch.mm(left, right, out=out)
            return outs

        return run

    return prepare


@contextlib.contextmanager
def _cuda_tf32(enabled: bool | None):
    """cuBLAS with TF32 on or off for the duration (None: leave the process's setting alone)."""
    if enabled is None:
        yield
        return
    matmul = torch.backends.cuda.matmul
    before = matmul.allow_tf32
    matmul.allow_tf32 = enabled
    try:
        yield
    finally:
        matmul.allow_tf32 = before


def _onednn(dtype: torch.dtype):
    """oneDNN's inner product on dense tensors, left @ right = linear(left, weight=rightᵀ): the forward
    product takes W as it is stored, the backward ones take transposed views, which oneDNN reorders
    itself on every call (the conversion is part of the time, as it would be in a training step)."""
    linear = torch.ops.mkldnn._linear_pointwise

    def prepare(gemms):
        pairs = [(left.to(dtype), right.to(dtype).t()) for left, right in gemms]

        def run():
            return [linear(left, weight, None, "none", [], "") for left, weight in pairs]

        return run

    return prepare


CHOICE_ROUNDS, CHOICE_CALLS = 15, 3  # fastest_each: blocks of calls per (product, backend), interleaved


def _block_seconds(run, device_type: str, calls: int) -> float:
    def block():
        for _ in range(calls):
            run()
    return synced_seconds(device_type, block)


def _fastest_each(candidates: list[Backend], device_type: str):
    """Each product on whichever of the candidates runs it fastest here, whatever its precision: the least
    the step's GEMMs can take on this device, so that the floor table says how much any lower-precision or
    mixed step could gain at this batch size (a bound on bf16's speed-up, not a floor of a float32 epoch).
    The choice is made once, at prepare, on blocks of calls interleaved across the candidates (median)."""
    def prepare(gemms):
        chosen = []
        for gemm in gemms:
            runs, names = [], []
            for candidate in candidates:
                try:
                    run = candidate.prepare([gemm])
                    run()
                except (RuntimeError, NotImplementedError, AttributeError, TypeError):
                    continue
                runs.append(run)
                names.append(candidate.name)
            if not runs:
                raise RuntimeError("no backend runs this product")
            blocks = [[] for _ in runs]
            order = list(range(len(runs)))
            for round_index in range(CHOICE_ROUNDS):
                random.Random(round_index).shuffle(order)  # no candidate always after the same neighbour
                for index in order:
                    blocks[index].append(_block_seconds(runs[index], device_type, CHOICE_CALLS))
            best = min(range(len(runs)), key=lambda index: statistics.median(blocks[index]))
            chosen.append((names[best], runs[best]))

        def run():
            return [product for _, one in chosen for product in one()]

        counts = collections.Counter(name for name, _ in chosen)
        run.note = "chosen: " + ", ".join(f"{name} {count}" for name, count in counts.items())  # the table says which
        return run

    return prepare


def available(device) -> list[Backend]:
    """Every backend torch offers on device's type, in the order the floor table lists them."""
    kind = torch.device(device).type
    out = _cuda_backends(kind) if kind == "cuda" else _cpu_backends(kind)
    return out + [Backend(FASTEST_EACH, "per product, the fastest of the backends above", "mixed", kind,
                          _fastest_each(out, kind))]


FASTEST_EACH = "fastest-each"  # its row bounds what a lower precision could gain; never the floor itself


def _cuda_backends(kind: str) -> list[Backend]:
    return [Backend("cublas-fp32", "torch.mm (cuBLAS sgemm, TF32 off)", "float32", kind,
                    _mm(torch.float32, tf32=False)),
            Backend("cublas-tf32", "torch.mm (cuBLAS, TF32 on)", "tf32", kind, _mm(torch.float32, tf32=True)),
            Backend("cublas-bf16", "torch.mm on bf16 tensors (cuBLAS)", "bfloat16", kind, _mm(torch.bfloat16)),
            Backend("cublas-fp16", "torch.mm on fp16 tensors (cuBLAS)", "float16", kind, _mm(torch.float16))]


def _cpu_backends(kind: str) -> list[Backend]:
    blas = "MKL" if torch.backends.mkl.is_available() else "BLAS"
    out = [Backend("mm-fp32", f"torch.mm ({blas} sgemm)", "float32", kind, _mm(torch.float32))]
    if torch.backends.mkldnn.is_available():
        out.append(Backend("onednn-fp32", "mkldnn._linear_pointwise (oneDNN inner product)", "float32", kind,
                           _onednn(torch.float32)))
    out.append(Backend("mm-bf16", "torch.mm on bf16 tensors", "bfloat16", kind, _mm(torch.bfloat16)))
    if torch.backends.mkldnn.is_available():
        out.append(Backend("onednn-bf16", "mkldnn._linear_pointwise on bf16 (oneDNN)", "bfloat16", kind,
                           _onednn(torch.bfloat16)))
    return out


@dataclass
class Prepared:
    """A backend ready to time on this device's GEMMs, or the reason it cannot run here."""

    backend: Backend
    run: Callable | None  # None: skipped
    max_rel_error: float = float("nan")  # max |C - C64| / max |C64| over the step's products
    note: str = ""

    @property
    def exact(self) -> bool:
        return self.run is not None and self.backend.precision == "float32" and self.max_rel_error <= EXACT_TOLERANCE


def relative_error(products, gemms) -> float:
    """The largest error of the products against float64 ones, relative to each product's largest entry."""
    worst = 0.0
    for product, (left, right) in zip(products, gemms):
        exact = left.double() @ right.double()
        dense = product.to_dense() if product.is_mkldnn else product
        worst = max(worst, float((dense.double() - exact).abs().max() / exact.abs().max().clamp(min=1e-300)))
    return worst


def prepare(backend: Backend, gemms) -> Prepared:
    """Set the backend up on the GEMMs, run it once (warm-up and the accuracy check); skip it if it raises."""
    try:
        run = backend.prepare(gemms)
        error = relative_error(run(), gemms)
        for _ in range(2):
            run()
    except (RuntimeError, NotImplementedError, AttributeError, TypeError) as exc:
        text = str(exc).strip()
        first = text.splitlines()[0].split(". ")[0] if text else ""  # oneDNN appends a page of hints
        return Prepared(backend, None, note=f"skipped: {type(exc).__name__}: {first[:120]}")
    note = getattr(run, "note", "") if backend.precision != "float32" or error <= EXACT_TOLERANCE else (
        f"not exact: error {error:.1e} > {EXACT_TOLERANCE:g} (a lower-precision mode is on)")
    if backend.precision == "bfloat16" and precision.bf16_emulated(backend.device_type):
        note = EMULATED_NOTE
    return Prepared(backend, run, error, note)
