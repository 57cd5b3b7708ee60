"""Compute precision of the hand-written models: float32, or bfloat16 GEMMs on float32 master weights.

A bf16 run of a manual or handgrad model keeps its weights (the masters) in float32 and a bf16 copy of
each (Copies): a copy is re-cast only when its master has changed (an update, a load_state_dict), so a
step casts each weight once per update, not once per product, and casts its batch once (the MLP takes
its training set cast once per run instead: train.inputs_for). Products come back as float32 where
float32 math follows (softmax, sigmoid, the loss and its gradient), and each update is a bf16 product
added into the float32 masters. The builtin models get the same split from
torch.autocast (models.common.Builtin). Evaluation computes the same way as training: logits() goes
through these very products.

Where the CPU has neither AMX nor AVX512_BF16, bf16 products are emulated (slower than float32): of()
warns once per process (bf16_emulated says which).

In float32 every method is the plain op the models called before bf16 existed, not a cast-then-op, so
a float32 run does exactly the arithmetic it always did.
"""
from __future__ import annotations

import contextlib
import functools
import warnings
from dataclasses import dataclass

import torch

TORCH_DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16}


@dataclass(frozen=True)
class Precision:
    dtype: torch.dtype = torch.float32

    @property
    def exact(self) -> bool:
        return self.dtype == torch.float32

    def cast(self, tensor: torch.Tensor) -> torch.Tensor:
        """A GEMM operand in the compute dtype (a bf16 tensor is returned as it is, no copy)."""
        return tensor if self.exact else tensor.to(self.dtype)

    def result(self, tensor: torch.Tensor) -> torch.Tensor:
        """A product back in float32, for the elementwise math and the loss."""
        return tensor if self.exact else tensor.float()

    def addmm(self, bias, a, b) -> torch.Tensor:
        """bias + a @ b, as float32 (differentiable: autograd reaches the float32 masters through the casts)."""
        if self.exact:
            return torch.addmm(bias, a, b)
        return torch.addmm(self.cast(bias), self.cast(a), self.cast(b)).float()

    def matmul(self, a, b) -> torch.Tensor:
        return a @ b if self.exact else (self.cast(a) @ self.cast(b)).float()

    def addmm_(self, target, a, b, alpha: float) -> None:
        """target += alpha · a @ b, in place on a float32 master: in bf16 the product is bf16 and the sum
        float32, so small updates are not lost to the masters' rounding."""
        if self.exact:
            target.addmm_(a, b, alpha=alpha)
        else:
            target.add_(torch.mm(self.cast(a), self.cast(b)), alpha=alpha)


FLOAT32 = Precision()  # the default of every model: plain float32 ops


class Copies:
    """Compute-dtype copies of float32 masters, kept in step with them: get(master) casts again only when
    the master has been written since the last cast (torch's in-place version counter says so), into the
    same buffer. In float32 get() is the master itself."""

    def __init__(self, precision: Precision):
        self.precision = precision
        self._copies: dict = {}  # id(master) -> (master, version at the cast, copy)
        self.casts = 0  # how many times a master was cast (tests count them)

    def get(self, master: torch.Tensor) -> torch.Tensor:
        if self.precision.exact:
            return master
        entry = self._copies.get(id(master))
        if entry is not None and entry[0] is master and entry[1] == master._version:
            return entry[2]
        if entry is not None and entry[0] is master:
            copy = entry[2].copy_(master)
        else:
            copy = master.to(self.precision.dtype)
        self.casts += 1
        self._copies[id(master)] = (master, master._version, copy)
        return copy


@functools.cache
def bf16_emulated(device_type: str = "cpu") -> bool:
    """Whether bf16 products run without hardware support here: a CPU with neither AMX nor AVX512_BF16
    (a GPU is taken to have it)."""
    if device_type != "cpu":
        return False
    cpu = torch.cpu
    checks = [getattr(cpu, name, None) for name in ("_is_amx_tile_supported", "_is_avx512_bf16_supported")]
    checks = [check for check in checks if check is not None]
    if not checks:  # this torch cannot say: oneDNN's own test
        return not torch.ops.mkldnn._is_mkldnn_bf16_supported()
    return not any(check() for check in checks)


_WARNED = set()


def warn_if_emulated(dtype: torch.dtype, device_type: str = "cpu") -> None:
    """Once per process: bf16 asked for on a CPU without bf16 hardware will be slower than float32."""
    if dtype != torch.bfloat16 or dtype in _WARNED or not bf16_emulated(device_type):
        return
    _WARNED.add(dtype)
    warnings.warn("this CPU has neither AMX nor AVX512_BF16: bfloat16 products are emulated here and a "
                  "bfloat16 run will be slower than float32", RuntimeWarning, stacklevel=3)


@dataclass(frozen=True)
class _Float64(Precision):
    """float64 (mnistbench verify): the plain ops of float32, on weights and data made in float64."""

    dtype: torch.dtype = torch.float64

    @property
    def exact(self) -> bool:
        return True


FLOAT64 = _Float64()


def of(cfg) -> Precision:
    """The precision a RunConfig asks for (config.validate has checked the name)."""
    if cfg.dtype == "float64":
        return FLOAT64
    precision = Precision(TORCH_DTYPES[cfg.dtype])
    warn_if_emulated(precision.dtype, str(getattr(cfg, "device", None) or "cpu").split(":")[0])
    return precision


def autocast(precision: Precision, device: torch.device):
    """torch.autocast to the compute dtype on device's type, or nothing at all in float32."""
    if precision.exact:
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=precision.dtype)
